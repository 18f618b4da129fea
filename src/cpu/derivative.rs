//! The elementwise ops' backward references in f64: `grad_input = f(saved, grad_output,
//! params)`, one function per op table row, with PyTorch's semantics at every point.
//!
//! - Where PyTorch's backward is a select (`x <= 0 ? 0 : g`: relu, the clamps, the shrinks,
//!   threshold), the masked side is 0 whatever `g` is (NaN and infinities included), and a
//!   NaN `x` takes the side its comparisons send it to (relu passes `g` through).
//! - Elsewhere `grad_input = g * f'(saved)`, NaN for a NaN `saved` or `g`.
//! - At `+-inf` the derivative is its limit (0 where the function flattens out), where
//!   PyTorch's formula can give `inf * 0 = NaN`.
//! - The saved tensor is `y` for sigmoid and tanh (PyTorch saves their output), `x` for
//!   every other row.
//!
//! `tests/reference.rs` checks each against central differences of the forward reference.

use super::scalar::{sigmoid64, SELU_ALPHA, SELU_SCALE};

/// `g * d`, with `d` the derivative at a point where it exists.
fn times(g: f64, d: f64) -> f64 {
    g * d
}

/// PyTorch's masked backward: 0 where `masked`, else `g`.
fn mask(masked: bool, g: f64) -> f64 {
    if masked {
        0.0
    } else {
        g
    }
}

pub(crate) fn identity(_: f64, g: f64, _: &[f64]) -> f64 {
    g
}

pub(crate) fn binary_step(_: f64, _: f64, _: &[f64]) -> f64 {
    0.0
}

/// From the output: `g (1 - y) y`.
pub(crate) fn sigmoid(y: f64, g: f64, _: &[f64]) -> f64 {
    g * (1.0 - y) * y
}

/// From the output: `g (1 - y^2)`.
pub(crate) fn tanh(y: f64, g: f64, _: &[f64]) -> f64 {
    g * ((1.0 - y) * (1.0 + y))
}

pub(crate) fn relu(x: f64, g: f64, _: &[f64]) -> f64 {
    mask(x <= 0.0, g)
}

pub(crate) fn relu6(x: f64, g: f64, _: &[f64]) -> f64 {
    mask(x <= 0.0 || x >= 6.0, g)
}

pub(crate) fn leaky_relu(x: f64, g: f64, p: &[f64]) -> f64 {
    if x > 0.0 {
        g
    } else {
        g * p[0]
    }
}

pub(crate) fn elu(x: f64, g: f64, p: &[f64]) -> f64 {
    if x <= 0.0 {
        g * p[0] * x.exp()
    } else {
        g
    }
}

pub(crate) fn selu(x: f64, g: f64, _: &[f64]) -> f64 {
    if x <= 0.0 {
        g * (SELU_SCALE * SELU_ALPHA) * x.exp()
    } else {
        g * SELU_SCALE
    }
}

pub(crate) fn celu(x: f64, g: f64, p: &[f64]) -> f64 {
    if x <= 0.0 {
        g * (x / p[0]).exp()
    } else {
        g
    }
}

/// `Phi(x) + x phi(x)`: erfc keeps Phi accurate for x < 0; the sum cancels only near its
/// root (x = -0.75).
pub(crate) fn gelu(x: f64, g: f64, _: &[f64]) -> f64 {
    if x.is_infinite() {
        return times(g, if x > 0.0 { 1.0 } else { -0.0 });
    }
    let cdf = 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    times(g, cdf + x * pdf)
}

/// `s (1 + w (1 - s))` with s = sigmoid(z): the derivative of `x sigmoid(z(x))` where
/// `w = x z'(x)`; both sigmoids are taken without cancellation.
fn sigmoid_product(z: f64, w: f64) -> f64 {
    let s = sigmoid64(z);
    let t = sigmoid64(-z);
    s * (1.0 + w * t)
}

/// PyTorch's `0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u'`, written as `s (1 + (1 - s) x u')`
/// with `s = sigmoid(2u)` (the same value; `1 + tanh u` cancels in f64 for x < -5).
pub(crate) fn gelu_tanh(x: f64, g: f64, _: &[f64]) -> f64 {
    if x.is_infinite() {
        return times(g, if x > 0.0 { 1.0 } else { -0.0 });
    }
    let c1 = (8.0 / std::f64::consts::PI).sqrt();
    let z = c1 * (x + 0.044715 * x * x * x);
    let w = x * c1 * (1.0 + 3.0 * 0.044715 * x * x);
    times(g, sigmoid_product(z, w))
}

pub(crate) fn silu(x: f64, g: f64, _: &[f64]) -> f64 {
    swish(x, g, &[1.0])
}

pub(crate) fn swish(x: f64, g: f64, p: &[f64]) -> f64 {
    if p[0] == 0.0 {
        // x sigmoid(0) = x / 2, at the infinities too
        return if x.is_nan() { x } else { g * 0.5 };
    }
    if x.is_infinite() {
        let z = p[0] * x;
        return times(g, if z > 0.0 { 1.0 } else { 0.0 });
    }
    let z = p[0] * x;
    times(g, sigmoid_product(z, z))
}

/// `tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)`, sp = softplus(x), in closed forms without
/// cancellation: with e = exp(x), n = e (e + 2), it is
/// `e ((e + 2)(e^2 + 2e + 2) + 4x (1 + e)) / (n + 2)^2`, and for x >= 0 with E = exp(-x)
/// `((1 + 2E)(1 + 2E + 2E^2) + 4x E^2 (1 + E)) / (1 + 2E + 2E^2)^2`.
pub(crate) fn mish(x: f64, g: f64, _: &[f64]) -> f64 {
    if x.is_infinite() {
        return times(g, if x > 0.0 { 1.0 } else { -0.0 });
    }
    let d = if x >= 0.0 {
        let e = (-x).exp();
        let q = 1.0 + 2.0 * e + 2.0 * e * e;
        ((1.0 + 2.0 * e) * q + 4.0 * x * e * e * (1.0 + e)) / (q * q)
    } else {
        let e = x.exp();
        let n2 = e * (e + 2.0) + 2.0;
        e * ((e + 2.0) * (e * e + 2.0 * e + 2.0) + 4.0 * x * (1.0 + e)) / (n2 * n2)
    };
    times(g, d)
}

/// `sigmoid(beta x)`, or 1 where the forward is linear (beta * x rounded to f32 above the
/// threshold, as the forward decides).
pub(crate) fn softplus(x: f64, g: f64, p: &[f64]) -> f64 {
    let (beta, threshold) = (p[0], p[1]);
    if (x as f32) * (beta as f32) > threshold as f32 {
        return g;
    }
    times(g, sigmoid64(beta * x))
}

pub(crate) fn softsign(x: f64, g: f64, _: &[f64]) -> f64 {
    let d = 1.0 + x.abs();
    times(g, 1.0 / (d * d))
}

pub(crate) fn hardsigmoid(x: f64, g: f64, _: &[f64]) -> f64 {
    if x > -3.0 && x < 3.0 {
        g / 6.0
    } else {
        0.0
    }
}

/// PyTorch's: 0 below -3, `x / 3 + 1/2` on [-3, 3] (so -1/2 at -3 itself), 1 above.
/// PyTorch 2.15's: 0 at -3 and g at 3 (older releases: -g/2 and 3g/2).
pub(crate) fn hardswish(x: f64, g: f64, _: &[f64]) -> f64 {
    if x <= -3.0 {
        0.0
    } else if x < 3.0 {
        g * (x / 3.0 + 0.5)
    } else {
        g
    }
}

pub(crate) fn hardtanh(x: f64, g: f64, p: &[f64]) -> f64 {
    mask(x <= p[0] || x >= p[1], g)
}

pub(crate) fn logsigmoid(x: f64, g: f64, _: &[f64]) -> f64 {
    times(g, sigmoid64(-x))
}

pub(crate) fn tanhshrink(x: f64, g: f64, _: &[f64]) -> f64 {
    let t = x.tanh();
    times(g, t * t)
}

pub(crate) fn softshrink(x: f64, g: f64, p: &[f64]) -> f64 {
    mask(x >= -p[0] && x <= p[0], g)
}

pub(crate) fn hardshrink(x: f64, g: f64, p: &[f64]) -> f64 {
    softshrink(x, g, p)
}

pub(crate) fn threshold(x: f64, g: f64, p: &[f64]) -> f64 {
    mask(x <= p[0], g)
}

pub(crate) fn gaussian(x: f64, g: f64, _: &[f64]) -> f64 {
    if x.is_infinite() {
        // the limit from the side of the sign of -x
        return times(g, if x > 0.0 { -0.0 } else { 0.0 });
    }
    times(g, -2.0 * x * (-(x * x)).exp())
}

pub(crate) fn prelu(x: f64, g: f64, p: &[f64]) -> f64 {
    leaky_relu(x, g, p)
}

/// `(x - c) / r`; 0 where r = 0 (x = c with a = 0, where the cone has no derivative).
pub(crate) fn multiquadric(x: f64, g: f64, p: &[f64]) -> f64 {
    let d = x - p[0];
    if d.is_infinite() {
        return times(g, d.signum());
    }
    let r = (d * d + p[1] * p[1]).sqrt();
    times(g, if r == 0.0 { 0.0 } else { d / r })
}

/// `-(x - c) / r^3`; 0 where r = 0.
pub(crate) fn inverse_multiquadric(x: f64, g: f64, p: &[f64]) -> f64 {
    let d = x - p[0];
    if d.is_infinite() {
        return times(g, -0.0 * d.signum());
    }
    let r = (d * d + p[1] * p[1]).sqrt();
    times(g, if r == 0.0 { 0.0 } else { -d / (r * r * r) })
}

/// Evaluation mode: leaky_relu's backward with the slope `(lower + upper) / 2` as f32.
pub(crate) fn rrelu(x: f64, g: f64, p: &[f64]) -> f64 {
    let slope = f64::from(((p[0] + p[1]) / 2.0) as f32);
    leaky_relu(x, g, &[slope])
}
