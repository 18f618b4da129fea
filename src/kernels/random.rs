//! The random family: `rrelu(training=true)`, elementwise with a counter-based generator
//! keyed by (seed, element index) ([`crate::random`]), so a seed gives the same bits on
//! every adapter, in any chunking, and in the CPU reference.

use bytemuck::{Pod, Zeroable};

use super::elementwise::F32;
use crate::cache::{Entry, PipelineKey};
use crate::{Activation, BufferRegion, Context, Error, Result};

/// The uniform block of `shaders/random.wgsl` (`Random`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    n: u32,
    in_offset: u32,
    out_offset: u32,
    start: u32,
    p: [f32; 4],
}

impl Context {
    /// Records a random op on `len` elements (element `i` draws with counter `i`).
    pub(crate) fn encode_random(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        len: u64,
    ) -> Result<()> {
        if len > u64::from(u32::MAX) {
            return Err(Error::Unsupported(format!(
                "random ops count elements in 32 bits; {len} elements are too many"
            )));
        }
        let plan = self.plan(input, output, len)?;
        if len == 0 {
            return Ok(());
        }
        let staged = self.stage_input(encoder, &plan, input, len)?;
        let input = staged.as_ref().map_or(input, BufferRegion::new);
        let pipeline = self.pipeline(PipelineKey {
            op: activation.op(),
            layout: plan.layout(),
            entry: Entry::Random,
        })?;
        let wg = u64::from(self.workgroup_size());
        let max_groups = u64::from(self.limits().max_compute_workgroups_per_dimension).max(1);
        let mut dispatches = Vec::new();
        let mut start = 0;
        while start < len {
            let count = plan.chunk.min(len - start);
            if let Some(budget) = self.loop_budget() {
                // ten Philox rounds per element
                let per_invocation = count.div_ceil(wg * max_groups) * 11;
                if per_invocation > budget {
                    return Err(Error::Unsupported(format!(
                        "{count} elements need {per_invocation} loop iterations per \
                         invocation; this adapter stops at {budget}"
                    )));
                }
            }
            let (entries, in_delta, out_delta) = plan.bindings(input, output, start, count);
            let uniforms = Uniforms {
                n: count as u32,
                in_offset: (in_delta / F32) as u32,
                out_offset: (out_delta / F32) as u32,
                start: start as u32,
                p: activation.param_slots(),
            };
            let group = self.bind_group_with_uniforms(
                "random",
                plan.layout(),
                entries,
                &uniforms,
                staged.is_none(),
            )?;
            dispatches.push((group, count.div_ceil(wg).clamp(1, max_groups) as u32));
            start += count;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("wgpu-activations random"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        for (group, groups) in &dispatches {
            pass.set_bind_group(0, group.as_ref(), &[]);
            pass.dispatch_workgroups(*groups, 1, 1);
        }
        Ok(())
    }
}
