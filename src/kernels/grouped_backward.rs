//! The grouped ops' backward: `shaders/grouped_backward.wgsl`, from the saved input x
//! (the input's shape) and grad_output (the output's shape, `k` times shorter along the
//! axis, or half for glu), into grad_input (the input's shape).

use bytemuck::{Pod, Zeroable};

use super::dispatch::{bind_windows, check_in_place, check_region, pieces};
use crate::cache::{Entry, Layout, PipelineKey};
use crate::region::call_storage;
use crate::{Activation, BufferRegion, Context, Error, Result, RowView, Storage};

/// The uniform block of `shaders/grouped_backward.wgsl` (`Groups`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    outputs: u32,
    k: u32,
    inner: u32,
    saved_offset: u32,
    grad_offset: u32,
    out_offset: u32,
    one: u32,
    pad: u32,
}

/// The regions of a grouped backward: the saved input and grad_input of `len` elements
/// (identical ranges, in place, or disjoint), grad_output of `out_len` apart from
/// grad_input (their lengths differ, so no range can serve both).
fn check_grouped_regions(
    [saved, grad_output, grad_input]: [BufferRegion<'_>; 3],
    len: u64,
    out_len: u64,
) -> Result<Storage> {
    check_region("saved", saved, len)?;
    check_region("grad_output", grad_output, out_len)?;
    check_region("grad_input", grad_input, len)?;
    check_in_place("saved", "grad_input", saved, grad_input, len)?;
    let (a, b) = (grad_output.offset, grad_input.offset);
    let (a_end, b_end) = (a + grad_output.bytes(out_len), b + grad_input.bytes(len));
    if grad_output.buffer == grad_input.buffer && a < b_end && b < a_end {
        return Err(Error::Overlap {
            first: "grad_output",
            second: "grad_input",
            input: a..a_end,
            output: b..b_end,
            hint: "a grouped op's grad_output is shorter than its grad_input, so they \
                   cannot share a range; use disjoint ranges or another buffer",
        });
    }
    call_storage(&[
        ("saved tensor", saved),
        ("grad_output", grad_output),
        ("grad_input", grad_input),
    ])
}

impl Context {
    /// Records a grouped op's backward on a tensor of `shape`: grad_input may be the saved
    /// input's region (in place); grad_output, shorter, must not overlap grad_input (if
    /// it shares grad_input's buffer it is read from a copy, so it needs `COPY_SRC`).
    pub(crate) fn encode_backward_grouped(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        shape: &[usize],
    ) -> Result<()> {
        let kind = activation
            .op()
            .grouped()
            .ok_or_else(|| Error::Unsupported(format!("`{activation}` is not a grouped op")))?;
        let k = activation.group_size().unwrap_or(1) as u64;
        let out_len = crate::shape::element_count(&activation.output_shape(shape)?)? as u64;
        let len = out_len * k;
        let view = RowView::new(shape, activation.dim(), len as usize)?;
        let storage = check_grouped_regions([saved, grad_output, grad_input], len, out_len)?;
        if len == 0 {
            return Ok(());
        }
        // Inputs in grad_input's buffer other than in place are read from copies (made
        // once everything is validated, so an error leaves nothing in the encoder).
        let copy_saved = saved.buffer == grad_input.buffer && saved.offset != grad_input.offset;
        let copy_grad = grad_output.buffer == grad_input.buffer;
        let layout = Layout::backward(saved.buffer == grad_input.buffer && !copy_saved, false);
        let p = self.grouped_pieces(kind, view, k, len, true, storage)?;
        let subgroups = self.subgroups();
        let entry = if p.workgroups {
            Entry::GradGroupedWg { subgroups }
        } else {
            Entry::GradGrouped { subgroups }
        };
        let pipeline = self.pipeline(PipelineKey::new(activation.op(), layout, entry, storage))?;
        let staged_saved = match copy_saved {
            true => Some(self.copy_input(encoder, saved, len)?),
            false => None,
        };
        let staged_grad = match copy_grad {
            true => Some(self.copy_input(encoder, grad_output, out_len)?),
            false => None,
        };
        let regions = [
            staged_saved.as_ref().map_or(saved, |s| s.region()),
            staged_grad.as_ref().map_or(grad_output, |s| s.region()),
            grad_input,
        ];
        let cacheable = staged_saved.is_none() && staged_grad.is_none();
        let dispatches = self.grouped_grad_dispatches(&p, layout, regions, cacheable)?;
        self.record_pass(
            encoder,
            "wgpu-activations grouped backward",
            &pipeline,
            None,
            &dispatches,
        );
        Ok(())
    }

    /// One dispatch per piece of whole units: its windows of the saved input, of
    /// grad_output (`k` times shorter) and of grad_input, and its uniforms.
    fn grouped_grad_dispatches(
        &self,
        p: &super::grouped::Pieces,
        layout: Layout,
        [saved, grad, grad_input]: [BufferRegion<'_>; 3],
        cacheable: bool,
    ) -> Result<Vec<super::dispatch::Dispatch>> {
        let Layout::Backward {
            saved: sv,
            grad: gv,
        } = layout
        else {
            unreachable!("a backward layout");
        };
        let (k, wg) = (p.k, u64::from(self.workgroup_size()));
        let mut dispatches = Vec::new();
        for (first, count) in pieces(p.units, p.units_per_piece) {
            let (start, elements) = (first * p.unit, count * p.unit);
            let roles = [
                (sv.binding(), saved.skip(start), elements),
                (gv.binding(), grad.skip(start / k), elements / k),
                (1, grad_input.skip(start), elements),
            ];
            let (entries, deltas) = bind_windows(&roles, p.align);
            let outputs = elements / k;
            let element = |i: usize| (deltas[i] / grad_input.storage.bytes()) as u32;
            let uniforms = Uniforms {
                outputs: outputs as u32,
                k: p.group_len,
                inner: p.inner,
                saved_offset: element(0),
                grad_offset: element(1),
                out_offset: element(2),
                one: 1,
                pad: 0,
            };
            let group = self.bind_group_with_uniforms(
                "grouped backward",
                layout,
                entries,
                &uniforms,
                cacheable,
            )?;
            let wanted = if p.workgroups {
                outputs
            } else {
                outputs.div_ceil(wg)
            };
            dispatches.push((group, wanted.clamp(1, self.max_groups()) as u32));
        }
        Ok(dispatches)
    }
}
