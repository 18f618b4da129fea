//! Measuring a GPU result against the CPU reference: in ULPs for elementwise ops, as a
//! relative error for the softmax family ([`compare_relative`]).
//!
//! The policy, applied per element:
//! - a NaN reference needs a NaN result, and a NaN result needs a NaN reference;
//! - where the reference is a normal float (or infinite), the error is the distance in
//!   ULPs between the result and the correctly rounded reference (+0 and -0 are equal);
//! - where the reference is subnormal, the same ULP distance, except that a zero of the
//!   reference's sign counts as 0 ULP: WGSL lets an adapter flush subnormal results;
//! - subnormal *inputs* get no such allowance: an adapter may flush them, so the kernels
//!   rescue them (from their bits) wherever the result is normal.
//!
//! ```
//! use wgpu_activations::{accuracy, cpu, Activation};
//! let sigmoid: Activation = "sigmoid".parse().unwrap();
//! let x = [0.5f32, -3.0];
//! let y = cpu::reference(&sigmoid, &x);
//! let report = accuracy::compare(&sigmoid, &x, &y);
//! assert_eq!(report.max_ulp, 0);
//! ```

use crate::{cpu, Accuracy, Activation};

/// The distance between two finite-or-infinite f32 values in units in the last place:
/// how many representable floats lie between them (+0 and -0 are the same point).
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    fn ordered(x: f32) -> i64 {
        let bits = x.to_bits() as i32;
        i64::from(if bits < 0 { i32::MIN - bits } else { bits })
    }
    ordered(a).abs_diff(ordered(b))
}

/// The worst element of a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Report {
    /// Largest error in ULPs (`u64::MAX` for a NaN mismatch).
    pub max_ulp: u64,
    /// The input where it occurred.
    pub worst_input: f32,
    /// The result there.
    pub worst_output: f32,
    /// The correctly rounded reference there.
    pub worst_expected: f32,
    /// Elements compared.
    pub count: usize,
}

/// The error of one result element against the reference, under the module's policy.
pub fn element_error(activation: &Activation, x: f32, y: f32) -> u64 {
    error_against(cpu::reference_f64(activation, x) as f32, y)
}

/// The error of `y` against a correctly rounded `expected` under the module's policy.
///
/// ```
/// use wgpu_activations::accuracy::error_against;
/// assert_eq!(error_against(-1e-40, -0.0), 0); // a flushed subnormal result
/// assert!(error_against(-1e-40, 0.0) > 1000); // a zero of the wrong sign
/// assert_eq!(error_against(f32::NAN, -f32::NAN), 0); // NaN is NaN, whatever its bits
/// ```
pub fn error_against(expected: f32, y: f32) -> u64 {
    match (expected.is_nan(), y.is_nan()) {
        (true, true) => 0,
        (true, false) | (false, true) => u64::MAX,
        (false, false) => {
            if expected.is_subnormal()
                && y == 0.0
                && y.is_sign_negative() == expected.is_sign_negative()
            {
                0
            } else {
                ulp_distance(expected, y)
            }
        }
    }
}

/// Compares `output` (the GPU's) with the reference for `input`, element by element.
pub fn compare(activation: &Activation, input: &[f32], output: &[f32]) -> Report {
    let mut report = Report {
        count: input.len().min(output.len()),
        ..Report::default()
    };
    for (&x, &y) in input.iter().zip(output) {
        let err = element_error(activation, x, y);
        if err > report.max_ulp {
            report.max_ulp = err;
            report.worst_input = x;
            report.worst_output = y;
            report.worst_expected = cpu::reference_f64(activation, x) as f32;
        }
    }
    report
}

/// Inputs that cover the whole f32 range: every `stride`-th bit pattern of each sign
/// (so every binade gets the same share), a dense grid on [-20, 20] where most
/// activations change shape, and the extremal values.
pub fn sweep_inputs(stride: u32, grid_step: f32) -> Vec<f32> {
    let mut v = Vec::new();
    let mut bits = 0u32;
    while bits < 0x7f80_0000 {
        v.push(f32::from_bits(bits));
        v.push(-f32::from_bits(bits));
        bits += stride;
    }
    let steps = (40.0 / grid_step) as i64;
    v.extend((0..=steps).map(|i| -20.0 + i as f32 * grid_step));
    v.extend_from_slice(&extremal_inputs());
    v
}

/// The values where activations break: signed zeros, infinities, NaN, the ends of the
/// range, subnormals, where exp overflows and underflows, and big and tiny arguments.
pub fn extremal_inputs() -> Vec<f32> {
    let mut v = vec![
        f32::NAN,
        f32::INFINITY,
        f32::MAX,
        3.4e38,
        1.0e30,
        1.0e4,
        1.0e3,
        103.97,
        100.0,
        88.8,
        88.72284,
        88.7,
        87.3,
        20.0,
        9.01,
        9.0,
        3.0,
        1.0,
        0.5,
        1.0e-3,
        1.0e-8,
        1.0e-20,
        1.0e-37,
        f32::MIN_POSITIVE,
        1.0e-38,
        f32::from_bits(0x007f_ffff), // the largest subnormal
        1.0e-40,
        1.0e-45,
        0.0,
    ];
    let negated: Vec<f32> = v.iter().map(|x| -x).collect();
    v.extend(negated);
    v
}

/// The worst element of a relative comparison (the softmax family's measure).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RelativeReport {
    /// Largest relative error, |y - r| / |r|, where |r| exceeds the absolute floor
    /// (elsewhere the absolute error divided by the floor); infinite for a NaN mismatch.
    pub max_error: f64,
    /// The index where it occurred.
    pub worst_index: usize,
    /// The result there.
    pub worst_output: f32,
    /// The f64 reference there.
    pub worst_expected: f64,
    /// Elements compared.
    pub count: usize,
}

impl RelativeReport {
    /// Whether every element is within `rel` relative, or `abs` absolute for values
    /// smaller than `abs / rel`.
    pub fn within(&self, rel: f64) -> bool {
        self.max_error <= rel
    }
}

/// Compares `got` with the f64 reference `expected`: the error of an element is
/// `|y - r| / max(|r|, abs / rel)`, so it stays below `rel` exactly when the element is
/// within `rel` relative or `abs` absolute. NaN must meet NaN, and an infinite reference
/// needs the same infinity.
///
/// ```
/// use wgpu_activations::accuracy::compare_relative;
/// let r = compare_relative(&[0.5, 1e-20, f64::NAN], &[0.500001, 0.0, f32::NAN], 1e-5, 1e-12);
/// assert!(r.within(1e-5) && r.max_error > 1e-6);
/// ```
pub fn compare_relative(expected: &[f64], got: &[f32], rel: f64, abs: f64) -> RelativeReport {
    let floor = abs / rel;
    relative_report(expected, got, |_, r, y| {
        nan_error(r, y).unwrap_or_else(|| {
            if r.is_infinite() || y.is_infinite() {
                // An f64 reference beyond f32's range rounds to the same infinity.
                if r as f32 == y {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (f64::from(y) - r).abs() / r.abs().max(floor)
            }
        })
    })
}

/// 0 where NaN meets NaN, infinite where only one side is NaN; `None` where neither is.
fn nan_error(r: f64, y: f32) -> Option<f64> {
    match (r.is_nan(), y.is_nan()) {
        (false, false) => None,
        (true, true) => Some(0.0),
        _ => Some(f64::INFINITY),
    }
}

/// The report of `error(i, r, y)` over the elements: the largest and where (the first
/// element when every error is 0), infinite when the lengths differ.
fn relative_report(
    expected: &[f64],
    got: &[f32],
    error: impl Fn(usize, f64, f32) -> f64,
) -> RelativeReport {
    let mut report = RelativeReport {
        count: expected.len().min(got.len()),
        ..Default::default()
    };
    for (i, (&r, &y)) in expected.iter().zip(got).enumerate() {
        let err = error(i, r, y);
        if err > report.max_error || i == 0 {
            report.max_error = err;
            report.worst_index = i;
            report.worst_output = y;
            report.worst_expected = r;
        }
    }
    if expected.len() != got.len() {
        report.max_error = f64::INFINITY;
    }
    report
}

/// The error of a backward result `got` against its f64 reference under `bound`, for
/// grad_output `g`: the ULP distance under the module's policy, except that for
/// [`Accuracy::UlpOrAbs`] an element within `abs * |g|` of the reference counts as 0 (a
/// derivative that crosses zero cancels there).
///
/// ```
/// use wgpu_activations::{accuracy::gradient_error, Accuracy};
/// let bound = Accuracy::UlpOrAbs { ulp: 4, abs: 6e-8 };
/// assert_eq!(gradient_error(1e-9, 3e-8, 1.0, bound), 0); // near a root: absolute
/// assert!(gradient_error(0.5, 0.5001, 1.0, bound) > 4);
/// ```
pub fn gradient_error(expected: f64, got: f32, g: f32, bound: Accuracy) -> u64 {
    if let Accuracy::UlpOrAbs { abs, .. } = bound {
        if !got.is_nan() && (f64::from(got) - expected).abs() <= abs * f64::from(g).abs() {
            return 0;
        }
    }
    error_against(expected as f32, got)
}

/// Compares `got` with the f64 reference `expected` relative to `magnitude`, each
/// element's scale (for a backward whose result is a difference that may cancel, the
/// magnitude of its terms): the error of an element is `|y - r| / magnitude` (the
/// magnitude at least f32's smallest normal). NaN must meet NaN; a zero meets a
/// subnormal reference (an adapter may flush it).
///
/// ```
/// use wgpu_activations::accuracy::compare_scaled;
/// // 1e-9 off a result of 1e-8 that came from terms of magnitude 1
/// let r = compare_scaled(&[1e-8], &[1.0], &[1.1e-8]);
/// assert!(r.within(1e-5));
/// ```
pub fn compare_scaled(expected: &[f64], magnitude: &[f64], got: &[f32]) -> RelativeReport {
    let floor = f64::from(f32::MIN_POSITIVE);
    relative_report(expected, got, |i, r, y| {
        nan_error(r, y).unwrap_or_else(|| {
            if y == 0.0 && r.abs() < floor {
                // a subnormal result, flushed (the policy of `error_against`)
                0.0
            } else {
                (f64::from(y) - r).abs() / magnitude.get(i).copied().unwrap_or(0.0).max(floor)
            }
        })
    })
}
