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
    ctx.encode_backward_rows(&mut encoder, a, r[0], r[1], r[2], shape, s)
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
                    if !ctx.serves(s, view) || s == Strategy::Resident {
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
    ctx.encode_backward_shaped(&mut encoder, &a, BufferRegion::new(&yb), gr, gr, &shape)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_bits(&ctx.download(gr, 200).unwrap(), &want, "in place");
    // the slice API
    assert_bits(
        &ctx.run_backward_shaped(&a, &y, &g, &shape).unwrap(),
        &want,
        "run_backward_shaped",
    );
    // softmax(dim=0) of a 1-D tensor through run_backward
    let s: Activation = "softmax(dim=0)".parse().unwrap();
    let gx = ctx.run_backward(&s, &[0.5, 0.5], &[1.0, 0.0]).unwrap();
    assert_eq!(gx, [0.25, -0.25]);
}
