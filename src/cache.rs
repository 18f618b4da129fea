//! The pipeline cache: each (kernel, op, variant) compiled once per context, shared across
//! threads.
//!
//! Lookups take a read lock; a miss takes the compile lock, checks again (another thread
//! may have compiled the same key meanwhile), compiles, and publishes. Compilation runs in
//! a wgpu error scope, so a shader or pipeline error comes back as [`Error::Wgpu`] instead
//! of reaching the device's uncaptured-error handler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::op::Op;
use crate::{Error, Result, Storage};

/// Which bind-group layout a kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Input read-only at binding 0, output read-write at binding 1.
    Separate,
    /// One read-write buffer at binding 1 holds input and output (in place).
    Shared,
    /// A backward kernel's: grad_input read-write at binding 1, the saved tensor and
    /// grad_output each read through the binding named (binding 1 where they share
    /// grad_input's buffer: one buffer may not be bound read-only and writable at once).
    Backward {
        /// Where the saved tensor (x or y) is read.
        saved: Via,
        /// Where grad_output is read.
        grad: Via,
    },
}

/// The binding a backward kernel reads one of its inputs through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// Binding 0, read-only.
    Input,
    /// Binding 1, the output's (the same buffer as grad_input).
    Output,
    /// Binding 3, read-only (the second separate input).
    Aux,
}

impl Via {
    /// The binding number.
    pub(crate) fn binding(self) -> u32 {
        match self {
            Via::Input => 0,
            Via::Output => 1,
            Via::Aux => 3,
        }
    }

    /// The WGSL name of the binding's arrays (`src`, `dst`, `aux`, with `1` or `4`).
    pub(crate) fn wgsl(self) -> &'static str {
        match self {
            Via::Input => "src",
            Via::Output => "dst",
            Via::Aux => "aux",
        }
    }
}

/// The bind-group layouts of group 0: which storage bindings a [`Layout`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Group0 {
    /// Bindings 0 (read-only), 1 and the uniforms.
    Separate,
    /// Binding 1 and the uniforms.
    Shared,
    /// Bindings 0 and 3 (read-only), 1 and the uniforms.
    Triple,
}

/// One binding of a bind-group layout: a storage buffer read-only or read-write, or a
/// uniform buffer, at its binding number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Read(u32),
    Write(u32),
    Uniform(u32),
}

impl Group0 {
    pub(crate) const ALL: [Group0; 3] = [Group0::Separate, Group0::Shared, Group0::Triple];

    /// The group's bindings, and a label for its layout.
    pub(crate) fn slots(self) -> (&'static str, &'static [Slot]) {
        use Slot::*;
        match self {
            Group0::Separate => ("input and output", &[Read(0), Write(1), Uniform(2)]),
            Group0::Shared => ("input in the output", &[Write(1), Uniform(2)]),
            Group0::Triple => (
                "backward, two inputs",
                &[Read(0), Write(1), Uniform(2), Read(3)],
            ),
        }
    }
}

impl Layout {
    /// The backward layout for inputs that do or do not share grad_input's buffer: one
    /// that shares it is read through binding 1, the others through their own (0, then
    /// 3).
    pub(crate) fn backward(saved_shares: bool, grad_shares: bool) -> Layout {
        let saved = if saved_shares {
            Via::Output
        } else {
            Via::Input
        };
        let grad = if grad_shares {
            Via::Output
        } else if saved == Via::Input {
            Via::Aux
        } else {
            Via::Input
        };
        Layout::Backward { saved, grad }
    }

    /// Every backward layout: grad_input's buffer shared by neither input, by grad_output
    /// (in place on it), by the saved tensor, or by both.
    pub(crate) const BACKWARD: [Layout; 4] = [
        Layout::Backward {
            saved: Via::Input,
            grad: Via::Aux,
        },
        Layout::Backward {
            saved: Via::Input,
            grad: Via::Output,
        },
        Layout::Backward {
            saved: Via::Output,
            grad: Via::Input,
        },
        Layout::Backward {
            saved: Via::Output,
            grad: Via::Output,
        },
    ];

    /// The storage bindings of group 0.
    pub(crate) fn group0(self) -> Group0 {
        match self {
            Layout::Separate => Group0::Separate,
            Layout::Shared => Group0::Shared,
            Layout::Backward { saved, grad } => {
                if saved == Via::Aux || grad == Via::Aux {
                    Group0::Triple
                } else if saved == Via::Input || grad == Via::Input {
                    Group0::Separate
                } else {
                    Group0::Shared
                }
            }
        }
    }
}

/// A kernel entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    Vec4,
    Scalar,
    /// A softmax-family entry point, reducing with subgroup operations or not.
    Row {
        kernel: RowKernel,
        subgroups: bool,
    },
    /// The grouped ops' kernel (one invocation per output).
    Grouped,
    /// The grouped ops with one workgroup per output (large groups), reducing with
    /// subgroup operations or not.
    GroupedWg {
        subgroups: bool,
    },
    /// PReLU with per-channel weights (a second bind group).
    Prelu,
    /// The random ops' kernel.
    Random,
    /// Dice's statistics, one of its four passes (partial sums, the mean, partial sums of
    /// squared deviations, the variance), over the partials layout (`alpha: false`) or
    /// the per-feature-alpha one.
    DiceStats {
        pass: DicePass,
        alpha: bool,
    },
    /// Dice's elementwise pass (the statistics in bind group 1).
    DiceApply,
    /// Dice in evaluation mode (running statistics in bind group 1).
    DiceEval,
    /// Dice's elementwise pass with a per-feature alpha (bind group 1: statistics, alpha).
    DiceApplyAlpha,
    /// The elementwise backward, over vec4s and over single elements.
    GradVec4,
    GradScalar,
    /// A softmax-family backward entry point (`Resident` has none).
    GradRow {
        kernel: RowKernel,
        subgroups: bool,
    },
    /// The grouped ops' backward: one invocation per group, or one workgroup per group
    /// (large groups), in a module reducing with subgroups or not.
    GradGrouped {
        subgroups: bool,
    },
    GradGroupedWg {
        subgroups: bool,
    },
    /// The random ops' backward (the forward's draws again).
    GradRandom,
    /// PReLU's backward with per-channel weights: grad_input and partial weight sums,
    /// then the weight gradient per channel.
    GradPrelu {
        subgroups: bool,
    },
    GradPreluWeight {
        subgroups: bool,
    },
    /// Dice's backward: per-feature statistics and sums (one invocation, or one
    /// workgroup, per feature), then grad_input per element.
    GradDiceColumn {
        subgroups: bool,
    },
    GradDiceColumnWg {
        subgroups: bool,
    },
    GradDiceApply {
        subgroups: bool,
    },
}

/// The passes of dice's statistics, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DicePass {
    Sums,
    Mean,
    Squares,
    Variance,
}

impl DicePass {
    pub(crate) const ALL: [DicePass; 4] = [
        DicePass::Sums,
        DicePass::Mean,
        DicePass::Squares,
        DicePass::Variance,
    ];
}

/// The entry points of `shaders/softmax.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKernel {
    Lane,
    /// One subgroup per row (modules with subgroup operations only).
    Subgroup,
    Workgroup,
    Resident,
    SplitStats,
    SplitWrite,
    /// The row in registers over a segment of lanes, moving vec4s or single elements.
    Registers {
        vec4: bool,
    },
    /// Split's two passes with each chunk in registers over the workgroup.
    SplitStatsRegisters {
        vec4: bool,
    },
    SplitWriteRegisters {
        vec4: bool,
    },
}

impl Entry {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Entry::Vec4 => "main_vec4",
            Entry::Scalar => "main_scalar",
            Entry::Grouped => "grouped_lane",
            Entry::GroupedWg { .. } => "grouped_workgroup",
            Entry::DiceStats { pass, .. } => match pass {
                DicePass::Sums => "dice_sums",
                DicePass::Mean => "dice_mean",
                DicePass::Squares => "dice_squares",
                DicePass::Variance => "dice_variance",
            },
            Entry::Prelu => "prelu_main",
            Entry::Random => "random_main",
            Entry::DiceApply => "dice_apply",
            Entry::DiceEval => "dice_eval",
            Entry::DiceApplyAlpha => "dice_apply_alpha",
            Entry::GradVec4 => "grad_vec4",
            Entry::GradScalar => "grad_scalar",
            Entry::GradGrouped { .. } => "grouped_grad_lane",
            Entry::GradRandom => "random_grad",
            Entry::GradPrelu { .. } => "prelu_grad",
            Entry::GradPreluWeight { .. } => "prelu_grad_weight",
            Entry::GradDiceColumn { .. } => "dice_grad_column",
            Entry::GradDiceColumnWg { .. } => "dice_grad_column_wg",
            Entry::GradDiceApply { .. } => "dice_grad_apply",
            Entry::GradGroupedWg { .. } => "grouped_grad_workgroup",
            Entry::GradRow { kernel, .. } => match kernel {
                RowKernel::Lane => "softmax_grad_lane",
                RowKernel::Subgroup => "softmax_grad_subgroup",
                RowKernel::Workgroup | RowKernel::Resident | RowKernel::Registers { .. } => {
                    "softmax_grad_workgroup"
                }
                RowKernel::SplitStatsRegisters { .. } => "softmax_grad_split_stats",
                RowKernel::SplitWriteRegisters { .. } => "softmax_grad_split_write",
                RowKernel::SplitStats => "softmax_grad_split_stats",
                RowKernel::SplitWrite => "softmax_grad_split_write",
            },
            Entry::Row { kernel, .. } => match kernel {
                RowKernel::Lane => "softmax_lane",
                RowKernel::Subgroup => "softmax_subgroup",
                RowKernel::Workgroup => "softmax_workgroup",
                RowKernel::Resident => "softmax_resident",
                RowKernel::SplitStats => "softmax_split_stats",
                RowKernel::SplitWrite => "softmax_split_write",
                RowKernel::Registers { vec4: false } => "softmax_registers",
                RowKernel::Registers { vec4: true } => "softmax_registers_vec4",
                RowKernel::SplitStatsRegisters { vec4: false } => "softmax_split_stats_registers",
                RowKernel::SplitStatsRegisters { vec4: true } => {
                    "softmax_split_stats_registers_vec4"
                }
                RowKernel::SplitWriteRegisters { vec4: false } => "softmax_split_write_registers",
                RowKernel::SplitWriteRegisters { vec4: true } => {
                    "softmax_split_write_registers_vec4"
                }
            },
        }
    }

    /// Which way the entry point runs.
    pub(crate) fn direction(self) -> Direction {
        match self {
            Entry::GradVec4
            | Entry::GradScalar
            | Entry::GradRow { .. }
            | Entry::GradGrouped { .. }
            | Entry::GradGroupedWg { .. }
            | Entry::GradRandom
            | Entry::GradPrelu { .. }
            | Entry::GradPreluWeight { .. }
            | Entry::GradDiceColumn { .. }
            | Entry::GradDiceColumnWg { .. }
            | Entry::GradDiceApply { .. } => Direction::Backward,
            _ => Direction::Forward,
        }
    }

    /// The shader family whose module holds the entry point (with the op, layout and
    /// reduction flavour, it names the module).
    pub(crate) fn module(self) -> &'static str {
        match self {
            Entry::Vec4 | Entry::Scalar => "elementwise",
            Entry::GradVec4 | Entry::GradScalar => "backward",
            Entry::Prelu => "prelu",
            Entry::GradPrelu { .. } | Entry::GradPreluWeight { .. } => "prelu backward",
            Entry::Row { .. } => "softmax",
            Entry::GradRow { .. } => "softmax backward",
            Entry::Grouped | Entry::GroupedWg { .. } => "grouped",
            Entry::GradGrouped { .. } | Entry::GradGroupedWg { .. } => "grouped backward",
            Entry::Random => "random",
            Entry::GradRandom => "random backward",
            Entry::GradDiceColumn { .. }
            | Entry::GradDiceColumnWg { .. }
            | Entry::GradDiceApply { .. } => "dice backward",
            Entry::DiceStats { .. }
            | Entry::DiceApply
            | Entry::DiceEval
            | Entry::DiceApplyAlpha => "dice",
        }
    }

    /// Whether the module is built with subgroup operations.
    pub(crate) fn subgroups(self) -> bool {
        matches!(
            self,
            Entry::Row {
                subgroups: true,
                ..
            } | Entry::GradRow {
                subgroups: true,
                ..
            } | Entry::GroupedWg { subgroups: true }
                | Entry::GradGrouped { subgroups: true }
                | Entry::GradGroupedWg { subgroups: true }
                | Entry::GradPrelu { subgroups: true }
                | Entry::GradPreluWeight { subgroups: true }
                | Entry::GradDiceColumn { subgroups: true }
                | Entry::GradDiceColumnWg { subgroups: true }
                | Entry::GradDiceApply { subgroups: true }
        )
    }
}

/// One shader module per (op, layout, subgroups, module family, storage): entry points of a module
/// share it.
pub(crate) type ModuleKey = (Op, Layout, bool, &'static str, Storage);

/// Bind group 1 of an entry point: none, or the family's extra data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Group1 {
    None,
    /// The split softmax's (or dice's) per-chunk partials.
    Partials,
    /// PReLU's weights.
    Weights,
    /// Dice's running statistics and alpha (evaluation mode).
    DiceEval,
    /// Dice's statistics and per-feature alpha (training mode).
    DiceAlpha,
    /// PReLU's backward: the weights, per-(channel, slice) partial sums and the weight
    /// gradient.
    PreluGrad,
    /// Dice's backward: per-feature sums, alpha, grad_alpha, and the running mean and
    /// variance (evaluation mode).
    DiceGrad,
}

impl Group1 {
    pub(crate) const ALL: [Group1; 7] = [
        Group1::None,
        Group1::Partials,
        Group1::Weights,
        Group1::DiceEval,
        Group1::DiceAlpha,
        Group1::PreluGrad,
        Group1::DiceGrad,
    ];

    /// The group's bindings, and a label for its layout (`None` has no group 1).
    pub(crate) fn slots(self) -> (&'static str, &'static [Slot]) {
        use Slot::*;
        match self {
            Group1::None => ("", &[]),
            Group1::Partials => ("partials", &[Write(0)]),
            Group1::Weights => ("prelu weights", &[Read(0)]),
            Group1::DiceEval => ("dice running statistics", &[Read(0), Read(1), Read(2)]),
            Group1::DiceAlpha => ("dice statistics and alpha", &[Write(0), Read(1)]),
            Group1::PreluGrad => (
                "prelu weights, partial sums and weight gradient",
                &[Read(0), Write(1), Write(2)],
            ),
            Group1::DiceGrad => (
                "dice backward",
                &[Write(0), Read(1), Write(2), Read(3), Read(4)],
            ),
        }
    }
}

/// The storage buffers among `slots` (what the per-stage limit counts).
pub(crate) fn storage_buffers(slots: &[Slot]) -> u32 {
    slots
        .iter()
        .filter(|s| !matches!(s, Slot::Uniform(_)))
        .count() as u32
}

impl Entry {
    /// The entry's bind group 1: one exhaustive match, from which the pipeline layout
    /// follows.
    pub(crate) fn group1(self) -> Group1 {
        match self {
            Entry::Vec4 | Entry::Scalar | Entry::Grouped | Entry::GroupedWg { .. } => Group1::None,
            Entry::Random | Entry::GradVec4 | Entry::GradScalar => Group1::None,
            Entry::GradGrouped { .. } | Entry::GradGroupedWg { .. } | Entry::GradRandom => {
                Group1::None
            }
            Entry::GradPrelu { .. } | Entry::GradPreluWeight { .. } => Group1::PreluGrad,
            Entry::GradDiceColumn { .. }
            | Entry::GradDiceColumnWg { .. }
            | Entry::GradDiceApply { .. } => Group1::DiceGrad,
            Entry::Row { kernel, .. } | Entry::GradRow { kernel, .. } => match kernel {
                RowKernel::SplitStats
                | RowKernel::SplitWrite
                | RowKernel::SplitStatsRegisters { .. }
                | RowKernel::SplitWriteRegisters { .. } => Group1::Partials,
                RowKernel::Lane
                | RowKernel::Subgroup
                | RowKernel::Workgroup
                | RowKernel::Resident
                | RowKernel::Registers { .. } => Group1::None,
            },
            Entry::Prelu => Group1::Weights,
            Entry::DiceStats { alpha: false, .. } | Entry::DiceApply => Group1::Partials,
            Entry::DiceEval => Group1::DiceEval,
            Entry::DiceStats { alpha: true, .. } | Entry::DiceApplyAlpha => Group1::DiceAlpha,
        }
    }
}

/// Every pipeline `op`'s family compiles, as (layout, entry point), with subgroup
/// reductions or without: the one place that knows which entry points each family has.
/// Warm-up, naga validation and the shader sources all follow from it.
pub(crate) fn pipelines(op: Op, subgroups: bool) -> Vec<(Layout, Entry)> {
    use crate::op::Kernel;
    let both = |entries: &[Entry]| -> Vec<(Layout, Entry)> {
        [Layout::Separate, Layout::Shared]
            .into_iter()
            .flat_map(|l| entries.iter().map(move |&e| (l, e)))
            .collect()
    };
    match op.info().kernel {
        Kernel::Elementwise { .. } if op == Op::Prelu => {
            both(&[Entry::Vec4, Entry::Scalar, Entry::Prelu])
        }
        Kernel::Elementwise { .. } => both(&[Entry::Vec4, Entry::Scalar]),
        Kernel::Softmax(_) => {
            let mut kernels = vec![
                RowKernel::Lane,
                RowKernel::Workgroup,
                RowKernel::Resident,
                RowKernel::SplitStats,
                RowKernel::SplitWrite,
            ];
            for vec4 in [false, true] {
                kernels.extend([
                    RowKernel::Registers { vec4 },
                    RowKernel::SplitStatsRegisters { vec4 },
                    RowKernel::SplitWriteRegisters { vec4 },
                ]);
            }
            if subgroups {
                kernels.push(RowKernel::Subgroup);
            }
            let entries: Vec<Entry> = kernels
                .into_iter()
                .map(|kernel| Entry::Row { kernel, subgroups })
                .collect();
            both(&entries)
        }
        // one layout: the output never shares the input's binding
        Kernel::Grouped(_) => vec![
            (Layout::Separate, Entry::Grouped),
            (Layout::Separate, Entry::GroupedWg { subgroups }),
        ],
        Kernel::Random(_) => both(&[Entry::Random]),
        Kernel::Statistical => {
            let mut entries = vec![Entry::DiceApply, Entry::DiceEval, Entry::DiceApplyAlpha];
            for alpha in [false, true] {
                entries.extend(DicePass::ALL.map(|pass| Entry::DiceStats { pass, alpha }));
            }
            both(&entries)
        }
    }
}

/// Every backward pipeline `op`'s family compiles, as (layout, entry point): the
/// backward counterpart of [`pipelines`].
pub(crate) fn backward_pipelines(op: Op, subgroups: bool) -> Vec<(Layout, Entry)> {
    use crate::op::Kernel;
    match op.info().kernel {
        Kernel::Elementwise { .. } if op == Op::Prelu => Layout::BACKWARD
            .into_iter()
            .flat_map(|l| {
                [
                    (l, Entry::GradVec4),
                    (l, Entry::GradScalar),
                    (l, Entry::GradPrelu { subgroups }),
                    (l, Entry::GradPreluWeight { subgroups }),
                ]
            })
            .collect(),
        Kernel::Elementwise { .. } => Layout::BACKWARD
            .into_iter()
            .flat_map(|l| [(l, Entry::GradVec4), (l, Entry::GradScalar)])
            .collect(),
        Kernel::Softmax(_) => {
            let mut kernels = vec![
                RowKernel::Lane,
                RowKernel::Workgroup,
                RowKernel::SplitStats,
                RowKernel::SplitWrite,
            ];
            if subgroups {
                kernels.push(RowKernel::Subgroup);
            }
            Layout::BACKWARD
                .into_iter()
                .flat_map(|l| {
                    kernels
                        .iter()
                        .map(move |&kernel| (l, Entry::GradRow { kernel, subgroups }))
                })
                .collect()
        }
        // grad_output is never read through grad_input's binding (it is staged instead:
        // its length differs); the saved input may be grad_input's range (in place)
        Kernel::Grouped(_) => [Layout::BACKWARD[0], Layout::BACKWARD[2]]
            .into_iter()
            .flat_map(|l| {
                [
                    (l, Entry::GradGrouped { subgroups }),
                    (l, Entry::GradGroupedWg { subgroups }),
                ]
            })
            .collect(),
        Kernel::Random(_) => Layout::BACKWARD
            .into_iter()
            .map(|l| (l, Entry::GradRandom))
            .collect(),
        Kernel::Statistical => Layout::BACKWARD
            .into_iter()
            .flat_map(|l| {
                [
                    (l, Entry::GradDiceColumn { subgroups }),
                    (l, Entry::GradDiceColumnWg { subgroups }),
                    (l, Entry::GradDiceApply { subgroups }),
                ]
            })
            .collect(),
    }
}

/// What distinguishes one compiled pipeline from another. Parameters are not part of it:
/// they travel in a uniform buffer, so changing `alpha` compiles nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// The op (its row in the table).
    pub op: Op,
    /// Where the input is read from.
    pub layout: Layout,
    /// The entry point.
    pub entry: Entry,
    /// Forward (today's kernels); the gradients issue adds the backward direction.
    pub direction: Direction,
    /// The element type of the tensors it loads and stores.
    pub storage: Storage,
}

impl PipelineKey {
    /// The pipeline of `entry` for `op` on tensors of `storage` (its direction is the
    /// entry's).
    pub fn new(op: Op, layout: Layout, entry: Entry, storage: Storage) -> Self {
        PipelineKey {
            op,
            layout,
            entry,
            direction: entry.direction(),
            storage,
        }
    }
}

/// Which way a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `y = f(x)`.
    Forward,
    /// `grad_input` from the saved tensor and `grad_output`.
    Backward,
}

/// Hit and miss counts since the context was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that compiled a pipeline (each key misses exactly once).
    pub misses: u64,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    pipelines: RwLock<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// Held while compiling; guards the shader modules, which only compiles touch.
    compile: Mutex<HashMap<ModuleKey, wgpu::ShaderModule>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PipelineCache {
    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The pipeline for `key`, compiling it with `build` on the first request.
    pub(crate) fn get_or_compile(
        &self,
        key: PipelineKey,
        build: impl FnOnce(&mut HashMap<ModuleKey, wgpu::ShaderModule>) -> Result<wgpu::ComputePipeline>,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.read(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let mut modules = self.compile.lock().map_err(|_| poisoned())?;
        if let Some(p) = self.read(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(p);
        }
        let pipeline = Arc::new(build(&mut modules)?);
        self.pipelines
            .write()
            .map_err(|_| poisoned())?
            .insert(key, pipeline.clone());
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(pipeline)
    }

    fn read(&self, key: PipelineKey) -> Option<Arc<wgpu::ComputePipeline>> {
        self.pipelines.read().ok()?.get(&key).cloned()
    }
}

fn poisoned() -> Error {
    Error::Poisoned("compiling a pipeline")
}

/// One storage binding of a bind group: `size` bytes of `buffer` from `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StorageBinding {
    pub(crate) binding: u32,
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// What makes two recorded calls share a bind group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BindingKey {
    pub(crate) layout: Layout,
    pub(crate) storage: Vec<StorageBinding>,
    pub(crate) uniforms: Vec<u8>,
}

/// Bind groups the context keeps for repeated calls (each holds its buffers alive).
pub(crate) const BINDING_CACHE_ENTRIES: usize = 256;
