//! PReLU with per-channel weights from a buffer, against the CPU reference.

mod common;

use common::*;
use wgpu_activations::{cpu, Activation, BufferRegion, Context, Error};

/// The bits of each value, every NaN as one (an adapter may change NaN payloads).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
        .collect()
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v: Vec<f32> = (0..n).map(|_| rng.uniform(-5.0, 5.0)).collect();
    if n > 8 {
        v[1] = f32::NAN;
        v[2] = f32::NEG_INFINITY;
        v[3] = -0.0;
    }
    // subnormals of both signs, where a flushing adapter's compares and products fail
    for (i, s) in subnormals().into_iter().enumerate() {
        if 5 + 2 * i < n {
            v[5 + 2 * i] = s;
        }
    }
    v
}

/// Runs encode_prelu into a poisoned output, input and weights at element offsets.
fn gpu_prelu(
    ctx: &Context,
    x: &[f32],
    shape: &[usize],
    w: &[f32],
    (in_at, out_at, w_at): (usize, usize, usize),
) -> Vec<f32> {
    let src = storage_buffer(ctx, &[vec![7.0; in_at], x.to_vec()].concat());
    let dst = poisoned_buffer(ctx, out_at + x.len());
    let wbuf = storage_buffer(ctx, &[vec![9.0; w_at], w.to_vec()].concat());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&prelu_op(), shape)
        .params(Params::Prelu {
            weight: ParamTensor::Buffer(BufferRegion::at(&wbuf, w_at as u64 * 4), w.len()),
        })
        .encode(
            &mut encoder,
            BufferRegion::at(&src, in_at as u64 * 4),
            BufferRegion::at(&dst, out_at as u64 * 4),
        )
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.download(BufferRegion::at(&dst, out_at as u64 * 4), x.len() as u64)
        .unwrap()
}

#[test]
fn per_channel_weights_on_every_rank() {
    for (mode, ctx) in both_contexts() {
        for shape in [
            vec![5usize],
            vec![4, 3],
            vec![2, 3, 7],
            vec![2, 5, 4, 3],
            vec![3, 64, 5, 5],
        ] {
            let n: usize = shape.iter().product();
            let x = data(n, n as u64);
            let channels = if shape.len() >= 2 { shape[1] } else { 1 };
            let w: Vec<f32> = (0..channels).map(|c| 0.1 * c as f32 - 0.2).collect();
            for offsets in [(0, 0, 0), (1, 3, 5), (64, 7, 2)] {
                let y = gpu_prelu(ctx, &x, &shape, &w, offsets);
                let want = cpu::reference_prelu(&x, &shape, &w).unwrap();
                assert_exact(&y, &want, &format!("{mode}{shape:?} {offsets:?}"));
            }
            // one weight for every channel, and one that makes subnormal inputs normal
            for weight in [0.3, 1e6] {
                let y = gpu_prelu(ctx, &x, &shape, &[weight], (0, 0, 0));
                let want = cpu::reference_prelu(&x, &shape, &[weight]).unwrap();
                assert_exact(&y, &want, &format!("{mode}{shape:?} weight {weight}"));
            }
        }
    }
}

#[test]
fn the_spec_form_uses_one_weight() {
    let x = data(1000, 9);
    let a: Activation = "prelu(weight=0.3)".parse().unwrap();
    let y = ctx().call(&a, &[x.len()]).run(&x).unwrap();
    let want = ctx()
        .call(&prelu_op(), &[1000])
        .params(Params::Prelu {
            weight: ParamTensor::Host(&[0.3]),
        })
        .run(&x)
        .unwrap();
    assert_eq!(bits(&y), bits(&want));
    assert_eq!(
        "prelu".parse::<Activation>().unwrap().param("weight"),
        Some(0.25)
    );
}

#[test]
fn in_place_and_pieces_on_a_small_device() {
    let small = small_device();
    let shape = [7usize, 13, 31, 11];
    let n: usize = shape.iter().product();
    let x = data(n, 3);
    let w: Vec<f32> = (0..13).map(|c| c as f32 / 13.0).collect();
    let want = cpu::reference_prelu(&x, &shape, &w).unwrap();
    let y = gpu_prelu(&small, &x, &shape, &w, (3, 1, 1));
    assert_exact(&y, &want, "pieces");
    // in place
    let buf = storage_buffer(ctx(), &x);
    let wbuf = storage_buffer(ctx(), &w);
    let mut encoder = ctx().device().create_command_encoder(&Default::default());
    let r = BufferRegion::new(&buf);
    ctx()
        .call(&prelu_op(), &shape)
        .params(Params::Prelu {
            weight: ParamTensor::Buffer(BufferRegion::new(&wbuf), 13),
        })
        .encode(&mut encoder, r, r)
        .unwrap();
    ctx().queue().submit([encoder.finish()]);
    let y = ctx().download(r, n as u64).unwrap();
    assert_exact(&y, &want, "in place");
}

#[test]
fn weight_counts_must_match_the_channels() {
    let ctx = ctx();
    let x = vec![1.0f32; 24];
    for (shape, w) in [(vec![2usize, 3, 4], 2usize), (vec![24], 3), (vec![4, 6], 0)] {
        let e = ctx
            .call(&prelu_op(), &shape)
            .params(Params::Prelu {
                weight: ParamTensor::Host(&vec![0.5; w]),
            })
            .run(&x)
            .unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{shape:?} {w}: {e}");
    }
    let e = ctx
        .call(&prelu_op(), &[5, 5])
        .params(Params::Prelu {
            weight: ParamTensor::Host(&[0.5]),
        })
        .run(&x)
        .unwrap_err();
    assert!(e.to_string().contains("25 elements"), "{e}");
    // a weight buffer shorter than the count given
    let src = storage_buffer(ctx, &x);
    let wbuf = storage_buffer(ctx, &[0.5, 0.5]);
    let e = ctx
        .call(&prelu_op(), &[2, 3, 4])
        .params(Params::Prelu {
            weight: ParamTensor::Buffer(BufferRegion::new(&wbuf), 3),
        })
        .encode(
            &mut ctx.device().create_command_encoder(&Default::default()),
            BufferRegion::new(&src),
            BufferRegion::new(&src),
        )
        .unwrap_err();
    assert!(matches!(e, Error::BufferTooSmall { .. }), "{e}");
}
