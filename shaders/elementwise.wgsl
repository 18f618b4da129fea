// Elementwise kernel: dst_store(out_offset + i, f(src_load(in_offset + i)) for i in [0, n).
//
// Bindings: 0 = input (read-only storage), 1 = output (read-write storage), 2 = uniforms.
// The host's generated prelude (src/device/wgsl.rs) declares the tensor bindings src (0) and
// dst (1) with their accessors for the storage type (`dst_store4(j, v)`, ...), and
// defines `apply(x)` (the op's `act_*` function with NaN passed through), `load4(j)` and
// `load1(j)` (the input, through src, or dst in place), WORKGROUP_SIZE and
// VEC4S_PER_INVOCATION.
// When input and output are the same buffer, the host builds the "shared" variant of this
// module, in which the input is read through binding 1 (one buffer may not be bound both
// read-only and writable in one dispatch).
//
// Two entry points share the bindings:
// - `main_vec4` covers whole vec4s [0, n / 4)); used when both offsets are multiples of 4
//   elements, it moves 16 bytes per load and store.
// - `main_scalar` covers [scalar_start, n): the 0-3 element tail after main_vec4, or the
//   whole range when an offset is not a multiple of 4 elements.
// Both loop with a grid stride, so any n runs within the adapter's workgroup-count limit.

struct Params {
    n: u32,             // elements in this piece
    in_offset: u32,     // element offset of the piece in the input binding
    out_offset: u32,    // element offset of the piece in the output binding
    scalar_start: u32,  // first element main_scalar handles
    p: vec4<f32>,       // the op's parameters, in the op table's order
}

@group(0) @binding(2) var<uniform> params: Params;

fn apply4(x: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(apply(x.x), apply(x.y), apply(x.z), apply(x.w));
}

// Each grid step covers VEC4S_PER_INVOCATION * (invocations in the grid) vec4s; an
// invocation takes one vec4 in each of those VEC4S_PER_INVOCATION slices, so the lanes of
// a SIMD group always touch adjacent vec4s.
@compute @workgroup_size(WORKGROUP_SIZE)
fn main_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(params.n, 1u)); // 1.0: n > 0 whenever the host dispatches
    let lanes = groups.x * WORKGROUP_SIZE;
    let n4 = params.n / 4u;
    let in4 = params.in_offset / 4u;
    let out4 = params.out_offset / 4u;
    for (var base = gid.x; base < n4; base += lanes * VEC4S_PER_INVOCATION) {
        if (base + 3u * lanes < n4) {
            let x0 = load4(in4 + base);
            let x1 = load4(in4 + base + lanes);
            let x2 = load4(in4 + base + 2u * lanes);
            let x3 = load4(in4 + base + 3u * lanes);
            dst_store4(out4 + base, apply4(x0));
            dst_store4(out4 + base + lanes, apply4(x1));
            dst_store4(out4 + base + 2u * lanes, apply4(x2));
            dst_store4(out4 + base + 3u * lanes, apply4(x3));
        } else {
            for (var i = base; i < n4; i += lanes) {
                dst_store4(out4 + i, apply4(load4(in4 + i)));
            }
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(params.n, 1u)); // 1.0: n > 0 whenever the host dispatches
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = params.scalar_start + gid.x; i < params.n; i += stride) {
        dst_store(params.out_offset + i, apply(load1(params.in_offset + i)));
    }
}
