//! Portable numerics: each way a GPU may compute differently from lavapipe (as the WGSL
//! spec allows) has a test here, run on a context that emulates it (`relaxed_ctx`) and on
//! the default one. Each case failed on an NVIDIA H100 before the kernels were fixed, and
//! fails under the emulation with the old kernels (see the git history of this file).

mod common;

use common::*;
use wgpu_activations::{accuracy, cpu, Activation, Op};

/// Runs `spec` on `xs` on both contexts and checks each result against the reference
/// under the op's bound (0 ULP for exact ops).
fn check(spec: &str, xs: &[f32]) {
    let a: Activation = spec.parse().unwrap();
    for (mode, ctx) in both_contexts() {
        let y = gpu_apply(ctx, &a, xs);
        assert_within(&a, xs, &y, bound(&a), &format!("{mode}{spec}"));
    }
}

#[test]
fn the_emulation_flushes_and_divides_by_a_flushed_reciprocal() {
    let ctx = relaxed_ctx();
    assert!(ctx.facts().emulated_relaxed_math && ctx.facts().flushes_subnormals);
    // The emulation leaves fma alone: fused where the adapter fuses it.
    assert_eq!(ctx.facts().fused_fma, common::ctx().facts().fused_fma);
    assert!(!common::ctx().facts().emulated_relaxed_math);
    let facts = ctx.facts().to_string();
    assert!(
        facts.contains("subnormals flushed: yes (emulated"),
        "{facts}"
    );
}

#[test]
fn division_by_a_value_beyond_2_pow_126() {
    // softsign divided by 1 + |x|: 0 on a GPU dividing by a flushed reciprocal.
    check(
        "softsign",
        &[
            3.4e38,
            -3.4e38,
            f32::MAX,
            9.7e37,
            8.6e37,
            1e30,
            3.4e7,
            3.3e7,
        ],
    );
}

#[test]
fn rearranged_arithmetic_near_cancellation() {
    // hardsigmoid's (x + 3) / 6 near x = -3, which x * (1/6) + 0.5 cancels.
    let xs: Vec<f32> = (0..4096)
        .map(|i| -3.0 + i as f32 * 1e-6)
        .chain([-2.9987764, -2.9998693, -2.999998, -2.9369726])
        .collect();
    check("hardsigmoid", &xs);
    check("hardswish", &xs);
}

#[test]
fn subnormal_inputs_keep_exact_ops_exact_and_signs_right() {
    // relu(-1e-38) was -1e-38, binary_step(-1e-38) was 1 on the H100.
    let mut xs = subnormals();
    xs.extend([
        -1e-38,
        1e-38,
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
    ]);
    let exact: Vec<String> = Op::elementwise_ops()
        .map(Activation::example)
        .filter(|a| bound(a) == 0)
        .map(|a| a.to_string())
        .chain(
            [
                "leaky_relu(negative_slope=1000)",
                "prelu(weight=3e7)",
                "rrelu(lower=100, upper=300)",
                "hardtanh(min_val=0, max_val=1e-40)",
                "hardtanh(min_val=-1e-40, max_val=0)",
                "threshold(threshold=0, value=-1)",
                "threshold(threshold=-1e-40, value=7)",
                "hardshrink(lambd=0)",
                "softshrink(lambd=0)",
                "relu6",
            ]
            .map(String::from),
        )
        .collect();
    // Ops that select an input, a parameter or a constant keep its bits; the products and
    // differences (leaky_relu, prelu, rrelu, softshrink) are correctly rounded, and a
    // subnormal result may be a zero of its sign.
    let selects = [
        "identity",
        "binary_step",
        "relu",
        "hardtanh",
        "threshold",
        "hardshrink",
    ];
    for spec in &exact {
        let a: Activation = spec.parse().unwrap();
        for (mode, ctx) in both_contexts() {
            let y = gpu_apply(ctx, &a, &xs);
            let want = cpu::reference(&a, &xs);
            let what = format!("{mode}{spec}");
            if selects.iter().any(|s| spec.starts_with(s)) {
                assert_bits(&y, &want, &what);
            } else {
                assert_exact(&y, &want, &what);
            }
        }
    }
}

#[test]
fn subnormal_inputs_with_normal_results_are_rescued() {
    // selu(1e-38) = 1.05e-38 is normal (it was 0); celu(alpha=2) at the smallest normal
    // divides it into a subnormal (it was 0); elu with alpha > 1 likewise.
    let mut xs = subnormals();
    xs.extend([
        1e-38,
        -1e-38,
        -1.1754944e-38,
        1.1754944e-38,
        2e-38,
        -2e-38,
        1e-35,
    ]);
    for spec in [
        "selu",
        "celu(alpha=2)",
        "celu(alpha=0.3)",
        "elu(alpha=3)",
        "mish",
        "gelu",
        "silu",
        "tanh",
        "softsign",
        "tanhshrink",
    ] {
        check(spec, &xs);
    }
}

#[test]
fn grouped_extremes_survive_flushing() {
    // maxout of 1e-40 gave 0 on the H100.
    let x = [1e-40f32, -1.0, -1e-40, -2.0, -1e-45, -1e-40, 0.0, -0.0];
    for (spec, want) in [
        ("maxout(k=2)", [1e-40f32, -1e-40, -1e-45, 0.0]),
        ("fold_min(k=2)", [-1.0, -2.0, -1e-40, 0.0]),
    ] {
        let a: Activation = spec.parse().unwrap();
        for (mode, ctx) in both_contexts() {
            let y = ctx.call(&a, &[8]).run(&x).unwrap();
            assert_bits(&y, &want, &format!("{mode}{spec}"));
        }
    }
    // large groups take the workgroup path
    let mut big = vec![-1.0f32; 4096];
    big[1234] = 1e-40;
    big[77] = -1e-45;
    for (mode, ctx) in both_contexts() {
        let a: Activation = "maxout(k=4096)".parse().unwrap();
        assert_bits(&ctx.call(&a, &[4096]).run(&big).unwrap(), &[1e-40], mode);
        let a: Activation = "fold_min(k=4096)".parse().unwrap();
        let neg: Vec<f32> = big.iter().map(|x| -x).collect();
        assert_bits(&ctx.call(&a, &[4096]).run(&neg).unwrap(), &[-1e-40], mode);
    }
}

#[test]
fn grouped_means_of_subnormals_are_rescued_and_signed() {
    // fold_mean gave +0 for a negative subnormal mean on the H100; a mean of subnormals
    // can be normal (1e-38 + 2e-38 / 2 = 1.5e-38), and a flushing adapter summed 0 + 2e-38.
    let x = [
        1e-38f32, 2e-38, -1e-38, -2e-38, -1.2e-38, -1e-38, 3e-39, -1e-45,
    ];
    for spec in ["fold_mean(k=2)", "fold_mean(k=4)", "fold_mean(k=8)"] {
        let a: Activation = spec.parse().unwrap();
        let want: Vec<f32> = cpu::reference_shaped_f64(&a, &x, &[8])
            .unwrap()
            .into_iter()
            .map(|v| v as f32)
            .collect();
        for (mode, ctx) in both_contexts() {
            let y = ctx.call(&a, &[8]).run(&x).unwrap();
            for (i, (&g, &w)) in y.iter().zip(&want).enumerate() {
                assert!(
                    accuracy::error_against(w, g) <= 2,
                    "{mode}{spec}: output {i} is {g:e}, expected {w:e}"
                );
            }
        }
    }
}

#[test]
fn large_group_means_of_subnormals_are_rescued() {
    // groups of 1,024 and more take the workgroup path
    let mut x = vec![0.0f32; 2048];
    for (i, v) in x.iter_mut().enumerate() {
        *v = if i % 2 == 0 { 1e-39 } else { -3e-40 };
    }
    x[5] = 5e-35; // the mean is normal (2.5e-38); the subnormals are 1.4% of it
    let a: Activation = "fold_mean(k=2048)".parse().unwrap();
    let want = cpu::reference_shaped_f64(&a, &x, &[2048]).unwrap()[0] as f32;
    for (mode, ctx) in both_contexts() {
        let y = ctx.call(&a, &[2048]).run(&x).unwrap()[0];
        assert!(
            accuracy::error_against(want, y) <= 2,
            "{mode}: {y:e}, expected {want:e}"
        );
    }
}

#[test]
fn nan_is_compared_as_nan_not_by_payload() {
    // The H100 returned 0x7fffffff where the CPU has 0xffc00000: both are NaN.
    assert_eq!(
        accuracy::error_against(f32::from_bits(0xffc0_0000), f32::from_bits(0x7fff_ffff)),
        0
    );
    let x = [
        f32::from_bits(0xffc0_0000),
        f32::from_bits(0x7f80_0001),
        -1.0,
    ];
    for (mode, ctx) in both_contexts() {
        let y = ctx
            .call(&prelu_op(), &[3])
            .params(Params::Prelu {
                weight: ParamTensor::Host(&[0.25]),
            })
            .run(&x)
            .unwrap();
        assert_exact(&y, &cpu::reference_prelu(&x, &[3], &[0.25]).unwrap(), mode);
    }
}
