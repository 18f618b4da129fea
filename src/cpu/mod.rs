//! The CPU reference: every activation in f64, with care where f64 itself would cancel or
//! overflow, rounded to f32 at the end.
//!
//! It is public so that users can check their own shaders against it:
//!
//! ```
//! use wgpu_activations::{cpu, Activation};
//! let gelu: Activation = "gelu".parse().unwrap();
//! let y = cpu::reference(&gelu, &[-8.0, 0.0, 1.0]);
//! assert!(y[0] < 0.0 && y[0] > -1e-14); // gelu(-8) is about -5.1e-15, not 0
//! assert_eq!(y[1], 0.0);
//! ```
//!
//! Parameters enter as the f32 values the GPU receives, so both sides compute the same
//! function. The result is NaN exactly when the input is NaN (or the op's mathematics
//! gives NaN), and `+-inf` inputs give the mathematical limits.

mod backward;
pub(crate) mod derivative;
pub use backward::{
    backward_magnitude, reference_backward_f64, reference_dice_backward, reference_prelu_backward,
    DiceBackward,
};
pub(crate) mod scalar;

use crate::op::{GroupKind, Kernel, SoftmaxKind};
use crate::{Activation, Result, RowView};
use scalar::{leaky_relu, sigmoid64};

/// The activation of a 1-D tensor, each element correctly rounded to f32 (up to the
/// accuracy of the f64 evaluation, well below half an f32 ULP). Softmax-family ops
/// normalise the whole slice as one row.
pub fn reference(activation: &Activation, input: &[f32]) -> Vec<f32> {
    match reference_shaped_f64(activation, input, &[input.len()]) {
        Ok(y) => y.into_iter().map(|y| y as f32).collect(),
        // Only a softmax `dim` other than 0 or -1 fails on a 1-D shape.
        Err(_) => vec![f32::NAN; input.len()],
    }
}

/// The activation of one value in f64 (not rounded to f32), for error measurement. A
/// softmax-family op sees a row of one element.
pub fn reference_f64(activation: &Activation, x: f32) -> f64 {
    match activation.op().elementwise() {
        Some((_, f)) => f(f64::from(x), &f64_params(activation)),
        None => reference_shaped_f64(activation, &[x], &[1]).map_or(f64::NAN, |y| y[0]),
    }
}

/// The activation of a tensor of `shape` (softmax-family ops normalise along their `dim`;
/// elementwise ops ignore the shape beyond its element count), in f64.
///
/// ```
/// use wgpu_activations::{cpu, Activation};
/// let softmax: Activation = "softmax(dim=0)".parse().unwrap();
/// let y = cpu::reference_shaped_f64(&softmax, &[0.0, 1.0, 0.0, 1.0], &[2, 2]).unwrap();
/// assert_eq!(y, vec![0.5; 4]);
/// ```
pub fn reference_shaped_f64(
    activation: &Activation,
    input: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    let op = activation.op();
    if let Some((_, f)) = op.elementwise() {
        RowView::new(shape, -1, input.len())?;
        let p = f64_params(activation);
        return Ok(input.iter().map(|&x| f(f64::from(x), &p)).collect());
    }
    let kind = match op.info().kernel {
        Kernel::Grouped(kind) => return grouped(activation, kind, input, shape),
        Kernel::Dice => return dice(activation, input, shape),
        Kernel::Random(kind) => {
            crate::shape::check_len(shape, input.len())?;
            let p = activation.params();
            return Ok(input
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    f64::from(crate::random::FloatModel::default().draw(kind, p, x, i as u32))
                })
                .collect());
        }
        Kernel::Softmax(kind) => kind,
        Kernel::Elementwise { .. } => unreachable!("handled above"),
    };
    let view = RowView::new(shape, activation.dim(), input.len())?;
    let mut out = vec![0.0; input.len()];
    let mut row = Vec::with_capacity(view.axis);
    for r in 0..view.rows() {
        row.clear();
        row.extend((0..view.axis).map(|j| f64::from(input[view.index(r, j)])));
        for (j, y) in softmax_row(kind, &row).into_iter().enumerate() {
            out[view.index(r, j)] = y;
        }
    }
    Ok(out)
}

/// A grouped op: maxout and folding reduce groups of `k` consecutive values along the
/// axis (NaN if a group holds one), glu takes `a * sigmoid(b)` over the two halves.
fn grouped(
    activation: &Activation,
    kind: GroupKind,
    input: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    activation.output_shape(shape)?;
    let view = RowView::new(shape, activation.dim(), input.len())?;
    let k = activation.group_size().unwrap_or(2);
    let x = |i: usize| f64::from(input[i]);
    if kind.is_gated() {
        // glu: a sigmoid(b); the gated units: gate(a) b, the gate rounded to f32 first
        // as PyTorch's gate(a) * b has it (an infinite b times a gate that underflows
        // in f32 is NaN there, not infinite)
        let value = |a: f64, b: f64| match kind.gate().and_then(|op| op.elementwise()) {
            Some((_, f)) => f64::from(f(a, &[]) as f32) * b,
            None => a * sigmoid64(b),
        };
        return Ok(view.half_pairs().map(|(a, b)| value(x(a), x(b))).collect());
    }
    let groups = RowView {
        outer: view.outer * (view.axis / k),
        axis: k,
        inner: view.inner,
    };
    Ok((0..groups.rows())
        .map(|r| {
            let vals = (0..k).map(|j| x(groups.index(r, j)));
            if vals.clone().any(f64::is_nan) {
                return f64::NAN;
            }
            match kind {
                GroupKind::Max => vals.fold(f64::NEG_INFINITY, f64::max),
                GroupKind::Min => vals.fold(f64::INFINITY, f64::min),
                _ => vals.sum::<f64>() / k as f64,
            }
        })
        .collect())
}

/// Dice in training mode: per-feature batch mean and biased variance over dim 0, then
/// `x * (alpha + (1 - alpha) * sigmoid((x - mean) / sqrt(var + eps)))`.
fn dice(activation: &Activation, input: &[f32], shape: &[usize]) -> Result<Vec<f64>> {
    let (batch, features) = crate::shape::batch_features(shape, input.len())?;
    let p = f64_params(activation);
    let (alpha, eps) = (p[0], p[1]);
    let stats = batch_stats(input, batch, features);
    Ok(input
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let (mean, var) = stats[i % features.max(1)];
            dice64(f64::from(x), mean, var, alpha, eps)
        })
        .collect())
}

/// Dice in training mode with one alpha per feature: batch statistics over dim 0, in
/// f64.
pub fn reference_dice_train(
    input: &[f32],
    shape: &[usize],
    alpha: &[f32],
    eps: f32,
) -> Result<Vec<f64>> {
    crate::shape::check_per_feature(shape, input.len(), &[(crate::shape::ALPHAS, alpha.len())])?;
    let (batch, features) = crate::shape::batch_features(shape, input.len())?;
    let stats = batch_stats(input, batch, features);
    Ok(input
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = i % features;
            let (m, v) = stats[f];
            dice64(f64::from(x), m, v, f64::from(alpha[f]), f64::from(eps))
        })
        .collect())
}

/// Per-feature batch mean and biased variance, in f64.
pub(crate) fn batch_stats(input: &[f32], batch: usize, features: usize) -> Vec<(f64, f64)> {
    (0..features)
        .map(|f| {
            let column = || (0..batch).map(|b| f64::from(input[b * features + f]));
            let mean = column().sum::<f64>() / batch as f64;
            let var = column().map(|x| (x - mean) * (x - mean)).sum::<f64>() / batch as f64;
            (mean, var)
        })
        .collect()
}

/// Dice in evaluation mode: running `mean`, `var` and `alpha` per feature (the batch on
/// dim 0, the features the other dims), in f64.
///
/// ```
/// use wgpu_activations::cpu;
/// let y = cpu::reference_dice_eval(&[1.0, -1.0], &[1, 2], &[1.0, -1.0], &[1.0, 1.0], &[0.0, 1.0], 0.0)
///     .unwrap();
/// assert_eq!(y, vec![0.5, -1.0]); // sigmoid(0) = 0.5; alpha = 1 gives x
/// ```
pub fn reference_dice_eval(
    input: &[f32],
    shape: &[usize],
    mean: &[f32],
    var: &[f32],
    alpha: &[f32],
    eps: f32,
) -> Result<Vec<f64>> {
    let names = crate::shape::RUNNING;
    let lens = [
        (names[0], mean.len()),
        (names[1], var.len()),
        (names[2], alpha.len()),
    ];
    crate::shape::check_per_feature(shape, input.len(), &lens)?;
    let (_, features) = crate::shape::batch_features(shape, input.len())?;
    Ok(input
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = i % features;
            dice64(
                f64::from(x),
                f64::from(mean[f]),
                f64::from(var[f]),
                f64::from(alpha[f]),
                f64::from(eps),
            )
        })
        .collect())
}

fn dice64(x: f64, mean: f64, var: f64, alpha: f64, eps: f64) -> f64 {
    let z = (x - mean) / (var + eps).sqrt();
    if z.is_nan() {
        return f64::NAN;
    }
    x * (alpha + (1.0 - alpha) * sigmoid64(z))
}

/// One row of the softmax family with PyTorch's semantics: a row holding NaN or `+inf`
/// (`-inf` for softmin), or only `-inf` (`+inf`), is NaN throughout.
///
/// The sum is split into the count of elements equal to the maximum (each contributing
/// exactly 1) and the rest, so that `log(sum)` is `log1p(count - 1 + rest)` with no
/// cancellation when one element dominates.
fn softmax_row(kind: SoftmaxKind, row: &[f64]) -> Vec<f64> {
    let sign = if kind == SoftmaxKind::Softmin {
        -1.0
    } else {
        1.0
    };
    let x: Vec<f64> = row.iter().map(|&v| sign * v).collect();
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if x.iter().any(|v| v.is_nan()) || !max.is_finite() {
        return vec![f64::NAN; x.len()];
    }
    let count = x.iter().filter(|&&v| v == max).count() as f64;
    let rest: f64 = x
        .iter()
        .filter(|&&v| v != max)
        .map(|&v| (v - max).exp())
        .sum();
    let sum = count + rest;
    match kind {
        SoftmaxKind::Softmax | SoftmaxKind::Softmin => {
            x.iter().map(|&v| (v - max).exp() / sum).collect()
        }
        SoftmaxKind::LogSoftmax => {
            let log_sum = ((count - 1.0) + rest).ln_1p();
            x.iter().map(|&v| (v - max) - log_sum).collect()
        }
    }
}

fn f64_params(activation: &Activation) -> Vec<f64> {
    activation.params().iter().map(|&p| f64::from(p)).collect()
}

/// PReLU with per-channel weights, as `torch.nn.functional.prelu`: the channel axis is
/// dim 1 for a rank >= 2 shape (rank 0 and 1 have one channel); `weight` holds 1 or C
/// values. Each element correctly rounded to f32.
///
/// ```
/// use wgpu_activations::cpu;
/// let y = cpu::reference_prelu(&[-1.0, 2.0, -1.0, 2.0], &[1, 2, 2], &[0.5, 0.25]).unwrap();
/// assert_eq!(y, vec![-0.5, 2.0, -0.25, 2.0]);
/// ```
pub fn reference_prelu(input: &[f32], shape: &[usize], weight: &[f32]) -> Result<Vec<f32>> {
    let (channels, inner) = crate::shape::channel_layout(shape, input.len(), weight.len())?;
    Ok(input
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let w = if weight.len() == 1 {
                weight[0]
            } else {
                weight[(i / inner) % channels]
            };
            leaky_relu(f64::from(x), &[f64::from(w)]) as f32
        })
        .collect())
}
