//! A hostile but fair user: every misuse returns an `Error` that names what was wrong;
//! nothing panics, nothing reaches the device's uncaptured-error handler, and no data
//! lands in the wrong buffer.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use wgpu_activations::{Activation, BufferRegion, Context, ContextOptions, Error};

/// A fresh context whose device counts the errors that reach its uncaptured handler.
fn counted_context(options: ContextOptions) -> (Context, Arc<AtomicUsize>) {
    let ctx = Context::with_options(options).expect("a context");
    let count = count_uncaptured(&ctx);
    (ctx, count)
}

/// Runs `f`, failing the test on a panic; returns its result.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: panicked"))
}

fn relu() -> Activation {
    "relu".parse().unwrap()
}

#[test]
fn buffers_of_another_context_are_refused_not_aliased() {
    let (ctx, errors) = counted_context(ContextOptions::default());
    let (other, other_errors) = counted_context(ContextOptions::default());
    // ctx's own buffers, which a foreign id could alias
    let mine_in = storage_buffer(&ctx, &[1.0; 64]);
    let mine_out = storage_buffer(&ctx, &[7.0; 64]);
    let theirs_in = storage_buffer(&other, &[-1.0; 64]);
    let theirs_out = poisoned_buffer(&other, 64);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let r = no_panic("foreign buffers", || {
        ctx.call(&relu(), &[64]).encode(
            &mut encoder,
            BufferRegion::new(&theirs_in),
            BufferRegion::new(&theirs_out),
        )
    });
    let err = r.expect_err("a foreign buffer must be an error");
    assert!(err.to_string().to_lowercase().contains("device"), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "wgpu's error is kept as the source"
    );
    ctx.queue().submit([encoder.finish()]);
    ctx.wait().unwrap();
    assert_eq!(
        ctx.download(BufferRegion::new(&mine_in), 64).unwrap(),
        vec![1.0; 64]
    );
    assert_eq!(
        ctx.download(BufferRegion::new(&mine_out), 64).unwrap(),
        vec![7.0; 64]
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    assert_eq!(other_errors.load(Ordering::SeqCst), 0);
}

#[test]
fn download_of_an_overflowing_length_is_an_error() {
    let ctx = ctx();
    let buf = storage_buffer(ctx, &[1.0; 16]);
    for (offset, len) in [
        (0, u64::MAX),
        (0, u64::MAX / 4 + 1),
        (4, u64::MAX / 4),
        (0, 17),
    ] {
        let r = no_panic("download", || {
            ctx.download(BufferRegion::at(&buf, offset), len)
        });
        match r {
            Err(Error::BufferTooSmall { .. }) => {}
            other => panic!("download({offset}, {len}): {other:?}"),
        }
    }
}

#[test]
fn an_encoder_of_another_context_is_reported_never_run() {
    // wgpu gives no way to ask an encoder for its device, so `encode` cannot refuse it
    // up front; with one wgpu instance for every context, wgpu itself rejects the
    // recording when the encoder is finished (on the encoder's device), and nothing runs.
    let (ctx, errors) = counted_context(ContextOptions::default());
    let (other, other_errors) = counted_context(ContextOptions::default());
    let x = storage_buffer(&ctx, &[-1.0; 64]);
    let y = poisoned_buffer(&ctx, 64);
    let mut foreign = other.device().create_command_encoder(&Default::default());
    let r = no_panic("foreign encoder", || {
        ctx.call(&relu(), &[64])
            .encode(&mut foreign, BufferRegion::new(&x), BufferRegion::new(&y))
    });
    no_panic("finish", || other.queue().submit([foreign.finish()]));
    other.wait().unwrap();
    ctx.wait().unwrap();
    assert!(
        r.is_err() || other_errors.load(Ordering::SeqCst) > 0,
        "the mismatch went unreported"
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
    let got = ctx.download(BufferRegion::new(&y), 64).unwrap();
    assert!(
        got.iter().all(|v| v.to_bits() == POISON_BITS),
        "the kernel ran"
    );
}

#[test]
fn a_device_too_small_for_a_kernel_says_which_limit() {
    // wgpu's downlevel limits allow 4 storage buffers per stage; dice's evaluation mode
    // binds 5.
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: ctx().limits().max_storage_buffer_binding_size,
        ..wgpu::Limits::downlevel_defaults()
    };
    let (small, errors) = no_panic("creation", || {
        counted_context(ContextOptions {
            limits: Some(limits),
            ..Default::default()
        })
    });
    // what fits still works
    let y = no_panic("relu", || small.call(&relu(), &[2]).run(&[-1.0, 2.0])).unwrap();
    assert_eq!(y, vec![0.0, 2.0]);
    let s: Activation = "softmax".parse().unwrap();
    assert!(no_panic("softmax", || small.call(&s, &[2]).run(&[1.0, 1.0])).is_ok());
    let x = vec![0.5f32; 8];
    let r = no_panic("dice train", || {
        run_dice_train(&small, &x, &[4, 2], &[0.25, 0.5], 1e-9)
    });
    assert!(r.is_ok(), "{r:?}");
    // what does not is an error naming the limit: dice's evaluation mode binds the input,
    // the output, and the running mean, variance and alpha
    let (m, v, a) = ([0.0f32; 2], [1.0f32; 2], [0.25f32; 2]);
    let r = no_panic("dice eval", || {
        run_dice_eval(&small, &x, &[4, 2], &m, &v, &a, 1e-9)
    });
    let err = r.expect_err("dice's evaluation mode needs 5 storage buffers");
    assert!(
        err.to_string()
            .contains("max_storage_buffers_per_shader_stage"),
        "{err}"
    );
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}

#[test]
fn auxiliary_buffers_in_the_output_buffer_are_refused() {
    // wgpu refuses one dispatch that binds a buffer read-only and writable, whatever the
    // ranges: that used to reach the device's handler at submit
    let (ctx, errors) = counted_context(ContextOptions::default());
    let buf = storage_buffer(&ctx, &[0.5; 64]);
    let other = storage_buffer(&ctx, &[0.5; 64]);
    let at = |elements: u64| BufferRegion::at(&buf, elements * 4);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = no_panic("prelu", || {
        ctx.call(&prelu_op(), &[2, 4, 2])
            .params(Params::Prelu {
                weight: ParamTensor::Buffer(at(40), 4),
            })
            .encode(&mut encoder, at(0), at(16))
    })
    .expect_err("weights in the output's buffer");
    assert!(
        matches!(e, Error::SharesOutputBuffer { role: "weights" }),
        "{e}"
    );
    let stats = |mean, var, alpha| DiceEval {
        mean,
        var,
        alpha,
        eps: 1e-9,
    };
    let o = BufferRegion::new(&other);
    for (s, role) in [
        (stats(at(50), o, o), "running mean"),
        (stats(o, at(50), o), "running variance"),
        (stats(o, o, at(50)), "alpha"),
    ] {
        let e = no_panic("dice eval", || {
            encode_dice_eval(&ctx, &mut encoder, at(0), at(32), s, &[4, 2])
        })
        .expect_err("statistics in the output's buffer");
        assert!(e.to_string().contains(role), "{role}: {e}");
    }
    let e = no_panic("dice train", || {
        encode_dice_train(&ctx, &mut encoder, at(0), at(32), at(50), 1e-9, &[4, 2])
    })
    .expect_err("alpha in the output's buffer");
    assert!(e.to_string().contains("alpha"), "{e}");
    // the input's buffer is fine for the weights (both read-only)
    ctx.call(&prelu_op(), &[2, 4, 2])
        .params(Params::Prelu {
            weight: ParamTensor::Buffer(at(40), 4),
        })
        .encode(&mut encoder, at(0), o)
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.wait().unwrap();
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}

#[test]
fn a_grouped_op_in_place_says_it_cannot_run_in_place() {
    let ctx = ctx();
    let buf = storage_buffer(ctx, &[1.0; 16]);
    let r = BufferRegion::new(&buf);
    let a: Activation = "maxout(k=2)".parse().unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = ctx.call(&a, &[16]).encode(&mut encoder, r, r).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("cannot run in place"), "{text}");
    assert!(!text.contains("identical ranges"), "{text}");
}

#[test]
fn a_row_past_splits_loop_budget_takes_split_registers_on_auto() {
    // One row of 75M elements: Split's few long chunks would pass lavapipe's loop budget,
    // so Auto takes SplitRegisters (chunks of at most 8,192), which stays within it. The
    // row still exceeds one storage binding here: that error says so, and does not
    // suggest Auto.
    let ctx = ctx();
    if ctx.facts().loop_budget.is_none() {
        eprintln!("skipping: this adapter has no loop budget");
        return;
    }
    let n: u64 = 75_000_000;
    if n * 4 > ctx.limits().max_buffer_size {
        eprintln!("skipping: a {n}-element buffer does not fit this device");
        return;
    }
    let view = wgpu_activations::RowView::new(&[n as usize], -1, n as usize).unwrap();
    assert!(!serves(ctx, wgpu_activations::Strategy::Split, view));
    assert!(serves(
        ctx,
        wgpu_activations::Strategy::SplitRegisters,
        view
    ));
    assert_eq!(
        auto_strategy(ctx, view),
        wgpu_activations::Strategy::SplitRegisters
    );
    let buf = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: n * 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let r = BufferRegion::new(&buf);
    let softmax: Activation = "softmax".parse().unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = ctx
        .call(&softmax, &[n as usize])
        .strategy(wgpu_activations::Strategy::Auto)
        .encode(&mut encoder, r, r)
        .expect_err("one 300 MB row exceeds a 128 MiB binding");
    let text = e.to_string();
    assert!(!text.contains("use Strategy::Auto"), "{text}");
    assert!(text.contains("binding limit"), "{text}");
}

/// One entry point that records on regions: (name, call with input, output, element count).
type Entry<'a> = (
    &'static str,
    Box<
        dyn Fn(
                &mut wgpu::CommandEncoder,
                BufferRegion<'_>,
                BufferRegion<'_>,
                usize,
            ) -> Result<(), Error>
            + 'a,
    >,
);

/// The entry points that record on regions, forward and backward. `aux` holds weights,
/// alphas or statistics; the backward ones read grad_output from `grad` (or take the
/// misused region as grad_output, for a second entry) and write weight and alpha
/// gradients to `gw`.
fn entry_points<'a>(
    ctx: &'a Context,
    aux: &'a wgpu::Buffer,
    grad: &'a wgpu::Buffer,
    gw: &'a wgpu::Buffer,
) -> Vec<Entry<'a>> {
    let aux = BufferRegion::new(aux);
    let (g, gw) = (BufferRegion::new(grad), BufferRegion::new(gw));
    let rrelu: Activation = "rrelu(training=true)".parse().unwrap();
    let mut entries = backward_entry_points(ctx, aux, g, gw);
    entries.push((
        "encode_backward rrelu(training=true)",
        Box::new(move |e, x, y, n| ctx.call(&rrelu, &[n]).encode_backward(e, x, g, y)),
    ));
    entries.extend(forward_entry_points(ctx, aux));
    entries
}

fn backward_entry_points<'a>(
    ctx: &'a Context,
    aux: BufferRegion<'a>,
    g: BufferRegion<'a>,
    gw: BufferRegion<'a>,
) -> Vec<Entry<'a>> {
    let spec = |s: &str| s.parse::<Activation>().unwrap();
    let (gelu, softmax, maxout) = (spec("gelu"), spec("softmax"), spec("maxout(k=2)"));
    vec![
        (
            "encode_backward, misused saved tensor",
            Box::new(move |e, x, y, n| ctx.call(&gelu, &[n]).encode_backward(e, x, g, y)),
        ),
        (
            "encode_backward, misused grad_output",
            Box::new(move |e, x, y, n| ctx.call(&gelu, &[n]).encode_backward(e, g, x, y)),
        ),
        (
            "encode_backward_shaped softmax",
            Box::new(move |e, x, y, n| ctx.call(&softmax, &[2, n / 2]).encode_backward(e, x, g, y)),
        ),
        (
            "encode_backward_shaped maxout",
            Box::new(move |e, x, y, n| ctx.call(&maxout, &[n]).encode_backward(e, x, g, y)),
        ),
        (
            "encode_prelu_backward",
            Box::new(move |e, x, y, n| {
                let r = PreluGradRegions {
                    x,
                    grad_output: g,
                    grad_input: y,
                    weight: aux,
                    grad_weight: gw,
                };
                encode_prelu_backward(ctx, e, r, 1, &[n])
            }),
        ),
        (
            "encode_dice_backward",
            Box::new(move |e, x, y, n| {
                let r = DiceGrad {
                    x,
                    grad_output: g,
                    grad_input: y,
                    alpha: aux,
                    grad_alpha: gw,
                };
                let stats = DiceStats::Batch { eps: 1e-9 };
                encode_dice_backward(ctx, e, r, stats, &[n / 2, 2])
            }),
        ),
    ]
}

fn forward_entry_points<'a>(ctx: &'a Context, aux: BufferRegion<'a>) -> Vec<Entry<'a>> {
    let spec = |s: &str| s.parse::<Activation>().unwrap();
    let (gelu, softmax, maxout, glu) = (
        spec("gelu"),
        spec("softmax"),
        spec("maxout(k=2)"),
        spec("glu"),
    );
    vec![
        (
            "encode",
            Box::new(move |e, x, y, n| ctx.call(&gelu, &[n]).encode(e, x, y)),
        ),
        (
            "encode_shaped softmax",
            Box::new(move |e, x, y, n| ctx.call(&softmax, &[2, n / 2]).encode(e, x, y)),
        ),
        (
            "encode_rows",
            Box::new({
                let softmax = spec("log_softmax");
                move |e, x, y, n| {
                    ctx.call(&softmax, &[n])
                        .strategy(wgpu_activations::Strategy::Auto)
                        .encode(e, x, y)
                }
            }),
        ),
        (
            "encode_shaped maxout",
            Box::new(move |e, x, y, n| ctx.call(&maxout, &[n]).encode(e, x, y)),
        ),
        (
            "encode_shaped glu",
            Box::new(move |e, x, y, n| ctx.call(&glu, &[n]).encode(e, x, y)),
        ),
        (
            "encode_prelu",
            Box::new(move |e, x, y, n| {
                ctx.call(&prelu_op(), &[n])
                    .params(Params::Prelu {
                        weight: ParamTensor::Buffer(aux, 1),
                    })
                    .encode(e, x, y)
            }),
        ),
        (
            "encode_dice_train",
            Box::new(move |e, x, y, n| encode_dice_train(ctx, e, x, y, aux, 1e-9, &[n / 2, 2])),
        ),
        (
            "encode_dice_eval",
            Box::new(move |e, x, y, n| {
                let stats = DiceEval {
                    mean: aux,
                    var: aux,
                    alpha: aux,
                    eps: 1e-9,
                };
                encode_dice_eval(ctx, e, x, y, stats, &[n / 2, 2])
            }),
        ),
    ]
}

#[test]
fn every_entry_point_refuses_every_misuse_with_a_message() {
    let (ctx, errors) = counted_context(ContextOptions::default());
    let (other, other_errors) = counted_context(ContextOptions::default());
    let n = 64usize;
    let aux = storage_buffer(&ctx, &[0.5; 64]);
    let grad = storage_buffer(&ctx, &[1.0; 64]);
    let gw = storage_buffer(&ctx, &[0.0; 64]);
    let good_in = storage_buffer(&ctx, &vec![0.25; n]);
    let good_out = poisoned_buffer(&ctx, n);
    let no_storage = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 4 * n as u64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let short = storage_buffer(&ctx, &[0.0; 8]); // short of every output, grouped ones too
    let foreign = storage_buffer(&other, &vec![0.0; n]);
    let shared = storage_buffer(&ctx, &vec![0.0; 2 * n]);
    let mapped = mapped_storage_buffer(&ctx, n);
    let destroyed = storage_buffer(&ctx, &vec![0.0; n]);
    destroyed.destroy();
    let r = BufferRegion::new;
    // (misuse, input, output, what the message must say)
    let cases: Vec<(&str, BufferRegion, BufferRegion, &str)> = vec![
        (
            "input without STORAGE",
            r(&no_storage),
            r(&good_out),
            "usage",
        ),
        (
            "output without STORAGE",
            r(&good_in),
            r(&no_storage),
            "usage",
        ),
        ("output too short", r(&good_in), r(&short), "too small"),
        ("input too short", r(&short), r(&good_out), "too small"),
        (
            "misaligned input",
            BufferRegion::at(&shared, 2),
            r(&good_out),
            "multiple of 4",
        ),
        (
            "misaligned output",
            r(&good_in),
            BufferRegion::at(&shared, 6),
            "multiple of 4",
        ),
        (
            "overlapping ranges",
            BufferRegion::at(&shared, 0),
            BufferRegion::at(&shared, 16),
            "overlap",
        ),
        ("foreign input", r(&foreign), r(&good_out), "device"),
        ("foreign output", r(&good_in), r(&foreign), "device"),
        ("mapped input", r(&mapped), r(&good_out), "still mapped"),
        ("mapped output", r(&good_in), r(&mapped), "still mapped"),
        ("destroyed input", r(&destroyed), r(&good_out), "destroyed"),
        ("destroyed output", r(&good_in), r(&destroyed), "destroyed"),
    ];
    for (name, call) in entry_points(&ctx, &aux, &grad, &gw) {
        for (misuse, x, y, says) in &cases {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            let result = no_panic(&format!("{name}: {misuse}"), || {
                call(&mut encoder, *x, *y, n)
            });
            let e = result.expect_err(&format!("{name}: {misuse} must be an error"));
            let text = e.to_string().to_lowercase();
            assert!(
                text.contains(says),
                "{name}: {misuse}: `{e}` does not say `{says}`"
            );
            ctx.queue().submit([encoder.finish()]);
        }
        // and the good call works
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        call(&mut encoder, r(&good_in), r(&good_out), n).unwrap_or_else(|e| panic!("{name}: {e}"));
        ctx.queue().submit([encoder.finish()]);
    }
    ctx.wait().unwrap();
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "errors reached the device's handler"
    );
    assert_eq!(other_errors.load(Ordering::SeqCst), 0);
}

/// A `STORAGE | COPY_SRC` buffer of `n` f32 created mapped and left mapped.
fn mapped_storage_buffer(ctx: &Context, n: usize) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("left mapped"),
        size: 4 * n as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: true,
    })
}

#[test]
fn mapped_and_destroyed_buffers_are_refused_up_front_and_unmapped_ones_run() {
    let (ctx, errors) = counted_context(ContextOptions::default());
    let n = 64;
    let x = mapped_storage_buffer(&ctx, n);
    x.slice(..)
        .get_mapped_range_mut()
        .unwrap()
        .copy_from_slice(bytemuck::cast_slice(&[-2.0f32; 64]));
    let y = poisoned_buffer(&ctx, n);
    let weight = mapped_storage_buffer(&ctx, 1);
    let r = BufferRegion::new;
    let run = |call: wgpu_activations::Call<'_>, x, y| {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        call.encode(&mut encoder, x, y)?;
        ctx.queue().submit([encoder.finish()]);
        Ok::<_, Error>(())
    };
    let prelu = |x, y| {
        let call = ctx.call(&prelu_op(), &[n]).params(Params::Prelu {
            weight: ParamTensor::Buffer(r(&weight), 1),
        });
        run(call, x, y)
    };
    for (what, result) in [
        (
            "encode, mapped input",
            run(ctx.call(&relu(), &[n]), r(&x), r(&y)),
        ),
        (
            "encode, mapped output",
            run(ctx.call(&relu(), &[n]), r(&y), r(&x)),
        ),
        ("download, mapped source", ctx.download(r(&x), 4).map(drop)),
        ("prelu, mapped weight", prelu(r(&y), r(&y))),
    ] {
        let e = no_panic(what, || result).expect_err(what);
        assert!(matches!(e, Error::BufferMapped { .. }), "{what}: {e:?}");
        assert!(
            e.to_string().contains("unmap()"),
            "{what}: says what to do: {e}"
        );
    }
    // once unmapped, the same buffers run and give the data written while mapped
    x.unmap();
    weight
        .slice(..)
        .get_mapped_range_mut()
        .unwrap()
        .copy_from_slice(&0.5f32.to_le_bytes());
    weight.unmap();
    prelu(r(&x), r(&y)).unwrap();
    assert_eq!(ctx.download(r(&y), 64).unwrap(), vec![-1.0; 64]);
    // a buffer destroyed after a call that cached its binding: refused once the cache
    // lets it go, as docs/calls.md asks (a cached bind group is not asked again)
    y.destroy();
    ctx.release_cached_bindings();
    let e = prelu(r(&x), r(&y)).expect_err("a destroyed output");
    assert!(
        matches!(e, Error::BufferDestroyed { role: "output" }),
        "{e:?}"
    );
    let e = ctx.download(r(&y), 4).expect_err("a destroyed source");
    assert!(matches!(e, Error::BufferDestroyed { .. }), "{e:?}");
    ctx.wait().unwrap();
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "errors reached the device's handler"
    );
}

#[test]
fn errors_keep_their_causes() {
    let e = wgpu_activations::shader::validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(matches!(e, Error::Shader { .. }), "{e:?}");
    assert!(
        std::error::Error::source(&e).is_some(),
        "naga's error is the source"
    );
    assert!(
        e.to_string().contains("return 1u"),
        "the report shows the line: {e}"
    );
}
