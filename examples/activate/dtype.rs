//! `activate --dtype f16|bf16`: raw little-endian half files, the kernels run in that
//! storage type, and differences counted in its ULPs against the f64 reference rounded to
//! it (the f32 bounds say nothing about a result rounded to 11 or 8 bits).

use half::{bf16, f16};
use wgpu_activations::{Activation, Context, Element, Params, Result, Storage};

/// The values of a raw little-endian file of `dtype` elements, widened to f32 (exact).
pub(super) fn decode(bytes: &[u8], dtype: Storage) -> std::result::Result<Vec<f32>, String> {
    let size = dtype.bytes() as usize;
    if !bytes.len().is_multiple_of(size) {
        return Err(format!(
            "holds {} bytes, not a whole number of {dtype} values ({size} bytes each)",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|b| match dtype {
            Storage::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Storage::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Storage::Bf16 => bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        })
        .collect())
}

/// `values` (each one exactly a `dtype` value) as raw little-endian `dtype` elements.
pub(super) fn encode(values: &[f32], dtype: Storage) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| match dtype {
            Storage::F32 => v.to_le_bytes().to_vec(),
            Storage::F16 => f16::from_f32(v).to_le_bytes().to_vec(),
            Storage::Bf16 => bf16::from_f32(v).to_le_bytes().to_vec(),
        })
        .collect()
}

/// Each value rounded to `dtype` (to nearest even) and widened back.
pub(super) fn round(values: &[f32], dtype: Storage) -> Vec<f32> {
    decode(&encode(values, dtype), dtype).expect("whole elements")
}

fn typed<T: Element>(values: &[f32]) -> Vec<T> {
    values.iter().map(|&v| T::from_f32(v)).collect()
}

fn widen<T: Element>(values: Vec<T>) -> Vec<f32> {
    values.into_iter().map(Element::to_f32).collect()
}

/// The forward on the GPU in `dtype` storage, with a bias along the last axis fused
/// before the op where one is given.
pub(super) fn forward(
    ctx: &Context,
    dtype: Storage,
    a: &Activation,
    x: &[f32],
    shape: &[usize],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let call = ctx.call(a, shape);
    let call = match bias {
        Some(b) => call.params(Params::Bias {
            bias: b.into(),
            dim: -1,
        }),
        None => call,
    };
    match dtype {
        Storage::F32 => call.run(x),
        Storage::F16 => Ok(widen(call.run(&typed::<f16>(x))?)),
        Storage::Bf16 => Ok(widen(call.run(&typed::<bf16>(x))?)),
    }
}

/// The backward on the GPU in `dtype` storage.
pub(super) fn backward(
    ctx: &Context,
    dtype: Storage,
    a: &Activation,
    saved: &[f32],
    g: &[f32],
    shape: &[usize],
) -> Result<Vec<f32>> {
    match dtype {
        Storage::F32 => ctx.call(a, shape).run_backward(saved, g),
        Storage::F16 => Ok(widen(
            ctx.call(a, shape)
                .run_backward(&typed::<f16>(saved), &typed::<f16>(g))?,
        )),
        Storage::Bf16 => Ok(widen(
            ctx.call(a, shape)
                .run_backward(&typed::<bf16>(saved), &typed::<bf16>(g))?,
        )),
    }
}

/// ULPs of `dtype` between `y` and the reference rounded to `dtype` (NaN meets NaN).
pub(super) fn ulps(y: f32, reference: f64, dtype: Storage) -> u64 {
    let bits = |v: f64| -> i64 {
        let b = match dtype {
            Storage::F16 => f16::from_f64(v).to_bits(),
            _ => bf16::from_f64(v).to_bits(),
        };
        let magnitude = i64::from(b & 0x7fff);
        if b & 0x8000 != 0 {
            -magnitude
        } else {
            magnitude
        }
    };
    match (y.is_nan(), reference.is_nan()) {
        (true, true) => 0,
        (false, false) => bits(f64::from(y)).abs_diff(bits(reference)),
        _ => u64::MAX,
    }
}

/// The largest of `ulps` over the elements, and where.
pub(super) fn worst(output: &[f32], reference: &[f64], dtype: Storage) -> (u64, usize) {
    output
        .iter()
        .zip(reference)
        .map(|(&y, &r)| ulps(y, r, dtype))
        .zip(0..)
        .max()
        .unwrap_or((0, 0))
}
