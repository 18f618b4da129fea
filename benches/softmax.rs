//! The softmax family per strategy, for row lengths 32 to 1,048,576 at 1M f32 elements in
//! all, beside a `copy_buffer_to_buffer` of the same bytes (the floor: one read and one
//! write), on the adapter `Context::new` picks. Each sample is encode + submit + wait.
//!
//!     cargo bench --bench softmax [-- FILTER]      e.g. -- 'rows of 1024'
//!
//! copy time / softmax time is the fraction of the floor a strategy reaches. On a CPU
//! adapter (lavapipe) the workgroup strategies are skipped for more than 4,096 rows: each
//! workgroup costs about 0.1 ms of barrier switching there, so a sample takes seconds.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgpu_activations::{Activation, BufferRegion, Context, Direction, Storage, Strategy};

const N: usize = 1 << 20;

fn bench(c: &mut Criterion) {
    let ctx = Context::new().expect("an adapter (install mesa-vulkan-drivers for lavapipe)");
    let cpu = ctx
        .adapter_info()
        .is_some_and(|i| i.device_type == wgpu::DeviceType::Cpu);
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let make = |label| {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (N * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (make("bench input"), make("bench output"));
    let data: Vec<f32> = (0..N).map(|i| (i % 4001) as f32 / 40.0 - 50.0).collect();
    ctx.queue()
        .write_buffer(&src, 0, bytemuck::cast_slice(&data));
    ctx.warm_up(&[], &[Direction::Forward], Storage::F32)
        .unwrap();
    let softmax: Activation = "softmax".parse().unwrap();

    for axis in [32usize, 128, 1024, 4096, 65_536, 1 << 20] {
        let rows = N / axis;
        let shape = [rows, axis];
        let mut group = c.benchmark_group(format!(
            "softmax 1M: {rows} rows of {axis} on {}",
            ctx.adapter_name()
        ));
        group.sample_size(10);
        group.throughput(Throughput::Bytes(2 * N as u64 * 4));
        group.bench_function("copy", |b| {
            b.iter(|| {
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, (N * 4) as u64);
                ctx.queue().submit([encoder.finish()]);
                ctx.wait().unwrap();
            })
        });
        let plan = |s: Strategy| {
            ctx.call(&softmax, &shape)
                .strategy(s)
                .row_plan(Direction::Forward, Storage::F32)
        };
        let auto = plan(Strategy::Auto).unwrap().strategy;
        for strategy in [Strategy::Auto].into_iter().chain(Strategy::ALL) {
            let resolved = if strategy == Strategy::Auto {
                auto
            } else {
                strategy
            };
            let slow = cpu && rows > 4096 && resolved != Strategy::Lane;
            if plan(strategy).is_err() || slow {
                continue;
            }
            let name = match strategy {
                Strategy::Auto => format!("auto ({auto:?})"),
                s => format!("{s:?}"),
            };
            group.bench_function(name, |b| {
                b.iter(|| {
                    let mut encoder = ctx.device().create_command_encoder(&Default::default());
                    ctx.call(&softmax, &shape)
                        .strategy(strategy)
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
