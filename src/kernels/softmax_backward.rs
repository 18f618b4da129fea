//! The softmax family's backward along any axis: `shaders/softmax_backward.wgsl`, from the
//! saved output y and grad_output, with the forward's row view and strategies (one
//! invocation, one subgroup or one workgroup per row, or rows split into chunks;
//! [`Strategy::Resident`] runs as [`Strategy::Workgroup`], since the backward reads two
//! tensors per row).

use bytemuck::{Pod, Zeroable};

use super::backward::Regions;
use super::dispatch::pieces;
use super::softmax::record_rows;
use crate::cache::Direction;
use crate::{Activation, BufferRegion, Context, Error, Result, RowView, Strategy};

/// The uniform block of `shaders/softmax_backward.wgsl` (`Rows`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    rows: u32,
    axis: u32,
    inner: u32,
    saved_offset: u32,
    grad_offset: u32,
    out_offset: u32,
    chunk_len: u32,
    chunks: u32,
    one: u32,
    pad: [u32; 3],
}

impl Context {
    /// Records the backward of a softmax-family op on a tensor of `shape` along the
    /// activation's `dim`, with a chosen strategy: `saved` is the forward's output y,
    /// `grad_output` and `grad_input` have the same shape. grad_input may be grad_output's
    /// region or y's (in place), or disjoint from both.
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion, Strategy};
    /// # fn demo(ctx: &Context, y: &wgpu::Buffer, g: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let softmax = "softmax(dim=-1)".parse()?;
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// let g = BufferRegion::new(g);
    /// // in place on grad_output: 8 rows of 32,000
    /// ctx.encode_backward_rows(&mut encoder, &softmax, BufferRegion::new(y), g, g, &[8, 32_000], Strategy::Auto)?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_backward_rows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        shape: &[usize],
        strategy: Strategy,
    ) -> Result<()> {
        if activation.op().softmax().is_none() {
            return Err(Error::Unsupported(format!(
                "`{activation}` is not a softmax-family op; use encode_backward"
            )));
        }
        let view = RowView::new(shape, activation.dim(), crate::shape::element_count(shape)?)?;
        let len = view.len() as u64;
        let Some(plan) = self.plan_backward(saved, grad_output, grad_input, len)? else {
            return Ok(());
        };
        let strategy = self.resolve_strategy(strategy, view, plan.storage, Direction::Backward)?;
        let slab = (view.axis * view.inner) as u64;
        let slabs_per_piece = plan.chunk / slab;
        if slabs_per_piece == 0 {
            return Err(Error::Unsupported(format!(
                "one {} x {} slab of the tensor ({} bytes) exceeds this device's storage \
                 binding limit ({} bytes)",
                view.axis,
                view.inner,
                saved.bytes(slab),
                self.limits().max_storage_buffer_binding_size
            )));
        }
        let piece_rows = (slabs_per_piece as usize).min(view.outer) * view.inner;
        let (chunk_len, chunks) = self.chunking(strategy, piece_rows as u64, view.axis as u64);
        let layout = plan.layout;
        let kernels = self.row_kernels(
            activation,
            layout,
            strategy,
            false,
            Direction::Backward,
            plan.storage,
        )?;
        let partials = match strategy {
            Strategy::Split => Some(self.partials_group(piece_rows as u64 * chunks * 16)?),
            _ => None,
        };
        let staged = self.stage_backward(encoder, &plan, saved, grad_output)?;
        let regions = Regions::reading(saved, grad_output, grad_input, &staged);
        let cacheable = plan.cacheable();
        let mut dispatches = Vec::new();
        for (outer_start, outer) in pieces(view.outer as u64, slabs_per_piece) {
            let (start, count) = (outer_start * slab, outer * slab);
            let (entries, deltas) = regions.bindings(start, count, self.binding_alignment());
            let rows = outer as usize * view.inner;
            let element = |i: usize| (deltas[i] / plan.storage.bytes()) as u32;
            let uniforms = Uniforms {
                rows: rows as u32,
                axis: view.axis as u32,
                inner: view.inner as u32,
                saved_offset: element(0),
                grad_offset: element(1),
                out_offset: element(2),
                chunk_len: chunk_len as u32,
                chunks: chunks as u32,
                one: 1,
                pad: [0; 3],
            };
            let group = self.bind_group_with_uniforms(
                "softmax backward",
                layout,
                entries,
                &uniforms,
                cacheable,
            )?;
            let groups = self.dispatch_groups(strategy, rows as u64, view, chunks);
            dispatches.push((group, groups as u32));
        }
        record_rows(encoder, &kernels, partials.as_deref(), &dispatches);
        Ok(())
    }

    /// [`Context::encode_backward_rows`] on the host's slices: grad_input of a
    /// softmax-family op from its output `y` and `grad_output`, with a chosen strategy.
    pub fn run_backward_rows(
        &self,
        activation: &Activation,
        y: &[f32],
        grad_output: &[f32],
        shape: &[usize],
        strategy: Strategy,
    ) -> Result<Vec<f32>> {
        crate::shape::check_grad_len(y.len(), grad_output.len(), y.len())?;
        RowView::new(shape, activation.dim(), y.len())?;
        self.run_with_inputs(&[y, grad_output], y.len(), |encoder, inputs, gx| {
            self.encode_backward_rows(
                encoder, activation, inputs[0], inputs[1], gx, shape, strategy,
            )
        })
    }
}
