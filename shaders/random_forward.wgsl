// The random ops' forward entry point (after random.wgsl). The prelude defines
// `load_in(k)`: the input, through src, or dst in place.
//
// An invocation takes the four elements of one Philox call (elements 4q to 4q + 3 of the
// tensor, those of them in this piece), so each call's four words are all used: a
// quarter of the calls of one per element, and for noisy_relu half the logarithms and
// square roots.

@compute @workgroup_size(WORKGROUP_SIZE)
fn random_main(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(random_u.n, 1u));
    let first = random_u.start >> 2u;
    let last = (random_u.start + random_u.n - 1u) >> 2u;
    for (var q = first + gid.x; q <= last; q += groups.x * WORKGROUP_SIZE) {
        let r = draws(4u * q);
        var noise = vec4<f32>(0.0);
        if (RANDOM_KIND == RANDOM_NOISY_RELU) {
            noise = normal_samples(r);
        }
        for (var lane = 0u; lane < 4u; lane++) {
            // the element's index in this piece, wrapping below the piece's start (the
            // host's pieces start at multiples of 4 elements today, so no call straddles
            // two pieces; the wrap keeps any start right)
            let i = 4u * q + lane - random_u.start;
            if (i < random_u.n) {
                let x = load_in(i);
                var y: f32;
                if (RANDOM_KIND == RANDOM_RRELU) {
                    // Signs on bits: a flushing adapter's `x >= 0.0` is true for -1e-40.
                    let kept = bitcast<u32>(x) <= 0x80000000u || is_nan_f32(x);
                    y = select(x * slope_of(r[lane]), x, kept);
                } else {
                    let v = noisy_with(x, noise[lane]);
                    y = select(select(0.0, v, positive_bits(v)), x, is_nan_f32(x));
                }
                dst_store(random_u.out_offset + i, y);
            }
        }
    }
}
