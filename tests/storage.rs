//! f16 and bf16 storage: every kernel loads halves, computes in f32 with the f32 kernel's
//! code and rounds once to the storage type at the store (to nearest even, overflow to an
//! infinity, NaN kept). Checked against the f32 kernel on the same adapter (bit for bit
//! after rounding), against the f64 reference (within 1 ULP of the storage type), over
//! every f16 and bf16 value for the elementwise ops, and for the neighbours of a tensor
//! that begins or ends inside a word.

mod common;

use common::*;
use half::{bf16, f16};
use wgpu::util::DeviceExt;
use wgpu_activations::{
    cpu, Activation, BufferRegion, Context, Element, Error, Op, Storage, Strategy,
};

/// An f16 NaN payload the kernels never store (their NaNs are quiet), and a bf16 one.
const POISON_F16: u16 = 0x7d5a;
const POISON_BF16: u16 = 0x7f85;

/// A half type with its test poison.
trait Half: Element + PartialEq + std::fmt::Debug {
    const POISON: u16;
    fn bits(self) -> u16;
    fn from_bits16(bits: u16) -> Self;
    fn from_f64(x: f64) -> Self;
    fn is_nan(self) -> bool {
        self.to_f32().is_nan()
    }
}

impl Half for f16 {
    const POISON: u16 = POISON_F16;
    fn bits(self) -> u16 {
        self.to_bits()
    }
    fn from_bits16(bits: u16) -> Self {
        f16::from_bits(bits)
    }
    fn from_f64(x: f64) -> Self {
        f16::from_f64(x)
    }
}

impl Half for bf16 {
    const POISON: u16 = POISON_BF16;
    fn bits(self) -> u16 {
        self.to_bits()
    }
    fn from_bits16(bits: u16) -> Self {
        bf16::from_bits(bits)
    }
    fn from_f64(x: f64) -> Self {
        bf16::from_f64(x)
    }
}

/// Every value of the type: all 65,536 bit patterns.
fn every_value<T: Half>() -> Vec<T> {
    (0..=u16::MAX).map(T::from_bits16).collect()
}

/// The distance in ULPs of the half type (ordered bit patterns; NaN is handled apart).
fn half_ulps<T: Half>(a: T, b: T) -> u32 {
    let ordered = |x: T| {
        let b = x.bits();
        if b & 0x8000 != 0 {
            -i32::from(b & 0x7fff)
        } else {
            i32::from(b)
        }
    };
    ordered(a).abs_diff(ordered(b))
}

/// A storage buffer holding `data` (padded to whole words) with `lead` poison elements
/// before it and `trail` after, so a kernel that touches a neighbour's half shows.
fn padded_buffer<T: Half>(ctx: &Context, data: &[T], lead: usize, trail: usize) -> wgpu::Buffer {
    let mut bits = vec![T::POISON; lead];
    bits.extend(data.iter().map(|x| x.bits()));
    bits.extend(std::iter::repeat_n(T::POISON, trail));
    if bits.len() % 2 == 1 {
        bits.push(T::POISON);
    }
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("half test data"),
            contents: bytemuck::cast_slice(&bits),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        })
}

/// Runs `a` on `x` through the encode API into a poisoned buffer; returns the output.
fn encode_half<T: Half>(ctx: &Context, a: &Activation, x: &[T]) -> Vec<T> {
    let src = padded_buffer(ctx, x, 0, 0);
    let dst = padded_buffer(ctx, &vec![T::from_bits16(T::POISON); x.len()], 0, 0);
    let region = |b| BufferRegion::new(b).with_storage(T::STORAGE);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, &[x.len()])
        .encode(&mut encoder, region(&src), region(&dst))
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.download_typed(region(&dst), x.len() as u64).unwrap()
}

/// Panics unless `got` is `want` rounded to the half type, NaN for NaN, with no poison.
/// (Where `want` is NaN the poison, a NaN, cannot be told from a NaN passed through: the
/// builtin f16 conversions keep payloads, and every value is an input somewhere.)
fn assert_rounded<T: Half>(got: &[T], want_f32: &[f32], what: &str) {
    assert_eq!(got.len(), want_f32.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want_f32).enumerate() {
        let want = T::from_f32(w);
        assert!(
            (g.bits() != T::POISON || want.is_nan())
                && (g == want || (g.is_nan() && want.is_nan())),
            "{what}: element {i} is {:#06x}, the f32 kernel's {w:e} rounds to {:#06x}",
            g.bits(),
            want.bits()
        );
    }
}

/// The f32 kernel on the halves widened: what the half kernel must round.
fn f32_kernel<T: Half>(ctx: &Context, a: &Activation, x: &[T], shape: &[usize]) -> Vec<f32> {
    let wide: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
    ctx.call(a, shape).run(&wide).unwrap()
}

/// Panics unless every element of `got` is within 1 ULP of the type of the f64
/// reference correctly rounded to it: NaN for NaN, and (the accuracy policy, for an
/// adapter that flushes) a zero of its sign for a reference below f32's normal range.
fn assert_near_reference<T: Half>(got: &[T], reference: &[f64], x: &[f32], what: &str) {
    for ((&g, &r), &xi) in got.iter().zip(reference).zip(x) {
        let want = T::from_f64(r);
        let flushed = r != 0.0
            && r.abs() < f64::from(f32::MIN_POSITIVE)
            && g.to_f32() == 0.0
            && g.to_f32().is_sign_negative() == r.is_sign_negative();
        let ok = if want.is_nan() {
            g.is_nan()
        } else {
            !g.is_nan() && (half_ulps(g, want) <= 1 || flushed)
        };
        assert!(
            ok,
            "{what}: at x = {xi:e} got {:e}, correctly rounded {:e}",
            g.to_f32(),
            want.to_f32()
        );
    }
}

fn exhaustive<T: Half>() {
    let x = every_value::<T>();
    let wide: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
    for (name, ctx) in both_contexts() {
        for op in Op::elementwise_ops() {
            let a = Activation::example(op);
            let what = format!("{name}{a} on every {}", T::STORAGE);
            let got = encode_half::<T>(ctx, &a, &x);
            assert_rounded(&got, &f32_kernel(ctx, &a, &x, &[x.len()]), &what);
            // the accuracy claim: within 1 ULP of the correctly rounded result
            let reference: Vec<f64> = wide.iter().map(|&xi| cpu::reference_f64(&a, xi)).collect();
            assert_near_reference(&got, &reference, &wide, &what);
        }
    }
}

#[test]
fn every_f16_value_through_every_elementwise_op() {
    exhaustive::<f16>();
}

#[test]
fn every_bf16_value_through_every_elementwise_op() {
    exhaustive::<bf16>();
}

/// The store's rounding on its own: `leaky_relu` with slopes 1.5 and 0.75 over every
/// half value gives exact f32 products (13 significant bits at most) that are ties,
/// overflow past the largest half, and fall below the smallest normal half; each must be
/// the half crate's round-to-nearest-even of the exact product.
fn rounding<T: Half>() {
    let x = every_value::<T>();
    for slope in [1.5, 0.75] {
        let a: Activation = format!("leaky_relu(negative_slope={slope})")
            .parse()
            .unwrap();
        for (name, ctx) in both_contexts() {
            let got = encode_half::<T>(ctx, &a, &x);
            for (&xi, &g) in x.iter().zip(&got) {
                let v = f64::from(xi.to_f32());
                let exact = if v < 0.0 { v * slope } else { v };
                let want = T::from_f64(exact);
                // a flushing adapter may flush a subnormal f32 input or product to a zero
                // of its sign
                let subnormal = |v: f64| v != 0.0 && v.abs() < f64::from(f32::MIN_POSITIVE);
                let flushed = !name.is_empty()
                    && (subnormal(v) || subnormal(exact))
                    && g.to_f32() == 0.0
                    && g.to_f32().is_sign_negative() == exact.is_sign_negative();
                assert!(
                    g == want || (g.is_nan() && want.is_nan()) || flushed,
                    "{name}{a} in {}: x = {:e} ({:#06x}) stored {:#06x}, expected {:#06x}",
                    T::STORAGE,
                    xi.to_f32(),
                    xi.bits(),
                    g.bits(),
                    want.bits()
                );
            }
        }
    }
}

#[test]
fn f16_stores_round_to_nearest_even() {
    rounding::<f16>();
}

#[test]
fn bf16_stores_round_to_nearest_even() {
    rounding::<bf16>();
}

/// Random halves in [-8, 8) with the specials mixed in.
fn sample<T: Half>(n: usize, seed: u64) -> Vec<T> {
    let mut rng = Rng::new(seed);
    let specials = [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e-6,
        60000.0,
    ];
    (0..n)
        .map(|i| match i % 17 {
            3 => T::from_f32(specials[(i / 17) % specials.len()]),
            _ => T::from_f32(rng.uniform(-8.0, 8.0)),
        })
        .collect()
}

fn widen<T: Element>(x: &[T]) -> Vec<f32> {
    x.iter().map(|v| v.to_f32()).collect()
}

/// `a` on `x` of `shape` through the encode API, into a poisoned output.
fn forward_poisoned<T: Half>(ctx: &Context, a: &Activation, x: &[T], shape: &[usize]) -> Vec<T> {
    let out_len: usize = a.output_shape(shape).unwrap().iter().product();
    let src = padded_buffer(ctx, x, 0, 0);
    let dst = padded_buffer(ctx, &vec![T::from_bits16(T::POISON); out_len], 0, 0);
    let region = |b| BufferRegion::new(b).with_storage(T::STORAGE);
    submit(ctx, |e| {
        ctx.call(a, shape)
            .encode(e, region(&src), region(&dst))
            .unwrap()
    });
    ctx.download_typed(region(&dst), out_len as u64).unwrap()
}

/// The backward of `a` through the encode API, into a poisoned grad_input.
fn backward_poisoned<T: Half>(
    ctx: &Context,
    a: &Activation,
    saved: &[T],
    g: &[T],
    shape: &[usize],
) -> Vec<T> {
    let (s, gb) = (padded_buffer(ctx, saved, 0, 0), padded_buffer(ctx, g, 0, 0));
    let gx = padded_buffer(ctx, &vec![T::from_bits16(T::POISON); saved.len()], 0, 0);
    let region = |b| BufferRegion::new(b).with_storage(T::STORAGE);
    submit(ctx, |e| {
        ctx.call(a, shape)
            .encode_backward(e, region(&s), region(&gb), region(&gx))
            .unwrap()
    });
    ctx.download_typed(region(&gx), saved.len() as u64).unwrap()
}

/// Every op that is not elementwise (softmax family, grouped, random, dice), forward and
/// backward, in half storage: the f32 kernel's result on the same (widened) values,
/// rounded once. Odd lengths put rows and groups across word boundaries.
fn families<T: Half>() {
    let shapes: [&[usize]; 4] = [&[6, 4], &[7, 5], &[3, 6, 5], &[2, 1030]];
    for (name, ctx) in both_contexts() {
        for &op in Op::ALL.iter().filter(|o| o.elementwise().is_none()) {
            let a = Activation::example(op);
            let mut ran = 0;
            for (s, &shape) in shapes.iter().enumerate() {
                let Ok(out_shape) = a.output_shape(shape) else {
                    continue;
                };
                ran += 1;
                let n: usize = shape.iter().product();
                let what = format!("{name}{a} {shape:?} in {}", T::STORAGE);
                // rows with NaN or infinities are NaN throughout: keep the specials to
                // one row's worth of tests (the f32 suite covers them)
                let x: Vec<T> = sample(n, s as u64)
                    .into_iter()
                    .map(|v: T| {
                        if v.to_f32().is_finite() {
                            v
                        } else {
                            T::from_f32(0.5)
                        }
                    })
                    .collect();
                let y = forward_poisoned(ctx, &a, &x, shape);
                let y32 = ctx.call(&a, shape).run(&widen(&x)).unwrap();
                assert_rounded(&y, &y32, &format!("{what}: forward"));

                let out_len: usize = out_shape.iter().product();
                let g: Vec<T> = sample(out_len, 100 + s as u64)
                    .into_iter()
                    .map(|v: T| {
                        if v.to_f32().is_finite() {
                            v
                        } else {
                            T::from_f32(-2.0)
                        }
                    })
                    .collect();
                let saved = match op.backward().saved {
                    wgpu_activations::Saved::Input => x.clone(),
                    wgpu_activations::Saved::Output => y.clone(),
                };
                let gx = backward_poisoned(ctx, &a, &saved, &g, shape);
                let gx32 = ctx
                    .call(&a, shape)
                    .run_backward(&widen(&saved), &widen(&g))
                    .unwrap();
                assert_rounded(&gx, &gx32, &format!("{what}: backward"));
            }
            assert!(ran > 0, "{a}: no test shape fits");
        }
    }
}

#[test]
fn every_family_in_f16() {
    families::<f16>();
}

#[test]
fn every_family_in_bf16() {
    families::<bf16>();
}

/// Each softmax strategy on rows of odd length (so rows begin inside a word): the
/// per-element stores of neighbouring rows and lanes share words; and on rows of 332 at
/// offsets of 4 and 8 elements, where Registers moves blocks of four (two whole words).
#[test]
fn softmax_strategies_in_half_storage() {
    let softmax: Activation = "log_softmax(dim=-1)".parse().unwrap();
    for (axis, lead, out_lead) in [(333usize, 1usize, 3usize), (332, 4, 8)] {
        let shape = [5usize, axis];
        let n = 5 * axis;
        let x: Vec<f16> = sample::<f16>(n, 9)
            .into_iter()
            .map(|v| if v.to_f32().is_finite() { v } else { f16::ONE })
            .collect();
        for (name, ctx) in both_contexts() {
            let want = ctx
                .call(&softmax, &shape)
                .strategy(Strategy::Lane)
                .run(&widen(&x))
                .unwrap();
            let mut strategies = vec![
                Strategy::Lane,
                Strategy::Workgroup,
                Strategy::Resident,
                Strategy::Split,
                Strategy::Registers,
                Strategy::SplitRegisters,
            ];
            if ctx.facts().subgroups {
                strategies.push(Strategy::Subgroup);
            }
            for strategy in strategies {
                let src = padded_buffer(ctx, &x, lead, 3);
                let poison = vec![f16::from_bits(POISON_F16); n];
                let dst = padded_buffer(ctx, &poison, out_lead, 1);
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                let (input, output) = (
                    BufferRegion::at(&src, 2 * lead as u64).with_storage(Storage::F16),
                    BufferRegion::at(&dst, 2 * out_lead as u64).with_storage(Storage::F16),
                );
                ctx.call(&softmax, &shape)
                    .strategy(strategy)
                    .encode(&mut encoder, input, output)
                    .unwrap();
                ctx.queue().submit([encoder.finish()]);
                let all: Vec<f16> = ctx
                    .download_typed(
                        BufferRegion::new(&dst).with_storage(Storage::F16),
                        (out_lead + n + 1) as u64,
                    )
                    .unwrap();
                let what = format!("{name}{strategy:?}, rows of {axis}");
                assert!(
                    all[..out_lead]
                        .iter()
                        .chain(&all[out_lead + n..])
                        .all(|v| v.to_bits() == POISON_F16),
                    "{what}: a neighbour of the output was written"
                );
                // strategies agree within the f32 bound; the store rounds each once
                let got = &all[out_lead..out_lead + n];
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        half_ulps(g, f16::from_f32(w)) <= 1,
                        "{what}: element {i} is {g}, the lane strategy's f32 {w:e}"
                    );
                }
            }
        }
    }
}

/// An f16 row of 65,536 logits of 60,000 (the sum of their exponentials is 65,536 times
/// the largest): the statistics are f32, so nothing overflows; every probability is
/// 2^-16, an f16 subnormal.
#[test]
fn half_rows_accumulate_in_f32() {
    let ctx = ctx();
    let x = vec![f16::from_f32(60000.0); 65536];
    let softmax: Activation = "softmax".parse().unwrap();
    let y = ctx.call(&softmax, &[65536]).run(&x).unwrap();
    assert!(
        y.iter().all(|&v| v == f16::from_f32(2.0f32.powi(-16))),
        "{:?}",
        &y[..4]
    );
    let log: Activation = "log_softmax".parse().unwrap();
    let y = ctx.call(&log, &[65536]).run(&x).unwrap();
    let want = f16::from_f64(-(65536f64.ln()));
    assert!(y.iter().all(|&v| v == want), "{:?}", &y[..4]);
}

/// Tensors that begin and end inside words, in place and apart, through the vec4 and the
/// single-element paths, forward and backward: results right, neighbours untouched.
#[test]
fn odd_offsets_and_lengths_leave_neighbours_alone() {
    let gelu: Activation = "gelu".parse().unwrap();
    for (name, ctx) in both_contexts() {
        for (len, lead_in, lead_out) in
            [(1, 1, 0), (7, 0, 1), (1001, 1, 3), (1024, 4, 8), (9, 3, 3)]
        {
            let x: Vec<bf16> = sample(len, len as u64);
            let g: Vec<bf16> = sample(len, 1 + len as u64);
            let what = format!("{name}{len} elements at {lead_in}, {lead_out}");
            let region =
                |b, lead: usize| BufferRegion::at(b, 2 * lead as u64).with_storage(Storage::Bf16);
            let read = |b, lead: usize| -> Vec<bf16> {
                ctx.download_typed(region(b, 0), (lead + len + 3) as u64)
                    .unwrap()
            };
            let check = |all: Vec<bf16>, lead: usize, want: &[f32], what: &str| {
                assert!(
                    all[..lead]
                        .iter()
                        .chain(&all[lead + len..])
                        .all(|v| v.to_bits() == POISON_BF16),
                    "{what}: a neighbour was written"
                );
                assert_rounded(&all[lead..lead + len], want, what);
            };
            let poison = vec![bf16::from_bits(POISON_BF16); len];
            // apart
            let (src, dst) = (
                padded_buffer(ctx, &x, lead_in, 3),
                padded_buffer(ctx, &poison, lead_out, 3),
            );
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            ctx.call(&gelu, &[len])
                .encode(&mut encoder, region(&src, lead_in), region(&dst, lead_out))
                .unwrap();
            ctx.queue().submit([encoder.finish()]);
            let y32 = ctx.call(&gelu, &[widen(&x).len()]).run(&widen(&x)).unwrap();
            check(
                read(&dst, lead_out),
                lead_out,
                &y32,
                &format!("{what}: forward"),
            );
            // in place
            let buf = padded_buffer(ctx, &x, lead_in, 3);
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            let r = region(&buf, lead_in);
            ctx.call(&gelu, &[len]).encode(&mut encoder, r, r).unwrap();
            ctx.queue().submit([encoder.finish()]);
            check(
                read(&buf, lead_in),
                lead_in,
                &y32,
                &format!("{what}: in place"),
            );
            // backward in place on grad_output
            let (s, gb) = (
                padded_buffer(ctx, &x, lead_out, 3),
                padded_buffer(ctx, &g, lead_in, 3),
            );
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            let gr = region(&gb, lead_in);
            ctx.call(&gelu, &[len])
                .encode_backward(&mut encoder, region(&s, lead_out), gr, gr)
                .unwrap();
            ctx.queue().submit([encoder.finish()]);
            let gx32 = ctx
                .call(&gelu, &[widen(&x).len()])
                .run_backward(&widen(&x), &widen(&g))
                .unwrap();
            check(
                read(&gb, lead_in),
                lead_in,
                &gx32,
                &format!("{what}: backward"),
            );
        }
    }
}

/// Misuse: mixed storage types, a half offset that is not a whole element, half
/// parameters, a download of the wrong type.
#[test]
fn storage_misuse_is_an_error() {
    let ctx = ctx();
    let relu: Activation = "relu".parse().unwrap();
    let a = padded_buffer(ctx, &[f16::ONE; 8], 0, 0);
    let b = padded_buffer(ctx, &[f16::ONE; 8], 0, 0);
    let half = |buf| BufferRegion::new(buf).with_storage(Storage::F16);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let mixed = ctx
        .call(&relu, &[4])
        .encode(&mut encoder, half(&a), BufferRegion::new(&b));
    assert!(
        matches!(&mixed, Err(Error::Unsupported(m)) if m.contains("f16") && m.contains("f32")),
        "{mixed:?}"
    );
    let odd = BufferRegion::at(&a, 1).with_storage(Storage::F16);
    let misaligned = ctx.call(&relu, &[2]).encode(&mut encoder, odd, half(&b));
    assert!(
        matches!(misaligned, Err(Error::Misaligned { offset: 1, .. })),
        "{misaligned:?}"
    );
    // 8 halves are 16 bytes: 9 from the start do not fit
    let long = ctx
        .call(&relu, &[9])
        .encode(&mut encoder, half(&a), half(&b));
    assert!(
        matches!(long, Err(Error::BufferTooSmall { .. })),
        "{long:?}"
    );
    let prelu = ctx
        .call(&prelu_op(), &[8])
        .params(Params::Prelu {
            weight: ParamTensor::Buffer(half(&a), 1),
        })
        .encode(&mut encoder, half(&a), half(&b));
    assert!(
        matches!(&prelu, Err(Error::Unsupported(m)) if m.contains("weight")),
        "{prelu:?}"
    );
    let wrong = ctx.download_typed::<bf16>(half(&a), 2);
    assert!(matches!(wrong, Err(Error::Unsupported(_))), "{wrong:?}");
    assert_eq!(ctx.download(half(&a), 3).unwrap(), [1.0; 3]);
    assert_eq!("bf16".parse::<Storage>().unwrap(), Storage::Bf16);
    assert!("f64".parse::<Storage>().is_err());
}

fn f32_buffer(ctx: &Context, data: &[f32]) -> wgpu::Buffer {
    common::storage_buffer(ctx, data)
}

/// Submits what `record` encodes and waits.
fn submit(ctx: &Context, record: impl FnOnce(&mut wgpu::CommandEncoder)) {
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    record(&mut encoder);
    ctx.queue().submit([encoder.finish()]);
}

/// The ops with parameter tensors: per-channel prelu and dice (training with one alpha
/// per feature, evaluation, and both backwards) on f16 tensors with f32 parameters; the
/// tensors match the f32 kernels rounded, the parameter gradients (f32, summed in f32
/// from the same values) match them exactly.
#[test]
fn parameter_tensors_stay_f32_beside_half_tensors() {
    let (shape, n, c) = ([3usize, 5, 7], 105usize, 5usize);
    let x: Vec<f16> = sample::<f16>(n, 21)
        .into_iter()
        .map(|v| if v.to_f32().is_finite() { v } else { f16::ONE })
        .collect();
    let g: Vec<f16> = sample::<f16>(n, 22)
        .into_iter()
        .map(|v| if v.to_f32().is_finite() { v } else { f16::ONE })
        .collect();
    let (xw, gw) = (widen(&x), widen(&g));
    let w: Vec<f32> = (0..c).map(|i| 0.1 * i as f32 - 0.2).collect();
    for (name, ctx) in both_contexts() {
        let half = |b| BufferRegion::new(b).with_storage(Storage::F16);
        let (xb, gb) = (padded_buffer(ctx, &x, 0, 0), padded_buffer(ctx, &g, 0, 0));
        let out = padded_buffer(ctx, &vec![f16::from_bits(POISON_F16); n], 0, 0);
        let read = |b| ctx.download_typed::<f16>(half(b), n as u64).unwrap();
        let wb = f32_buffer(ctx, &w);
        // prelu forward and backward, 5 channels on dim 1
        submit(ctx, |e| {
            ctx.call(&prelu_op(), &shape)
                .params(Params::Prelu {
                    weight: ParamTensor::Buffer(BufferRegion::new(&wb), c),
                })
                .encode(e, half(&xb), half(&out))
                .unwrap()
        });
        let want = ctx
            .call(&prelu_op(), &shape)
            .params(Params::Prelu {
                weight: ParamTensor::Host(&w),
            })
            .run(&xw)
            .unwrap();
        assert_rounded(&read(&out), &want, &format!("{name}prelu"));
        let gwb = common::poisoned_buffer(ctx, c);
        let r = PreluGradRegions {
            x: half(&xb),
            grad_output: half(&gb),
            grad_input: half(&out),
            weight: BufferRegion::new(&wb),
            grad_weight: BufferRegion::new(&gwb),
        };
        submit(ctx, |e| {
            encode_prelu_backward(ctx, e, r, c, &shape).unwrap()
        });
        let (gx, gwt) = run_prelu_backward(ctx, &xw, &gw, &shape, &w).unwrap();
        assert_rounded(&read(&out), &gx, &format!("{name}prelu backward"));
        let got_gw = ctx.download(BufferRegion::new(&gwb), c as u64).unwrap();
        common::assert_bits(&got_gw, &gwt, &format!("{name}prelu grad_weight"));

        // dice: batch on dim 0, 35 features
        let f = n / shape[0];
        let alpha: Vec<f32> = (0..f).map(|i| i as f32 / f as f32).collect();
        let (mean, var): (Vec<f32>, Vec<f32>) =
            (0..f).map(|i| (0.1 * i as f32, 1.0 + i as f32)).unzip();
        let (ab, mb, vb) = (
            f32_buffer(ctx, &alpha),
            f32_buffer(ctx, &mean),
            f32_buffer(ctx, &var),
        );
        let dice_shape = [shape[0], f];
        submit(ctx, |e| {
            encode_dice_train(
                ctx,
                e,
                half(&xb),
                half(&out),
                BufferRegion::new(&ab),
                1e-5,
                &dice_shape,
            )
            .unwrap()
        });
        let want = run_dice_train(ctx, &xw, &dice_shape, &alpha, 1e-5).unwrap();
        assert_rounded(&read(&out), &want, &format!("{name}dice training"));
        let eval = DiceEval {
            mean: BufferRegion::new(&mb),
            var: BufferRegion::new(&vb),
            alpha: BufferRegion::new(&ab),
            eps: 1e-5,
        };
        submit(ctx, |e| {
            encode_dice_eval(ctx, e, half(&xb), half(&out), eval, &dice_shape).unwrap()
        });
        let want = run_dice_eval(ctx, &xw, &dice_shape, &mean, &var, &alpha, 1e-5).unwrap();
        assert_rounded(&read(&out), &want, &format!("{name}dice evaluation"));
        for running in [None, Some((&mean[..], &var[..]))] {
            let gab = common::poisoned_buffer(ctx, f);
            let r = DiceGrad {
                x: half(&xb),
                grad_output: half(&gb),
                grad_input: half(&out),
                alpha: BufferRegion::new(&ab),
                grad_alpha: BufferRegion::new(&gab),
            };
            let stats = match running {
                None => DiceStats::Batch { eps: 1e-5 },
                Some(_) => DiceStats::Running {
                    mean: BufferRegion::new(&mb),
                    var: BufferRegion::new(&vb),
                    eps: 1e-5,
                },
            };
            submit(ctx, |e| {
                encode_dice_backward(ctx, e, r, stats, &dice_shape).unwrap()
            });
            let (gx, ga) =
                run_dice_backward(ctx, &xw, &gw, &dice_shape, &alpha, running, 1e-5).unwrap();
            let what = format!(
                "{name}dice backward ({})",
                if running.is_some() {
                    "running"
                } else {
                    "batch"
                }
            );
            assert_rounded(&read(&out), &gx, &what);
            let got = ctx.download(BufferRegion::new(&gab), f as u64).unwrap();
            common::assert_bits(&got, &ga, &format!("{what}: grad_alpha"));
        }
    }
}

/// Every elementwise op's backward over every value of the type (grad_outputs varied,
/// huge and tiny included): the f32 backward on the same values, rounded once.
fn elementwise_backward<T: Half>() {
    let x = every_value::<T>();
    let g: Vec<T> = sample::<T>(x.len(), 5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| match i % 5 {
            1 => T::from_f32(v.to_f32() * 1e3),
            2 => T::from_f32(v.to_f32() * 1e-3),
            _ => v,
        })
        .collect();
    for (name, ctx) in both_contexts() {
        for op in Op::elementwise_ops() {
            let a = Activation::example(op);
            let gx = backward_poisoned(ctx, &a, &x, &g, &[x.len()]);
            let gx32 = ctx
                .call(&a, &[widen(&x).len()])
                .run_backward(&widen(&x), &widen(&g))
                .unwrap();
            assert_rounded(&gx, &gx32, &format!("{name}{a} backward in {}", T::STORAGE));
        }
    }
}

#[test]
fn every_f16_value_through_every_elementwise_backward() {
    elementwise_backward::<f16>();
}

#[test]
fn every_bf16_value_through_every_elementwise_backward() {
    elementwise_backward::<bf16>();
}

/// Which f16 conversions each context uses: lavapipe's builtins round to nearest even (the
/// probe finds them exact), the relaxed context never trusts them, so the tests above run
/// both paths.
#[test]
fn f16_conversion_paths() {
    assert!(!common::relaxed_ctx().hardware_f16_conversions());
    let ctx = ctx();
    let hw = ctx.hardware_f16_conversions();
    assert_eq!(hw, ctx.hardware_f16_conversions(), "probed once");
    if ctx.adapter_name().contains("llvmpipe") {
        assert!(hw, "lavapipe's pack2x16float rounds to nearest even");
    }
}

/// The extremal values (rounded to the type: f16 has no 3.4e38, so those are infinities
/// there), both signs, cycled over a tensor.
fn extremal<T: Half>(n: usize) -> Vec<T> {
    let v = [
        0.0f32,
        88.8,
        1e4,
        3.4e38,
        f32::INFINITY,
        f32::NAN,
        f32::from_bits(1),
        f32::from_bits(0x7f_ffff),
        f16::from_bits(1).to_f32(),
        f16::from_bits(0x3ff).to_f32(),
        1.0,
        0.5,
    ];
    let both: Vec<f32> = v.iter().flat_map(|&x| [x, -x]).collect();
    (0..n).map(|i| T::from_f32(both[i % both.len()])).collect()
}

/// Every op that is not elementwise, on the extremal values (+-0, +-88.8, +-1e4,
/// +-3.4e38, +-inf, NaN, subnormals of both signs) in both half types and on both
/// contexts: the forward within 1 ULP of the f64 reference rounded to the type (the
/// random ops: of their CPU mirror of this adapter), and forward and backward the f32
/// kernel's result on the same values rounded once.
fn extremal_families<T: Half>() {
    let shape = [4usize, 24];
    let x = extremal::<T>(96);
    let wide = widen(&x);
    for (name, ctx) in both_contexts() {
        for &op in Op::ALL.iter().filter(|o| o.elementwise().is_none()) {
            let a = Activation::example(op);
            let what = format!("{name}{a} on extremal {}", T::STORAGE);
            let y = forward_poisoned(ctx, &a, &x, &shape);
            assert_rounded(&y, &ctx.call(&a, &shape).run(&wide).unwrap(), &what);
            let reference: Vec<f64> = match op.random() {
                Some(_) => ctx
                    .facts()
                    .float_model()
                    .reference(&a, &wide)
                    .unwrap()
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                None => cpu::reference_shaped_f64(&a, &wide, &shape).unwrap(),
            };
            // the reference's indices are the outputs' (a grouped op's are fewer)
            let x_of = |i: usize| wide.get(i).copied().unwrap_or(f32::NAN);
            let xs: Vec<f32> = (0..y.len()).map(x_of).collect();
            assert_near_reference(&y, &reference, &xs, &format!("{what}: forward"));
            let g: Vec<T> = extremal::<T>(y.len() + 5)[5..].to_vec();
            let saved = match op.backward().saved {
                wgpu_activations::Saved::Input => x.clone(),
                wgpu_activations::Saved::Output => y.clone(),
            };
            let gx = backward_poisoned(ctx, &a, &saved, &g, &shape);
            let gx32 = ctx
                .call(&a, &shape)
                .run_backward(&widen(&saved), &widen(&g))
                .unwrap();
            assert_rounded(&gx, &gx32, &format!("{what}: backward"));
        }
    }
}

#[test]
fn extremal_values_through_every_family_in_f16() {
    extremal_families::<f16>();
}

#[test]
fn extremal_values_through_every_family_in_bf16() {
    extremal_families::<bf16>();
}

/// Sizes around the binding limit of a device with 64 KiB bindings (32,640 halves a
/// chunk): the elementwise forward and backward at odd offsets across chunk boundaries,
/// softmax rows and grouped ops over several binding-sized pieces, and an input staged
/// in a copy because it lies too far from the output in one buffer; each against the
/// f32 kernel rounded (on the default device, the same adapter).
#[test]
fn half_chunks_on_a_small_device() {
    let small = common::small_device();
    let chunk = ((1 << 16) - 256) / 16 * 8;
    let gelu: Activation = "gelu".parse().unwrap();
    for len in [chunk - 1, chunk, chunk + 1, 3 * chunk + 7] {
        let x: Vec<f16> = sample(len, len as u64);
        let g: Vec<f16> = sample(len, 1 + len as u64);
        let what = format!("{len} f16 elements");
        let region = |b, lead: u64| BufferRegion::at(b, 2 * lead).with_storage(Storage::F16);
        let src = padded_buffer(&small, &x, 1, 3);
        let dst = padded_buffer(&small, &vec![f16::from_bits(POISON_F16); len], 3, 3);
        submit(&small, |e| {
            small
                .call(&gelu, &[len])
                .encode(e, region(&src, 1), region(&dst, 3))
                .unwrap()
        });
        let got: Vec<f16> = small.download_typed(region(&dst, 3), len as u64).unwrap();
        assert_rounded(
            &got,
            &ctx()
                .call(&gelu, &[widen(&x).len()])
                .run(&widen(&x))
                .unwrap(),
            &format!("{what}: forward"),
        );
        let gx = small.call(&gelu, &[len]).run_backward(&x, &g).unwrap();
        let gx32 = ctx()
            .call(&gelu, &[widen(&x).len()])
            .run_backward(&widen(&x), &widen(&g))
            .unwrap();
        assert_rounded(&gx, &gx32, &format!("{what}: backward"));
    }
    // several binding-sized pieces of whole rows and groups
    let shape = [7usize, 10, 1000];
    let x: Vec<bf16> = sample::<bf16>(70_000, 3)
        .into_iter()
        .map(|v| if v.to_f32().is_finite() { v } else { bf16::ONE })
        .collect();
    for spec in ["softmax", "log_softmax(dim=1)", "maxout(k=4)", "swiglu"] {
        let a: Activation = spec.parse().unwrap();
        let y = small.call(&a, &shape).run(&x).unwrap();
        let y32 = ctx().call(&a, &shape).run(&widen(&x)).unwrap();
        assert_rounded(&y, &y32, &format!("{a} on the small device"));
    }
    // input and output in one buffer, 40,001 elements apart: the input is staged
    let len = 1001usize;
    let x: Vec<f16> = sample(len, 8);
    let mut both = x.clone();
    both.extend(vec![f16::from_bits(POISON_F16); 40_000]);
    let buf = padded_buffer(&small, &both, 1, 3);
    let (input, output) = (
        BufferRegion::at(&buf, 2).with_storage(Storage::F16),
        BufferRegion::at(&buf, 2 * 40_002).with_storage(Storage::F16),
    );
    submit(&small, |e| {
        small.call(&gelu, &[len]).encode(e, input, output).unwrap()
    });
    let got: Vec<f16> = small.download_typed(output, len as u64).unwrap();
    assert_rounded(
        &got,
        &ctx()
            .call(&gelu, &[widen(&x).len()])
            .run(&widen(&x))
            .unwrap(),
        "a staged f16 input",
    );
    let kept: Vec<f16> = small.download_typed(input, len as u64).unwrap();
    let bits = |v: &[f16]| v.iter().map(|h| h.to_bits()).collect::<Vec<_>>();
    assert!(bits(&kept) == bits(&x), "the staged input is unchanged");
}

/// The register strategies in half storage: blocks of four (two whole words) where rows
/// are contiguous and aligned, with segments narrower than the workgroup (rows of 128),
/// the workgroup (rows of 332), Split's chunks in registers over several chunks; single
/// elements on rows of odd length and on strided rows (interleaved: neighbouring
/// invocations store the two halves of one word); in place and not, beside a
/// lane-strategy f32 run rounded once.
fn register_strategies<T: Half>() {
    for (name, ctx) in both_contexts() {
        let long = 2 * ctx.facts().registers_capacity + 8;
        for (rows, axis, dim, strategy) in [
            (6usize, 128usize, -1i64, Strategy::Registers),
            (5, 332, -1, Strategy::Registers),
            (5, 333, -1, Strategy::Registers),
            (9, 100, 0, Strategy::Registers),
            (2, long, -1, Strategy::SplitRegisters),
            (3, 300, -1, Strategy::SplitRegisters),
            (3, 301, -1, Strategy::SplitRegisters),
        ] {
            let softmax: Activation = format!("softmax(dim={dim})").parse().unwrap();
            // rows along dim 0 are the columns of an (axis, rows) tensor
            let shape = if dim == 0 { [axis, rows] } else { [rows, axis] };
            let n = rows * axis;
            let x: Vec<T> = sample::<T>(n, axis as u64)
                .into_iter()
                .map(|v| {
                    if v.to_f32().is_finite() {
                        v
                    } else {
                        T::from_f32(1.0)
                    }
                })
                .collect();
            let want = ctx
                .call(&softmax, &shape)
                .strategy(Strategy::Lane)
                .run(&widen(&x))
                .unwrap();
            for in_place in [false, true] {
                let src = padded_buffer(ctx, &x, 4, 3);
                let poison = vec![T::from_bits16(T::POISON); n];
                let dst = padded_buffer(ctx, &poison, 8, 1);
                let out = if in_place { &src } else { &dst };
                let lead = if in_place { 4 } else { 8 };
                let region =
                    |b, at: usize| BufferRegion::at(b, 2 * at as u64).with_storage(T::STORAGE);
                submit(ctx, |e| {
                    ctx.call(&softmax, &shape)
                        .strategy(strategy)
                        .encode(e, region(&src, 4), region(out, lead))
                        .unwrap()
                });
                let all: Vec<T> = ctx
                    .download_typed(
                        BufferRegion::new(out).with_storage(T::STORAGE),
                        (lead + n + 1) as u64,
                    )
                    .unwrap();
                let what = format!(
                    "{name}{strategy:?}, {rows} rows of {axis} along {dim} in {}, in place \
                     {in_place}",
                    T::STORAGE
                );
                assert!(
                    all[..lead]
                        .iter()
                        .chain(&all[lead + n..])
                        .all(|v| v.bits() == T::POISON),
                    "{what}: a neighbour of the output was written"
                );
                for (i, (&g, &w)) in all[lead..lead + n].iter().zip(&want).enumerate() {
                    assert!(
                        half_ulps(g, T::from_f32(w)) <= 1,
                        "{what}: element {i} is {g:?}, the lane strategy's f32 {w:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn register_strategies_in_f16() {
    register_strategies::<f16>();
}

#[test]
fn register_strategies_in_bf16() {
    register_strategies::<bf16>();
}
