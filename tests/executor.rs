//! The one executor, tested through every family and direction on a device whose storage
//! bindings hold 1 KiB and whose dispatches take at most 2 workgroups: every call is cut
//! into many pieces, inputs far from the output in one buffer are read from copies, and
//! the results keep the bits of the same call on the default device (or, where a
//! reduction's order follows the pieces, the reference's bound). Nothing reaches the
//! device's uncaptured-error handler.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use wgpu_activations::{
    cpu, Activation, BufferRegion, Call, Context, ContextOptions, Error, Strategy,
};

/// The tiny device, and the count of errors that reach its uncaptured handler.
fn tiny() -> (Context, Arc<AtomicUsize>) {
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 10,
        max_compute_workgroups_per_dimension: 2,
        ..ctx().limits().clone()
    };
    let ctx = Context::with_options(ContextOptions {
        limits: Some(limits),
        ..Default::default()
    })
    .expect("a device with tiny limits");
    let count = count_uncaptured(&ctx);
    (ctx, count)
}

/// A call as data, so it can be made on two contexts.
#[derive(Clone)]
struct Case<'a> {
    spec: &'static str,
    shape: Vec<usize>,
    strategy: Strategy,
    params: Option<Params<'a>>,
}

impl<'a> Case<'a> {
    fn new(spec: &'static str, shape: &[usize]) -> Self {
        Case {
            spec,
            shape: shape.to_vec(),
            strategy: Strategy::Auto,
            params: None,
        }
    }

    fn activation(&self) -> Activation {
        self.spec.parse().unwrap()
    }

    fn on<'c>(&self, ctx: &'c Context) -> Call<'c>
    where
        'a: 'c,
    {
        let call = ctx
            .call(&self.activation(), &self.shape)
            .strategy(self.strategy);
        match self.params {
            Some(p) => call.params(p),
            None => call,
        }
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn out_len(&self) -> usize {
        let out = self.activation().output_shape(&self.shape).unwrap();
        out.iter().product()
    }
}

/// The forward through the encode API into a poisoned buffer of its own.
fn forward(ctx: &Context, case: &Case<'_>, x: &[f32]) -> Vec<f32> {
    let src = storage_buffer(ctx, x);
    let dst = poisoned_buffer(ctx, case.out_len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    case.on(ctx)
        .encode(
            &mut encoder,
            BufferRegion::new(&src),
            BufferRegion::new(&dst),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.spec));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(BufferRegion::new(&dst), case.out_len() as u64)
        .unwrap()
}

/// The backward through the encode API, grad_input in a poisoned buffer of its own.
fn backward(ctx: &Context, case: &Case<'_>, saved: &[f32], g: &[f32]) -> Vec<f32> {
    let (s, gb) = (storage_buffer(ctx, saved), storage_buffer(ctx, g));
    let gx = poisoned_buffer(ctx, case.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let [s, gb, gx] = [&s, &gb, &gx].map(BufferRegion::new);
    case.on(ctx)
        .encode_backward(&mut encoder, s, gb, gx)
        .unwrap_or_else(|e| panic!("{} backward: {e}", case.spec));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(gx, case.len() as u64).unwrap()
}

/// Inputs in (-4, 4) with zeros, an infinity and a NaN among them.
fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f32> = (0..n).map(|_| rng.uniform(-4.0, 4.0)).collect();
    for (i, v) in [0.0, -0.0, f32::INFINITY, f32::NAN].into_iter().enumerate() {
        if let Some(slot) = x.get_mut(i * 7 + 3) {
            *slot = v;
        }
    }
    x
}

#[test]
fn every_family_and_direction_cut_into_pieces_keeps_the_unbroken_bits() {
    let (small, errors) = tiny();
    let weights = [0.5f32, -0.25, 2.0, 0.125];
    let (mean, var, alpha) = ([0.1f32, -0.2, 0.3], [1.5f32, 0.5, 2.0], [0.2f32, 0.6, 0.9]);
    let lane = |spec, shape: &[usize]| Case {
        strategy: Strategy::Lane,
        ..Case::new(spec, shape)
    };
    let cases = [
        Case::new("gelu", &[1003]),
        Case::new("silu", &[2, 501]),
        Case::new(
            "rrelu(lower=0.1, upper=0.3, training=true, seed=7)",
            &[1003],
        ),
        Case::new("noisy_relu(std=0.5, seed=3)", &[999]),
        lane("softmax", &[40, 50]),
        lane("log_softmax(dim=1)", &[6, 10, 20]),
        lane("softmin(dim=1)", &[5, 20, 9]),
        Case::new("maxout(k=3)", &[2, 501]),
        Case::new("fold_mean(k=2, dim=0)", &[200, 6]),
        Case::new("glu", &[40, 26]),
        Case::new("swiglu(dim=1)", &[7, 30, 5]),
        Case {
            params: Some(Params::Prelu {
                weight: weights[..].into(),
            }),
            ..Case::new("prelu", &[5, 4, 60])
        },
        Case {
            params: Some(Params::DiceEval {
                mean: mean[..].into(),
                var: var[..].into(),
                alpha: alpha[..].into(),
            }),
            ..Case::new("dice(alpha=0.5, eps=1e-3)", &[400, 3])
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let x = inputs(case.len(), i as u64);
        let want = forward(ctx(), case, &x);
        assert_bits(&forward(&small, case, &x), &want, case.spec);
        if case.spec.starts_with("dice") {
            continue; // its backward needs the whole tensor in one binding (below)
        }
        // the backward of the softmax family reads y; the others x
        let saved = if case.activation().op().softmax().is_some() {
            want.clone()
        } else {
            x.clone()
        };
        let g = inputs(case.out_len(), 100 + i as u64);
        let want = backward(ctx(), case, &saved, &g);
        let got = backward(&small, case, &saved, &g);
        assert_bits(&got, &want, &format!("{} backward", case.spec));
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0, "uncaptured errors");
}

#[test]
fn reductions_over_pieces_stay_within_their_bounds() {
    let (small, errors) = tiny();
    // prelu's weight gradient: partial sums per piece, then per channel
    let shape = [6, 4, 50];
    let n = shape.iter().product();
    let (x, g) = (inputs(n, 1), inputs(n, 2));
    let w = [0.5f32, -0.25, 2.0, 0.125];
    let (gx, gw) = run_prelu_backward(&small, &x, &g, &shape, &w).unwrap();
    let (want_gx, want_gw) = cpu::reference_prelu_backward(&x, &g, &shape, &w).unwrap();
    let rounded: Vec<f32> = want_gx.iter().map(|&v| v as f32).collect();
    assert_exact(&gx, &rounded, "prelu grad_input");
    for (c, (&got, &want)) in gw.iter().zip(&want_gw).enumerate() {
        assert!(
            (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0) || got.is_nan(),
            "grad_weight[{c}]: {got} vs {want}"
        );
    }
    // dice in training mode: the whole tensor in one binding (240 floats here)
    // (finite: the extremal columns are the dice tests' subject)
    let dice: Activation = "dice(alpha=0.3)".parse().unwrap();
    let x: Vec<f32> = inputs(40 * 5, 3)
        .iter()
        .map(|v| v.clamp(-4.0, 4.0))
        .collect();
    let y = small.call(&dice, &[40, 5]).run(&x).unwrap();
    assert_rows_close(&dice, &x, &[40, 5], &y, "dice on the tiny device");
    // and its backward, with the batch statistics and with running ones
    let g = inputs(40 * 5, 4);
    let alpha = [0.3f32; 5];
    let (mean, var) = ([0.1f32; 5], [2.0f32; 5]);
    for running in [None, Some((&mean[..], &var[..]))] {
        let (gx, ga) = run_dice_backward(&small, &x, &g, &[40, 5], &alpha, running, 1e-9).unwrap();
        let want = cpu::reference_dice_backward(&x, &g, &[40, 5], &alpha, running, 1e-9).unwrap();
        let what = format!("dice ({running:?})");
        within_magnitude(
            &gx,
            &want.grad_input,
            &want.magnitude,
            &format!("{what} grad_input"),
        );
        within_magnitude(
            &ga,
            &want.grad_alpha,
            &want.alpha_magnitude,
            &format!("{what} grad_alpha"),
        );
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0, "uncaptured errors");
}

/// Panics unless each of `got` is within 1e-5 of its term's magnitude of `want` (the
/// family's relative bound), or equal, or NaN for NaN.
fn within_magnitude(got: &[f32], want: &[f64], magnitude: &[f64], what: &str) {
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let g64 = f64::from(g);
        let ok = g64 == w || (g64 - w).abs() <= 1e-5 * m + 1e-12 || (g.is_nan() && w.is_nan());
        assert!(ok, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn inputs_far_from_the_output_in_one_buffer_are_read_from_copies() {
    let (small, errors) = tiny();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let gelu: Activation = "gelu".parse().unwrap();
    let x = inputs(300, 4);
    let want = ctx().call(&gelu, &[300]).run(&x).unwrap();
    // the input 8 KiB before the output: farther than a 1 KiB binding spans
    let mut data = x.clone();
    data.resize(2048 + 300, f32::from_bits(POISON_BITS));
    let buf = storage_buffer(&small, &data);
    assert!(buf.usage().contains(usage));
    let (input, output) = (BufferRegion::new(&buf), BufferRegion::at(&buf, 2048 * 4));
    let mut encoder = small.device().create_command_encoder(&Default::default());
    small
        .call(&gelu, &[300])
        .encode(&mut encoder, input, output)
        .unwrap();
    small.queue().submit([encoder.finish()]);
    assert_bits(&small.download(output, 300).unwrap(), &want, "staged input");
    // the backward with both inputs in grad_input's buffer, one near and one far
    let g = inputs(300, 5);
    let want = ctx().call(&gelu, &[300]).run_backward(&x, &g).unwrap();
    let mut data = vec![f32::from_bits(POISON_BITS); 4096];
    data[..300].copy_from_slice(&x);
    data[3500..3800].copy_from_slice(&g);
    let buf = storage_buffer(&small, &data);
    let at = |element: u64| BufferRegion::at(&buf, element * 4);
    let mut encoder = small.device().create_command_encoder(&Default::default());
    small
        .call(&gelu, &[300])
        .encode_backward(&mut encoder, at(0), at(3500), at(3200))
        .unwrap();
    small.queue().submit([encoder.finish()]);
    assert_bits(
        &small.download(at(3200), 300).unwrap(),
        &want,
        "staged backward",
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0, "uncaptured errors");
}

#[test]
fn a_unit_past_one_binding_is_refused_with_the_limit() {
    let (small, errors) = tiny();
    let row = vec![0.5f32; 1000];
    for (spec, shape) in [
        ("softmax", vec![1, 1000]),
        ("maxout(k=500)", vec![1000]),
        ("dice(alpha=0.3)", vec![250, 4]),
    ] {
        let a: Activation = spec.parse().unwrap();
        let e = small.call(&a, &shape).run(&row).unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{spec}: {e}");
        assert!(e.to_string().contains("binding limit"), "{spec}: {e}");
    }
    assert_eq!(errors.load(Ordering::SeqCst), 0, "uncaptured errors");
}

#[test]
fn empty_tensors_record_and_compile_nothing_in_any_family() {
    let ctx = Context::new().unwrap();
    let before = ctx.cache_stats().misses;
    let buf = storage_buffer(&ctx, &[0.0; 4]);
    let r = BufferRegion::new(&buf);
    let weight = [0.5f32];
    for (spec, shape) in [
        ("gelu", vec![0]),
        ("softmax", vec![0, 8]),
        ("maxout(k=2)", vec![4, 0]),
        ("rrelu(training=true)", vec![0]),
        ("dice(alpha=0.3)", vec![0, 3]),
    ] {
        let a: Activation = spec.parse().unwrap();
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        ctx.call(&a, &shape).encode(&mut encoder, r, r).unwrap();
        ctx.call(&a, &shape)
            .encode_backward(&mut encoder, r, r, r)
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
    }
    let prelu = ctx.call(&prelu_op(), &[0]).params(Params::Prelu {
        weight: weight[..].into(),
    });
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    prelu.encode(&mut encoder, r, r).unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_eq!(ctx.cache_stats().misses, before, "nothing compiled");
}
