//! The grouped family: `maxout`, `fold_max`, `fold_min`, `fold_mean`, `glu` and the gated
//! units, each output reducing a group of inputs along one axis, so the axis shrinks
//! (`k`-fold, or 2-fold for the halves of `glu`). `shaders/grouped.wgsl` takes one
//! invocation per output, or one workgroup per output for large groups (or where one
//! invocation's loop would pass the loop budget); `shaders/grouped_backward.wgsl` one
//! invocation or workgroup per group, from the saved input x and grad_output (the
//! output's shape) into grad_input (the input's shape).

use super::{Compiled, Entry, Family, Module};
use crate::device::layout::{Binding, Group1, Layout};
use crate::device::wgsl::{ModuleSpec, Prelude, GRADIENTS_WGSL};
use crate::exec::{Cut, Launch, Planner};
use crate::op::{GroupKind, Op};
use crate::{Direction, Result, RowView};

const GROUPED_WGSL: &str = include_str!("../../shaders/grouped.wgsl");
const GROUPED_BACKWARD_WGSL: &str = include_str!("../../shaders/grouped_backward.wgsl");

uniforms! {
    /// `Groups` of `shaders/grouped.wgsl`.
    struct Forward = "Groups" {
        outputs: u32,
        k: u32,
        inner: u32,
        in_offset: u32,
        out_offset: u32,
        one: u32,
        pad0: u32,
        pad1: u32,
    }
}

uniforms! {
    /// `Groups` of `shaders/grouped_backward.wgsl`.
    struct Backward = "Groups" {
        outputs: u32,
        k: u32,
        inner: u32,
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        one: u32,
        pad0: u32,
    }
}

static FORWARD: Module = Module::new("grouped", forward_source, &Forward::BLOCK);

static BACKWARD: Module = Module::new("grouped backward", backward_source, &Backward::BLOCK);

/// One invocation per output (or group), and one workgroup per output (large groups).
const LANE: Entry = Entry::new(&FORWARD, "grouped_lane", Group1::None);
const WORKGROUP: Entry = Entry::new(&FORWARD, "grouped_workgroup", Group1::None);
const GRAD_LANE: Entry = Entry::new(&BACKWARD, "grouped_grad_lane", Group1::None);
const GRAD_WORKGROUP: Entry = Entry::new(&BACKWARD, "grouped_grad_workgroup", Group1::None);

pub(super) const FAMILY: Family = Family {
    serves: |op, params| op.grouped().is_some() && params.is_none(),
    plan,
    forward: &[Compiled {
        layouts: &[Layout::One(Binding::Src)],
        entries: &[LANE, WORKGROUP],
    }],
    backward: &[Compiled {
        layouts: &[Layout::BACKWARD[0], Layout::BACKWARD[2]],
        entries: &[GRAD_LANE, GRAD_WORKGROUP],
    }],
    strategies: false,
    extra_output: false,
};

/// The grouped kernels' ids (every kind's and this module's) and the gated units' gate:
/// the op table's WGSL function of their gate op (identity for the other kinds, whose
/// shaders never call it).
fn group_ids(spec: &ModuleSpec) -> (Prelude, GroupKind) {
    let kind = spec.op.grouped().expect("a grouped op");
    let gate = kind.gate().unwrap_or(Op::Identity);
    let (wgsl, _) = gate.elementwise().expect("a gate is an elementwise op");
    let prelude = Prelude::new(spec)
        .id("GROUP_MAX", GroupKind::Max.id())
        .id("GROUP_MIN", GroupKind::Min.id())
        .id("GROUP_MEAN", GroupKind::Mean.id())
        .id("GROUP_GLU", GroupKind::Glu.id())
        .id("GROUP_KIND", kind.id())
        .line(&format!("const GATED: bool = {};", kind.gate().is_some()))
        .line(&format!(
            "fn gate(a: f32) -> f32 {{ return {wgsl}(a, vec4<f32>(0.0)); }}"
        ));
    (prelude, kind)
}

fn forward_source(spec: &ModuleSpec) -> String {
    let (prelude, _) = group_ids(spec);
    let reductions = prelude.reductions();
    prelude.assemble(&[&reductions, GROUPED_WGSL])
}

fn backward_source(spec: &ModuleSpec) -> String {
    let (prelude, kind) = group_ids(spec);
    let gate = kind.gate().unwrap_or(Op::Identity);
    let (grad, _) = gate
        .elementwise_grad()
        .expect("a gate is an elementwise op");
    let prelude = prelude
        .line(&format!(
            "fn gate_grad(a: f32, g: f32) -> f32 {{ return {grad}(a, g, vec4<f32>(0.0)); }}"
        ))
        .backward_inputs(spec.layout, "");
    let reductions = prelude.reductions();
    prelude.assemble(&[GRADIENTS_WGSL, &reductions, GROUPED_BACKWARD_WGSL])
}

/// The call's shape in groups: (kind, view along the axis, k, input elements, elements
/// of input per unit). A unit is a group of `k x inner` inputs, contiguous and mapping to
/// `inner` contiguous outputs; for glu a whole axis slab, whose halves pair up.
fn groups(p: &Planner<'_, '_>) -> Result<(GroupKind, RowView, u64, u64, u64)> {
    let a = p.call.activation;
    let kind = a.op().grouped().expect("a grouped op");
    let k = a.group_size().unwrap_or(1);
    let outputs = crate::shape::element_count(&a.output_shape(p.call.shape)?)?;
    let len = outputs * k;
    let view = RowView::new(p.call.shape, a.dim(), len)?;
    let unit = if kind.is_gated() {
        view.axis * view.inner
    } else {
        k * view.inner
    };
    Ok((kind, view, k as u64, len as u64, unit as u64))
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (kind, view, k, len, unit) = groups(p)?;
    let backward = p.call.direction == Direction::Backward;
    let (per_unit, shorter_hint) = match backward {
        false => (
            vec![unit, unit / k],
            "a grouped op cannot run in place (its output is shorter than its input); \
             write to a disjoint range or another buffer",
        ),
        true => (
            vec![unit, unit / k, unit],
            "a grouped op's grad_output is shorter than its grad_input, so they cannot \
             share a range; use disjoint ranges or another buffer",
        ),
    };
    p.cut(Cut {
        units: len / unit.max(1),
        per_unit,
        unit: "one group of the tensor".into(),
        shorter_hint,
    })?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let workgroups = one_workgroup_per_output(p, kind, k, len, unit)?;
    let entry = match (backward, workgroups) {
        (false, false) => LANE,
        (false, true) => WORKGROUP,
        (true, false) => GRAD_LANE,
        (true, true) => GRAD_WORKGROUP,
    };
    let group_len = if kind.is_gated() {
        view.axis / 2
    } else {
        k as usize
    } as u32;
    let mut launch = Launch::empty();
    launch.entries = vec![entry];
    for (i, piece) in p.pieces().iter().enumerate() {
        let outputs = piece.units * unit / k;
        let shape = [outputs as u32, group_len, view.inner as u32];
        launch.uniforms.push(block(shape, &piece.offsets));
        let groups = match workgroups {
            true => p.ctx.clamp_groups(outputs),
            false => p.ctx.groups(outputs),
        };
        launch.step(0, i, groups);
    }
    Ok(launch)
}

/// The uniform block of a piece of `[outputs, group length, inner]` with the tensors at
/// `offsets` (the forward's two, or the backward's three).
fn block([outputs, k, inner]: [u32; 3], o: &[u32]) -> Vec<u8> {
    match *o {
        [in_offset, out_offset] => Forward {
            outputs,
            k,
            inner,
            in_offset,
            out_offset,
            one: 1,
            pad0: 0,
            pad1: 0,
        }
        .bytes(),
        [saved_offset, grad_offset, out_offset] => Backward {
            outputs,
            k,
            inner,
            saved_offset,
            grad_offset,
            out_offset,
            one: 1,
            pad0: 0,
        }
        .bytes(),
        _ => unreachable!("a grouped call binds two or three tensors"),
    }
}

/// Whether each output takes a workgroup (large groups, or where one invocation's loop
/// would pass the adapter's budget) rather than an invocation; an error where neither
/// fits the budget.
fn one_workgroup_per_output(
    p: &Planner<'_, '_>,
    kind: GroupKind,
    k: u64,
    len: u64,
    unit: u64,
) -> Result<bool> {
    let backward = p.call.direction == Direction::Backward;
    let wg = u64::from(p.ctx.workgroup_size());
    let piece_outputs = p.per_piece().min(len / unit) * unit / k;
    // glu reads two values per output; the mean may run its loop twice (again at
    // 2^-32 scale on overflow, or at 2^64 scale for subnormals, never both).
    // The backward: max and min read the group, then write it; the mean only writes.
    let per_output = match (kind, backward) {
        (kind, _) if kind.is_gated() => 1,
        (GroupKind::Mean, false) | (GroupKind::Max | GroupKind::Min, true) => 2 * k,
        _ => k,
    };
    let lane_iterations = p.ctx.grid_stride_iterations(piece_outputs, per_output);
    let workgroups = !kind.is_gated() && (k >= 1024 || !p.ctx.within_budget(lane_iterations));
    // The backward of max and min reads its group twice and writes it once.
    let passes = if backward && matches!(kind, GroupKind::Max | GroupKind::Min) {
        3
    } else {
        1
    };
    let per_invocation = if workgroups {
        piece_outputs.div_ceil(p.ctx.max_groups()) * (passes * k.div_ceil(wg) + 4 * wg + 8)
    } else {
        lane_iterations
    };
    p.ctx
        .check_budget(per_invocation, &format!("groups of {k}"))?;
    Ok(workgroups)
}
