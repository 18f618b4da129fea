//! The softmax family: `softmax`, `log_softmax` and `softmin` along any axis, forward
//! (`shaders/softmax.wgsl`) and backward from the saved output y
//! (`shaders/softmax_backward.wgsl`).
//!
//! A tensor is viewed as (outer, axis, inner) ([`RowView`]) and each of its `outer *
//! inner` rows is normalised where it lies, strided when the axis is not the last, so no
//! transpose is needed. Pieces hold whole (axis x inner) slabs. A [`Strategy`] (a
//! parameter of the call; `softmax_strategy.rs` holds the choice) picks how rows map onto
//! invocations and which entry points run.

use super::softmax_strategy::{self as strategy, RowPlan, Strategy};
use super::{Compiled, Entry, Family, Module};
use crate::device::layout::Group1;
use crate::device::wgsl::{ModuleSpec, Prelude};
use crate::exec::{Cut, Group1Binding, Launch, Planner};
use crate::op::SoftmaxKind;
use crate::{Context, Direction, Result, RowView, Storage};

const SOFTMAX_WGSL: &str = include_str!("../../shaders/softmax.wgsl");
const SOFTMAX_SUBGROUP_WGSL: &str = include_str!("../../shaders/softmax_subgroup.wgsl");
const SOFTMAX_BACKWARD_WGSL: &str = include_str!("../../shaders/softmax_backward.wgsl");
const SOFTMAX_BACKWARD_SUBGROUP_WGSL: &str =
    include_str!("../../shaders/softmax_backward_subgroup.wgsl");

uniforms! {
    /// `Rows` of `shaders/softmax.wgsl`.
    struct Forward = "Rows" {
        rows: u32,
        axis: u32,
        inner: u32,
        in_offset: u32,
        out_offset: u32,
        chunk_len: u32,
        chunks: u32,
        one: u32,
        lanes: u32,
        per_lane: u32,
        interleave: u32,
        pad0: u32,
    }
}

uniforms! {
    /// `Rows` of `shaders/softmax_backward.wgsl`.
    struct Backward = "Rows" {
        rows: u32,
        axis: u32,
        inner: u32,
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        chunk_len: u32,
        chunks: u32,
        one: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

static FORWARD: Module = Module::new("softmax", forward_source, &Forward::BLOCK);

static BACKWARD: Module = Module::new("softmax backward", backward_source, &Backward::BLOCK);

const fn forward(name: &'static str, group1: Group1) -> Entry {
    Entry::new(&FORWARD, name, group1)
}

const fn backward(name: &'static str, group1: Group1) -> Entry {
    Entry::new(&BACKWARD, name, group1)
}

const LANE: Entry = forward("softmax_lane", Group1::None);
/// One subgroup per row (modules with subgroup operations only).
const SUBGROUP: Entry = forward("softmax_subgroup", Group1::None).with_subgroups();
const WORKGROUP: Entry = forward("softmax_workgroup", Group1::None);
const RESIDENT: Entry = forward("softmax_resident", Group1::None);
const SPLIT: [Entry; 2] = [
    forward("softmax_split_stats", Group1::Partials),
    forward("softmax_split_write", Group1::Partials),
];
/// The row in registers over a segment of lanes, moving single elements or vec4s.
const REGISTERS: [Entry; 2] = [
    forward("softmax_registers", Group1::None),
    forward("softmax_registers_vec4", Group1::None),
];
/// Split's two passes with each chunk in registers over the workgroup, by single
/// elements or vec4s.
const SPLIT_REGISTERS: [[Entry; 2]; 2] = [
    [
        forward("softmax_split_stats_registers", Group1::Partials),
        forward("softmax_split_write_registers", Group1::Partials),
    ],
    [
        forward("softmax_split_stats_registers_vec4", Group1::Partials),
        forward("softmax_split_write_registers_vec4", Group1::Partials),
    ],
];
const GRAD_LANE: Entry = backward("softmax_grad_lane", Group1::None);
const GRAD_SUBGROUP: Entry = backward("softmax_grad_subgroup", Group1::None).with_subgroups();
const GRAD_WORKGROUP: Entry = backward("softmax_grad_workgroup", Group1::None);
const GRAD_SPLIT: [Entry; 2] = [
    backward("softmax_grad_split_stats", Group1::Partials),
    backward("softmax_grad_split_write", Group1::Partials),
];

pub(super) const FAMILY: Family = Family {
    serves: |op, params| op.softmax().is_some() && params.is_none(),
    plan,
    forward: &[Compiled::forward(&[
        LANE,
        WORKGROUP,
        RESIDENT,
        SPLIT[0],
        SPLIT[1],
        REGISTERS[0],
        SPLIT_REGISTERS[0][0],
        SPLIT_REGISTERS[0][1],
        REGISTERS[1],
        SPLIT_REGISTERS[1][0],
        SPLIT_REGISTERS[1][1],
        SUBGROUP,
    ])],
    backward: &[Compiled::backward(&[
        GRAD_LANE,
        GRAD_WORKGROUP,
        GRAD_SPLIT[0],
        GRAD_SPLIT[1],
        GRAD_SUBGROUP,
    ])],
    strategies: true,
    extra_output: false,
};

/// The entry points a strategy runs, in order (Split: statistics, then the write); `vec4`
/// picks the register kernels' 16-byte ones. The backward has no Resident or register
/// kernels ([`strategy::resolve`] never gives them there).
fn kernels(strategy: Strategy, vec4: bool, direction: Direction) -> Vec<Entry> {
    let v = usize::from(vec4);
    match (direction, strategy) {
        (Direction::Forward, Strategy::Lane) => vec![LANE],
        (Direction::Forward, Strategy::Subgroup) => vec![SUBGROUP],
        (Direction::Forward, Strategy::Workgroup) => vec![WORKGROUP],
        (Direction::Forward, Strategy::Resident) => vec![RESIDENT],
        (Direction::Forward, Strategy::Registers) => vec![REGISTERS[v]],
        (Direction::Forward, Strategy::SplitRegisters) => SPLIT_REGISTERS[v].to_vec(),
        (Direction::Forward, _) => SPLIT.to_vec(),
        (Direction::Backward, Strategy::Lane) => vec![GRAD_LANE],
        (Direction::Backward, Strategy::Subgroup) => vec![GRAD_SUBGROUP],
        (Direction::Backward, Strategy::Split | Strategy::SplitRegisters) => GRAD_SPLIT.to_vec(),
        (Direction::Backward, _) => vec![GRAD_WORKGROUP],
    }
}

/// The family's constants: `SIGN` (-1 for softmin, softmax of -x) and `LOG_OUTPUT`
/// (log_softmax).
fn softmax_consts(spec: &ModuleSpec) -> Prelude {
    let kind = spec.op.softmax().expect("a softmax-family op");
    let sign = if kind == SoftmaxKind::Softmin {
        -1.0
    } else {
        1.0
    };
    Prelude::new(spec)
        .line(&format!("const SIGN: f32 = {sign:?};"))
        .line(&format!(
            "const LOG_OUTPUT: bool = {};",
            kind == SoftmaxKind::LogSoftmax
        ))
}

/// Every strategy's entry point, with subgroup or shared-memory-tree reductions. (naga 30
/// takes subgroup operations without `enable subgroups;`, which it rejects as not yet
/// implemented; wgpu gates them on `Features::SUBGROUP` instead.)
fn forward_source(spec: &ModuleSpec) -> String {
    let prelude = softmax_consts(spec).input(spec.layout, "shape");
    let reductions = prelude.reductions();
    let subgroup = if spec.subgroups {
        SOFTMAX_SUBGROUP_WGSL
    } else {
        ""
    };
    prelude.assemble(&[&reductions, SOFTMAX_WGSL, subgroup])
}

fn backward_source(spec: &ModuleSpec) -> String {
    let prelude = softmax_consts(spec).backward_inputs(spec.layout, "");
    let reductions = prelude.reductions();
    let subgroup = if spec.subgroups {
        SOFTMAX_BACKWARD_SUBGROUP_WGSL
    } else {
        ""
    };
    prelude.assemble(&[&reductions, SOFTMAX_BACKWARD_WGSL, subgroup])
}

/// The uniform block of a piece of `count` rows of `view`'s, planned as `rows` says, with
/// the tensors at `offsets` (the forward's two, or the backward's three).
fn block(count: u64, view: RowView, rows: &RowPlan, o: &[u32]) -> Vec<u8> {
    let (axis, inner) = (view.axis as u32, view.inner as u32);
    let (chunk_len, chunks) = (rows.chunk_len as u32, rows.chunks as u32);
    match *o {
        [in_offset, out_offset] => Forward {
            rows: count as u32,
            axis,
            inner,
            in_offset,
            out_offset,
            chunk_len,
            chunks,
            one: 1,
            lanes: rows.lanes as u32,
            per_lane: rows.vec4s_per_lane as u32,
            interleave: rows.interleaved.into(),
            pad0: 0,
        }
        .bytes(),
        [saved_offset, grad_offset, out_offset] => Backward {
            rows: count as u32,
            axis,
            inner,
            saved_offset,
            grad_offset,
            out_offset,
            chunk_len,
            chunks,
            one: 1,
            pad0: 0,
            pad1: 0,
            pad2: 0,
        }
        .bytes(),
        _ => unreachable!("a softmax-family call binds two or three tensors"),
    }
}

/// What `Auto` runs for `view` on this context: the tuned choice for its kind of call
/// where there is one that serves it (tuned now, where the context tunes on first use),
/// else the static table.
pub(crate) fn auto_or_tuned(
    ctx: &Context,
    view: RowView,
    storage: Storage,
    direction: Direction,
) -> Strategy {
    let key = crate::tuning::TuneKey::of(view, storage, direction);
    if ctx.tuning().claim_first_use(key) {
        ctx.tune_first_use(view, storage, direction);
    }
    match ctx.tuning().lookup(key) {
        Some(s) if strategy::serves(ctx, s, view, storage) => s,
        _ => strategy::auto(ctx, view, storage, direction),
    }
}

/// The view of a call's tensor along its op's `dim`.
pub(crate) fn view_of(activation: &crate::Activation, shape: &[usize]) -> Result<RowView> {
    RowView::new(shape, activation.dim(), crate::shape::element_count(shape)?)
}

/// Rows in a binding-sized piece of separate, aligned tensors of `view`'s in `storage`
/// (what [`crate::Call::row_plan`] plans for, without the caller's buffers).
pub(crate) fn piece_rows(ctx: &Context, view: RowView, storage: Storage) -> u64 {
    let limits = ctx.limits();
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let room = binding.saturating_sub(ctx.binding_alignment()) / 16 * (16 / storage.bytes());
    let slab = (view.axis * view.inner).max(1) as u64;
    (room / slab).min(view.outer as u64) * view.inner as u64
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let call = p.call;
    let view = view_of(&call.activation, call.shape)?;
    let slab = (view.axis * view.inner) as u64;
    let units = if view.is_empty() {
        0
    } else {
        view.outer as u64
    };
    let unit = format!("one {} x {} slab of the tensor", view.axis, view.inner);
    p.cut(Cut::units(units, slab, call.tensors.len(), unit))?;
    if view.is_empty() {
        return Ok(Launch::empty());
    }
    let ctx = p.ctx;
    let s = strategy::resolve(ctx, call.strategy, view, p.storage(), call.direction)?;
    // One chunking for every piece, planned for the largest.
    let piece_rows = p.per_piece().min(view.outer as u64) * view.inner as u64;
    let rows = strategy::row_plan(ctx, s, view, piece_rows);
    // the register kernels move vec4s where every piece's rows are contiguous and start
    // at multiples of 4 elements
    let vec4 = view.inner == 1
        && view.axis % 4 == 0
        && p.pieces()
            .iter()
            .all(|piece| piece.offsets.iter().all(|o| o % 4 == 0));
    let mut launch = Launch::empty();
    launch.entries = kernels(s, vec4, call.direction);
    if launch.entries[0].group1 == Group1::Partials {
        launch.group1 = vec![Group1Binding::Shared(piece_rows * rows.chunks * 16)];
    }
    for (i, piece) in p.pieces().iter().enumerate() {
        let count = piece.units * view.inner as u64;
        launch
            .uniforms
            .push(block(count, view, &rows, &piece.offsets));
        let groups = strategy::dispatch_groups(ctx, s, count, view, rows.chunks) as u32;
        for entry in 0..launch.entries.len() {
            launch.step(entry, i, groups);
        }
    }
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::layout::{Binding, Layout};
    use crate::op::Op;

    #[test]
    fn softmax_sources_pick_their_reduction() {
        let spec = |op, binding, subgroups| ModuleSpec {
            op,
            layout: Layout::One(binding),
            storage: Storage::F32,
            subgroups,
            workgroup_size: 256,
            register_vec4s: 8,
        };
        let tree = forward_source(&spec(Op::Softmax, Binding::Src, false));
        assert!(!tree.contains("enable subgroups") && !tree.contains("subgroupAdd"));
        let sg = forward_source(&spec(Op::Softmin, Binding::Dst, true));
        assert!(sg.contains("subgroupAdd"));
        assert!(sg.contains("const SIGN: f32 = -1.0;"));
        // in place: the input is read through the read-write binding
        assert!(sg.contains("dst_load(shape.in_offset"));
    }
}
