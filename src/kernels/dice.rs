//! Dice from Deep Interest Network, training mode: per-feature batch statistics on the
//! GPU, then `x * (alpha + (1 - alpha) * sigmoid((x - mean) / sqrt(var + eps)))`.
//!
//! Host side of `shaders/dice.wgsl`. The batch is dim 0 of the shape and the features
//! are the remaining dims flattened; the statistics go to the context's partials buffer.

use bytemuck::{Pod, Zeroable};

use super::dispatch::F32;
use crate::cache::{DicePass, Entry, PipelineKey};
use crate::shape::{batch_features, check_alpha_len, check_eval_lengths};
use crate::{Activation, BufferRegion, Context, Error, Result};

/// The uniform block of `shaders/dice.wgsl` (`Dice`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
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

impl Context {
    /// Records dice on a tensor of `shape` (batch on dim 0).
    pub(crate) fn encode_dice(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        shape: &[usize],
        alpha: Option<BufferRegion<'_>>,
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (batch, features) = batch_features(shape, len)?;
        if let Some(a) = alpha {
            super::dispatch::check_parameter("alpha", a, features as u64, output)?;
        }
        let plan = self.plan(input, output, len as u64)?;
        if len == 0 {
            return Ok(());
        }
        if plan.chunk < len as u64 {
            return Err(Error::Unsupported(format!(
                "dice needs the whole tensor in one storage binding; {len} elements exceed \
                 this device's {} bytes",
                self.limits().max_storage_buffer_binding_size
            )));
        }
        let wg = u64::from(self.workgroup_size());
        let max_groups = self.max_groups();
        let f = features as u64;
        let (slices, slice_rows) = self.dice_slices(batch as u64, f)?;
        let staged = self.stage_input(encoder, &plan, input, len as u64)?;
        let input = staged.as_ref().map_or(input, |s| s.region());
        let (stats, apply, stats_group, alpha_at) = self.dice_passes(
            activation,
            plan.layout(),
            alpha,
            f,
            f * slices,
            input.storage,
        )?;
        let (entries, in_delta, out_delta) = plan.bindings(input, output, 0, len as u64);
        let uniforms = Uniforms {
            batch: batch as u32,
            features: features as u32,
            in_offset: (in_delta / input.storage.bytes()) as u32,
            out_offset: (out_delta / output.storage.bytes()) as u32,
            n: len as u32,
            one: 1,
            mean_at: 0,
            var_at: 0,
            alpha_at,
            start: 0,
            slice_rows: slice_rows as u32,
            slices: slices as u32,
            p: activation.param_slots(),
        };
        let group = self.bind_group_with_uniforms(
            "dice",
            plan.layout(),
            entries,
            &uniforms,
            staged.is_none(),
        )?;
        let groups = |items: u64| items.div_ceil(wg).clamp(1, max_groups) as u32;
        // the tiles of the partial passes, one invocation per feature in the others
        let tiles = (f.div_ceil(f.min(wg)) * slices).clamp(1, max_groups) as u32;
        for (pass, pipeline) in DicePass::ALL.into_iter().zip(&stats) {
            let size = match pass {
                DicePass::Sums | DicePass::Squares => tiles,
                DicePass::Mean | DicePass::Variance => groups(f),
            };
            self.record_pass(
                encoder,
                "wgpu-activations dice statistics",
                pipeline,
                Some(&stats_group),
                &[(group.clone(), size)],
            );
        }
        let apply_dispatch = [(group, groups(len as u64))];
        self.record_pass(
            encoder,
            "wgpu-activations dice",
            &apply,
            Some(&stats_group),
            &apply_dispatch,
        );
        Ok(())
    }
}

impl Context {
    /// Records dice in training mode with one alpha per feature from the caller's buffer
    /// (the `dice` spec has one alpha for all): batch statistics over dim 0 of `shape`,
    /// then `x * (alpha[f] + (1 - alpha[f]) * sigmoid((x - mean) / sqrt(var + eps)))`.
    pub fn encode_dice_train(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        alpha: BufferRegion<'_>,
        eps: f32,
        shape: &[usize],
    ) -> Result<()> {
        let dice = Activation::from_params(crate::Op::Dice, &[0.0, eps])?;
        self.encode_dice(encoder, &dice, input, output, shape, Some(alpha))
    }

    /// [`Context::encode_dice_train`], blocking.
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// let x = [1.0, 2.0, 3.0, 5.0]; // a batch of 2 with 2 features
    /// let y = ctx.run_dice_train(&x, &[2, 2], &[0.1, 0.9], 1e-9)?;
    /// assert_eq!(y.len(), 4);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_dice_train(
        &self,
        input: &[f32],
        shape: &[usize],
        alpha: &[f32],
        eps: f32,
    ) -> Result<Vec<f32>> {
        check_alpha_len(shape, input.len(), alpha)?;
        let a = self.scoped(|| self.parameter_buffer("dice alpha", alpha))?;
        self.run_with_buffers(input, |encoder, src, dst| {
            self.encode_dice_train(encoder, src, dst, BufferRegion::new(&a), eps, shape)
        })
    }
}

/// An error unless dice's `eps` (added to a variance) is finite and >= 0.
pub(crate) fn check_eps(eps: f32) -> Result<()> {
    if !eps.is_finite() || eps < 0.0 {
        return Err(Error::Unsupported(format!(
            "eps must be finite and >= 0, got {eps}"
        )));
    }
    Ok(())
}

/// Dice's evaluation-mode inputs: running mean and variance and alpha, one value per
/// feature each, in the caller's buffers (`STORAGE` usage).
#[derive(Clone, Copy, Debug)]
pub struct DiceEval<'a> {
    /// The running mean, one per feature.
    pub mean: BufferRegion<'a>,
    /// The running (biased) variance, one per feature.
    pub var: BufferRegion<'a>,
    /// alpha, one per feature.
    pub alpha: BufferRegion<'a>,
    /// Added to the variance (1e-9 in `dice`'s spec).
    pub eps: f32,
}

impl Context {
    /// Records dice in evaluation mode: `x * (alpha[f] + (1 - alpha[f]) * sigmoid((x -
    /// mean[f]) / sqrt(var[f] + eps)))` for feature `f`, the batch on dim 0 of `shape`
    /// and the features the other dims. In place allowed.
    ///
    /// ```no_run
    /// # use wgpu_activations::{BufferRegion, Context, DiceEval};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, m: &wgpu::Buffer, v: &wgpu::Buffer, a: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let stats = DiceEval {
    ///     mean: BufferRegion::new(m),
    ///     var: BufferRegion::new(v),
    ///     alpha: BufferRegion::new(a),
    ///     eps: 1e-9,
    /// };
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// let r = BufferRegion::new(x);
    /// ctx.encode_dice_eval(&mut encoder, r, r, stats, &[256, 64])?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_dice_eval(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        stats: DiceEval<'_>,
        shape: &[usize],
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (batch, features) = batch_features(shape, len)?;
        for (role, region) in [
            ("running mean", stats.mean),
            ("running variance", stats.var),
            ("alpha", stats.alpha),
        ] {
            super::dispatch::check_parameter(role, region, features as u64, output)?;
        }
        check_eps(stats.eps)?;
        let plan = self.plan(input, output, len as u64)?;
        if len == 0 {
            return Ok(());
        }
        let staged = self.stage_input(encoder, &plan, input, len as u64)?;
        let input = staged.as_ref().map_or(input, |s| s.region());
        let pipeline = self.pipeline(PipelineKey::new(
            crate::Op::Dice,
            plan.layout(),
            Entry::DiceEval,
            input.storage,
        ))?;
        let (group1, windows) = self.dice_eval_group(&stats, features as u64)?;
        let at = |i: usize| (windows[i].delta / F32) as u32;
        let dispatches = self.chunk_dispatches(
            "dice eval",
            &plan,
            input,
            output,
            len as u64,
            staged.is_none(),
            |c| Uniforms {
                batch: batch as u32,
                features: features as u32,
                in_offset: c.in_offset,
                out_offset: c.out_offset,
                n: c.count as u32,
                one: 1,
                mean_at: at(0),
                var_at: at(1),
                alpha_at: at(2),
                start: c.start as u32,
                slice_rows: 0,
                slices: 0,
                p: [0.0, stats.eps, 0.0, 0.0],
            },
        )?;
        self.record_pass(
            encoder,
            "wgpu-activations dice eval",
            &pipeline,
            Some(&group1),
            &dispatches,
        );
        Ok(())
    }

    /// Dice in evaluation mode, blocking: the convenience form of
    /// [`Context::encode_dice_eval`], with one running mean, variance and alpha per
    /// feature.
    pub fn run_dice_eval(
        &self,
        input: &[f32],
        shape: &[usize],
        mean: &[f32],
        var: &[f32],
        alpha: &[f32],
        eps: f32,
    ) -> Result<Vec<f32>> {
        let upload = |data: &[f32]| self.parameter_buffer("dice statistics", data);
        let (m, v, a) = self.scoped(|| (upload(mean), upload(var), upload(alpha)))?;
        check_eval_lengths(shape, input.len(), [mean, var, alpha])?;
        let stats = DiceEval {
            mean: BufferRegion::new(&m),
            var: BufferRegion::new(&v),
            alpha: BufferRegion::new(&a),
            eps,
        };
        self.run_with_buffers(input, |encoder, src, dst| {
            self.encode_dice_eval(encoder, src, dst, stats, shape)
        })
    }
}

impl Context {
    /// Bind group 1 of training with a per-feature alpha: a fresh statistics buffer of
    /// `stats` vec4s (the features' statistics and their partials) and the caller's
    /// alpha, bound in an aligned window (the alpha's element offset inside it returned
    /// with the window).
    fn dice_alpha_group(
        &self,
        alpha: BufferRegion<'_>,
        features: u64,
        stats: u64,
    ) -> Result<(std::sync::Arc<wgpu::BindGroup>, super::dispatch::Window)> {
        let align = u64::from(self.limits().min_storage_buffer_offset_alignment).max(16);
        let w = super::dispatch::window(alpha, features, align);
        let group = self.scoped(|| {
            let stats = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("dice statistics"),
                size: stats * 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("dice statistics and alpha"),
                layout: self.dice_alpha_layout(),
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: stats.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: alpha.buffer,
                            offset: w.start,
                            size: wgpu::BufferSize::new(w.size),
                        }),
                    },
                ],
            })
        })?;
        Ok((std::sync::Arc::new(group), w))
    }
}

impl Context {
    /// Bind group 1 of evaluation mode: the running mean, variance and alpha, each bound
    /// in an aligned window of its buffer (the windows returned for the element offsets).
    fn dice_eval_group(
        &self,
        stats: &DiceEval<'_>,
        features: u64,
    ) -> Result<(wgpu::BindGroup, [super::dispatch::Window; 3])> {
        let align = u64::from(self.limits().min_storage_buffer_offset_alignment).max(16);
        let regions = [stats.mean, stats.var, stats.alpha];
        let windows = regions.map(|r| super::dispatch::window(r, features, align));
        let group = self.scoped(|| {
            let entries: Vec<_> = regions
                .iter()
                .zip(&windows)
                .enumerate()
                .map(|(i, (r, w))| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: r.buffer,
                        offset: w.start,
                        size: wgpu::BufferSize::new(w.size),
                    }),
                })
                .collect();
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("dice running statistics"),
                layout: self.dice_eval_layout(),
                entries: &entries,
            })
        })?;
        Ok((group, windows))
    }
}

/// The pipelines of training mode (the statistics' four passes, then the elementwise
/// pass), their bind group 1, and alpha's element offset in it (0 without a per-feature
/// alpha).
type DicePasses = (
    [std::sync::Arc<wgpu::ComputePipeline>; 4],
    std::sync::Arc<wgpu::ComputePipeline>,
    std::sync::Arc<wgpu::BindGroup>,
    u32,
);

impl Context {
    /// Whether a per-feature pass of the backward, `passes` reads of each column, takes
    /// one workgroup per feature (large batches, or where one invocation per feature would
    /// pass the loop budget) rather than one invocation. (The forward's statistics tile
    /// the tensor instead: `dice_slices`.)
    pub(crate) fn dice_workgroups(&self, batch: u64, features: u64, passes: u64) -> Result<bool> {
        let wg = u64::from(self.workgroup_size());
        let lane_iterations = self.grid_stride_iterations(features, passes * batch);
        let workgroups = batch >= 1024 || !self.within_budget(lane_iterations);
        let per_invocation = if workgroups {
            features.div_ceil(self.max_groups()) * (passes * batch.div_ceil(wg) + 6 * wg + 8)
        } else {
            lane_iterations
        };
        self.check_budget(per_invocation, &format!("a batch of {batch}"))?;
        Ok(workgroups)
    }

    /// Training mode's passes, with the spec's alpha or one per feature from a buffer,
    /// for `features` features; the statistics buffer holds `stats` vec4s (the features'
    /// statistics and their partials).
    fn dice_passes(
        &self,
        activation: &Activation,
        layout: crate::cache::Layout,
        alpha: Option<BufferRegion<'_>>,
        features: u64,
        stats: u64,
        storage: crate::Storage,
    ) -> Result<DicePasses> {
        let with_alpha = alpha.is_some();
        let apply = if with_alpha {
            Entry::DiceApplyAlpha
        } else {
            Entry::DiceApply
        };
        let (group, alpha_at) = match alpha {
            None => (self.partials_group(stats * 16)?, 0),
            Some(a) => {
                let (group, w) = self.dice_alpha_group(a, features, stats)?;
                (group, (w.delta / F32) as u32)
            }
        };
        let pipeline =
            |entry| self.pipeline(PipelineKey::new(activation.op(), layout, entry, storage));
        let pass = |pass| {
            pipeline(Entry::DiceStats {
                pass,
                alpha: with_alpha,
            })
        };
        let stats = [
            pass(DicePass::Sums)?,
            pass(DicePass::Mean)?,
            pass(DicePass::Squares)?,
            pass(DicePass::Variance)?,
        ];
        Ok((stats, pipeline(apply)?, group, alpha_at))
    }

    /// How training mode's statistics cut the batch: (slices, rows per slice). Enough
    /// slices for about 1,024 workgroups on a GPU (two per core on a CPU adapter), few
    /// enough rows per invocation for the loop budget, and few enough slices for their
    /// partials (16 bytes per slice and feature) to fit one storage binding; each feature
    /// then has one partial per slice. An error where no number of slices does.
    fn dice_slices(&self, batch: u64, features: u64) -> Result<(u64, u64)> {
        let wg = u64::from(self.workgroup_size());
        let width = features.clamp(1, wg);
        let depth = wg / width;
        let blocks = features.div_ceil(width);
        let target = self.cpu_cores().map_or(1024, |c| 2 * c as u64);
        let binding = self.limits().max_storage_buffer_binding_size;
        let fit = binding / (16 * features.max(1));
        if fit == 0 {
            return Err(Error::Unsupported(format!(
                "dice's statistics need 16 bytes per feature, {} bytes for {features} \
                 features, past this device's storage binding limit ({binding} bytes)",
                16 * features
            )));
        }
        let slices = target
            .div_ceil(blocks)
            .max(batch.div_ceil(depth * 16_384))
            .clamp(1, batch.div_ceil(depth).max(1))
            .min(fit);
        let slice_rows = batch.div_ceil(slices).max(1);
        let slices = batch.div_ceil(slice_rows).max(1);
        let tiles = (blocks * slices).div_ceil(self.max_groups());
        let partial = tiles * (slice_rows.div_ceil(depth) + depth + 2);
        let combine = features.div_ceil(wg * self.max_groups()) * (slices + 1);
        self.check_budget(
            partial.max(combine),
            &format!("dice's statistics over a batch of {batch}"),
        )?;
        Ok((slices, slice_rows))
    }
}
