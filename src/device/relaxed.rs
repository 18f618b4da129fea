//! Emulated relaxed float semantics: a naga IR pass that makes any adapter (lavapipe in CI)
//! compute the way the WGSL spec lets a GPU compute, so that code relying on stricter
//! arithmetic fails on a machine without a GPU.
//!
//! The WGSL spec (section "Floating Point Evaluation") lets an implementation flush
//! subnormal inputs and results of float operations to zero, compute `x / y` as
//! `x * (1 / y)` (accurate only for `|y|` in [2^-126, 2^126]), and rearrange arithmetic.
//! An NVIDIA H100 does all three; lavapipe does none. Under this pass, in every function of
//! a module:
//!
//! - every f32 arithmetic operation (`+ - * / %`, negation, comparisons and every f32
//!   builtin such as `max`, `abs`, `fma` or `sqrt`) sees its f32 operands flushed to a zero
//!   of their sign when subnormal, and its result flushed likewise;
//! - `x / y` becomes `x * r` with `r = 1 / y` flushed the same way, so `r` is 0 where
//!   `|y| > 2^126` and infinite where `y` is subnormal, as on a GPU that divides by a
//!   reciprocal;
//! - a NaN result of such an operation loses its payload (it becomes `0x7fffffff`, the
//!   NaN an H100 returned for prelu's `-NaN * w`);
//! - `(a + c1) * c2`, `(a + c1) / c2` and their mirror images with f32 constants `c1`,
//!   `c2` are distributed into `a * c2' + c1 * c2'`, the rewrite seen on the H100
//!   (hardsigmoid's `(x + 3) / 6` became `x * (1/6) + 0.5`).
//!
//! Moves are left alone, as on real hardware: loads, stores, `select`, `bitcast`,
//! swizzles and constructors pass bits through, so code that selects on bit patterns stays
//! exact. Subgroup reductions are left alone too (their inputs are flushed where they
//! were computed). Not emulated: fused multiply-add contraction (lavapipe's `fma` is not
//! fused, so it cannot be emulated there) and other reassociations.

mod remap;

use naga::{
    Arena, BinaryOperator, Expression, Function, Handle, Literal, MathFunction, Module, ScalarKind,
    Span, TypeInner, UnaryOperator, UniqueArena, VectorSize,
};
use remap::{remap_block, remap_expression};

/// The smallest normal f32, 2^-126.
const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

/// Rewrites `module` in place to compute under relaxed semantics (see the module docs).
pub(crate) fn relax(module: &mut Module) -> Result<(), String> {
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(module)
    .map_err(|e| format!("relaxed mode: the module does not validate: {e}"))?;
    let globals = Globals {
        types: &module.types,
        constants: &module.constants,
        global_expressions: &module.global_expressions,
    };
    for (handle, function) in module.functions.iter_mut() {
        relax_function(function, &info[handle], &globals)?;
    }
    for (i, entry) in module.entry_points.iter_mut().enumerate() {
        relax_function(&mut entry.function, info.get_entry_point(i), &globals)?;
    }
    Ok(())
}

struct Globals<'a> {
    types: &'a UniqueArena<naga::Type>,
    constants: &'a Arena<naga::Constant>,
    global_expressions: &'a Arena<Expression>,
}

/// The shape of an f32 value: a scalar or a vector of `size`; `None` for other types.
type F32Shape = Option<Option<VectorSize>>;

fn f32_shape(inner: &TypeInner) -> F32Shape {
    match *inner {
        TypeInner::Scalar(s) if s == naga::Scalar::F32 => Some(None),
        TypeInner::Vector { size, scalar } if scalar == naga::Scalar::F32 => Some(Some(size)),
        _ => None,
    }
}

/// Rebuilds a function's expression arena, old expression by old expression, inserting
/// the flushes (each operand's handle is earlier than its user, as naga requires), then
/// maps every handle in the body onto the new arena.
fn relax_function(
    function: &mut Function,
    info: &naga::valid::FunctionInfo,
    globals: &Globals,
) -> Result<(), String> {
    let old = std::mem::take(&mut function.expressions);
    let mut b = Builder {
        arena: &mut function.expressions,
        span: Span::UNDEFINED,
        first: None,
    };
    // For each old expression: its value's new handle, and the first new handle its
    // rewrite created (the start of its share of an `Emit` range).
    let mut map: Vec<Handle<Expression>> = Vec::with_capacity(old.len());
    let mut first: Vec<Handle<Expression>> = Vec::with_capacity(old.len());
    for (h, expr) in old.iter() {
        b.span = old.get_span(h);
        b.first = None;
        let mut e = expr.clone();
        remap_expression(&mut e, |x| map[x.index()])?;
        let value = rewrite(&mut b, &old, globals, &map, info, h, expr, e);
        first.push(b.first.unwrap_or(value));
        map.push(value);
    }
    let body = std::mem::take(&mut function.body);
    function.body = remap_block(body, &map, &first, &function.expressions)?;
    for (_, local) in function.local_variables.iter_mut() {
        if let Some(init) = local.init.as_mut() {
            *init = map[init.index()];
        }
    }
    let named = std::mem::take(&mut function.named_expressions);
    for (h, name) in named {
        function.named_expressions.insert(map[h.index()], name);
    }
    Ok(())
}

/// The rewrite of one old expression `h` (`expr`, with its operands already mapped as
/// `e`) into the new arena: flushes around f32 arithmetic, the reciprocal division, the
/// distributed constants; anything else copied. Returns the handle of its value.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    b: &mut Builder,
    old: &Arena<Expression>,
    globals: &Globals,
    map: &[Handle<Expression>],
    info: &naga::valid::FunctionInfo,
    h: Handle<Expression>,
    expr: &Expression,
    e: Expression,
) -> Handle<Expression> {
    let shape = |e: Handle<Expression>| f32_shape(info[e].ty.inner_with(globals.types));
    match (expr, e) {
        (
            &Expression::Binary { op, left, right },
            Expression::Binary {
                left: l, right: r, ..
            },
        ) if shape(left).is_some() || shape(right).is_some() => {
            let distributed = (shape(h) == Some(None))
                .then(|| distribute(b, old, globals, map, op, left, right))
                .flatten();
            distributed.unwrap_or_else(|| {
                let (sl, sr) = (shape(left), shape(right));
                if is_arithmetic(op) {
                    let v = b.arithmetic(op, (l, sl), (r, sr));
                    b.flush(v, shape(h))
                } else {
                    // comparisons
                    let (fl, fr) = (b.flush(l, sl), b.flush(r, sr));
                    b.binary(op, fl, fr)
                }
            })
        }
        (
            &Expression::Unary {
                op: UnaryOperator::Negate,
                expr: operand,
            },
            Expression::Unary { expr: x, .. },
        ) if shape(operand).is_some() => {
            let fx = b.flush(x, shape(operand));
            b.push(Expression::Unary {
                op: UnaryOperator::Negate,
                expr: fx,
            })
        }
        (&Expression::Math { fun, .. }, new @ Expression::Math { .. }) => {
            let (old_args, new_args) = (math_args(expr), math_args(&new));
            let arg_shape = |o: Option<Handle<Expression>>| o.and_then(shape);
            let first = (
                new_args[0].expect("a math function's argument"),
                arg_shape(old_args[0]),
            );
            let rest = [1, 2, 3].map(|i| (new_args[i], arg_shape(old_args[i])));
            let v = b.math(fun, first, rest);
            b.flush(v, shape(h))
        }
        (_, e) => b.push(e),
    }
}

/// A math expression's arguments (`None` past its last).
fn math_args(e: &Expression) -> [Option<Handle<Expression>>; 4] {
    match *e {
        Expression::Math {
            arg,
            arg1,
            arg2,
            arg3,
            ..
        } => [Some(arg), arg1, arg2, arg3],
        _ => [None; 4],
    }
}

fn is_arithmetic(op: BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Add
            | BinaryOperator::Subtract
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    )
}

/// The value of an f32 scalar constant expression, if `h` is one.
fn constant_f32(old: &Arena<Expression>, globals: &Globals, h: Handle<Expression>) -> Option<f32> {
    match old[h] {
        Expression::Literal(Literal::F32(v)) => Some(v),
        Expression::Constant(c) => match globals.global_expressions[globals.constants[c].init] {
            Expression::Literal(Literal::F32(v)) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// `(a +- c1) * c2` or `(a +- c1) / c2` (either operand order of the product and of the
/// sum) as `a * k +- c1 * k`, with `k = c2` or `1 / c2` rounded to f32: the distribution a
/// GPU compiler may apply to constant arithmetic.
fn distribute(
    b: &mut Builder,
    old: &Arena<Expression>,
    globals: &Globals,
    map: &[Handle<Expression>],
    op: BinaryOperator,
    left: Handle<Expression>,
    right: Handle<Expression>,
) -> Option<Handle<Expression>> {
    let (sum, c2) = match op {
        BinaryOperator::Multiply => match constant_f32(old, globals, right) {
            Some(c) => (left, c),
            None => (right, constant_f32(old, globals, left)?),
        },
        BinaryOperator::Divide => (left, 1.0 / constant_f32(old, globals, right)?),
        _ => return None,
    };
    let Expression::Binary {
        op: inner @ (BinaryOperator::Add | BinaryOperator::Subtract),
        left: sl,
        right: sr,
    } = old[sum]
    else {
        return None;
    };
    // a + c, c + a, a - c, c - a
    let (a, c1, a_negated) = match (
        constant_f32(old, globals, sl),
        constant_f32(old, globals, sr),
    ) {
        (None, Some(c)) => (sl, if inner == BinaryOperator::Add { c } else { -c }, false),
        (Some(c), None) => (sr, c, inner == BinaryOperator::Subtract),
        _ => return None,
    };
    let k = b.push(Expression::Literal(Literal::F32(c2)));
    let ck = b.push(Expression::Literal(Literal::F32(c1 * c2)));
    let fa = b.flush(map[a.index()], Some(None));
    let ak = b.binary(BinaryOperator::Multiply, fa, k);
    let ak = b.flush(ak, Some(None));
    let v = if a_negated {
        b.binary(BinaryOperator::Subtract, ck, ak)
    } else {
        b.binary(BinaryOperator::Add, ak, ck)
    };
    Some(b.flush(v, Some(None)))
}

struct Builder<'a> {
    arena: &'a mut Arena<Expression>,
    span: Span,
    first: Option<Handle<Expression>>,
}

impl Builder<'_> {
    fn push(&mut self, e: Expression) -> Handle<Expression> {
        let h = self.arena.append(e, self.span);
        self.first.get_or_insert(h);
        h
    }

    /// `l op r` with both operands flushed, and a division as a product with the flushed
    /// reciprocal of `r` (the result itself is not flushed yet).
    fn arithmetic(
        &mut self,
        op: BinaryOperator,
        (l, sl): (Handle<Expression>, F32Shape),
        (r, sr): (Handle<Expression>, F32Shape),
    ) -> Handle<Expression> {
        let (fl, fr) = (self.flush(l, sl), self.flush(r, sr));
        if op != BinaryOperator::Divide {
            return self.binary(op, fl, fr);
        }
        let one = self.splat(Literal::F32(1.0), sr.flatten());
        let recip = self.binary(BinaryOperator::Divide, one, fr);
        let recip = self.flush(recip, sr);
        self.binary(BinaryOperator::Multiply, fl, recip)
    }

    /// A builtin with its f32 arguments flushed (the result itself is not flushed yet).
    fn math(
        &mut self,
        fun: MathFunction,
        (arg, shape): (Handle<Expression>, F32Shape),
        rest: [(Option<Handle<Expression>>, F32Shape); 3],
    ) -> Handle<Expression> {
        let arg = self.flush(arg, shape);
        let [a1, a2, a3] = rest.map(|(h, s)| h.map(|h| self.flush(h, s)));
        self.push(Expression::Math {
            fun,
            arg,
            arg1: a1,
            arg2: a2,
            arg3: a3,
        })
    }

    fn binary(
        &mut self,
        op: BinaryOperator,
        left: Handle<Expression>,
        right: Handle<Expression>,
    ) -> Handle<Expression> {
        self.push(Expression::Binary { op, left, right })
    }

    /// `v`'s bits as another scalar kind (WGSL's bitcast).
    fn bitcast(&mut self, v: Handle<Expression>, kind: ScalarKind) -> Handle<Expression> {
        self.push(Expression::As {
            expr: v,
            kind,
            convert: None,
        })
    }

    /// A literal, splatted to a vector of `size` when there is one.
    fn splat(&mut self, value: Literal, size: Option<VectorSize>) -> Handle<Expression> {
        let v = self.push(Expression::Literal(value));
        match size {
            Some(size) => self.push(Expression::Splat { size, value: v }),
            None => v,
        }
    }

    /// `v` with subnormal components replaced by zeros of their sign and NaN components by
    /// one NaN; `v` itself where it is not f32 (`shape` None).
    fn flush(&mut self, v: Handle<Expression>, shape: F32Shape) -> Handle<Expression> {
        let Some(size) = shape else {
            return v;
        };
        if let Expression::Literal(Literal::F32(c)) = self.arena[v] {
            if c == 0.0 || c.abs() >= MIN_NORMAL || !c.is_finite() {
                return v;
            }
        }
        let abs = self.push(Expression::Math {
            fun: MathFunction::Abs,
            arg: v,
            arg1: None,
            arg2: None,
            arg3: None,
        });
        let tiny = self.splat(Literal::F32(MIN_NORMAL), size);
        let is_subnormal = self.binary(BinaryOperator::Less, abs, tiny);
        let bits = self.bitcast(v, ScalarKind::Uint);
        let sign = self.splat(Literal::U32(0x8000_0000), size);
        let sign_bits = self.binary(BinaryOperator::And, bits, sign);
        let zero = self.bitcast(sign_bits, ScalarKind::Float);
        let flushed = self.push(Expression::Select {
            condition: is_subnormal,
            accept: zero,
            reject: v,
        });
        // NaN: the magnitude's bits beyond infinity's
        let magnitude_mask = self.splat(Literal::U32(0x7fff_ffff), size);
        let magnitude = self.binary(BinaryOperator::And, bits, magnitude_mask);
        let inf = self.splat(Literal::U32(0x7f80_0000), size);
        let is_nan = self.binary(BinaryOperator::Greater, magnitude, inf);
        let one_nan = self.bitcast(magnitude_mask, ScalarKind::Float);
        self.push(Expression::Select {
            condition: is_nan,
            accept: one_nan,
            reject: flushed,
        })
    }
}
