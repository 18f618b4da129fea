//! Dice in training mode against the f64 reference: batch statistics per feature on the
//! GPU, any rank (batch on dim 0), in place, NaN columns, and its limits.

mod common;

use common::*;
use wgpu_activations::{accuracy, cpu, Activation, BufferRegion, Context, Error};

fn check(ctx: &Context, spec: &str, x: &[f32], shape: &[usize], in_place: bool) {
    let a: Activation = spec.parse().unwrap();
    let src = storage_buffer(ctx, x);
    let dst = poisoned_buffer(ctx, x.len());
    let out = if in_place { &src } else { &dst };
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(&a, shape)
        .encode(
            &mut encoder,
            BufferRegion::new(&src),
            BufferRegion::new(out),
        )
        .unwrap_or_else(|e| panic!("{spec} {shape:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    let y = ctx
        .download(BufferRegion::new(out), x.len() as u64)
        .unwrap();
    assert!(
        y.iter().all(|v| v.to_bits() != POISON_BITS),
        "{spec}: unwritten output"
    );
    let want = cpu::reference_shaped_f64(&a, x, shape).unwrap();
    let r = accuracy::compare_relative(&want, &y, 1e-5, 1e-12);
    assert!(
        r.within(1e-5),
        "{spec} {shape:?}: error {:e} at {}: got {:e}, expected {:e}",
        r.max_error,
        r.worst_index,
        r.worst_output,
        r.worst_expected
    );
}

fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| rng.uniform(-scale, scale) + scale / 3.0)
        .collect()
}

#[test]
fn batch_statistics_per_feature_on_every_rank() {
    let ctx = ctx();
    for (shape, scale) in [
        (vec![64usize, 10], 1.0f32),
        (vec![1000, 3], 10.0),
        (vec![5, 4, 3], 100.0),
        (vec![2, 7], 1.0),
        (vec![1, 9], 1.0),
        (vec![4096], 5.0),
    ] {
        let n: usize = shape.iter().product();
        let x = data(n, n as u64, scale);
        for spec in [
            "dice(alpha=0.25)",
            "dice(alpha=0.7, eps=0.001)",
            "dice(alpha=1)",
        ] {
            check(ctx, spec, &x, &shape, false);
            check(ctx, spec, &x, &shape, true);
        }
    }
    // 1-D through run: one feature, the slice is the batch
    let x = data(100, 1, 2.0);
    let a: Activation = "dice(alpha=0.5)".parse().unwrap();
    let y = ctx.call(&a, &[x.len()]).run(&x).unwrap();
    let want = cpu::reference_shaped_f64(&a, &x, &[100]).unwrap();
    assert!(accuracy::compare_relative(&want, &y, 1e-5, 1e-12).within(1e-5));
}

#[test]
fn a_nan_column_stays_in_its_column() {
    let mut x = data(8 * 4, 3, 1.0);
    x[2 * 4 + 1] = f32::NAN; // batch 2, feature 1
    let a: Activation = "dice(alpha=0.1)".parse().unwrap();
    let y = ctx().call(&a, &[8, 4]).run(&x).unwrap();
    for (i, v) in y.iter().enumerate() {
        assert_eq!(v.is_nan(), i % 4 == 1, "element {i}: {v}");
    }
    check(ctx(), "dice(alpha=0.1)", &x, &[8, 4], false);
}

#[test]
fn limits_and_bad_parameters_are_errors() {
    assert!("dice".parse::<Activation>().is_err(), "alpha is required");
    assert!("dice(alpha=0.2, eps=-1)".parse::<Activation>().is_err());
    let a: Activation = "dice(alpha=0.2)".parse().unwrap();
    assert!(matches!(
        ctx().call(&a, &[3, 3]).run(&[1.0; 10]),
        Err(Error::Shape { .. })
    ));
    // the whole tensor must fit one binding (16K floats on this device)
    let x = vec![1.0f32; 20_000];
    let e = small_device().call(&a, &[100, 200]).run(&x).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

#[test]
fn a_negative_alpha_is_accurate_to_x() {
    // alpha + (1 - alpha) p has a root where p = -alpha / (1 - alpha) (x at the mean for
    // alpha = -1): there the output is small and its error follows the error of
    // (x - mean) / std, so the bound is relative to |x| instead.
    let x = data(64 * 10, 5, 1.0);
    let a: Activation = "dice(alpha=-1, eps=0.001)".parse().unwrap();
    let y = ctx().call(&a, &[64, 10]).run(&x).unwrap();
    let want = cpu::reference_shaped_f64(&a, &x, &[64, 10]).unwrap();
    for (i, (&got, &r)) in y.iter().zip(&want).enumerate() {
        let err = (f64::from(got) - r).abs();
        assert!(
            err <= 1e-5 * f64::from(x[i]).abs() + 1e-12,
            "element {i}: {got} vs {r}"
        );
    }
}

#[test]
fn evaluation_mode_reads_running_statistics_and_alpha_per_feature() {
    // 24,000 elements: two binding-sized pieces on the small device
    let (batch, features) = (2000usize, 12usize);
    let x = data(batch * features, 8, 3.0);
    let mean: Vec<f32> = (0..features).map(|f| f as f32 * 0.1 - 0.5).collect();
    let var: Vec<f32> = (0..features).map(|f| 0.5 + f as f32 * 0.2).collect();
    let alpha: Vec<f32> = (0..features).map(|f| f as f32 / features as f32).collect();
    let want = cpu::reference_dice_eval(&x, &[batch, features], &mean, &var, &alpha, 1e-9).unwrap();
    for ctx in [ctx(), &small_device()] {
        // statistics at odd offsets of one buffer each, input and output at others
        let at =
            |data: &[f32], k: usize| storage_buffer(ctx, &[vec![9.0; k], data.to_vec()].concat());
        let (m, v, a) = (at(&mean, 1), at(&var, 5), at(&alpha, 70));
        let src = at(&x, 3);
        let dst = poisoned_buffer(ctx, x.len() + 2);
        let stats = DiceEval {
            mean: BufferRegion::at(&m, 4),
            var: BufferRegion::at(&v, 20),
            alpha: BufferRegion::at(&a, 280),
            eps: 1e-9,
        };
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        encode_dice_eval(
            ctx,
            &mut encoder,
            BufferRegion::at(&src, 12),
            BufferRegion::at(&dst, 8),
            stats,
            &[batch, features],
        )
        .unwrap();
        ctx.queue().submit([encoder.finish()]);
        let y = ctx
            .download(BufferRegion::at(&dst, 8), x.len() as u64)
            .unwrap();
        let r = accuracy::compare_relative(&want, &y, 1e-5, 1e-12);
        assert!(
            r.within(1e-5),
            "error {:e} at {}",
            r.max_error,
            r.worst_index
        );
    }
    // the blocking form, and mismatched lengths
    let y = run_dice_eval(ctx(), &x, &[batch, features], &mean, &var, &alpha, 1e-9).unwrap();
    assert!(accuracy::compare_relative(&want, &y, 1e-5, 1e-12).within(1e-5));
    let e = run_dice_eval(
        ctx(),
        &x,
        &[batch, features],
        &mean[1..],
        &var,
        &alpha,
        1e-9,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert!(run_dice_eval(ctx(), &x, &[batch, features], &mean, &var, &alpha, -1.0).is_err());
}

#[test]
fn evaluation_with_the_batch_statistics_matches_training() {
    let (batch, features) = (200usize, 5usize);
    let x = data(batch * features, 9, 2.0);
    let mut mean = vec![0.0f32; features];
    let mut var = vec![0.0f32; features];
    for f in 0..features {
        let col: Vec<f64> = (0..batch).map(|b| f64::from(x[b * features + f])).collect();
        let m = col.iter().sum::<f64>() / batch as f64;
        mean[f] = m as f32;
        var[f] = (col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / batch as f64) as f32;
    }
    let train: Activation = "dice(alpha=0.3)".parse().unwrap();
    let t = ctx().call(&train, &[batch, features]).run(&x).unwrap();
    let e = run_dice_eval(ctx(), &x, &[batch, features], &mean, &var, &[0.3; 5], 1e-9).unwrap();
    for (i, (a, b)) in t.iter().zip(&e).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1e-6),
            "element {i}: {a} vs {b}"
        );
    }
}

#[test]
fn training_mode_takes_one_alpha_per_feature_from_a_buffer() {
    let (batch, features) = (300usize, 7usize);
    let x = data(batch * features, 10, 4.0);
    let alpha: Vec<f32> = (0..features).map(|f| f as f32 / 7.0).collect();
    let want = cpu::reference_dice_train(&x, &[batch, features], &alpha, 1e-9).unwrap();
    let ctx = ctx();
    // alpha at an odd offset, in place
    let a = storage_buffer(ctx, &[vec![5.0; 3], alpha.clone()].concat());
    let buf = storage_buffer(ctx, &x);
    let r = BufferRegion::new(&buf);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    encode_dice_train(
        ctx,
        &mut encoder,
        r,
        r,
        BufferRegion::at(&a, 12),
        1e-9,
        &[batch, features],
    )
    .unwrap();
    ctx.queue().submit([encoder.finish()]);
    let y = ctx.download(r, x.len() as u64).unwrap();
    let rep = accuracy::compare_relative(&want, &y, 1e-5, 1e-12);
    assert!(
        rep.within(1e-5),
        "error {:e} at {}",
        rep.max_error,
        rep.worst_index
    );
    // one alpha for all equals the spec form
    let same = run_dice_train(ctx, &x, &[batch, features], &[0.4; 7], 1e-9).unwrap();
    let spec: Activation = "dice(alpha=0.4)".parse().unwrap();
    let by_spec = ctx.call(&spec, &[batch, features]).run(&x).unwrap();
    assert_eq!(same, by_spec);
    assert!(matches!(
        run_dice_train(ctx, &x, &[batch, features], &alpha[1..], 1e-9),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn large_batches_on_both_reduction_paths() {
    let tree = tree_ctx();
    // a batch of 40,000 would also pass lavapipe's loop budget in one invocation
    let x = data(40_000 * 3, 12, 5.0);
    for c in [ctx(), tree] {
        check(c, "dice(alpha=0.2)", &x, &[40_000, 3], false);
        check(c, "dice(alpha=0.6)", &x[..2048 * 5], &[2048, 5], true);
        let alpha = [0.1f32, 0.5, 0.9];
        let y = run_dice_train(c, &x, &[40_000, 3], &alpha, 1e-9).unwrap();
        let want = cpu::reference_dice_train(&x, &[40_000, 3], &alpha, 1e-9).unwrap();
        assert!(accuracy::compare_relative(&want, &y, 1e-5, 1e-12).within(1e-5));
    }
}

#[test]
fn extremal_values_in_a_batch() {
    // each extremal value in its own feature column beside ordinary values (values near
    // 3.4e38 are left out: their variance overflows f32, a documented limit)
    let specials = [0.0f32, -0.0, 88.8, -88.8, 1e4, -1e4, 1e-40, -1e-45];
    let batch = 6;
    let mut x = vec![0.0f32; batch * specials.len()];
    for (f, &s) in specials.iter().enumerate() {
        for b in 0..batch {
            x[b * specials.len() + f] = if b == 2 { s } else { b as f32 - 2.5 };
        }
    }
    // on the relaxed-semantics context too (flushed subnormals, reciprocal division)
    for (_, c) in both_contexts() {
        check(c, "dice(alpha=0.3)", &x, &[batch, specials.len()], false);
        // non-finite values make their column NaN and leave the others alone
        let mut y = x.clone();
        y[2 * specials.len()] = f32::INFINITY;
        y[3 * specials.len() + 1] = f32::NAN;
        y[4 * specials.len() + 2] = f32::NEG_INFINITY;
        let a: Activation = "dice(alpha=0.3)".parse().unwrap();
        let out = c.call(&a, &[batch, specials.len()]).run(&y).unwrap();
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v.is_nan(), i % specials.len() < 3, "element {i}: {v}");
        }
    }
}

#[test]
fn statistics_tiles_cover_every_width_and_slice() {
    // The statistics tile a workgroup over a block of features and a slice of the batch:
    // features past a workgroup's width (several blocks, a partial last one), fewer (rows
    // side by side, lanes left over), one feature over a long batch (many slices), and on
    // a device of 4 workgroups (a grid-stride loop over the tiles); columns away from
    // zero, where a one-pass variance would cancel (about 90 standard deviations: further out,
    // the f32 rounding of x - mean alone passes the bound, with any statistics).
    for (_, ctx) in both_contexts() {
        for (shape, offset) in [
            ([7usize, 600usize], 0.0f32),
            ([33, 300], 0.0),
            ([501, 100], 100.0),
            ([100_003, 1], -100.0),
            ([3, 1000], 0.0),
        ] {
            let n = shape[0] * shape[1];
            let x: Vec<f32> = data(n, n as u64, 2.0).iter().map(|v| v + offset).collect();
            for spec in ["dice(alpha=0.25)", "dice(alpha=0.9, eps=0.001)"] {
                check(ctx, spec, &x, &shape, false);
                check(ctx, spec, &x, &shape, true);
            }
            let alpha: Vec<f32> = (0..shape[1]).map(|i| (i % 7) as f32 / 7.0).collect();
            let y = run_dice_train(ctx, &x, &shape, &alpha, 1e-9).unwrap();
            let want = cpu::reference_dice_train(&x, &shape, &alpha, 1e-9).unwrap();
            let r = accuracy::compare_relative(&want, &y, 1e-5, 1e-12);
            assert!(r.within(1e-5), "{shape:?}: {:e}", r.max_error);
        }
    }
    let small = small_device();
    let x = data(20 * 700, 5, 3.0);
    check(&small, "dice(alpha=0.3)", &x, &[20, 700], false);
    // 2,100 features' statistics (33,600 bytes) in a 64 KiB binding: one slice fits, two
    // would not (the partials are 16 bytes per slice and feature)
    let x = data(2 * 2100, 6, 3.0);
    check(&small, "dice(alpha=0.3)", &x, &[2, 2100], false);
    let alpha = vec![0.4f32; 2100];
    let y = run_dice_train(&small, &x, &[2, 2100], &alpha, 1e-9).unwrap();
    let want = cpu::reference_dice_train(&x, &[2, 2100], &alpha, 1e-9).unwrap();
    assert!(accuracy::compare_relative(&want, &y, 1e-5, 1e-12).within(1e-5));
}
