//! WGSL sources: the shared scalar library plus one template per kernel family, and naga
//! validation of every variant (no GPU needed).

use crate::cache::{Entry, Layout};
use crate::op::{Op, SoftmaxKind};
use crate::{Error, Result};

/// The scalar activation functions every kernel family calls.
pub const ACTIVATIONS_WGSL: &str = include_str!("../shaders/activations.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../shaders/elementwise.wgsl");
const SOFTMAX_WGSL: &str = include_str!("../shaders/softmax.wgsl");
const GROUPED_WGSL: &str = include_str!("../shaders/grouped.wgsl");
const PRELU_WGSL: &str = include_str!("../shaders/prelu.wgsl");
const RANDOM_WGSL: &str = include_str!("../shaders/random.wgsl");
const DICE_WGSL: &str = include_str!("../shaders/dice.wgsl");
/// Workgroup reductions through a shared-memory tree (any adapter).
pub const REDUCE_TREE_WGSL: &str = include_str!("../shaders/reduce_tree.wgsl");
/// Workgroup reductions with subgroup operations (adapters with `Features::SUBGROUP`).
pub const REDUCE_SUBGROUP_WGSL: &str = include_str!("../shaders/reduce_subgroup.wgsl");
/// Reductions built on either flavour (the compensated sum).
pub const REDUCE_COMMON_WGSL: &str = include_str!("../shaders/reduce_common.wgsl");

/// Contiguous vec4s each invocation of the elementwise kernel takes per grid step (the
/// body below is written out for 4).
pub const VEC4S_PER_INVOCATION: u32 = 4;

/// Elements each invocation holds in registers in the resident softmax strategy.
pub const RESIDENT_K: u32 = 16;

/// The complete WGSL of the elementwise kernel for `op`, as the pipeline cache compiles it.
///
/// # Panics
/// If `op` is not an elementwise op.
pub fn elementwise_source(op: Op, layout: Layout, workgroup_size: u32) -> String {
    let (wgsl, _) = op
        .elementwise()
        .expect("elementwise_source needs an elementwise op");
    let (src4, src1) = match layout {
        Layout::Separate => ("src4", "src1"),
        Layout::Shared => ("dst4", "dst1"),
    };
    let kernel = ELEMENTWISE_WGSL
        .replace("ACT(", &format!("{wgsl}("))
        .replace("WORKGROUP_SIZE", &format!("{workgroup_size}u"))
        .replace("VEC4S_PER_INVOCATION", &format!("{VEC4S_PER_INVOCATION}u"))
        .replace("SRC4", src4)
        .replace("SRC1", src1);
    format!("{ACTIVATIONS_WGSL}\n{kernel}")
}

/// The complete WGSL of the softmax-family kernels for `op` (every strategy's entry
/// point), with subgroup or shared-memory-tree reductions.
///
/// # Panics
/// If `op` is not a softmax-family op.
pub fn softmax_source(op: Op, layout: Layout, workgroup_size: u32, subgroups: bool) -> String {
    let kind = op
        .softmax()
        .expect("softmax_source needs a softmax-family op");
    let sign = if kind == SoftmaxKind::Softmin {
        -1.0
    } else {
        1.0
    };
    let log = kind == SoftmaxKind::LogSoftmax;
    let src = match layout {
        Layout::Separate => "src",
        Layout::Shared => "dst",
    };
    let kernel = SOFTMAX_WGSL
        .replace("SRC[", &format!("{src}["))
        .replace("RESIDENT_K", &format!("{RESIDENT_K}u"));
    // naga 30 takes subgroup operations without `enable subgroups;` (which it rejects as
    // not yet implemented); wgpu gates them on `Features::SUBGROUP` instead.
    let reduce = reduce_wgsl(subgroups);
    format!(
        "{ACTIVATIONS_WGSL}\n{reduce}\nconst SIGN: f32 = {sign:?};\n\
         const LOG_OUTPUT: bool = {log};\n{kernel}"
    )
    .replace("WORKGROUP_SIZE", &format!("{workgroup_size}u"))
}

/// The complete WGSL of the grouped kernel for `op` (maxout, folding, glu).
///
/// # Panics
/// If `op` is not a grouped op.
pub fn grouped_source(op: Op, workgroup_size: u32, subgroups: bool) -> String {
    let kind = op.grouped().expect("grouped_source needs a grouped op");
    format!(
        "{ACTIVATIONS_WGSL}\n{}\nconst GROUP_KIND: u32 = {}u;\n{GROUPED_WGSL}",
        reduce_wgsl(subgroups),
        kind.id()
    )
    .replace("WORKGROUP_SIZE", &format!("{workgroup_size}u"))
}

/// The workgroup reductions, with subgroup operations or through a shared-memory tree,
/// and those built on either.
fn reduce_wgsl(subgroups: bool) -> String {
    let flavour = if subgroups {
        REDUCE_SUBGROUP_WGSL
    } else {
        REDUCE_TREE_WGSL
    };
    format!("{flavour}\n{REDUCE_COMMON_WGSL}")
}

/// The complete WGSL of the per-channel PReLU kernel.
pub fn prelu_source(layout: Layout, workgroup_size: u32) -> String {
    with_input_binding(
        &format!("{ACTIVATIONS_WGSL}\n{PRELU_WGSL}"),
        layout,
        workgroup_size,
    )
}

/// The complete WGSL of a random op's kernel.
///
/// # Panics
/// If `op` is not a random op.
pub fn random_source(op: Op, layout: Layout, workgroup_size: u32) -> String {
    let kind = op.random().expect("random_source needs a random op");
    with_input_binding(
        &format!(
            "{ACTIVATIONS_WGSL}\nconst RANDOM_KIND: u32 = {}u;\n{RANDOM_WGSL}",
            kind.id()
        ),
        layout,
        workgroup_size,
    )
}

/// Reads the input through `src`, or through `dst` when it shares the output's binding.
fn with_input_binding(source: &str, layout: Layout, workgroup_size: u32) -> String {
    let src = match layout {
        Layout::Separate => "src",
        Layout::Shared => "dst",
    };
    source
        .replace("SRC[", &format!("{src}["))
        .replace("WORKGROUP_SIZE", &format!("{workgroup_size}u"))
}

/// The WGSL of the module holding `entry` for `op` with this layout: one exhaustive match
/// on the entry point, which names its family's shader.
pub(crate) fn module_source(op: Op, layout: Layout, entry: Entry, workgroup_size: u32) -> String {
    let subgroups = entry.subgroups();
    match entry {
        Entry::Vec4 | Entry::Scalar => elementwise_source(op, layout, workgroup_size),
        Entry::Prelu => prelu_source(layout, workgroup_size),
        Entry::Row { .. } => softmax_source(op, layout, workgroup_size, subgroups),
        Entry::Grouped | Entry::GroupedWg { .. } => grouped_source(op, workgroup_size, subgroups),
        Entry::Random => random_source(op, layout, workgroup_size),
        Entry::DiceStats
        | Entry::DiceApply
        | Entry::DiceEval
        | Entry::DiceStatsAlpha
        | Entry::DiceApplyAlpha
        | Entry::DiceStatsWg { .. } => dice_source(layout, workgroup_size, subgroups),
    }
}

/// The complete WGSL of dice's kernels (statistics, elementwise pass, evaluation mode).
pub fn dice_source(layout: Layout, workgroup_size: u32, subgroups: bool) -> String {
    with_input_binding(
        &format!(
            "{ACTIVATIONS_WGSL}\n{}\n{DICE_WGSL}",
            reduce_wgsl(subgroups)
        ),
        layout,
        workgroup_size,
    )
}

/// The WGSL this crate compiles for `op`'s main entry point with this layout (and
/// reduction flavour, for the families that reduce).
pub fn source(op: Op, layout: Layout, workgroup_size: u32, subgroups: bool) -> String {
    let pipelines = crate::cache::pipelines(op, subgroups);
    let pick = |flavour: bool| {
        pipelines
            .iter()
            .find(|(l, e)| *l == layout && (!flavour || e.subgroups() == subgroups))
    };
    let &(layout, entry) = pick(true)
        .or_else(|| pick(false))
        .or(pipelines.first())
        .expect("every family compiles at least one pipeline");
    module_source(op, layout, entry, workgroup_size)
}

/// Parses and validates WGSL with naga, as wgpu would before compiling it.
pub fn validate_wgsl(source: &str) -> Result<()> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
        report: format!("WGSL parse error: {}", e.emit_to_string(source)),
        source: Box::new(e),
    })?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::SUBGROUP,
    )
    .validate(&module)
    .map_err(|e| Error::Shader {
        report: format!("WGSL validation error: {}", e.emit_to_string(source)),
        source: Box::new(e.into_inner()),
    })?;
    Ok(())
}

/// Validates every shader module this crate can compile, for every op, layout and
/// reduction flavour (the modules [`crate::Context::warm_up`] compiles, with and without
/// subgroups), each once.
pub fn validate_all(workgroup_size: u32) -> Result<()> {
    for &op in Op::ALL {
        let mut seen = std::collections::HashSet::new();
        for subgroups in [false, true] {
            for (layout, entry) in crate::cache::pipelines(op, subgroups) {
                let source = module_source(op, layout, entry, workgroup_size);
                if !seen.insert(source.clone()) {
                    continue;
                }
                validate_wgsl(&source).map_err(|e| match e {
                    Error::Shader { report, source } => Error::Shader {
                        report: format!("{} ({layout:?}, {entry:?}): {report}", op.name()),
                        source,
                    },
                    other => other,
                })?;
            }
        }
    }
    Ok(())
}
