// Half-precision storage: f16 and bf16 elements packed two to a u32 word (element 2w in
// the low half of word w), converted to and from f32 with integer operations only, so
// that no adapter can flush, reorder or round them differently (the WGSL spec lets
// `unpack2x16float` and f32 arithmetic flush subnormals, and leaves the rounding of
// `pack2x16float` to the implementation). Included only in modules built for f16 or
// bf16; the prelude (src/device/wgsl.rs) names one pair as `decode` / `encode` (single
// elements) and `decode2` / `encode2` (both halves of a word). For f16 a context swaps in
// WGSL's `unpack2x16float` / `pack2x16float` where its probe found them exact on this
// adapter (Context::hardware_f16_conversions).

// binary16 bits (low 16 bits of h) to the f32 of the same value: exact, subnormals and
// NaN payloads included.
fn f16_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    // normal: rebias the exponent (15 -> 127); inf and NaN: all-ones exponent
    let normal = sign | ((e + 112u) << 23u) | (m << 13u);
    let special = sign | 0x7f800000u | (m << 13u);
    // subnormal: m * 2^-24 with m's leading one at bit p becomes 1.f * 2^(p - 24)
    let p = 31u - countLeadingZeros(max(m, 1u));
    let sub = sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
    let small = select(sub, sign, m == 0u);
    return bitcast<f32>(select(select(normal, special, e == 0x1fu), small, e == 0u));
}

// The binary16 bits nearest to x (ties to even): overflow to an infinity of x's sign,
// NaN to a quiet NaN of its sign, results below 2^-14 as binary16 subnormals.
fn f32_to_f16(x: f32) -> u32 {
    let u = bitcast<u32>(x);
    let sign = (u >> 16u) & 0x8000u;
    let a = u & 0x7fffffffu;
    // normal results: drop 13 mantissa bits, rounding to even; a carry moves the exponent
    let normal = (a - 0x38000000u + 0xfffu + ((a >> 13u) & 1u)) >> 13u;
    // subnormal results (2^-25 < |x| < 2^-14): the mantissa with its leading one, shifted
    // right by 14-24 bits, rounded to even
    let e = a >> 23u;
    let s = clamp(126u - min(e, 126u), 14u, 24u);
    let m = (a & 0x7fffffu) | 0x800000u;
    let q = m >> s;
    let rest = m & ((1u << s) - 1u);
    let halfway = 1u << (s - 1u);
    let up = rest > halfway || (rest == halfway && (q & 1u) == 1u);
    let sub = select(q + u32(up), 0u, a <= 0x33000000u);
    var bits = select(normal, sub, a < 0x38800000u);
    bits = select(bits, 0x7c00u, a >= 0x477ff000u); // >= 65520 rounds past 65504
    bits = select(bits, 0x7e00u | ((a >> 13u) & 0x3ffu), a > 0x7f800000u);
    return sign | bits;
}

// bfloat16 bits (low 16 bits of h) to f32: exact (the upper half of the f32's bits).
fn bf16_to_f32(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
}

// The bfloat16 bits nearest to x (ties to even): overflow to an infinity, NaN to a quiet
// NaN of its sign (rounding its bits could carry a NaN into an infinity).
fn f32_to_bf16(x: f32) -> u32 {
    let u = bitcast<u32>(x);
    let rounded = (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
    return select(rounded, (u >> 16u) | 0x40u, (u & 0x7fffffffu) > 0x7f800000u);
}

// Element k of a packed word array's words: its 16 bits.
fn half_bits(word: u32, k: u32) -> u32 {
    return (word >> ((k & 1u) * 16u)) & 0xffffu;
}

fn decode4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(decode2(w.x), decode2(w.y));
}

fn encode4(v: vec4<f32>) -> vec2<u32> {
    return vec2<u32>(encode2(v.xy), encode2(v.zw));
}
