//! The kernel options (issue 22): wgpu's runtime checks, zero-initialised workgroup
//! memory and the register strategies' vec4s are run-time choices; every combination
//! gives the default context's bits (the vec4s, which change how rows are held, give
//! results within the bounds), and the register plans stay inside their arrays at every
//! row length.

mod common;

use common::*;
use wgpu_activations::{
    Activation, Context, ContextOptions, Direction, Error, KernelOptions, RowView, Storage,
    Strategy,
};

fn context(kernels: KernelOptions) -> Context {
    Context::with_options(ContextOptions {
        kernels,
        ..Default::default()
    })
    .expect("a context")
}

/// The register plan of rows of `axis` (contiguous, or strided with `inner` columns).
fn register_plan(ctx: &Context, axis: usize, inner: usize) -> Option<(u64, u64)> {
    let shape = [2, axis, inner];
    let a: Activation = "softmax(dim=1)".parse().unwrap();
    ctx.call(&a, &shape[..])
        .strategy(Strategy::Registers)
        .row_plan(Direction::Forward, Storage::F32)
        .ok()
        .map(|p| (p.lanes, p.vec4s_per_lane))
}

#[test]
fn register_plans_stay_inside_their_arrays_at_every_row_length() {
    // What the kernels' loops assume (shaders/softmax.wgsl, "Registers"): a lane holds
    // vec4s q < per_lane <= REGISTER_VEC4S, and lanes * per_lane vec4s cover the row.
    for vec4s in [4u32, 8] {
        let ctx = context(KernelOptions {
            register_vec4s: vec4s,
            ..Default::default()
        });
        let facts = ctx.facts();
        assert_eq!(facts.kernels.register_vec4s, vec4s);
        let capacity = facts.registers_capacity;
        assert_eq!(capacity, facts.workgroup_size as usize * 4 * vec4s as usize);
        let wg = u64::from(facts.workgroup_size);
        for inner in [1usize, 3] {
            for axis in 1..=capacity + 64 {
                let plan = register_plan(&ctx, axis, inner);
                let Some((lanes, per_lane)) = plan else {
                    assert!(
                        axis > capacity,
                        "vec4s {vec4s}, inner {inner}: a row of {axis} refused"
                    );
                    continue;
                };
                assert!(
                    axis <= capacity
                        && lanes.is_power_of_two()
                        && lanes <= wg
                        && (1..=u64::from(vec4s)).contains(&per_lane)
                        && 4 * lanes * per_lane >= axis as u64,
                    "vec4s {vec4s}, inner {inner}, axis {axis}: {lanes} lanes of {per_lane} vec4s"
                );
            }
        }
    }
}

#[test]
fn split_register_plans_stay_inside_their_arrays() {
    // split_registers: a workgroup per chunk, each lane at most REGISTER_VEC4S vec4s
    let a: Activation = "softmax".parse().unwrap();
    for vec4s in [4u32, 8] {
        let ctx = context(KernelOptions {
            register_vec4s: vec4s,
            ..Default::default()
        });
        let wg = u64::from(ctx.facts().workgroup_size);
        let capacity = ctx.facts().registers_capacity;
        let mut axis = 1usize;
        while axis < 64 * capacity {
            for len in [axis, axis + 1, axis * 3 / 2] {
                let Ok(p) = ctx
                    .call(&a, &[1, len])
                    .strategy(Strategy::SplitRegisters)
                    .row_plan(Direction::Forward, Storage::F32)
                else {
                    continue;
                };
                assert!(
                    p.lanes == wg
                        && (1..=u64::from(vec4s)).contains(&p.vec4s_per_lane)
                        && 4 * wg * p.vec4s_per_lane >= p.chunk_len
                        && p.chunk_len * p.chunks >= len as u64,
                    "vec4s {vec4s}, row {len}: {p:?}"
                );
            }
            axis *= 2;
        }
    }
}

#[test]
fn register_vec4s_other_than_4_or_8_are_refused() {
    for vec4s in [0u32, 1, 2, 3, 5, 16, u32::MAX] {
        let r = Context::with_options(ContextOptions {
            kernels: KernelOptions {
                register_vec4s: vec4s,
                ..Default::default()
            },
            ..Default::default()
        });
        let e = r.expect_err("an unsupported vec4s count");
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        assert!(e.to_string().contains("register_vec4s"), "{e}");
    }
}

/// One run: what ran, its input, its output and the input's shape.
type Run = (String, Vec<f32>, Vec<f32>, Vec<usize>);

/// Every kernel family that touches workgroup memory or holds register arrays, and an
/// elementwise op, on `ctx`: the outputs in order.
fn outputs(ctx: &Context, vec4s: usize) -> Vec<Run> {
    let mut rng = Rng::new(22);
    let mut out = Vec::new();
    let wg = ctx.facts().workgroup_size as usize;
    let capacity = wg * 4 * vec4s;
    let rows: Vec<(&str, Vec<usize>)> = vec![
        ("softmax", vec![7, 33]),
        ("log_softmax", vec![3, capacity]),
        ("softmax", vec![2, capacity - 3]),
        ("softmin", vec![2, 4 * capacity + 5]),
        ("softmax(dim=0)", vec![130, 12]),
        ("log_softmax(dim=0)", vec![capacity / 8, 9]),
    ];
    for (spec, shape) in rows {
        let a: Activation = spec.parse().unwrap();
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|_| rng.uniform(-30.0, 30.0)).collect();
        let view = RowView::new(&shape, a.dim(), n).unwrap();
        for s in std::iter::once(Strategy::Auto).chain(Strategy::ALL) {
            if serves(ctx, s, view) {
                let y = gpu_rows(ctx, &a, &x, &shape, s, false);
                out.push((
                    format!("{spec} {shape:?} {s:?}"),
                    x.clone(),
                    y,
                    shape.clone(),
                ));
            }
        }
    }
    // the workgroup paths of the grouped ops (a large group) and an elementwise op
    for spec in ["maxout(k=4096)", "fold_mean(k=4096)", "gelu"] {
        let a: Activation = spec.parse().unwrap();
        let n = 2 * 4096;
        let x: Vec<f32> = (0..n).map(|_| rng.uniform(-5.0, 5.0)).collect();
        let y = ctx.call(&a, &[n]).run(&x).unwrap();
        out.push((spec.to_string(), x, y, vec![n]));
    }
    // dice's batch statistics: column sums through workgroup memory
    let dice: Activation = "dice(alpha=0.25)".parse().unwrap();
    let shape = vec![600, 24];
    let x: Vec<f32> = (0..600 * 24).map(|_| rng.uniform(-3.0, 3.0)).collect();
    let y = ctx.call(&dice, &shape).run(&x).unwrap();
    out.push(("dice(alpha=0.25)".to_string(), x, y, shape));
    out
}

/// Panics unless `got` has `want`'s bits (any NaN for NaN).
fn assert_same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
            "{what}: element {i} is {g:e} ({:#010x}), expected {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// The default context's output for a grouped or elementwise op.
fn gpu_reference(a: &Activation, x: &[f32], shape: &[usize]) -> Vec<f32> {
    ctx().call(a, shape).run(x).unwrap()
}

#[test]
fn runtime_checks_and_zero_init_change_no_bit() {
    let default = context(KernelOptions::default());
    let base = outputs(&default, 8);
    // every strategy that serves each shape, the grouped ops, gelu and dice
    assert!(base.len() >= 30, "only {} runs", base.len());
    for kernels in [
        KernelOptions {
            runtime_checks: true,
            ..Default::default()
        },
        KernelOptions {
            zero_initialize_workgroup_memory: true,
            ..Default::default()
        },
    ] {
        let ctx = context(kernels);
        assert_eq!(ctx.facts().kernels, kernels);
        assert!(ctx.facts().to_string().contains(&kernels.to_string()));
        for ((what, _, want, _), (_, _, got, _)) in base.iter().zip(outputs(&ctx, 8)) {
            assert_same_bits(&got, want, &format!("{kernels}: {what}"));
        }
    }
}

#[test]
fn four_register_vec4s_give_results_within_the_bounds() {
    let ctx = context(KernelOptions {
        register_vec4s: 4,
        ..Default::default()
    });
    for (what, x, y, shape) in outputs(&ctx, 4) {
        let spec = what.split(' ').next().unwrap();
        let a: Activation = spec.parse().unwrap();
        if spec.contains("soft") {
            assert_rows_close(&a, &x, &shape, &y, &what);
        } else {
            // the grouped and elementwise kernels hold no register arrays: the same bits
            assert_same_bits(&y, &gpu_reference(&a, &x, &shape), &what);
        }
    }
}

#[test]
fn a_parallel_warm_up_compiles_each_pipeline_once_whoever_asks() {
    use wgpu_activations::{Direction, Op};
    let ops = [Op::Gelu, Op::Softmax, Op::Maxout, Op::Dice];
    let directions = [Direction::Forward, Direction::Backward];
    // one thread, one pipeline at a time: the count of distinct pipelines
    let serial = context(KernelOptions::default());
    serial
        .warm_up_on(1, &ops, &directions, Storage::F32)
        .unwrap();
    let distinct = serial.cache_stats().misses;
    assert!(distinct > 20, "{distinct} pipelines");
    // three threads warming up at once, each on every core: each pipeline compiled once
    let ctx = context(KernelOptions::default());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| ctx.warm_up(&ops, &directions, Storage::F32).unwrap());
        }
    });
    let stats = ctx.cache_stats();
    assert_eq!(stats.misses, distinct, "{stats:?}");
    assert_eq!(stats.hits, 2 * distinct, "{stats:?}");
    // and the pipelines work
    let y = ctx
        .call(&"softmax".parse().unwrap(), &[4])
        .run(&[1.0f32; 4])
        .unwrap();
    assert_eq!(y, vec![0.25; 4]);
    assert_eq!(
        ctx.cache_stats().misses,
        distinct,
        "a warmed-up call compiles nothing"
    );
}
