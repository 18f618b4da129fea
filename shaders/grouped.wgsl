// Grouped ops along one axis: each output element reduces a group of the input.
//
// maxout / fold_max / fold_min / fold_mean: the tensor is viewed as (groups, k, inner),
// where groups = outer * (axis / k): output r (r < groups * inner) reduces the k elements
// (r / inner) * k * inner + r % inner + j * inner, j < k. glu: the axis splits into halves
// a and b of h = axis / 2 elements; output (o, j, i) is a * sigmoid(b) with
// a = in[o, j, i] and b = in[o, j + h, i].
//
// The host's generated prelude (src/device/wgsl.rs) defines GROUP_MAX, GROUP_MIN, GROUP_MEAN,
// GROUP_GLU (op::GroupKind's ids), GROUP_KIND (this module's) and WORKGROUP_SIZE. One invocation per output, with
// a grid-stride loop.

struct Groups {
    outputs: u32,    // output elements in this dispatch
    k: u32,          // group size (glu: the half length h)
    inner: u32,      // stride of the grouped axis
    in_offset: u32,  // element offsets in the bindings
    out_offset: u32,
    one: u32,        // 1; the source of opaque_one
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(2) var<uniform> groups_u: Groups;

fn nan_value() -> f32 {
    return bitcast<f32>(0x7fc00000u * groups_u.one);
}

// max / min / mean of group r; NaN if any element is NaN (WGSL's max and min may drop it).
fn reduce_group(r: u32) -> f32 {
    let k = groups_u.k;
    let inner = groups_u.inner;
    let base = groups_u.in_offset + (r / inner) * k * inner + r % inner;
    var acc = src_load(base);
    // the mean's sum, compensated: within an ULP or so even when the group cancels
    var sc = vec2<f32>(acc, 0.0);
    var any_nan = is_nan_f32(acc);
    for (var j = 1u; j < k; j++) {
        let x = src_load(base + j * inner);
        any_nan = any_nan || is_nan_f32(x);
        // Ordered compares, not max/min: exact for subnormals on adapters that flush.
        if (GROUP_KIND == GROUP_MAX) {
            acc = select(acc, x, exact_gt(x, acc));
        } else if (GROUP_KIND == GROUP_MIN) {
            acc = select(acc, x, exact_lt(x, acc));
        } else {
            sc = add_compensated(sc, x);
        }
    }
    if (GROUP_KIND == GROUP_MEAN) {
        acc = mean_of(sc.x + sc.y, base, k, inner);
    }
    return select(acc, nan_value(), any_nan);
}

// x * 2^64, exactly (from the bits for a subnormal x, which a flushing adapter would
// zero), for |x| < 2^63; infinite beyond.
fn times_2_pow_64(x: f32) -> f32 {
    return select(x * 18446744073709551616.0, up64(x), is_tiny(x));
}

// The mean from the group's sum (with the mean's sign, also where it flushes to zero);
// when the sum of finite values overflowed (two values near f32's maximum), sums again
// with every value scaled by 2^-32 (exact for values that large) and scales the mean
// back; when the sum is below 2^-60, sums again with every value scaled by 2^64, so that
// subnormal values a flushing adapter would zero still count where the mean is normal.
fn mean_of(sum: f32, base: u32, k: u32, inner: u32) -> f32 {
    if (abs(sum) < 8.673617379884035e-19) {
        var up = vec2<f32>(0.0);
        for (var j = 0u; j < k; j++) {
            up = add_compensated(up, times_2_pow_64(src_load(base + j * inner)));
        }
        let total = up.x + up.y;
        if (!is_inf_f32(total) && !is_nan_f32(total)) {
            // |mean| 2^64 < 2^4: scale2 rounds once, to a subnormal or zero of its sign
            return copy_sign(scale2(total / f32(k), -64), total);
        }
    }
    if (!is_inf_f32(sum)) {
        return copy_sign(sum / f32(k), sum);
    }
    var sc = vec2<f32>(0.0);
    for (var j = 0u; j < k; j++) {
        let x = src_load(base + j * inner);
        if (is_inf_f32(x)) {
            return sum / f32(k); // a true infinity (or inf - inf = NaN) stands
        }
        sc = add_compensated(sc, x * 2.3283064365386963e-10);
    }
    return ((sc.x + sc.y) / f32(k)) * 4294967296.0;
}

fn glu_at(t: u32) -> f32 {
    let h = groups_u.k;
    let inner = groups_u.inner;
    let o = t / (h * inner);
    let rest = t - o * h * inner;
    let ia = groups_u.in_offset + o * 2u * h * inner + rest;
    let a = src_load(ia);
    let b = src_load(ia + h * inner);
    if (is_nan_f32(a) || is_nan_f32(b)) {
        return nan_value();
    }
    if (GATED) {
        // the gated units: gate(a) b, one rounding past the gate's (a subnormal gate
        // value from its bits, where its product with b is normal)
        return mul_rescued(gate(a), b);
    }
    if (is_inf_f32(a)) {
        // sigmoid(b) > 0 for every b > -inf; inf * sigmoid(-inf) = inf * 0 is NaN
        return select(a, nan_value(), is_inf_f32(b) && b < 0.0);
    }
    return mul_sigmoid_pair(a, b, 0.0);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn grouped_lane(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(groups_u.one);
    for (var t = gid.x; t < groups_u.outputs; t += groups.x * WORKGROUP_SIZE) {
        var y: f32;
        if (GROUP_KIND == GROUP_GLU || GATED) {
            y = glu_at(t);
        } else {
            y = reduce_group(t);
        }
        dst_store(groups_u.out_offset + t, y);
    }
}

// The workgroup's maximum of the invocations' `m`, exact for subnormals: an atomic max
// of each value's place in the float order (`order_key` as an unsigned word), where a
// subgroup or tree max of floats may flush.
var<workgroup> group_best: atomic<u32>;

fn wg_max_exact(m: f32, inv: Invocation) -> f32 {
    if (inv.lid == 0u) {
        atomicStore(&group_best, 0u);
    }
    workgroupBarrier();
    atomicMax(&group_best, bitcast<u32>(order_key(m)) ^ 0x80000000u);
    workgroupBarrier();
    let key = bitcast<i32>(atomicLoad(&group_best) ^ 0x80000000u);
    workgroupBarrier();
    return bitcast<f32>(select(key, bitcast<i32>(0x80000000u) - key, key < 0));
}

// -x by its sign bit (a flushing adapter's negation may zero a subnormal).
fn negate_bits(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ 0x80000000u);
}

// One workgroup per output, for large groups: each invocation folds a strided share of
// the group, then the workgroup reductions (reduce_*.wgsl) combine the shares. NaN is
// counted separately (max may drop it); the mean sums at 1 and at 2^-32 scale at once, so
// an overflowing sum needs no second pass (barriers stay in uniform control flow).
@compute @workgroup_size(WORKGROUP_SIZE)
fn grouped_workgroup(inv: Invocation,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(groups_u.one);
    let k = groups_u.k;
    let inner = groups_u.inner;
    let neg_inf = -bitcast<f32>(0x7f800000u * groups_u.one);
    for (var r = wid.x; r < groups_u.outputs; r += groups.x) {
        let base = groups_u.in_offset + (r / inner) * k * inner + r % inner;
        var m = neg_inf;
        var flags = vec2<f32>(0.0); // (NaN seen, infinity seen)
        var sc = vec2<f32>(0.0);
        var scaled = vec2<f32>(0.0);
        var up = vec2<f32>(0.0);
        for (var j = inv.lid; j < k; j += WORKGROUP_SIZE) {
            let x = src_load(base + j * inner);
            flags += vec2<f32>(f32(is_nan_f32(x)), f32(is_inf_f32(x)));
            if (GROUP_KIND == GROUP_MAX) {
                m = select(m, x, exact_gt(x, m));
            } else if (GROUP_KIND == GROUP_MIN) {
                m = select(m, negate_bits(x), exact_gt(negate_bits(x), m));
            } else {
                sc = add_compensated(sc, x);
                scaled = add_compensated(scaled, x * 2.3283064365386963e-10);
                up = add_compensated(up, times_2_pow_64(x));
            }
        }
        let seen = wg_sum2(flags, inv);
        var y: f32;
        if (GROUP_KIND == GROUP_MEAN) {
            let total = wg_sum_compensated(sc, inv);
            let small = wg_sum_compensated(scaled, inv);
            let large = wg_sum_compensated(up, inv);
            let sum = total.x + total.y;
            y = copy_sign(sum / f32(k), sum);
            if (is_inf_f32(sum) && seen.y == 0.0) {
                y = ((small.x + small.y) / f32(k)) * 4294967296.0;
            }
            let up_sum = large.x + large.y;
            if (abs(sum) < 8.673617379884035e-19 && !is_inf_f32(up_sum) && !is_nan_f32(up_sum)) {
                // as in mean_of: subnormals counted at 2^64 scale
                y = copy_sign(scale2(up_sum / f32(k), -64), up_sum);
            }
        } else {
            let best = wg_max_exact(m, inv);
            y = select(best, negate_bits(best), GROUP_KIND == GROUP_MIN);
        }
        if (inv.lid == 0u) {
            dst_store(groups_u.out_offset + r, select(y, nan_value(), seen.x > 0.0));
        }
    }
}
