//! The elementwise family: `y[i] = f(x[i])`.
//!
//! Host side of `shaders/elementwise.wgsl`: validates the caller's buffers, splits the
//! range into chunks that fit the device's storage-binding limit (binding offsets aligned
//! to `min_storage_buffer_offset_alignment`, the remainder passed as an element offset),
//! and records one vec4 dispatch for the body and one scalar dispatch for the tail of each.

use bytemuck::{Pod, Zeroable};

use super::dispatch::pieces;
use crate::cache::{Entry, PipelineKey};
use crate::op::Kernel;
/// Re-exported from its own module (the path of earlier versions).
pub use crate::region::BufferRegion;
use crate::{Activation, Context, Element, Error, Result};

/// The uniform block of `shaders/elementwise.wgsl` (`Params`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    n: u32,
    in_offset: u32,
    out_offset: u32,
    scalar_start: u32,
    p: [f32; 4],
}

impl Context {
    /// Records `output[i] = activation(input[i])` for `len` elements into the
    /// caller's encoder. Nothing is submitted or read back.
    ///
    /// `input` and `output` may be the same region (in place) or disjoint regions of one
    /// buffer. Both buffers need `STORAGE` usage; offsets must be multiples of the element
    /// size (the regions' [`Storage`](crate::Storage), which they share).
    /// Ranges longer than the device's `max_storage_buffer_binding_size` are processed
    /// in chunks; `len == 0` records nothing.
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let gelu = "gelu".parse()?;
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// ctx.encode(&mut encoder, &gelu, BufferRegion::new(x), BufferRegion::new(y), 1024)?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        len: u64,
    ) -> Result<()> {
        if activation.op().elementwise().is_none() {
            let len = usize::try_from(len).map_err(|_| {
                Error::Unsupported(format!("{len} elements do not fit this host's usize"))
            })?;
            return self.encode_shaped(encoder, activation, input, output, &[len]);
        }
        let plan = self.plan(input, output, len)?;
        if len == 0 {
            return Ok(());
        }
        // The scalar path of a misaligned chunk is the longest loop.
        let per_invocation = self.grid_stride_iterations(plan.chunk.min(len), 1);
        self.check_budget(per_invocation, &format!("{len} elements"))?;
        let staged = self.stage_input(encoder, &plan, input, len)?;
        let input = staged.as_ref().map_or(input, |s| s.region());
        let key = |entry| PipelineKey::new(activation.op(), plan.layout(), entry, input.storage);
        let vec4 = self.pipeline(key(Entry::Vec4))?;
        let scalar = self.pipeline(key(Entry::Scalar))?;
        // Bind groups first (cached, or created in an error scope), then the pass.
        let mut dispatches = Vec::new();
        {
            for (start, count) in pieces(len, plan.chunk) {
                let (entries, in_delta, out_delta) = plan.bindings(input, output, start, count);
                // the vec4 path needs both ranges at whole 4-element blocks
                let bytes = input.storage.bytes();
                let block = 4 * bytes;
                let vectorised = in_delta.is_multiple_of(block) && out_delta.is_multiple_of(block);
                let scalar_start = if vectorised { count / 4 * 4 } else { 0 };
                let uniforms = Uniforms {
                    n: count as u32,
                    in_offset: (in_delta / bytes) as u32,
                    out_offset: (out_delta / bytes) as u32,
                    scalar_start: scalar_start as u32,
                    p: activation.param_slots(),
                };
                let bind_group = self.bind_group_with_uniforms(
                    "elementwise",
                    plan.layout(),
                    entries,
                    &uniforms,
                    staged.is_none(),
                )?;
                dispatches.push((bind_group, vectorised, count, scalar_start));
            }
        }

        self.record_vec4_and_tail(
            encoder,
            "wgpu-activations elementwise",
            [&vec4, &scalar],
            &dispatches,
        );
        Ok(())
    }
}

impl Context {
    /// Applies `activation` to `input` on the GPU and returns the result: the blocking
    /// convenience API, for tests, examples and quick use.
    ///
    /// ```no_run
    /// use wgpu_activations::{Activation, Context};
    /// let ctx = Context::new()?;
    /// let mish: Activation = "mish".parse()?;
    /// let y = ctx.run(&mish, &[-1.0, 0.0, 1.0])?;
    /// assert_eq!(y.len(), 3);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run(&self, activation: &Activation, input: &[f32]) -> Result<Vec<f32>> {
        // One axis: a grouped op's output is shorter (the slice is one axis of groups).
        self.run_shaped(activation, input, &[input.len()])
    }

    /// Like [`Context::run`], writing into `output` (which must have `input.len()`
    /// elements: not for the grouped ops, whose output is shorter).
    pub fn run_into(
        &self,
        activation: &Activation,
        input: &[f32],
        output: &mut [f32],
    ) -> Result<()> {
        if input.len() != output.len() {
            return Err(Error::LengthMismatch {
                input: input.len(),
                output: output.len(),
            });
        }
        if activation.output_shape(&[input.len()])? != [input.len()] {
            return Err(Error::Unsupported(format!(
                "`{activation}` shrinks its axis, so the output is shorter than the input; \
                 use run or run_shaped"
            )));
        }
        match activation.op().info().kernel {
            Kernel::Elementwise { .. } => self.run_elementwise_into(activation, input, output),
            // One tensor of one axis (a softmax row, dice's batch, the random ops'
            // counter): no pieces.
            _ => {
                let y = self.run_shaped(activation, input, &[input.len()])?;
                output.copy_from_slice(&y);
                Ok(())
            }
        }
    }

    /// An elementwise op on the host's slices, in pieces small enough for one buffer each
    /// (and at most 1 GiB of host staging).
    pub(crate) fn run_elementwise_into<T: Element>(
        &self,
        activation: &Activation,
        input: &[T],
        output: &mut [T],
    ) -> Result<()> {
        let piece = (self.limits().max_buffer_size / 4).clamp(4, 1 << 28) as usize;
        for (x, y) in input.chunks(piece).zip(output.chunks_mut(piece)) {
            self.run_piece(activation, x, y)?;
        }
        Ok(())
    }

    fn run_piece<T: Element>(
        &self,
        activation: &Activation,
        input: &[T],
        output: &mut [T],
    ) -> Result<()> {
        let len = input.len() as u64;
        let result = self.run_with_buffers(input, |encoder, src, dst| {
            self.encode(encoder, activation, src, dst, len)
        })?;
        output.copy_from_slice(&result);
        Ok(())
    }
}
