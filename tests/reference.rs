//! The CPU reference itself, at the values the numerics policy names, against
//! 40-digit values computed with mpmath.

use wgpu_activations::{cpu, Activation};

fn value(spec: &str, x: f32) -> f64 {
    cpu::reference_f64(&spec.parse::<Activation>().unwrap(), x)
}

fn close(got: f64, want: f64) {
    assert!(
        ((got - want) / want).abs() < 1e-12,
        "got {got:e}, want {want:e}"
    );
}

#[test]
fn reference_is_right_in_the_tails() {
    close(value("gelu", -8.0), -4.976_768_459_417_427e-15);
    close(value("softplus", -50.0), 1.928_749_847_963_917_8e-22);
    close(value("selu", -1e-8), -1.758_099_321_372_082_6e-8);
    close(value("tanhshrink", 1e-3), 3.333_332_474_974_759e-10);
    close(value("gaussian", 9.0), 6.639_677_199_580_734e-36);
    assert_eq!(value("logsigmoid", -100.0), -100.0);
    // the radial functions, against values computed by hand in f64
    close(value("multiquadric", 1e-3), 1.000_000_499_999_875);
    close(
        value("inverse_multiquadric(c=1, a=2)", 4.0),
        0.277_350_098_112_614_6,
    );
}

#[test]
fn reference_gives_limits_and_propagates_nan() {
    for spec in [
        "sigmoid",
        "tanh",
        "softplus",
        "mish",
        "gelu(approximate=tanh)",
        "gelu",
        "silu",
    ] {
        for x in [
            88.8f32,
            -88.8,
            1e4,
            -1e4,
            3.4e38,
            -3.4e38,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert!(!value(spec, x).is_nan(), "{spec}({x})");
        }
        assert!(value(spec, f32::NAN).is_nan());
    }
    assert_eq!(value("sigmoid", f32::NEG_INFINITY), 0.0);
    assert_eq!(value("tanh", f32::INFINITY), 1.0);
    assert_eq!(value("softsign", f32::NEG_INFINITY), -1.0);
    assert_eq!(value("mish", f32::NEG_INFINITY), 0.0);
}

#[test]
fn softplus_follows_pytorchs_threshold() {
    // beta * x > threshold gives x exactly, like torch.nn.functional.softplus.
    assert_eq!(value("softplus(beta=1, threshold=1)", 1.5), 1.5);
    assert!(value("softplus(beta=1, threshold=1)", 0.5) > 0.5);
}

/// Every elementwise op's reference derivative against central differences of its f64
/// forward reference (from the saved output where the op saves it), away from the points
/// where the forward has a kink or a jump (found by comparing one-sided differences), so
/// a wrong derivative reference cannot pass the GPU tests.
#[test]
fn reference_derivatives_match_central_differences() {
    use wgpu_activations::{Op, Saved};
    for op in Op::elementwise_ops() {
        let a = Activation::example(op);
        let (_, f) = op.elementwise().unwrap();
        let (_, d) = op.elementwise_grad().unwrap();
        let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
        let mut checked = 0;
        for i in 0..=2000 {
            let x = -12.0 + i as f64 * 0.012_037;
            let h = 1e-5 * x.abs().max(1.0);
            let (l, c, r) = (f(x - h, &p), f(x, &p), f(x + h, &p));
            let (left, right) = ((c - l) / h, (r - c) / h);
            if (left - right).abs() > 1e-3 * (left.abs() + right.abs() + 1e-3) {
                continue; // a kink or a jump within h
            }
            let central = (r - l) / (2.0 * h);
            let saved = match op.backward().saved {
                Saved::Input => x,
                Saved::Output => c,
            };
            let got = d(saved, 1.0, &p);
            assert!(
                (got - central).abs() <= 1e-6 * (central.abs() + 1e-3),
                "{a}: f'({x}) is {got:e} by the reference, {central:e} by differences"
            );
            // grad_output scales it
            assert!((d(saved, -2.5, &p) + 2.5 * got).abs() <= 1e-12 * got.abs().max(1e-300));
            checked += 1;
        }
        assert!(checked > 1900, "{a}: only {checked} points checked");
    }
}

/// The backward references of the families that are not elementwise (the softmax family,
/// the grouped ops, dice, the random ops with their draws fixed) against central
/// differences of `sum(g * f(x))` through the forward reference, at points where no
/// kink lies within the step.
#[test]
fn family_backward_references_match_central_differences() {
    use wgpu_activations::{Op, Saved};
    let shape = [6usize, 4];
    let n = 24;
    // distinct values (no ties for the maxima), multiples of 2^-8 so x +- 2^-12 is exact
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % n) as f32 - 11.3) * 0.25 + i as f32 / 256.0)
        .collect();
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5 + 0.1)
        .collect();
    for &op in Op::ALL {
        if op.elementwise().is_some() {
            continue;
        }
        let a = Activation::example(op);
        let out_len: usize = a.output_shape(&shape).unwrap().iter().product();
        let g = &g[..out_len];
        let loss = |x: &[f32]| -> f64 {
            let y = cpu::reference_shaped_f64(&a, x, &shape).unwrap();
            y.iter().zip(g).map(|(y, &g)| y * f64::from(g)).sum()
        };
        let saved = match op.backward().saved {
            Saved::Input => x.clone(),
            Saved::Output => cpu::reference_shaped_f64(&a, &x, &shape)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        };
        let grad = cpu::reference_backward_f64(&a, &saved, g, &shape).unwrap();
        // the random ops' forward reference is rounded to f32 (the GPU's exact bits), but
        // linear away from 0: a long step keeps that rounding small against it
        // (and the gated units' reference rounds the gate to f32, as PyTorch does: a
        // longer step for them too)
        let gated = op.grouped().is_some_and(|k| k.gate().is_some());
        let h = if op.random().is_some() {
            1.0 / 16.0
        } else if gated {
            1.0 / 256.0
        } else {
            1.0 / 4096.0
        };
        let mut checked = 0;
        for i in 0..n {
            let at = |d: f32| {
                let mut v = x.clone();
                v[i] += d;
                loss(&v)
            };
            let (l, c, r) = (at(-h), at(0.0), at(h));
            let (left, right) = ((c - l) / f64::from(h), (r - c) / f64::from(h));
            if (left - right).abs() > 1e-3 * (left.abs() + right.abs() + 1e-3) {
                continue; // a kink within the step
            }
            let central = (r - l) / (2.0 * f64::from(h));
            assert!(
                (grad[i] - central).abs() <= 1e-4 * (central.abs() + 1e-2),
                "{a}: d/dx[{i}] is {:e} by the reference, {central:e} by differences",
                grad[i]
            );
            checked += 1;
        }
        assert!(checked >= n / 2, "{a}: only {checked} points checked");
    }
}
