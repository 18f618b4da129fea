//! Dice's backward (`shaders/dice_backward.wgsl`): grad_input through the batch
//! statistics in training mode, or with the running statistics in evaluation mode, and
//! the gradient of a per-feature alpha.

use bytemuck::{Pod, Zeroable};

use super::backward::Regions;
use super::dispatch::{check_parameter, check_written_apart, window, Window, F32};
use crate::cache::{Entry, PipelineKey};
use crate::shape::batch_features;
use crate::{BufferRegion, Context, Error, Op, Result};

/// The uniform block of `shaders/dice_backward.wgsl` (`DiceGrad`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
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
    pad: [f32; 3],
}

/// Where dice's backward reads and writes: x, grad_output and grad_input (the tensor's
/// shape, batch on dim 0), and one alpha and one alpha gradient per feature.
#[derive(Clone, Copy, Debug)]
pub struct DiceGrad<'a> {
    /// The forward's input x.
    pub x: BufferRegion<'a>,
    /// grad_output.
    pub grad_output: BufferRegion<'a>,
    /// grad_input, written: may be x's or grad_output's region (in place).
    pub grad_input: BufferRegion<'a>,
    /// alpha, one per feature.
    pub alpha: BufferRegion<'a>,
    /// The gradient of alpha, one per feature, written (not accumulated into), in a
    /// buffer apart from x, grad_output, alpha and the running statistics.
    pub grad_alpha: BufferRegion<'a>,
}

/// Which statistics dice's forward used.
#[derive(Clone, Copy, Debug)]
pub enum DiceStats<'a> {
    /// Training mode: the batch's mean and biased variance, through which every x
    /// reaches every y of its feature.
    Batch {
        /// Added to the variance.
        eps: f32,
    },
    /// Evaluation mode: running statistics, one per feature each (constants).
    Running {
        /// The running mean.
        mean: BufferRegion<'a>,
        /// The running (biased) variance.
        var: BufferRegion<'a>,
        /// Added to the variance.
        eps: f32,
    },
}

impl DiceStats<'_> {
    fn eps(&self) -> f32 {
        match *self {
            DiceStats::Batch { eps } | DiceStats::Running { eps, .. } => eps,
        }
    }
}

/// alpha and the running statistics (one per feature, not in grad_input's buffer), and
/// grad_alpha (in none of the buffers the kernels read, apart from grad_input).
fn check_dice_grad_regions(
    r: DiceGrad<'_>,
    running: Option<(BufferRegion<'_>, BufferRegion<'_>)>,
    features: u64,
    len: u64,
) -> Result<()> {
    let mut read = vec![("alpha", r.alpha)];
    if let Some((mean, var)) = running {
        read.extend([("running mean", mean), ("running variance", var)]);
    }
    for &(role, region) in &read {
        check_parameter(role, region, features, r.grad_input)?;
    }
    crate::region::require_f32("grad_alpha", r.grad_alpha)?;
    read.extend([("x", r.x), ("grad_output", r.grad_output)]);
    check_written_apart(
        "grad_alpha",
        r.grad_alpha,
        features,
        &read,
        r.grad_input,
        len,
    )
}

impl Context {
    /// Records dice's backward: with [`DiceStats::Batch`],
    /// `grad_input = g (a + (1 - a) p) + (q - mean(q) - z mean(q z)) / s`, the batch
    /// statistics' part included, where `s = sqrt(var + eps)`, `z = (x - mean) / s`,
    /// `p = sigmoid(z)` and `q = g x (1 - a) p (1 - p)`; with [`DiceStats::Running`] the
    /// statistics are constants and the last term is `q / s`. `grad_alpha[f]` is the sum
    /// over the batch of `g x (1 - p)`. The whole tensor must fit one storage binding, as
    /// for the forward.
    pub fn encode_dice_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        r: DiceGrad<'_>,
        stats: DiceStats<'_>,
        shape: &[usize],
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (batch, features) = batch_features(shape, len)?;
        let eps = stats.eps();
        super::dice::check_eps(eps)?;
        let running = match stats {
            DiceStats::Running { mean, var, .. } => Some((mean, var)),
            DiceStats::Batch { .. } => None,
        };
        check_dice_grad_regions(r, running, features as u64, len as u64)?;
        let Some(plan) = self.plan_backward(r.x, r.grad_output, r.grad_input, len as u64)? else {
            return Ok(());
        };
        if plan.chunk < len as u64 {
            return Err(Error::Unsupported(format!(
                "dice needs the whole tensor in one storage binding; {len} elements exceed \
                 this device's {} bytes",
                self.limits().max_storage_buffer_binding_size
            )));
        }
        let layout = plan.layout;
        let (b, f) = (batch as u64, features as u64);
        // three reads of each column: the mean, the squared deviations, the sums
        let workgroups = self.dice_workgroups(b, f, 3)?;
        let subgroups = self.subgroups();
        let key = |entry| PipelineKey::new(Op::Dice, layout, entry, plan.storage);
        let column = self.pipeline(key(if workgroups {
            Entry::GradDiceColumnWg { subgroups }
        } else {
            Entry::GradDiceColumn { subgroups }
        }))?;
        let apply = self.pipeline(key(Entry::GradDiceApply { subgroups }))?;
        let (group1, at) = self.dice_grad_group(r, running, f)?;
        let staged = self.stage_backward(encoder, &plan, r.x, r.grad_output)?;
        let regions = Regions::reading(r.x, r.grad_output, r.grad_input, &staged);
        let (entries, deltas) = regions.bindings(0, len as u64, self.binding_alignment());
        let element = |d: u64| (d / F32) as u32;
        let tensor_element = |d: u64| (d / plan.storage.bytes()) as u32;
        let uniforms = Uniforms {
            batch: batch as u32,
            features: features as u32,
            saved_offset: tensor_element(deltas[0]),
            grad_offset: tensor_element(deltas[1]),
            out_offset: tensor_element(deltas[2]),
            alpha_at: element(at[0].delta),
            grad_alpha_at: element(at[1].delta),
            mean_at: element(at[2].delta),
            var_at: element(at[3].delta),
            eval: u32::from(running.is_some()),
            one: 1,
            pad0: 0,
            eps,
            pad: [0.0; 3],
        };
        let cacheable = plan.cacheable();
        let group =
            self.bind_group_with_uniforms("dice backward", layout, entries, &uniforms, cacheable)?;
        self.record_dice_grad(
            encoder,
            [&column, &apply],
            &group1,
            group,
            workgroups,
            [f, len as u64],
        );
        Ok(())
    }

    /// The two passes: the columns (one invocation or workgroup per feature), then one
    /// invocation per element.
    fn record_dice_grad(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        [column, apply]: [&wgpu::ComputePipeline; 2],
        group1: &wgpu::BindGroup,
        group: std::sync::Arc<wgpu::BindGroup>,
        workgroups: bool,
        [features, len]: [u64; 2],
    ) {
        let wg = u64::from(self.workgroup_size());
        let groups = |items: u64| items.div_ceil(wg).clamp(1, self.max_groups()) as u32;
        let column_groups = if workgroups {
            features.clamp(1, self.max_groups()) as u32
        } else {
            groups(features)
        };
        let label = "wgpu-activations dice backward";
        let first = [(group.clone(), column_groups)];
        self.record_pass(encoder, label, column, Some(group1), &first);
        self.record_pass(encoder, label, apply, Some(group1), &[(group, groups(len))]);
    }

    /// Bind group 1 of dice's backward: a per-feature scratch buffer, alpha, grad_alpha,
    /// and the running mean and variance (a small read-only stand-in in training mode),
    /// with the windows their element offsets come from.
    fn dice_grad_group(
        &self,
        r: DiceGrad<'_>,
        running: Option<(BufferRegion<'_>, BufferRegion<'_>)>,
        features: u64,
    ) -> Result<(wgpu::BindGroup, [Window; 4])> {
        let align = self.binding_alignment();
        self.scoped(|| {
            let scratch = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("dice backward columns"),
                size: features.max(1) * 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let stand_in = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("dice backward: no running statistics"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            let none = BufferRegion::new(&stand_in);
            let (mean, var) = running.unwrap_or((none, none));
            let regions = [r.alpha, r.grad_alpha, mean, var];
            let count = |i: usize| {
                if running.is_none() && i >= 2 {
                    1
                } else {
                    features
                }
            };
            let windows: [Window; 4] = std::array::from_fn(|i| window(regions[i], count(i), align));
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: scratch.as_entire_binding(),
            }];
            entries.extend(
                regions
                    .iter()
                    .zip(&windows)
                    .enumerate()
                    .map(|(i, (reg, w))| wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: reg.buffer,
                            offset: w.start,
                            size: wgpu::BufferSize::new(w.size),
                        }),
                    }),
            );
            let group = self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("dice backward"),
                layout: self.group1_layout(crate::cache::Group1::DiceGrad),
                entries: &entries,
            });
            (group, windows)
        })
    }

    /// Dice's backward on the host's slices: (grad_input, grad_alpha) for x and
    /// grad_output of `shape` (batch on dim 0), one alpha per feature, and the running
    /// (mean, variance) of evaluation mode or `None` for training mode's batch statistics.
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// let x = [1.0, 2.0, 3.0, 5.0]; // a batch of 2 with 2 features
    /// let (gx, ga) = ctx.run_dice_backward(&x, &[1.0; 4], &[2, 2], &[0.1, 0.9], None, 1e-9)?;
    /// assert_eq!((gx.len(), ga.len()), (4, 2));
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_dice_backward(
        &self,
        x: &[f32],
        grad_output: &[f32],
        shape: &[usize],
        alpha: &[f32],
        running: Option<(&[f32], &[f32])>,
        eps: f32,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        crate::shape::check_alpha_len(shape, x.len(), alpha)?;
        if let Some((mean, var)) = running {
            crate::shape::check_eval_lengths(shape, x.len(), [mean, var, alpha])?;
        }
        crate::shape::check_grad_len(x.len(), grad_output.len(), x.len())?;
        let features = alpha.len();
        let upload = |data: &[f32]| self.parameter_buffer("dice backward input", data);
        let (a, stats, ga) = self.scoped(|| {
            let stats = running.map(|(m, v)| (upload(m), upload(v)));
            let ga = self.gradient_buffer("dice grad_alpha", features);
            (upload(alpha), stats, ga)
        })?;
        let mode = match &stats {
            Some((m, v)) => DiceStats::Running {
                mean: BufferRegion::new(m),
                var: BufferRegion::new(v),
                eps,
            },
            None => DiceStats::Batch { eps },
        };
        let gx = self.run_with_inputs(&[x, grad_output], x.len(), |encoder, inputs, gx| {
            let r = DiceGrad {
                x: inputs[0],
                grad_output: inputs[1],
                grad_input: gx,
                alpha: BufferRegion::new(&a),
                grad_alpha: BufferRegion::new(&ga),
            };
            self.encode_dice_backward(encoder, r, mode, shape)
        })?;
        if x.is_empty() || features == 0 {
            return Ok((gx, vec![0.0; features]));
        }
        Ok((gx, self.download(BufferRegion::new(&ga), features as u64)?))
    }

    /// The spec's dice (one alpha for every feature, training mode): grad_input only,
    /// for [`Context::encode_backward_shaped`].
    pub(crate) fn encode_dice_spec_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &crate::Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        shape: &[usize],
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (_, features) = batch_features(shape, len)?;
        let p = activation.params();
        let (alpha, scratch) = self.scoped(|| {
            let alpha = self.parameter_buffer("dice alpha", &vec![p[0]; features]);
            let scratch = self.gradient_buffer("dice grad_alpha (unused)", features);
            (alpha, scratch)
        })?;
        let r = DiceGrad {
            x: saved,
            grad_output,
            grad_input,
            alpha: BufferRegion::new(&alpha),
            grad_alpha: BufferRegion::new(&scratch),
        };
        self.encode_dice_backward(encoder, r, DiceStats::Batch { eps: p[1] }, shape)
    }
}
