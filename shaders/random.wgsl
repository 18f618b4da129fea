// Random ops: rrelu in training mode, dst[i] = x if x >= 0 else x * slope(i), the slope
// uniform in [lower, upper) from Philox4x32-10 keyed by (seed, salt) and counted by the
// element's index in the tensor, so every adapter and the CPU reference (src/random.rs)
// draw the same bits. The host prepends activations.wgsl and replaces WORKGROUP_SIZE and
// SRC (src, or dst in place).

struct Random {
    n: u32,          // elements in this chunk
    in_offset: u32,  // element offsets in the bindings
    out_offset: u32,
    start: u32,      // the chunk's first element in the tensor
    p: vec4<f32>,    // lower, upper, seed
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> random_u: Random;

// a * b as (high, low) 32-bit words, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

// The first word of Philox4x32-10 for counter (index, 0, 0, 0) and key (seed, salt).
fn philox_first(index: u32, seed: u32) -> u32 {
    var c = vec4<u32>(index, 0u, 0u, 0u);
    var k = vec2<u32>(seed, 0x5EED0A17u);
    for (var round = 0u; round < 10u; round++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c.x;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn random_main(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(min(random_u.n, 1u));
    let lower = random_u.p.x;
    let upper = random_u.p.y;
    let seed = u32(random_u.p.z);
    for (var i = gid.x; i < random_u.n; i += groups.x * WORKGROUP_SIZE) {
        let x = SRC[random_u.in_offset + i];
        let u = f32(philox_first(random_u.start + i, seed) >> 8u) * 5.9604644775390625e-8;
        // keep(): the product is rounded on its own, as on the CPU, even where a
        // compiler would fuse it into the addition.
        let slope = lower + keep((upper - lower) * u);
        dst[random_u.out_offset + i] = select(x * slope, x, x >= 0.0 || is_nan_f32(x));
    }
}
