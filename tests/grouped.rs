//! The grouped family (maxout, fold_max, fold_min, fold_mean, glu) against the f64
//! reference: odd shapes, every axis, extremal values and NaN, limits, and bad group sizes.

mod common;

use common::*;
use wgpu_activations::{accuracy, cpu, Activation, BufferRegion, Context, Error};

/// Runs through the encode API into a poisoned output and checks every element against
/// the reference within the op's ULP bound (NaN must meet NaN).
fn check(ctx: &Context, spec: &str, input: &[f32], shape: &[usize]) {
    let a: Activation = spec.parse().unwrap();
    let out_shape = a.output_shape(shape).unwrap();
    let out_len: usize = out_shape.iter().product();
    let src = storage_buffer(ctx, if input.is_empty() { &[0.0] } else { input });
    let dst = poisoned_buffer(ctx, out_len);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&a, shape)
        .encode(
            &mut encoder,
            BufferRegion::new(&src),
            BufferRegion::new(&dst),
        )
        .unwrap_or_else(|e| panic!("{spec} {shape:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    let y = ctx
        .download(BufferRegion::new(&dst), out_len as u64)
        .unwrap();
    let expected = cpu::reference_shaped_f64(&a, input, shape).unwrap();
    assert_eq!(expected.len(), out_len);
    let max_ulp = u64::from(
        a.op()
            .info()
            .accuracy
            .max_ulp(a.has_default_params())
            .unwrap(),
    );
    for (i, (&got, &want)) in y.iter().zip(&expected).enumerate() {
        assert_ne!(
            got.to_bits(),
            POISON_BITS,
            "{spec} {shape:?}: output {i} never written"
        );
        let want = want as f32;
        // the accuracy policy: NaN as NaN, a subnormal may be a zero of its sign
        let ok = accuracy::error_against(want, got) <= max_ulp;
        assert!(
            ok,
            "{spec} {shape:?}: output {i} is {got:e}, expected {want:e}"
        );
    }
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.uniform(-30.0, 30.0)).collect()
}

#[test]
fn every_grouped_op_on_odd_shapes_and_every_axis() {
    let ctx = ctx();
    let x = data(3 * 10 * 7, 1);
    for (spec, shape) in [
        ("maxout(k=3, dim=0)", [3usize, 10, 7]),
        ("maxout(k=5, dim=1)", [3, 10, 7]),
        ("maxout(k=7)", [3, 10, 7]),
        ("fold_max(k=2, dim=-2)", [3, 10, 7]),
        ("fold_min(k=10, dim=1)", [3, 10, 7]),
        ("fold_min(k=1)", [3, 10, 7]),
        ("fold_mean(k=5, dim=-2)", [3, 10, 7]),
        ("fold_mean(k=7, dim=2)", [3, 10, 7]),
        ("glu(dim=1)", [3, 10, 7]),
        ("glu(dim=-2)", [3, 10, 7]),
        ("glu(dim=0)", [3, 10, 7]),
    ] {
        if spec == "glu(dim=0)" {
            // dim 0 has 3 elements: odd
            let a: Activation = spec.parse().unwrap();
            assert!(matches!(a.output_shape(&shape), Err(Error::Shape { .. })));
            continue;
        }
        check(ctx, spec, &x, &shape);
    }
    // rank 4, and 1-D through `run`
    let x4 = data(2 * 6 * 4 * 5, 2);
    for spec in [
        "maxout(k=3, dim=1)",
        "fold_mean(k=2, dim=2)",
        "glu(dim=1)",
        "fold_min(k=5)",
    ] {
        check(ctx, spec, &x4, &[2, 6, 4, 5]);
    }
    let maxout: Activation = "maxout(k=4)".parse().unwrap();
    let y = ctx
        .call(&maxout, &[8])
        .run(&[1.0, 5.0, 2.0, 3.0, -1.0, -2.0, -3.0, -0.5])
        .unwrap();
    assert_eq!(y, [5.0, -0.5]);
}

#[test]
fn extremal_values_and_nan_follow_pytorch() {
    for (_, ctx) in both_contexts() {
        extremal_values_and_nan_on(ctx);
    }
}

fn extremal_values_and_nan_on(ctx: &Context) {
    let inf = f32::INFINITY;
    let mut x = accuracy::extremal_inputs();
    x.truncate(x.len() / 8 * 8);
    let n = x.len();
    for spec in [
        "maxout(k=2)",
        "fold_min(k=4)",
        "fold_mean(k=2)",
        "fold_mean(k=8)",
        "glu",
    ] {
        check(ctx, spec, &x, &[n]);
    }
    // hand-made cases: NaN wins a max, inf - inf is NaN in a mean, glu(inf, -inf) is NaN
    let cases: [(&str, [f32; 4], [f32; 2]); 4] = [
        ("maxout(k=2)", [f32::NAN, 1.0, -inf, 3.0], [f32::NAN, 3.0]),
        (
            "fold_min(k=2)",
            [2.0, f32::NAN, -inf, 3.0],
            [f32::NAN, -inf],
        ),
        ("fold_mean(k=2)", [inf, -inf, 1e38, 3e38], [f32::NAN, 2e38]),
        (
            "glu",
            [inf, 2.0, -inf, -300.0],
            [f32::NAN, 2.0 * 1.0 / (1.0 + (-(-300.0f64)).exp()) as f32],
        ),
    ];
    for (spec, input, want) in cases {
        let a: Activation = spec.parse().unwrap();
        let y = ctx.call(&a, &[input.len()]).run(&input).unwrap();
        for (got, want) in y.iter().zip(want) {
            assert!(
                (got.is_nan() && want.is_nan()) || *got == want,
                "{spec}{input:?} = {y:?}, expected {want:?}"
            );
        }
    }
}

#[test]
fn large_groups_and_many_outputs() {
    let ctx = ctx();
    let x = data(4 * 4096, 3);
    check(ctx, "fold_mean(k=4096)", &x, &[4, 4096]);
    check(ctx, "maxout(k=4096)", &x, &[4, 4096]);
    // more outputs than one dispatch dimension of workgroups covers at 256 per group
    let n = 65_535 * 256 * 2 + 2;
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 - 500.0).collect();
    check(ctx, "maxout(k=2)", &x, &[n]);
}

#[test]
fn small_device_pieces_and_grid_stride() {
    let small = small_device();
    let x = data(200 * 300, 4);
    for (spec, shape) in [
        ("maxout(k=3)", [200usize, 300]),
        ("fold_mean(k=4, dim=0)", [200, 300]),
        ("glu(dim=1)", [200, 300]),
    ] {
        check(&small, spec, &x, &shape);
    }
}

#[test]
fn bad_group_sizes_and_placements_are_errors() {
    let ctx = ctx();
    let x = vec![1.0f32; 30];
    let maxout4: Activation = "maxout(k=4)".parse().unwrap();
    let e = ctx.call(&maxout4, &[3, 10]).run(&x).unwrap_err();
    assert!(e.to_string().contains("not a multiple of k = 4"), "{e}");
    assert!("maxout(k=0)".parse::<Activation>().is_err());
    assert!("maxout(k=2.5)".parse::<Activation>().is_err());
    assert!("maxout".parse::<Activation>().is_err(), "k is required");
    let glu: Activation = "glu".parse().unwrap();
    assert!(ctx.call(&glu, &[10, 3]).run(&x).is_err());
    let mut out = vec![0.0; 30];
    assert!(ctx
        .call(&maxout4, &[x.len()])
        .run_into(&x, &mut out)
        .is_err());
    // one buffer: disjoint ranges work (the input is read from a copy), overlap does not
    let buf = storage_buffer(ctx, &[&x[..], &[f32::from_bits(POISON_BITS); 15]].concat());
    let maxout2: Activation = "maxout(k=2)".parse().unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&maxout2, &[30])
        .encode(
            &mut encoder,
            BufferRegion::new(&buf),
            BufferRegion::at(&buf, 30 * 4),
        )
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let y = ctx.download(BufferRegion::at(&buf, 30 * 4), 15).unwrap();
    assert_eq!(y, vec![1.0; 15]);
    let e = ctx
        .call(&maxout2, &[30])
        .encode(
            &mut ctx.device().create_command_encoder(&Default::default()),
            BufferRegion::new(&buf),
            BufferRegion::at(&buf, 8),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Overlap { .. }), "{e}");
}

#[test]
fn large_groups_use_the_workgroup_reductions_on_both_paths() {
    // k >= 1024 takes one workgroup per output; k = 100,000 would also pass lavapipe's
    // loop budget in one invocation
    let tree = tree_ctx();
    let mut x = data(3 * 100_000, 7);
    x[5] = f32::NAN; // group 0 of every spec below
    x[100_000 + 17] = f32::INFINITY;
    for c in [ctx(), tree] {
        for spec in [
            "maxout(k=100000)",
            "fold_min(k=100000)",
            "fold_mean(k=100000)",
            "fold_max(k=2048, dim=0)",
        ] {
            let shape = if spec.ends_with("dim=0)") {
                [2048, 146]
            } else {
                [3, 100_000]
            };
            let n: usize = shape.iter().product();
            check(c, spec, &x[..n], &shape);
        }
        // an overflowing mean, rescaled
        let mut big = vec![1.0f32; 2048];
        big[0] = f32::MAX;
        big[1] = f32::MAX;
        check(c, "fold_mean(k=2048)", &big, &[2048]);
    }
}

#[test]
fn gated_units_over_every_axis_extremes_and_both_contexts() {
    // swiglu, geglu (both forms) and reglu: gate(a) * b over the two halves, against the
    // reference within the table's bound, on the default context and under relaxed
    // numerics; values over the forward sweep's extremes (infinities, NaN, subnormals)
    let mut x = data(4 * 10 * 6, 3);
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        3e38,
        -3e38,
        88.8,
        -88.8,
        1e4,
    ];
    for (i, v) in specials.iter().enumerate() {
        x[i * 17] = *v;
        x[(i * 23 + 5) % 240] = *v;
    }
    // On an adapter that flushes, a gate value below f32's normal range is flushed
    // before the product (gelu(a) for a < -13: documented), so the relaxed run keeps the
    // random values above -12 (the extremes stay)
    let mut x_relaxed = x.clone();
    for v in &mut x_relaxed {
        if v.is_finite() && *v < -12.0 && *v > -31.0 {
            *v = -12.0 - (*v + 12.0) * 0.05;
        }
    }
    for (what, ctx) in both_contexts() {
        let x = if what.is_empty() { &x } else { &x_relaxed };
        for spec in ["swiglu", "geglu", "geglu(approximate=tanh)", "reglu"] {
            for dim in [0i64, 1, 2, -1] {
                let spec = format!("{spec}(dim={dim})")
                    .replace("(approximate=tanh)(", "(approximate=tanh, ");
                check(ctx, &spec, x, &[4, 10, 6]);
            }
        }
    }
    // the halves: swiglu of (a, b) = silu(a) b
    let a: Activation = "swiglu".parse().unwrap();
    let y = ctx().call(&a, &[4]).run(&[1.0, -2.0, 3.0, 0.5]).unwrap();
    let silu = |v: f32| v / (1.0 + (-v).exp());
    assert!((y[0] - silu(1.0) * 3.0).abs() < 1e-6 && (y[1] - silu(-2.0) * 0.5).abs() < 1e-6);
}
