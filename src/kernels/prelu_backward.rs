//! PReLU's backward with 1 or C weights (C = dim 1 of the tensor): grad_input and the
//! weight gradient per channel, a reduction over every other dim, in one read of x and
//! grad_output (`shaders/prelu_backward.wgsl`).

use bytemuck::{Pod, Zeroable};

use super::backward::Regions;
use super::dispatch::{check_parameter, check_written_apart, pieces, window, F32};
use crate::cache::{Entry, PipelineKey};
use crate::shape::channel_layout;
use crate::{BufferRegion, Context, Error, Op, Result};

/// The uniform block of `shaders/prelu_backward.wgsl` (`PreluGrad`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
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
    pad: [u32; 3],
}

/// Where PReLU's backward reads and writes: x, grad_output and grad_input (the tensor's
/// shape), the weights and the weight gradient (1 or C values).
#[derive(Clone, Copy, Debug)]
pub struct PreluGradRegions<'a> {
    /// The forward's input x.
    pub x: BufferRegion<'a>,
    /// grad_output, the tensor's shape.
    pub grad_output: BufferRegion<'a>,
    /// grad_input, written: may be x's or grad_output's region (in place).
    pub grad_input: BufferRegion<'a>,
    /// The weights the forward used.
    pub weight: BufferRegion<'a>,
    /// The weight gradient, written (not accumulated into): in a buffer of its own, apart
    /// from the weights, x and grad_output.
    pub grad_weight: BufferRegion<'a>,
}

impl Context {
    /// Records PReLU's backward with 1 or C weights (C = dim 1 of `shape`, as
    /// [`Context::encode_prelu`]): `grad_input = g if x > 0 else w[c] g`, and
    /// `grad_weight[c]` = the sum over channel c of `x g` where `x <= 0` (PyTorch's, NaN
    /// included), computed with compensated sums in one pass over x and grad_output.
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion, PreluGradRegions};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, g: &wgpu::Buffer, w: &wgpu::Buffer, gw: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// let g = BufferRegion::new(g);
    /// let regions = PreluGradRegions {
    ///     x: BufferRegion::new(x),
    ///     grad_output: g,
    ///     grad_input: g, // in place
    ///     weight: BufferRegion::new(w),
    ///     grad_weight: BufferRegion::new(gw),
    /// };
    /// ctx.encode_prelu_backward(&mut encoder, regions, 64, &[8, 64, 32, 32])?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_prelu_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        r: PreluGradRegions<'_>,
        weights: usize,
        shape: &[usize],
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (channels, inner) = channel_layout(shape, len, weights)?;
        if weights == 0 {
            return Err(Error::Shape {
                shape: shape.to_vec(),
                reason: "prelu needs at least one weight".into(),
            });
        }
        // one weight: one channel of every element
        let (channels, inner) = if weights == 1 {
            (1, 1)
        } else {
            (channels, inner)
        };
        let len = len as u64;
        check_prelu_outputs(r, weights as u64, len)?;
        let Some(plan) = self.plan_backward(r.x, r.grad_output, r.grad_input, len)? else {
            return Ok(());
        };
        let p = self.prelu_pieces(channels as u64, inner as u64, len, plan.chunk)?;
        let layout = plan.layout;
        let subgroups = self.subgroups();
        let key = |entry| PipelineKey::new(Op::Prelu, layout, entry, plan.storage);
        let grad = self.pipeline(key(Entry::GradPrelu { subgroups }))?;
        let weight_sum = self.pipeline(key(Entry::GradPreluWeight { subgroups }))?;
        let group1 = self.prelu_grad_group(r, weights as u64, p.count * p.channels * p.slices)?;
        let staged = self.stage_backward(encoder, &plan, r.x, r.grad_output)?;
        let regions = Regions::reading(r.x, r.grad_output, r.grad_input, &staged);
        let dispatches = self.prelu_dispatches(&p, regions, r, weights as u64, plan.cacheable())?;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-activations prelu backward"),
            timestamp_writes: None,
        });
        pass.set_bind_group(1, &group1, &[]);
        pass.set_pipeline(&grad);
        for (group, groups) in &dispatches {
            pass.set_bind_group(0, group.as_ref(), &[]);
            pass.dispatch_workgroups(*groups, 1, 1);
        }
        // every piece's partials are written: add them per channel (group 0 is the last
        // piece's, whose uniforms carry the counts)
        pass.set_pipeline(&weight_sum);
        let wg = u64::from(self.workgroup_size());
        pass.dispatch_workgroups(p.channels.div_ceil(wg) as u32, 1, 1);
        Ok(())
    }

    /// How a call is cut: pieces of whole slabs (`channels x inner` elements) within a
    /// binding of `chunk` elements, each channel of a piece in slices, within the loop
    /// budget.
    fn prelu_pieces(&self, channels: u64, inner: u64, len: u64, chunk: u64) -> Result<PreluPieces> {
        let slab = channels * inner;
        if slab > chunk {
            return Err(Error::Unsupported(format!(
                "one slab of {channels} channels x {inner} elements exceeds this device's \
                 storage binding limit"
            )));
        }
        let slabs_per_piece = chunk / slab;
        let outer = len / slab;
        let per_channel = slabs_per_piece.min(outer) * inner;
        let (slices, slice_len) = self.prelu_slices(channels, per_channel);
        let p = PreluPieces {
            channels,
            inner,
            slab,
            slabs_per_piece,
            outer,
            count: outer.div_ceil(slabs_per_piece),
            slices,
            slice_len,
        };
        let wg = u64::from(self.workgroup_size());
        self.check_budget(
            (channels * slices).div_ceil(self.max_groups()) * (slice_len.div_ceil(wg) + 2 * wg),
            &format!("prelu's backward over {len} elements"),
        )?;
        self.check_budget(p.count * slices, "prelu's weight gradient")?;
        Ok(p)
    }

    /// One dispatch per piece: its bound windows and uniforms.
    fn prelu_dispatches(
        &self,
        p: &PreluPieces,
        regions: Regions<'_>,
        r: PreluGradRegions<'_>,
        weights: u64,
        cacheable: bool,
    ) -> Result<Vec<super::dispatch::Dispatch>> {
        let align = self.binding_alignment();
        let w_delta = (window(r.weight, weights, align).delta / F32) as u32;
        let gw_delta = (window(r.grad_weight, weights, align).delta / F32) as u32;
        let mut dispatches = Vec::new();
        for (piece, (first, count)) in pieces(p.outer, p.slabs_per_piece).enumerate() {
            let (entries, deltas) = regions.bindings(first * p.slab, count * p.slab, align);
            let element = |i: usize| (deltas[i] / r.x.storage.bytes()) as u32;
            let uniforms = Uniforms {
                n: (count * p.slab) as u32,
                saved_offset: element(0),
                grad_offset: element(1),
                out_offset: element(2),
                channels: p.channels as u32,
                inner: p.inner as u32,
                w_offset: w_delta,
                gw_offset: gw_delta,
                slices: p.slices as u32,
                slice_len: p.slice_len as u32,
                piece: piece as u32,
                pieces: p.count as u32,
                one: 1,
                pad: [0; 3],
            };
            let layout = regions.layout();
            let group = self.bind_group_with_uniforms(
                "prelu backward",
                layout,
                entries,
                &uniforms,
                cacheable,
            )?;
            let groups = (p.channels * p.slices).clamp(1, self.max_groups()) as u32;
            dispatches.push((group, groups));
        }
        Ok(dispatches)
    }
}

/// How PReLU's backward cuts a tensor: pieces of whole slabs of `channels x inner`
/// elements (the channels of one outer index), each channel of a piece in `slices` slices
/// of `slice_len` elements, one workgroup each.
struct PreluPieces {
    channels: u64,
    inner: u64,
    slab: u64,
    slabs_per_piece: u64,
    outer: u64,
    /// Pieces in the call.
    count: u64,
    slices: u64,
    slice_len: u64,
}

/// The weights and the weight gradient: their regions, and where they may lie: the
/// weights not in grad_input's buffer, grad_weight in none the kernels read (it is
/// written while they are read through read-only bindings) and apart from grad_input.
fn check_prelu_outputs(r: PreluGradRegions<'_>, weights: u64, len: u64) -> Result<()> {
    check_parameter("weights", r.weight, weights, r.grad_input)?;
    crate::region::require_f32("grad_weight", r.grad_weight)?;
    let read = [
        ("weights", r.weight),
        ("x", r.x),
        ("grad_output", r.grad_output),
    ];
    check_written_apart(
        "grad_weight",
        r.grad_weight,
        weights,
        &read,
        r.grad_input,
        len,
    )
}

impl Context {
    /// Slices per channel and elements per slice for channels of `per_channel`
    /// elements: about as many workgroups as the device wants (2,048 on a GPU, two per
    /// core on a CPU adapter), each slice at least 4 elements per invocation, and within
    /// the loop budget.
    fn prelu_slices(&self, channels: u64, per_channel: u64) -> (u64, u64) {
        let wg = u64::from(self.workgroup_size());
        let target = self.cpu_cores().map_or(2048, |c| 2 * c as u64);
        let most = per_channel.div_ceil(4 * wg).max(1);
        let mut slices = target.div_ceil(channels.max(1)).clamp(1, most);
        if let Some(budget) = self.loop_budget() {
            slices = slices.max(per_channel.div_ceil(wg * (budget / 2).max(1)));
        }
        (slices, per_channel.div_ceil(slices).max(1))
    }

    /// Bind group 1 of PReLU's backward: the weights, a scratch buffer of `partials`
    /// partial sums, and grad_weight.
    fn prelu_grad_group(
        &self,
        r: PreluGradRegions<'_>,
        weights: u64,
        partials: u64,
    ) -> Result<wgpu::BindGroup> {
        let align = self.binding_alignment();
        let (ww, gww) = (
            window(r.weight, weights, align),
            window(r.grad_weight, weights, align),
        );
        self.scoped(|| {
            let scratch = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("prelu partial sums"),
                size: (partials * 8).max(16),
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let buffer = |buffer, w: super::dispatch::Window| {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: w.start,
                    size: wgpu::BufferSize::new(w.size),
                })
            };
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("prelu backward"),
                layout: self.group1_layout(crate::cache::Group1::PreluGrad),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: buffer(r.weight.buffer, ww),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: scratch.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: buffer(r.grad_weight.buffer, gww),
                    },
                ],
            })
        })
    }

    /// PReLU's backward on the host's slices: (grad_input, grad_weight) for x, grad_output
    /// and 1 or C weights (C = dim 1 of `shape`).
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// // a 2 x 2 tensor: channels are dim 1, the columns, with slopes 0.5 and 0.25
    /// let (gx, gw) = ctx.run_prelu_backward(&[-1.0, 2.0, -4.0, -2.0], &[1.0; 4], &[2, 2], &[0.5, 0.25])?;
    /// assert_eq!(gx, [0.5, 1.0, 0.5, 0.25]);
    /// assert_eq!(gw, [-5.0, -2.0]);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_prelu_backward(
        &self,
        x: &[f32],
        grad_output: &[f32],
        shape: &[usize],
        weight: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        channel_layout(shape, x.len(), weight.len())?;
        crate::shape::check_grad_len(x.len(), grad_output.len(), x.len())?;
        if weight.is_empty() {
            return Err(Error::Shape {
                shape: shape.to_vec(),
                reason: "prelu needs at least one weight".into(),
            });
        }
        let (wbuf, gwbuf) = self.scoped(|| {
            (
                self.parameter_buffer("prelu weights", weight),
                self.gradient_buffer("prelu weight gradient", weight.len()),
            )
        })?;
        let gx = self.run_with_inputs(&[x, grad_output], x.len(), |encoder, inputs, gx| {
            let regions = PreluGradRegions {
                x: inputs[0],
                grad_output: inputs[1],
                grad_input: gx,
                weight: BufferRegion::new(&wbuf),
                grad_weight: BufferRegion::new(&gwbuf),
            };
            self.encode_prelu_backward(encoder, regions, weight.len(), shape)
        })?;
        if x.is_empty() {
            return Ok((gx, vec![0.0; weight.len()]));
        }
        let gw = self.download(BufferRegion::new(&gwbuf), weight.len() as u64)?;
        Ok((gx, gw))
    }
}
