//! Dice from Deep Interest Network: `x * (alpha + (1 - alpha) * sigmoid((x - mean) /
//! sqrt(var + eps)))` per feature, the batch on dim 0 and the features the other dims.
//!
//! - Training mode (`shaders/dice.wgsl`, one alpha from the spec or one per feature from
//!   [`crate::Params::DiceTrain`]): the batch statistics in four coalesced passes over
//!   (batch slice, feature block) tiles (partial compensated sums per slice, their total
//!   per feature, then the same for the squared deviations), then the elementwise pass:
//!   five dispatches in one compute pass, over one binding holding the whole tensor.
//! - Evaluation mode ([`crate::Params::DiceEval`]): running statistics, elementwise.
//! - The backward (`shaders/dice_backward.wgsl`): per-feature statistics and sums (one
//!   invocation, or one workgroup, per feature), then grad_input per element, and the
//!   gradient of a per-feature alpha.

use super::{Compiled, Entry, Family, Module, ParamKind};
use crate::device::layout::Group1;
use crate::device::wgsl::{ModuleSpec, Prelude, GRADIENTS_WGSL};
use crate::exec::{check, Cut, Group1Binding, Launch, ParamArgs, Planner};
use crate::op::Op;
use crate::shape::{batch_features, check_per_feature, ALPHAS, RUNNING};
use crate::{BufferRegion, Direction, Error, Result};

const DICE_WGSL: &str = include_str!("../../shaders/dice.wgsl");
const DICE_BACKWARD_WGSL: &str = include_str!("../../shaders/dice_backward.wgsl");

uniforms! {
    /// `Dice` of `shaders/dice.wgsl`.
    struct Forward = "Dice" {
        batch: u32,
        features: u32,
        in_offset: u32,
        out_offset: u32,
        n: u32,
        one: u32,
        mean_at: u32,
        var_at: u32,
        alpha_at: u32,
        start: u32,
        slice_rows: u32,
        slices: u32,
        p: [f32; 4],
    }
}

uniforms! {
    /// `DiceGrad` of `shaders/dice_backward.wgsl`.
    struct Backward = "DiceGrad" {
        batch: u32,
        features: u32,
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        alpha_at: u32,
        grad_alpha_at: u32,
        mean_at: u32,
        var_at: u32,
        eval: u32,
        one: u32,
        pad0: u32,
        eps: f32,
        pad1: f32,
        pad2: f32,
        pad3: f32,
    }
}

static FORWARD: Module = Module {
    name: "dice",
    source: |spec| {
        let prelude = Prelude::new(spec).input(spec.layout, "dice_u");
        let reductions = prelude.reductions();
        prelude.assemble(&[&reductions, DICE_WGSL])
    },
    uniforms: &Forward::BLOCK,
};

static BACKWARD: Module = Module::new("dice backward", backward_source, &Backward::BLOCK);

/// The statistics' four passes in order, with the spec's alpha (the statistics in the
/// shared partials) and with a per-feature alpha (their own buffer, beside the alpha).
const STATS: [Entry; 4] = stats(Group1::Partials);
const STATS_ALPHA: [Entry; 4] = stats(Group1::DiceAlpha);
const APPLY: Entry = Entry::new(&FORWARD, "dice_apply", Group1::Partials);
const APPLY_ALPHA: Entry = Entry::new(&FORWARD, "dice_apply_alpha", Group1::DiceAlpha);
const EVAL: Entry = Entry::new(&FORWARD, "dice_eval", Group1::DiceEval);
/// The backward's per-feature pass (one invocation, or one workgroup, per feature), then
/// its elementwise one.
const COLUMN: Entry = Entry::new(&BACKWARD, "dice_grad_column", Group1::DiceGrad);
const COLUMN_WG: Entry = Entry::new(&BACKWARD, "dice_grad_column_wg", Group1::DiceGrad);
const GRAD_APPLY: Entry = Entry::new(&BACKWARD, "dice_grad_apply", Group1::DiceGrad);

const fn stats(group1: Group1) -> [Entry; 4] {
    [
        Entry::new(&FORWARD, "dice_sums", group1),
        Entry::new(&FORWARD, "dice_mean", group1),
        Entry::new(&FORWARD, "dice_squares", group1),
        Entry::new(&FORWARD, "dice_variance", group1),
    ]
}

pub(super) const FAMILY: Family = Family {
    serves: |op, params| {
        op == Op::Dice
            && matches!(
                params,
                None | Some(ParamKind::DiceTrain | ParamKind::DiceEval)
            )
    },
    plan,
    forward: &[Compiled::forward(&[
        APPLY,
        EVAL,
        APPLY_ALPHA,
        STATS[0],
        STATS[1],
        STATS[2],
        STATS[3],
        STATS_ALPHA[0],
        STATS_ALPHA[1],
        STATS_ALPHA[2],
        STATS_ALPHA[3],
    ])],
    backward: &[Compiled::backward(&[COLUMN, COLUMN_WG, GRAD_APPLY])],
    strategies: false,
    extra_output: false,
};

fn backward_source(spec: &ModuleSpec) -> String {
    let prelude = Prelude::new(spec).backward_inputs(spec.layout, "");
    let reductions = prelude.reductions();
    prelude.assemble(&[GRADIENTS_WGSL, &reductions, DICE_BACKWARD_WGSL])
}

/// An error unless dice's `eps` (added to a variance) is finite and >= 0.
fn check_eps(eps: f32) -> Result<()> {
    if !eps.is_finite() || eps < 0.0 {
        return Err(Error::Unsupported(format!(
            "eps must be finite and >= 0, got {eps}"
        )));
    }
    Ok(())
}

/// The call as dice sees it: (batch, features, elements, alpha from the spec, eps), its
/// parameter tensors checked to hold one value per feature.
fn dims(p: &Planner<'_, '_>) -> Result<(u64, u64, u64, f32, f32)> {
    let shape = p.call.shape;
    let len = crate::shape::element_count(shape)?;
    let (batch, features) = batch_features(shape, len)?;
    let tensors = match p.call.params {
        Some(ParamArgs::DiceTrain(a)) => vec![(ALPHAS, a.len as usize)],
        Some(ParamArgs::DiceEval(stats)) => RUNNING
            .into_iter()
            .zip(stats.map(|s| s.len as usize))
            .collect(),
        _ => Vec::new(),
    };
    check_per_feature(shape, len, &tensors)?;
    let params = p.call.activation.params();
    check_eps(params[1])?;
    Ok((
        batch as u64,
        features as u64,
        len as u64,
        params[0],
        params[1],
    ))
}

/// Cuts the call as one piece: the statistics need the whole tensor in one binding.
fn cut_whole(p: &mut Planner<'_, '_>, len: u64) -> Result<()> {
    let unit = "dice's whole tensor (its batch statistics need it in one binding)";
    p.cut(Cut::units(
        u64::from(len > 0),
        len,
        p.call.tensors.len(),
        unit.into(),
    ))
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    match (p.call.direction, p.call.params) {
        (Direction::Forward, Some(ParamArgs::DiceEval(_))) => plan_eval(p),
        (Direction::Forward, _) => plan_train(p),
        (Direction::Backward, _) => plan_backward(p),
    }
}

/// Training mode: the statistics' four passes, then the elementwise pass.
fn plan_train<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (batch, f, len, _, _) = dims(p)?;
    let alpha = match p.call.params {
        Some(ParamArgs::DiceTrain(a)) => Some(a.region),
        _ => None,
    };
    if let Some(a) = alpha {
        check::parameter("alpha", a, f, p.call.output())?;
    }
    cut_whole(p, len)?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let (slices, slice_rows) = slices(p, batch, f)?;
    let stats = f * slices * 16;
    let mut launch = Launch::empty();
    (launch.entries, launch.group1) = match alpha {
        None => (STATS.to_vec(), vec![Group1Binding::Shared(stats)]),
        Some(a) => (
            STATS_ALPHA.to_vec(),
            vec![Group1Binding::Scratch(stats), Group1Binding::Tensor(a, f)],
        ),
    };
    launch
        .entries
        .push(if alpha.is_some() { APPLY_ALPHA } else { APPLY });
    let o = &p.pieces()[0].offsets;
    launch.uniforms.push(
        Forward {
            batch: batch as u32,
            features: f as u32,
            in_offset: o[0],
            out_offset: o[1],
            n: len as u32,
            one: 1,
            mean_at: 0,
            var_at: 0,
            alpha_at: alpha.map_or(0, |a| p.ctx.param_offset(a)),
            start: 0,
            slice_rows: slice_rows as u32,
            slices: slices as u32,
            p: p.call.activation.param_slots(),
        }
        .bytes(),
    );
    // the partial passes over tiles, one invocation per feature in the totals
    let wg = u64::from(p.ctx.workgroup_size());
    let tiles = p.ctx.clamp_groups(f.div_ceil(f.min(wg)) * slices);
    let per_feature = p.ctx.groups(f);
    let sizes = [tiles, per_feature, tiles, per_feature, p.ctx.groups(len)];
    for (entry, groups) in sizes.into_iter().enumerate() {
        launch.step(entry, 0, groups);
    }
    Ok(launch)
}

/// Evaluation mode: elementwise with the running statistics, in pieces of any length.
fn plan_eval<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (batch, f, len, _, eps) = dims(p)?;
    let Some(ParamArgs::DiceEval(stats)) = p.call.params else {
        unreachable!("evaluation mode has running statistics");
    };
    for (role, s) in ["running mean", "running variance", "alpha"]
        .iter()
        .zip(stats)
    {
        check::parameter(role, s.region, f, p.call.output())?;
    }
    p.cut(Cut::elements(len, 2))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let at = |i: usize| p.ctx.param_offset(stats[i].region);
    let mut launch = Launch::empty();
    launch.entries = vec![EVAL];
    launch.group1 = stats
        .iter()
        .map(|s| Group1Binding::Tensor(s.region, f))
        .collect();
    for (i, piece) in p.pieces().iter().enumerate() {
        launch.uniforms.push(
            Forward {
                batch: batch as u32,
                features: f as u32,
                in_offset: piece.offsets[0],
                out_offset: piece.offsets[1],
                n: piece.units as u32,
                one: 1,
                mean_at: at(0),
                var_at: at(1),
                alpha_at: at(2),
                start: piece.first as u32,
                slice_rows: 0,
                slices: 0,
                p: [0.0, eps, 0.0, 0.0],
            }
            .bytes(),
        );
        let groups = p.ctx.groups(piece.units);
        launch.step(0, i, groups);
    }
    Ok(launch)
}

/// The backward's parameter tensors: alpha (per feature, or the spec's as values) and
/// the running statistics of evaluation mode, where they may lie, and grad_alpha's.
fn backward_params<'a>(
    p: &Planner<'_, 'a>,
    f: u64,
    len: u64,
    alpha: f32,
) -> Result<Vec<Group1Binding<'a>>> {
    let [x, g, gx] = [0, 1, 2].map(|i| p.call.tensors[i]);
    let (alpha_t, running) = match p.call.params {
        Some(ParamArgs::DiceTrain(a)) => (Some(a.region), None),
        Some(ParamArgs::DiceEval([m, v, a])) => (Some(a.region), Some((m.region, v.region))),
        _ => (None, None),
    };
    let mut read: Vec<(&'static str, BufferRegion<'_>)> =
        alpha_t.map(|a| ("alpha", a)).into_iter().collect();
    if let Some((m, v)) = running {
        read.extend([("running mean", m), ("running variance", v)]);
    }
    for &(role, region) in &read {
        check::parameter(role, region, f, gx)?;
    }
    if let Some(ga) = p.call.param_grad {
        read.extend([("x", x), ("grad_output", g)]);
        crate::region::require_f32("grad_alpha", ga)?;
        check::written_apart("grad_alpha", ga, f, &read, (gx, len))?;
    }
    let tensor = |r: Option<BufferRegion<'a>>, scratch: Group1Binding<'a>| {
        r.map_or(scratch, |r| Group1Binding::Tensor(r, f))
    };
    Ok(vec![
        Group1Binding::Scratch(f.max(1) * 16),
        alpha_t.map_or_else(
            || Group1Binding::Values(vec![alpha; f as usize]),
            |a| Group1Binding::Tensor(a, f),
        ),
        tensor(p.call.param_grad, Group1Binding::Scratch(f * 4)),
        tensor(running.map(|r| r.0), Group1Binding::Scratch(16)),
        tensor(running.map(|r| r.1), Group1Binding::Scratch(16)),
    ])
}

/// grad_input through the batch statistics (or the running ones), and grad_alpha.
fn plan_backward<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (batch, f, len, alpha, eps) = dims(p)?;
    let group1 = backward_params(p, f, len, alpha)?;
    cut_whole(p, len)?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    // three reads of each column: the mean, the squared deviations, the sums
    let workgroups = column_workgroups(p, batch, f, 3)?;
    let at = |b: &Group1Binding<'_>| match b {
        Group1Binding::Tensor(r, _) => p.ctx.param_offset(*r),
        _ => 0,
    };
    let o = &p.pieces()[0].offsets;
    let eval = matches!(p.call.params, Some(ParamArgs::DiceEval(_)));
    let uniforms = Backward {
        batch: batch as u32,
        features: f as u32,
        saved_offset: o[0],
        grad_offset: o[1],
        out_offset: o[2],
        alpha_at: at(&group1[1]),
        grad_alpha_at: at(&group1[2]),
        mean_at: at(&group1[3]),
        var_at: at(&group1[4]),
        eval: u32::from(eval),
        one: 1,
        pad0: 0,
        eps,
        pad1: 0.0,
        pad2: 0.0,
        pad3: 0.0,
    };
    let columns = match workgroups {
        true => p.ctx.clamp_groups(f),
        false => p.ctx.groups(f),
    };
    let mut launch = Launch {
        entries: vec![if workgroups { COLUMN_WG } else { COLUMN }, GRAD_APPLY],
        group1,
        uniforms: vec![uniforms.bytes()],
        steps: Vec::new(),
    };
    launch.step(0, 0, columns);
    launch.step(1, 0, p.ctx.groups(len));
    Ok(launch)
}

/// Whether a per-feature pass of the backward, `passes` reads of each column, takes one
/// workgroup per feature (large batches, or where one invocation per feature would pass
/// the loop budget) rather than one invocation.
fn column_workgroups(p: &Planner<'_, '_>, batch: u64, features: u64, passes: u64) -> Result<bool> {
    let ctx = p.ctx;
    let wg = u64::from(ctx.workgroup_size());
    let lane_iterations = ctx.grid_stride_iterations(features, passes * batch);
    let workgroups = batch >= 1024 || !ctx.within_budget(lane_iterations);
    let per_invocation = if workgroups {
        features.div_ceil(ctx.max_groups()) * (passes * batch.div_ceil(wg) + 6 * wg + 8)
    } else {
        lane_iterations
    };
    ctx.check_budget(per_invocation, &format!("a batch of {batch}"))?;
    Ok(workgroups)
}

/// How training mode's statistics cut the batch: (slices, rows per slice). Enough
/// slices for about 1,024 workgroups on a GPU (two per core on a CPU adapter), few
/// enough rows per invocation for the loop budget, and few enough slices for their
/// partials (16 bytes per slice and feature) to fit one storage binding; each feature
/// then has one partial per slice. An error where no number of slices does.
fn slices(p: &Planner<'_, '_>, batch: u64, features: u64) -> Result<(u64, u64)> {
    let ctx = p.ctx;
    let wg = u64::from(ctx.workgroup_size());
    let width = features.clamp(1, wg);
    let depth = wg / width;
    let blocks = features.div_ceil(width);
    let binding = ctx.limits().max_storage_buffer_binding_size;
    let fit = binding / (16 * features.max(1));
    if fit == 0 {
        return Err(Error::Unsupported(format!(
            "dice's statistics need 16 bytes per feature, {} bytes for {features} \
             features, past this device's storage binding limit ({binding} bytes)",
            16 * features
        )));
    }
    let slices = ctx
        .target_groups(1024)
        .div_ceil(blocks)
        .max(batch.div_ceil(depth * 16_384))
        .clamp(1, batch.div_ceil(depth).max(1))
        .min(fit);
    let slice_rows = batch.div_ceil(slices).max(1);
    let slices = batch.div_ceil(slice_rows).max(1);
    let tiles = (blocks * slices).div_ceil(ctx.max_groups());
    let partial = tiles * (slice_rows.div_ceil(depth) + depth + 2);
    let combine = features.div_ceil(wg * ctx.max_groups()) * (slices + 1);
    ctx.check_budget(
        partial.max(combine),
        &format!("dice's statistics over a batch of {batch}"),
    )?;
    Ok((slices, slice_rows))
}
