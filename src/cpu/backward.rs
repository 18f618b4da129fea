//! The backward references for whole tensors: every family's grad_input in f64, from the
//! saved tensor (x, or y where the op saves its output) and grad_output.

use super::f64_params;
use crate::op::{Kernel, SoftmaxKind};
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
    if grad_output.len() != expected {
        return Err(Error::GradientLength {
            saved: saved.len(),
            grad_output: grad_output.len(),
        });
    }
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
        _ => Err(Error::Unsupported(format!(
            "no backward reference for `{activation}` yet"
        ))),
    }
}

/// The magnitude of the terms each element of a softmax-family backward is computed from
/// (`|y| (|g| + sum |g y|)`, or `|g| + exp(y) sum |g|` for log_softmax): the row
/// backward's relative bound applies to it, since `g - sum(g y)` may cancel.
pub fn backward_magnitude(
    activation: &Activation,
    saved: &[f32],
    grad_output: &[f32],
    shape: &[usize],
) -> Result<Vec<f64>> {
    match activation.op().softmax() {
        Some(kind) => Ok(softmax_backward(activation, kind, saved, grad_output, shape)?.1),
        None => Err(Error::Unsupported(format!(
            "`{activation}` is not a softmax-family op"
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
