//! [`Context`]: a device, its queue, the bind-group layouts and the pipeline cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cache::{
    storage_buffers, BindingKey, CacheStats, Group0, Group1, Layout, PipelineCache, PipelineKey,
    Slot,
};

use crate::op::Op;
use crate::shader;
use crate::{Error, Result, Storage};

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
    /// adapter's): to emulate a smaller device, or to test chunking on small inputs.
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

/// A device and queue with everything needed to run activations on them.
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
    /// wgpu's pipeline cache and the file it is saved to.
    pipeline_cache: Option<(wgpu::PipelineCache, std::path::PathBuf)>,
    /// Bind groups of recent calls, for repeated encodes.
    bindings: Mutex<HashMap<BindingKey, Arc<wgpu::BindGroup>>>,
    /// Split's partials buffer (its size and bind group).
    partials: Mutex<Option<(u64, Arc<wgpu::BindGroup>)>>,
    /// Threads of a CPU adapter (one per core on lavapipe); `None` for other adapters.
    cpu_cores: Option<usize>,
    /// Whether WGSL's f16 conversions are exact here (probed on the first f16 pipeline).
    hw_f16: std::sync::OnceLock<bool>,
}

/// `cache::pipelines` or `cache::backward_pipelines`: the entry points an op compiles.
type PipelineList = fn(Op, bool) -> Vec<(Layout, crate::cache::Entry)>;

/// The f16 conversion probe's body (after storage.wgsl): invocation `h` checks f16 value
/// `h` both ways (bit for bit, NaN for NaN), the tie above it with its two f32 neighbours, and two f32 patterns
/// hashed from `h`.
const PROBE_F16: &str = "fn nan16(b: u32) -> bool { return (b & 0x7fffu) > 0x7c00u; }
fn same(x: f32) -> bool {
    let hw = pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu;
    let sw = f32_to_f16(x);
    return hw == sw || (nan16(hw) && nan16(sw));
}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    let a = f16_to_f32(h);
    let da = bitcast<u32>(unpack2x16float(h).x);
    // NaN for NaN, any payload (the crate promises no payload)
    var ok = da == bitcast<u32>(a) || (nan16(h) && (da & 0x7fffffffu) > 0x7f800000u);
    let next = h + 1u;
    if ((h & 0x7fffu) < 0x7c00u && (next & 0x7fffu) <= 0x7c00u && (next & 0x8000u) == (h & 0x8000u)) {
        let m = bitcast<u32>(a) + (bitcast<u32>(f16_to_f32(next)) - bitcast<u32>(a)) / 2u;
        ok = ok && same(bitcast<f32>(m)) && same(bitcast<f32>(m - 1u)) && same(bitcast<f32>(m + 1u));
    }
    // the tie above a normal value (65520 above the largest), and its neighbours
    let t = bitcast<u32>(a) + 0x1000u;
    ok = ok && same(bitcast<f32>(t)) && same(bitcast<f32>(t - 1u)) && same(bitcast<f32>(t + 1u));
    var z = h * 0x9e3779b9u + 0x7f4a7c15u;
    z = (z ^ (z >> 15u)) * 0x2c1b3c6du;
    z = z ^ (z >> 12u);
    ok = ok && same(bitcast<f32>(z)) && same(bitcast<f32>(z ^ 0x80000000u));
    if (!ok) { buf[0] = 0u; }
}";

/// Every bind-group layout of groups 0 and 1, and the pipeline layout of each pair.
struct Layouts {
    group0: HashMap<Group0, wgpu::BindGroupLayout>,
    group1: HashMap<Group1, wgpu::BindGroupLayout>,
    pipelines: HashMap<(Group0, Group1), PipelineLayout>,
}

impl Context {
    /// A headless context on the best adapter: a discrete GPU first, then integrated,
    /// virtual, and last a software one such as lavapipe. Blocks until the device exists.
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// A headless context with options.
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        // Under the instances' lock: adapters of one instance are enumerated, opened and
        // dropped by one thread at a time (the GL backend's EGL context is current on one
        // thread only, and wgpu-hal panics on contention).
        let (device, queue, info) = {
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
            let (device, queue) =
                pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                    label: Some("wgpu-activations"),
                    required_features: features,
                    // The adapter's own limits, not wgpu's conservative defaults: larger
                    // buffers and bindings mean fewer chunks.
                    required_limits: options.limits.unwrap_or_else(|| adapter.limits()),
                    ..Default::default()
                }))
                .map_err(|e| Error::RequestDevice {
                    adapter: info.name.clone(),
                    reason: e.to_string(),
                })?;
            (device, queue, info)
        };
        let mut ctx = Self::build(device, queue, Some(info), options.emulate_relaxed_math);
        if let Some(path) = options.pipeline_cache {
            ctx.open_pipeline_cache(path)?;
        }
        Ok(ctx)
    }

    /// Loads (or starts) the pipeline cache at `path`, before any pipeline is compiled.
    fn open_pipeline_cache(&mut self, path: std::path::PathBuf) -> Result<()> {
        if !self
            .device
            .features()
            .contains(wgpu::Features::PIPELINE_CACHE)
        {
            return Ok(());
        }
        let data = match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Io {
                    action: "read the pipeline cache",
                    path,
                    source,
                })
            }
        };
        let cache = self.scoped(|| {
            // SAFETY: wgpu requires `data` to come from `PipelineCache::get_data`; the file
            // is one `save_pipeline_cache` wrote (the documented contract of the option),
            // and wgpu checks its header against this adapter and falls back to an empty
            // cache when it does not match (`fallback: true`).
            unsafe {
                self.device
                    .create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                        label: Some("wgpu-activations"),
                        data: data.as_deref(),
                        fallback: true,
                    })
            }
        })?;
        self.pipeline_cache = Some((cache, path));
        // The probes compiled before the cache existed; nothing else has.
        Ok(())
    }

    /// Whether this context compiles through a wgpu pipeline cache.
    pub fn has_pipeline_cache(&self) -> bool {
        self.pipeline_cache.is_some()
    }

    /// Writes the pipeline cache to the file named in [`ContextOptions::pipeline_cache`]
    /// (whole or not at all: through a temporary file and a rename). Returns whether
    /// anything was written (nothing without a cache, or when the driver gives no data).
    pub fn save_pipeline_cache(&self) -> Result<bool> {
        let Some((cache, path)) = &self.pipeline_cache else {
            return Ok(false);
        };
        let Some(data) = cache.get_data() else {
            return Ok(false);
        };
        // A temporary name of this process and call, so that two writers (threads or
        // processes) never write one temporary file; the last rename wins, whole.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.{call}.partial", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let fail = |action: &'static str, at: &std::path::Path| {
            let at = at.to_path_buf();
            let tmp = tmp.clone();
            move |source: std::io::Error| {
                let _ = std::fs::remove_file(&tmp);
                Error::Io {
                    action,
                    path: at,
                    source,
                }
            }
        };
        std::fs::write(&tmp, &data).map_err(fail("write the temporary pipeline cache", &tmp))?;
        std::fs::rename(&tmp, path).map_err(fail("rename the temporary file over", path))?;
        Ok(true)
    }

    /// A context on the caller's own device and queue (for pipelines that already own
    /// them). The caller's uncaptured-error handler is left alone: this crate validates
    /// its inputs and runs its own wgpu calls inside error scopes.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Self::build(device, queue, None, false)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: Option<wgpu::AdapterInfo>,
        relaxed: bool,
    ) -> Self {
        let limits = device.limits();
        // A power of two: the reduction trees halve it.
        let workgroup_size = PREFERRED_WORKGROUP_SIZE
            .min(limits.max_compute_workgroup_size_x)
            .min(limits.max_compute_invocations_per_workgroup)
            .max(1);
        let workgroup_size = 1 << workgroup_size.ilog2();
        // In an error scope: no layout error may reach the caller's handler (each
        // bind-group layout binds at most 3 storage buffers, under every WebGPU device's
        // limit; pipeline layouts past the device's limit are not created at all).
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layouts = Layouts::new(&device);
        let _ = pollster::block_on(scope.pop());
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
            pipeline_cache: None,
            bindings: Mutex::new(HashMap::new()),
            partials: Mutex::new(None),
            cpu_cores: None,
            hw_f16: std::sync::OnceLock::new(),
        };
        ctx.cpu_cores = ctx
            .adapter_info
            .as_ref()
            .is_some_and(|i| i.device_type == wgpu::DeviceType::Cpu)
            .then(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        (ctx.fused_fma, ctx.flushes_subnormals, ctx.loop_budget) = ctx.probe_adapter();
        ctx
    }

    /// Whether this adapter's WGSL `fma` rounds once (lavapipe's does not). The shaders
    /// use it for exact products when it does, and Dekker's algorithm when not.
    pub fn fused_fma(&self) -> bool {
        self.fused_fma
    }

    /// Whether f32 arithmetic on this adapter flushes subnormal inputs or results to zero
    /// (the WGSL spec allows it; NVIDIA GPUs do it, lavapipe does not). Measured at
    /// creation. The crate's kernels give their documented results either way; the random
    /// ops' CPU mirror ([`crate::random::FloatModel`]) needs to know it to reproduce the
    /// GPU's bits.
    pub fn flushes_subnormals(&self) -> bool {
        self.flushes_subnormals
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

    /// The adapter's float and execution facts that decide numerics and strategy, measured
    /// at creation, as one line: whether `fma` is fused, whether subnormals are flushed,
    /// subgroup support and sizes, and the loop budget; once an f16 pipeline has been
    /// compiled, which f16 conversions it uses ([`Context::hardware_f16_conversions`]).
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// println!("{}", ctx.adapter_facts());
    /// // fma fused: no, subnormals flushed: no, subgroups: yes (size 8 to 8), loop budget: 65535
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn adapter_facts(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        let subgroups = match (&self.adapter_info, self.subgroups()) {
            (Some(info), true) => format!(
                "yes (size {} to {})",
                info.subgroup_min_size, info.subgroup_max_size
            ),
            (None, true) => "yes".to_string(),
            (_, false) => "no".to_string(),
        };
        let f16 = match self.hw_f16.get() {
            Some(true) => ", f16 conversions: builtin",
            Some(false) => ", f16 conversions: integer",
            None => "",
        };
        format!(
            "fma fused: {}, subnormals flushed: {}{}, subgroups: {subgroups}, loop budget: {}{f16}",
            yes(self.fused_fma),
            yes(self.flushes_subnormals),
            if self.relaxed {
                " (emulated relaxed math)"
            } else {
                ""
            },
            self.loop_budget
                .map_or_else(|| "none".to_string(), |b| b.to_string())
        )
    }

    /// Whether this context compiles its shaders under emulated relaxed float semantics
    /// ([`ContextOptions::emulate_relaxed_math`]).
    pub fn emulates_relaxed_math(&self) -> bool {
        self.relaxed
    }

    /// The float facts of this adapter that decide the random ops' exact bits.
    pub fn float_model(&self) -> crate::random::FloatModel {
        crate::random::FloatModel {
            flushes_subnormals: self.flushes_subnormals,
        }
    }

    /// Whether the f16 kernels convert with WGSL's `unpack2x16float` and `pack2x16float`
    /// (cheap on a GPU) rather than the integer conversions of `shaders/storage.wgsl`:
    /// the WGSL spec leaves their rounding and flushing to the implementation, so a probe
    /// (on the first call, once per context) compares them with the integer ones on every
    /// f16 value, every tie between neighbouring f16 values and its two f32 neighbours,
    /// and 2^17 other f32 bit patterns (NaN, infinities, subnormals, overflow among them),
    /// and they are used only if every result has the same bits. Never under
    /// [`ContextOptions::emulate_relaxed_math`], which stands for an adapter the spec
    /// allows: the tests then hold both paths to the same results.
    pub fn hardware_f16_conversions(&self) -> bool {
        !self.relaxed && *self.hw_f16.get_or_init(|| self.probe_f16())
    }

    /// The probe of [`Context::hardware_f16_conversions`]: one invocation per f16 value,
    /// each clearing word 0 on a mismatch. A failed probe takes the integer path.
    fn probe_f16(&self) -> bool {
        let source = format!(
            "@group(0) @binding(0) var<storage, read_write> buf: array<u32>;\n\
             fn decode(h: u32) -> f32 {{ return f16_to_f32(h); }}\n\
             fn encode(x: f32) -> u32 {{ return f32_to_f16(x); }}\n\
             fn decode2(w: u32) -> vec2<f32> {{ return vec2<f32>(decode(w & 0xffffu), decode(w >> 16u)); }}\n\
             fn encode2(v: vec2<f32>) -> u32 {{ return encode(v.x) | (encode(v.y) << 16u); }}\n\
             {}\n{PROBE_F16}",
            shader::STORAGE_WGSL
        );
        let groups = (1u32 << 16) / 64;
        self.probe(&source, &[1], groups)
            .is_ok_and(|out| out[0] == 1)
    }

    /// Measures the adapter's float and loop facts with one probe shader (one compile and
    /// one readback, so creation stays fast):
    /// - `fma(a, a, -(a * a))` for an `a` whose square is inexact: a fused fma returns
    ///   the rounding error (2^-44 here), an unfused one 0;
    /// - a subnormal input times 2^30 (a normal result if inputs are kept) and the
    ///   smallest normal halved (a subnormal result if results are kept): either is 0 on
    ///   an adapter that flushes;
    /// - how many iterations one invocation may run: lavapipe (llvmpipe) stops every loop
    ///   of an invocation once 65,535 iterations have run in all of its loops together,
    ///   silently; a GPU runs them all.
    ///
    /// Returns (fused fma, flushes subnormals, loop budget). A fact whose probe fails takes
    /// the safe side: Dekker's product (exact either way), flushing (the stricter mirror
    /// for the random ops), and lavapipe's budget.
    fn probe_adapter(&self) -> (bool, bool, Option<u64>) {
        const PROBE: &str = "@group(0) @binding(0) var<storage, read_write> buf: array<u32>;\n\
            fn f(i: u32) -> f32 { return bitcast<f32>(buf[i]); }\n\
            @compute @workgroup_size(1) fn main() {\n\
                let a = f(0u);\n\
                buf[1] = bitcast<u32>(fma(a, a, -(a * a)));\n\
                buf[4] = bitcast<u32>(f(2u) * f(3u));\n\
                buf[6] = bitcast<u32>(f(5u) * 0.5);\n\
                var n = 0u;\n\
                for (var i = 0u; i < buf[7]; i++) { n += 1u; }\n\
                buf[8] = n;\n\
                for (var i = 0u; i < buf[7]; i++) { n += 1u; }\n\
                buf[9] = n;\n\
            }";
        const TRIES: u32 = 1 << 20;
        let words = [
            (1.0f32 + 3.0 * f32::EPSILON).to_bits(),
            0,
            1 << 10, // 2^-139, subnormal
            ((1u64 << 30) as f32).to_bits(),
            0,
            f32::MIN_POSITIVE.to_bits(),
            0,
            TRIES,
            0,
            0,
        ];
        let Ok(out) = self.probe(PROBE, &words, 1) else {
            return (false, true, Some(65_535));
        };
        let fused = f32::from_bits(out[1]) != 0.0;
        let flushes = f32::from_bits(out[4]) == 0.0 || f32::from_bits(out[6]) == 0.0;
        // The first loop alone, and both together: a per-loop or a shared limit.
        let budget = out[8].min(out[9]);
        (
            fused,
            flushes,
            (budget < TRIES).then_some(u64::from(budget)),
        )
    }

    /// Runs a probe shader (entry point `main`) in `groups` workgroups on a buffer holding
    /// `words` and returns them.
    fn probe(&self, source: &str, words: &[u32], groups: u32) -> Result<Vec<u32>> {
        use wgpu::util::DeviceExt;
        let buffer = self.scoped(|| {
            let module = self.shader_module("probe", source)?;
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("probe"),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                });
            let buffer = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("probe"),
                    contents: bytemuck::cast_slice(words),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                });
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("probe"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            });
            let mut encoder = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            self.queue.submit([encoder.finish()]);
            Ok::<_, Error>(buffer)
        })??;
        let out = self.download(crate::BufferRegion::new(&buffer), words.len() as u64)?;
        Ok(out.into_iter().map(f32::to_bits).collect())
    }

    /// How many loop iterations one invocation may run on this adapter, in all its loops
    /// together, when it stops them early (lavapipe: 65,535); `None` when it does not.
    /// The kernels plan their work within it and refuse what cannot fit, instead of
    /// returning a silently truncated result.
    pub fn loop_budget(&self) -> Option<u64> {
        self.loop_budget
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

    /// The device's limits, as this crate plans dispatches and chunks with them.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The workgroup size of this context's kernels.
    pub fn workgroup_size(&self) -> u32 {
        self.workgroup_size
    }

    /// Whether the kernels reduce with subgroup operations here (the device has
    /// `Features::SUBGROUP`); otherwise they use a shared-memory tree.
    pub fn subgroups(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
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

    /// Pipeline cache hits and misses so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Compiles every pipeline the given ops can need (all ops when `ops` is empty), so
    /// the first real call pays no compile time.
    pub fn warm_up(&self, ops: &[Op]) -> Result<()> {
        self.compile(ops, Storage::F32, &[crate::cache::pipelines])
    }

    /// Compiles every backward pipeline the given ops can need (all ops when `ops` is
    /// empty): [`Context::warm_up`] for the backward kernels.
    pub fn warm_up_backward(&self, ops: &[Op]) -> Result<()> {
        self.compile(ops, Storage::F32, &[crate::cache::backward_pipelines])
    }

    /// Compiles every pipeline, forward and backward, the given ops (all ops when `ops`
    /// is empty) can need on tensors of `storage`: [`Context::warm_up`] and
    /// [`Context::warm_up_backward`] for f16 or bf16.
    pub fn warm_up_storage(&self, ops: &[Op], storage: Storage) -> Result<()> {
        let lists = [crate::cache::pipelines, crate::cache::backward_pipelines];
        self.compile(ops, storage, &lists)
    }

    /// Compiles, for each of `ops` (all when empty), every pipeline the `lists` name.
    fn compile(&self, ops: &[Op], storage: Storage, lists: &[PipelineList]) -> Result<()> {
        let ops = if ops.is_empty() { Op::ALL } else { ops };
        for &op in ops {
            for list in lists {
                for (layout, entry) in list(op, self.subgroups()) {
                    self.pipeline(PipelineKey::new(op, layout, entry, storage))?;
                }
            }
        }
        Ok(())
    }

    /// The binding cache (a poisoned lock only means a panic elsewhere mid-insert; the
    /// map is still consistent).
    pub(crate) fn bindings(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BindingKey, Arc<wgpu::BindGroup>>> {
        self.bindings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn partials_slot(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(u64, Arc<wgpu::BindGroup>)>> {
        self.partials.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of threads of a CPU adapter; `None` for a GPU.
    pub(crate) fn cpu_cores(&self) -> Option<usize> {
        self.cpu_cores
    }

    /// How many bind groups are kept for repeated calls.
    pub fn cached_bindings(&self) -> usize {
        self.bindings().len()
    }

    /// Drops the bind groups kept for repeated calls (up to 256), and with them the
    /// references they hold to the caller's buffers.
    pub fn release_cached_bindings(&self) {
        self.bindings().clear();
        *self.partials_slot() = None;
    }

    /// The bind-group layout of a group 1 (`Group1::None` has none).
    pub(crate) fn group1_layout(&self, group: Group1) -> &wgpu::BindGroupLayout {
        &self.layouts.group1[&group]
    }

    pub(crate) fn dice_alpha_layout(&self) -> &wgpu::BindGroupLayout {
        self.group1_layout(Group1::DiceAlpha)
    }

    pub(crate) fn dice_eval_layout(&self) -> &wgpu::BindGroupLayout {
        self.group1_layout(Group1::DiceEval)
    }

    pub(crate) fn weights_layout(&self) -> &wgpu::BindGroupLayout {
        self.group1_layout(Group1::Weights)
    }

    pub(crate) fn partials_layout(&self) -> &wgpu::BindGroupLayout {
        self.group1_layout(Group1::Partials)
    }

    pub(crate) fn bind_group_layout(&self, layout: Layout) -> &wgpu::BindGroupLayout {
        &self.layouts.group0[&layout.group0()]
    }

    pub(crate) fn pipeline(
        &self,
        key: PipelineKey,
    ) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
        let subgroups = key.entry.subgroups();
        if subgroups && !self.subgroups() {
            return Err(Error::MissingFeature {
                missing: wgpu::Features::SUBGROUP,
                available: self.device.features(),
            });
        }
        let label = key.op.name();
        let hw_f16 = key.storage == Storage::F16 && self.hardware_f16_conversions();
        self.cache.get_or_compile(key, |modules| {
            self.scoped(|| {
                let module_key = (
                    key.op,
                    key.layout,
                    subgroups,
                    key.entry.module(),
                    key.storage,
                );
                let module = match modules.entry(module_key) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let source = shader::module_source(
                            key.op,
                            key.layout,
                            key.entry,
                            self.workgroup_size,
                            key.storage,
                        );
                        let source = if hw_f16 {
                            shader::with_builtin_f16(source)
                        } else {
                            source
                        };
                        e.insert(self.shader_module(label, &source)?)
                    }
                };
                let layout = self.layouts.pipeline(key.layout, key.entry.group1());
                let layout = layout.as_ref().map_err(|why| {
                    Error::Unsupported(format!("{} on this device: {why}", key.op.name()))
                })?;
                Ok(self
                    .device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(label),
                        layout: Some(layout),
                        module,
                        entry_point: Some(key.entry.name()),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &[("FUSED_FMA", if self.fused_fma { 1.0 } else { 0.0 })],
                            ..Default::default()
                        },
                        cache: self.pipeline_cache.as_ref().map(|(c, _)| c),
                    }))
            })?
        })
    }

    /// A shader module from WGSL, compiled under emulated relaxed semantics in that test
    /// mode (where a source the pass cannot take is an error, never silently unrelaxed).
    fn shader_module(&self, label: &str, source: &str) -> Result<wgpu::ShaderModule> {
        let source = if self.relaxed {
            let mut module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
                report: format!("WGSL parse error: {}", e.emit_to_string(source)),
                source: Box::new(e),
            })?;
            crate::relaxed::relax(&mut module).map_err(|message| Error::Wgpu {
                message,
                source: None,
            })?;
            wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(module))
        } else {
            wgpu::ShaderSource::Wgsl(source.into())
        };
        Ok(self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source,
            }))
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

/// A pipeline layout, or why this device cannot have it (a limit it exceeds).
type PipelineLayout = std::result::Result<wgpu::PipelineLayout, String>;

impl Layouts {
    /// The pipeline layout of an entry point: its input/output layout, and its bind
    /// group 1.
    fn pipeline(&self, layout: Layout, group1: Group1) -> &PipelineLayout {
        &self.pipelines[&(layout.group0(), group1)]
    }

    /// Every bind-group layout, and the pipeline layout of every (group 0, group 1) pair.
    /// A pipeline layout that binds more storage buffers than the device allows per
    /// shader stage is not created (it would be a validation error); the kernels that
    /// need it return an error naming the limit, and the others still work.
    fn new(device: &wgpu::Device) -> Self {
        let max_storage = device.limits().max_storage_buffers_per_shader_stage;
        let create = |(label, slots): (&str, &[Slot])| {
            let entries: Vec<wgpu::BindGroupLayoutEntry> =
                slots.iter().map(|&s| entry(s)).collect();
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &entries,
            })
        };
        let group0: HashMap<Group0, wgpu::BindGroupLayout> = Group0::ALL
            .into_iter()
            .map(|g| (g, create(g.slots())))
            .collect();
        let group1: HashMap<Group1, wgpu::BindGroupLayout> = Group1::ALL
            .into_iter()
            .filter(|&g| g != Group1::None)
            .map(|g| (g, create(g.slots())))
            .collect();
        let mut pipelines = HashMap::new();
        for g0 in Group0::ALL {
            for g1 in Group1::ALL {
                let storage = storage_buffers(g0.slots().1) + storage_buffers(g1.slots().1);
                let layout = if storage > max_storage {
                    Err(format!(
                        "this kernel binds {storage} storage buffers and the device allows \
                         {max_storage} per shader stage (Limits::max_storage_buffers_per_shader_stage); \
                         request the adapter's own limits (ContextOptions::limits: None)"
                    ))
                } else {
                    let mut layouts = vec![Some(&group0[&g0])];
                    layouts.extend(group1.get(&g1).map(Some));
                    Ok(
                        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                            label: None,
                            bind_group_layouts: &layouts,
                            immediate_size: 0,
                        }),
                    )
                };
                pipelines.insert((g0, g1), layout);
            }
        }
        Layouts {
            group0,
            group1,
            pipelines,
        }
    }
}

/// The layout entry of one binding, visible to compute shaders.
fn entry(slot: Slot) -> wgpu::BindGroupLayoutEntry {
    let (binding, ty) = match slot {
        Slot::Read(b) => (b, wgpu::BufferBindingType::Storage { read_only: true }),
        Slot::Write(b) => (b, wgpu::BufferBindingType::Storage { read_only: false }),
        Slot::Uniform(b) => (b, wgpu::BufferBindingType::Uniform),
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}
