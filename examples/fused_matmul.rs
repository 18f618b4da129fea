//! A user's own kernel with an activation fused into it: a small tiled WGSL matmul whose
//! epilogue adds a bias and applies `gelu` through the function the crate exports
//! (`Context::wgsl_function`), checked against the CPU and against the crate's own
//! fused bias + gelu kernel on the plain matmul's output (the same bits), and timed beside
//! that two-kernel path.
//!
//! ```text
//! cargo run --release --example fused_matmul -- [--size N] [--samples S] [--spec SPEC]
//! ```
//!
//! `--size N` multiplies two N x N matrices (default 256, a multiple of 16); `--spec` names
//! the activation (default `gelu`); prints the largest error against an f64 reference,
//! whether the epilogue gave the crate's bits, and the two paths' times (wall clock,
//! median of `--samples`, default 5).

use std::time::Instant;

use wgpu::util::DeviceExt;
use wgpu_activations::{Activation, BufferRegion, Context, Params};

/// The matmul, as a user writes it: 16 x 16 tiles in workgroup memory, one output per
/// invocation; with `EPILOGUE` the output is `act(acc + bias[col])`, else `acc`.
const MATMUL: &str = "
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> size: vec4<u32>;

var<workgroup> tile_a: array<array<f32, 16>, 16>;
var<workgroup> tile_b: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    act_init(f32(min(size.x, 1u)));
    let n = size.x;
    let row = gid.y;
    let col = gid.x;
    var acc = 0.0;
    for (var t = 0u; t < n; t += 16u) {
        tile_a[lid.y][lid.x] = a[row * n + t + lid.x];
        tile_b[lid.y][lid.x] = b[(t + lid.y) * n + col];
        workgroupBarrier();
        for (var k = 0u; k < 16u; k++) {
            acc = acc + tile_a[lid.y][k] * tile_b[k][lid.x];
        }
        workgroupBarrier();
    }
    if (EPILOGUE) {
        y[row * n + col] = act(acc + bias[col]);
    } else {
        y[row * n + col] = acc;
    }
}
";

struct Args {
    size: usize,
    samples: usize,
    spec: String,
}

fn parse_args() -> Args {
    let mut args = Args {
        size: 256,
        samples: 5,
        spec: "gelu".to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--size" => args.size = value.parse().unwrap_or_else(|_| fail("--size N")),
            "--samples" => args.samples = value.parse().unwrap_or_else(|_| fail("--samples S")),
            "--spec" => args.spec = value,
            other => fail(&format!("unknown argument `{other}`")),
        }
    }
    if args.size == 0 || !args.size.is_multiple_of(16) {
        fail("--size must be a positive multiple of 16");
    }
    args
}

fn fail(msg: &str) -> ! {
    eprintln!("fused_matmul: {msg}\nusage: fused_matmul [--size N] [--samples S] [--spec SPEC]");
    std::process::exit(2)
}

/// The matmul pipeline, with or without the epilogue.
fn pipeline(ctx: &Context, act: &str, epilogue: bool) -> wgpu::ComputePipeline {
    let source = format!("{act}\nconst EPILOGUE: bool = {epilogue};\n{MATMUL}");
    wgpu_activations::shader::validate_wgsl(&source).expect("the user's kernel validates");
    let module = ctx
        .compile_wgsl("user matmul", &source)
        .expect("the kernel compiles");
    ctx.device()
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("user matmul"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
}

/// Median wall-clock seconds of `samples` submissions of `record`, after a warm-up.
fn time(ctx: &Context, samples: usize, record: &dyn Fn(&mut wgpu::CommandEncoder)) -> f64 {
    let mut times: Vec<f64> = (0..=samples)
        .map(|_| {
            let mut encoder = ctx.device().create_command_encoder(&Default::default());
            record(&mut encoder);
            let start = Instant::now();
            ctx.queue().submit([encoder.finish()]);
            ctx.wait().expect("the GPU finished");
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.remove(0);
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args = parse_args();
    let ctx = Context::new().unwrap_or_else(|e| fail(&e.to_string()));
    let a: Activation = args.spec.parse().unwrap_or_else(|e| fail(&format!("{e}")));
    let act = ctx
        .wgsl_function(&a, "act")
        .unwrap_or_else(|e| fail(&e.to_string()));
    let n = args.size;
    let value = |i: usize, s: usize| ((i * s) % 1013) as f32 / 1013.0 - 0.5;
    let (xa, xb) = (
        (0..n * n).map(|i| value(i, 7)).collect::<Vec<_>>(),
        (0..n * n).map(|i| value(i, 11)).collect::<Vec<_>>(),
    );
    let bias: Vec<f32> = (0..n).map(|i| value(i, 13) * 4.0).collect();
    let device = ctx.device();
    let input = |data: &[f32], usage| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage,
        })
    };
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let (ba, bb, bbias) = (
        input(&xa, storage),
        input(&xb, storage),
        input(&bias, storage),
    );
    let size = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("size"),
        contents: bytemuck::cast_slice(&[n as u32, 0, 0, 0]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let out = |label| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (n * n * 4) as u64,
            usage: storage,
            mapped_at_creation: false,
        })
    };
    let (fused_y, plain_y, epilogue_y) = (out("fused"), out("plain"), out("epilogue"));
    let [fused, plain] = [true, false].map(|e| pipeline(&ctx, &act, e));
    let group = |p: &wgpu::ComputePipeline, y: &wgpu::Buffer| {
        let buffers = [&ba, &bb, &bbias, y, &size];
        let entries: Vec<_> = (0u32..)
            .zip(buffers)
            .map(|(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &p.get_bind_group_layout(0),
            entries: &entries,
        })
    };
    let (fused_group, plain_group) = (group(&fused, &fused_y), group(&plain, &plain_y));
    let tiles = (n / 16) as u32;
    let matmul = |e: &mut wgpu::CommandEncoder, p: &wgpu::ComputePipeline, g: &wgpu::BindGroup| {
        let mut pass = e.begin_compute_pass(&Default::default());
        pass.set_pipeline(p);
        pass.set_bind_group(0, g, &[]);
        pass.dispatch_workgroups(tiles, tiles, 1);
    };
    // the two-kernel path: the plain matmul, then the crate's fused bias + activation
    let epilogue = ctx.call(&a, &[n, n]).params(Params::Bias {
        bias: bias[..].into(),
        dim: -1,
    });
    let two_kernels = |e: &mut wgpu::CommandEncoder| {
        matmul(e, &plain, &plain_group);
        epilogue
            .encode(
                e,
                BufferRegion::new(&plain_y),
                BufferRegion::new(&epilogue_y),
            )
            .expect("the epilogue encodes");
    };
    let fused_seconds = time(&ctx, args.samples, &|e| matmul(e, &fused, &fused_group));
    let two_seconds = time(&ctx, args.samples, &two_kernels);
    let download = |b: &wgpu::Buffer| {
        ctx.download(BufferRegion::new(b), (n * n) as u64)
            .expect("read back")
    };
    let (got, want) = (download(&fused_y), download(&epilogue_y));
    let same = got
        .iter()
        .zip(&want)
        .all(|(g, w)| g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
    // against an f64 reference of act(A B + bias)
    let (_, f) = a.op().elementwise().expect("an elementwise op");
    let params: Vec<f64> = a.params().iter().map(|&p| f64::from(p)).collect();
    let mut worst = 0.0f64;
    for row in 0..n {
        for col in 0..n {
            let dot: f64 = (0..n)
                .map(|k| f64::from(xa[row * n + k]) * f64::from(xb[k * n + col]))
                .sum();
            let r = f(dot + f64::from(bias[col]), &params);
            worst = worst.max((f64::from(got[row * n + col]) - r).abs() / r.abs().max(1e-3));
        }
    }
    println!(
        "{a} epilogue in a {n} x {n} matmul on {}",
        ctx.adapter_name()
    );
    println!("largest relative error against f64 (the matmul's f32 sums dominate): {worst:.2e}");
    println!("the epilogue's bits equal the crate's fused bias + {a} on the plain matmul: {same}");
    println!(
        "fused: {:.3} ms; matmul then the crate's bias + {a}: {:.3} ms; two kernels / fused: {:.2}",
        fused_seconds * 1e3,
        two_seconds * 1e3,
        two_seconds / fused_seconds
    );
    if !same || worst > 1e-3 {
        std::process::exit(1);
    }
}
