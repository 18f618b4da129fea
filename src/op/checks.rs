//! The op table's parameter checks beyond finiteness, each returning what is wrong.

pub(super) fn no_check(_: &[f32]) -> Result<(), String> {
    Ok(())
}

/// A divisor's magnitude: within [2^-100, 2^100], so that its reciprocal is a normal f32
/// far from both ends (GPUs may divide through a reciprocal, which WGSL leaves undefined
/// outside [2^-126, 2^126]), and x / it neither overflows nor vanishes for ordinary x.
const DIVISOR_RANGE: (f32, f32) = (7.888_609e-31, 1.267_650_6e30);

pub(super) fn check_divisor(name: &str, v: f32) -> Result<(), String> {
    let (lo, hi) = DIVISOR_RANGE;
    if !(lo..=hi).contains(&v.abs()) {
        return Err(format!(
            "{name} divides, so its magnitude must be within [{lo:e}, {hi:e}] (2^-100 to \
             2^100), got {v:e}"
        ));
    }
    Ok(())
}

pub(super) fn check_alpha_divides(p: &[f32]) -> Result<(), String> {
    check_divisor("alpha", p[0])
}

pub(super) fn check_beta_divides(p: &[f32]) -> Result<(), String> {
    check_divisor("beta", p[0])
}

pub(super) fn check_dim(p: &[f32]) -> Result<(), String> {
    let dim = p[0];
    if dim.fract() != 0.0 || dim.abs() > 1024.0 {
        return Err(format!("dim must be an integer axis index, got {dim}"));
    }
    Ok(())
}

pub(super) fn check_k_dim(p: &[f32]) -> Result<(), String> {
    let k = p[0];
    if k.fract() != 0.0 || !(1.0..=16_777_216.0).contains(&k) {
        return Err(format!("k must be a whole number from 1, got {k}"));
    }
    check_dim(&p[1..])
}

pub(super) fn check_rrelu_train(p: &[f32]) -> Result<(), String> {
    check_ordered(p)?;
    check_seed(p[2])
}

pub(super) fn check_eps(p: &[f32]) -> Result<(), String> {
    if p[1] < 0.0 {
        return Err(format!("eps must be >= 0, got {}", p[1]));
    }
    Ok(())
}

pub(super) fn check_noisy(p: &[f32]) -> Result<(), String> {
    if p[0] < 0.0 {
        return Err(format!("std must be >= 0, got {}", p[0]));
    }
    check_seed(p[1])
}

pub(super) fn check_seed(seed: f32) -> Result<(), String> {
    if seed.fract() != 0.0 || !(0.0..=16_777_216.0).contains(&seed) {
        return Err(format!(
            "seed must be a whole number from 0 to 2^24, got {seed}"
        ));
    }
    Ok(())
}

pub(super) fn check_lambd(p: &[f32]) -> Result<(), String> {
    if p[0] < 0.0 {
        return Err(format!("lambd must be >= 0, got {}", p[0]));
    }
    Ok(())
}

pub(super) fn check_ordered(p: &[f32]) -> Result<(), String> {
    if p[0] > p[1] {
        return Err(format!(
            "the lower bound {} must not exceed the upper bound {}",
            p[0], p[1]
        ));
    }
    Ok(())
}
