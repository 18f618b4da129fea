//! PReLU with 1 or C weights from a parameter tensor (`torch.nn.functional.prelu`), C
//! being dim 1 of the tensor: `shaders/prelu.wgsl` picks each element's weight by its
//! channel. The backward (`shaders/prelu_backward.wgsl`) writes grad_input and the weight
//! gradient per channel, a compensated sum over every other dim, in one read of x and
//! grad_output: per (piece, channel, slice) partial sums, then their total per channel.
//! (The spec `prelu(weight=W)` with one weight is an elementwise op.)

use super::{Compiled, Entry, Family, Module, ParamKind};
use crate::device::layout::Group1;
use crate::device::wgsl::{ModuleSpec, Prelude, GRADIENTS_WGSL};
use crate::exec::{check, Cut, Group1Binding, Launch, ParamArgs, ParamRegion, Planner};
use crate::op::Op;
use crate::shape::channel_layout;
use crate::{Direction, Error, Result};

const PRELU_WGSL: &str = include_str!("../../shaders/prelu.wgsl");
const PRELU_BACKWARD_WGSL: &str = include_str!("../../shaders/prelu_backward.wgsl");

uniforms! {
    /// `Prelu` of `shaders/prelu.wgsl`.
    struct Forward = "Prelu" {
        n: u32,
        in_offset: u32,
        out_offset: u32,
        start: u32,
        channels: u32,
        inner: u32,
        w_offset: u32,
        one: u32,
    }
}

uniforms! {
    /// `PreluGrad` of `shaders/prelu_backward.wgsl`.
    struct Backward = "PreluGrad" {
        n: u32,
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        channels: u32,
        inner: u32,
        w_offset: u32,
        gw_offset: u32,
        slices: u32,
        slice_len: u32,
        piece: u32,
        pieces: u32,
        one: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

static FORWARD: Module = Module {
    name: "prelu",
    source: |spec| {
        Prelude::new(spec)
            .input(spec.layout, "prelu_u")
            .assemble(&[PRELU_WGSL])
    },
    uniforms: &Forward::BLOCK,
};

static BACKWARD: Module = Module::new("prelu backward", backward_source, &Backward::BLOCK);

const MAIN: Entry = Entry::new(&FORWARD, "prelu_main", Group1::Weights);
/// grad_input and the partial weight sums, then the weight gradient per channel.
const GRAD: Entry = Entry::new(&BACKWARD, "prelu_grad", Group1::PreluGrad);
const GRAD_WEIGHT: Entry = Entry::new(&BACKWARD, "prelu_grad_weight", Group1::PreluGrad);

pub(super) const FAMILY: Family = Family {
    serves: |op, params| op == Op::Prelu && params == Some(ParamKind::Prelu),
    plan,
    forward: &[Compiled::forward(&[MAIN])],
    backward: &[Compiled::backward(&[GRAD, GRAD_WEIGHT])],
    strategies: false,
    extra_output: false,
};

fn backward_source(spec: &ModuleSpec) -> String {
    let prelude = Prelude::new(spec).backward_inputs(spec.layout, "");
    let reductions = prelude.reductions();
    prelude.assemble(&[GRADIENTS_WGSL, &reductions, PRELU_BACKWARD_WGSL])
}

/// The call's weights, and (channels, elements per channel per outer index) of its shape.
fn weights<'a>(p: &Planner<'_, 'a>) -> Result<(ParamRegion<'a>, usize, usize)> {
    let Some(ParamArgs::Prelu(w)) = p.call.params else {
        unreachable!("the registry gives prelu's family calls with weights");
    };
    let len = crate::shape::element_count(p.call.shape)?;
    let (channels, inner) = channel_layout(p.call.shape, len, w.len as usize)?;
    Ok((w, channels, inner))
}

fn no_weights(p: &Planner<'_, '_>) -> Error {
    Error::Shape {
        shape: p.call.shape.to_vec(),
        reason: "prelu needs at least one weight".into(),
    }
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    match p.call.direction {
        Direction::Forward => plan_forward(p),
        Direction::Backward => plan_backward(p),
    }
}

/// One invocation per element, each picking its channel's weight.
fn plan_forward<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (w, channels, inner) = weights(p)?;
    check::parameter("weights", w.region, w.len, p.call.output())?;
    let len = crate::shape::element_count(p.call.shape)? as u64;
    p.cut(Cut::elements(len, 2))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    if w.len == 0 {
        return Err(no_weights(p));
    }
    p.ctx.check_budget(
        p.ctx.grid_stride_iterations(p.per_piece().min(len), 1),
        &format!("{len} elements"),
    )?;
    let mut launch = Launch::empty();
    launch.entries = vec![MAIN];
    launch.group1 = vec![Group1Binding::Tensor(w.region, w.len)];
    for (i, piece) in p.pieces().iter().enumerate() {
        launch.uniforms.push(
            Forward {
                n: piece.units as u32,
                in_offset: piece.offsets[0],
                out_offset: piece.offsets[1],
                start: piece.first as u32,
                channels: if w.len == 1 { 1 } else { channels as u32 },
                inner: inner as u32,
                w_offset: p.ctx.param_offset(w.region),
                one: 1,
            }
            .bytes(),
        );
        let groups = p.ctx.groups(piece.units);
        launch.step(0, i, groups);
    }
    Ok(launch)
}

/// The backward's weights, (channels, inner) of its slabs (one channel of every element
/// for one weight) and its element count, with the weights and the weight gradient where
/// the call names one checked for where they may lie.
fn check_backward<'a>(p: &Planner<'_, 'a>) -> Result<(ParamRegion<'a>, u64, u64, u64)> {
    let (w, channels, inner) = weights(p)?;
    if w.len == 0 {
        return Err(no_weights(p));
    }
    let len = crate::shape::element_count(p.call.shape)? as u64;
    let [x, g, gx] = [0, 1, 2].map(|i| p.call.tensors[i]);
    check::parameter("weights", w.region, w.len, gx)?;
    if let Some(gw) = p.call.param_grad {
        let read = [("weights", w.region), ("x", x), ("grad_output", g)];
        crate::region::require_f32("grad_weight", gw)?;
        check::written_apart("grad_weight", gw, w.len, &read, (gx, len))?;
    }
    match w.len {
        1 => Ok((w, 1, 1, len)),
        _ => Ok((w, channels as u64, inner as u64, len)),
    }
}

/// Pieces of whole slabs (`channels x inner` elements, the channels of one outer index);
/// each channel of a piece in slices, one workgroup each, within the loop budget.
fn plan_backward<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (w, channels, inner, len) = check_backward(p)?;
    let slab = channels * inner;
    let unit = format!("one slab of {channels} channels x {inner} elements");
    p.cut(Cut::units(len / slab.max(1), slab, 3, unit))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let (slices, slice_len) = slices(p, channels, inner, len)?;
    let count = p.pieces().len() as u64;
    let gw = p.call.param_grad;
    let mut launch = Launch::empty();
    launch.entries = vec![GRAD, GRAD_WEIGHT];
    // the weights, each (piece, channel, slice)'s partial sums, grad_weight (or a stand-in)
    let gw_binding = gw.map_or(Group1Binding::Scratch(w.len * 4), |r| {
        Group1Binding::Tensor(r, w.len)
    });
    let partials = Group1Binding::Scratch(count * channels * slices * 8);
    launch.group1 = vec![Group1Binding::Tensor(w.region, w.len), partials, gw_binding];
    let every_piece = Backward {
        channels: channels as u32,
        inner: inner as u32,
        w_offset: p.ctx.param_offset(w.region),
        gw_offset: gw.map_or(0, |r| p.ctx.param_offset(r)),
        slices: slices as u32,
        slice_len: slice_len as u32,
        pieces: count as u32,
        one: 1,
        ..bytemuck::Zeroable::zeroed()
    };
    let groups = p.ctx.clamp_groups(channels * slices);
    for (i, piece) in p.pieces().iter().enumerate() {
        let [saved_offset, grad_offset, out_offset] = [0, 1, 2].map(|t| piece.offsets[t]);
        let block = Backward {
            n: (piece.units * slab) as u32,
            saved_offset,
            grad_offset,
            out_offset,
            piece: i as u32,
            ..every_piece
        };
        launch.uniforms.push(block.bytes());
        launch.step(0, i, groups);
    }
    // every piece's partials are written: add them per channel (the last piece's
    // uniforms carry the counts)
    let piece = p.pieces().len() - 1;
    let groups = p.ctx.groups(channels);
    launch.step(1, piece, groups);
    Ok(launch)
}

/// Slices per channel and elements per slice for the channels of the pieces (`inner`
/// elements per slab): about as many workgroups as the device wants, each slice at least 4
/// elements per invocation, and within the loop budget (an error where the passes cannot
/// be).
fn slices(p: &Planner<'_, '_>, channels: u64, inner: u64, len: u64) -> Result<(u64, u64)> {
    let ctx = p.ctx;
    let per_channel = p.per_piece().min(len / (channels * inner)) * inner;
    let wg = u64::from(ctx.workgroup_size());
    let most = per_channel.div_ceil(4 * wg).max(1);
    let mut slices = ctx
        .target_groups(2048)
        .div_ceil(channels.max(1))
        .clamp(1, most);
    if let Some(budget) = ctx.loop_budget() {
        slices = slices.max(per_channel.div_ceil(wg * (budget / 2).max(1)));
    }
    let slice_len = per_channel.div_ceil(slices).max(1);
    ctx.check_budget(
        (channels * slices).div_ceil(ctx.max_groups()) * (slice_len.div_ceil(wg) + 2 * wg),
        &format!("prelu's backward over {len} elements"),
    )?;
    let pieces = p.pieces().len() as u64;
    ctx.check_budget(pieces * slices, "prelu's weight gradient")?;
    Ok((slices, slice_len))
}
