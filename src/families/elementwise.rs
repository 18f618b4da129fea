//! The elementwise family, `y[i] = f(x[i])`, and its backward, `grad_input[i] =
//! grad_output[i] * f'(saved[i])`: `shaders/elementwise.wgsl` and `shaders/backward.wgsl`.
//!
//! Each piece runs a vec4 entry point over its whole vec4s (where every tensor's offset
//! in its window is a multiple of 4 elements) and a scalar one over the rest.

use super::{Compiled, Entry, Family, Module};
use crate::device::layout::Group1;
use crate::device::wgsl::{
    forward_binding, ModuleSpec, Prelude, GRADIENTS_WGSL, VEC4S_PER_INVOCATION,
};
use crate::exec::{Cut, Launch, Planner};
use crate::{Direction, Result};

const ELEMENTWISE_WGSL: &str = include_str!("../../shaders/elementwise.wgsl");
const BACKWARD_WGSL: &str = include_str!("../../shaders/backward.wgsl");

uniforms! {
    /// `Params` of `shaders/elementwise.wgsl`.
    struct Forward = "Params" {
        n: u32,
        in_offset: u32,
        out_offset: u32,
        scalar_start: u32,
        p: [f32; 4],
    }
}

uniforms! {
    /// `Params` of `shaders/backward.wgsl`.
    struct Backward = "Params" {
        n: u32,
        saved_offset: u32,
        grad_offset: u32,
        out_offset: u32,
        scalar_start: u32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
        p: [f32; 4],
    }
}

static FORWARD: Module = Module::new("elementwise", forward_source, &Forward::BLOCK);

static BACKWARD: Module = Module::new("backward", backward_source, &Backward::BLOCK);

/// The forward's entry points: whole vec4s, and single elements.
const VEC4: Entry = Entry::new(&FORWARD, "main_vec4", Group1::None);
const SCALAR: Entry = Entry::new(&FORWARD, "main_scalar", Group1::None);
const GRAD_VEC4: Entry = Entry::new(&BACKWARD, "grad_vec4", Group1::None);
const GRAD_SCALAR: Entry = Entry::new(&BACKWARD, "grad_scalar", Group1::None);

pub(super) const FAMILY: Family = Family {
    serves: |op, params| op.elementwise().is_some() && params.is_none(),
    plan,
    forward: &[Compiled::forward(&[VEC4, SCALAR])],
    backward: &[Compiled::backward(&[GRAD_VEC4, GRAD_SCALAR])],
    strategies: false,
    extra_output: false,
};

/// The forward of the op whose WGSL function is `wgsl` on `x` with the parameters `p`: the
/// function with NaN passed through (the kernels' and the exports' one expression).
pub(crate) fn forward_call(wgsl: &str, x: &str, p: &str) -> String {
    format!("pass_nan({x}, {wgsl}({x}, {p}))")
}

/// The backward of the op whose WGSL derivative is `wgsl`: grad_input from `saved` and
/// `grad` with the parameters `p`.
pub(crate) fn backward_call(wgsl: &str, saved: &str, grad: &str, p: &str) -> String {
    format!("{wgsl}({saved}, {grad}, {p})")
}

/// The forward module for `spec.op`: its `act_*` function with NaN passed through.
fn forward_source(spec: &ModuleSpec) -> String {
    apply_prelude(spec).assemble(&[ELEMENTWISE_WGSL])
}

/// The prelude of a module applying `spec.op` per element (this family's, and the fused
/// bias's): `apply(x)` with the parameters of the uniform block `params`, and `load4(j)`,
/// `load1(j)` reading the input through its binding.
pub(crate) fn apply_prelude(spec: &ModuleSpec) -> Prelude {
    let (wgsl, _) = spec.op.elementwise().expect("an elementwise op");
    let binding = forward_binding(spec.layout).wgsl();
    Prelude::new(spec)
        .line(&format!(
            "fn apply(x: f32) -> f32 {{ return {}; }}",
            forward_call(wgsl, "x", "params.p")
        ))
        .line(&format!(
            "fn load4(j: u32) -> vec4<f32> {{ return {binding}_load4(j); }}"
        ))
        .line(&format!(
            "fn load1(j: u32) -> f32 {{ return {binding}_load(j); }}"
        ))
}

/// The prelude of a module applying `spec.op`'s derivative per element: `grad_apply(s,
/// g)` with the parameters of the uniform block named `uniforms`, and the two inputs
/// through the bindings the layout names.
pub(crate) fn grad_apply_prelude(spec: &ModuleSpec, uniforms: &str) -> Prelude {
    let (wgsl, _) = spec.op.elementwise_grad().expect("an elementwise op");
    Prelude::new(spec)
        .line(&format!(
            "fn grad_apply(s: f32, g: f32) -> f32 {{ return {}; }}",
            backward_call(wgsl, "s", "g", &format!("{uniforms}.p"))
        ))
        .backward_inputs(spec.layout, "")
}

/// The backward module for `spec.op`: its `grad_*` function, its inputs read through the
/// bindings the layout names.
fn backward_source(spec: &ModuleSpec) -> String {
    grad_apply_prelude(spec, "params")
        .backward_inputs(spec.layout, "4")
        .assemble(&[GRADIENTS_WGSL, BACKWARD_WGSL])
}

/// Cuts the call into pieces of any whole 16-byte blocks; each piece's vec4 entry (the
/// forward takes `VEC4S_PER_INVOCATION` vec4s per invocation in one unrolled step, the
/// backward as many grid-stride steps: an invocation per vec4 made lavapipe 1.5-3x
/// slower there) and its scalar tail.
fn plan<'a>(p: &mut Planner<'_, 'a>) -> Result<Launch<'a>> {
    let call = p.call;
    let len = crate::shape::element_count(call.shape)? as u64;
    p.cut(Cut::elements(len, call.tensors.len()))?;
    if len == 0 {
        return Ok(Launch::empty());
    }
    // The scalar path of a misaligned piece is the longest loop.
    let per_invocation = p.ctx.grid_stride_iterations(p.per_piece().min(len), 1);
    p.ctx
        .check_budget(per_invocation, &format!("{len} elements"))?;
    let backward = call.direction == Direction::Backward;
    let params = call.activation.param_slots();
    let mut launch = Launch::empty();
    launch.entries = match backward {
        false => vec![VEC4, SCALAR],
        true => vec![GRAD_VEC4, GRAD_SCALAR],
    };
    for (i, piece) in p.pieces().iter().enumerate() {
        let (o, n) = (&piece.offsets, piece.units);
        let vectorised = o.iter().all(|&o| o % 4 == 0);
        let scalar_start = if vectorised { n / 4 * 4 } else { 0 };
        let (n32, tail) = (n as u32, scalar_start as u32);
        launch.uniforms.push(match backward {
            false => Forward {
                n: n32,
                in_offset: o[0],
                out_offset: o[1],
                scalar_start: tail,
                p: params,
            }
            .bytes(),
            true => Backward {
                n: n32,
                saved_offset: o[0],
                grad_offset: o[1],
                out_offset: o[2],
                scalar_start: tail,
                pad0: 0,
                pad1: 0,
                pad2: 0,
                p: params,
            }
            .bytes(),
        });
        if vectorised && n / 4 > 0 {
            let steps = (n / 4).div_ceil(u64::from(VEC4S_PER_INVOCATION));
            let groups = p.ctx.groups(steps);
            launch.step(0, i, groups);
        }
        if scalar_start < n {
            let groups = p.ctx.groups(n - scalar_start);
            launch.step(1, i, groups);
        }
    }
    Ok(launch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::layout::{Binding, Layout};
    use crate::op::Op;
    use crate::Storage;

    fn spec(op: Op, storage: Storage) -> ModuleSpec {
        ModuleSpec {
            op,
            layout: Layout::One(Binding::Src),
            storage,
            subgroups: false,
            workgroup_size: 256,
            register_vec4s: 8,
        }
    }

    #[test]
    fn every_op_calls_its_wgsl_function_with_nan_passed_through() {
        for op in Op::elementwise_ops() {
            let (wgsl, _) = op.elementwise().unwrap();
            let src = forward_source(&spec(op, Storage::F32));
            assert!(src.contains(&format!("pass_nan(x, {wgsl}(x, params.p))")));
        }
    }

    #[test]
    fn half_sources_pack_two_elements_per_word() {
        for (storage, encode) in [(Storage::F16, "f32_to_f16"), (Storage::Bf16, "f32_to_bf16")] {
            let src = forward_source(&spec(Op::Gelu, storage));
            assert!(src.contains("array<atomic<u32>>"), "{storage}");
            assert!(src.contains(&format!("return {encode}(x);")), "{storage}");
            assert!(
                !src.contains("array<f32>"),
                "{storage}: no f32 tensor binding"
            );
        }
        let f32 = forward_source(&spec(Op::Gelu, Storage::F32));
        assert!(!f32.contains("atomic") && !f32.contains("f32_to_f16"));
    }
}
