//! The exported WGSL functions inside a kernel written as a user would: it calls only
//! `NAME_init` and `NAME`, holds a forward and a backward export side by side, and gives
//! the crate's own kernels' bits over a sweep of every binade, the extremal inputs and
//! grad_outputs of every size, on the default context and under relaxed semantics.

mod common;

use common::*;
use wgpu::util::DeviceExt;
use wgpu_activations::{accuracy, shader, Activation, BufferRegion, Context, Error, Op, Saved};

/// The user's kernel: `act` and `grad` exported, applied to every element.
fn user_kernel(ctx: &Context, a: &Activation) -> String {
    let forward = ctx.wgsl_function(a, "act").unwrap();
    let backward = ctx.wgsl_backward_function(a, "grad").unwrap();
    format!(
        "{forward}\n{backward}\n\
         @group(0) @binding(0) var<storage, read> xs: array<f32>;\n\
         @group(0) @binding(1) var<storage, read> saved: array<f32>;\n\
         @group(0) @binding(2) var<storage, read> gs: array<f32>;\n\
         @group(0) @binding(3) var<storage, read_write> ys: array<f32>;\n\
         @group(0) @binding(4) var<storage, read_write> gxs: array<f32>;\n\
         @compute @workgroup_size(64)\n\
         fn main(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
         \x20   let one = f32(min(arrayLength(&xs), 1u));\n\
         \x20   act_init(one);\n\
         \x20   grad_init(one);\n\
         \x20   for (var i = id.x; i < arrayLength(&xs); i += 64u * 256u) {{\n\
         \x20       ys[i] = act(xs[i]);\n\
         \x20       gxs[i] = grad(saved[i], gs[i]);\n\
         \x20   }}\n\
         }}\n"
    )
}

/// Runs the user's kernel on (x, saved, g) and returns (y, grad_input).
fn run_user(ctx: &Context, source: &str, x: &[f32], saved: &[f32], g: &[f32]) -> [Vec<f32>; 2] {
    let device = ctx.device();
    let module = ctx.compile_wgsl("user kernel", source).unwrap();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("user kernel"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let input = |data: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let buffers = [
        input(x),
        input(saved),
        input(g),
        poisoned_buffer(ctx, x.len()),
        poisoned_buffer(ctx, x.len()),
    ];
    let entries: Vec<wgpu::BindGroupEntry<'_>> = (0u32..)
        .zip(&buffers)
        .map(|(binding, b)| wgpu::BindGroupEntry {
            binding,
            resource: b.as_entire_binding(),
        })
        .collect();
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(256, 1, 1);
    }
    ctx.queue().submit([encoder.finish()]);
    let n = x.len() as u64;
    [3, 4].map(|i| ctx.download(BufferRegion::new(&buffers[i]), n).unwrap())
}

/// A sweep of every binade, the extremal inputs, and a grid around 0.
fn inputs() -> Vec<f32> {
    let mut x = accuracy::sweep_inputs(99_991, 1.0 / 64.0);
    x.extend(accuracy::extremal_inputs());
    x.extend(subnormals());
    x
}

/// grad_outputs from 1e-30 to 1e30 of both signs, with 1s, infinities, NaN and
/// subnormals among them.
fn grad_outputs(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(7);
    let special = [1.0, -1.0, f32::INFINITY, f32::NAN, 1e-40, 3.4e38];
    (0..n)
        .map(|i| match i % 16 {
            0..=5 => special[i % 16],
            _ => rng.log_uniform(1e-30, 1e30),
        })
        .collect()
}

#[test]
fn every_export_gives_the_crate_kernels_bits_in_a_users_kernel() {
    let x = inputs();
    let g = grad_outputs(x.len());
    let mut specs: Vec<Activation> = Op::elementwise_ops().map(Activation::example).collect();
    for s in [
        "softplus(beta=2, threshold=10)",
        "leaky_relu(negative_slope=0.2)",
        "celu(alpha=0.3)",
        "swish(beta=1.702)",
        "elu(alpha=-0.5)",
    ] {
        specs.push(s.parse().unwrap());
    }
    for (mode, ctx) in both_contexts() {
        for a in &specs {
            let source = user_kernel(ctx, a);
            shader::validate_wgsl(&source).unwrap_or_else(|e| panic!("{mode}{a}: {e}"));
            let call = ctx.call(a, &[x.len()]);
            let y = call.run(&x).unwrap();
            let saved = match a.op().backward().saved {
                Saved::Input => x.clone(),
                Saved::Output => y.clone(),
            };
            let gx = call.run_backward(&saved, &g).unwrap();
            let [uy, ugx] = run_user(ctx, &source, &x, &saved, &g);
            assert_bits(&uy, &y, &format!("{mode}{a}: forward export"));
            assert_bits(&ugx, &gx, &format!("{mode}{a}: backward export"));
        }
    }
}

#[test]
fn exports_that_are_not_functions_of_one_element_say_why() {
    let ctx = ctx();
    for (spec, why) in [
        ("softmax", "rows"),
        ("maxout(k=2)", "group"),
        ("glu", "group"),
        ("dice(alpha=0.2)", "batch statistics"),
        ("rrelu(training=true)", "Philox"),
        ("noisy_relu(std=0.5)", "index"),
    ] {
        let a: Activation = spec.parse().unwrap();
        for e in [
            ctx.wgsl_function(&a, "f").unwrap_err(),
            ctx.wgsl_backward_function(&a, "f").unwrap_err(),
        ] {
            assert!(matches!(e, Error::Unsupported(_)), "{spec}: {e}");
            assert!(e.to_string().contains(why), "{spec}: {e}");
        }
    }
    let gelu: Activation = "gelu".parse().unwrap();
    for bad in ["", "__f", "a__b", "9f", "f-g"] {
        assert!(ctx.wgsl_function(&gelu, bad).is_err(), "{bad:?}");
    }
    // a WGSL keyword parses as no function name: an error, not a broken module
    assert!(ctx.wgsl_function(&gelu, "fn").is_err());
}

#[test]
fn an_export_declares_no_binding_and_only_its_prefixed_names() {
    let ctx = ctx();
    let text = ctx.wgsl_function(&"mish".parse().unwrap(), "m").unwrap();
    assert!(!text.contains("@group") && !text.contains("enable") && !text.contains("override"));
    for line in text
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' '))
    {
        let declares = ["fn ", "const ", "var<private> ", "struct "]
            .iter()
            .find_map(|k| line.strip_prefix(k));
        if let Some(rest) = declares {
            assert!(
                rest.starts_with("m(") || rest.starts_with("m_init(") || rest.starts_with("m__"),
                "{line}"
            );
        }
    }
    let fused = if ctx.facts().fused_fma {
        "true"
    } else {
        "false"
    };
    assert!(text.contains(&format!("const m__FUSED_FMA: bool = {fused};")));
}
