// Scalar activation functions, shared by every kernel family.
//
// Every activation is `fn act_NAME(x: f32, p: vec4<f32>) -> f32`, where `p` holds the op's
// parameters in the order the op table in src/op.rs declares them. Kernels call these
// through a generated wrapper that passes a NaN input straight through (see `pass_nan`),
// so no function here needs to care about NaN inputs.
//
// Why a math library of our own: WGSL's `exp` is only specified to 3 + 2|x| ULP (measured
// 61 ULP on lavapipe), `tanh` to whatever `sinh/cosh` gives (3,901 ULP near 0 on lavapipe,
// NaN from overflow on some GPUs), and there is no `expm1`, `log1p` or `erf` at all. So the
// transcendentals below are computed from exactly split arguments and fitted polynomials
// (tools/fit_coefficients.py regenerates and audits every coefficient), and give the same
// bounds on every adapter. Nothing relies on WGSL's own transcendental builtins.
//
// Conventions: `*_parts` functions return (m, k) with the value m * 2^k, so callers can
// multiply by a small factor before the final scaling and keep results that are normal
// even when exp(x) alone would be subnormal. A pair (h, l) is an unevaluated sum h + l,
// with |l| <= ulp(h) / 2; `l` carries the rounding error of an inner argument such as
// beta * x or x * x, which exp would otherwise amplify in the tails.

// ---------------------------------------------------------------------------------------
// Bits and exact arithmetic

// A 1.0 the compiler cannot see. Error-free transformations (TwoSum, Dekker's product, the
// residual of a quotient) compute terms such as (a + b) - a that are mathematically
// trivial, and shader compilers may simplify them away: naga emits no NoContraction
// decorations, so Mesa's inexact algebraic rules (a - (a - b) -> b, (a / b) * b -> a)
// apply, and measured on lavapipe they zeroed every compensation term. `keep(x)`
// multiplies by this value, which each kernel entry point loads from its uniforms (where
// it is 1.0 at run time), so no such rule can match through it. Every kernel must set it
// first.
var<private> opaque_one: f32;

fn keep(x: f32) -> f32 {
    return x * opaque_one;
}

// A stronger keep: x through an integer XOR with its bits' difference from 1.0 (0 at run
// time). The compiler must round x to an f32 first, and no float rewrite at all can reach
// through an integer operation on an unknown value, where `keep`'s multiplication by 1
// may still be reassociated ((a * b) * one -> a * (b * one)) and fused with a following
// addition. The random ops use it, since their CPU mirror needs every rounding; measured
// on an H100, noisy_relu then matched the mirror bit for bit (1 element in 100,003
// differed through `keep`). Integer operations run at half the rate of float ones there,
// so the other kernels keep `keep`.
fn keep_bits(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ (bitcast<u32>(opaque_one) ^ 0x3f800000u));
}

fn is_nan_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// |y| with the sign of x (also for x = -0.0).
fn copy_sign(y: f32, x: f32) -> f32 {
    return bitcast<f32>((bitcast<u32>(y) & 0x7fffffffu) | (bitcast<u32>(x) & 0x80000000u));
}

// x's place in the order of f32 values, as an i32, with +0 and -0 in the same place.
// Comparing these is exact on every adapter, where a float compare may flush a subnormal
// operand to zero first (WGSL allows it; NVIDIA does it: `-1e-40 < 0.0` is false there).
// The exact ops compare through these, so they stay bit-exact for subnormal inputs.
// (NaN gets a place beyond the infinities; callers that care test it first.)
fn order_key(x: f32) -> i32 {
    let b = bitcast<i32>(x);
    return select(b, bitcast<i32>(0x80000000u) - b, b < 0);
}

fn exact_lt(a: f32, b: f32) -> bool {
    return order_key(a) < order_key(b);
}

fn exact_gt(a: f32, b: f32) -> bool {
    return order_key(a) > order_key(b);
}

// x > 0 and x < 0 on the sign bit and magnitude (the common cases, cheaper than keys).
fn is_positive(x: f32) -> bool {
    return bitcast<u32>(x) - 1u < 0x7fffffffu;
}

fn is_negative(x: f32) -> bool {
    return bitcast<u32>(x) > 0x80000000u;
}

// Whether |x| is below the smallest normal (zero or subnormal), on the bits.
fn is_tiny(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) < 0x00800000u;
}

// x * 2^64, exactly, for |x| < 2^-64, subnormals included, built from the bits so that no
// flushing adapter sees the subnormal: a subnormal's magnitude is m 2^-149 with an
// integer m < 2^23, so f32(m) 2^-85 is exact and normal.
fn up64(x: f32) -> f32 {
    let b = bitcast<u32>(x);
    return select(copy_sign(f32(b & 0x007fffffu) * 2.5849394142282115e-26, x),
                  bitcast<f32>(b + (64u << 23u)), !is_tiny(x));
}

// x * c, correctly rounded where the product is normal, also for a subnormal x that a
// flushing adapter would zero before multiplying; a subnormal product is what the adapter
// gives (correctly rounded, or a zero of its sign).
fn mul_rescued(x: f32, c: f32) -> f32 {
    let plain = x * c;
    if (!is_tiny(x)) {
        return plain;
    }
    // |x c 2^64| >= 2^-62 exactly when x c is normal; then scaling back is exact.
    let big = up64(x) * c;
    return select(plain, scale2(big, -64), abs(big) >= 2.168404344971009e-19);
}

// x + b correctly rounded on every adapter, subnormal operands and sums included, where a
// flushing adapter would zero them: above 2^-102 a subnormal operand is less than half an
// ULP of the other, so the plain sum is right (and normal); below, both are added at 2^64
// scale (from their bits, exactly: the sum of two f32 values is a multiple of 2^-149), and
// a subnormal sum is built from its bits, which no flush reaches. Callers pass the result
// on by bits (`keep_bits`), not through arithmetic that would flush it.
fn add_rescued(x: f32, b: f32) -> f32 {
    let plain = x + b;
    let small = max(bitcast<u32>(x) & 0x7fffffffu, bitcast<u32>(b) & 0x7fffffffu) < 0x0c800000u;
    if (!small) {
        return plain;
    }
    let t = up64(x) + up64(b);
    let bits = bitcast<u32>(t);
    let e = (bits >> 23u) & 0xffu;
    if (e >= 65u) {
        return scale2(t, -64);
    }
    // t = 1.m 2^(e - 127), so the sum t 2^-64 has subnormal mantissa 1.m 2^(e - 42)
    let f = ((bits & 0x007fffffu) | 0x00800000u) >> min(65u - e, 31u);
    return bitcast<f32>((bits & 0x80000000u) | select(f, 0u, e == 0u));
}

// 2^k for k in [-126, 127], built from its bits.
fn pow2i(k: i32) -> f32 {
    return bitcast<f32>(u32(k + 127) << 23u);
}

// m * 2^k in two exact steps, so that neither step overflows or underflows on its own;
// only the final product rounds (to a subnormal, 0 or inf). Exact for k in [-252, 254];
// below, the result is 0 for any |m| < 2^100 (the parts of exp and their low terms), as it
// should be. Callers whose m may be larger (x e^h in the tails) use `scale2_wide`.
fn scale2(m: f32, k: i32) -> f32 {
    let k1 = max(k >> 1u, -126);
    return (m * pow2i(k1)) * pow2i(max(k - k1, -126));
}

// m * 2^k for k in [-378, 381] in three exact steps: for an m as large as 2^128 with a k
// as low as -289 (x e^h in the sigmoid family's tail), whose product is 0 but whose two
// halves would not be in range.
fn scale2_wide(m: f32, k: i32) -> f32 {
    let k1 = max(k >> 1u, -126);
    let k2 = clamp(k - k1, -126, 127);
    return ((m * pow2i(k1)) * pow2i(k2)) * pow2i(clamp(k - k1 - k2, -126, 127));
}

// Whether WGSL's `fma` rounds once on this adapter. The WGSL spec lets an implementation
// compute fma(a, b, c) as a rounded a * b plus c (lavapipe does), which would silently
// zero every error term below; the host probes the adapter once and sets this.
override FUSED_FMA: bool = true;

// a * b as an unevaluated pair (p, e) with p + e == a * b exactly: with a fused fma when
// the adapter has one, else by Dekker's product of Veltkamp-split halves (12 + 12 bits),
// which is exact with plain rounded multiplies. e is 0 where the split would overflow
// (|a * b| > 1e30, far outside where any caller needs e) and where |a * b| < 1e-30: there
// e and Dekker's partial products fall below 2^-126, and an adapter that flushes
// subnormals would leave partial products uncancelled (an error of 2^-12 |p|, not 0).
fn two_prod(a: f32, b: f32) -> vec2<f32> {
    let p = a * b;
    var e: f32;
    if (FUSED_FMA) {
        e = fma(a, b, -p);
    } else {
        // Veltkamp's split multiplies by 4097, which overflows past 8e34 (and made NaN of
        // celu(alpha=8.4e34) and swish(beta=8.4e34)): an operand that large is split at
        // 2^-64 scale and the error term scaled back, both exactly.
        let a_big = abs(a) > 1.0e30;
        let b_big = abs(b) > 1.0e30;
        let sa = select(a, a * 5.421010862427522e-20, a_big);
        let sb = select(b, b * 5.421010862427522e-20, b_big);
        let sp = sa * sb;
        let ca = keep(4097.0 * sa);
        let ah = ca - keep(ca - sa);
        let al = sa - ah;
        let cb = keep(4097.0 * sb);
        let bh = cb - keep(cb - sb);
        let bl = sb - bh;
        let es = ((keep(ah * bh - sp) + ah * bl) + al * bh) + al * bl;
        e = es * select(1.0, 18446744073709551616.0, a_big) * select(1.0, 18446744073709551616.0, b_big);
    }
    return vec2<f32>(p, select(0.0, e, abs(p) < 1.0e30 && abs(p) > 1.0e-30));
}

// a + b as an unevaluated pair, exactly (Knuth's TwoSum: no ordering needed).
fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = keep(a + b);
    let bb = keep(s - a);
    // Each partial difference is opaque too: with s and bb alone kept, reassociation can
    // still cancel +bb against -bb and return (a + b) - s = 0 (seen on lavapipe).
    return vec2<f32>(s, (a - keep(s - bb)) + keep(b - bb));
}

// Neumaier's compensated sum: (sum, compensation) plus x. The running error is exact
// while the sum is finite; once it overflows the compensation stops (it would be NaN).
fn add_compensated(sc: vec2<f32>, x: f32) -> vec2<f32> {
    let t = keep(sc.x + x);
    let big = select(x, sc.x, abs(sc.x) >= abs(x));
    let small = select(sc.x, x, abs(sc.x) >= abs(x));
    return vec2<f32>(t, sc.y + select(keep(big - t) + small, 0.0, is_inf_f32(t)));
}

// (num + nl) / (dh + dl), with one correction step: the residual of the quotient is
// computed exactly (two_prod), so the result is within about half an ULP of the true one.
// A numerator above 2^126 is divided as a quarter and the quotient scaled back (exact:
// the quotient of so large a numerator by a finite dh is normal), because q dh may round
// past f32's maximum where num is within an ULP of it (glu at a = -3.4e38, b = 0.16 was
// -inf; it is -1.84e38).
fn div_pair(num: f32, nl: f32, dh: f32, dl: f32) -> f32 {
    let big = abs(num) > 8.5070592e37;
    let s = select(1.0, 0.25, big);
    let n = num * s;
    let q = keep(n / dh);
    if (is_inf_f32(q)) {
        return q;
    }
    let p = two_prod(q, dh);
    let r = ((keep(n - p.x) - p.y) + nl * s) - q * dl;
    return (q + r / dh) * select(1.0, 4.0, big);
}

// ---------------------------------------------------------------------------------------
// Fitted polynomials: tools/fit_coefficients.py prints these, with their fit errors.

// EXP_P: degree 5 on [-0.3466, 0.3466] in (v - 0.0), max rel err 9.13e-09 (2^-26.7)
fn poly_exp_p(v: f32) -> f32 {
    var p = 0.00019890988187398762;
    p = fma(p, v, 0.001393364742398262);
    p = fma(p, v, 0.00833331048488617);
    p = fma(p, v, 0.04166646674275398);
    p = fma(p, v, 0.1666666716337204);
    p = fma(p, v, 0.5);
    return p;
}

// LOG1P_L: degree 9 on [-0.21, 0.61] in (v - 0.0), max rel err 6.78e-08 (2^-23.8)
fn poly_log1p_l(v: f32) -> f32 {
    var p = -0.02008313126862049;
    p = fma(p, v, 0.06226373091340065);
    p = fma(p, v, -0.09646251797676086);
    p = fma(p, v, 0.11301030218601227);
    p = fma(p, v, -0.12560498714447021);
    p = fma(p, v, 0.14284560084342957);
    p = fma(p, v, -0.16664916276931763);
    p = fma(p, v, 0.19999951124191284);
    p = fma(p, v, -0.25000011920928955);
    p = fma(p, v, 0.3333333432674408);
    return p;
}

// TANH_T: degree 6 on [0.0, 0.390625] in (v - 0.0), max rel err 3.00e-08 (2^-25.0)
fn poly_tanh_t(v: f32) -> f32 {
    var p = -0.0008622168097645044;
    p = fma(p, v, 0.003306247526779771);
    p = fma(p, v, -0.008791004307568073);
    p = fma(p, v, 0.021859895437955856);
    p = fma(p, v, -0.053967639803886414);
    p = fma(p, v, 0.13333332538604736);
    p = fma(p, v, -0.3333333432674408);
    return p;
}

// TANHSHRINK_Q: degree 9 on [0.0, 1.0] in (v - 0.0), max rel err 6.36e-08 (2^-23.9)
fn poly_tanhshrink_q(v: f32) -> f32 {
    var p = 6.667254638159648e-06;
    p = fma(p, v, -4.978706419933587e-05);
    p = fma(p, v, 0.0001936842454597354);
    p = fma(p, v, -0.000561237393412739);
    p = fma(p, v, 0.0014440477825701237);
    p = fma(p, v, -0.0035891158040612936);
    p = fma(p, v, 0.008862785995006561);
    p = fma(p, v, -0.02186945453286171);
    p = fma(p, v, 0.05396825447678566);
    p = fma(p, v, -0.13333334028720856);
    return p;
}

// ERF_E: degree 5 on [0.0, 0.12249999999999998] in (v - 0.0), max rel err 5.52e-08 (2^-24.1)
fn poly_erf_e(v: f32) -> f32 {
    var p = -0.0008117639226838946;
    p = fma(p, v, 0.0052180965431034565);
    p = fma(p, v, -0.026865798979997635);
    p = fma(p, v, 0.11283790320158005);
    p = fma(p, v, -0.37612637877464294);
    p = fma(p, v, 1.128379225730896);
    return p;
}

// ERFCX_NEAR: degree 14 on [0.35, 3.5] in (v - 1.925), max rel err 3.21e-08 (2^-24.9)
fn poly_erfcx_near(v: f32) -> f32 {
    var p = 5.720572104905841e-08;
    p = fma(p, v, -2.2547301625763794e-07);
    p = fma(p, v, 3.3844881386357883e-07);
    p = fma(p, v, -1.1926567822229117e-06);
    p = fma(p, v, 6.038672836439218e-06);
    p = fma(p, v, -2.1074392861919478e-05);
    p = fma(p, v, 6.77683565299958e-05);
    p = fma(p, v, -0.00022084449301473796);
    p = fma(p, v, 0.0006989843677729368);
    p = fma(p, v, -0.00212197401560843);
    p = fma(p, v, 0.006180431693792343);
    p = fma(p, v, -0.01720098964869976);
    p = fma(p, v, 0.04547303915023804);
    p = fma(p, v, -0.11333726346492767);
    p = fma(p, v, 0.26364725828170776);
    return p;
}

// ERFCX_FAR: degree 9 on [0.0, 0.2857142857142857] in (v - 0.0), max rel err 8.71e-10 (2^-30.1)
const ERFCX_FAR_C0_HI: f32 = 0.564189612865448;
const ERFCX_FAR_C0_LO: f32 = -2.9365880394038868e-08;
fn poly_erfcx_far_q(v: f32) -> f32 {
    var p = -1.369034767150879;
    p = fma(p, v, 0.4201977849006653);
    p = fma(p, v, 1.6211514472961426);
    p = fma(p, v, -1.4318128824234009);
    p = fma(p, v, 0.049585480242967606);
    p = fma(p, v, 0.419252872467041);
    p = fma(p, v, 0.00017299913452006876);
    p = fma(p, v, -0.2820986807346344);
    p = fma(p, v, 3.371555834519313e-08);
    return p;
}

// ---------------------------------------------------------------------------------------
// exp and expm1

const LOG2E: f32 = 1.4426950408889634;
// ln 2 split so that k * LN2_HI is exact for |k| < 512 (LN2_HI has 15 significant bits)
// and x - k * LN2_HI is exact by Sterbenz's lemma.
const LN2_HI: f32 = 0.693145751953125;
const LN2_LO: f32 = 1.428606765330187e-06;

// exp(x) as (hi, lo, k) with exp(x) = (hi + lo) * 2^k, hi in [0.70, 1.42] and |lo| within
// an ULP of hi: the mantissa is kept as an exact pair, because half an ULP of exp(x) can be
// almost a whole ULP of a result in another binade (sigmoid, softplus). x is clamped to
// [-200, 89]: callers scale the parts by factors up to 2^128 before the final scale2
// (x e^h with x near f32's maximum), so exp(-150) is not yet 0 for them, but e^-200 times
// any f32 is; the clamp maps +-inf there too.
fn exp_parts(x_in: f32) -> vec3<f32> {
    let x = clamp(x_in, -200.0, 89.0);
    let k = round(x * LOG2E);
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = keep(hi - lo);
    let rl = keep(hi - r) - lo;
    // exp(r + rl) = 1 + r + r^2 P(r) + rl (1 + r) + O(rl^2)
    let q = r + fma(r * r, poly_exp_p(r), fma(rl, r, rl));
    let m = keep(1.0 + q);
    return vec3<f32>(m, keep(1.0 - m) + q, k);
}

fn exp_f32(x: f32) -> f32 {
    let e = exp_parts(x);
    return scale2(e.x, i32(e.z));
}

// exp(h + l) as parts, for a pair (h, l) with |l| << |h| + 1. Where exp_parts clamps h
// (h < -200 or h > 89), l is dropped: the clamped parts stand for a value any scaling
// takes to 0 or infinity, and an l of the size of the clamped-off part (-8 after a
// difference with -1e30) would turn them negative: a -0 probability in the softmax family.
fn exp_pair_parts(h: f32, l: f32) -> vec3<f32> {
    let e = exp_parts(h);
    let lo = select(fma(e.x, l, e.y), e.y, h < -200.0 || h > 89.0);
    return vec3<f32>(e.x, lo, e.z);
}

// exp(x) - 1 without cancellation near 0.
fn expm1_f32(x_in: f32) -> f32 {
    // Below -30, expm1 is -1 in f32; the clamp keeps 2^k normal.
    let x = clamp(x_in, -30.0, 89.0);
    if (abs(x) <= 0.34657) {
        return fma(x * x, poly_exp_p(x), x);
    }
    let k = round(x * LOG2E);
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = keep(hi - lo);
    let rl = keep(hi - r) - lo;
    // q = expm1(r + rl), |r| <= ln2/2
    let q = r + fma(r * r, poly_exp_p(r), fma(rl, r, rl));
    if (k > 60.0) {
        return scale2(1.0 + q, i32(k));
    }
    // expm1(x) = (2^k - 1) + 2^k q; 2^k - 1 is exact for -24 <= k <= 24.
    let t = pow2i(i32(k));
    return (t - 1.0) + t * q;
}

// ---------------------------------------------------------------------------------------
// log1p on [0, 1], the only range the activations need (log1p(exp(-|h|))).

const LN2_F32_HI: f32 = 0.6931471824645996;
const LN2_F32_LO: f32 = -1.9046542121259336e-09;

// log1p(f) for f in [-0.21, 0.61]
fn log1p_core(f: f32) -> f32 {
    return fma(f * f, fma(f, poly_log1p_l(f), -0.5), f);
}

// log1p(e) for e in [0, 1]
fn log1p_unit(e: f32) -> f32 {
    if (e <= 0.6) {
        return log1p_core(e);
    }
    // 1 + e = 2 (1 + f) with f = (e - 1) / 2 exact, f in (-0.2, 0]
    let f = (e - 1.0) * 0.5;
    return LN2_F32_HI + (log1p_core(f) + LN2_F32_LO);
}

// softplus(h + l) / beta = log1p(exp(h + l)) / beta, finite everywhere, no cancellation.
fn softplus_pair_div(h: f32, l: f32, beta: f32) -> f32 {
    if (h > 0.0) {
        // h + log1p(exp(-h)): the low part of exp and the l term (weight sigmoid(h))
        // both enter through d log1p(e) = de / (1 + e).
        let parts = exp_parts(-h);
        let e = scale2(parts.x, i32(parts.z));
        let el = scale2(parts.y, i32(parts.z));
        let tail = log1p_unit(e) + (el + l) / (1.0 + e);
        return (h + tail) / beta;
    }
    if (h < -20.0) {
        // log1p(e) rounds to e; scale last so a normal result survives a subnormal exp.
        let e = exp_pair_parts(h, l);
        return scale2_wide((e.x + e.y) / beta, i32(e.z));
    }
    // log1p(e + el) = log1p(e) + el / (1 + e)
    let parts = exp_pair_parts(h, l);
    let e = scale2(parts.x, i32(parts.z));
    let el = scale2(parts.y, i32(parts.z));
    return (log1p_unit(e) + el / (1.0 + e)) / beta;
}

// ---------------------------------------------------------------------------------------
// Sigmoid family

// x * sigmoid(h + l), finite everywhere: sigmoid(z) = 1 / (1 + e^-z) for z >= 0 and
// e^z / (1 + e^z) for z < 0, with e, 1 + e and x * e each kept as an exact pair, so the
// result rounds about once.
fn mul_sigmoid_pair(x: f32, h: f32, l: f32) -> f32 {
    if (h < -20.0) {
        if (h < -200.0) {
            // |x| e^h < 3.4e38 * 1.4e-87: zero, also for x = -inf (the limit is 0).
            return copy_sign(0.0, x);
        }
        // 1 + e^h rounds to 1: the result is x e^h, scaled last (an x above 2^126 as a
        // quarter, so x times the parts, up to 1.5, cannot overflow: glu at a = -2.7e38,
        // b = -80.8 was -inf; it is -2086.5).
        let e = exp_pair_parts(h, l);
        let big = abs(x) > 8.5070592e37;
        let m = x * select(1.0, 0.25, big);
        return scale2_wide(m * (e.x + e.y), i32(e.z) + select(0, 2, big));
    }
    let neg = h < 0.0;
    let parts = exp_pair_parts(-abs(h), select(-l, l, neg));
    let e = scale2(parts.x, i32(parts.z));
    let el = scale2(parts.y, i32(parts.z));
    let d = two_sum(1.0, e);
    let xe = two_prod(x, e);
    let num = select(x, xe.x, neg);
    let num_lo = select(0.0, fma(x, el, xe.y), neg);
    // sigmoid > 0: the result has the sign of x, also where a flushing adapter zeroes it.
    return copy_sign(div_pair(num, num_lo, d.x, d.y + el), x);
}

fn scale2_parts(e: vec3<f32>) -> f32 {
    return scale2(e.x + e.y, i32(e.z));
}

// tanh(|x|) for |x| >= 0.625: 1 - 2 / (expm1(2|x|) + 2)
fn tanh_far(a: f32) -> f32 {
    let d = two_sum(expm1_f32(2.0 * a), 2.0);
    return 1.0 - div_pair(2.0, 0.0, d.x, d.y);
}

fn tanh_f32(x: f32) -> f32 {
    let a = abs(x);
    if (a < 2.4414062e-4) {
        // |x| < 2^-12: tanh(x) = x (1 - x^2/3 + ...) rounds to x; returned as it came, so
        // a subnormal x keeps its value and sign on an adapter that flushes arithmetic.
        return x;
    }
    if (a < 0.625) {
        return fma(x * (x * x), poly_tanh_t(x * x), x);
    }
    if (a > 9.5) {
        return copy_sign(1.0, x);
    }
    return copy_sign(tanh_far(a), x);
}

// ---------------------------------------------------------------------------------------
// erf / erfc, for GELU

// erfcx(a) = exp(a^2) erfc(a) for 0.35 <= a <= 3.5
fn erfcx_near(a: f32) -> f32 {
    return poly_erfcx_near(a - 1.925);
}

// G(a) = a erfcx(a) for a >= 3.5, with its constant 1/sqrt(pi) carried as a pair
fn a_erfcx_far(a: f32) -> f32 {
    let w = 1.0 / a;
    return ERFCX_FAR_C0_HI + fma(w, poly_erfcx_far_q(w), ERFCX_FAR_C0_LO);
}

const FRAC_1_SQRT_2_HI: f32 = 0.7071067690849304;
const FRAC_1_SQRT_2_LO: f32 = 1.2101617485882343e-08;
const FRAC_2_SQRT_PI: f32 = 1.1283791670955126;

// exp(-(a + al)^2) as parts, with (a + al)^2 = a^2 + 2 a al carried as a pair.
fn exp_neg_square(a: f32, al: f32) -> vec3<f32> {
    let sq = two_prod(a, a);
    return exp_pair_parts(-sq.x, -fma(2.0 * a, al, sq.y));
}

// x Phi(x) = x/2 erfc(-x / sqrt 2)
fn gelu_erf(x: f32) -> f32 {
    // t = x / sqrt(2) as a pair (th, tl)
    let p = two_prod(x, FRAC_1_SQRT_2_HI);
    let th = p.x;
    let tl = fma(x, FRAC_1_SQRT_2_LO, p.y);
    let a = abs(th);
    if (a < 0.35) {
        // 1 + erf(t) is in [0.62, 1.38]: no cancellation.
        let erf_t = th * poly_erf_e(th * th);
        // x Phi(x) has the sign of x, also where a flushing adapter zeroes it.
        return copy_sign(0.5 * x + 0.5 * x * erf_t, x);
    }
    if (a > 15.0) {
        // erfc(15) ~ 1e-99: the result is x or -0.
        return select(x, -0.0, x < 0.0);
    }
    // erfc(a + al) = exp(-(a + al)^2) erfcx(a + al)
    let al = select(tl, -tl, th < 0.0);
    let e = exp_neg_square(a, al);
    var half_erfc_m: f32;
    if (a > 3.5) {
        // erfc(t) = exp(-t^2) G(t) / t, and x / (2t) = -1/sqrt(2) exactly for x < 0, so the
        // division by t (and its rounding) cancels out of x/2 erfc(t).
        let g = a_erfcx_far(a);
        let eg = two_prod(e.x, g);
        let m = eg.x + fma(e.y, g, eg.y);
        let r = two_prod(FRAC_1_SQRT_2_HI, m);
        let v = r.x + fma(FRAC_1_SQRT_2_LO, m, r.y);
        if (x < 0.0) {
            return -scale2(v, i32(e.z));
        }
        // 0.5 erfc(t) = v / (sqrt(2) t) = v / x
        half_erfc_m = v / x;
    } else {
        let f0 = erfcx_near(a);
        // d/da erfcx(a) = 2 a erfcx(a) - 2/sqrt(pi)
        let f = fma(al, fma(2.0 * a, f0, -FRAC_2_SQRT_PI), f0);
        let ef = fma(e.x, f, e.y * f);
        if (x < 0.0) {
            return scale2(0.5 * x * ef, i32(e.z));
        }
        half_erfc_m = 0.5 * ef;
    }
    let half_erfc = scale2(half_erfc_m, i32(e.z));
    return x - x * half_erfc;
}

const SQRT_8_OVER_PI_HI: f32 = 1.5957691669464111;
const SQRT_8_OVER_PI_LO: f32 = -4.534068054340423e-08;
const GELU_TANH_C3_HI: f32 = 0.07135481387376785;
const GELU_TANH_C3_LO: f32 = 2.3988324659995897e-09;

// x/2 (1 + tanh(u)) = x sigmoid(2u), 2u = x (sqrt(8/pi) + sqrt(8/pi) 0.044715 x^2)
fn gelu_tanh(x: f32) -> f32 {
    let a = abs(x);
    if (a > 100.0) {
        // |2u| > 7e4: sigmoid is 0 (or 1) far beyond f32's range.
        return select(x, -0.0, x < 0.0);
    }
    let v = gelu_tanh_arg(x);
    return mul_sigmoid_pair(x, v.x, v.y);
}

// 2u = x (c1 + c3 x^2) as a pair: the constants and x^2 each carry a low part, because
// exp(2u) turns an error of e in 2u into a relative error of e in the result.
fn gelu_tanh_arg(x: f32) -> vec2<f32> {
    let sq = two_prod(x, x);
    let c = two_prod(GELU_TANH_C3_HI, sq.x);
    let cl = fma(GELU_TANH_C3_HI, sq.y, fma(GELU_TANH_C3_LO, sq.x, c.y));
    let s = two_sum(SQRT_8_OVER_PI_HI, c.x);
    let sl = s.y + (cl + SQRT_8_OVER_PI_LO);
    let v = two_prod(x, s.x);
    return vec2<f32>(v.x, fma(x, sl, v.y));
}

// ---------------------------------------------------------------------------------------
// The activations. `p` holds parameters in the op table's order.

fn act_identity(x: f32, p: vec4<f32>) -> f32 {
    return x;
}

fn act_binary_step(x: f32, p: vec4<f32>) -> f32 {
    return select(1.0, 0.0, is_negative(x));
}

fn act_sigmoid(x: f32, p: vec4<f32>) -> f32 {
    return mul_sigmoid_pair(1.0, x, 0.0);
}

fn act_tanh(x: f32, p: vec4<f32>) -> f32 {
    return tanh_f32(x);
}

fn act_relu(x: f32, p: vec4<f32>) -> f32 {
    return select(x, 0.0, is_negative(x));
}

// clamp that is exact for subnormals too (ordered compares); NaN never reaches it (the
// kernels pass NaN inputs through before calling an activation).
fn clamp_keep(x: f32, lo: f32, hi: f32) -> f32 {
    return select(select(x, lo, exact_lt(x, lo)), hi, exact_gt(x, hi));
}

fn act_relu6(x: f32, p: vec4<f32>) -> f32 {
    return clamp_keep(x, 0.0, 6.0);
}

fn act_leaky_relu(x: f32, p: vec4<f32>) -> f32 {
    return select(mul_rescued(x, p.x), x, is_positive(x));
}

fn act_elu(x: f32, p: vec4<f32>) -> f32 {
    if (is_positive(x)) {
        return x;
    }
    if (x > -1.0e-30) {
        // expm1(x) rounds to x: alpha x, also for a subnormal x (alpha > 1 makes it normal).
        return mul_rescued(x, p.x);
    }
    return p.x * expm1_f32(x);
}

// SELU's scale and scale * alpha, each as a pair so the product rounds once.
const SELU_SCALE_HI: f32 = 1.0507010221481323;
const SELU_SCALE_LO: f32 = -3.479265231476347e-08;
const SELU_SCALE_ALPHA_HI: f32 = 1.7580993175506592;
const SELU_SCALE_ALPHA_LO: f32 = 2.3296717444054593e-08;

fn act_selu(x: f32, p: vec4<f32>) -> f32 {
    if (abs(x) < 1.0e-30) {
        // expm1(x) rounds to x: c x, scaled up first so that a subnormal x (for which c x
        // is normal) survives a flushing adapter, and c as a pair so it rounds once.
        let xs = up64(x);
        let hi = select(SELU_SCALE_ALPHA_HI, SELU_SCALE_HI, is_positive(x));
        let lo = select(SELU_SCALE_ALPHA_LO, SELU_SCALE_LO, is_positive(x));
        let prod = two_prod(hi, xs);
        let big = prod.x + fma(lo, xs, prod.y);
        return select(mul_rescued(x, hi), scale2(big, -64), abs(big) >= 2.168404344971009e-19);
    }
    // (c_hi + c_lo) * v with the product c_hi * v kept exact: one rounding at the end.
    let v = select(expm1_f32(x), x, x > 0.0);
    if (is_inf_f32(v)) {
        return v;
    }
    let hi = select(SELU_SCALE_ALPHA_HI, SELU_SCALE_HI, x > 0.0);
    let lo = select(SELU_SCALE_ALPHA_LO, SELU_SCALE_LO, x > 0.0);
    let prod = two_prod(hi, v);
    return prod.x + fma(lo, v, prod.y);
}

fn act_celu(x: f32, p: vec4<f32>) -> f32 {
    if (x > 0.0) {
        return x;
    }
    let alpha = p.x;
    // u = x / alpha as a pair (u, ul): the remainder x - u alpha is exact.
    let u = keep(x / alpha);
    if (abs(u) < 5.9604645e-8) {
        // |x / alpha| < 2^-24: celu(x) = x (1 + u/2 + ...) rounds to x. Also where u is
        // subnormal (and flushed) but x is not.
        return x;
    }
    let ua = two_prod(u, alpha);
    let ul = select(0.0, (keep(x - ua.x) - ua.y) / alpha, u > -30.0);
    let m = expm1_f32(u);
    // expm1(u + ul) = expm1(u) + ul exp(u)
    return alpha * fma(ul, m + 1.0, m);
}

fn act_gelu(x: f32, p: vec4<f32>) -> f32 {
    return gelu_erf(x);
}

fn act_gelu_tanh(x: f32, p: vec4<f32>) -> f32 {
    return gelu_tanh(x);
}

fn act_silu(x: f32, p: vec4<f32>) -> f32 {
    return mul_sigmoid_pair(x, x, 0.0);
}

fn act_swish(x: f32, p: vec4<f32>) -> f32 {
    // two_prod's error term is 0 where beta * x is huge or infinite.
    let h = two_prod(p.x, x);
    return mul_sigmoid_pair(x, h.x, h.y);
}

fn act_mish(x: f32, p: vec4<f32>) -> f32 {
    // tanh(softplus(x)) = (1 + 2e) / (1 + 2e + 2e^2) with e = exp(-x), for x >= 0,
    //                   = n / (n + 2) with n = e (e + 2), e = exp(x), for x < 0.
    if (x > 15.0) {
        // 2e^2 / (1 + 2e + 2e^2) < 2^-40: tanh(softplus(x)) rounds to 1.
        return x;
    }
    if (abs(x) < 1.0e-30) {
        // mish(x) = x tanh(ln 2) + O(x^2) = 0.6 x, also for a subnormal x (on the bits).
        return mul_rescued(x, 0.6);
    }
    if (x >= 0.0) {
        let e = exp_f32(-x);
        let ee = 2.0 * e * e;
        let d = two_sum(1.0, 2.0 * e);
        let dd = two_sum(d.x, ee);
        return x - x * div_pair(ee, 0.0, dd.x, dd.y + d.y);
    }
    if (x < -20.0) {
        // n / (n + 2) rounds to e: the result is x e^x, scaled last (0 below -200,
        // also for x = -inf, whose limit is 0).
        if (x < -200.0) {
            return -0.0;
        }
        let e = exp_parts(x);
        return scale2_wide(x * (e.x + e.y), i32(e.z));
    }
    let e = exp_f32(x);
    let n = e * (e + 2.0);
    let d = two_sum(n, 2.0);
    return div_pair(x * n, 0.0, d.x, d.y);
}

fn act_softplus(x: f32, p: vec4<f32>) -> f32 {
    let beta = p.x;
    let h = two_prod(beta, x);
    // PyTorch's linear region: beta * x (rounded to f32) > threshold
    if (h.x > p.y) {
        return x;
    }
    return softplus_pair_div(h.x, h.y, beta);
}

fn act_softsign(x: f32, p: vec4<f32>) -> f32 {
    let a = abs(x);
    if (a > 33554432.0) {
        // |x| > 2^25: 1 - 1 / (1 + |x|) rounds to 1. This also keeps the divisor within
        // [1, 2^126], where WGSL's division is defined (a GPU that divides through a
        // flushed reciprocal gave 0 for |x| > 2^126).
        return copy_sign(1.0, x);
    }
    let d = two_sum(1.0, a);
    // The sign of x, also where a flushing adapter zeroes a subnormal result.
    return copy_sign(div_pair(x, 0.0, d.x, d.y), x);
}

// 1/6 as a pair
const SIXTH_HI: f32 = 0.1666666716337204;
const SIXTH_LO: f32 = -4.967053879312289e-09;

fn act_hardsigmoid(x: f32, p: vec4<f32>) -> f32 {
    if (x <= -3.0) {
        return 0.0;
    }
    if (x >= 3.0) {
        return 1.0;
    }
    // (x + 3) / 6 with x + 3 kept opaque: a compiler may otherwise distribute the division
    // into x * (1/6) + 0.5, which cancels near x = -3 (524,288 ULP seen on a GPU). The
    // division is a product with 1/6 as a pair, so it rounds about once.
    let t = keep(x + 3.0);
    return fma(t, SIXTH_HI, t * SIXTH_LO);
}

fn act_hardswish(x: f32, p: vec4<f32>) -> f32 {
    if (x <= -3.0) {
        // x * 0 with x negative, as PyTorch: -0, made from the bits
        return copy_sign(0.0, x);
    }
    if (x >= 3.0) {
        return x;
    }
    return x * (x + 3.0) / 6.0;
}

fn act_hardtanh(x: f32, p: vec4<f32>) -> f32 {
    return clamp_keep(x, p.x, p.y);
}

fn act_logsigmoid(x: f32, p: vec4<f32>) -> f32 {
    // +inf: an exact 0, +0 as PyTorch's min(x, 0) - log1p(exp(-|x|)) gives it (a large
    // finite x's result is a negative tail, -0 once it underflows)
    return select(-softplus_pair_div(-x, 0.0, 1.0), 0.0, bitcast<u32>(x) == 0x7f800000u);
}

const THIRD_HI: f32 = 0.3333333432674408;
const THIRD_LO: f32 = -9.934107481068821e-09;

fn act_tanhshrink(x: f32, p: vec4<f32>) -> f32 {
    if ((bitcast<u32>(x) & 0x7fffffffu) == 0u) {
        // x - tanh(x) of a zero is +0 (-0 - -0 = +0), as PyTorch; a nonzero x keeps its
        // sign below, also where x^3 / 3 underflows
        return 0.0;
    }
    let a = abs(x);
    if (a < 1.0) {
        // x^3 (1/3 + s Q(s)), s = x^2, with x^3 and 1/3 each carried as a pair, so the
        // result rounds about once (tanh itself would cancel here).
        let s = two_prod(x, x);
        let c = two_prod(x, s.x);
        let cl = fma(x, s.y, c.y);
        let t = two_prod(c.x, THIRD_HI);
        let rest = fma(s.x, poly_tanhshrink_q(s.x), THIRD_LO);
        // The sign of x, also where the result is a flushed zero.
        return copy_sign(t.x + (t.y + fma(cl, THIRD_HI, c.x * rest)), x);
    }
    if (a > 9.5) {
        return copy_sign(a - 1.0, x);
    }
    // |x| - tanh|x| = (|x| - 1) + 2 / (expm1(2|x|) + 2), |x| - 1 exact for |x| < 2^24
    let d = two_sum(expm1_f32(2.0 * a), 2.0);
    return copy_sign((a - 1.0) + div_pair(2.0, 0.0, d.x, d.y), x);
}

fn act_softshrink(x: f32, p: vec4<f32>) -> f32 {
    let l = p.x;
    // x - l > 0 and x + l < 0 in their branches (lambd >= 0): the signs are set
    // explicitly, so a subnormal difference flushed to zero keeps its sign.
    return select(select(0.0, -abs(x + l), exact_lt(x, -l)), abs(x - l), exact_gt(x, l));
}

fn act_hardshrink(x: f32, p: vec4<f32>) -> f32 {
    let l = p.x;
    return select(0.0, x, exact_lt(x, -l) || exact_gt(x, l));
}

fn act_threshold(x: f32, p: vec4<f32>) -> f32 {
    return select(p.y, x, exact_gt(x, p.x));
}

fn act_gaussian(x: f32, p: vec4<f32>) -> f32 {
    if (abs(x) > 10.5) {
        // exp(-110) is below f32's smallest subnormal.
        return 0.0;
    }
    let sq = two_prod(x, x);
    return scale2_parts(exp_pair_parts(-sq.x, -sq.y));
}

// sqrt((x - c)^2 + a^2) as (r + corr) * 2^k, with d = x - c at the same scale as the pair
// (dh, dl): x - c and both squares are carried exactly, the operands are first scaled by
// a power of two so that the squares neither overflow nor underflow, and one Newton step
// with an exact residual corrects the builtin square root.
struct Radial {
    r: f32,
    corr: f32,
    k: i32,
    dh: f32,
    dl: f32,
}

fn radial(x: f32, c: f32, a: f32) -> Radial {
    let d = two_sum(x, -c);
    if (is_inf_f32(d.x)) {
        return Radial(abs(d.x), 0.0, 0, d.x, 0.0);
    }
    let m = max(abs(d.x), abs(a));
    if (m == 0.0) {
        return Radial(0.0, 0.0, 0, 0.0, 0.0);
    }
    let k = clamp(i32((bitcast<u32>(m) >> 23u) & 0xffu) - 127, -126, 126);
    let s = pow2i(-k);
    let dh = d.x * s;
    let dl = d.y * s;
    let am = a * s;
    let p = two_prod(dh, dh);
    let q = two_prod(am, am);
    let t = two_sum(p.x, q.x);
    let lo = ((t.y + p.y) + q.y) + 2.0 * dh * dl;
    let sh = t.x + lo;
    let sl = keep(t.x - sh) + lo;
    let r = sqrt(sh);
    let rr = two_prod(r, r);
    let corr = ((keep(sh - rr.x) - rr.y) + sl) / (2.0 * r);
    return Radial(r, corr, k, dh, dl);
}

fn act_multiquadric(x: f32, p: vec4<f32>) -> f32 {
    let e = radial(x, p.x, p.y);
    return scale2(e.r + e.corr, e.k);
}

fn act_inverse_multiquadric(x: f32, p: vec4<f32>) -> f32 {
    let e = radial(x, p.x, p.y);
    if (is_inf_f32(e.r)) {
        return 0.0;
    }
    return scale2(div_pair(1.0, 0.0, e.r, e.corr), -e.k);
}

fn act_prelu(x: f32, p: vec4<f32>) -> f32 {
    return select(mul_rescued(x, p.x), x, is_positive(x));
}

fn act_rrelu(x: f32, p: vec4<f32>) -> f32 {
    // Evaluation mode: a fixed slope (lower + upper) / 2; the halving is exact.
    let slope = (p.x + p.y) * 0.5;
    return select(mul_rescued(x, slope), x, is_positive(x));
}

// NaN in, NaN out, whatever the function does: tested by bits, because WGSL allows a
// compiler to fold `x != x` away.
fn pass_nan(x: f32, y: f32) -> f32 {
    return select(y, x, is_nan_f32(x));
}
