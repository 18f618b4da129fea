//! Fused bias + activation: in f32 the bits of a separate add (on the CPU) followed by the
//! crate's kernel, forward and backward, with the bias on the last axis and on dim 1;
//! the pre-activation as an aux output; the bias gradient against the f64 sum of
//! grad_input; f16 and bf16 within 1 ULP of the type; misuse refused with a message and
//! no validation error.

mod common;

use common::*;
use half::{bf16, f16};
use wgpu_activations::{
    BufferRegion, Context, Element, Error, Op, ParamTensor, Params, Saved, Storage,
};

/// Inputs and biases whose sums cover NaN, the infinities, -0, subnormal sums, cancelling
/// pairs and large values.
fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let special = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        3.0e38,
        -1e-39,
    ];
    (0..n)
        .map(|i| match i % 23 {
            k @ 0..=6 => special[k],
            7 => rng.log_uniform(1e-38, 1e-36),
            _ => rng.uniform(-8.0, 8.0),
        })
        .collect()
}

/// The biases: ordinary values with a -0, a NaN (one channel all NaN) and a subnormal.
fn biases(c: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut b: Vec<f32> = (0..c).map(|_| rng.uniform(-2.0, 2.0)).collect();
    for (i, v) in [-0.0, 1.5e-38, -1.2e-38, 2.0e38].into_iter().enumerate() {
        if let Some(slot) = b.get_mut(i * 3) {
            *slot = v;
        }
    }
    b
}

/// The channel of each element of `shape` along `dim`.
fn channel(shape: &[usize], dim: i64, i: usize) -> usize {
    let d = if dim < 0 {
        shape.len() as i64 + dim
    } else {
        dim
    } as usize;
    let inner: usize = shape[d + 1..].iter().product();
    (i / inner) % shape[d]
}

/// `x + bias` on the CPU in f32, rounded once: the unfused path's add (the fused kernel
/// keeps subnormal operands and sums on every adapter).
fn sums(x: &[f32], b: &[f32], shape: &[usize], dim: i64) -> Vec<f32> {
    (0..x.len())
        .map(|i| x[i] + b[channel(shape, dim, i)])
        .collect()
}

/// The fused forward through the encode API, with the pre-activation as aux output:
/// (y, aux), both from poisoned buffers.
fn fused(
    ctx: &Context,
    spec: &str,
    x: &[f32],
    b: &[f32],
    shape: &[usize],
    dim: i64,
) -> [Vec<f32>; 2] {
    let a = spec.parse().unwrap();
    let (xb, bb) = (storage_buffer(ctx, x), storage_buffer(ctx, b));
    let (y, aux) = (poisoned_buffer(ctx, x.len()), poisoned_buffer(ctx, x.len()));
    let bias = ParamTensor::Buffer(BufferRegion::new(&bb), b.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&a, shape)
        .params(Params::Bias { bias, dim })
        .aux_output(BufferRegion::new(&aux))
        .encode(&mut encoder, BufferRegion::new(&xb), BufferRegion::new(&y))
        .unwrap_or_else(|e| panic!("{spec} {shape:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    let n = x.len() as u64;
    [&y, &aux].map(|buf| ctx.download(BufferRegion::new(buf), n).unwrap())
}

/// The elementwise ops a bias may precede (every one but the random ops).
fn ops() -> Vec<wgpu_activations::Activation> {
    let mut ops: Vec<_> = Op::elementwise_ops()
        .map(wgpu_activations::Activation::example)
        .collect();
    ops.push("softplus(beta=2)".parse().unwrap());
    ops
}

#[test]
fn fused_bias_gives_the_bits_of_an_add_then_the_op() {
    for (mode, ctx) in both_contexts() {
        for (shape, dim) in [(vec![37, 24], -1), (vec![3, 5, 4, 7], 1)] {
            let n = shape.iter().product();
            let x = inputs(n, 1);
            let b = biases(shape[if dim < 0 { shape.len() - 1 } else { 1 }], 2);
            let s = sums(&x, &b, &shape, dim);
            for a in ops() {
                let spec = a.to_string();
                let unfused = ctx.call(&a, &[n]).run(&s).unwrap();
                let [y, aux] = fused(ctx, &spec, &x, &b, &shape, dim);
                assert_bits(&aux, &s, &format!("{mode}{spec} {shape:?}: aux"));
                assert_bits(&y, &unfused, &format!("{mode}{spec} {shape:?}: fused"));
            }
        }
    }
}

/// Panics unless each of `gb` is the f64 sum of its channel's `gx` (NaN for NaN, an
/// infinity for an infinity), within a compensated sum's 1e-6 of the terms' magnitude.
fn assert_bias_gradient(gb: &[f32], gx: &[f32], shape: &[usize], dim: i64, what: &str) {
    let (mut want, mut magnitude) = (vec![0.0f64; gb.len()], vec![0.0f64; gb.len()]);
    for (i, &v) in gx.iter().enumerate() {
        want[channel(shape, dim, i)] += f64::from(v);
        magnitude[channel(shape, dim, i)] += f64::from(v).abs();
    }
    for (k, (&got, &w)) in gb.iter().zip(&want).enumerate() {
        let got = f64::from(got);
        let same = got == w || (got.is_nan() && w.is_nan());
        assert!(
            same || (got - w).abs() <= 1e-6 * magnitude[k] + 1e-30,
            "{what}: grad_bias[{k}] = {got:e}, sum {w:e}"
        );
    }
}

#[test]
fn the_backward_gives_grad_input_and_the_bias_gradient() {
    for (mode, ctx) in both_contexts() {
        for (shape, dim) in [
            (vec![300, 12], -1),
            (vec![4, 6, 9, 5], 1),
            (vec![2, 1000], -1),
        ] {
            let n: usize = shape.iter().product();
            let c = shape[if dim < 0 { shape.len() - 1 } else { 1 }];
            let x: Vec<f32> = inputs(n, 3).iter().map(|v| v.clamp(-30.0, 30.0)).collect();
            let g = inputs(n, 4)
                .iter()
                .map(|v| v.clamp(-5.0, 5.0))
                .collect::<Vec<_>>();
            for spec in ["gelu", "sigmoid", "relu", "silu"] {
                let a: wgpu_activations::Activation = spec.parse().unwrap();
                let b = biases(c, 5);
                let [y, pre] = fused(ctx, spec, &x, &b, &shape, dim);
                let saved = match a.op().backward().saved {
                    Saved::Input => pre,
                    Saved::Output => y,
                };
                let unfused = ctx.call(&a, &[n]).run_backward(&saved, &g).unwrap();
                let call = ctx.call(&a, &shape).params(Params::Bias {
                    bias: b[..].into(),
                    dim,
                });
                let (gx, gb) = call.run_gradients(&saved, &g).unwrap();
                let what = format!("{mode}{spec} {shape:?}");
                assert_bits(&gx, &unfused, &format!("{what}: grad_input"));
                assert_bias_gradient(&gb, &gx, &shape, dim, &what);
            }
        }
    }
}

#[test]
fn pieces_on_a_small_device_keep_the_bits() {
    let small = small_device();
    let shape = [1200, 40]; // 48,000 elements: three pieces of a 64 KiB binding
    let n = shape.iter().product();
    let x = inputs(n, 6);
    let b = biases(40, 7);
    let s = sums(&x, &b, &shape, -1);
    let [y, aux] = fused(&small, "mish", &x, &b, &shape, -1);
    assert_bits(&aux, &s, "small device: aux");
    let want = ctx().call(&"mish".parse().unwrap(), &[n]).run(&s).unwrap();
    assert_bits(&y, &want, "small device: fused");
    let g: Vec<f32> = inputs(n, 8).iter().map(|v| v.clamp(-4.0, 4.0)).collect();
    let s: Vec<f32> = s.iter().map(|v| v.clamp(-30.0, 30.0)).collect();
    let call = small.call(&"tanh".parse().unwrap(), &shape);
    let (gx, gb) = call
        .params(Params::Bias {
            bias: b[..].into(),
            dim: -1,
        })
        .run_gradients(&s, &g)
        .unwrap();
    let want = ctx()
        .call(&"tanh".parse().unwrap(), &[n])
        .run_backward(&s, &g)
        .unwrap();
    assert_bits(&gx, &want, "small device: grad_input");
    assert_bias_gradient(&gb, &gx, &shape, -1, "small device");
}

/// Half tensors: the sum in f32, the result within 1 ULP of the type of the f64
/// reference of f(x + bias) (NaN for NaN; a zero of its sign where the true result is
/// below f32's normal range on a flushing adapter).
fn half_case<T: Element>(ctx: &Context, to_half: fn(f32) -> T, from_f64: fn(f64) -> T) {
    for (shape, dim) in [(vec![64, 16], -1), (vec![4, 16, 4, 4], 1)] {
        half_forward(ctx, &shape, dim, to_half, from_f64);
        half_backward(ctx, &shape, dim, to_half);
    }
}

fn half_forward<T: Element>(
    ctx: &Context,
    shape: &[usize],
    dim: i64,
    to_half: fn(f32) -> T,
    from_f64: fn(f64) -> T,
) {
    let x: Vec<T> = inputs(1024, 9).into_iter().map(to_half).collect();
    let b: Vec<f32> = biases(16, 10)
        .iter()
        .map(|&v| to_half(v).to_f32())
        .collect();
    for a in ops() {
        let call = ctx.call(&a, shape).params(Params::Bias {
            bias: b[..].into(),
            dim,
        });
        let y: Vec<T> = call.run(&x).unwrap();
        let (_, f) = a.op().elementwise().unwrap();
        let params: Vec<f64> = a.params().iter().map(|&p| f64::from(p)).collect();
        for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
            let bias = f64::from(b[channel(shape, dim, i)]);
            let r = f(f64::from(xi.to_f32()) + bias, &params);
            let want = from_f64(r);
            let (got, w) = (yi.to_f32(), want.to_f32());
            let flushed = r != 0.0
                && r.abs() < f64::from(f32::MIN_POSITIVE)
                && got == 0.0
                && got.is_sign_negative() == r.is_sign_negative();
            let ok = if w.is_nan() {
                got.is_nan()
            } else {
                !got.is_nan() && (half_ulps(yi, want) <= 1 || flushed)
            };
            assert!(
                ok,
                "{a} {}: element {i}: {got:e} vs {w:e} ({r:e})",
                T::STORAGE
            );
        }
    }
}

/// The half backward: grad_input as the crate's elementwise backward gives it, and the
/// bias's gradient the f32 sum of grad_input rounded once (within the halves' rounding of
/// the terms summed here).
fn half_backward<T: Element>(ctx: &Context, shape: &[usize], dim: i64, to_half: fn(f32) -> T) {
    let clamp = |v: f32| to_half(v.clamp(-6.0, 6.0));
    let s: Vec<T> = inputs(1024, 11).into_iter().map(clamp).collect();
    let g: Vec<T> = inputs(1024, 12).into_iter().map(clamp).collect();
    let b = [0.0f32; 16];
    for spec in ["gelu", "tanh"] {
        let a: wgpu_activations::Activation = spec.parse().unwrap();
        let call = ctx.call(&a, shape).params(Params::Bias {
            bias: b[..].into(),
            dim,
        });
        let (gx, gb) = call.run_gradients(&s, &g).unwrap();
        let want: Vec<T> = ctx.call(&a, &[s.len()]).run_backward(&s, &g).unwrap();
        let bits = |v: &[T]| v.iter().map(|x| x.to_f32().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gx), bits(&want), "{spec} {}: grad_input", T::STORAGE);
        let (mut sum, mut magnitude) = (vec![0.0f64; 16], vec![0.0f64; 16]);
        for (i, v) in gx.iter().enumerate() {
            let v = f64::from(v.to_f32());
            sum[channel(shape, dim, i)] += v;
            magnitude[channel(shape, dim, i)] += v.abs();
        }
        for k in 0..16 {
            let (got, w) = (f64::from(gb[k]), sum[k]);
            let close = (got - w).abs() <= magnitude[k] / 256.0;
            let ok = got == w || (got.is_nan() && w.is_nan()) || close;
            assert!(
                ok,
                "{spec} {}: grad_bias[{k}] = {got:e}, sum {w:e}",
                T::STORAGE
            );
        }
    }
}

/// The distance in ULPs of a half type (ordered bit patterns).
fn half_ulps<T: Element>(a: T, b: T) -> u32 {
    let ordered = |x: T| {
        let bits = u16::from_le_bytes(bytemuck::bytes_of(&x).try_into().unwrap());
        if bits & 0x8000 != 0 {
            -i32::from(bits & 0x7fff)
        } else {
            i32::from(bits)
        }
    };
    ordered(a).abs_diff(ordered(b))
}

#[test]
fn half_tensors_round_once_within_one_ulp_of_the_type() {
    for (_, ctx) in both_contexts() {
        half_case::<f16>(ctx, f16::from_f32, f16::from_f64);
        half_case::<bf16>(ctx, bf16::from_f32, bf16::from_f64);
    }
}

#[test]
fn misuse_is_refused_with_a_message() {
    let ctx = ctx();
    let errors = count_uncaptured(ctx);
    let gelu: wgpu_activations::Activation = "gelu".parse().unwrap();
    let data = storage_buffer(ctx, &[1.0; 64]);
    let other = storage_buffer(ctx, &[1.0; 64]);
    fn at(b: &wgpu::Buffer, element: u64) -> BufferRegion<'_> {
        BufferRegion::at(b, element * 4)
    }
    let bias = |region, len| Params::Bias {
        bias: ParamTensor::Buffer(region, len),
        dim: -1,
    };
    let encode = |call: wgpu_activations::Call<'_>, x, y| {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        let r = call.encode(&mut encoder, x, y);
        ctx.queue().submit([encoder.finish()]);
        r
    };
    // a bias of the wrong length
    let e = encode(
        ctx.call(&gelu, &[4, 4]).params(bias(at(&other, 0), 3)),
        at(&data, 0),
        at(&data, 16),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    // a bias in the output's buffer
    let e = encode(
        ctx.call(&gelu, &[4, 4]).params(bias(at(&data, 40), 4)),
        at(&other, 0),
        at(&data, 0),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::SharesOutputBuffer { role: "bias" }),
        "{e}"
    );
    // a bias of another storage type
    let half = at(&other, 0).with_storage(Storage::F16);
    let e = encode(
        ctx.call(&gelu, &[4, 4]).params(bias(half, 4)),
        at(&data, 0),
        at(&data, 16),
    )
    .unwrap_err();
    assert!(e.to_string().contains("storage type"), "{e}");
    // an aux output overlapping the output, or in the input's (read-only) buffer
    let aux = |region| {
        ctx.call(&gelu, &[4, 4])
            .params(bias(at(&other, 40), 4))
            .aux_output(region)
    };
    let e = encode(aux(at(&data, 20)), at(&other, 0), at(&data, 16)).unwrap_err();
    assert!(matches!(e, Error::Overlap { .. }), "{e}");
    let e = encode(aux(at(&other, 20)), at(&other, 0), at(&data, 0)).unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = encode(aux(at(&data, 4)), at(&data, 0), at(&data, 40)).unwrap_err();
    assert!(
        matches!(e, Error::Overlap { .. }),
        "aux over the input: {e}"
    );
    // an aux output without a bias
    let e = encode(
        ctx.call(&gelu, &[16]).aux_output(at(&other, 0)),
        at(&data, 0),
        at(&data, 16),
    )
    .unwrap_err();
    assert!(e.to_string().contains("Params::Bias"), "{e}");
    // grad_bias overlapping grad_input
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = ctx
        .call(&gelu, &[4, 4])
        .params(bias(at(&other, 40), 4))
        .param_grad(at(&data, 20))
        .encode_backward(&mut encoder, at(&other, 0), at(&other, 16), at(&data, 16))
        .unwrap_err();
    ctx.queue().submit([encoder.finish()]);
    assert!(matches!(e, Error::Overlap { .. }), "{e}");
    ctx.wait().unwrap();
    assert_eq!(
        errors.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "uncaptured errors"
    );
}
