//! The grouped ops' backward: maxout and folding route grad_output to one element per
//! group (the first maximum, minimum or NaN), fold_mean spreads it, glu splits it over
//! both halves; against the f64 reference, on both contexts.

mod common;

use common::*;
use wgpu_activations::{accuracy, cpu, Accuracy, Activation, BufferRegion, Context};

fn gpu(ctx: &Context, a: &Activation, x: &[f32], g: &[f32], shape: &[usize]) -> Vec<f32> {
    let xb = storage_buffer(ctx, x);
    let gb = storage_buffer(ctx, g);
    let out = poisoned_buffer(ctx, x.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let r = [&xb, &gb, &out].map(BufferRegion::new);
    ctx.call(a, shape)
        .encode_backward(&mut encoder, r[0], r[1], r[2])
        .unwrap_or_else(|e| panic!("{a} {shape:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(r[2], x.len() as u64).unwrap()
}

fn check(what: &str, a: &Activation, x: &[f32], g: &[f32], shape: &[usize], got: &[f32]) {
    let want = cpu::reference_backward_f64(a, x, g, shape).unwrap();
    let accuracy = a.op().backward().accuracy;
    let bound = u64::from(accuracy.max_ulp(true).unwrap());
    // the gated units: the gate's derivative sees g b, its absolute bound scales with it
    let seen = match accuracy {
        Accuracy::UlpOrAbs { .. } => cpu::backward_magnitude(a, x, g, shape).unwrap(),
        _ => vec![1.0; x.len()],
    };
    for (i, (&y, &w)) in got.iter().zip(&want).enumerate() {
        let e = accuracy::gradient_error(w, y, seen[i] as f32, accuracy);
        // an infinite g b times a derivative below f64's range: NaN in the reference
        // (inf * 0), infinite in the kernel, as for the elementwise ops
        let infinite_g = seen[i].is_infinite() && w.is_nan() && y.is_infinite();
        assert!(
            y.to_bits() != POISON_BITS && (e <= bound || infinite_g),
            "{what}{a} {shape:?}: element {i} (x = {:e}) is {y:e}, expected {w:e} ({e} ULP)",
            x[i]
        );
    }
}

/// Values with ties, signed zeros, subnormals and an occasional NaN.
fn inputs(n: usize, seed: u64, nan: bool) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let subs = subnormals();
    (0..n)
        .map(|i| match rng.next_u64() % 10 {
            0 => 1.5,
            1 => -0.0,
            2 => 0.0,
            3 => subs[i % subs.len()],
            4 if nan && i % 7 == 0 => f32::NAN,
            _ => rng.uniform(-4.0, 4.0),
        })
        .collect()
}

#[test]
fn every_grouped_backward_matches_the_reference() {
    let cases: &[(&str, &[usize])] = &[
        ("maxout(k=2)", &[6, 12]),
        ("maxout(k=3, dim=1)", &[4, 6, 5]),
        ("fold_max(k=4)", &[5, 16]),
        ("fold_min(k=3)", &[5, 9]),
        ("fold_min(k=2, dim=0)", &[4, 7]),
        ("fold_mean(k=5)", &[3, 20]),
        ("glu", &[4, 10]),
        ("glu(dim=1)", &[2, 6, 3]),
        ("swiglu", &[4, 10]),
        ("geglu(dim=0)", &[6, 5]),
        ("geglu(approximate=tanh, dim=1)", &[2, 6, 3]),
        ("reglu", &[4, 10]),
        // one workgroup per group
        ("fold_max(k=2048)", &[3, 4096]),
        ("fold_min(k=1024, dim=0)", &[2048, 2]),
        ("fold_mean(k=2048)", &[1, 4096]),
    ];
    for (what, ctx) in both_contexts() {
        for (i, &(spec, shape)) in cases.iter().enumerate() {
            let a: Activation = spec.parse().unwrap();
            let n: usize = shape.iter().product();
            let x = inputs(n, i as u64, !spec.contains("glu"));
            let out_len: usize = a.output_shape(shape).unwrap().iter().product();
            let mut rng = Rng::new(99);
            let g: Vec<f32> = (0..out_len).map(|_| rng.log_uniform(1e-3, 1e3)).collect();
            let got = gpu(ctx, &a, &x, &g, shape);
            check(what, &a, &x, &g, shape, &got);
        }
    }
}

#[test]
fn first_maximum_takes_the_gradient_and_in_place_works() {
    let ctx = ctx();
    let a: Activation = "maxout(k=4)".parse().unwrap();
    let x = [
        1.0,
        3.0,
        3.0,
        2.0,
        -0.0,
        0.0,
        -1.0,
        -2.0,
        f32::NAN,
        5.0,
        f32::NAN,
        1.0,
    ];
    let g = [10.0, 20.0, 30.0];
    let want = [
        0.0, 10.0, 0.0, 0.0, 20.0, 0.0, 0.0, 0.0, 30.0, 0.0, 0.0, 0.0,
    ];
    assert_bits(&gpu(ctx, &a, &x, &g, &[12]), &want, "first maximum");
    // in place on the saved input, grad_output in grad_input's buffer (disjoint: staged)
    let buf = storage_buffer(ctx, &[&x[..], &g[..]].concat());
    let xr = BufferRegion::new(&buf);
    let gr = BufferRegion::at(&buf, 48);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&a, &[12])
        .encode_backward(&mut encoder, xr, gr, xr)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_bits(&ctx.download(xr, 12).unwrap(), &want, "in place");
    // grad_output overlapping grad_input: an error
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = ctx
        .call(&a, &[12])
        .encode_backward(&mut encoder, xr, BufferRegion::at(&buf, 8), xr)
        .unwrap_err();
    assert!(err.to_string().contains("grad_output"), "{err}");
    // the slice API checks grad_output's length against the output shape
    assert!(ctx.call(&a, &[12]).run_backward(&x, &g[..2]).is_err());
    assert_bits(
        &ctx.call(&a, &[12]).run_backward(&x, &g).unwrap(),
        &want,
        "run_backward_shaped",
    );
}

#[test]
fn pieces_on_a_small_device() {
    // 64,000 inputs on bindings of 16K floats: the groups in several pieces, each with
    // its own grad_output window
    let small = small_device();
    for (spec, shape) in [
        ("maxout(k=4)", [64, 1000]),
        ("glu", [64, 1000]),
        ("fold_mean(k=8, dim=0)", [64, 1000]),
    ] {
        let a: Activation = spec.parse().unwrap();
        let n: usize = shape.iter().product();
        let x = inputs(n, 5, false);
        let out_len: usize = a.output_shape(&shape).unwrap().iter().product();
        let mut rng = Rng::new(6);
        let g: Vec<f32> = (0..out_len).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let got = gpu(&small, &a, &x, &g, &shape);
        check("small device: ", &a, &x, &g, &shape, &got);
    }
}

#[test]
fn extremal_inputs_on_both_contexts() {
    // +-0, +-inf, NaN, +-88.8, +-1e4, +-3.4e38 and subnormals of both signs in the saved
    // input, finite grad_outputs: every grouped backward against its reference
    let ext = [
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        88.8,
        -88.8,
        1e4,
        -1e4,
        3.4e38,
        -3.4e38,
        1e-40,
        -1e-40,
        1.5,
        -2.5,
        0.75,
    ];
    let x: Vec<f32> = (0..64).map(|i| ext[(i * 7) % ext.len()]).collect();
    for (what, ctx) in both_contexts() {
        for spec in [
            "maxout(k=2)",
            "fold_min(k=4)",
            "fold_mean(k=2)",
            "glu",
            "swiglu",
            "geglu",
            "geglu(approximate=tanh)",
            "reglu",
        ] {
            let a: Activation = spec.parse().unwrap();
            let shape = [4, 16];
            let out_len: usize = a.output_shape(&shape).unwrap().iter().product();
            let g: Vec<f32> = (0..out_len).map(|i| [1.0, -0.5, 3.0][i % 3]).collect();
            let got = gpu(ctx, &a, &x, &g, &shape);
            check(what, &a, &x, &g, &shape, &got);
        }
    }
}
