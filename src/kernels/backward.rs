//! The backward kernels' host side: `grad_input` from the saved tensor (the forward's
//! input x, or its output y where the op table says [`Saved::Output`]) and `grad_output`.
//!
//! The elementwise family runs `shaders/backward.wgsl`: three regions, each bound through
//! its own binding, or through grad_input's where it shares that buffer (in place on
//! grad_output, or on the saved tensor); an input too far from grad_input in one buffer
//! for a useful window is staged in a copy first, as the forward does.
//!
//! [`Saved::Output`]: crate::op::Saved::Output

use bytemuck::{Pod, Zeroable};

use super::dispatch::{bind_windows, check_in_place, check_region, pieces};
use crate::cache::{Entry, Layout, PipelineKey};
use crate::op::Kernel;
use crate::region::call_storage;
use crate::{Activation, BufferRegion, Context, Element, Error, Result, Storage, Strategy};

/// The uniform block of `shaders/backward.wgsl` (`Params`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    n: u32,
    saved_offset: u32,
    grad_offset: u32,
    out_offset: u32,
    scalar_start: u32,
    pad: [u32; 3],
    p: [f32; 4],
}

/// Copies of a backward call's inputs (saved, grad_output) made where they lay too far
/// from grad_input in its buffer.
pub(super) type Staged = [Option<super::dispatch::Staged>; 2];

/// A backward call's three regions, after staging.
#[derive(Clone, Copy)]
pub(super) struct Regions<'a> {
    pub(super) saved: BufferRegion<'a>,
    pub(super) grad: BufferRegion<'a>,
    pub(super) out: BufferRegion<'a>,
}

impl<'a> Regions<'a> {
    /// The regions a kernel reads: the copies in `staged` where there are any.
    pub(super) fn reading(
        saved: BufferRegion<'a>,
        grad: BufferRegion<'a>,
        out: BufferRegion<'a>,
        staged: &'a Staged,
    ) -> Self {
        Regions {
            saved: staged[0].as_ref().map_or(saved, |s| s.region()),
            grad: staged[1].as_ref().map_or(grad, |s| s.region()),
            out,
        }
    }

    /// Where each input is read: through grad_input's binding when it shares that buffer,
    /// else through a binding of its own.
    pub(super) fn layout(&self) -> Layout {
        Layout::backward(
            self.saved.buffer == self.out.buffer,
            self.grad.buffer == self.out.buffer,
        )
    }

    /// The storage bindings of `count` elements from element `start` of the three
    /// regions (through the bindings the layout gives them), and the byte offsets of
    /// (saved, grad_output, grad_input) inside their windows.
    pub(super) fn bindings(
        &self,
        start: u64,
        count: u64,
        align: u64,
    ) -> (Vec<crate::cache::StorageBinding>, Vec<u64>) {
        let Layout::Backward { saved, grad } = self.layout() else {
            unreachable!("Regions::layout is a backward layout");
        };
        let roles = [
            (saved.binding(), self.saved.skip(start), count),
            (grad.binding(), self.grad.skip(start), count),
            (1, self.out.skip(start), count),
        ];
        bind_windows(&roles, align)
    }

    /// The bytes between the first and the last offset of the ranges grad_input's
    /// binding would cover with the inputs marked in `staged` read from copies.
    fn reach(&self, staged: [bool; 2]) -> u64 {
        let shared = [self.saved, self.grad]
            .into_iter()
            .zip(staged)
            .filter(|(r, copied)| !copied && r.buffer == self.out.buffer)
            .map(|(r, _)| r.offset);
        let (lo, hi) = shared.fold((self.out.offset, self.out.offset), |(lo, hi), o| {
            (lo.min(o), hi.max(o))
        });
        hi - lo
    }
}

impl Context {
    /// Records `grad_input[i] = grad_output[i] * f'(...)` for `len` elements of an
    /// elementwise op into the caller's encoder, reading `saved`: the forward's input x,
    /// or its output y where [`Op::backward`](crate::Op::backward) says
    /// [`Saved::Output`](crate::op::Saved::Output) (sigmoid, tanh). Other families go to
    /// [`Context::encode_backward_shaped`] with the shape `[len]`.
    ///
    /// grad_input may be grad_output's region (in place) or the saved tensor's, or
    /// disjoint from both; partial overlaps are errors. Buffers need `STORAGE` usage and
    /// offsets must be multiples of the element size, as for [`Context::encode`].
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, g: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let gelu = "gelu".parse()?;
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// // in place: grad_input overwrites grad_output
    /// let g = BufferRegion::new(g);
    /// ctx.encode_backward(&mut encoder, &gelu, BufferRegion::new(x), g, g, 1024)?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        len: u64,
    ) -> Result<()> {
        if activation.op().elementwise_grad().is_none() {
            let len = usize::try_from(len).map_err(|_| {
                Error::Unsupported(format!("{len} elements do not fit this host's usize"))
            })?;
            return self.encode_backward_shaped(
                encoder,
                activation,
                saved,
                grad_output,
                grad_input,
                &[len],
            );
        }
        let Some(plan) = self.plan_backward(saved, grad_output, grad_input, len)? else {
            return Ok(());
        };
        self.check_budget(
            self.grid_stride_iterations(plan.chunk.min(len), 1),
            &format!("{len} elements"),
        )?;
        self.record_backward(encoder, activation, &plan, [saved, grad_output, grad_input])
    }

    /// Validates a backward call's three regions of `len` elements (in place on either
    /// input allowed, partial overlaps refused) and decides which inputs lie too far
    /// from grad_input in its buffer for one window (a quarter of a binding left for the
    /// chunk), farthest first: those are read from copies ([`Context::stage_backward`],
    /// which the caller runs once everything else is validated, so that an error leaves
    /// nothing in its encoder). `None` for an empty call.
    pub(super) fn plan_backward(
        &self,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        len: u64,
    ) -> Result<Option<BackwardPlan>> {
        check_region("saved", saved, len)?;
        check_region("grad_output", grad_output, len)?;
        check_region("grad_input", grad_input, len)?;
        check_in_place("saved", "grad_input", saved, grad_input, len)?;
        check_in_place("grad_output", "grad_input", grad_output, grad_input, len)?;
        let storage = call_storage(&[
            ("saved tensor", saved),
            ("grad_output", grad_output),
            ("grad_input", grad_input),
        ])?;
        if len == 0 {
            return Ok(None);
        }
        // elements per 16 bytes: chunks of whole vec4-sized blocks
        let per_16 = 16 / storage.bytes();
        let regions = Regions {
            saved,
            grad: grad_output,
            out: grad_input,
        };
        let limits = self.limits();
        let align = self.binding_alignment();
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let full = max_binding.saturating_sub(align) / 16 * per_16;
        if full == 0 {
            return Err(Error::Unsupported(format!(
                "max_storage_buffer_binding_size {max_binding} leaves no room past the \
                 offset alignment {align}"
            )));
        }
        let mut copy = [false; 2];
        let chunk = loop {
            let chunk = max_binding.saturating_sub(align + regions.reach(copy)) / 16 * per_16;
            if chunk >= full / 4 {
                break chunk;
            }
            let distance = |i: usize, r: BufferRegion<'_>| {
                (!copy[i] && r.buffer == regions.out.buffer)
                    .then(|| r.offset.abs_diff(regions.out.offset))
            };
            let farthest = usize::from(distance(1, regions.grad) > distance(0, regions.saved));
            copy[farthest] = true;
        };
        // The layout the regions will have: a copied input is a buffer of its own.
        let shares = |i: usize, r: BufferRegion<'_>| r.buffer == grad_input.buffer && !copy[i];
        let layout = Layout::backward(shares(0, saved), shares(1, grad_output));
        Ok(Some(BackwardPlan {
            copy,
            chunk,
            len,
            layout,
            storage,
        }))
    }

    /// Records the copies `plan` asks for (the saved tensor's, grad_output's).
    pub(super) fn stage_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &BackwardPlan,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
    ) -> Result<Staged> {
        let mut staged = [None, None];
        for (i, region) in [saved, grad_output].into_iter().enumerate() {
            if plan.copy[i] {
                staged[i] = Some(self.copy_input(encoder, region, plan.len)?);
            }
        }
        Ok(staged)
    }
}

/// A validated backward call: which inputs to read from copies, and the chunk size.
pub(super) struct BackwardPlan {
    copy: [bool; 2],
    /// Elements per binding-sized chunk (a multiple of 16 bytes).
    pub(super) chunk: u64,
    len: u64,
    /// The bindings the inputs will be read through (after staging).
    pub(super) layout: Layout,
    /// The tensors' element type.
    pub(super) storage: Storage,
}

impl BackwardPlan {
    /// Whether no input is read from a copy (a copy is fresh per call, so its bind
    /// groups are not worth caching).
    pub(super) fn cacheable(&self) -> bool {
        !self.copy.contains(&true)
    }
}

impl Context {
    /// The pipelines, the staging copies, the bind groups and the pass of an elementwise
    /// backward call on (saved, grad_output, grad_input).
    fn record_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        plan: &BackwardPlan,
        [saved, grad_output, grad_input]: [BufferRegion<'_>; 3],
    ) -> Result<()> {
        let layout = plan.layout;
        let key = |entry| PipelineKey::new(activation.op(), layout, entry, plan.storage);
        let vec4 = self.pipeline(key(Entry::GradVec4))?;
        let scalar = self.pipeline(key(Entry::GradScalar))?;
        let staged = self.stage_backward(encoder, plan, saved, grad_output)?;
        let regions = Regions::reading(saved, grad_output, grad_input, &staged);
        let (len, chunk, cacheable) = (plan.len, plan.chunk, plan.cacheable());
        let align = self.binding_alignment();
        let mut dispatches = Vec::new();
        for (start, count) in pieces(len, chunk) {
            let (entries, deltas) = regions.bindings(start, count, align);
            // the vec4 path needs every range at a whole 4-element block
            let bytes = plan.storage.bytes();
            let vectorised = deltas.iter().all(|d| d.is_multiple_of(4 * bytes));
            let scalar_start = if vectorised { count / 4 * 4 } else { 0 };
            let element = |i: usize| (deltas[i] / bytes) as u32;
            let uniforms = Uniforms {
                n: count as u32,
                saved_offset: element(0),
                grad_offset: element(1),
                out_offset: element(2),
                scalar_start: scalar_start as u32,
                pad: [0; 3],
                p: activation.param_slots(),
            };
            let group =
                self.bind_group_with_uniforms("backward", layout, entries, &uniforms, cacheable)?;
            dispatches.push((group, vectorised, count, scalar_start));
        }
        self.record_vec4_and_tail(
            encoder,
            "wgpu-activations backward",
            [&vec4, &scalar],
            &dispatches,
        );
        Ok(())
    }

    /// `grad_input` of `activation` on the host's slices: the blocking convenience form of
    /// [`Context::encode_backward`] (and of [`Context::encode_backward_shaped`] for a 1-D
    /// tensor). `saved` is the forward's input x, or its output y where
    /// [`Op::backward`](crate::Op::backward) says so (sigmoid, tanh, the softmax family).
    ///
    /// ```no_run
    /// use wgpu_activations::{Activation, Context};
    /// let ctx = Context::new()?;
    /// let relu: Activation = "relu".parse()?;
    /// let grad_input = ctx.run_backward(&relu, &[-1.0, 0.0, 2.0], &[5.0, 5.0, 5.0])?;
    /// assert_eq!(grad_input, [0.0, 0.0, 5.0]);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_backward(
        &self,
        activation: &Activation,
        saved: &[f32],
        grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        self.run_backward_shaped(activation, saved, grad_output, &[saved.len()])
    }

    /// [`Context::run_backward`] for a tensor of `shape` (the softmax family along its
    /// `dim`, the grouped ops, whose grad_output has the forward output's shape).
    pub fn run_backward_shaped(
        &self,
        activation: &Activation,
        saved: &[f32],
        grad_output: &[f32],
        shape: &[usize],
    ) -> Result<Vec<f32>> {
        self.run_backward_typed(activation, saved, grad_output, shape)
    }

    /// [`Context::run_backward_shaped`] on f32, [`half::f16`] or [`half::bf16`]
    /// elements: the kernels load them, compute in f32 and round once to `T` at the
    /// store.
    ///
    /// ```no_run
    /// use half::bf16;
    /// use wgpu_activations::{Activation, Context};
    /// let ctx = Context::new()?;
    /// let gelu: Activation = "gelu".parse()?;
    /// let x = [-1.0f32, 0.0, 2.0].map(bf16::from_f32);
    /// let g = [bf16::ONE; 3];
    /// let grad_input = ctx.run_backward_typed(&gelu, &x, &g, &[3])?;
    /// assert_eq!(grad_input[1], bf16::from_f32(0.5));
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_backward_typed<T: Element>(
        &self,
        activation: &Activation,
        saved: &[T],
        grad_output: &[T],
        shape: &[usize],
    ) -> Result<Vec<T>> {
        let expected = crate::shape::element_count(&activation.output_shape(shape)?)?;
        crate::shape::check_grad_len(saved.len(), grad_output.len(), expected)?;
        crate::shape::check_len(shape, saved.len())?;
        let len = saved.len();
        if activation.op().elementwise_grad().is_some() {
            let piece = (self.limits().max_buffer_size / 4).clamp(4, 1 << 28) as usize;
            let mut out = Vec::with_capacity(len);
            for (s, g) in saved.chunks(piece).zip(grad_output.chunks(piece)) {
                out.extend(
                    self.run_with_inputs(&[s, g], s.len(), |encoder, inputs, gx| {
                        self.encode_backward(
                            encoder,
                            activation,
                            inputs[0],
                            inputs[1],
                            gx,
                            s.len() as u64,
                        )
                    })?,
                );
            }
            return Ok(out);
        }
        self.run_with_inputs(&[saved, grad_output], len, |encoder, inputs, gx| {
            self.encode_backward_shaped(encoder, activation, inputs[0], inputs[1], gx, shape)
        })
    }

    /// Records the backward of `activation` for a tensor of `shape`: the softmax family
    /// along its `dim` (saved is y), the grouped ops (saved is x, grad_output has the
    /// forward output's shape), the random ops (re-drawing the forward's numbers). An
    /// elementwise op treats the shape as its element count.
    pub fn encode_backward_shaped(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        shape: &[usize],
    ) -> Result<()> {
        match activation.op().info().kernel {
            Kernel::Elementwise { .. } => {
                let len = crate::shape::element_count(shape)? as u64;
                self.encode_backward(encoder, activation, saved, grad_output, grad_input, len)
            }
            Kernel::Softmax(_) => self.encode_backward_rows(
                encoder,
                activation,
                saved,
                grad_output,
                grad_input,
                shape,
                Strategy::Auto,
            ),
            Kernel::Grouped(_) => self.encode_backward_grouped(
                encoder,
                activation,
                saved,
                grad_output,
                grad_input,
                shape,
            ),
            Kernel::Random(_) => {
                let len = crate::shape::element_count(shape)? as u64;
                self.encode_backward_random(
                    encoder,
                    activation,
                    saved,
                    grad_output,
                    grad_input,
                    len,
                )
            }
            Kernel::Statistical => self.encode_dice_spec_backward(
                encoder,
                activation,
                saved,
                grad_output,
                grad_input,
                shape,
            ),
        }
    }
}
