// Fused bias + activation, as a GEMM epilogue's: dst[i] = f(x[i] + bias[c]) with the
// bias channel c = ((start + i) / inner) % channels (the bias axis of the tensor: inner 1
// for the last axis, after x @ W + b; the product of the dims after 1 for NCHW), and with
// the `_aux` entry points the pre-activation x + bias also stored to `aux` for the
// backward (cuBLASLt's _AUX epilogues) through the `extra` output binding.
//
// The sum is rounded once to f32 on every adapter (`add_rescued`: subnormal operands and
// sums too, which a flushing adapter would zero) and kept by its bits (`keep_bits`) from
// being rearranged with the activation's arithmetic, so in f32 a result has the bits of
// the unfused path (an add, then the op's own kernel, which reads the sum from memory);
// in f16 and bf16 it stays in f32 until the one rounding at the store.
//
// Bindings: group 0 as elementwise.wgsl's (the input through src, or dst in place, the
// uniforms), and in the _aux modules `extra` (binding 4) for the pre-activation; group 1
// the bias, in the module's storage type. The host's generated prelude
// (src/device/wgsl.rs) defines `apply(x)`, `load1(k)`, `load4(j)` and the accessors
// `bias_load`, `bias_load4`, `extra_store`, `extra_store4`.

struct Bias {
    n: u32,            // elements in this piece
    in_offset: u32,    // element offsets of the piece in its bindings' windows
    out_offset: u32,
    scalar_start: u32, // first element the scalar entry points take
    start: u32,        // the piece's first element in the tensor
    channels: u32,     // the bias's length
    inner: u32,        // elements per channel per outer index
    b_offset: u32,     // the bias's element offset in its window
    aux_offset: u32,   // the pre-activation's element offset in its window
    one: u32,          // 1; the source of opaque_one
    pad0: u32,
    pad1: u32,
    p: vec4<f32>,      // the op's parameters, in the op table's order
}

@group(0) @binding(2) var<uniform> params: Bias;

// Element k of the piece plus its channel's bias, rounded once and kept.
fn biased(k: u32) -> f32 {
    let c = ((params.start + k) / params.inner) % params.channels;
    return keep_bits(add_rescued(load1(params.in_offset + k), bias_load(params.b_offset + c)));
}

// Elements 4j to 4j + 3 of the piece plus their biases (the last axis, channels and every
// offset a multiple of 4, the piece's start too).
fn biased4(j: u32) -> vec4<f32> {
    let c4 = (params.start / 4u + j) % (params.channels / 4u);
    let x = load4(params.in_offset / 4u + j);
    let b = bias_load4(params.b_offset / 4u + c4);
    let s = vec4<f32>(add_rescued(x.x, b.x), add_rescued(x.y, b.y), add_rescued(x.z, b.z), add_rescued(x.w, b.w));
    return vec4<f32>(keep_bits(s.x), keep_bits(s.y), keep_bits(s.z), keep_bits(s.w));
}

fn apply4(s: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(apply(s.x), apply(s.y), apply(s.z), apply(s.w));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(params.one);
    let out4 = params.out_offset / 4u;
    for (var j = gid.x; j < params.n / 4u; j += groups.x * WORKGROUP_SIZE) {
        dst_store4(out4 + j, apply4(biased4(j)));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(params.one);
    for (var k = params.scalar_start + gid.x; k < params.n; k += groups.x * WORKGROUP_SIZE) {
        dst_store(params.out_offset + k, apply(biased(k)));
    }
}
