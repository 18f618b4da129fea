// Elementwise backward kernel: gx[out_offset + i] = grad(s[saved_offset + i],
// g[grad_offset + i]) for i in [0, n).
//
// Bindings: 0 = a read-only input, 1 = grad_input (read-write), 2 = uniforms, 3 = a second
// read-only input. The host's generated prelude (src/device/wgsl.rs) defines
// `grad_apply(s, g)` (the op's `grad_*` function), and `load_saved4/1(j)` and
// `load_grad4/1(j)`, which read the saved tensor and grad_output through the binding the
// layout gives each: its own (0 or 3), or binding 1 where it shares grad_input's buffer.
//
// As in elementwise.wgsl: `grad_vec4` covers whole vec4s [0, n / 4) when all three
// offsets are multiples of 4 elements, `grad_scalar` covers [scalar_start, n); both loop
// with a grid stride. grad_vec4 takes one vec4 per step, not elementwise.wgsl's four
// unrolled: the four copies of a derivative that unrolling inlines cost more than they
// save on a CPU adapter (measured on lavapipe, 4M elements: silu's backward 57.8 ms
// unrolled, 30.6 ms not; gelu's 52.3 and 29.6). The host still launches a quarter as many
// invocations as vec4s, each taking four grid-stride steps (one invocation per vec4 was
// 1.5-3x slower there).

struct Params {
    n: u32,             // elements in this piece
    saved_offset: u32,  // element offsets of the piece in the bound windows
    grad_offset: u32,
    out_offset: u32,
    scalar_start: u32,  // first element grad_scalar handles
    pad0: u32,
    pad1: u32,
    pad2: u32,
    p: vec4<f32>,       // the op's parameters, in the op table's order
}

@group(0) @binding(2) var<uniform> params: Params;

fn grad4(s: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(grad_apply(s.x, g.x), grad_apply(s.y, g.y), grad_apply(s.z, g.z),
                     grad_apply(s.w, g.w));
}

fn step4(j: u32) {
    let s = load_saved4(params.saved_offset / 4u + j);
    let g = load_grad4(params.grad_offset / 4u + j);
    dst_store4(params.out_offset / 4u + j, grad4(s, g));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn grad_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(params.n, 1u)); // 1.0: n > 0 whenever the host dispatches
    let lanes = groups.x * WORKGROUP_SIZE;
    let n4 = params.n / 4u;
    for (var i = gid.x; i < n4; i += lanes) {
        step4(i);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn grad_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(params.n, 1u)); // 1.0: n > 0 whenever the host dispatches
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = params.scalar_start + gid.x; i < params.n; i += stride) {
        let s = load_saved(params.saved_offset + i);
        let g = load_grad(params.grad_offset + i);
        dst_store(params.out_offset + i, grad_apply(s, g));
    }
}
