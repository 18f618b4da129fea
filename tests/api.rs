//! The API's contracts: error variants for bad input, thread safety, the pipeline cache.

mod common;

use std::sync::Arc;

use common::*;
use wgpu_activations::{Activation, BufferRegion, Context, Error, Op};

fn buffer(ctx: &Context, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage,
        mapped_at_creation: false,
    })
}

fn encode(
    ctx: &Context,
    input: BufferRegion<'_>,
    output: BufferRegion<'_>,
    len: u64,
) -> Result<(), Error> {
    let relu: Activation = "relu".parse().unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let r = ctx
        .call(&relu, &[len as usize])
        .encode(&mut encoder, input, output);
    // Whatever was recorded must be valid: a wgpu validation error would panic here.
    ctx.queue().submit([encoder.finish()]);
    ctx.wait().unwrap();
    r
}

const RW: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC);

#[test]
fn encode_rejects_buffer_without_storage_usage() {
    let ctx = ctx();
    let good = buffer(ctx, 64, RW);
    let bad = buffer(ctx, 64, wgpu::BufferUsages::COPY_DST);
    let e = encode(ctx, BufferRegion::new(&bad), BufferRegion::new(&good), 16).unwrap_err();
    assert!(
        matches!(e, Error::MissingUsage { role: "input", .. }),
        "{e}"
    );
    let e = encode(ctx, BufferRegion::new(&good), BufferRegion::new(&bad), 16).unwrap_err();
    assert!(
        matches!(e, Error::MissingUsage { role: "output", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("STORAGE"), "{e}");
}

#[test]
fn encode_rejects_an_output_too_short() {
    let ctx = ctx();
    let a = buffer(ctx, 64, RW);
    let b = buffer(ctx, 60, RW);
    let e = encode(ctx, BufferRegion::new(&a), BufferRegion::new(&b), 16).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BufferTooSmall {
                role: "output",
                needed: 64,
                size: 60,
                ..
            }
        ),
        "{e}"
    );
    let e = encode(ctx, BufferRegion::at(&a, 8), BufferRegion::new(&b), 15).unwrap_err();
    assert!(
        matches!(e, Error::BufferTooSmall { role: "input", .. }),
        "{e}"
    );
    let e = encode(ctx, BufferRegion::new(&a), BufferRegion::new(&b), u64::MAX).unwrap_err();
    assert!(matches!(e, Error::BufferTooSmall { .. }), "{e}");
}

#[test]
fn encode_rejects_a_misaligned_offset() {
    let ctx = ctx();
    let a = buffer(ctx, 64, RW);
    let b = buffer(ctx, 64, RW);
    let e = encode(ctx, BufferRegion::at(&a, 2), BufferRegion::new(&b), 4).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Misaligned {
                role: "input",
                offset: 2,
                element: 4
            }
        ),
        "{e}"
    );
}

#[test]
fn encode_rejects_overlapping_ranges_of_one_buffer() {
    let ctx = ctx();
    let a = buffer(ctx, 256, RW);
    let e = encode(ctx, BufferRegion::new(&a), BufferRegion::at(&a, 16), 16).unwrap_err();
    assert!(matches!(e, Error::Overlap { .. }), "{e}");
}

#[test]
fn encode_of_zero_elements_records_nothing_but_still_validates() {
    let ctx = ctx();
    let a = buffer(ctx, 16, RW);
    encode(ctx, BufferRegion::new(&a), BufferRegion::new(&a), 0).unwrap();
    let bad = buffer(ctx, 16, wgpu::BufferUsages::COPY_DST);
    assert!(encode(ctx, BufferRegion::new(&bad), BufferRegion::new(&a), 0).is_err());
}

#[test]
fn run_into_rejects_a_length_mismatch() {
    let relu: Activation = "relu".parse().unwrap();
    let mut out = [0.0; 2];
    let e = ctx()
        .call(&relu, &[3])
        .run_into(&[1.0f32, 2.0, 3.0], &mut out)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::LengthMismatch {
                input: 3,
                output: 2
            }
        ),
        "{e}"
    );
}

#[test]
fn download_rejects_a_buffer_it_cannot_copy() {
    let ctx = ctx();
    let a = buffer(ctx, 16, wgpu::BufferUsages::STORAGE);
    let e = ctx.download(BufferRegion::new(&a), 4).unwrap_err();
    assert!(matches!(e, Error::MissingUsage { .. }), "{e}");
}

#[test]
fn require_features_names_what_the_device_lacks() {
    // A device created without SHADER_F16, whatever the adapter supports.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default())).unwrap();
    let ctx = Context::from_device(device, queue);
    let e = ctx
        .require_features(wgpu::Features::SHADER_F16)
        .unwrap_err();
    assert!(matches!(e, Error::MissingFeature { .. }), "{e}");
    assert!(e.to_string().contains("SHADER_F16"), "{e}");
    ctx.require_features(wgpu::Features::empty()).unwrap();
    // The caller's device works like an owned one.
    let gelu: Activation = "gelu".parse().unwrap();
    let input = normal_inputs(1001);
    let out = gpu_apply(&ctx, &gelu, &input);
    assert_within(&gelu, &input, &out, bound(&gelu), "caller's device");
}

#[test]
fn threads_sharing_a_context_get_identical_results_and_compile_once() {
    let ctx = Arc::new(Context::new().unwrap());
    let ops = [Op::Gelu, Op::Mish, Op::Softplus, Op::Tanh];
    let input = Arc::new(normal_inputs(50_001));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (ctx, input) = (ctx.clone(), input.clone());
            std::thread::spawn(move || {
                ops.iter()
                    .map(|&op| {
                        ctx.call(&Activation::new(op).unwrap(), &[input.len()])
                            .run(&input)
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &results[1..] {
        for (a, b) in r.iter().zip(&results[0]) {
            assert!(a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
    // 4 ops x 2 entry points (vec4 body, scalar tail), each compiled exactly once.
    let stats = ctx.cache_stats();
    assert_eq!(stats.misses, 8, "{stats:?}");
    assert_eq!(stats.hits, 8 * 4 * 2 - 8, "{stats:?}");
}

#[test]
fn changing_a_parameter_compiles_nothing() {
    let ctx = Context::new().unwrap();
    let x = normal_inputs(1000);
    ctx.call(
        &"leaky_relu(negative_slope=0.1)".parse().unwrap(),
        &[x.len()],
    )
    .run(&x)
    .unwrap();
    let before = ctx.cache_stats().misses;
    let a: Activation = "leaky_relu(negative_slope=0.3)".parse().unwrap();
    let y = ctx.call(&a, &[x.len()]).run(&x).unwrap();
    assert_eq!(ctx.cache_stats().misses, before);
    assert_within(&a, &x, &y, 0, "new parameter");
}

#[test]
fn warm_up_compiles_every_variant_once() {
    let ctx = Context::new().unwrap();
    ctx.warm_up(&[Op::Gelu], &[Direction::Forward], Storage::F32)
        .unwrap();
    assert_eq!(ctx.cache_stats().misses, 4);
    ctx.call(&"gelu".parse().unwrap(), &[5])
        .run(&[1.0, 2.0, 3.0, 4.0, 5.0])
        .unwrap();
    assert_eq!(ctx.cache_stats().misses, 4);
    // softmax: 11 strategy entry points (Registers has two, SplitRegisters four) x 2
    // layouts, and one subgroup-per-row entry point x 2 layouts where the device has
    // subgroups
    let row_entries = if ctx.facts().subgroups { 24 } else { 22 };
    ctx.warm_up(&[Op::Softmax], &[Direction::Forward], Storage::F32)
        .unwrap();
    assert_eq!(ctx.cache_stats().misses, 4 + row_entries);
    ctx.call(&"softmax".parse().unwrap(), &[2, 2])
        .run(&[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    assert_eq!(ctx.cache_stats().misses, 4 + row_entries);
    ctx.warm_up(&[], &[Direction::Forward], Storage::F32)
        .unwrap();
    let elementwise = Op::elementwise_ops().count() as u64;
    let softmax = Op::softmax_ops().count() as u64;
    // one layout; a lane and a workgroup entry point
    let grouped = 2 * Op::grouped_ops().count() as u64;
    // + the per-channel PReLU kernel and the random kernel, in both layouts
    let random = Op::ALL.iter().filter(|o| o.random().is_some()).count() as u64;
    // and dice's eleven entry points (three elementwise passes, and the statistics' four
    // passes for either bind group 1) in both layouts
    assert_eq!(
        ctx.cache_stats().misses,
        4 * elementwise + row_entries * softmax + grouped + 2 + 2 * random + 22
    );
}

#[test]
fn repeated_encodes_reuse_bind_groups_and_stay_correct() {
    let ctx = Context::new().unwrap();
    let x: Vec<f32> = (0..1000).map(|i| i as f32 / 50.0 - 10.0).collect();
    let src = storage_buffer(&ctx, &x);
    let dst = poisoned_buffer(&ctx, x.len());
    let run = |a: &Activation| {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        ctx.call(a, &[1000])
            .encode(
                &mut encoder,
                BufferRegion::new(&src),
                BufferRegion::new(&dst),
            )
            .unwrap();
        ctx.queue().submit([encoder.finish()]);
        ctx.download(BufferRegion::new(&dst), 1000).unwrap()
    };
    let relu: Activation = "relu".parse().unwrap();
    let leaky: Activation = "leaky_relu(negative_slope=0.2)".parse().unwrap();
    let before = ctx.cached_bindings();
    for a in [&relu, &leaky, &relu, &leaky] {
        let y = run(a);
        assert_within(a, &x, &y, 0, "repeated encode");
    }
    // one bind group per distinct call (the parameters are part of it)
    assert_eq!(ctx.cached_bindings(), before + 2);
    ctx.release_cached_bindings();
    assert_eq!(ctx.cached_bindings(), 0);
    assert_within(&relu, &x, &run(&relu), 0, "after release");
    // the convenience API keeps nothing: its buffers never come back
    let n = ctx.cached_bindings();
    for _ in 0..3 {
        ctx.call(&relu, &[x.len()]).run(&x).unwrap();
        ctx.call(&"softmax".parse().unwrap(), &[10, 100])
            .run(&x)
            .unwrap();
    }
    assert_eq!(ctx.cached_bindings(), n);
}

#[test]
fn pipeline_cache_file_round_trips() {
    let dir = std::env::temp_dir().join(format!("wgpu-activations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipelines.bin");
    let _ = std::fs::remove_file(&path);
    let options = || wgpu_activations::ContextOptions {
        pipeline_cache: Some(path.clone()),
        ..Default::default()
    };
    let x = [-1.0f32, 0.5, 2.0];
    let gelu: Activation = "gelu".parse().unwrap();
    let first = Context::with_options(options()).unwrap();
    let y = first.call(&gelu, &[x.len()]).run(&x).unwrap();
    let saved = first.save_pipeline_cache().unwrap();
    assert_eq!(saved, first.has_pipeline_cache());
    if first.has_pipeline_cache() {
        assert!(path.exists(), "the cache file was not written");
        // A second context starts from the file and computes the same bits.
        let second = Context::with_options(options()).unwrap();
        assert!(second.has_pipeline_cache());
        let y2 = second.call(&gelu, &[x.len()]).run(&x).unwrap();
        assert_eq!(
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            y2.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // An unreadable path is an error, not a panic.
    let bad = Context::with_options(wgpu_activations::ContextOptions {
        pipeline_cache: Some(dir.clone()), // a directory
        ..Default::default()
    });
    if first.has_pipeline_cache() {
        // an I/O error that names the file and keeps the OS error as its source
        match bad {
            Err(e @ wgpu_activations::Error::Io { .. }) => {
                assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
                assert!(std::error::Error::source(&e).is_some());
            }
            other => panic!("expected an I/O error, got {:?}", other.err()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warm_up_backward_compiles_what_a_backward_call_needs() {
    let ctx = Context::new().unwrap();
    ctx.warm_up(
        &[Op::Gelu, Op::Softmax],
        &[Direction::Backward],
        Storage::F32,
    )
    .unwrap();
    let compiled = ctx.cache_stats().misses;
    // four layouts (separate, in place on grad_output or on the saved tensor, one buffer)
    // of the vec4 and scalar entry points, and the row backward's strategies
    let rows = if ctx.facts().subgroups { 5 } else { 4 };
    assert_eq!(compiled, 4 * 2 + 4 * rows);
    let gelu: Activation = "gelu".parse().unwrap();
    ctx.call(&gelu, &[5])
        .run_backward(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1.0; 5])
        .unwrap();
    let softmax: Activation = "softmax".parse().unwrap();
    ctx.call(&softmax, &[2, 2])
        .run_backward(&[0.25; 4], &[1.0; 4])
        .unwrap();
    assert_eq!(
        ctx.cache_stats().misses,
        compiled,
        "nothing compiled after warm-up"
    );
}
