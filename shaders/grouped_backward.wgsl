// The grouped ops' backward: grad_input (the input's shape) from the saved input x and
// grad_output g (the output's shape), groups laid out as in grouped.wgsl.
//   maxout / fold_max / fold_min: g goes to the group's first maximal (minimal) element,
//     or its first NaN where it holds one (the element the forward's NaN came from), 0 to
//     the others: deterministic, as PyTorch's max(dim) backward;
//   fold_mean: g / k to every element;
//   glu: a gets g sigmoid(b), b gets g a sigmoid(b) sigmoid(-b).
//
// The prelude defines GROUP_* ids, GROUP_KIND, `load_saved(k)` and `load_grad(k)` (through
// the bindings the layout gives them), WORKGROUP_SIZE; activations.wgsl, gradients.wgsl and
// a reduction flavour precede this file.

struct Groups {
    outputs: u32,       // grad_output elements (groups) in this dispatch
    k: u32,             // group size (glu: the half length h)
    inner: u32,         // stride of the grouped axis
    saved_offset: u32,  // element offsets in the bound windows
    grad_offset: u32,
    out_offset: u32,
    one: u32,           // 1; the source of opaque_one
    pad0: u32,
}

@group(0) @binding(2) var<uniform> groups_u: Groups;

// A total order for picking the group's element: larger is better, NaN best of all (the
// first NaN wins), exact on subnormals; fold_min ranks by -x.
fn rank(x: f32) -> u32 {
    if (is_nan_f32(x)) {
        return 0xffffffffu;
    }
    let v = select(x, bitcast<f32>(bitcast<u32>(x) ^ 0x80000000u), GROUP_KIND == GROUP_MIN);
    // order_key of -0 and +0 agree; never 0xffffffff for a number
    return bitcast<u32>(order_key(v)) ^ 0x80000000u;
}

// Element j of group r's saved input, and where its gradient goes.
fn group_base(r: u32) -> u32 {
    let k = groups_u.k;
    let inner = groups_u.inner;
    return (r / inner) * k * inner + r % inner;
}

// g / k, rounded about once (k <= 2^24 is exact as an f32).
fn mean_share(g: f32) -> f32 {
    let k = f32(groups_u.k);
    return div_pair(g, 0.0, k, 0.0);
}

// g a sigmoid(b) sigmoid(-b) = g a e / (1 + e)^2 with e = exp(-|b|): g and a enter by
// their mantissas and exponents and e by its parts, so the result is scaled once, last.
fn glu_grad_b(a: f32, b: f32, g: f32) -> f32 {
    if (is_inf_f32(b)) {
        // g a times an exact 0 (g a itself may overflow: its sign from the signs)
        // (a's sign bit: a = -0 gives -0 for a positive g, as PyTorch's g a s (1 - s))
        let a_neg = (bitcast<u32>(a) >> 31u) == 1u;
        return select(g_times_zero(g, a_neg), g_times_zero(a, g < 0.0), is_inf_f32(a));
    }
    let parts = exp_parts(-abs(b));
    let e = scale2(parts.x + parts.y, i32(parts.z));
    let d = two_sum(1.0, e);
    let dd = two_prod(d.x, d.x);
    let q = div_pair(parts.x, parts.y, dd.x, fma(2.0 * d.x, d.y, dd.y));
    let sa = split_exp(a);
    let m = two_prod(sa.x, q);
    return scaled_pair(g, m.x, m.y, i32(sa.y) + i32(parts.z));
}

// The gate's backward of g b: where g b overflows (both finite), of g b / 2^(k - 100)
// (k the sum of their exponents; the mantissas' product times 2^100 is below 2^102), the
// result scaled back by 2^(k - 100) last: finite where the gate's derivative brings the
// product back into range (swiglu at a = -1, b = 3.4e38, g = 1.5: 3.69e37, not inf).
fn gate_grad_of_product(a: f32, b: f32, g: f32) -> f32 {
    let gb = mul_rescued(b, g);
    if (!is_inf_f32(gb) || is_inf_f32(b) || is_inf_f32(g)) {
        return gate_grad(a, gb);
    }
    let sb = split_exp(b);
    let sg = split_exp(g);
    let x = (sb.x * sg.x) * 1.2676506002282294e30;
    return scale2_wide(gate_grad(a, x), i32(sb.y + sg.y) - 100);
}

fn glu_backward_at(t: u32) {
    let h = groups_u.k;
    let inner = groups_u.inner;
    let o = t / (h * inner);
    let ia = o * 2u * h * inner + (t - o * h * inner);
    let ib = ia + h * inner;
    let a = load_saved(groups_u.saved_offset + ia);
    let b = load_saved(groups_u.saved_offset + ib);
    let g = load_grad(groups_u.grad_offset + t);
    let nan = bitcast<f32>(0x7fc00000u * groups_u.one);
    if (GATED) {
        // gate(a) b: a gets the gate's backward of g b, NaN and all as that backward
        // takes it (relu masks a NaN g b where a <= 0, and passes g b for a NaN a, as
        // PyTorch); b gets g gate(a). g b from a subnormal b's bits, where it is normal.
        dst_store(groups_u.out_offset + ia, gate_grad_of_product(a, b, g));
        let gate_a = select(gate(a), a, is_nan_f32(a));
        dst_store(groups_u.out_offset + ib, select(mul_rescued(gate_a, g), nan, is_nan_f32(g)));
        return;
    }
    // NaN as PyTorch's products give it: a's gradient does not depend on a
    let ga_nan = is_nan_f32(b) || is_nan_f32(g);
    dst_store(groups_u.out_offset + ia, select(g_sigmoid(g, b, 0.0), nan, ga_nan));
    dst_store(groups_u.out_offset + ib, select(glu_grad_b(a, b, g), nan, ga_nan || is_nan_f32(a)));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn grouped_grad_lane(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(groups_u.one);
    let k = groups_u.k;
    let inner = groups_u.inner;
    for (var t = gid.x; t < groups_u.outputs; t += groups.x * WORKGROUP_SIZE) {
        if (GROUP_KIND == GROUP_GLU || GATED) {
            glu_backward_at(t);
            continue;
        }
        let base = group_base(t);
        let g = load_grad(groups_u.grad_offset + t);
        var best = 0u;
        if (GROUP_KIND != GROUP_MEAN) {
            var best_rank = rank(load_saved(groups_u.saved_offset + base));
            for (var j = 1u; j < k; j++) {
                let rj = rank(load_saved(groups_u.saved_offset + base + j * inner));
                if (rj > best_rank) {
                    best_rank = rj;
                    best = j;
                }
            }
        }
        let share = mean_share(g);
        for (var j = 0u; j < k; j++) {
            var v = share;
            if (GROUP_KIND != GROUP_MEAN) {
                v = select(0.0, g, j == best);
            }
            dst_store(groups_u.out_offset + base + j * inner, v);
        }
    }
}

var<workgroup> best_rank_wg: atomic<u32>;
var<workgroup> best_index_wg: atomic<u32>;

// One workgroup per group, for large groups: the best rank by an atomic max, then the
// first index holding it by an atomic min, then each invocation writes its share.
@compute @workgroup_size(WORKGROUP_SIZE)
fn grouped_grad_workgroup(inv: Invocation,
                          @builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(groups_u.one);
    let k = groups_u.k;
    let inner = groups_u.inner;
    for (var r = wid.x; r < groups_u.outputs; r += groups.x) {
        let base = group_base(r);
        let g = load_grad(groups_u.grad_offset + r);
        if (inv.lid == 0u) {
            atomicStore(&best_rank_wg, 0u);
            atomicStore(&best_index_wg, 0xffffffffu);
        }
        workgroupBarrier();
        if (GROUP_KIND != GROUP_MEAN) {
            var mine = 0u;
            for (var j = inv.lid; j < k; j += WORKGROUP_SIZE) {
                mine = max(mine, rank(load_saved(groups_u.saved_offset + base + j * inner)));
            }
            atomicMax(&best_rank_wg, mine);
            workgroupBarrier();
            let top = atomicLoad(&best_rank_wg);
            for (var j = inv.lid; j < k; j += WORKGROUP_SIZE) {
                if (rank(load_saved(groups_u.saved_offset + base + j * inner)) == top) {
                    atomicMin(&best_index_wg, j);
                    break;
                }
            }
            workgroupBarrier();
        }
        let best = atomicLoad(&best_index_wg);
        let share = mean_share(g);
        for (var j = inv.lid; j < k; j += WORKGROUP_SIZE) {
            var v = share;
            if (GROUP_KIND != GROUP_MEAN) {
                v = select(0.0, g, j == best);
            }
            dst_store(groups_u.out_offset + base + j * inner, v);
        }
        workgroupBarrier(); // everyone has read best before the next group resets it
    }
}
