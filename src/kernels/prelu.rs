//! PReLU with per-channel weights from the caller's buffer (`torch.nn.functional.prelu`).
//!
//! The spec `prelu(weight=W)` is an elementwise op with one weight (see the op table);
//! [`Context::encode_prelu`] takes 1 or C weights from a buffer, C being dim 1 of the
//! tensor, and `shaders/prelu.wgsl` picks each element's weight by its channel.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{window, F32};
use crate::cache::{Entry, PipelineKey};
use crate::shape::channel_layout;
use crate::{BufferRegion, Context, Error, Op, Result};

/// The uniform block of `shaders/prelu.wgsl` (`Prelu`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    n: u32,
    in_offset: u32,
    out_offset: u32,
    start: u32,
    channels: u32,
    inner: u32,
    w_offset: u32,
    one: u32,
}

impl Context {
    /// Records PReLU with weights from `weight` (1 value, or one per channel of dim 1 of
    /// `shape`, as `torch.nn.functional.prelu`): `output = x if x > 0 else w[c] * x`.
    /// `input` and `output` may be the same region (in place) or disjoint regions of one
    /// buffer; the weights need `STORAGE` usage.
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, w: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// // a batch of 8 images of 64 channels, 32 x 32, with 64 learned slopes
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// let region = BufferRegion::new(x);
    /// ctx.encode_prelu(&mut encoder, region, region, BufferRegion::new(w), 64, &[8, 64, 32, 32])?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_prelu(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        weight: BufferRegion<'_>,
        weights: usize,
        shape: &[usize],
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (channels, inner) = channel_layout(shape, len, weights)?;
        super::dispatch::check_parameter("weights", weight, weights as u64, output)?;
        let len = len as u64;
        let plan = self.plan(input, output, len)?;
        if len == 0 {
            return Ok(());
        }
        if weights == 0 {
            return Err(Error::Shape {
                shape: shape.to_vec(),
                reason: "prelu needs at least one weight".into(),
            });
        }
        let staged = self.stage_input(encoder, &plan, input, len)?;
        let input = staged.as_ref().map_or(input, |s| s.region());
        let key = PipelineKey::new(Op::Prelu, plan.layout(), Entry::Prelu, input.storage);
        let pipeline = self.pipeline(key)?;
        let limits = self.limits();
        let align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
        let ww = window(weight, weights as u64, align);
        let wgroup = self.scoped(|| {
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("prelu weights"),
                layout: self.weights_layout(),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: weight.buffer,
                        offset: ww.start,
                        size: wgpu::BufferSize::new(ww.size),
                    }),
                }],
            })
        })?;
        let dispatches =
            self.chunk_dispatches("prelu", &plan, input, output, len, staged.is_none(), |c| {
                Uniforms {
                    n: c.count as u32,
                    in_offset: c.in_offset,
                    out_offset: c.out_offset,
                    start: c.start as u32,
                    channels: if weights == 1 { 1 } else { channels as u32 },
                    inner: inner as u32,
                    w_offset: (ww.delta / F32) as u32,
                    one: 1,
                }
            })?;
        self.record_pass(
            encoder,
            "wgpu-activations prelu",
            &pipeline,
            Some(&wgroup),
            &dispatches,
        );
        Ok(())
    }

    /// PReLU with 1 or C weights (C = dim 1 of `shape`), blocking: the convenience form
    /// of [`Context::encode_prelu`].
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// let y = ctx.run_prelu(&[-1.0, 2.0, -1.0, 2.0], &[1, 2, 2], &[0.5, 0.25])?;
    /// assert_eq!(y, [-0.5, 2.0, -0.25, 2.0]);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_prelu(&self, input: &[f32], shape: &[usize], weight: &[f32]) -> Result<Vec<f32>> {
        channel_layout(shape, input.len(), weight.len())?;
        let wbuf = self.scoped(|| self.parameter_buffer("prelu weights", weight))?;
        self.run_with_buffers(input, |encoder, src, dst| {
            self.encode_prelu(
                encoder,
                src,
                dst,
                BufferRegion::new(&wbuf),
                weight.len(),
                shape,
            )
        })
    }
}
