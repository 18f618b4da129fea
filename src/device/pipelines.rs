//! The pipeline cache: each (op, entry point, layout, storage type) compiled once per
//! context, shared across threads, and wgpu's own pipeline cache persisted to a file.
//!
//! Lookups take a read lock; a miss takes that key's compile lock (other keys compile in
//! parallel on other threads), checks again (another thread may have compiled the same
//! key meanwhile), compiles, and publishes; a shader module shared by several keys is
//! created once, under its own lock. Compilation runs in a wgpu error scope (wgpu's are
//! per thread), so a shader or pipeline error comes back as [`Error::Wgpu`] instead of
//! reaching the device's uncaptured-error handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::layout::Layout;
use super::wgsl::{with_builtin_f16, ModuleSpec};
use crate::families::Entry;
use crate::op::Op;
use crate::{Context, Direction, Error, Result, Storage};

/// What distinguishes one compiled pipeline from another. Parameters are not part of it:
/// they travel in a uniform buffer, so changing `alpha` compiles nothing. (The family and
/// direction are the entry's module's; the strategy is the entry.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub(crate) op: Op,
    pub(crate) entry: Entry,
    pub(crate) layout: Layout,
    pub(crate) storage: Storage,
}

impl PipelineKey {
    pub(crate) fn new(op: Op, entry: Entry, layout: Layout, storage: Storage) -> Self {
        PipelineKey {
            op,
            entry,
            layout,
            storage,
        }
    }
}

/// The most threads [`Context::warm_up`] compiles on by default.
const COMPILE_THREADS: usize = 8;

/// One shader module per (op, module, layout, storage): the entry points of a module
/// share it.
type ModuleKey = (Op, &'static str, Layout, Storage);

/// Hit and miss counts since the context was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that compiled a pipeline (each key misses exactly once).
    pub misses: u64,
}

/// A lock per entry, created on first use: one thread builds what it guards, others
/// asking for the same entry wait for it.
type Slots<K, V> = Mutex<HashMap<K, Arc<Mutex<V>>>>;

#[derive(Default)]
pub(crate) struct PipelineCache {
    pipelines: RwLock<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// Held, per key, while that key compiles.
    compiling: Slots<PipelineKey, ()>,
    /// The shader modules, each created once under its own lock.
    modules: Slots<ModuleKey, Option<wgpu::ShaderModule>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The slot of `key` in `slots`, created empty on first use.
fn slot<K: std::hash::Hash + Eq, V: Default>(slots: &Slots<K, V>, key: K) -> Result<Arc<Mutex<V>>> {
    let mut map = slots
        .lock()
        .map_err(|_| Error::Poisoned("compiling a pipeline"))?;
    Ok(map.entry(key).or_default().clone())
}

impl PipelineCache {
    fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The pipeline for `key`, compiling it with `build` on the first request.
    fn get_or_compile(
        &self,
        key: PipelineKey,
        build: impl FnOnce() -> Result<wgpu::ComputePipeline>,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.read(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let poisoned = || Error::Poisoned("compiling a pipeline");
        let slot = slot(&self.compiling, key)?;
        let _compiling = slot.lock().map_err(|_| poisoned())?;
        if let Some(p) = self.read(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let pipeline = Arc::new(build()?);
        self.pipelines
            .write()
            .map_err(|_| poisoned())?
            .insert(key, pipeline.clone());
        self.misses.fetch_add(1, Ordering::Relaxed);
        // later requests find the pipeline; the slot is no longer needed
        self.compiling.lock().map_err(|_| poisoned())?.remove(&key);
        Ok(pipeline)
    }

    /// The shader module of `key`, created with `create` by the first request.
    fn module(
        &self,
        key: ModuleKey,
        create: impl FnOnce() -> Result<wgpu::ShaderModule>,
    ) -> Result<wgpu::ShaderModule> {
        let slot = slot(&self.modules, key)?;
        let mut module = slot
            .lock()
            .map_err(|_| Error::Poisoned("compiling a pipeline"))?;
        if let Some(m) = module.as_ref() {
            return Ok(m.clone());
        }
        let created = create()?;
        *module = Some(created.clone());
        Ok(created)
    }

    fn read(&self, key: PipelineKey) -> Option<Arc<wgpu::ComputePipeline>> {
        self.pipelines.read().ok()?.get(&key).cloned()
    }
}

impl Context {
    /// Pipeline cache hits and misses so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Compiles every pipeline the given ops (all ops when `ops` is empty) can need in
    /// each of `directions` on tensors of `storage`, so the first real call pays no
    /// compile time. The fused bias variants (`Params::Bias`) are not among them: they
    /// compile on their first call. Compiles on one thread per core (at most 8; one on
    /// OpenGL), each pipeline once, whoever else asks for it meanwhile
    /// ([`Context::warm_up_on`] chooses the threads).
    ///
    /// ```no_run
    /// use wgpu_activations::{Direction, Op, Storage};
    /// let ctx = wgpu_activations::Context::new()?;
    /// ctx.warm_up(&[Op::Gelu, Op::Softmax], &[Direction::Forward], Storage::F32)?;
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn warm_up(&self, ops: &[Op], directions: &[Direction], storage: Storage) -> Result<()> {
        self.warm_up_on(0, ops, directions, storage)
    }

    /// [`Context::warm_up`] on at most `threads` threads (0: one per available core, at
    /// most 8, as `warm_up` does, except on OpenGL and on a context from
    /// [`Context::from_device`], where it is 1; 1: one pipeline at a time on the calling
    /// thread, to leave the other cores to the application). Naming more than 1 on
    /// OpenGL is at the caller's risk: wgpu's GL backend panics when a thread waits too
    /// long for its context lock. Pipelines compile in parallel
    /// where wgpu and the driver allow; each is compiled once whatever the threads.
    ///
    /// ```no_run
    /// use wgpu_activations::{Direction, Storage};
    /// let ctx = wgpu_activations::Context::new()?;
    /// ctx.warm_up_on(2, &[], &[Direction::Forward], Storage::F32)?;
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn warm_up_on(
        &self,
        threads: usize,
        ops: &[Op],
        directions: &[Direction],
        storage: Storage,
    ) -> Result<()> {
        let threads = match threads {
            0 if !self.compiles_in_parallel() => 1,
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(COMPILE_THREADS),
            n => n,
        };
        let ops = if ops.is_empty() { Op::ALL } else { ops };
        let keys: Vec<PipelineKey> = ops
            .iter()
            .flat_map(|&op| {
                directions.iter().flat_map(move |&direction| {
                    crate::families::pipelines(op, direction, self.subgroups(), false)
                        .into_iter()
                        .map(move |(layout, entry)| PipelineKey::new(op, entry, layout, storage))
                })
            })
            .collect();
        self.compile_all(&keys, threads)
    }

    /// Whether `warm_up` compiles on several threads by default: not on OpenGL, whose
    /// wgpu backend serialises every call through one context lock that panics when a
    /// thread waits for it too long, nor on a device of unknown backend
    /// ([`Context::from_device`]).
    fn compiles_in_parallel(&self) -> bool {
        self.adapter_info()
            .is_some_and(|i| i.backend != wgpu::Backend::Gl)
    }

    /// Compiles `keys` on `threads` threads, each taking the next key; the first failing
    /// key's error (in `keys`' order) is returned.
    fn compile_all(&self, keys: &[PipelineKey], threads: usize) -> Result<()> {
        if threads <= 1 {
            return keys
                .iter()
                .try_for_each(|&key| self.pipeline(key).map(drop));
        }
        let threads = threads.min(keys.len());
        let next = AtomicUsize::new(0);
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    while let Some(&key) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = self.pipeline(key) {
                            let at = keys.iter().position(|k| *k == key).unwrap_or(usize::MAX);
                            if let Ok(mut f) = failures.lock() {
                                f.push((at, e));
                            }
                        }
                    }
                });
            }
        });
        let failures = failures
            .into_inner()
            .map_err(|_| Error::Poisoned("compiling a pipeline"))?;
        match failures.into_iter().min_by_key(|(at, _)| *at) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    /// What a module of `key`'s is assembled for on this context.
    pub(crate) fn module_spec(&self, key: &PipelineKey) -> ModuleSpec {
        ModuleSpec {
            op: key.op,
            layout: key.layout,
            storage: key.storage,
            subgroups: self.subgroups(),
            workgroup_size: self.workgroup_size(),
            register_vec4s: self.register_vec4s(),
        }
    }

    /// The pipeline of `key`, compiled on first use.
    pub(crate) fn pipeline(&self, key: PipelineKey) -> Result<Arc<wgpu::ComputePipeline>> {
        if key.entry.subgroups && !self.subgroups() {
            return Err(Error::MissingFeature {
                missing: wgpu::Features::SUBGROUP,
                available: self.device().features(),
            });
        }
        let label = key.op.name();
        let hw_f16 = key.storage == Storage::F16 && self.hardware_f16_conversions();
        self.cache.get_or_compile(key, || {
            self.scoped(|| {
                let module_key = (key.op, key.entry.module.name, key.layout, key.storage);
                let module = &self.cache.module(module_key, || {
                    let source = (key.entry.module.source)(&self.module_spec(&key));
                    let source = if hw_f16 {
                        with_builtin_f16(source)
                    } else {
                        source
                    };
                    self.kernel_module(label, &source)
                })?;
                let layout = self.layouts().pipeline(key.layout, key.entry.group1);
                let layout = layout.as_ref().map_err(|why| {
                    Error::Unsupported(format!("{} on this device: {why}", key.op.name()))
                })?;
                Ok(self
                    .device()
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(label),
                        layout: Some(layout),
                        module,
                        entry_point: Some(key.entry.name),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &[("FUSED_FMA", if self.fused_fma { 1.0 } else { 0.0 })],
                            zero_initialize_workgroup_memory: self
                                .kernel_options()
                                .zero_initialize_workgroup_memory,
                        },
                        cache: self.pipeline_cache.as_ref().map(|(c, _)| c),
                    }))
            })?
        })
    }

    /// One of this crate's kernels as a shader module: [`Context::shader_module`] with the
    /// runtime checks [`crate::KernelOptions::runtime_checks`] asks for.
    fn kernel_module(&self, label: &str, source: &str) -> Result<wgpu::ShaderModule> {
        let checks = self.kernel_options().shader_checks();
        // SAFETY: the checks switched off (unless KernelOptions::runtime_checks) are the
        // bounds checks and the loop counters. Every kernel indexes its private and
        // workgroup arrays with indices bounded by construction: loops to the arrays'
        // constant lengths (RESIDENT_K, REGISTER_VEC4S, vector components), invocation
        // indices below WORKGROUP_SIZE, subgroup_id below num_subgroups, and the
        // segmented trees' lid + off, in range because the planner's `lanes` is a power of
        // two no larger than the workgroup (tests/kernel_options.rs checks the register
        // plans at every row length). The executor binds windows holding every element a
        // planned dispatch touches (tests/executor.rs at the binding and dispatch
        // limits), and every loop is bounded by its uniforms, which the planner fills
        // within the loop budget.
        unsafe { self.shader_module_with(label, source, checks) }
    }

    /// A shader module from WGSL with every runtime check (the probes, and the caller's
    /// own WGSL through [`Context::compile_wgsl`]), compiled under emulated relaxed
    /// semantics in that test mode (where a source the pass cannot take is an error,
    /// never silently unrelaxed).
    pub(crate) fn shader_module(&self, label: &str, source: &str) -> Result<wgpu::ShaderModule> {
        // SAFETY: every check on.
        unsafe { self.shader_module_with(label, source, wgpu::ShaderRuntimeChecks::checked()) }
    }

    /// # Safety
    ///
    /// `source` must not do what the checks switched off in `checks` would catch (see
    /// `Device::create_shader_module_trusted`).
    unsafe fn shader_module_with(
        &self,
        label: &str,
        source: &str,
        checks: wgpu::ShaderRuntimeChecks,
    ) -> Result<wgpu::ShaderModule> {
        let source = if self.relaxed {
            let mut module = super::wgsl::parse(source)?;
            super::relaxed::relax(&mut module).map_err(|message| Error::Wgpu {
                message,
                source: None,
            })?;
            wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(module))
        } else {
            wgpu::ShaderSource::Wgsl(source.into())
        };
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source,
        };
        // SAFETY: the caller's contract.
        Ok(unsafe {
            self.device()
                .create_shader_module_trusted(descriptor, checks)
        })
    }

    /// Loads (or starts) the pipeline cache at `path`, before any pipeline is compiled.
    pub(super) fn open_pipeline_cache(&mut self, path: std::path::PathBuf) -> Result<()> {
        if !self
            .device()
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
                self.device()
                    .create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                        label: Some("wgpu-activations"),
                        data: data.as_deref(),
                        fallback: true,
                    })
            }
        })?;
        // The probes compiled before the cache existed; nothing else has.
        self.pipeline_cache = Some((cache, path));
        Ok(())
    }

    /// Whether this context compiles through a wgpu pipeline cache.
    pub fn has_pipeline_cache(&self) -> bool {
        self.pipeline_cache.is_some()
    }

    /// Writes the pipeline cache to the file named in
    /// [`ContextOptions::pipeline_cache`](crate::ContextOptions::pipeline_cache) (whole or
    /// not at all: through a temporary file and a rename). Returns whether anything was
    /// written (nothing without a cache, or when the driver gives no data).
    pub fn save_pipeline_cache(&self) -> Result<bool> {
        let Some((cache, path)) = &self.pipeline_cache else {
            return Ok(false);
        };
        let Some(data) = cache.get_data() else {
            return Ok(false);
        };
        crate::files::write_whole(path, &data)?;
        Ok(true)
    }
}
