// PReLU with per-channel weights: dst[i] = x if x > 0 else w[c] * x, with the channel
// c = ((start + i) / inner) % channels (dim 1 of the tensor; one weight when channels is 1).
// The host's generated prelude (src/device/wgsl.rs) defines WORKGROUP_SIZE and `load_in(k)`
// (the input, through src, or dst in place). The weights are bind group 1.

struct Prelu {
    n: u32,          // elements in this piece
    in_offset: u32,  // element offsets in the bindings
    out_offset: u32,
    start: u32,      // the piece's first element in the tensor
    channels: u32,
    inner: u32,      // elements per channel per outer index
    w_offset: u32,   // element offset of the weights in their binding
    one: u32,
}

@group(0) @binding(2) var<uniform> prelu_u: Prelu;
@group(1) @binding(0) var<storage, read> weights: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn prelu_main(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(prelu_u.one);
    for (var i = gid.x; i < prelu_u.n; i += groups.x * WORKGROUP_SIZE) {
        let x = load_in(i);
        let c = ((prelu_u.start + i) / prelu_u.inner) % prelu_u.channels;
        let w = weights[prelu_u.w_offset + c];
        dst_store(prelu_u.out_offset + i, pass_nan(x, select(mul_rescued(x, w), x, is_positive(x))));
    }
}
