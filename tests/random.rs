//! rrelu in training mode: the counter-based generator gives the CPU reference's bits on
//! the GPU, whatever the chunking; seeds repeat and differ; the slopes are uniform.

mod common;

use common::*;
use wgpu_activations::{random, Activation, BufferRegion, Context};

/// The bits of each value, every NaN as one (an adapter may change NaN payloads).
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() })
        .collect()
}

fn rrelu(seed: u32) -> Activation {
    format!("rrelu(training=true, lower=0.1, upper=0.3, seed={seed})")
        .parse()
        .unwrap()
}

fn gpu_at(ctx: &Context, a: &Activation, x: &[f32], in_at: usize, out_at: usize) -> Vec<f32> {
    let src = storage_buffer(ctx, &[vec![1.0; in_at], x.to_vec()].concat());
    let dst = poisoned_buffer(ctx, out_at + x.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, &[x.len()])
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
fn philox_matches_the_random123_known_answers() {
    assert_eq!(
        random::philox4x32_10([0; 4], [0, 0]),
        [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
    );
    assert_eq!(
        random::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
        [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
    );
}

#[test]
fn the_gpu_draws_the_cpu_reference_bits_in_any_chunking() {
    let mut rng = Rng::new(5);
    let mut x: Vec<f32> = (0..100_003).map(|_| rng.uniform(-4.0, 4.0)).collect();
    let extremal = wgpu_activations::accuracy::extremal_inputs();
    x[7..7 + extremal.len()].copy_from_slice(&extremal);
    for seed in [0u32, 1, 12_345, 16_777_216] {
        let a = rrelu(seed);
        let small = small_device();
        for (ctx, at) in [
            (ctx(), (0, 0)),
            (ctx(), (3, 1)),
            (&small, (5, 2)),
            (relaxed_ctx(), (0, 0)),
            (relaxed_ctx(), (2, 9)),
        ] {
            // The CPU mirrors this adapter's float model (whether it flushes subnormals).
            let want = ctx.facts().float_model().reference(&a, &x).unwrap();
            let y = gpu_at(ctx, &a, &x, at.0, at.1);
            assert_eq!(bits(&y), bits(&want), "seed {seed} offsets {at:?}");
        }
    }
    // in place, and through run
    let a = rrelu(99);
    let buf = storage_buffer(ctx(), &x);
    let mut encoder = ctx().device().create_command_encoder(&Default::default());
    let r = BufferRegion::new(&buf);
    ctx()
        .call(&a, &[x.len()])
        .encode(&mut encoder, r, r)
        .unwrap();
    ctx().queue().submit([encoder.finish()]);
    let y = ctx().download(r, x.len() as u64).unwrap();
    let want = ctx().facts().float_model().reference(&a, &x).unwrap();
    assert_eq!(bits(&y), bits(&want), "in place");
    assert_eq!(
        bits(&ctx().call(&a, &[x.len()]).run(&x).unwrap()),
        bits(&y),
        "run"
    );
}

#[test]
fn seeds_repeat_and_differ() {
    let x = vec![-1.0f32; 10_000];
    let a = ctx().call(&rrelu(1), &[x.len()]).run(&x).unwrap();
    let b = ctx().call(&rrelu(1), &[x.len()]).run(&x).unwrap();
    let c = ctx().call(&rrelu(2), &[x.len()]).run(&x).unwrap();
    assert_eq!(bits(&a), bits(&b));
    let same = a.iter().zip(&c).filter(|(p, q)| p == q).count();
    assert!(
        same < 10,
        "seeds 1 and 2 agree on {same} of 10,000 elements"
    );
    // positive inputs pass through
    let pos = ctx().call(&rrelu(3), &[3]).run(&[0.0, 1.5, 1e30]).unwrap();
    assert_eq!(pos, [0.0, 1.5, 1e30]);
}

#[test]
fn slopes_are_uniform_in_lower_upper() {
    let n = 1 << 20;
    let x = vec![-1.0f32; n];
    let (lower, upper) = (0.1f64, 0.3f64);
    let y = ctx().call(&rrelu(2024), &[x.len()]).run(&x).unwrap();
    let slopes: Vec<f64> = y.iter().map(|&v| -f64::from(v)).collect();
    assert!(slopes
        .iter()
        .all(|&s| s >= lower - 1e-7 && s < upper + 1e-7));
    let mean = slopes.iter().sum::<f64>() / n as f64;
    let var = slopes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n as f64;
    // U(a, b): mean (a + b) / 2, variance (b - a)^2 / 12; standard errors at n = 2^20
    let width = upper - lower;
    let se_mean = width / 12f64.sqrt() / (n as f64).sqrt();
    assert!(
        (mean - 0.2).abs() < 5.0 * se_mean,
        "mean {mean}, expected 0.2 +- {}",
        5.0 * se_mean
    );
    let want_var = width * width / 12.0;
    // the variance of a uniform sample variance: (b - a)^4 / 180 / n
    let se_var = (width.powi(4) / 180.0 / n as f64).sqrt();
    assert!(
        (var - want_var).abs() < 5.0 * se_var,
        "variance {var}, expected {want_var} +- {}",
        5.0 * se_var
    );
    // and evenly spread: ten bins within 5 standard errors of n / 10 each
    let mut bins = [0usize; 10];
    for s in &slopes {
        bins[(((s - lower) / width) * 10.0).clamp(0.0, 9.0) as usize] += 1;
    }
    let expect = n as f64 / 10.0;
    let se_bin = (n as f64 * 0.1 * 0.9).sqrt();
    for (i, &b) in bins.iter().enumerate() {
        assert!(
            (b as f64 - expect).abs() < 5.0 * se_bin,
            "bin {i} holds {b}, expected {expect}"
        );
    }
}

#[test]
fn training_is_a_word_of_the_rrelu_spec() {
    let eval: Activation = "rrelu".parse().unwrap();
    let train: Activation = "rrelu(training=true, seed=7)".parse().unwrap();
    assert_ne!(eval.op(), train.op());
    assert_eq!(train.to_string(), "rrelu(training=true, seed=7)");
    assert_eq!("rrelu(training=false)".parse::<Activation>().unwrap(), eval);
    assert!("rrelu(training=true, seed=1.5)"
        .parse::<Activation>()
        .is_err());
    assert!("rrelu(training=true, seed=-1)"
        .parse::<Activation>()
        .is_err());
    assert!("rrelu(training=maybe)".parse::<Activation>().is_err());
}

fn noisy(std: f32, seed: u32) -> Activation {
    format!("noisy_relu(std={std}, seed={seed})")
        .parse()
        .unwrap()
}

#[test]
fn noisy_relu_draws_the_cpu_reference_bits() {
    let mut rng = Rng::new(6);
    let mut x: Vec<f32> = (0..100_003).map(|_| rng.uniform(-3.0, 3.0)).collect();
    let extremal = wgpu_activations::accuracy::extremal_inputs();
    x[4..4 + extremal.len()].copy_from_slice(&extremal);
    for (std, seed) in [(0.5f32, 0u32), (2.0, 77), (0.0, 5)] {
        let a = noisy(std, seed);
        let small = small_device();
        for (ctx, at) in [
            (ctx(), (0, 0)),
            (ctx(), (1, 6)),
            (&small, (7, 3)),
            (relaxed_ctx(), (0, 0)),
            (relaxed_ctx(), (4, 1)),
        ] {
            let want = ctx.facts().float_model().reference(&a, &x).unwrap();
            let y = gpu_at(ctx, &a, &x, at.0, at.1);
            assert_eq!(
                bits(&y),
                bits(&want),
                "std {std} seed {seed} offsets {at:?}"
            );
        }
    }
    let z = noisy(1.0, 1);
    let y = ctx().call(&z, &[3]).run(&[f32::NAN, -1e30, 1e30]).unwrap();
    assert!(y[0].is_nan());
    assert_eq!(&y[1..], &[0.0, 1e30]);
}

#[test]
fn noisy_relu_noise_is_normal() {
    // x = 100 keeps every sample away from the clamp at 0: y - 100 = std * N(0, 1)
    let n = 1usize << 20;
    let std = 1.5f64;
    let y = ctx()
        .call(&noisy(std as f32, 31), &[(vec![100.0f32; n]).len()])
        .run(&vec![100.0f32; n])
        .unwrap();
    let z: Vec<f64> = y.iter().map(|&v| (f64::from(v) - 100.0) / std).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let nf = n as f64;
    assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(),
        "variance {var}"
    );
    // the mass within 1, 2 and 3 standard deviations, and a symmetric tail
    for (k, p) in [(1.0, 0.682_689_5), (2.0, 0.954_499_7), (3.0, 0.997_300_2)] {
        let within = z.iter().filter(|v| v.abs() < k).count() as f64 / nf;
        let se = (p * (1.0 - p) / nf).sqrt();
        assert!(
            (within - p).abs() < 5.0 * se,
            "P(|z| < {k}) = {within}, expected {p}"
        );
    }
    let above = z.iter().filter(|&&v| v > 2.0).count() as f64;
    let below = z.iter().filter(|&&v| v < -2.0).count() as f64;
    assert!(
        (above - below).abs() < 5.0 * (above + below).sqrt(),
        "{above} vs {below}"
    );
    // and below 0 the output is clamped
    let y = ctx()
        .call(&noisy(1.0, 2), &[(vec![-100.0f32; 1000]).len()])
        .run(&vec![-100.0f32; 1000])
        .unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
    assert!(
        "noisy_relu".parse::<Activation>().is_err(),
        "std is required"
    );
    assert!("noisy_relu(std=-1)".parse::<Activation>().is_err());
}

/// Pearson's correlation of two equally long samples.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn the_four_draws_of_one_philox_call_are_uncorrelated() {
    // One Philox call serves elements 4q to 4q + 3: rrelu's four slopes are its four
    // words, noisy_relu's four normals the cosine and sine halves of two Box-Muller
    // pairs. Every two lanes of a call, and a lane and the next call's, must be
    // uncorrelated (|r| within 5 standard errors of 0).
    let n = 1usize << 20;
    let calls = n / 4;
    let slopes: Vec<f64> = ctx()
        .call(&rrelu(3), &[(vec![-1.0f32; n]).len()])
        .run(&vec![-1.0f32; n])
        .unwrap()
        .iter()
        .map(|&v| -f64::from(v))
        .collect();
    let normals: Vec<f64> = ctx()
        .call(&noisy(1.0, 3), &[(vec![100.0f32; n]).len()])
        .run(&vec![100.0f32; n])
        .unwrap()
        .iter()
        .map(|&v| f64::from(v) - 100.0)
        .collect();
    let bound = 5.0 / (calls as f64).sqrt();
    for (name, v) in [("rrelu slopes", &slopes), ("noisy_relu normals", &normals)] {
        let lane = |l: usize| -> Vec<f64> { v.iter().skip(l).step_by(4).copied().collect() };
        let lanes: Vec<Vec<f64>> = (0..4).map(lane).collect();
        for a in 0..4 {
            for b in a + 1..4 {
                let r = correlation(&lanes[a], &lanes[b]);
                assert!(r.abs() < bound, "{name}: lanes {a} and {b}: r = {r}");
            }
            let next = correlation(&lanes[a][..calls - 1], &lanes[a][1..]);
            assert!(
                next.abs() < bound,
                "{name}: lane {a}, next call: r = {next}"
            );
        }
        // the squares too: Box-Muller's pair shares a radius, which must not show
        let squares: Vec<Vec<f64>> = lanes
            .iter()
            .map(|l| l.iter().map(|x| x * x).collect())
            .collect();
        let r = correlation(&squares[0], &squares[1]);
        assert!(r.abs() < bound, "{name}: squares of lanes 0 and 1: r = {r}");
    }
}
