//! The elementwise ops' f64 references, one function per op table row (`f(x, params)`),
//! with care where f64 itself would cancel or overflow. They depend on nothing else in
//! the crate, so the op table can name them without a circle of modules.

/// NaN for NaN, else `f(x)`: keeps every reference NaN-propagating.
fn nan_or(x: f64, f: impl FnOnce(f64) -> f64) -> f64 {
    if x.is_nan() {
        x
    } else {
        f(x)
    }
}

pub(crate) fn identity(x: f64, _: &[f64]) -> f64 {
    x
}

pub(crate) fn binary_step(x: f64, _: &[f64]) -> f64 {
    nan_or(x, |x| if x >= 0.0 { 1.0 } else { 0.0 })
}

/// sigmoid without overflow: exp is only taken of -|x|.
pub(crate) fn sigmoid64(x: f64) -> f64 {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// log(1 + exp(x)) without overflow or cancellation.
fn softplus64(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

pub(crate) fn sigmoid(x: f64, _: &[f64]) -> f64 {
    nan_or(x, sigmoid64)
}

pub(crate) fn tanh(x: f64, _: &[f64]) -> f64 {
    x.tanh()
}

pub(crate) fn relu(x: f64, _: &[f64]) -> f64 {
    nan_or(x, |x| if x > 0.0 { x } else { 0.0 })
}

fn clamp_keep_nan(x: f64, lo: f64, hi: f64) -> f64 {
    nan_or(x, |x| x.max(lo).min(hi))
}

pub(crate) fn relu6(x: f64, _: &[f64]) -> f64 {
    clamp_keep_nan(x, 0.0, 6.0)
}

pub(crate) fn leaky_relu(x: f64, p: &[f64]) -> f64 {
    if x > 0.0 {
        x
    } else {
        x * p[0]
    }
}

pub(crate) fn elu(x: f64, p: &[f64]) -> f64 {
    if x > 0.0 {
        x
    } else {
        p[0] * x.exp_m1()
    }
}

/// PyTorch's SELU constants.
pub(crate) const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
pub(crate) const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

pub(crate) fn selu(x: f64, _: &[f64]) -> f64 {
    SELU_SCALE * elu(x, &[SELU_ALPHA])
}

pub(crate) fn celu(x: f64, p: &[f64]) -> f64 {
    if x > 0.0 {
        x
    } else {
        p[0] * (x / p[0]).exp_m1()
    }
}

pub(crate) fn gelu(x: f64, _: &[f64]) -> f64 {
    // erfc(-x / sqrt 2) has no cancellation for x < 0, unlike 1 + erf.
    nan_or(x, |x| {
        if x == f64::NEG_INFINITY {
            return -0.0;
        }
        0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
    })
}

pub(crate) fn gelu_tanh(x: f64, _: &[f64]) -> f64 {
    // x/2 (1 + tanh u) = x sigmoid(2u): no cancellation for x < 0.
    nan_or(x, |x| {
        if x.is_infinite() {
            return if x > 0.0 { x } else { -0.0 };
        }
        let two_u = (8.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        x * sigmoid64(two_u)
    })
}

pub(crate) fn silu(x: f64, _: &[f64]) -> f64 {
    swish(x, &[1.0])
}

pub(crate) fn swish(x: f64, p: &[f64]) -> f64 {
    nan_or(x, |x| {
        let s = sigmoid64(p[0] * x);
        if s == 0.0 {
            // x * 0 for x = -inf
            return 0.0_f64.copysign(x);
        }
        x * s
    })
}

pub(crate) fn mish(x: f64, _: &[f64]) -> f64 {
    nan_or(x, |x| {
        let t = softplus64(x).tanh();
        if t == 0.0 {
            return -0.0;
        }
        x * t
    })
}

pub(crate) fn softplus(x: f64, p: &[f64]) -> f64 {
    let (beta, threshold) = (p[0], p[1]);
    // PyTorch's linear region is decided on the f32 product beta * x.
    if (x as f32) * (beta as f32) > threshold as f32 {
        return x;
    }
    nan_or(x, |x| softplus64(beta * x) / beta)
}

pub(crate) fn softsign(x: f64, _: &[f64]) -> f64 {
    if x.is_infinite() {
        return x.signum();
    }
    x / (1.0 + x.abs())
}

pub(crate) fn hardsigmoid(x: f64, _: &[f64]) -> f64 {
    clamp_keep_nan(x / 6.0 + 0.5, 0.0, 1.0)
}

pub(crate) fn hardswish(x: f64, _: &[f64]) -> f64 {
    nan_or(x, |x| {
        if x <= -3.0 {
            -0.0 // x * 0 with x negative, as PyTorch
        } else if x >= 3.0 {
            x
        } else {
            x * (x + 3.0) / 6.0
        }
    })
}

pub(crate) fn hardtanh(x: f64, p: &[f64]) -> f64 {
    clamp_keep_nan(x, p[0], p[1])
}

pub(crate) fn logsigmoid(x: f64, _: &[f64]) -> f64 {
    // an exact 0 at +inf is PyTorch's +0 (min(x, 0) - log1p(exp(-|x|)))
    nan_or(x, |x| {
        if x == f64::INFINITY {
            0.0
        } else {
            -softplus64(-x)
        }
    })
}

pub(crate) fn tanhshrink(x: f64, _: &[f64]) -> f64 {
    if x == 0.0 {
        return 0.0; // x - tanh(x) = +0 for both zeros, as PyTorch
    }
    if x.abs() < 0.1 {
        // x - tanh x cancels in f64 too: use its Taylor series (next term < 1e-12 relative).
        let s = x * x;
        let series = 1.0 / 3.0
            + s * (-2.0 / 15.0
                + s * (17.0 / 315.0 + s * (-62.0 / 2835.0 + s * (1382.0 / 155_925.0))));
        return x * s * series;
    }
    if x.is_infinite() {
        return x;
    }
    x - x.tanh()
}

pub(crate) fn softshrink(x: f64, p: &[f64]) -> f64 {
    let l = p[0];
    nan_or(x, |x| {
        if x > l {
            x - l
        } else if x < -l {
            x + l
        } else {
            0.0
        }
    })
}

pub(crate) fn hardshrink(x: f64, p: &[f64]) -> f64 {
    let l = p[0];
    if x >= -l && x <= l {
        0.0
    } else {
        x
    }
}

pub(crate) fn threshold(x: f64, p: &[f64]) -> f64 {
    nan_or(x, |x| if x > p[0] { x } else { p[1] })
}

pub(crate) fn gaussian(x: f64, _: &[f64]) -> f64 {
    (-(x * x)).exp()
}

pub(crate) fn prelu(x: f64, p: &[f64]) -> f64 {
    leaky_relu(x, p)
}

/// sqrt((x - c)^2 + a^2): the difference and both squares are exact in f64 for f32
/// inputs, so only the sum and the square root round.
fn radial64(x: f64, p: &[f64]) -> f64 {
    let d = x - p[0];
    (d * d + p[1] * p[1]).sqrt()
}

pub(crate) fn multiquadric(x: f64, p: &[f64]) -> f64 {
    nan_or(x, |x| radial64(x, p))
}

pub(crate) fn inverse_multiquadric(x: f64, p: &[f64]) -> f64 {
    nan_or(x, |x| 1.0 / radial64(x, p))
}

pub(crate) fn rrelu(x: f64, p: &[f64]) -> f64 {
    // The slope the GPU uses: (lower + upper) / 2 rounded to f32, as PyTorch passes it.
    let slope = f64::from(((p[0] + p[1]) / 2.0) as f32);
    leaky_relu(x, &[slope])
}
