//! [`Context`]: a device and its queue, what its probes found, the bind-group layouts and
//! the pipeline cache.

mod kernels;
pub(crate) mod layout;
pub(crate) mod pipelines;
mod probe;
pub(crate) mod relaxed;
pub(crate) mod wgsl;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::exec::bind::BindingKey;
use crate::{Error, Result};
use layout::Layouts;
use pipelines::PipelineCache;

pub use kernels::KernelOptions;

/// The most vec4s an invocation of the register softmax kernels holds by default (32
/// f32: more spilled to memory on an H100 in the evidence's plain-WGSL probe, which held
/// 64).
pub(crate) const REGISTER_VEC4S: u32 = 8;

/// Options for [`Context::with_options`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Features the device must have; creation fails with [`Error::MissingFeature`] if
    /// the chosen adapter lacks one.
    pub required_features: wgpu::Features,
    /// Backends to consider (default: every compiled-in backend, or `WGPU_BACKEND`).
    pub backends: Option<wgpu::Backends>,
    /// Take a software adapter (such as lavapipe) even when a GPU is present.
    pub prefer_software: bool,
    /// Request these limits instead of the adapter's own (each must be within the
    /// adapter's): to emulate a smaller device, or to test cutting on small inputs.
    pub limits: Option<wgpu::Limits>,
    /// Features to request when the adapter has them (default: `SUBGROUP`, `SHADER_F16`,
    /// `TIMESTAMP_QUERY` and `PIPELINE_CACHE`, those this crate can use). `Some(empty)`
    /// runs without them, for example to test the shared-memory reductions that adapters
    /// without subgroups use.
    pub optional_features: Option<wgpu::Features>,
    /// A file for wgpu's pipeline cache (driver-compiled pipelines, so that a later
    /// process skips most compilation): loaded now when it exists, written by
    /// [`Context::save_pipeline_cache`]. Used where the adapter has
    /// `Features::PIPELINE_CACHE` (Vulkan, lavapipe included); ignored elsewhere. The
    /// file must be one this crate wrote; wgpu ignores data from another adapter, driver
    /// or wgpu version.
    pub pipeline_cache: Option<std::path::PathBuf>,
    /// Test mode: compile every shader (the probes included) under emulated relaxed float
    /// semantics, as the WGSL spec allows a GPU to compute: subnormal inputs and results
    /// of every f32 operation flushed to zeros of their sign, `x / y` computed as
    /// `x * (1 / y)` with the reciprocal flushed, and constant factors distributed over
    /// sums (`(x + 3) / 6` as `x * (1/6) + 0.5`). Code that passes its tests on lavapipe
    /// both with and without it holds on GPUs that do these things (an NVIDIA H100 does
    /// all three). Slower to compile and run; for tests, not production.
    pub emulate_relaxed_math: bool,
    /// Tuning: a file of measured strategy choices for `Strategy::Auto`, and whether to
    /// tune on first use ([`Context::tune`]). Default: no file, no tuning on first use
    /// (`Auto` is the static table until [`Context::tune`] is called).
    pub tuning: crate::TuningOptions,
    /// How the kernels are compiled: wgpu's runtime checks, zero-initialised workgroup
    /// memory, the register strategies' vec4s per invocation ([`KernelOptions`]; the
    /// defaults are the fast ones).
    pub kernels: KernelOptions,
}

/// What this context found its adapter to do, and the sizes its kernels are planned
/// with ([`Context::facts`]). Its `Display` is one line for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterFacts {
    /// The workgroup size of this context's kernels (a power of two, at most 256).
    pub workgroup_size: u32,
    /// Whether the kernels reduce with subgroup operations (the device has
    /// `Features::SUBGROUP`); otherwise they use a shared-memory tree.
    pub subgroups: bool,
    /// The subgroup sizes the adapter reports (`None` where it gives none).
    pub subgroup_sizes: Option<(u32, u32)>,
    /// Whether WGSL `fma` rounds once here (lavapipe's does not). The shaders use it for
    /// exact products when it does, and Dekker's algorithm when not.
    pub fused_fma: bool,
    /// Whether f32 arithmetic here flushes subnormal inputs or results to zero (the WGSL
    /// spec allows it; NVIDIA GPUs do it, lavapipe does not). The kernels give their
    /// documented results either way; the random ops' CPU mirror
    /// ([`crate::random::FloatModel`]) needs it to reproduce the GPU's bits.
    pub flushes_subnormals: bool,
    /// How many loop iterations one invocation may run, in all its loops together, where
    /// the adapter stops them early (lavapipe: 65,535); `None` where it does not. The
    /// kernels plan their work within it and refuse what cannot fit, instead of
    /// returning a silently truncated result.
    pub loop_budget: Option<u64>,
    /// Whether shaders compile under [`ContextOptions::emulate_relaxed_math`].
    pub emulated_relaxed_math: bool,
    /// Whether f16 tensors convert with WGSL's builtins (see
    /// [`Context::hardware_f16_conversions`]); `None` until the first f16 pipeline.
    pub f16_builtin_conversions: Option<bool>,
    /// The longest row [`crate::Strategy::Resident`] holds.
    pub resident_capacity: usize,
    /// The longest row [`crate::Strategy::Registers`] holds: a workgroup's invocations
    /// with their vec4s each.
    pub registers_capacity: usize,
    /// How this context compiles its kernels ([`ContextOptions::kernels`]).
    pub kernels: KernelOptions,
}

impl AdapterFacts {
    /// The float facts of this adapter that decide the random ops' exact bits.
    pub fn float_model(&self) -> crate::random::FloatModel {
        crate::random::FloatModel {
            flushes_subnormals: self.flushes_subnormals,
        }
    }
}

impl std::fmt::Display for AdapterFacts {
    /// `fma fused: no, subnormals flushed: no, subgroups: yes (size 8 to 8), loop budget:
    /// 65535`, and the f16 conversions once known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let subgroups = match (self.subgroup_sizes, self.subgroups) {
            (Some((lo, hi)), true) => format!("yes (size {lo} to {hi})"),
            (None, true) => "yes".to_string(),
            (_, false) => "no".to_string(),
        };
        write!(
            f,
            "fma fused: {}, subnormals flushed: {}{}, subgroups: {subgroups}, loop budget: {}",
            yes(self.fused_fma),
            yes(self.flushes_subnormals),
            if self.emulated_relaxed_math {
                " (emulated relaxed math)"
            } else {
                ""
            },
            self.loop_budget
                .map_or_else(|| "none".to_string(), |b| b.to_string())
        )?;
        match self.f16_builtin_conversions {
            Some(true) => f.write_str(", f16 conversions: builtin")?,
            Some(false) => f.write_str(", f16 conversions: integer")?,
            None => {}
        }
        write!(f, ", {}", self.kernels)
    }
}

/// A wgpu error with its chain of causes (wgpu's own message is only "Validation Error").
fn describe(e: &wgpu::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// The instances made so far, by the backends they were asked for.
type Instances = Vec<(Option<wgpu::Backends>, wgpu::Instance)>;

/// The process's one wgpu instance per set of backends. Every context this crate creates
/// takes its device from it, so buffers of one context and another live in one wgpu
/// registry: handing a context a buffer (or encoder) of another is then a validation error
/// that the context's error scopes catch, where across two instances the ids could collide
/// and silently alias an unrelated buffer.
fn shared_instance(
    backends: Option<wgpu::Backends>,
) -> (std::sync::MutexGuard<'static, Instances>, wgpu::Instance) {
    static INSTANCES: Mutex<Instances> = Mutex::new(Vec::new());
    let mut instances = INSTANCES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, i)) = instances.iter().find(|(b, _)| *b == backends) {
        let i = i.clone();
        return (instances, i);
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(backends) = backends {
        desc.backends = backends;
    }
    let instance = wgpu::Instance::new(desc);
    instances.push((backends, instance.clone()));
    (instances, instance)
}

/// Features this crate uses when the adapter has them; requested opportunistically.
const USEFUL_FEATURES: wgpu::Features = wgpu::Features::SUBGROUP
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::PIPELINE_CACHE);

/// The largest workgroup this crate asks for; smaller when the device allows less.
const PREFERRED_WORKGROUP_SIZE: u32 = 256;

/// A device and queue with everything needed to run activations on them: start every
/// call with [`Context::call`].
///
/// `Context` is `Send + Sync`: share one across threads (for example in an `Arc`); its
/// pipeline cache compiles each pipeline once.
pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter_info: Option<wgpu::AdapterInfo>,
    limits: wgpu::Limits,
    workgroup_size: u32,
    layouts: Layouts,
    cache: PipelineCache,
    /// Whether WGSL `fma` rounds once here; passed to every shader as `FUSED_FMA`.
    fused_fma: bool,
    /// Whether f32 arithmetic here flushes subnormal inputs or results to zero.
    flushes_subnormals: bool,
    /// Whether shaders are compiled under emulated relaxed semantics (a test mode).
    relaxed: bool,
    /// Loop iterations one invocation may run, where the adapter stops them early.
    loop_budget: Option<u64>,
    /// How the kernels are compiled (the register strategies' vec4s among them).
    kernels: KernelOptions,
    /// wgpu's pipeline cache and the file it is saved to.
    pipeline_cache: Option<(wgpu::PipelineCache, std::path::PathBuf)>,
    /// Bind groups of recent calls, for repeated encodes.
    bindings: Mutex<HashMap<BindingKey, Arc<wgpu::BindGroup>>>,
    /// The shared scratch buffer (Split's and dice's partial statistics).
    shared: Mutex<Option<wgpu::Buffer>>,
    /// Threads of a CPU adapter (one per core on lavapipe); `None` for other adapters.
    cpu_cores: Option<usize>,
    /// Whether WGSL's f16 conversions are exact here (probed on the first f16 pipeline).
    hw_f16: std::sync::OnceLock<bool>,
    /// Measured strategy choices for `Auto`.
    tuning: crate::tuning::Tuning,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("adapter", &self.adapter_name())
            .field("facts", &self.facts())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A headless context on the best adapter: a discrete GPU first, then integrated,
    /// virtual, and last a software one such as lavapipe. Blocks until the device exists.
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// A headless context with options.
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        options.kernels.validate()?;
        let (device, queue, info) = open_device(&options)?;
        let tuning = crate::tuning::Tuning::new(options.tuning.clone(), Some(&info));
        let mut ctx = Self::build(
            device,
            queue,
            Some(info),
            options.emulate_relaxed_math,
            tuning,
            options.kernels,
        );
        if let Some(path) = options.pipeline_cache {
            ctx.open_pipeline_cache(path)?;
        }
        Ok(ctx)
    }

    /// A context on the caller's own device and queue (for pipelines that already own
    /// them). The caller's uncaptured-error handler is left alone: this crate validates
    /// its inputs and runs its own wgpu calls inside error scopes. Without the adapter's
    /// description such a context has no tuning file: its tuned choices live as long as it.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let tuning = crate::tuning::Tuning::new(Default::default(), None);
        Self::build(device, queue, None, false, tuning, KernelOptions::default())
    }

    /// [`Context::from_device`] with the kernels compiled as `kernels` says (an error
    /// for a value it does not support).
    ///
    /// ```no_run
    /// # fn demo(device: wgpu::Device, queue: wgpu::Queue) -> wgpu_activations::Result<()> {
    /// use wgpu_activations::{Context, KernelOptions};
    /// let kernels = KernelOptions { register_vec4s: 4, ..Default::default() };
    /// let ctx = Context::from_device_with(device, queue, kernels)?;
    /// # Ok(()) }
    /// ```
    pub fn from_device_with(
        device: wgpu::Device,
        queue: wgpu::Queue,
        kernels: KernelOptions,
    ) -> Result<Self> {
        kernels.validate()?;
        let tuning = crate::tuning::Tuning::new(Default::default(), None);
        Ok(Self::build(device, queue, None, false, tuning, kernels))
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        relaxed: bool,
        tuning: crate::tuning::Tuning,
        kernels: KernelOptions,
    ) -> Self {
        let limits = device.limits();
        // A power of two: the reduction trees halve it.
        let workgroup_size = PREFERRED_WORKGROUP_SIZE
            .min(limits.max_compute_workgroup_size_x)
            .min(limits.max_compute_invocations_per_workgroup)
            .max(1);
        let workgroup_size = 1 << workgroup_size.ilog2();
        // In an error scope: no layout error may reach the caller's handler (each
        // bind-group layout binds at most 5 storage buffers; pipeline layouts past the
        // device's limit are not created at all).
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layouts = Layouts::new(&device);
        let _ = pollster::block_on(scope.pop());
        let cpu_cores = adapter_info
            .as_ref()
            .is_some_and(|i| i.device_type == wgpu::DeviceType::Cpu)
            .then(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let mut ctx = Context {
            device,
            queue,
            adapter_info,
            limits,
            workgroup_size,
            layouts,
            cache: PipelineCache::default(),
            fused_fma: false,
            flushes_subnormals: false,
            relaxed,
            loop_budget: None,
            kernels,
            pipeline_cache: None,
            bindings: Mutex::new(HashMap::new()),
            shared: Mutex::new(None),
            cpu_cores,
            hw_f16: std::sync::OnceLock::new(),
            tuning,
        };
        (ctx.fused_fma, ctx.flushes_subnormals, ctx.loop_budget) = ctx.probe_adapter();
        ctx
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter's description, when this context chose the adapter.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.adapter_info.as_ref()
    }

    /// A one-line description of the adapter, for logs and the `activate` tool.
    pub fn adapter_name(&self) -> String {
        match &self.adapter_info {
            Some(i) => format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type),
            None => "caller-provided device".to_string(),
        }
    }

    /// The device's limits, as this crate plans dispatches and pieces with them.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// What this context found its adapter to do (measured at creation), and the sizes
    /// its kernels are planned with.
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// println!("{}", ctx.facts());
    /// // fma fused: no, subnormals flushed: no, subgroups: yes (size 8 to 8), loop budget: 65535
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn facts(&self) -> AdapterFacts {
        let sizes = self.adapter_info.as_ref().and_then(|i| {
            (i.subgroup_min_size > 0).then_some((i.subgroup_min_size, i.subgroup_max_size))
        });
        AdapterFacts {
            workgroup_size: self.workgroup_size,
            subgroups: self.subgroups(),
            subgroup_sizes: sizes,
            fused_fma: self.fused_fma,
            flushes_subnormals: self.flushes_subnormals,
            loop_budget: self.loop_budget,
            emulated_relaxed_math: self.relaxed,
            f16_builtin_conversions: self.hw_f16.get().map(|&b| b && !self.relaxed),
            resident_capacity: crate::families::softmax_strategy::resident_capacity(self) as usize,
            registers_capacity: crate::families::softmax_strategy::registers_capacity(self)
                as usize,
            kernels: self.kernels,
        }
    }

    /// An error unless the device has every one of `features`.
    pub fn require_features(&self, features: wgpu::Features) -> Result<()> {
        let available = self.device.features();
        let missing = features - available;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::MissingFeature { missing, available })
        }
    }

    /// How many bind groups are kept for repeated calls.
    pub fn cached_bindings(&self) -> usize {
        self.bindings().len()
    }

    /// Drops the bind groups kept for repeated calls (up to 256), and with them the
    /// references they hold to the caller's buffers.
    pub fn release_cached_bindings(&self) {
        self.bindings().clear();
        *self.shared_slot() = None;
    }

    /// Waits until the queue has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Wgpu {
                message: e.to_string(),
                source: Some(Box::new(e)),
            })
    }

    pub(crate) fn workgroup_size(&self) -> u32 {
        self.workgroup_size
    }

    pub(crate) fn subgroups(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
    }

    pub(crate) fn loop_budget(&self) -> Option<u64> {
        self.loop_budget
    }

    pub(crate) fn emulates_relaxed_math(&self) -> bool {
        self.relaxed
    }

    pub(crate) fn tuning(&self) -> &crate::tuning::Tuning {
        &self.tuning
    }

    pub(crate) fn register_vec4s(&self) -> u32 {
        self.kernels.register_vec4s
    }

    pub(crate) fn kernel_options(&self) -> KernelOptions {
        self.kernels
    }

    /// The number of threads of a CPU adapter; `None` for a GPU.
    pub(crate) fn cpu_cores(&self) -> Option<usize> {
        self.cpu_cores
    }

    /// The smallest and largest subgroup size the adapter may run (from its info; 1 and
    /// 128 where it gives none, the bounds any strategy must plan for).
    pub(crate) fn subgroup_sizes(&self) -> (u64, u64) {
        match &self.adapter_info {
            Some(i) if i.subgroup_min_size > 0 && i.subgroup_max_size >= i.subgroup_min_size => (
                u64::from(i.subgroup_min_size),
                u64::from(i.subgroup_max_size),
            ),
            _ => (1, 128),
        }
    }

    pub(crate) fn layouts(&self) -> &Layouts {
        &self.layouts
    }

    /// The binding cache (a poisoned lock only means a panic elsewhere mid-insert; the
    /// map is still consistent).
    pub(crate) fn bindings(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BindingKey, Arc<wgpu::BindGroup>>> {
        self.bindings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn shared_slot(&self) -> std::sync::MutexGuard<'_, Option<wgpu::Buffer>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` inside validation and out-of-memory error scopes, turning anything wgpu
    /// reports into [`Error::Wgpu`] instead of letting it reach the uncaptured handler.
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        match v.or(o) {
            Some(e) => Err(Error::Wgpu {
                message: describe(&e),
                source: Some(Box::new(e)),
            }),
            None => Ok(out),
        }
    }
}

/// Opens a device on the best adapter for `options`. Under the instances' lock: adapters
/// of one instance are enumerated, opened and dropped by one thread at a time (the GL
/// backend's EGL context is current on one thread only, and wgpu-hal panics on
/// contention).
fn open_device(options: &ContextOptions) -> Result<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    let (_lock, instance) = shared_instance(options.backends);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let adapter = adapters
        .into_iter()
        .min_by_key(|a| adapter_rank(&a.get_info(), options.prefer_software))
        .ok_or_else(|| {
            Error::NoAdapter("wgpu enumerated no Vulkan, Metal, DX12 or GL adapter".into())
        })?;
    let info = adapter.get_info();
    let available = adapter.features();
    let missing = options.required_features - available;
    if !missing.is_empty() {
        return Err(Error::MissingFeature { missing, available });
    }
    let optional = options.optional_features.unwrap_or(USEFUL_FEATURES);
    let features = options.required_features | (available & optional);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("wgpu-activations"),
        required_features: features,
        // The adapter's own limits, not wgpu's conservative defaults: larger buffers and
        // bindings mean fewer pieces.
        required_limits: options.limits.clone().unwrap_or_else(|| adapter.limits()),
        ..Default::default()
    }))
    .map_err(|e| Error::RequestDevice {
        adapter: info.name.clone(),
        reason: e.to_string(),
    })?;
    Ok((device, queue, info))
}

/// Lower is better: hardware before software, Vulkan/Metal/DX12 before GL.
fn adapter_rank(info: &wgpu::AdapterInfo, prefer_software: bool) -> (u8, u8) {
    use wgpu::DeviceType::*;
    let kind = match info.device_type {
        DiscreteGpu => 0,
        IntegratedGpu => 1,
        VirtualGpu => 2,
        Cpu => 3,
        Other => 4,
    };
    let kind = if prefer_software && info.device_type == Cpu {
        0
    } else {
        kind + 1
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}
