//! Dice's backward: through the batch statistics (training) and with running statistics
//! (evaluation), grad_input and grad_alpha against the f64 reference, and against central
//! differences of the forward reference, so the reference itself cannot be wrong.

#![allow(clippy::needless_range_loop)] // parallel arrays, indexed together

mod common;

use common::*;
use wgpu_activations::{cpu, Activation, Context};

fn inputs(batch: usize, features: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let n = batch * features;
    let x = (0..n)
        .map(|i| rng.uniform(-3.0, 3.0) + (i % features) as f32)
        .collect();
    let g = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let alpha = (0..features)
        .map(|f| 0.1 + 0.8 * f as f32 / features as f32)
        .collect();
    (x, g, alpha)
}

fn check(ctx: &Context, what: &str, batch: usize, features: usize, running: bool) {
    let (x, g, alpha) = inputs(batch, features, (batch * 31 + features) as u64);
    let shape = [batch, features];
    let mean: Vec<f32> = (0..features).map(|f| f as f32 + 0.25).collect();
    let var: Vec<f32> = (0..features).map(|f| 1.5 + f as f32 * 0.1).collect();
    let stats = running.then_some((&mean[..], &var[..]));
    let (gx, ga) = run_dice_backward(ctx, &x, &g, &shape, &alpha, stats, 1e-5)
        .unwrap_or_else(|e| panic!("{what} {shape:?}: {e}"));
    let want = cpu::reference_dice_backward(&x, &g, &shape, &alpha, stats, 1e-5).unwrap();
    for i in 0..x.len() {
        let err = (f64::from(gx[i]) - want.grad_input[i]).abs();
        assert!(
            err <= 1e-5 * want.magnitude[i],
            "{what} {shape:?} running {running}: grad_input[{i}] = {:e}, expected {:e}",
            gx[i],
            want.grad_input[i]
        );
    }
    for f in 0..features {
        let err = (f64::from(ga[f]) - want.grad_alpha[f]).abs();
        assert!(
            err <= 1e-5 * want.alpha_magnitude[f],
            "{what} {shape:?} running {running}: grad_alpha[{f}] = {:e}, expected {:e}",
            ga[f],
            want.grad_alpha[f]
        );
    }
}

#[test]
fn training_and_evaluation_match_the_reference() {
    for (what, ctx) in both_contexts() {
        for (batch, features) in [(1, 3), (7, 5), (64, 33), (2048, 3)] {
            for running in [false, true] {
                check(ctx, what, batch, features, running);
            }
        }
    }
}

/// sum(g * dice(x)) in f64, with the batch's statistics or running ones.
fn loss(
    x: &[f64],
    g: &[f32],
    alpha: &[f64],
    features: usize,
    running: Option<(&[f32], &[f32])>,
    eps: f64,
) -> f64 {
    let batch = x.len() / features;
    (0..features)
        .map(|f| {
            let col: Vec<f64> = (0..batch).map(|i| x[i * features + f]).collect();
            let (mean, var) = match running {
                Some((m, v)) => (f64::from(m[f]), f64::from(v[f])),
                None => {
                    let mean = col.iter().sum::<f64>() / batch as f64;
                    (
                        mean,
                        col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / batch as f64,
                    )
                }
            };
            let s = (var + eps).sqrt();
            col.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let p = 1.0 / (1.0 + (-(v - mean) / s).exp());
                    f64::from(g[i * features + f]) * v * (alpha[f] + (1.0 - alpha[f]) * p)
                })
                .sum::<f64>()
        })
        .sum()
}

#[test]
fn the_reference_matches_central_differences_and_the_spec_backward_matches_it() {
    let (batch, features) = (6, 4);
    let (x, g, alpha) = inputs(batch, features, 3);
    let mean: Vec<f32> = vec![0.5, 1.0, 2.0, 3.5];
    let var: Vec<f32> = vec![1.0, 2.0, 0.5, 3.0];
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let a64: Vec<f64> = alpha.iter().map(|&v| f64::from(v)).collect();
    let eps = 1e-6f32;
    for running in [None, Some((&mean[..], &var[..]))] {
        let want =
            cpu::reference_dice_backward(&x, &g, &[batch, features], &alpha, running, eps).unwrap();
        let l = |x: &[f64], a: &[f64]| loss(x, &g, a, features, running, f64::from(eps));
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[i] += h;
            down[i] -= h;
            let central = (l(&up, &a64) - l(&down, &a64)) / (2.0 * h);
            assert!(
                (central - want.grad_input[i]).abs() <= 1e-6 * (1.0 + central.abs()),
                "grad_input {i}"
            );
        }
        for f in 0..features {
            let (mut up, mut down) = (a64.clone(), a64.clone());
            up[f] += h;
            down[f] -= h;
            let central = (l(&x64, &up) - l(&x64, &down)) / (2.0 * h);
            assert!(
                (central - want.grad_alpha[f]).abs() <= 1e-6 * (1.0 + central.abs()),
                "grad_alpha {f}"
            );
        }
    }
    // the spec's dice: one alpha, training mode, grad_input through encode_backward_shaped
    let ctx = ctx();
    let a: Activation = "dice(alpha=0.3, eps=1e-6)".parse().unwrap();
    let shape = [batch, features];
    let gx = ctx.call(&a, &shape).run_backward(&x, &g).unwrap();
    let want = cpu::reference_dice_backward(&x, &g, &shape, &[0.3; 4], None, 1e-6).unwrap();
    assert_eq!(
        cpu::reference_backward_f64(&a, &x, &g, &shape).unwrap(),
        want.grad_input
    );
    for i in 0..x.len() {
        assert!(
            (f64::from(gx[i]) - want.grad_input[i]).abs() <= 1e-5 * want.magnitude[i],
            "spec {i}"
        );
    }
}
