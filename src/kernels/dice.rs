//! Dice from Deep Interest Network, training mode: per-feature batch statistics on the
//! GPU, then `x * (alpha + (1 - alpha) * sigmoid((x - mean) / sqrt(var + eps)))`.
//!
//! Host side of `shaders/dice.wgsl`. The batch is dim 0 of the shape and the features
//! are the remaining dims flattened; the statistics go to the context's partials buffer.

use bytemuck::{Pod, Zeroable};

use super::elementwise::F32;
use crate::cache::{Entry, PipelineKey};
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
    pad: [u32; 2],
    p: [f32; 4],
}

/// (batch, features) of a shape: dim 0, and the product of the others.
pub(crate) fn batch_features(shape: &[usize], len: usize) -> Result<(usize, usize)> {
    crate::shape::check_len(shape, len)?;
    let batch = shape.first().copied().unwrap_or(1);
    Ok((batch, len.checked_div(batch).unwrap_or(0)))
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
    ) -> Result<()> {
        let len = crate::shape::element_count(shape)?;
        let (batch, features) = batch_features(shape, len)?;
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
        let max_groups = u64::from(self.limits().max_compute_workgroups_per_dimension).max(1);
        if let Some(budget) = self.loop_budget() {
            // two passes over a column per feature
            let per_invocation = (features as u64).div_ceil(wg * max_groups) * 2 * batch as u64;
            if per_invocation > budget {
                return Err(Error::Unsupported(format!(
                    "a batch of {batch} needs {per_invocation} loop iterations per \
                     invocation; this adapter stops at {budget}"
                )));
            }
        }
        let staged = self.stage_input(encoder, &plan, input, len as u64)?;
        let input = staged.as_ref().map_or(input, BufferRegion::new);
        let pipeline = |entry| {
            self.pipeline(PipelineKey {
                op: activation.op(),
                layout: plan.layout(),
                entry,
            })
        };
        let (stats, apply) = (pipeline(Entry::DiceStats)?, pipeline(Entry::DiceApply)?);
        let stats_group = self.partials_group(features as u64 * 16)?;
        let (entries, in_delta, out_delta) = plan.bindings(input, output, 0, len as u64);
        let uniforms = Uniforms {
            batch: batch as u32,
            features: features as u32,
            in_offset: (in_delta / F32) as u32,
            out_offset: (out_delta / F32) as u32,
            n: len as u32,
            one: 1,
            pad: [0; 2],
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
        let stats_dispatch = [(group.clone(), groups(features as u64))];
        let apply_dispatch = [(group, groups(len as u64))];
        self.record_pass(
            encoder,
            "wgpu-activations dice statistics",
            &stats,
            Some(&stats_group),
            &stats_dispatch,
        );
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
