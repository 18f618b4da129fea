//! Host overhead: the cost of recording one op (pipeline lookup, bind group, uniform),
//! without submitting. Each sample records 100 encodes into one command encoder; the
//! `empty_encoder` line is the cost of the encoder alone, to subtract.
//!
//!     cargo bench --bench encode

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use wgpu_activations::{Activation, BufferRegion, Context, Direction, Storage};

const CALLS: usize = 100;

fn bench(c: &mut Criterion) {
    let ctx = Context::new().expect("an adapter (install mesa-vulkan-drivers for lavapipe)");
    let make = |label| {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: 4096 * 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (make("x"), make("y"));
    let relu: Activation = "relu".parse().unwrap();
    let softmax: Activation = "softmax".parse().unwrap();
    ctx.warm_up(
        &[relu.op(), softmax.op()],
        &[Direction::Forward],
        Storage::F32,
    )
    .unwrap();
    let mut group = c.benchmark_group(format!("encode x{CALLS} on {}", ctx.adapter_name()));
    let encoder = || ctx.device().create_command_encoder(&Default::default());
    group.bench_function("empty_encoder", |b| {
        b.iter_batched(encoder, drop, BatchSize::SmallInput)
    });
    group.bench_function("relu_4096", |b| {
        b.iter_batched(
            encoder,
            |mut e| {
                for _ in 0..CALLS {
                    ctx.call(&relu, &[4096])
                        .encode(&mut e, BufferRegion::new(&src), BufferRegion::new(&dst))
                        .unwrap();
                }
                e
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("softmax_32x128", |b| {
        b.iter_batched(
            encoder,
            |mut e| {
                for _ in 0..CALLS {
                    ctx.call(&softmax, &[32, 128])
                        .encode(&mut e, BufferRegion::new(&src), BufferRegion::new(&dst))
                        .unwrap();
                }
                e
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
