//! The backward references for whole tensors: every family's grad_input in f64, from the
//! saved tensor (x, or y where the op saves its output) and grad_output.

use super::f64_params;
use super::scalar::sigmoid64;
use crate::op::{GroupKind, Kernel, SoftmaxKind};
use crate::{Activation, Error, Result, RowView};

/// grad_input of `activation` for a tensor of `shape`, in f64 (not rounded): the
/// elementwise ops' derivatives, the softmax family along its `dim` from y.
///
/// ```
/// use wgpu_activations::{cpu, Activation};
/// let softmax: Activation = "softmax".parse().unwrap();
/// // y = (1/2, 1/2), g = (1, 0): gx = y (g - sum(g y)) = (1/4, -1/4)
/// let gx = cpu::reference_backward_f64(&softmax, &[0.5, 0.5], &[1.0, 0.0], &[2]).unwrap();
/// assert_eq!(gx, vec![0.25, -0.25]);
/// ```
pub fn reference_backward_f64(
    activation: &Activation,
    saved: &[f32],
    grad_output: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    crate::shape::check_len(shape, saved.len())?;
    let expected = crate::shape::element_count(&activation.output_shape(shape)?)?;
    crate::shape::check_grad_len(saved.len(), grad_output.len(), expected)?;
    let p = f64_params(activation);
    match activation.op().info().kernel {
        Kernel::Elementwise { grad_cpu, .. } => Ok(saved
            .iter()
            .zip(grad_output)
            .map(|(&s, &g)| grad_cpu(f64::from(s), f64::from(g), &p))
            .collect()),
        Kernel::Softmax(kind) => {
            Ok(softmax_backward(activation, kind, saved, grad_output, shape)?.0)
        }
        Kernel::Grouped(kind) => grouped_backward(activation, kind, saved, grad_output, shape),
        Kernel::Dice => {
            let (_, features) = crate::shape::batch_features(shape, saved.len())?;
            let alpha = vec![activation.params()[0]; features];
            let eps = activation.params()[1];
            Ok(reference_dice_backward(saved, grad_output, shape, &alpha, None, eps)?.grad_input)
        }
        Kernel::Random(_) => Ok(crate::random::FloatModel::default()
            .backward_reference(activation, saved, grad_output)
            .unwrap_or_default()
            .into_iter()
            .map(f64::from)
            .collect()),
    }
}

/// The magnitude each element of a backward's bound is scaled by: for the softmax family
/// the magnitude of the terms it is computed from (`|y| (|g| + sum |g y|)`, or
/// `|g| + exp(y) sum |g|` for log_softmax), since `g - sum(g y)` may cancel; for the
/// gated units (swiglu, geglu, reglu) the |grad_output| the gate's derivative sees,
/// `|g b|` for the half a and `|g|` for b (what an absolute bound per unit of
/// |grad_output| applies to).
pub fn backward_magnitude(
    activation: &Activation,
    saved: &[f32],
    grad_output: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    if let Some(kind) = activation.op().softmax() {
        return Ok(softmax_backward(activation, kind, saved, grad_output, shape)?.1);
    }
    match activation.op().grouped() {
        Some(kind) if kind.gate().is_some() => {
            let view = RowView::new(shape, activation.dim(), saved.len())?;
            let mut out = vec![0.0; saved.len()];
            for ((ia, ib), &g) in view.half_pairs().zip(grad_output) {
                let g = f64::from(g);
                out[ia] = (g * f64::from(saved[ib])).abs();
                out[ib] = g.abs();
            }
            Ok(out)
        }
        _ => Err(Error::Unsupported(format!(
            "`{activation}` is neither a softmax-family op nor a gated unit"
        ))),
    }
}

/// (grad_input, magnitude of its terms) of a softmax-family op, row by row.
fn softmax_backward(
    activation: &Activation,
    kind: SoftmaxKind,
    y: &[f32],
    g: &[f32],
    shape: &[usize],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let view = RowView::new(shape, activation.dim(), y.len())?;
    let mut out = vec![0.0; y.len()];
    let mut scale = vec![0.0; y.len()];
    for r in 0..view.rows() {
        let idx: Vec<usize> = (0..view.axis).map(|j| view.index(r, j)).collect();
        let yv = |i: usize| f64::from(y[i]);
        let gv = |i: usize| f64::from(g[i]);
        if kind == SoftmaxKind::LogSoftmax {
            let s: f64 = idx.iter().map(|&i| gv(i)).sum();
            let a: f64 = idx.iter().map(|&i| gv(i).abs()).sum();
            for &i in &idx {
                out[i] = gv(i) - yv(i).exp() * s;
                scale[i] = gv(i).abs() + yv(i).exp() * a;
            }
        } else {
            let sign = if kind == SoftmaxKind::Softmin {
                -1.0
            } else {
                1.0
            };
            let s: f64 = idx.iter().map(|&i| gv(i) * yv(i)).sum();
            let a: f64 = idx.iter().map(|&i| (gv(i) * yv(i)).abs()).sum();
            for &i in &idx {
                out[i] = sign * yv(i) * (gv(i) - s);
                scale[i] = yv(i).abs() * (gv(i).abs() + a);
            }
        }
    }
    Ok((out, scale))
}

/// The grouped ops' backward: g to each group's first maximal (minimal) element, or its
/// first NaN; g / k to every element of a mean; glu's two halves.
fn grouped_backward(
    activation: &Activation,
    kind: GroupKind,
    x: &[f32],
    g: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    let view = RowView::new(shape, activation.dim(), x.len())?;
    let k = activation.group_size().unwrap_or(2);
    let xv = |i: usize| f64::from(x[i]);
    let mut out = vec![0.0; x.len()];
    if kind.is_gated() {
        return Ok(gated_backward(kind, view, x, g));
    }
    let groups = RowView {
        outer: view.outer * (view.axis / k),
        axis: k,
        inner: view.inner,
    };
    for (r, &gr) in g.iter().enumerate().take(groups.rows()) {
        let gr = f64::from(gr);
        if kind == GroupKind::Mean {
            for j in 0..k {
                out[groups.index(r, j)] = gr / k as f64;
            }
            continue;
        }
        // the first NaN, else the first maximal (minimal) element; +0 and -0 tie
        let better = |a: f64, b: f64| match kind {
            GroupKind::Max => a > b,
            _ => a < b,
        };
        let mut best = 0;
        for j in 0..k {
            let (v, b) = (xv(groups.index(r, j)), xv(groups.index(r, best)));
            if b.is_nan() {
                break;
            }
            if v.is_nan() || better(v, b) {
                best = j;
            }
        }
        out[groups.index(r, best)] = gr;
    }
    Ok(out)
}

/// The backward of glu and the gated units over the halves (a, b) of the axis.
fn gated_backward(kind: GroupKind, view: RowView, x: &[f32], g: &[f32]) -> Vec<f64> {
    let xv = |i: usize| f64::from(x[i]);
    let mut out = vec![0.0; x.len()];
    let gate = kind.gate();
    for ((ia, ib), &gt) in view.half_pairs().zip(g) {
        let (a, b, gt) = (xv(ia), xv(ib), f64::from(gt));
        match gate {
            // gate(a) b: the gate's backward of g b for a, g gate(a) for b
            Some(op) => {
                let (_, f) = op.elementwise().expect("an elementwise gate");
                let (_, df) = op.elementwise_grad().expect("an elementwise gate");
                out[ia] = df(a, gt * b, &[]);
                // the gate rounded to f32, as in the forward
                out[ib] = gt * f64::from(f(a, &[]) as f32);
            }
            None => {
                out[ia] = gt * sigmoid64(b);
                out[ib] = gt * a * sigmoid64(b) * sigmoid64(-b);
            }
        }
    }
    out
}

/// PReLU's backward with 1 or C weights (C = dim 1 of `shape`): (grad_input,
/// grad_weight), `grad_input = g if x > 0 else w[c] g` and `grad_weight[c]` the sum over
/// channel c of `x g` where `x <= 0` (NaN x counts, as in PyTorch).
///
/// ```
/// use wgpu_activations::cpu;
/// let (gx, gw) = cpu::reference_prelu_backward(&[-1.0, 2.0], &[3.0, 3.0], &[2], &[0.5]).unwrap();
/// assert_eq!((gx, gw), (vec![1.5, 3.0], vec![-3.0]));
/// ```
pub fn reference_prelu_backward(
    x: &[f32],
    grad_output: &[f32],
    shape: &[usize],
    weight: &[f32],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (channels, inner) = crate::shape::channel_layout(shape, x.len(), weight.len())?;
    crate::shape::check_grad_len(x.len(), grad_output.len(), x.len())?;
    let mut gx = Vec::with_capacity(x.len());
    let mut gw = vec![0.0; weight.len()];
    for (i, (&x, &g)) in x.iter().zip(grad_output).enumerate() {
        let c = if weight.len() == 1 {
            0
        } else {
            (i / inner) % channels
        };
        let (x, g, w) = (f64::from(x), f64::from(g), f64::from(weight[c]));
        if x > 0.0 {
            gx.push(g);
        } else {
            gx.push(w * g);
            gw[c] += x * g;
        }
    }
    Ok((gx, gw))
}

/// Dice's backward in f64 (see [`crate::Params`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiceBackward {
    /// grad_input.
    pub grad_input: Vec<f64>,
    /// The gradient of each feature's alpha.
    pub grad_alpha: Vec<f64>,
    /// Per element, the magnitude of the terms grad_input is computed from (its bound is
    /// relative to this: the batch statistics' part is a difference that may cancel).
    pub magnitude: Vec<f64>,
    /// Per feature, the sum of |g x (1 - p)| (grad_alpha's bound is relative to it).
    pub alpha_magnitude: Vec<f64>,
}

/// One feature's column of dice's backward: (x, g, z, p, q) per batch row, `z` the
/// standardised x, `p = sigmoid(z)` and `q = g x (1 - a) p (1 - p)`.
fn dice_column(
    x: &[f32],
    grad_output: &[f32],
    (f, features, batch): (usize, usize, usize),
    (mean, s, a): (f64, f64, f64),
) -> Vec<(f64, f64, f64, f64, f64)> {
    (0..batch)
        .map(|b| {
            let (xv, g) = (
                f64::from(x[b * features + f]),
                f64::from(grad_output[b * features + f]),
            );
            let z = (xv - mean) / s;
            let (p, pm) = (sigmoid64(z), sigmoid64(-z));
            (xv, g, z, p, g * xv * (1.0 - a) * p * pm)
        })
        .collect()
}

/// Dice's backward: x and grad_output of `shape` (batch on dim 0), one alpha per feature,
/// the running (mean, variance) of evaluation mode or `None` for the batch statistics of
/// training mode.
///
/// ```
/// use wgpu_activations::cpu;
/// // one feature, a batch of 2: with alpha = 1 dice is x, whatever the statistics
/// let r = cpu::reference_dice_backward(&[1.0, 3.0], &[2.0, 5.0], &[2, 1], &[1.0], None, 1e-9).unwrap();
/// assert!((r.grad_input[0] - 2.0).abs() < 1e-9 && (r.grad_input[1] - 5.0).abs() < 1e-9);
/// ```
pub fn reference_dice_backward(
    x: &[f32],
    grad_output: &[f32],
    shape: &[usize],
    alpha: &[f32],
    running: Option<(&[f32], &[f32])>,
    eps: f32,
) -> Result<DiceBackward> {
    crate::shape::check_per_feature(shape, x.len(), &[(crate::shape::ALPHAS, alpha.len())])?;
    crate::shape::check_grad_len(x.len(), grad_output.len(), x.len())?;
    let (batch, features) = crate::shape::batch_features(shape, x.len())?;
    let stats = super::batch_stats(x, batch, features);
    let mut out = DiceBackward {
        grad_input: vec![0.0; x.len()],
        grad_alpha: vec![0.0; features],
        magnitude: vec![0.0; x.len()],
        alpha_magnitude: vec![0.0; features],
    };
    let n = batch as f64;
    for f in 0..features {
        let (mean, var) = match running {
            Some((m, v)) => (f64::from(m[f]), f64::from(v[f])),
            None => stats[f],
        };
        let s = (var + f64::from(eps)).sqrt();
        let a = f64::from(alpha[f]);
        let column = dice_column(x, grad_output, (f, features, batch), (mean, s, a));
        let (mut q1, mut q2, mut aq1, mut aq2) = (0.0, 0.0, 0.0, 0.0);
        for &(_, _, z, _, q) in &column {
            q1 += q / n;
            q2 += q * z / n;
            aq1 += q.abs() / n;
            aq2 += (q * z).abs() / n;
        }
        for (b, &(xv, g, z, p, q)) in column.iter().enumerate() {
            let i = b * features + f;
            let direct = g * (a + (1.0 - a) * p);
            let (through, scale) = if running.is_some() {
                (q, q.abs())
            } else {
                (q - q1 - z * q2, q.abs() + aq1 + z.abs() * aq2)
            };
            out.grad_input[i] = direct + through / s;
            out.magnitude[i] = direct.abs() + scale / s;
            let ga = g * xv * (1.0 - p);
            out.grad_alpha[f] += ga;
            out.alpha_magnitude[f] += ga.abs();
        }
    }
    Ok(out)
}
