// The random ops' backward entry point (after random.wgsl): the same numbers drawn again
// from (seed, element index), so no mask is kept between forward and backward.
//   rrelu(training=true): g * slope where x <= 0 (both zeros included: PyTorch draws the
//     noise there), g elsewhere and for NaN;
//   noisy_relu: g where x + std * N(0, 1) > 0 (the forward's own value, the same bits) or
//     x is NaN, 0 elsewhere.
// The prelude defines `load_saved(k)` and `load_grad(k)` through the layout's bindings.


@compute @workgroup_size(WORKGROUP_SIZE)
fn random_grad(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(random_u.n, 1u));
    for (var i = gid.x; i < random_u.n; i += groups.x * WORKGROUP_SIZE) {
        let x = load_saved(random_u.in_offset + i);
        let g = load_grad(random_u.grad_offset + i);
        var gx: f32;
        if (RANDOM_KIND == RANDOM_RRELU) {
            let at_most_zero = (bitcast<u32>(x) & 0x7fffffffu) == 0u
                || (bitcast<u32>(x) > 0x80000000u && !is_nan_f32(x));
            gx = select(g, keep_bits(g * rrelu_slope(i)), at_most_zero);
        } else {
            gx = select(0.0, g, positive_bits(noisy_value(x, i)) || is_nan_f32(x));
        }
        dst_store(random_u.out_offset + i, gx);
    }
}
