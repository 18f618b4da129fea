//! The random family: `rrelu(training=true)`, elementwise with a counter-based generator
//! keyed by (seed, element index) ([`crate::random`]), so a seed gives the same bits on
//! every adapter, in any chunking, and in the CPU reference.

use bytemuck::{Pod, Zeroable};

use super::dispatch::pieces;
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
    grad_offset: u32,
    pad: [u32; 3],
    p: [f32; 4],
}

impl Context {
    /// Records a random op on `len` elements (element `i` draws word `i % 4` of the
    /// Philox call for counter `i / 4`; an invocation takes the four elements of a call).
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
        let input = staged.as_ref().map_or(input, |s| s.region());
        let pipeline = self.pipeline(PipelineKey::new(
            activation.op(),
            plan.layout(),
            Entry::Random,
            input.storage,
        ))?;
        // ten Philox rounds per element (a bound: the forward runs them once per four
        // elements), the square root's three steps, and the element loop
        let per_invocation = self.grid_stride_iterations(plan.chunk.min(len), 14);
        self.check_budget(per_invocation, &format!("{len} random elements"))?;
        let mut dispatches =
            self.chunk_dispatches("random", &plan, input, output, len, staged.is_none(), |c| {
                Uniforms {
                    n: c.count as u32,
                    in_offset: c.in_offset,
                    out_offset: c.out_offset,
                    start: c.start as u32,
                    grad_offset: 0,
                    pad: [0; 3],
                    p: activation.param_slots(),
                }
            })?;
        // An invocation takes the (up to) four elements of one Philox call.
        let wg = u64::from(self.workgroup_size());
        for ((_, groups), (start, count)) in dispatches.iter_mut().zip(pieces(len, plan.chunk)) {
            let calls = ((start + count - 1) >> 2) - (start >> 2) + 1;
            *groups = calls.div_ceil(wg).clamp(1, self.max_groups()) as u32;
        }
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

impl Context {
    /// Records a random op's backward on `len` elements: the forward's numbers drawn
    /// again from (seed, element index), so no mask buffer is kept. grad_input may be
    /// grad_output's or the saved input's region (in place).
    pub(crate) fn encode_backward_random(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
        len: u64,
    ) -> Result<()> {
        if len > u64::from(u32::MAX) {
            return Err(Error::Unsupported(format!(
                "random ops count elements in 32 bits; {len} elements are too many"
            )));
        }
        let Some(plan) = self.plan_backward(saved, grad_output, grad_input, len)? else {
            return Ok(());
        };
        let layout = plan.layout;
        let key = PipelineKey::new(activation.op(), layout, Entry::GradRandom, plan.storage);
        let pipeline = self.pipeline(key)?;
        let chunk = plan.chunk;
        let per_invocation = self.grid_stride_iterations(chunk.min(len), 14);
        self.check_budget(per_invocation, &format!("{len} random elements"))?;
        let staged = self.stage_backward(encoder, &plan, saved, grad_output)?;
        let regions = super::backward::Regions::reading(saved, grad_output, grad_input, &staged);
        let cacheable = plan.cacheable();
        let mut dispatches = Vec::new();
        for (start, count) in pieces(len, chunk) {
            let (entries, deltas) = regions.bindings(start, count, self.binding_alignment());
            let element = |i: usize| (deltas[i] / plan.storage.bytes()) as u32;
            let uniforms = Uniforms {
                n: count as u32,
                in_offset: element(0),
                grad_offset: element(1),
                out_offset: element(2),
                start: start as u32,
                pad: [0; 3],
                p: activation.param_slots(),
            };
            let group = self.bind_group_with_uniforms(
                "random backward",
                layout,
                entries,
                &uniforms,
                cacheable,
            )?;
            let groups = count
                .div_ceil(u64::from(self.workgroup_size()))
                .clamp(1, self.max_groups());
            dispatches.push((group, groups as u32));
        }
        self.record_pass(
            encoder,
            "wgpu-activations random backward",
            &pipeline,
            None,
            &dispatches,
        );
        Ok(())
    }
}
