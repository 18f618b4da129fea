//! The softmax family's backward along any axis, every strategy, against the f64
//! reference relative to the magnitude of each element's terms.

mod common;

use common::*;
use wgpu_activations::{
    accuracy, cpu, Accuracy, Activation, BufferRegion, Context, Op, RowView, Strategy,
};

/// (y, g) for logits of `shape`: y the forward's f32 output, g uniform in [-1, 1).
fn saved_and_grad(a: &Activation, shape: &[usize], seed: u64) -> (Vec<f32>, Vec<f32>) {
    let n: usize = shape.iter().product();
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n)
        .map(|i| rng.uniform(-1.0, 1.0) * [1.0, 10.0, 30.0][i % 3])
        .collect();
    let y = cpu::reference_shaped_f64(a, &x, shape)
        .unwrap()
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let g = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    (y, g)
}

fn check(
    ctx: &Context,
    what: &str,
    a: &Activation,
    y: &[f32],
    g: &[f32],
    shape: &[usize],
    got: &[f32],
) {
    if let Some(i) = got.iter().position(|v| v.to_bits() == POISON_BITS) {
        panic!("{what}{a} {shape:?}: element {i} never written");
    }
    let want = cpu::reference_backward_f64(a, y, g, shape).unwrap();
    let scale = cpu::backward_magnitude(a, y, g, shape).unwrap();
    let Accuracy::Relative { rel, .. } = a.op().backward().accuracy else {
        panic!("{a}: the row backward has a relative bound");
    };
    let r = accuracy::compare_scaled(&want, &scale, got);
    assert!(
        r.within(rel),
        "{what}{a} {shape:?}: error {:e} at {}: got {:e}, expected {:e} ({})",
        r.max_error,
        r.worst_index,
        r.worst_output,
        r.worst_expected,
        ctx.adapter_name()
    );
}

fn gpu(
    ctx: &Context,
    a: &Activation,
    y: &[f32],
    g: &[f32],
    shape: &[usize],
    s: Strategy,
) -> Vec<f32> {
    let yb = storage_buffer(ctx, y);
    let gb = storage_buffer(ctx, g);
    let out = poisoned_buffer(ctx, y.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let r = [&yb, &gb, &out].map(BufferRegion::new);
    ctx.call(a, shape)
        .strategy(s)
        .encode_backward(&mut encoder, r[0], r[1], r[2])
        .unwrap_or_else(|e| panic!("{a} {shape:?} {s:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(r[2], y.len() as u64).unwrap()
}

#[test]
fn every_strategy_along_every_axis_is_within_the_bound() {
    let cases: &[(&[usize], i64)] = &[
        (&[3, 1], -1),
        (&[300, 7], -1),
        (&[64, 1000], -1),
        (&[2, 20_000], -1),
        (&[30, 100, 3], 1),
        (&[7, 33], 0),
    ];
    for (what, ctx) in both_contexts() {
        for op in Op::softmax_ops() {
            for &(shape, dim) in cases {
                let a = Activation::example(op).with("dim", dim as f32).unwrap();
                let (y, g) = saved_and_grad(&a, shape, 11);
                let view = RowView::new(shape, dim, y.len()).unwrap();
                for s in [Strategy::Auto].into_iter().chain(Strategy::ALL) {
                    if !serves(ctx, s, view) || s == Strategy::Resident {
                        continue;
                    }
                    let got = gpu(ctx, &a, &y, &g, shape, s);
                    check(ctx, &format!("{what}{s:?} "), &a, &y, &g, shape, &got);
                }
            }
        }
    }
}

#[test]
fn in_place_convenience_and_nan_rows() {
    let ctx = ctx();
    let a: Activation = "log_softmax".parse().unwrap();
    let shape = [4, 50];
    let (y, mut g) = saved_and_grad(&a, &shape, 5);
    g[60] = f32::NAN; // row 1 becomes NaN, the others do not
    let want = gpu(ctx, &a, &y, &g, &shape, Strategy::Auto);
    assert!(want[50..100].iter().all(|v| v.is_nan()));
    assert!(want[..50].iter().chain(&want[100..]).all(|v| v.is_finite()));
    // in place on grad_output
    let gb = storage_buffer(ctx, &g);
    let yb = storage_buffer(ctx, &y);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let gr = BufferRegion::new(&gb);
    ctx.call(&a, &shape)
        .encode_backward(&mut encoder, BufferRegion::new(&yb), gr, gr)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_bits(&ctx.download(gr, 200).unwrap(), &want, "in place");
    // the slice API
    assert_bits(
        &ctx.call(&a, &shape).run_backward(&y, &g).unwrap(),
        &want,
        "run_backward_shaped",
    );
    // a NaN in y (log_softmax's sum is of g alone): that element NaN, the others not
    let mut y2 = y.clone();
    y2[120] = f32::NAN;
    let g2: Vec<f32> = g
        .iter()
        .map(|v| if v.is_nan() { 0.5 } else { *v })
        .collect();
    let got = gpu(ctx, &a, &y2, &g2, &shape, Strategy::Auto);
    assert!(
        got[120].is_nan() && got.iter().filter(|v| v.is_nan()).count() == 1,
        "{got:?}"
    );
    // softmax(dim=0) of a 1-D tensor through run_backward
    let s: Activation = "softmax(dim=0)".parse().unwrap();
    let gx = ctx
        .call(&s, &[2])
        .run_backward(&[0.5, 0.5], &[1.0, 0.0])
        .unwrap();
    assert_eq!(gx, [0.25, -0.25]);
}

#[test]
fn extreme_rows_and_pieces_on_a_small_device() {
    // y with exact zeros and ones, subnormal and tiny probabilities; grad_outputs from
    // 1e-30 to 1e30 (and one row of zero grad_output); on both contexts
    let a = Activation::example(Op::Softmax);
    let mut y = vec![0.0f32; 64];
    y[0] = 1.0; // row 0: one-hot
    for (j, v) in y[16..32].iter_mut().enumerate() {
        *v = [1e-40, 1e-38, 1e-20, 0.5, 0.25, 0.125, 0.0625, 0.0625][j % 8] * 0.5;
    }
    for v in &mut y[32..48] {
        *v = 1.0 / 16.0;
    }
    let mut rng = Rng::new(4);
    let mut g: Vec<f32> = (0..64).map(|_| rng.log_uniform(1e-30, 1e30)).collect();
    g[48..].fill(0.0);
    let shape = [4, 16];
    for (what, ctx) in both_contexts() {
        for op in Op::softmax_ops() {
            let a = Activation::example(op);
            // log_softmax's y is a log-probability
            let saved: Vec<f32> = if op.softmax() == Some(wgpu_activations::SoftmaxKind::LogSoftmax)
            {
                y.iter()
                    .map(|&v| if v > 0.0 { v.ln() } else { f32::NEG_INFINITY })
                    .collect()
            } else {
                y.clone()
            };
            for s in [
                Strategy::Auto,
                Strategy::Lane,
                Strategy::Workgroup,
                Strategy::Split,
            ] {
                let got = gpu(ctx, &a, &saved, &g, &shape, s);
                check(
                    ctx,
                    &format!("{what}{s:?} extreme "),
                    &a,
                    &saved,
                    &g,
                    &shape,
                    &got,
                );
            }
        }
    }
    // a tensor of 40,000 elements on bindings of 16K floats: several pieces
    let small = small_device();
    let shape = [40, 1000];
    let (y, g) = saved_and_grad(&a, &shape, 9);
    for s in [Strategy::Auto, Strategy::Workgroup, Strategy::Split] {
        let got = gpu(&small, &a, &y, &g, &shape, s);
        check(
            &small,
            &format!("small device {s:?} "),
            &a,
            &y,
            &g,
            &shape,
            &got,
        );
    }
}

#[test]
fn the_register_strategies_run_as_the_backwards_auto() {
    // The backward has no register kernels: Registers and SplitRegisters named for it run
    // as its Auto (the same bits), also for rows longer than Registers holds forward.
    for (what, ctx) in both_contexts() {
        let long = ctx.facts().registers_capacity + 5;
        for op in Op::softmax_ops() {
            let a = Activation::example(op);
            for shape in [[3usize, 100usize], [2, long]] {
                let (y, g) = saved_and_grad(&a, &shape, 5);
                let auto = gpu(ctx, &a, &y, &g, &shape, Strategy::Auto);
                check(ctx, what, &a, &y, &g, &shape, &auto);
                for s in [Strategy::Registers, Strategy::SplitRegisters] {
                    let got = gpu(ctx, &a, &y, &g, &shape, s);
                    let same = got
                        .iter()
                        .zip(&auto)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{what}{a} {shape:?} {s:?}: differs from Auto");
                }
            }
        }
    }
}
