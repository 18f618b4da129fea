//! Tensor shapes and the (outer, axis, inner) view that row and grouped ops reduce along.

use crate::{Error, Result};

/// A tensor of `shape` seen as `outer` blocks of `axis` x `inner` elements, reduced along
/// the middle: element `j` of row `r` (`r` in `0..outer * inner`) sits at
/// `(r / inner) * axis * inner + r % inner + j * inner`. No transpose is needed for any
/// axis: rows along the last axis are contiguous (`inner == 1`), others are strided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowView {
    /// The product of the dims before the axis.
    pub outer: usize,
    /// The axis' length (the row length).
    pub axis: usize,
    /// The product of the dims after the axis (1 for the last axis: contiguous rows).
    pub inner: usize,
}

impl RowView {
    /// The view of `shape` along `dim` (negative counts from the end, as in PyTorch). A
    /// rank-0 shape (`[]`) is one element, with `dim` 0 or -1 as PyTorch allows.
    /// `len`, the element count of the data, must equal the shape's product.
    ///
    /// ```
    /// use wgpu_activations::RowView;
    /// let v = RowView::new(&[2, 3, 4], -2, 24).unwrap();
    /// assert_eq!((v.outer, v.axis, v.inner), (2, 3, 4));
    /// assert!(RowView::new(&[2, 3], 2, 6).is_err());
    /// assert!(RowView::new(&[2, 3], 0, 5).is_err());
    /// ```
    pub fn new(shape: &[usize], dim: i64, len: usize) -> Result<Self> {
        let err = |reason: String| Error::Shape {
            shape: shape.to_vec(),
            reason,
        };
        check_len(shape, len)?;
        let rank = shape.len().max(1) as i64;
        let axis = if dim < 0 { dim + rank } else { dim };
        if !(0..rank).contains(&axis) {
            return Err(err(format!(
                "dim {dim} is out of range for a rank-{} tensor (expected {} to {})",
                shape.len(),
                -rank,
                rank - 1
            )));
        }
        if shape.is_empty() {
            return Ok(RowView {
                outer: 1,
                axis: 1,
                inner: 1,
            });
        }
        let axis = axis as usize;
        Ok(RowView {
            outer: shape[..axis].iter().product(),
            axis: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        })
    }

    /// The number of rows (`outer * inner`).
    pub fn rows(&self) -> usize {
        self.outer * self.inner
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.outer * self.axis * self.inner
    }

    /// Whether the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of element `j` of row `r`.
    pub fn index(&self, r: usize, j: usize) -> usize {
        (r / self.inner) * self.axis * self.inner + r % self.inner + j * self.inner
    }

    /// The indices `(a, b)` of the pairs a split of the axis into halves makes (glu and
    /// the gated units: `a` in the first half, `b` at the same place in the second), in
    /// the order of the outputs they make.
    pub(crate) fn half_pairs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let h = self.axis / 2;
        (0..self.outer).flat_map(move |o| {
            (0..h).flat_map(move |j| {
                (0..self.inner).map(move |i| {
                    let a = (o * self.axis + j) * self.inner + i;
                    (a, a + h * self.inner)
                })
            })
        })
    }
}

/// The number of elements of `shape`, or an error when it overflows.
pub(crate) fn element_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape {
            shape: shape.to_vec(),
            reason: "the element count overflows".into(),
        })
}

/// An error unless `shape` holds exactly `len` elements.
pub(crate) fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let product = element_count(shape)?;
    if product != len {
        return Err(Error::Shape {
            shape: shape.to_vec(),
            reason: format!("it holds {product} elements, the data has {len}"),
        });
    }
    Ok(())
}

/// (batch, features) of a shape: dim 0, and the product of the others.
pub(crate) fn batch_features(shape: &[usize], len: usize) -> Result<(usize, usize)> {
    check_len(shape, len)?;
    let batch = shape.first().copied().unwrap_or(1);
    Ok((batch, len.checked_div(batch).unwrap_or(0)))
}

/// (channels, elements per channel per outer index) of a tensor of `shape` with `len`
/// elements and `weights` weights: the channel axis is dim 1 for rank >= 2, and rank 0
/// and 1 have one channel; there must be 1 or C weights.
pub(crate) fn channel_layout(
    shape: &[usize],
    len: usize,
    weights: usize,
) -> Result<(usize, usize)> {
    check_len(shape, len)?;
    let channels = if shape.len() >= 2 { shape[1] } else { 1 };
    if weights != 1 && weights != channels {
        return Err(Error::Shape {
            shape: shape.to_vec(),
            reason: format!(
                "prelu takes 1 weight or one per channel (dim 1: {channels}), got {weights}"
            ),
        });
    }
    let inner = shape.iter().skip(2).product::<usize>().max(1);
    Ok((channels.max(1), inner))
}

/// An error unless each parameter tensor `(name, length)` holds one value per feature of
/// a tensor of `shape` with `len` elements (dice's alpha and running statistics).
pub(crate) fn check_per_feature(
    shape: &[usize],
    len: usize,
    tensors: &[(&str, usize)],
) -> Result<()> {
    let (_, features) = batch_features(shape, len)?;
    match tensors.iter().find(|&&(_, n)| n != features) {
        Some(&(name, got)) => Err(Error::Shape {
            shape: shape.to_vec(),
            reason: format!("{features} features need {features} {name}, got {got}"),
        }),
        None => Ok(()),
    }
}

/// The names [`check_per_feature`] gives dice's alpha alone, and its running statistics
/// and alpha.
pub(crate) const ALPHAS: &str = "alphas";
pub(crate) const RUNNING: [&str; 3] = [
    "values of the running mean",
    "values of the running variance",
    "values of the alpha",
];

/// An error unless grad_output has `expected` elements (the forward output's), for a
/// saved tensor of `saved` elements.
pub(crate) fn check_grad_len(saved: usize, grad_output: usize, expected: usize) -> Result<()> {
    if grad_output != expected {
        return Err(Error::GradientLength { saved, grad_output });
    }
    Ok(())
}
