//! PReLU's backward with per-channel weights: grad_input exactly, the weight gradient (a
//! reduction over every dim but 1) within a relative bound of the sum of |x g|.

mod common;

use common::*;
use wgpu_activations::{cpu, BufferRegion, Context};

fn check(ctx: &Context, what: &str, x: &[f32], g: &[f32], shape: &[usize], w: &[f32]) {
    let (gx, gw) =
        run_prelu_backward(ctx, x, g, shape, w).unwrap_or_else(|e| panic!("{what} {shape:?}: {e}"));
    let (want_gx, want_gw) = cpu::reference_prelu_backward(x, g, shape, w).unwrap();
    let want_gx: Vec<f32> = want_gx.iter().map(|&v| v as f32).collect();
    assert_exact(&gx, &want_gx, &format!("{what} {shape:?} grad_input"));
    // the bound of a compensated sum: 1e-6 of the sum of the terms' magnitudes
    let (channels, inner) = if w.len() == 1 {
        (1, x.len())
    } else {
        (shape[1], shape[2..].iter().product())
    };
    for c in 0..w.len() {
        let magnitude: f64 = x
            .iter()
            .zip(g)
            .enumerate()
            .filter(|(i, (&x, _))| {
                (w.len() == 1 || (i / inner) % channels == c) && (x <= 0.0 || x.is_nan())
            })
            .map(|(_, (&x, &g))| (f64::from(x) * f64::from(g)).abs())
            .sum();
        let err = (f64::from(gw[c]) - want_gw[c]).abs();
        assert!(
            err <= 1e-6 * magnitude || (gw[c].is_nan() && want_gw[c].is_nan()),
            "{what} {shape:?}: grad_weight[{c}] = {:e}, expected {:e}",
            gw[c],
            want_gw[c]
        );
    }
}

#[test]
fn input_and_weight_gradients_match_the_reference() {
    let small = small_device();
    let contexts = [
        ("", ctx()),
        ("relaxed: ", relaxed_ctx()),
        ("small device: ", &small),
    ];
    let cases: &[(&[usize], usize)] = &[
        (&[100], 1),
        (&[2, 4], 4),
        (&[8, 3, 5, 7], 3),
        (&[8, 3, 5, 7], 1),
        // slabs of 8,192 elements: one per piece on the small device
        (&[16, 8, 1024], 8),
        (&[3, 70_000], 1),
    ];
    for (what, ctx) in contexts {
        for (k, &(shape, weights)) in cases.iter().enumerate() {
            let n: usize = shape.iter().product();
            let mut rng = Rng::new(k as u64);
            let x: Vec<f32> = (0..n).map(|_| rng.uniform(-3.0, 3.0)).collect();
            let g: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let w: Vec<f32> = (0..weights).map(|c| 0.1 + c as f32 * 0.05).collect();
            check(ctx, what, &x, &g, shape, &w);
        }
    }
}

#[test]
fn edges_nan_in_place_and_misuse() {
    let ctx = ctx();
    // x = 0 takes the weight (PyTorch: x > 0 ? g : w g); NaN x poisons its channel's sum
    let x = [0.0, -0.0, 1e-40, -1e-40, f32::NAN, 2.0];
    let g = [1.0; 6];
    let (gx, gw) = run_prelu_backward(ctx, &x, &g, &[1, 2, 3], &[0.5, 0.25]).unwrap();
    // channels of 3: (0, -0, 1e-40) take 0.5, (-1e-40, NaN, 2) take 0.25
    assert_eq!(gx, [0.5, 0.5, 1.0, 0.25, 0.25, 1.0]);
    assert_eq!(gw[0], 0.0);
    assert!(gw[1].is_nan(), "{gw:?}");
    // in place on grad_output; shape [2, 2]: the channel is the column
    let xb = storage_buffer(ctx, &[-1.0, 2.0, -3.0, 4.0]);
    let gb = storage_buffer(ctx, &[1.0, 1.0, 1.0, 1.0]);
    let wb = storage_buffer(ctx, &[0.5, 0.25]);
    let gwb = poisoned_buffer(ctx, 2);
    let regions = PreluGradRegions {
        x: BufferRegion::new(&xb),
        grad_output: BufferRegion::new(&gb),
        grad_input: BufferRegion::new(&gb),
        weight: BufferRegion::new(&wb),
        grad_weight: BufferRegion::new(&gwb),
    };
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encode_prelu_backward(ctx, &mut encoder, regions, 2, &[2, 2]).unwrap();
    ctx.queue().submit([encoder.finish()]);
    assert_eq!(
        ctx.download(BufferRegion::new(&gb), 4).unwrap(),
        [0.5, 1.0, 0.5, 1.0]
    );
    assert_eq!(
        ctx.download(BufferRegion::new(&gwb), 2).unwrap(),
        [-4.0, 0.0]
    );
    // grad_weight in the weights' buffer: an error, not a validation failure
    let bad = PreluGradRegions {
        grad_weight: BufferRegion::new(&wb),
        ..regions
    };
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = encode_prelu_backward(ctx, &mut encoder, bad, 2, &[2, 2]).unwrap_err();
    assert!(err.to_string().contains("grad_weight"), "{err}");
    // grad_weight overlapping grad_input (both written, so wgpu would not object)
    let big = storage_buffer(ctx, &[0.0; 8]);
    let overlapping = PreluGradRegions {
        grad_input: BufferRegion::new(&big),
        grad_weight: BufferRegion::at(&big, 12),
        ..regions
    };
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let err = encode_prelu_backward(ctx, &mut encoder, overlapping, 2, &[2, 2]).unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");
    // wrong weight count, wrong grad_output length
    assert!(run_prelu_backward(ctx, &[1.0; 4], &[1.0; 4], &[2, 2], &[0.5; 3]).is_err());
    assert!(run_prelu_backward(ctx, &[1.0; 4], &[1.0; 3], &[2, 2], &[0.5; 2]).is_err());
}
