//! Every elementwise op at 16M f32 elements, beside a `copy_buffer_to_buffer` of the same
//! bytes (the memory floor: one read and one write), on the adapter `Context::new` picks.
//! Each sample is encode + submit + wait, so it includes the submission's fixed cost.
//!
//!     cargo bench --bench elementwise [-- FILTER]
//!
//! Compare an op's time with `copy_16M` from the same run: copy time / op time is the
//! fraction of the floor the kernel reaches.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgpu_activations::{Activation, BufferRegion, Context, Direction, Op, Storage};

const N: u64 = 16 * 1024 * 1024;

fn bench(c: &mut Criterion) {
    let ctx = Context::new().expect("an adapter (install mesa-vulkan-drivers for lavapipe)");
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let make = |label| {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: N * 4,
            usage,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (make("bench input"), make("bench output"));
    let data: Vec<f32> = (0..N).map(|i| (i % 4001) as f32 / 200.0 - 10.0).collect();
    ctx.queue()
        .write_buffer(&src, 0, bytemuck::cast_slice(&data));
    ctx.warm_up(&[], &[Direction::Forward], Storage::F32)
        .unwrap();

    let mut group = c.benchmark_group(format!("elementwise_16M on {}", ctx.adapter_name()));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(2 * N * 4));
    group.bench_function("copy_16M", |b| {
        b.iter(|| {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, N * 4);
            ctx.queue().submit([encoder.finish()]);
            ctx.wait().unwrap();
        })
    });
    for op in Op::elementwise_ops() {
        let a = Activation::example(op);
        group.bench_function(a.to_string(), |b| {
            b.iter(|| {
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                ctx.call(&a, &[N as usize])
                    .encode(
                        &mut encoder,
                        BufferRegion::new(&src),
                        BufferRegion::new(&dst),
                    )
                    .unwrap();
                ctx.queue().submit([encoder.finish()]);
                ctx.wait().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
