//! The random family: `rrelu(training=true)` and `noisy_relu`, elementwise with numbers
//! from a counter-based generator keyed by (seed, element index) ([`crate::random`]), so
//! a seed gives the same bits on every adapter, in any cut, and in the CPU reference.
//! Element `i` draws word `i % 4` of the Philox call for counter `i / 4`; a forward
//! invocation takes the four elements of a call. The backward draws the same numbers
//! again, so no mask is stored (`shaders/random*.wgsl`).

use super::{Compiled, Entry, Family, Module};
use crate::device::layout::Group1;
use crate::device::wgsl::{ModuleSpec, Prelude};
use crate::exec::{Cut, Launch, Planner};
use crate::op::RandomKind;
use crate::{Direction, Error, Result};

const RANDOM_WGSL: &str = include_str!("../../shaders/random.wgsl");
const RANDOM_FORWARD_WGSL: &str = include_str!("../../shaders/random_forward.wgsl");
const RANDOM_BACKWARD_WGSL: &str = include_str!("../../shaders/random_backward.wgsl");

uniforms! {
    /// `Random` of `shaders/random.wgsl`, forward and backward.
    struct Uniforms = "Random" {
        n: u32,
        in_offset: u32,
        out_offset: u32,
        start: u32,
        grad_offset: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
        p: [f32; 4],
    }
}

static FORWARD: Module = Module::new("random", forward_source, &Uniforms::BLOCK);

static BACKWARD: Module = Module::new("random backward", backward_source, &Uniforms::BLOCK);

const MAIN: Entry = Entry::new(&FORWARD, "random_main", Group1::None);
const GRAD: Entry = Entry::new(&BACKWARD, "random_grad", Group1::None);

pub(super) const FAMILY: Family = Family {
    serves: |op, params| op.random().is_some() && params.is_none(),
    plan,
    forward: &[Compiled::forward(&[MAIN])],
    backward: &[Compiled::backward(&[GRAD])],
    strategies: false,
    extra_output: false,
};

/// The random kernels' ids: every kind's and this module's.
fn random_ids(spec: &ModuleSpec) -> Prelude {
    let kind = spec.op.random().expect("a random op");
    Prelude::new(spec)
        .id("RANDOM_RRELU", RandomKind::Rrelu.id())
        .id("RANDOM_NOISY_RELU", RandomKind::NoisyRelu.id())
        .id("RANDOM_KIND", kind.id())
}

fn forward_source(spec: &ModuleSpec) -> String {
    random_ids(spec)
        .input(spec.layout, "random_u")
        .assemble(&[RANDOM_WGSL, RANDOM_FORWARD_WGSL])
}

fn backward_source(spec: &ModuleSpec) -> String {
    random_ids(spec)
        .backward_inputs(spec.layout, "")
        .assemble(&[RANDOM_WGSL, RANDOM_BACKWARD_WGSL])
}

fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let call = p.call;
    let len = crate::shape::element_count(call.shape)? as u64;
    if len > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "random ops count elements in 32 bits; {len} elements are too many"
        )));
    }
    p.cut(Cut::elements(len, call.tensors.len()))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    // ten Philox rounds per element (a bound: the forward runs them once per four
    // elements), the square root's three steps, and the element loop
    let per_invocation = p.ctx.grid_stride_iterations(p.per_piece().min(len), 14);
    p.ctx
        .check_budget(per_invocation, &format!("{len} random elements"))?;
    let backward = call.direction == Direction::Backward;
    let mut launch = Launch::empty();
    launch.entries = vec![if backward { GRAD } else { MAIN }];
    for (i, piece) in p.pieces().iter().enumerate() {
        let (o, start, n) = (&piece.offsets, piece.first, piece.units);
        launch.uniforms.push(
            Uniforms {
                n: n as u32,
                in_offset: o[0],
                out_offset: o[o.len() - 1],
                start: start as u32,
                grad_offset: if backward { o[1] } else { 0 },
                pad0: 0,
                pad1: 0,
                pad2: 0,
                p: call.activation.param_slots(),
            }
            .bytes(),
        );
        // A forward invocation takes the (up to) four elements of one Philox call.
        let invocations = match backward {
            false => ((start + n - 1) >> 2) - (start >> 2) + 1,
            true => n,
        };
        let groups = p.ctx.groups(invocations);
        launch.step(0, i, groups);
    }
    Ok(launch)
}
