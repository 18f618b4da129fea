// The random ops' forward entry point (after random.wgsl). The prelude defines
// `load_in(k)`: the input, through src, or dst in place.

@compute @workgroup_size(WORKGROUP_SIZE)
fn random_main(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(random_u.n, 1u));
    for (var i = gid.x; i < random_u.n; i += groups.x * WORKGROUP_SIZE) {
        let x = load_in(i);
        var y: f32;
        if (RANDOM_KIND == RANDOM_RRELU) {
            // Signs on bits: a flushing adapter's `x >= 0.0` is true for -1e-40.
            y = select(x * rrelu_slope(i), x, bitcast<u32>(x) <= 0x80000000u || is_nan_f32(x));
        } else {
            let v = noisy_value(x, i);
            y = select(select(0.0, v, positive_bits(v)), x, is_nan_f32(x));
        }
        dst_store(random_u.out_offset + i, y);
    }
}
