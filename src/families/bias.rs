//! Fused bias + activation, the epilogue of a matmul or convolution
//! ([`crate::Params::Bias`]): `y = f(x + bias)` for any elementwise op, the bias along one
//! axis, optionally writing the pre-activation `x + bias` (`shaders/bias.wgsl`); and its
//! backward, grad_input with the bias's gradient in one read of saved and grad_output
//! (`shaders/bias_backward.wgsl`).

use super::elementwise::{apply_prelude, grad_apply_prelude};
use super::{Compiled, Entry, Family, Module, ParamKind};
use crate::device::layout::{Group1, Layout};
use crate::device::wgsl::{ModuleSpec, GRADIENTS_WGSL};
use crate::exec::{check, Cut, Group1Binding, Launch, ParamArgs, ParamRegion, Planner};
use crate::{Direction, Error, Result, RowView};

const BIAS_WGSL: &str = include_str!("../../shaders/bias.wgsl");
const BIAS_AUX_WGSL: &str = include_str!("../../shaders/bias_aux.wgsl");
const BIAS_BACKWARD_WGSL: &str = include_str!("../../shaders/bias_backward.wgsl");

uniforms! {
    /// `Bias` of `shaders/bias.wgsl`.
    struct Forward = "Bias" {
        n: u32,
        in_offset: u32,
        out_offset: u32,
        scalar_start: u32,
        start: u32,
        channels: u32,
        inner: u32,
        b_offset: u32,
        aux_offset: u32,
        one: u32,
        pad0: u32,
        pad1: u32,
        p: [f32; 4],
    }
}

uniforms! {
    /// `BiasGrad` of `shaders/bias_backward.wgsl`.
    struct Backward = "BiasGrad" {
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        rows: u32,
        cols: u32,
        channels: u32,
        inner: u32,
        slice_rows: u32,
        slices: u32,
        piece: u32,
        pieces: u32,
        gb_offset: u32,
        one: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
        p: [f32; 4],
    }
}

static FORWARD: Module = Module::new("bias", forward_source, &Forward::BLOCK);
static BACKWARD: Module = Module::new("bias backward", backward_source, &Backward::BLOCK);

const VEC4: Entry = Entry::new(&FORWARD, "bias_vec4", Group1::Bias);
const SCALAR: Entry = Entry::new(&FORWARD, "bias_scalar", Group1::Bias);
/// With the pre-activation stored through the second output.
const AUX_VEC4: Entry = Entry::new(&FORWARD, "bias_aux_vec4", Group1::Bias);
const AUX_SCALAR: Entry = Entry::new(&FORWARD, "bias_aux_scalar", Group1::Bias);
/// grad_input and the partial sums over tiles, then each channel's total.
const GRAD: Entry = Entry::new(&BACKWARD, "bias_grad", Group1::BiasGrad);
const GRAD_TOTAL: Entry = Entry::new(&BACKWARD, "bias_grad_total", Group1::BiasGrad);

pub(super) const FAMILY: Family = Family {
    serves: |op, params| {
        op.elementwise().is_some() && op.random().is_none() && params == Some(ParamKind::Bias)
    },
    plan,
    forward: &[
        Compiled::forward(&[VEC4, SCALAR]),
        Compiled {
            layouts: &Layout::FORWARD_AND_EXTRA,
            entries: &[AUX_VEC4, AUX_SCALAR],
        },
    ],
    backward: &[Compiled::backward(&[GRAD, GRAD_TOTAL])],
    strategies: false,
    extra_output: true,
};

fn forward_source(spec: &ModuleSpec) -> String {
    apply_prelude(spec)
        .param_tensor("bias", 0, false)
        .assemble(&[
            BIAS_WGSL,
            if spec.layout.has_extra() {
                BIAS_AUX_WGSL
            } else {
                ""
            },
        ])
}

fn backward_source(spec: &ModuleSpec) -> String {
    let prelude = grad_apply_prelude(spec, "bg").param_tensor("grad_bias", 1, true);
    let reductions = prelude.reductions();
    prelude.assemble(&[GRADIENTS_WGSL, &reductions, BIAS_BACKWARD_WGSL])
}

/// The call's bias and the view of its tensor along the bias's axis, the bias checked to
/// hold one value per index of it, in the tensors' storage type.
fn bias_view<'a>(p: &Planner<'_, 'a>) -> Result<(ParamRegion<'a>, RowView, u64)> {
    let Some(ParamArgs::Bias { bias, dim }) = p.call.params else {
        unreachable!("the registry gives the bias family calls with a bias");
    };
    let shape = p.call.shape;
    let len = crate::shape::element_count(shape)?;
    let view = RowView::new(shape, dim, len)?;
    if bias.len != view.axis as u64 {
        return Err(Error::Shape {
            shape: shape.to_vec(),
            reason: format!(
                "the bias has {} values and dim {dim} has {}: one per index of it",
                bias.len, view.axis
            ),
        });
    }
    if len > u32::MAX as usize {
        return Err(Error::Unsupported(format!(
            "a fused bias counts elements in 32 bits; {len} elements are too many"
        )));
    }
    let storage = p.call.tensors[0].storage;
    for (role, region) in [
        ("bias", Some(bias.region)),
        ("grad_bias", p.call.param_grad),
    ] {
        match region {
            Some(r) if r.storage != storage => {
                return Err(Error::Unsupported(format!(
                    "the {role} holds {} and the tensors {storage}: a bias and its gradient \
                     are in their tensor's storage type",
                    r.storage
                )))
            }
            _ => {}
        }
    }
    Ok((bias, view, len as u64))
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    match p.call.direction {
        Direction::Forward => plan_forward(p),
        Direction::Backward => plan_backward(p),
    }
}

/// One invocation per element (or vec4 of elements on the last axis, where every offset
/// allows), each adding its channel's bias.
fn plan_forward<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (bias, view, len) = bias_view(p)?;
    check::parameter_in_call_storage("bias", bias.region, bias.len, p.call.output())?;
    if p.call
        .tensors
        .get(2)
        .is_some_and(|aux| aux.buffer == bias.region.buffer)
    {
        return Err(Error::Unsupported(
            "the aux output shares a buffer with the bias, which the kernel reads through a \
             read-only binding while writing the aux output: put it in a buffer of its own"
                .into(),
        ));
    }
    p.cut(Cut::elements(len, p.call.tensors.len()))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let per_invocation = p.ctx.grid_stride_iterations(p.per_piece().min(len), 1);
    p.ctx
        .check_budget(per_invocation, &format!("{len} elements"))?;
    let aux = p.call.outputs > 1;
    let b_offset = p.ctx.param_offset(bias.region);
    let channels = view.axis as u32;
    let mut launch = Launch::empty();
    launch.entries = if aux {
        vec![AUX_VEC4, AUX_SCALAR]
    } else {
        vec![VEC4, SCALAR]
    };
    launch.group1 = vec![Group1Binding::Tensor(bias.region, bias.len)];
    for (i, piece) in p.pieces().iter().enumerate() {
        let (o, n) = (&piece.offsets, piece.units);
        let vectorised = view.inner == 1
            && channels.is_multiple_of(4)
            && piece.first % 4 == 0
            && b_offset.is_multiple_of(4)
            && o.iter().all(|&o| o % 4 == 0);
        let scalar_start = if vectorised { n / 4 * 4 } else { 0 };
        let block = Forward {
            n: n as u32,
            in_offset: o[0],
            out_offset: o[1],
            scalar_start: scalar_start as u32,
            start: piece.first as u32,
            channels,
            inner: view.inner as u32,
            b_offset,
            aux_offset: o.get(2).copied().unwrap_or(0),
            one: 1,
            pad0: 0,
            pad1: 0,
            p: p.call.activation.param_slots(),
        };
        launch.uniforms.push(block.bytes());
        if vectorised && n / 4 > 0 {
            launch.step(0, i, p.ctx.groups(n / 4));
        }
        if scalar_start < n {
            launch.step(1, i, p.ctx.groups(n - scalar_start));
        }
    }
    Ok(launch)
}

/// Pieces of whole rows (outer indices); per piece, tiles of (row slice, column block),
/// one partial per (piece, slice, column); then each channel's total.
fn plan_backward<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let (bias, view, len) = bias_view(p)?;
    let [saved, g, gx] = [0, 1, 2].map(|i| p.call.tensors[i]);
    let gb = p.call.param_grad;
    if let Some(gb) = gb {
        let read = [("saved", saved), ("grad_output", g)];
        check::written_apart("grad_bias", gb, bias.len, &read, (gx, len))?;
    }
    let cols = (view.axis * view.inner) as u64;
    let units = if len == 0 { 0 } else { view.outer as u64 };
    let unit = format!(
        "one row of {cols} elements (the bias's {} x {})",
        view.axis, view.inner
    );
    p.cut(Cut::units(units, cols, 3, unit))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    let pieces = p.pieces().len() as u64;
    let (slices, slice_rows) = slices(p, view, cols, pieces)?;
    let bytes = p.storage().bytes();
    let every_piece = Backward {
        cols: cols as u32,
        channels: view.axis as u32,
        inner: view.inner as u32,
        slice_rows: slice_rows as u32,
        slices: slices as u32,
        pieces: pieces as u32,
        gb_offset: gb.map_or(0, |r| p.ctx.param_offset(r)),
        one: 1,
        p: p.call.activation.param_slots(),
        ..bytemuck::Zeroable::zeroed()
    };
    let mut launch = Launch::empty();
    launch.entries = vec![GRAD, GRAD_TOTAL];
    let gb_binding = gb.map_or(Group1Binding::Scratch(bias.len * bytes), |r| {
        Group1Binding::Tensor(r, bias.len)
    });
    launch.group1 = vec![
        Group1Binding::Scratch(pieces * slices * cols * 8),
        gb_binding,
    ];
    let blocks = cols.div_ceil(cols.min(u64::from(p.ctx.workgroup_size())));
    let groups = p.ctx.clamp_groups(blocks * slices);
    for (i, piece) in p.pieces().iter().enumerate() {
        let [saved_offset, grad_offset, out_offset] = [0, 1, 2].map(|t| piece.offsets[t]);
        let block = Backward {
            saved_offset,
            grad_offset,
            out_offset,
            rows: piece.units as u32,
            piece: i as u32,
            ..every_piece
        };
        launch.uniforms.push(block.bytes());
        launch.step(0, i, groups);
    }
    // every piece's partials are written: total them per channel (the last piece's
    // uniforms carry the counts)
    launch.step(1, pieces as usize - 1, p.ctx.groups(view.axis as u64));
    Ok(launch)
}

/// (slices per piece, rows per slice) of the backward's tiles: enough for about 1,024
/// workgroups on a GPU (two per core on a CPU adapter), the partials (8 bytes per piece,
/// slice and column) within one binding, and both passes within the loop budget.
fn slices(p: &Planner<'_, '_>, view: RowView, cols: u64, pieces: u64) -> Result<(u64, u64)> {
    let ctx = p.ctx;
    let wg = u64::from(ctx.workgroup_size());
    let width = cols.clamp(1, wg);
    let depth = wg / width;
    let blocks = cols.div_ceil(width);
    let rows = p.per_piece().min(view.outer as u64).max(1);
    let binding = ctx.limits().max_storage_buffer_binding_size;
    let fit = binding / (8 * cols * pieces);
    if fit == 0 {
        return Err(Error::Unsupported(format!(
            "the bias gradient's partial sums need {} bytes, past this device's storage \
             binding limit ({binding} bytes); cut the tensor into smaller calls",
            8 * cols * pieces
        )));
    }
    let slices = ctx
        .target_groups(1024)
        .div_ceil(blocks)
        .clamp(1, rows.div_ceil(depth))
        .min(fit);
    let slice_rows = rows.div_ceil(slices);
    let slices = rows.div_ceil(slice_rows);
    let tiles = (blocks * slices).div_ceil(ctx.max_groups());
    ctx.check_budget(
        tiles * (slice_rows.div_ceil(depth) + depth + 2),
        &format!("the bias gradient over {} rows", view.outer),
    )?;
    let totals = (view.axis as u64).div_ceil(wg * ctx.max_groups());
    ctx.check_budget(
        totals * (pieces * slices * view.inner as u64 + 1),
        &format!("the bias gradient's totals over {pieces} pieces"),
    )?;
    Ok((slices, slice_rows))
}
