//! Mapping a rewritten function's expression handles: inside expressions, and through
//! its body's statements.

use naga::{Arena, Block, Expression, Handle, Range, Span, Statement};

/// Whether `e` refers to no other expression.
fn has_no_operands(e: &Expression) -> bool {
    matches!(
        e,
        Expression::Literal(_)
            | Expression::Constant(_)
            | Expression::Override(_)
            | Expression::ZeroValue(_)
            | Expression::FunctionArgument(_)
            | Expression::GlobalVariable(_)
            | Expression::LocalVariable(_)
            | Expression::CallResult(_)
            | Expression::AtomicResult { .. }
            | Expression::WorkGroupUniformLoadResult { .. }
            | Expression::SubgroupBallotResult
            | Expression::SubgroupOperationResult { .. }
    )
}

/// Maps the expression handles inside `e` with `f`; an error for expression kinds this
/// crate's shaders do not use (images, ray queries, cooperative matrices).
pub(super) fn remap_expression(
    e: &mut Expression,
    f: impl Fn(Handle<Expression>) -> Handle<Expression>,
) -> Result<(), String> {
    let m = |h: &mut Handle<Expression>| *h = f(*h);
    match e {
        e if has_no_operands(e) => {}
        Expression::Compose { components, .. } => components.iter_mut().for_each(m),
        Expression::Access { base, index } => {
            m(base);
            m(index);
        }
        Expression::AccessIndex { base, .. } => m(base),
        Expression::Splat { value, .. } => m(value),
        Expression::Swizzle { vector, .. } => m(vector),
        Expression::Load { pointer } => m(pointer),
        Expression::Unary { expr, .. }
        | Expression::As { expr, .. }
        | Expression::ArrayLength(expr) => m(expr),
        Expression::Relational { argument, .. } => m(argument),
        Expression::Binary { left, right, .. } => {
            m(left);
            m(right);
        }
        Expression::Select {
            condition,
            accept,
            reject,
        } => {
            m(condition);
            m(accept);
            m(reject);
        }
        Expression::Math {
            arg,
            arg1,
            arg2,
            arg3,
            ..
        } => {
            m(arg);
            arg1.iter_mut()
                .chain(arg2.iter_mut())
                .chain(arg3.iter_mut())
                .for_each(m);
        }
        other => return Err(format!("relaxed mode: unsupported expression {other:?}")),
    }
    Ok(())
}

/// The body with every expression handle mapped, `Emit` ranges widened to the expressions
/// inserted for them and split around the literals (which naga requires outside `Emit`).
pub(super) fn remap_block(
    block: Block,
    map: &[Handle<Expression>],
    first: &[Handle<Expression>],
    arena: &Arena<Expression>,
) -> Result<Block, String> {
    let m = |h: &mut Handle<Expression>| *h = map[h.index()];
    let mut out = Block::with_capacity(block.len());
    for (mut stmt, span) in block.span_into_iter() {
        match &mut stmt {
            Statement::Emit(range) => {
                if let Some((lo, hi)) = range.first_and_last() {
                    let (lo, hi) = (first[lo.index()], map[hi.index()]);
                    push_emits(&mut out, arena, lo, hi, span);
                }
                continue;
            }
            Statement::Block(inner) => {
                *inner = remap_block(std::mem::take(inner), map, first, arena)?;
            }
            Statement::If {
                condition,
                accept,
                reject,
            } => {
                m(condition);
                *accept = remap_block(std::mem::take(accept), map, first, arena)?;
                *reject = remap_block(std::mem::take(reject), map, first, arena)?;
            }
            Statement::Switch { selector, cases } => {
                m(selector);
                for case in cases.iter_mut() {
                    case.body = remap_block(std::mem::take(&mut case.body), map, first, arena)?;
                }
            }
            Statement::Loop {
                body,
                continuing,
                break_if,
            } => {
                *body = remap_block(std::mem::take(body), map, first, arena)?;
                *continuing = remap_block(std::mem::take(continuing), map, first, arena)?;
                break_if.iter_mut().for_each(m);
            }
            leaf => remap_leaf(leaf, map)?,
        }
        out.push(stmt, span);
    }
    Ok(out)
}

/// `Emit` statements for the new expressions `lo..=hi` (an old `Emit`'s range widened
/// to the expressions inserted for it), split around the literals, which naga requires
/// outside `Emit`.
fn push_emits(
    out: &mut Block,
    arena: &Arena<Expression>,
    lo: Handle<Expression>,
    hi: Handle<Expression>,
    span: Span,
) {
    let mut run: Option<(Handle<Expression>, Handle<Expression>)> = None;
    for (h, e) in arena
        .iter()
        .skip(lo.index())
        .take(hi.index() + 1 - lo.index())
    {
        if e.needs_pre_emit() {
            if let Some((a, z)) = run.take() {
                out.push(Statement::Emit(Range::new_from_bounds(a, z)), span);
            }
        } else {
            run = Some((run.map_or(h, |(a, _)| a), h));
        }
    }
    if let Some((a, z)) = run {
        out.push(Statement::Emit(Range::new_from_bounds(a, z)), span);
    }
}

/// Maps the expression handles of a statement that holds no block; an error for the
/// statements this crate's shaders do not use (images, ray queries, ...).
fn remap_leaf(stmt: &mut Statement, map: &[Handle<Expression>]) -> Result<(), String> {
    let m = |h: &mut Handle<Expression>| *h = map[h.index()];
    match stmt {
        Statement::Break
        | Statement::Continue
        | Statement::Kill
        | Statement::ControlBarrier(_)
        | Statement::MemoryBarrier(_) => {}
        Statement::Return { value } => value.iter_mut().for_each(m),
        Statement::Store { pointer, value } => {
            m(pointer);
            m(value);
        }
        Statement::Atomic {
            pointer,
            value,
            result,
            fun,
        } => {
            m(pointer);
            m(value);
            result.iter_mut().for_each(m);
            if let naga::AtomicFunction::Exchange { compare: Some(c) } = fun {
                m(c);
            }
        }
        Statement::WorkGroupUniformLoad { pointer, result } => {
            m(pointer);
            m(result);
        }
        Statement::Call {
            arguments, result, ..
        } => {
            arguments.iter_mut().for_each(m);
            result.iter_mut().for_each(m);
        }
        other => return remap_subgroup_leaf(other, m),
    }
    Ok(())
}

/// [`remap_leaf`] for the subgroup statements.
fn remap_subgroup_leaf(
    stmt: &mut Statement,
    m: impl Fn(&mut Handle<Expression>),
) -> Result<(), String> {
    match stmt {
        Statement::SubgroupBallot { result, predicate } => {
            m(result);
            predicate.iter_mut().for_each(m);
        }
        Statement::SubgroupGather {
            mode,
            argument,
            result,
        } => {
            m(argument);
            m(result);
            match mode {
                naga::GatherMode::Broadcast(i)
                | naga::GatherMode::Shuffle(i)
                | naga::GatherMode::ShuffleDown(i)
                | naga::GatherMode::ShuffleUp(i)
                | naga::GatherMode::ShuffleXor(i)
                | naga::GatherMode::QuadBroadcast(i) => m(i),
                naga::GatherMode::BroadcastFirst | naga::GatherMode::QuadSwap(_) => {}
            }
        }
        Statement::SubgroupCollectiveOperation {
            argument, result, ..
        } => {
            m(argument);
            m(result);
        }
        other => return Err(format!("relaxed mode: unsupported statement {other:?}")),
    }
    Ok(())
}
