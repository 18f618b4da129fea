//! Every op against the CPU reference on the GPU (lavapipe in CI). Each test iterates the
//! op table, so a new op is tested the moment it is declared; outputs are poisoned.

mod common;

use common::*;
use wgpu_activations::{accuracy, Activation, BufferRegion, Context, Op};

fn check_category(name: &str, input: &[f32]) {
    for (mode, ctx) in both_contexts() {
        for op in Op::elementwise_ops() {
            let a = activation(op);
            let out = gpu_apply(ctx, &a, input);
            assert_within(&a, input, &out, bound(&a), &format!("{mode}{name}"));
        }
    }
}

#[test]
fn every_op_matches_reference_on_normal_inputs() {
    check_category("normal inputs", &normal_inputs(20_000));
}

#[test]
fn every_op_matches_reference_on_small_inputs() {
    check_category("small inputs", &small_inputs(20_000));
}

#[test]
fn every_op_matches_reference_on_large_inputs() {
    check_category("large inputs", &large_inputs(20_000));
}

#[test]
fn every_op_matches_reference_on_extremal_inputs() {
    check_category("extremal inputs", &accuracy::extremal_inputs());
}

#[test]
fn every_op_is_within_its_ulp_bound_over_the_whole_f32_range() {
    // Every 4099th bit pattern of each sign (every binade), [-20, 20] by 2^-8, extremes.
    check_category("f32 sweep", &accuracy::sweep_inputs(4099, 1.0 / 256.0));
}

#[test]
fn tails_named_in_the_numerics_policy_are_right() {
    // Values where naive formulas give 0, -inf or NaN.
    let cases: &[(&str, f32)] = &[
        ("gelu", -8.0),
        ("gelu", -13.0),
        ("gelu(approximate=tanh)", -10.0),
        ("logsigmoid", -100.0),
        ("softplus", -50.0),
        ("selu", -1e-8),
        ("tanhshrink", 1e-3),
        ("gaussian", 9.0),
        ("silu", -90.0),
        ("mish", -90.0),
    ];
    for ((mode, ctx), (spec, x)) in both_contexts()
        .into_iter()
        .flat_map(|c| cases.iter().map(move |case| (c, case)))
    {
        let a: Activation = spec.parse().unwrap();
        let y = gpu_apply(ctx, &a, &[*x]);
        assert!(
            y[0] != 0.0 && y[0].is_finite(),
            "{mode}{spec} at {x} gave {}",
            y[0]
        );
        assert_within(&a, &[*x], &y, bound(&a), "tail");
    }
}

#[test]
fn no_op_overflows_to_nan_and_infinities_give_limits() {
    let xs = [
        88.8f32,
        -88.8,
        1e4,
        -1e4,
        3.4e38,
        -3.4e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for (mode, ctx) in both_contexts() {
        for op in Op::elementwise_ops() {
            let a = activation(op);
            let y = gpu_apply(ctx, &a, &xs);
            for (x, y) in xs.iter().zip(&y) {
                assert!(!y.is_nan(), "{mode}{a}({x}) is NaN");
            }
            assert_within(&a, &xs, &y, bound(&a), &format!("{mode}overflow"));
        }
    }
}

#[test]
fn nan_in_gives_nan_out_for_every_op() {
    let xs = [f32::NAN, 1.0, -f32::NAN, f32::from_bits(0x7fc0_1234), 0.0];
    for (op, (mode, ctx)) in Op::elementwise_ops().flat_map(|op| both_contexts().map(|c| (op, c))) {
        let a = activation(op);
        let y = gpu_apply(ctx, &a, &xs);
        for i in [0, 2, 3] {
            assert!(
                y[i].is_nan() && y[i].to_bits() != POISON_BITS,
                "{mode}{a}: NaN at {i} gave {}",
                y[i]
            );
        }
        assert!(
            !y[1].is_nan() && !y[4].is_nan(),
            "{a}: NaN leaked into neighbours"
        );
    }
}

#[test]
fn every_op_handles_sizes_around_the_vector_width_and_workgroup() {
    let ctx = ctx();
    for n in [0usize, 1, 3, 4, 5, 255, 256, 257, 1023, 1025] {
        let input = normal_inputs(n);
        for op in Op::elementwise_ops() {
            let a = activation(op);
            let out = gpu_apply(ctx, &a, &input);
            assert_within(&a, &input, &out, bound(&a), &format!("size {n}"));
        }
    }
}

#[test]
fn non_default_parameters_stay_within_their_bound() {
    let specs = [
        "leaky_relu(negative_slope=0.2)",
        "elu(alpha=0.5)",
        "celu(alpha=2)",
        "celu(alpha=0.3)",
        "swish(beta=1.702)",
        "swish(beta=-0.5)",
        "softplus(beta=2, threshold=10)",
        "softplus(beta=0.5)",
        "hardtanh(min_val=-2, max_val=3)",
        "softshrink(lambd=1)",
        "hardshrink(lambd=1)",
        "threshold(threshold=1, value=5)",
        "rrelu(lower=0.1, upper=0.3)",
        "multiquadric(c=1.5, a=0.001)",
        "multiquadric(c=-1e30, a=0)",
        "inverse_multiquadric(c=-3, a=7)",
        "inverse_multiquadric(c=2, a=1e-30)",
        // the extremes the parser accepts: no NaN, no overflow (celu's alpha and
        // softplus's beta divide, so their magnitude is capped at 2^+-100)
        "swish(beta=8.4e34)",
        "swish(beta=-3e38)",
        "celu(alpha=1e30)",
        "celu(alpha=1e-30)",
        "softplus(beta=1e30)",
        "softplus(beta=1e-30)",
        "elu(alpha=3e38)",
        "leaky_relu(negative_slope=3e38)",
    ];
    let mut input = normal_inputs(20_000);
    input.extend(accuracy::extremal_inputs());
    input.extend(small_inputs(5_000));
    for (mode, ctx) in both_contexts() {
        for spec in specs {
            let a: Activation = spec.parse().unwrap();
            let out = gpu_apply(ctx, &a, &input);
            assert_within(&a, &input, &out, bound(&a), &format!("{mode}{spec}"));
        }
    }
}

#[test]
fn every_op_covers_more_than_65535_workgroups() {
    // 65,535 x workgroup + 1 elements: one more than a one-element-per-invocation
    // dispatch could reach in one dimension.
    let ctx = ctx();
    let n = 65_535 * ctx.facts().workgroup_size as usize + 1;
    let mut rng = Rng::new(7);
    let input: Vec<f32> = (0..n).map(|_| rng.uniform(-12.0, 12.0)).collect();
    for op in Op::elementwise_ops() {
        let a = activation(op);
        let out = gpu_apply(ctx, &a, &input);
        assert_within(&a, &input, &out, bound(&a), "65,535 x workgroup + 1");
    }
}

#[test]
fn input_larger_than_the_binding_limit_is_processed_in_chunks() {
    let ctx = ctx();
    let limit = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let n = (limit / 4 + 5) as usize;
    if (n as u64) * 4 > ctx.limits().max_buffer_size {
        eprintln!("skipping: the adapter's buffers cannot exceed its binding limit");
        return;
    }
    let input: Vec<f32> = (0..n).map(|i| (i % 2001) as f32 / 100.0 - 10.0).collect();
    for spec in ["relu", "gelu"] {
        let a: Activation = spec.parse().unwrap();
        let out = gpu_apply(ctx, &a, &input);
        assert_within(&a, &input, &out, bound(&a), "past the binding limit");
    }
}

#[test]
fn chunks_and_grid_stride_cover_every_element_on_a_small_device() {
    let ctx = small_device();
    let input = normal_inputs(100_003);
    for op in Op::elementwise_ops() {
        let a = activation(op);
        let out = gpu_apply(&ctx, &a, &input);
        assert_within(&a, &input, &out, bound(&a), "small device");
    }
}

/// Runs `a` on `input` placed at element offset `in_at` of one buffer, writing at `out_at`
/// of another (or the same) buffer, and returns the whole output buffer.
fn run_at(
    ctx: &Context,
    a: &Activation,
    input: &[f32],
    in_at: usize,
    out_at: usize,
    same: bool,
) -> Vec<f32> {
    let total = in_at.max(out_at) + input.len() + 8;
    let mut src_data = vec![f32::from_bits(POISON_BITS); total];
    src_data[in_at..in_at + input.len()].copy_from_slice(input);
    let src = storage_buffer(ctx, &src_data);
    let dst = poisoned_buffer(ctx, total);
    let out_buf = if same { &src } else { &dst };
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, &[input.len()])
        .encode(
            &mut encoder,
            BufferRegion::at(&src, 4 * in_at as u64),
            BufferRegion::at(out_buf, 4 * out_at as u64),
        )
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.download(BufferRegion::new(out_buf), total as u64)
        .unwrap()
}

#[test]
fn encode_honours_offsets_aligned_or_not() {
    let a: Activation = "gelu".parse().unwrap();
    for ctx in [ctx(), &small_device()] {
        for (in_at, out_at) in [(0, 0), (4, 8), (3, 7), (1, 0), (0, 5), (64, 17)] {
            let input = normal_inputs(20_001);
            let out = run_at(ctx, &a, &input, in_at, out_at, false);
            let got = &out[out_at..out_at + input.len()];
            assert_within(
                &a,
                &input,
                got,
                bound(&a),
                &format!("offsets {in_at}, {out_at}"),
            );
            // Nothing outside the output range was touched.
            assert!(out[..out_at]
                .iter()
                .chain(&out[out_at + input.len()..])
                .all(|y| y.to_bits() == POISON_BITS));
        }
    }
}

#[test]
fn encode_in_place_and_on_disjoint_ranges_of_one_buffer() {
    let a: Activation = "tanh".parse().unwrap();
    for ctx in [ctx(), &small_device()] {
        let input = normal_inputs(30_001);
        // in place
        let out = run_at(ctx, &a, &input, 5, 5, true);
        assert_within(&a, &input, &out[5..5 + input.len()], bound(&a), "in place");
        // disjoint ranges of one buffer
        let out = run_at(ctx, &a, &input, 0, input.len() + 3, true);
        assert_within(
            &a,
            &input,
            &out[input.len() + 3..2 * input.len() + 3],
            bound(&a),
            "same buffer",
        );
    }
}

#[test]
fn convenience_api_matches_the_reference() {
    let ctx = ctx();
    let a: Activation = "mish".parse().unwrap();
    assert!(ctx.call(&a, &[0]).run::<f32>(&[]).unwrap().is_empty());
    let input = normal_inputs(10_001);
    let out = ctx.call(&a, &[input.len()]).run(&input).unwrap();
    assert_within(&a, &input, &out, bound(&a), "run");
}

#[test]
fn radial_functions_neither_overflow_nor_underflow_in_their_squares() {
    // (x - c)^2 leaves f32's range where the result does not.
    let cases: [(&str, f32, f32); 6] = [
        ("multiquadric", 1e30, 1e30),
        ("multiquadric(a=1e-30)", 0.0, 1e-30),
        ("multiquadric(c=-3e38)", 3e38, f32::INFINITY),
        ("inverse_multiquadric(a=1e-30)", 0.0, 1e30),
        ("inverse_multiquadric", -1e25, 1e-25),
        ("inverse_multiquadric(a=0)", 0.0, f32::INFINITY),
    ];
    for (spec, x, want) in cases {
        let a: Activation = spec.parse().unwrap();
        let y = gpu_apply(ctx(), &a, &[x])[0];
        assert!(
            accuracy::ulp_distance(y, want) <= 1,
            "{spec}({x:e}) = {y:e}, expected {want:e}"
        );
    }
}
