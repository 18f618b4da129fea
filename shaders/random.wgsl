// Random ops, drawing from Philox4x32-10 keyed by (seed, salt) and counted by the
// element's index in the tensor, so every adapter and the CPU reference (src/random.rs)
// draw the same bits. One Philox call serves four elements: element i takes word i % 4 of
// the call for counter i / 4 (rrelu's uniform), or the cosine (even i) or sine (odd i)
// half of the Box-Muller pair made of words 2 (i % 4 / 2) and 2 (i % 4 / 2) + 1:
//   RANDOM_RRELU, rrelu in training mode: x if x >= 0 else x * slope(i), the slope
//     uniform in [lower, upper) (p = lower, upper, seed);
//   RANDOM_NOISY_RELU, noisy_relu: max(0, x + std * N(0, 1)) (p = std, seed).
// The host's generated prelude (src/device/wgsl.rs) defines those ids, RANDOM_KIND (this
// module's) and WORKGROUP_SIZE; random_forward.wgsl or random_backward.wgsl follows this
// file with the entry point.

struct Random {
    n: u32,           // elements in this piece
    in_offset: u32,   // element offsets in the bindings (the backward: the saved input's)
    out_offset: u32,
    start: u32,       // the piece's first element in the tensor
    grad_offset: u32, // the backward: grad_output's
    pad0: u32,
    pad1: u32,
    pad2: u32,
    p: vec4<f32>,     // lower, upper, seed
}

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

// Philox4x32-10 for counter (index, 0, 0, 0) and key (seed, salt).
fn philox(index: u32, seed: u32) -> vec4<u32> {
    var c = vec4<u32>(index, 0u, 0u, 0u);
    var k = vec2<u32>(seed, 0x5EED0A17u);
    for (var round = 0u; round < 10u; round++) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
        k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}
// ---------------------------------------------------------------------------------------
// A standard normal sample (Box-Muller), in exactly the f32 operations of src/random.rs:
// products and sums only, each product through keep_bits() so that no compiler fuses it into
// the following sum (a fused multiply-add rounds once, the CPU twice).

fn ln_unit(u: f32) -> f32 {
    let bits = bitcast<u32>(u);
    var e = i32((bits >> 23u) & 0xffu) - 127;
    var m = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    if (m > 1.4142135381698608) {
        m = m * 0.5;
        e = e + 1;
    }
    let t = m - 1.0;
    var p = -0.0714285746216774;
    p = keep_bits(p * t) + 0.07692307978868484;
    p = keep_bits(p * t) + -0.0833333358168602;
    p = keep_bits(p * t) + 0.09090909361839294;
    p = keep_bits(p * t) + -0.10000000149011612;
    p = keep_bits(p * t) + 0.1111111119389534;
    p = keep_bits(p * t) + -0.125;
    p = keep_bits(p * t) + 0.1428571492433548;
    p = keep_bits(p * t) + -0.1666666716337204;
    p = keep_bits(p * t) + 0.20000000298023224;
    p = keep_bits(p * t) + -0.25;
    p = keep_bits(p * t) + 0.3333333432674408;
    p = keep_bits(p * t) + -0.5;
    p = keep_bits(p * t) + 1.0;
    return keep_bits(f32(e) * 0.6931471824645996) + keep_bits(p * t);
}

fn sqrt_newton(w: f32) -> f32 {
    if (w == 0.0) {
        return 0.0;
    }
    var y = bitcast<f32>(0x5f3759dfu - (bitcast<u32>(w) >> 1u));
    let half = 0.5 * w;
    for (var i = 0u; i < 3u; i++) {
        y = y * (1.5 - keep_bits(keep_bits(half * y) * y));
    }
    return w * y;
}

fn cos_turns(k: u32) -> f32 {
    let quadrant = k >> 22u;
    let theta = (f32(k & 0x3fffffu) * 2.384185791015625e-07) * 1.5707963705062866;
    let t2 = theta * theta;
    var c = -1.1470746227870698e-11;
    c = keep_bits(c * t2) + 2.08767581000302e-09;
    c = keep_bits(c * t2) + -2.755731998149713e-07;
    c = keep_bits(c * t2) + 2.4801587642286904e-05;
    c = keep_bits(c * t2) + -0.0013888889225199819;
    c = keep_bits(c * t2) + 0.0416666679084301;
    c = keep_bits(c * t2) + -0.5;
    c = keep_bits(c * t2) + 1.0;
    var s = -7.647164151913799e-13;
    s = keep_bits(s * t2) + 1.6059044372074283e-10;
    s = keep_bits(s * t2) + -2.5052107943679403e-08;
    s = keep_bits(s * t2) + 2.7557321118365508e-06;
    s = keep_bits(s * t2) + -0.00019841270113829523;
    s = keep_bits(s * t2) + 0.008333333767950535;
    s = keep_bits(s * t2) + -0.1666666716337204;
    s = keep_bits(s * t2) + 1.0;
    let sn = s * theta;
    if (quadrant == 0u) {
        return c;
    }
    if (quadrant == 1u) {
        return -sn;
    }
    if (quadrant == 2u) {
        return -c;
    }
    return sn;
}

// Box-Muller's radius for the draw r0.
fn normal_radius(r0: u32) -> f32 {
    let u1 = f32((r0 >> 8u) + 1u) * 5.9604644775390625e-8;
    return sqrt_newton(-2.0 * ln_unit(u1));
}

// Box-Muller's angle for the draw r1, in 2^-24 turns, a quarter turn back for the sine
// (sin t = cos(t - pi/2), exact in fixed point).
fn normal_turns(r1: u32, sine: bool) -> u32 {
    return ((r1 >> 8u) + select(0u, 0xc00000u, sine)) & 0xffffffu;
}

// Element lane's standard normal (lane = i % 4) from its Philox call r.
fn normal_sample(r: vec4<u32>, lane: u32) -> f32 {
    let pair = select(r.xy, r.zw, lane >= 2u);
    return normal_radius(pair.x) * cos_turns(normal_turns(pair.y, (lane & 1u) == 1u));
}

// The four normals of one Philox call: two radii, four angles.
fn normal_samples(r: vec4<u32>) -> vec4<f32> {
    let a = normal_radius(r.x);
    let b = normal_radius(r.z);
    return vec4<f32>(a * cos_turns(normal_turns(r.y, false)),
                     a * cos_turns(normal_turns(r.y, true)),
                     b * cos_turns(normal_turns(r.w, false)),
                     b * cos_turns(normal_turns(r.w, true)));
}

// The Philox call of element g (of the whole tensor) for this op's seed.
fn draws(g: u32) -> vec4<u32> {
    let seed = select(random_u.p.y, random_u.p.z, RANDOM_KIND == RANDOM_RRELU);
    return philox(g >> 2u, u32(seed));
}


// rrelu's slope from its draw, uniform in [lower, upper).
fn slope_of(r: u32) -> f32 {
    let lower = random_u.p.x;
    let upper = random_u.p.y;
    let u = f32(r >> 8u) * 5.9604644775390625e-8;
    // keep_bits(): the product is rounded on its own, as on the CPU, even where a
    // compiler would fuse it into the addition.
    return lower + keep_bits((upper - lower) * u);
}

// rrelu's slope for element i of this piece.
fn rrelu_slope(i: u32) -> f32 {
    let g = random_u.start + i;
    return slope_of(draws(g)[g & 3u]);
}

// noisy_relu's x + std * n, before the max, for a standard normal n.
fn noisy_with(x: f32, n: f32) -> f32 {
    return x + keep_bits(random_u.p.x * n);
}

// noisy_relu's x + std * N(0, 1) for element i of this piece, before the max.
fn noisy_value(x: f32, i: u32) -> f32 {
    let g = random_u.start + i;
    return noisy_with(x, normal_sample(draws(g), g & 3u));
}

// v > 0 on its bits (positive, nonzero, not NaN).
fn positive_bits(v: f32) -> bool {
    return bitcast<u32>(v) - 1u < 0x7f800000u;
}
