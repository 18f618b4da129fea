//! The random family: `rrelu(training=true)`, elementwise with a counter-based generator
//! keyed by (seed, element index) ([`crate::random`]), so a seed gives the same bits on
//! every adapter, in any chunking, and in the CPU reference.

use bytemuck::{Pod, Zeroable};

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
        let pipeline = self.pipeline(PipelineKey::new(
            activation.op(),
            plan.layout(),
            Entry::Random,
        ))?;
        // ten Philox rounds per element, and the element loop
        let per_invocation = self.grid_stride_iterations(plan.chunk.min(len), 11);
        self.check_budget(per_invocation, &format!("{len} random elements"))?;
        let dispatches =
            self.chunk_dispatches("random", &plan, input, output, len, staged.is_none(), |c| {
                Uniforms {
                    n: c.count as u32,
                    in_offset: c.in_offset,
                    out_offset: c.out_offset,
                    start: c.start as u32,
                    p: activation.param_slots(),
                }
            })?;
        self.record_pass(
            encoder,
            "wgpu-activations random",
            &pipeline,
            None,
            &dispatches,
        );
        Ok(())
    }
}
