// The elementwise ops' backward: `fn grad_NAME(s: f32, g: f32, p: vec4<f32>) -> f32`
// returns grad_input from the saved value `s` (the forward's input x, or its output y for
// sigmoid and tanh, as the op table says) and grad_output `g`, with PyTorch's semantics:
// - a masked backward (`x <= 0 ? 0 : g`: relu, the clamps, the shrinks, threshold) gives
//   0 on the masked side whatever g is, and a NaN x goes where PyTorch's comparisons send
//   it (relu passes g through); the comparisons are on the bits (`gt`, `le`, ...), so
//   subnormal inputs are decided exactly where an adapter flushes float compares;
// - every other backward is g * f'(s): NaN for a NaN s or g, and at +-inf the limit of
//   f' (PyTorch's formulas give inf * 0 = NaN there for some ops).
//
// Numerics as in activations.wgsl: the derivative is computed as a value m at a scale
// 2^k where it can be tiny (exp tails), and g enters through `scaled_pair`, which splits g
// into mantissa and exponent from its bits, so that neither a subnormal g (flushed by an
// adapter) nor a product below f32's range before the final scaling loses the result.
// Where a derivative crosses zero (gelu, silu, mish near x = -1) its terms cancel, in f32
// as in any f32 library: the op table bounds those as `UlpOrAbs`.

// x > b, x >= b, x < b, x <= b: false for a NaN x (as a float compare is), exact on
// subnormals (as a float compare on a flushing adapter is not). b is never NaN.
fn gt(x: f32, b: f32) -> bool {
    return !is_nan_f32(x) && exact_gt(x, b);
}

fn ge(x: f32, b: f32) -> bool {
    return !is_nan_f32(x) && !exact_lt(x, b);
}

fn lt(x: f32, b: f32) -> bool {
    return !is_nan_f32(x) && exact_lt(x, b);
}

fn le(x: f32, b: f32) -> bool {
    return !is_nan_f32(x) && !exact_gt(x, b);
}

// PyTorch's masked backward: 0 where `masked`, else g.
fn masked(m: bool, g: f32) -> f32 {
    return select(g, 0.0, m);
}

// g as (m, k) with g = m 2^k and |m| in [1, 2), from the bits (a subnormal g too); zeros,
// infinities and NaN come back as (g, 0).
fn split_exp(g: f32) -> vec2<f32> {
    let bits = bitcast<u32>(g) & 0x7fffffffu;
    if (bits == 0u || bits >= 0x7f800000u) {
        return vec2<f32>(g, 0.0);
    }
    var b = bitcast<u32>(g);
    var k = 0;
    if (is_tiny(g)) {
        b = bitcast<u32>(up64(g));
        k = -64;
    }
    let m = bitcast<f32>((b & 0x807fffffu) | 0x3f800000u);
    return vec2<f32>(m, f32(k + i32((b >> 23u) & 0xffu) - 127));
}

// g (hi + lo) 2^k: one rounding in the product of g with the pair, then exact scaling
// down to the result (which rounds once more only where it is subnormal). A g below
// 2^-60 (a subnormal one from its bits, which a flushing adapter would zero) is first
// scaled up by 2^64 and one above 2^60 down by 2^64, so the product stays far inside
// f32's range for the pairs callers pass; without branches, which cost more than the
// arithmetic on a CPU adapter's SIMD lanes (measured on lavapipe: a split into mantissa
// and exponent behind a rarely taken branch made gaussian's backward 2.7x slower).
fn scaled_pair(g: f32, hi: f32, lo: f32, k: i32) -> f32 {
    let ag = abs(g);
    let small = ag < 8.673617379884035e-19;
    let big = ag > 1.152921504606847e18;
    let gs = select(select(g, up64(g), small), g * 5.421010862427522e-20, big);
    let e = k + select(select(0, -64, small), 64, big);
    // g (hi + lo) rounded once: a fused fma gives it directly; without one, an error-free
    // product (17 operations there), needed only when lo carries something
    var m: f32;
    if (FUSED_FMA) {
        m = fma(gs, hi, gs * lo);
    } else if (lo == 0.0) {
        m = gs * hi;
    } else {
        let p = two_prod(gs, hi);
        m = p.x + fma(gs, lo, p.y);
    }
    // A zero keeps the sign of g hi (an adapter that flushes a subnormal hi to -0 would
    // otherwise get +0 from the sum); an infinite g times the pair is g hi (its low part
    // of the other sign would make inf - inf).
    let mz = select(m, gs * hi, m == 0.0 || is_inf_f32(g));
    if (e == 0) {
        return mz;
    }
    if (e >= -252 && e <= 254) {
        return scale2(mz, e);
    }
    return scale2_wide(mz, e);
}

// g times a derivative that is not 0 but below f32's range (a tail; `negative` gives its
// sign): a zero of the product's sign for a finite g, and what the exact product is for
// the others: g's infinity (signed) or NaN. (A derivative that is exactly 0, at an
// infinite x, gives g * 0: NaN for an infinite g, as the f64 reference.)
fn g_times_tiny(g: f32, negative: bool) -> f32 {
    let s = select(g, -g, negative);
    return select(copy_sign(0.0, s), s, is_nan_f32(g) || is_inf_f32(g));
}

// g times an exact zero of the sign `negative` gives: a zero of the product's sign, NaN
// for a NaN or infinite g. Not `g * 0.0`: compilers fold that to 0, NaN g or not (lavapipe
// does).
fn g_times_zero(g: f32, negative: bool) -> f32 {
    let s = select(g, -g, negative);
    let nan = bitcast<f32>(0x7fc00000u * u32(opaque_one));
    return select(copy_sign(0.0, s), nan, is_nan_f32(g) || is_inf_f32(g));
}

// g sigmoid(h + l) for a backward: mul_sigmoid_pair, but below h = -200, where sigmoid
// underflows, the tail keeps a NaN or infinite g (mul_sigmoid_pair gives a zero there).
fn g_sigmoid(g: f32, h: f32, l: f32) -> f32 {
    if (h < -200.0) {
        return select(g_times_tiny(g, false), g_times_zero(g, false), is_inf_f32(h));
    }
    return mul_sigmoid_pair(g, h, l);
}

// g v, also where g is subnormal and g v is not.
fn g_times(g: f32, v: f32) -> f32 {
    return scaled_pair(g, v, 0.0, 0);
}

fn grad_identity(s: f32, g: f32, p: vec4<f32>) -> f32 {
    return g;
}

fn grad_binary_step(s: f32, g: f32, p: vec4<f32>) -> f32 {
    return 0.0;
}

// From the output: g (1 - y) y. 1 - y is exact for y >= 1/2; a subnormal y (x < -87)
// still gives a normal g y for a large g.
fn grad_sigmoid(y: f32, g: f32, p: vec4<f32>) -> f32 {
    return mul_rescued(y, g * (1.0 - y));
}

// From the output: g (1 - y)(1 + y), both factors exact for |y| >= 1/2 (1 - y^2 would
// cancel there).
fn grad_tanh(y: f32, g: f32, p: vec4<f32>) -> f32 {
    return g * ((1.0 - y) * (1.0 + y));
}

// x <= 0 on the bits: not positive (sign clear, nonzero) and not NaN
fn at_most_zero(x: f32) -> bool {
    return !is_positive(x) && !is_nan_f32(x);
}

fn grad_relu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return masked(at_most_zero(x), g);
}

fn grad_relu6(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return masked(at_most_zero(x) || ge(x, 6.0), g);
}

fn grad_leaky_relu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return select(mul_rescued(g, p.x), g, gt(x, 0.0));
}

fn grad_prelu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return grad_leaky_relu(x, g, p);
}

fn grad_rrelu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return select(mul_rescued(g, (p.x + p.y) * 0.5), g, gt(x, 0.0));
}

// g c exp(x) for x <= 0 with c = (chi + clo), else g: elu (c = alpha) and selu.
fn exp_branch(x: f32, g: f32, chi: f32, clo: f32) -> f32 {
    if (is_inf_f32(x)) {
        // exp(-inf) = 0 exactly
        return g_times_zero(g, chi < 0.0);
    }
    let e = exp_parts(x);
    let c = two_prod(chi, e.x);
    return scaled_pair(g, c.x, fma(chi, e.y, fma(clo, e.x, c.y)), i32(e.z));
}

fn grad_elu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (le(x, 0.0)) {
        return exp_branch(x, g, p.x, 0.0);
    }
    return g;
}

fn grad_selu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (le(x, 0.0)) {
        return exp_branch(x, g, SELU_SCALE_ALPHA_HI, SELU_SCALE_ALPHA_LO);
    }
    return scaled_pair(g, SELU_SCALE_HI, SELU_SCALE_LO, 0);
}

fn grad_celu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (!le(x, 0.0)) {
        return g;
    }
    // u = x / alpha with its remainder, as the forward computes it
    let alpha = p.x;
    let u = keep(x / alpha);
    let ua = two_prod(u, alpha);
    // (The remainder is kept at every u: below u = -30, where the forward's expm1 is -1
    // anyway, the derivative is exp(u) itself, whose relative error is |u| times u's.)
    let ul = select(0.0, (keep(x - ua.x) - ua.y) / alpha, abs(u) > 1.0e-30);
    if (is_inf_f32(u)) {
        // exp(-inf) = 0 (a negative alpha's +inf has no finite derivative: NaN)
        return select(g_times_zero(g, false), g * u, u > 0.0);
    }
    let e = exp_pair_parts(u, ul);
    return scaled_pair(g, e.x, e.y, i32(e.z));
}

// 1 / sqrt(pi) and 1 / sqrt(2 pi) as pairs
const INV_SQRT_PI_HI: f32 = 0.564189612865448;
const INV_SQRT_PI_LO: f32 = -2.9317691385699618e-08;
const INV_SQRT_2PI_HI: f32 = 0.3989422917366028;
const INV_SQRT_2PI_LO: f32 = -1.1335170135851058e-08;

// Phi(x) + x phi(x). With t = x / sqrt 2, a = |t|: for |t| < 0.35,
// 1/2 + (erf(t) / 2 + x phi(x)), whose inner terms share a sign; beyond, with
// D = exp(-t^2) (a / sqrt(pi) - erfcx(a) / 2): 1 + D for x >= 0 (no cancellation: it is
// at least 0.86) and -D for x < 0, which crosses zero at x = -0.75.
fn grad_gelu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    let pr = two_prod(x, FRAC_1_SQRT_2_HI);
    let th = pr.x;
    let tl = fma(x, FRAC_1_SQRT_2_LO, pr.y);
    let a = abs(th);
    if (a > 15.0) {
        // 1 to f32's precision above; below, exp(-225) times anything is a (negative)
        // tail, and exactly 0 at -inf
        if (x > 0.0) {
            return g;
        }
        return select(g_times_tiny(g, true), g_times_zero(g, true), is_inf_f32(x));
    }
    if (a < 0.35) {
        let erf_t = fma(tl, FRAC_2_SQRT_PI, th * poly_erf_e(th * th));
        let e = exp_neg_square(a, select(tl, -tl, th < 0.0));
        let ev = scale2(e.x + e.y, i32(e.z));
        let xphi = x * ev * INV_SQRT_2PI_HI;
        return g_times(g, 0.5 + fma(0.5, erf_t, xphi));
    }
    let al = select(tl, -tl, th < 0.0);
    let e = exp_neg_square(a, al);
    var f0: f32;
    if (a > 3.5) {
        f0 = a_erfcx_far(a) / a;
    } else {
        f0 = erfcx_near(a);
    }
    // erfcx(a + al), and b = (a + al) / sqrt(pi) - erfcx / 2
    let f = fma(al, fma(2.0 * a, f0, -FRAC_2_SQRT_PI), f0);
    let ap = two_prod(a, INV_SQRT_PI_HI);
    let b = ap.x + (fma(al, INV_SQRT_PI_HI, fma(a, INV_SQRT_PI_LO, ap.y)) - 0.5 * f);
    let m = two_prod(b, e.x);
    let ml = fma(b, e.y, m.y);
    if (x < 0.0) {
        return scaled_pair(g, -m.x, -ml, i32(e.z));
    }
    return g_times(g, 1.0 + scale2(m.x + ml, i32(e.z)));
}

// g sigmoid(z) (1 + w (1 - sigmoid(z))) for z = h + l: the derivative of x sigmoid(z(x))
// with w = x z'(x) (silu, swish, gelu(tanh)). With e = exp(-|z|) it is
// g (1 + e + w e) / (1 + e)^2 for z >= 0 (w >= 0 there, for all three) and
// g e (1 + e + w) / (1 + e)^2 for z < 0, where 1 + w may cancel (the root near x = -1.3).
fn sigmoid_product_grad(g: f32, h: f32, l: f32, w: f32) -> f32 {
    if (is_inf_f32(h)) {
        // the limits: 1 at +inf, exactly 0 at -inf
        return select(g_times_zero(g, false), g, h > 0.0);
    }
    if (h < -200.0) {
        // e^h (1 + w) is a tail for any f32 g (|w| <= 2^128 |h| / 200 here), negative
        // where 1 + w is
        return g_times_tiny(g, w < -1.0);
    }
    let neg = h < 0.0;
    let parts = exp_pair_parts(-abs(h), select(-l, l, neg));
    let e = scale2(parts.x + parts.y, i32(parts.z));
    let d = two_sum(1.0, e);
    let dd = two_prod(d.x, d.x);
    let ddl = fma(2.0 * d.x, d.y, dd.y);
    if (!neg) {
        let n = two_sum(1.0, e * (1.0 + w));
        return g_times(g, div_pair(n.x, n.y, dd.x, ddl));
    }
    let n = two_sum(w, 1.0);
    let q = div_pair(n.x, n.y + e, dd.x, ddl);
    let m = two_prod(q, parts.x);
    return scaled_pair(g, m.x, fma(q, parts.y, m.y), i32(parts.z));
}

fn grad_silu(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return pass_nan(x, sigmoid_product_grad(g, x, 0.0, x));
}

fn grad_swish(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (p.x == 0.0) {
        // x sigmoid(0) = x / 2, also at the infinities (where beta x would be NaN)
        return pass_nan(x, g * 0.5);
    }
    let h = two_prod(p.x, x);
    return pass_nan(x, sigmoid_product_grad(g, h.x, h.y, h.x));
}

fn grad_gelu_tanh(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    if (abs(x) > 100.0) {
        if (x > 0.0) {
            return g;
        }
        return select(g_times_tiny(g, true), g_times_zero(g, true), is_inf_f32(x));
    }
    // z = 2u as the forward computes it, and w = x z'(x) = x (c1 + 3 c3 x^2)
    let z = gelu_tanh_arg(x);
    let w = x * fma(3.0 * GELU_TANH_C3_HI, x * x, SQRT_8_OVER_PI_HI);
    return sigmoid_product_grad(g, z.x, z.y, w);
}

// mish'(x) in closed forms (see cpu::derivative::mish): for x >= 0 with E = exp(-x),
// ((1 + 2E) q + 4x E^2 (1 + E)) / q^2, q = 1 + 2E + 2E^2 (all terms positive); for x < 0
// with e = exp(x), e ((e + 2)(e^2 + 2e + 2) + 4x (1 + e)) / (e (e + 2) + 2)^2, e as parts.
fn grad_mish(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    if (is_inf_f32(x)) {
        return select(g_times_zero(g, true), g, x > 0.0);
    }
    if (x < -200.0) {
        // e^x (1 + x) / ...: a negative tail
        return g_times_tiny(g, true);
    }
    if (x > 20.0) {
        // mish' = 1 + O(x e^-2x): 1 to f32's precision (and 4x must not overflow below)
        return g;
    }
    if (x >= 0.0) {
        let e = exp_f32(-x);
        let q = fma(2.0 * e, e, fma(2.0, e, 1.0));
        let num = fma(1.0 + 2.0 * e, q, 4.0 * x * (e * e) * (1.0 + e));
        let qq = two_prod(q, q);
        return g_times(g, div_pair(num, 0.0, qq.x, qq.y));
    }
    let parts = exp_parts(x);
    let e = scale2(parts.x + parts.y, i32(parts.z));
    let n2 = fma(e, e + 2.0, 2.0);
    let t = two_sum(4.0 * x, 4.0);
    // (e + 2)(e^2 + 2e + 2) = 4 + e (6 + 4e + e^2); 4 + 4x as an exact pair
    let num = fma(e, fma(e, e + 4.0, 6.0), t.x) + fma(4.0 * x, e, t.y);
    let nn = two_prod(n2, n2);
    let q = div_pair(num, 0.0, nn.x, nn.y);
    let m = two_prod(q, parts.x);
    return scaled_pair(g, m.x, fma(q, parts.y, m.y), i32(parts.z));
}

fn grad_softplus(x: f32, g: f32, p: vec4<f32>) -> f32 {
    let h = two_prod(p.x, x);
    // PyTorch's linear region, decided on beta * x rounded to f32, as the forward
    if (h.x > p.y) {
        return g;
    }
    return pass_nan(x, g_sigmoid(g, h.x, h.y));
}

// g / (1 + |x|)^2, with 1 + |x| an exact pair brought to [1, 2) by its exponent first, so
// neither the square nor the division leaves f32's range for any x.
fn grad_softsign(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    if (is_inf_f32(x)) {
        return g_times_zero(g, false);
    }
    let d = two_sum(1.0, abs(x));
    let k = i32((bitcast<u32>(d.x) >> 23u) & 0xffu) - 127;
    let dm = bitcast<f32>((bitcast<u32>(d.x) & 0x007fffffu) | 0x3f800000u);
    let dl = scale2(d.y, -k);
    let dd = two_prod(dm, dm);
    let q = div_pair(1.0, 0.0, dd.x, fma(2.0 * dm, dl, dd.y));
    return scaled_pair(g, q, 0.0, -2 * k);
}

fn grad_hardsigmoid(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (gt(x, -3.0) && lt(x, 3.0)) {
        // g / 6 with 1/6 as a pair: rounded once with a fused fma, at most twice without
        // (the sign of g, also where a flushing adapter left a zero)
        return copy_sign(fma(g, SIXTH_HI, g * SIXTH_LO), g);
    }
    return 0.0;
}

// PyTorch 2.15's: 0 for x <= -3, g (x / 3 + 1/2) = g (2x + 3) / 6 on (-3, 3), g from 3
// up (and for NaN). (Releases before pytorch/pytorch#147801 gave -g/2 at -3 and 3g/2 at
// 3, the one-sided derivatives from the inside.)
fn grad_hardswish(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (le(x, -3.0)) {
        return 0.0;
    }
    if (lt(x, 3.0)) {
        // 2x + 3 rounds only where it is near 3 (near its root -1.5 it is exact, by
        // Sterbenz's lemma): half an ULP relative everywhere. Kept opaque: a compiler may
        // distribute the product by 1/6 over it, which cancels near -1.5 (as in the
        // forward's hardsigmoid).
        let t = keep(2.0 * x + 3.0);
        return scaled_pair(g, fma(t, SIXTH_HI, t * SIXTH_LO), 0.0, 0);
    }
    return g;
}

fn grad_hardtanh(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return masked(le(x, p.x) || ge(x, p.y), g);
}

fn grad_logsigmoid(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return pass_nan(x, g_sigmoid(g, -x, 0.0));
}

fn grad_tanhshrink(x: f32, g: f32, p: vec4<f32>) -> f32 {
    let t = tanh_f32(x);
    return pass_nan(x, (g * t) * t);
}

fn grad_softshrink(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return masked(ge(x, -p.x) && le(x, p.x), g);
}

fn grad_hardshrink(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return grad_softshrink(x, g, p);
}

fn grad_threshold(x: f32, g: f32, p: vec4<f32>) -> f32 {
    return masked(le(x, p.x), g);
}

// -2x exp(-x^2) g, exp as parts: with a large g the result is normal up to |x| = 13.8.
// A subnormal x (whose -2x g may be normal) enters from its bits, scaled by 2^64.
fn grad_gaussian(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    if (abs(x) > 14.5) {
        // a tail of the sign of -x, exactly 0 at the infinities
        return select(g_times_tiny(g, x > 0.0), g_times_zero(g, x > 0.0), is_inf_f32(x));
    }
    let tiny = abs(x) < 1.0e-30;
    let xs = select(x, up64(x), tiny);
    let sq = two_prod(x, x);
    let e = exp_pair_parts(-sq.x, -sq.y);
    return scaled_pair(g, -2.0 * xs * (e.x + e.y), 0.0, i32(e.z) + select(0, -64, tiny));
}

// (x - c) / r, r = sqrt((x - c)^2 + a^2), both at the scale radial() brings them to; 0
// where r = 0 (x = c and a = 0, the cone's tip).
fn grad_multiquadric(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    let e = radial(x, p.x, p.y);
    if (is_inf_f32(e.dh)) {
        return g * sign(e.dh);
    }
    if (e.r == 0.0) {
        return g_times_zero(g, false);
    }
    // x - c = x subnormal (a flushing adapter zeroes it) enters from its bits at 2^64,
    // since g x / r may be normal; the sign of x - c also where a zero was left
    let rescue = is_tiny(x) && p.x == 0.0;
    let num = select(e.dh, up64(x), rescue);
    let q = copy_sign(div_pair(num, select(e.dl, 0.0, rescue), e.r, e.corr), num);
    return scaled_pair(g, q, 0.0, select(0, -64 - e.k, rescue));
}

// -(x - c) / r^3 at radial()'s scale 2^k (r^3 an exact pair but for its last term): the
// result is scaled by 2^(-2k) last.
fn grad_inverse_multiquadric(x: f32, g: f32, p: vec4<f32>) -> f32 {
    if (is_nan_f32(x)) {
        return x;
    }
    let e = radial(x, p.x, p.y);
    if (is_inf_f32(e.dh)) {
        return g_times_zero(g, e.dh > 0.0);
    }
    if (e.r == 0.0) {
        return g_times_zero(g, false);
    }
    // r^3 as a pair from r + corr, then one division
    let rr = two_prod(e.r, e.r);
    let rrl = fma(2.0 * e.r, e.corr, rr.y);
    let r3 = two_prod(rr.x, e.r);
    let r3l = fma(rr.x, e.corr, fma(rrl, e.r, r3.y));
    // a subnormal x - c = x from its bits at 2^64, as in grad_multiquadric
    let rescue = is_tiny(x) && p.x == 0.0;
    let num = select(e.dh, up64(x), rescue);
    let q = copy_sign(div_pair(num, select(e.dl, 0.0, rescue), r3.x, r3l), num);
    return scaled_pair(g, -q, 0.0, select(-2 * e.k, -64 - 3 * e.k, rescue));
}
