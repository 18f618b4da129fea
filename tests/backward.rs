//! The backward kernels against the f64 reference derivatives, on the default context and
//! under emulated relaxed semantics (what a GPU may do to f32 arithmetic).

mod common;

use common::*;
use wgpu_activations::{accuracy, cpu, Activation, BufferRegion, Context, Op, Saved};

/// The saved tensor for inputs `x`: x itself, or the forward's f32 output where the op
/// saves it.
fn saved_for(a: &Activation, x: &[f32]) -> Vec<f32> {
    match a.op().backward().saved {
        Saved::Input => x.to_vec(),
        Saved::Output => cpu::reference(a, x),
    }
}

/// grad_input through the encode API (separate buffers, a poisoned output).
fn gpu_backward(ctx: &Context, a: &Activation, saved: &[f32], g: &[f32]) -> Vec<f32> {
    let s = storage_buffer(ctx, saved);
    let gb = storage_buffer(ctx, g);
    let out = poisoned_buffer(ctx, saved.len());
    let regions = [&s, &gb, &out].map(BufferRegion::new);
    backward_on(ctx, a, regions, saved.len())
}

/// Records and submits a backward on regions, then reads grad_input back.
fn backward_on(
    ctx: &Context,
    a: &Activation,
    regions: [BufferRegion<'_>; 3],
    n: usize,
) -> Vec<f32> {
    let [s, g, out] = regions;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, &[n])
        .encode_backward(&mut encoder, s, g, out)
        .unwrap_or_else(|e| panic!("{a}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(out, n as u64).unwrap()
}

/// The worst element of a backward comparison: (error, index).
fn worst(a: &Activation, saved: &[f32], g: &[f32], got: &[f32]) -> (u64, usize) {
    let (f, _) = (a.op().elementwise_grad().unwrap().1, ());
    let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
    let bound = a.op().backward().accuracy;
    let mut w = (0, 0);
    for i in 0..saved.len() {
        assert_ne!(
            got[i].to_bits(),
            POISON_BITS,
            "{a}: element {i} never written"
        );
        let want = f(f64::from(saved[i]), f64::from(g[i]), &p);
        let e = accuracy::gradient_error(want, got[i], g[i], bound);
        if e > w.0 {
            w = (e, i);
        }
    }
    w
}

/// Checks every op with `check`, then fails listing every op out of bounds.
fn for_every_op(ops: impl Iterator<Item = Op>, mut check: impl FnMut(Op) -> Result<(), String>) {
    let failures: Vec<String> = ops.filter_map(|op| check(op).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn assert_backward(ctx: &Context, what: &str, a: &Activation, saved: &[f32], g: &[f32]) {
    if let Err(e) = check_backward(ctx, what, a, saved, g) {
        panic!("{e}");
    }
}

fn check_backward(
    ctx: &Context,
    what: &str,
    a: &Activation,
    saved: &[f32],
    g: &[f32],
) -> Result<(), String> {
    let got = gpu_backward(ctx, a, saved, g);
    let (err, i) = worst(a, saved, g, &got);
    let bound = a.op().backward().accuracy;
    let max = u64::from(bound.max_ulp(a.has_default_params()).unwrap());
    let f = a.op().elementwise_grad().unwrap().1;
    let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
    if std::env::var_os("BACKWARD_REPORT").is_some() {
        eprintln!(
            "{what}{a}: {err} ULP at saved = {:e}, g = {:e}",
            saved[i], g[i]
        );
    }
    if err <= max {
        return Ok(());
    }
    Err(format!(
        "{what}{a}: backward {} ULP (bound {bound:?}) at saved = {:e}, g = {:e}: got {:e}, \
         expected {:e}",
        if err == u64::MAX {
            "NaN mismatch".into()
        } else {
            err.to_string()
        },
        saved[i],
        g[i],
        got[i],
        f(f64::from(saved[i]), f64::from(g[i]), &p)
    ))
}

/// Inputs over the whole f32 range (every binade, a dense grid on [-20, 20], the
/// extremal values) with grad_output 1, so the error is the derivative's own.
fn sweep() -> Vec<f32> {
    accuracy::sweep_inputs(1 << 17, 1.0 / 1024.0)
}

#[test]
fn every_elementwise_backward_is_within_its_bound_over_the_sweep() {
    let x = sweep();
    let ones = vec![1.0f32; x.len()];
    for (what, ctx) in both_contexts() {
        for_every_op(Op::elementwise_ops(), |op| {
            let a = activation(op);
            check_backward(ctx, what, &a, &saved_for(&a, &x), &ones)
        });
    }
}

#[test]
fn grad_output_of_every_size_scales_the_result() {
    // normal, small and large inputs, each against grad_outputs from 1e-30 to 1e30 and
    // subnormal ones: the product neither overflows nor vanishes before its last step
    let mut x = normal_inputs(3000);
    x.extend(small_inputs(3000));
    x.extend(large_inputs(1000));
    let mut rng = Rng::new(7);
    let mut g: Vec<f32> = x.iter().map(|_| rng.log_uniform(1e-30, 1e30)).collect();
    let subs = subnormals();
    for (i, s) in subs.iter().enumerate() {
        g[i * 97] = *s;
    }
    for (what, ctx) in both_contexts() {
        for_every_op(Op::elementwise_ops(), |op| {
            let a = activation(op);
            check_backward(ctx, what, &a, &saved_for(&a, &x), &g)
        });
    }
}

#[test]
fn masked_backwards_follow_pytorch_at_edges_nan_and_infinities() {
    // (spec, x, g, want): PyTorch's selects, evaluated by hand
    let nan = f32::NAN;
    let cases: &[(&str, f32, f32, f32)] = &[
        ("relu", 0.0, 3.0, 0.0),
        ("relu", -0.0, 3.0, 0.0),
        ("relu", 1e-45, 3.0, 3.0),
        ("relu", -1e-45, 3.0, 0.0),
        ("relu", nan, 3.0, 3.0),
        ("relu", -1.0, nan, 0.0),
        ("relu", -1.0, f32::INFINITY, 0.0),
        ("relu6", 6.0, 3.0, 0.0),
        ("relu6", 5.999_999_5, 3.0, 3.0),
        ("hardtanh", -1.0, 3.0, 0.0),
        ("hardtanh", 1.0, 3.0, 0.0),
        ("hardtanh", nan, 3.0, 3.0),
        ("leaky_relu", 0.0, 3.0, 0.03),
        ("leaky_relu", nan, 3.0, 0.03),
        ("elu", nan, 3.0, 3.0),
        ("softshrink", 0.5, 3.0, 0.0),
        ("softshrink", -0.5, 3.0, 0.0),
        ("softshrink", 0.500_000_06, 3.0, 3.0),
        ("hardshrink", nan, 3.0, 3.0),
        ("threshold(threshold=0.5, value=-2)", 0.5, 3.0, 0.0),
        ("hardsigmoid", 3.0, 6.0, 0.0),
        ("hardsigmoid", -3.0, 6.0, 0.0),
        ("hardsigmoid", 0.0, 6.0, 1.0),
        // PyTorch 2.15: 0 at -3 and g at 3 (before pytorch/pytorch#147801: -g/2 and 3g/2)
        ("hardswish", -3.0, 3.0, 0.0),
        ("hardswish", -3.000_000_2, 3.0, 0.0),
        ("hardswish", 3.0, 3.0, 3.0),
        ("hardswish", nan, 3.0, 3.0),
        ("binary_step", 0.0, 3.0, 0.0),
        ("sigmoid", nan, 3.0, nan),
        ("gelu", nan, 3.0, nan),
        ("gelu", f32::NEG_INFINITY, 3.0, 0.0),
        ("gelu", f32::INFINITY, 3.0, 3.0),
        ("mish", f32::NEG_INFINITY, 3.0, 0.0),
        ("silu", f32::INFINITY, 3.0, 3.0),
        ("silu", 1.0, nan, nan),
        ("softsign", f32::INFINITY, 3.0, 0.0),
        ("multiquadric(c=1, a=0)", 1.0, 3.0, 0.0),
    ];
    for (what, ctx) in both_contexts() {
        for &(spec, x, g, want) in cases {
            let a: Activation = spec.parse().unwrap();
            let got = gpu_backward(ctx, &a, &[x], &[g])[0];
            assert!(
                (got.is_nan() && want.is_nan()) || got == want,
                "{what}{spec}: x = {x:e}, g = {g:e}: got {got:e}, want {want:e}"
            );
            let f = a.op().elementwise_grad().unwrap().1;
            let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
            let r = f(f64::from(x), f64::from(g), &p) as f32;
            assert!(
                (r.is_nan() && want.is_nan()) || r == want,
                "reference {spec}: x = {x:e}, g = {g:e}: {r:e}, want {want:e}"
            );
        }
    }
}

#[test]
fn every_binding_layout_gives_the_same_result() {
    // separate buffers; in place on grad_output; in place on the saved tensor; all three
    // in one buffer; inputs far from grad_input in its buffer (staged); misaligned
    // offsets (the scalar path)
    let ctx = ctx();
    let n = 1001;
    let x: Vec<f32> = normal_inputs(n);
    let g: Vec<f32> = small_inputs(n);
    for spec in ["gelu", "relu", "sigmoid"] {
        let a: Activation = spec.parse().unwrap();
        let s = saved_for(&a, &x);
        let want = gpu_backward(ctx, &a, &s, &g);
        assert_backward(ctx, "", &a, &s, &g);
        let run = |layout: &str, sv: usize, gv: usize, out: usize, data: Vec<f32>| {
            let buf = storage_buffer(ctx, &data);
            let r = |e: usize| BufferRegion::at(&buf, 4 * e as u64);
            let got = backward_on(ctx, &a, [r(sv), r(gv), r(out)], n);
            assert_bits(&got, &want, &format!("{spec} {layout}"));
        };
        let poison = |k: usize| vec![f32::from_bits(POISON_BITS); k];
        // [s | g] with grad_input = g (in place)
        run(
            "in place on grad_output",
            0,
            n,
            n,
            [s.clone(), g.clone()].concat(),
        );
        // [s | g], grad_input = s
        run(
            "in place on saved",
            0,
            n,
            0,
            [s.clone(), g.clone()].concat(),
        );
        // [s | g | out], one buffer, misaligned by one element
        let data = [vec![0.0], s.clone(), g.clone(), poison(n)].concat();
        run("one buffer, misaligned", 1, n + 1, 2 * n + 1, data);
        // two buffers: g and out share one, s alone
        let sb = storage_buffer(ctx, &s);
        let gb = storage_buffer(ctx, &[g.clone(), poison(n)].concat());
        let out = BufferRegion::at(&gb, 4 * n as u64);
        let regions = [BufferRegion::new(&sb), BufferRegion::new(&gb), out];
        assert_bits(
            &backward_on(ctx, &a, regions, n),
            &want,
            &format!("{spec} shared grad"),
        );
    }
}

#[test]
fn inputs_far_from_grad_input_are_staged_on_a_small_device() {
    // bindings of 16K floats: grad_output 20K floats away from grad_input cannot share a
    // window with it, so it is copied first; grid-stride loops with at most 4 workgroups
    let ctx = small_device();
    let n = 5000;
    let x = normal_inputs(n);
    let g = small_inputs(n);
    let a: Activation = "silu".parse().unwrap();
    let want = gpu_backward(&ctx, &a, &x, &g);
    assert_backward(&ctx, "small device: ", &a, &x, &g);
    let gap = 20_000;
    let mut data = vec![f32::from_bits(POISON_BITS); gap + 2 * n];
    data[..n].copy_from_slice(&g);
    let buf = storage_buffer(&ctx, &data);
    let sb = storage_buffer(&ctx, &x);
    let out = BufferRegion::at(&buf, 4 * (gap + n) as u64);
    let regions = [BufferRegion::new(&sb), BufferRegion::new(&buf), out];
    assert_bits(
        &backward_on(&ctx, &a, regions, n),
        &want,
        "staged grad_output",
    );
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let ctx = ctx();
    let a: Activation = "tanh".parse().unwrap();
    let err = ctx
        .call(&a, &[2])
        .run_backward(&[1.0, 2.0], &[1.0])
        .unwrap_err();
    assert!(err.to_string().contains("grad_output"), "{err}");
    let buf = storage_buffer(ctx, &[0.0; 64]);
    let r = |e: u64| BufferRegion::at(&buf, 4 * e);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    // grad_input overlapping grad_output by half
    let err = ctx
        .call(&a, &[16])
        .encode_backward(&mut encoder, r(0), r(16), r(24))
        .unwrap_err();
    assert!(err.to_string().contains("grad_output"), "{err}");
    // too long for the buffer
    let err = ctx
        .call(&a, &[40])
        .encode_backward(&mut encoder, r(0), r(16), r(32))
        .unwrap_err();
    assert!(err.to_string().contains("grad_input"), "{err}");
    assert!(ctx
        .call(&a, &[0])
        .run_backward::<f32>(&[], &[])
        .unwrap()
        .is_empty());
}

#[test]
fn random_backwards_redraw_the_forward_numbers() {
    // the same bits as the CPU mirror of this adapter's float model, on both contexts,
    // in pieces (a small device) and whole; the forward's own slopes and decisions
    let x: Vec<f32> = [normal_inputs(12_000), small_inputs(12_000), subnormals()].concat();
    let mut rng = Rng::new(3);
    let g: Vec<f32> = x.iter().map(|_| rng.log_uniform(1e-20, 1e20)).collect();
    let small = small_device();
    let contexts = [
        ("", ctx()),
        ("relaxed: ", relaxed_ctx()),
        ("small device: ", &small),
    ];
    for spec in [
        "rrelu(training=true, seed=11)",
        "noisy_relu(std=0.5, seed=4)",
    ] {
        let a: Activation = spec.parse().unwrap();
        for (what, ctx) in contexts {
            let got = gpu_backward(ctx, &a, &x, &g);
            let want = ctx
                .facts()
                .float_model()
                .backward_reference(&a, &x, &g)
                .unwrap();
            assert_bits(&got, &want, &format!("{what}{spec}"));
            // the forward drew the same numbers: rrelu's y / x is the slope g is scaled by
            let y = ctx.call(&a, &[x.len()]).run(&x).unwrap();
            for i in 0..x.len() {
                if spec.starts_with("rrelu") && x[i] < -1e-3 {
                    let slope = y[i] / x[i];
                    assert!(
                        ((got[i] / g[i]) - slope).abs() <= 1e-6 * slope,
                        "{what}{spec} {i}"
                    );
                }
                if spec.starts_with("noisy") {
                    assert_eq!(
                        got[i] == 0.0,
                        y[i] == 0.0 && !x[i].is_nan(),
                        "{what}{spec} {i}"
                    );
                }
            }
        }
    }
    // NaN passes g through; zeros draw rrelu's slope (PyTorch's noise is drawn for x <= 0)
    let a: Activation = "rrelu(training=true, seed=2)".parse().unwrap();
    let got = ctx()
        .call(&a, &[4])
        .run_backward(&[f32::NAN, 0.0, -0.0, 1.0], &[3.0; 4])
        .unwrap();
    assert_eq!(got[0], 3.0);
    assert!(got[1] < 3.0 && got[2] < 3.0 && got[3] == 3.0, "{got:?}");
}

#[test]
fn nan_and_infinite_grad_outputs_meet_every_derivative_as_the_reference_does() {
    // x over the tails and the special points, g NaN or infinite (or huge, or subnormal):
    // NaN stays NaN, an infinite g times a nonzero derivative stays infinite however far
    // below f32's range the derivative is, and times an exact 0 (an infinite x) is NaN
    let xs = [
        f32::NEG_INFINITY,
        -300.0,
        -90.0,
        -30.0,
        -1.0,
        -1e-40,
        0.0,
        1e-40,
        1.0,
        30.0,
        90.0,
        300.0,
        f32::INFINITY,
    ];
    let gs = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e38, -1e-40];
    let mut x = Vec::new();
    let mut g = Vec::new();
    for &xv in &xs {
        for &gv in &gs {
            x.push(xv);
            g.push(gv);
        }
    }
    for (what, ctx) in both_contexts() {
        for_every_op(Op::elementwise_ops(), |op| {
            let a = activation(op);
            let saved = saved_for(&a, &x);
            let got = gpu_backward(ctx, &a, &saved, &g);
            let f = op.elementwise_grad().unwrap().1;
            let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
            let bound = u64::from(op.backward().accuracy.max_ulp(true).unwrap());
            for i in 0..x.len() {
                let want = f(f64::from(saved[i]), f64::from(g[i]), &p);
                let e = accuracy::gradient_error(want, got[i], g[i], op.backward().accuracy);
                // An infinite g times a derivative below f64's range: the reference's f64
                // product is NaN (inf * 0), the kernel's scaled one infinite; either is
                // non-finite, and two infinities agree in sign. NaN g is NaN, strictly.
                let both_infinite_g = g[i].is_infinite()
                    && !want.is_finite()
                    && !got[i].is_finite()
                    && (want.is_nan() || got[i].is_nan() || (want > 0.0) == (got[i] > 0.0));
                let limit = if g[i].is_finite() { bound } else { 0 };
                if e > limit && !both_infinite_g {
                    return Err(format!(
                        "{what}{a}: saved = {:e}, g = {:e}: got {:e}, reference {want:e}",
                        saved[i], g[i], got[i]
                    ));
                }
            }
            Ok(())
        });
    }
}
