// Workgroup reductions through a shared-memory tree: the fallback where the adapter has no
// subgroup operations. reduce_subgroup.wgsl defines the same functions with subgroups; the
// host prepends one of the two to every kernel that reduces (softmax, grouped ops).
//
// Every invocation of the workgroup must call these in uniform control flow, and each
// returns the same value to all of them. WORKGROUP_SIZE is a power of two.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
}

var<workgroup> reduce_scratch: array<vec2<f32>, WORKGROUP_SIZE>;

// The maximum of v over the workgroup (v holds no NaN).
fn wg_max(v: f32, inv: Invocation) -> f32 {
    reduce_scratch[inv.lid] = vec2<f32>(v, 0.0);
    workgroupBarrier();
    for (var off = WORKGROUP_SIZE / 2u; off > 0u; off >>= 1u) {
        if (inv.lid < off) {
            reduce_scratch[inv.lid].x = max(reduce_scratch[inv.lid].x,
                                            reduce_scratch[inv.lid + off].x);
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[0].x;
    workgroupBarrier(); // everyone has read the result before the scratch is reused
    return r;
}

// The componentwise sum of v over the workgroup, in a fixed (pairwise) order.
fn wg_sum2(v: vec2<f32>, inv: Invocation) -> vec2<f32> {
    reduce_scratch[inv.lid] = v;
    workgroupBarrier();
    for (var off = WORKGROUP_SIZE / 2u; off > 0u; off >>= 1u) {
        if (inv.lid < off) {
            reduce_scratch[inv.lid] += reduce_scratch[inv.lid + off];
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[0];
    workgroupBarrier();
    return r;
}


// Segmented reductions: the workgroup's invocations in aligned segments of `lanes` (a power
// of two up to WORKGROUP_SIZE), each reducing on its own through the shared tree; every
// invocation of a segment gets the same value. Same contract as reduce_subgroup.wgsl's.

fn seg_position(lanes: u32, inv: Invocation) -> vec2<u32> {
    return vec2<u32>(inv.lid / lanes, inv.lid % lanes);
}

fn seg_max(v: f32, lanes: u32, inv: Invocation) -> f32 {
    if (lanes == 1u) {
        return v;
    }
    reduce_scratch[inv.lid] = vec2<f32>(v, 0.0);
    workgroupBarrier();
    let at = inv.lid % lanes;
    for (var off = lanes / 2u; off > 0u; off >>= 1u) {
        if (at < off) {
            reduce_scratch[inv.lid].x = max(reduce_scratch[inv.lid].x,
                                            reduce_scratch[inv.lid + off].x);
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[inv.lid - at].x;
    workgroupBarrier();
    return r;
}

fn seg_sum2(v: vec2<f32>, lanes: u32, inv: Invocation) -> vec2<f32> {
    if (lanes == 1u) {
        return v;
    }
    reduce_scratch[inv.lid] = v;
    workgroupBarrier();
    let at = inv.lid % lanes;
    for (var off = lanes / 2u; off > 0u; off >>= 1u) {
        if (at < off) {
            reduce_scratch[inv.lid] += reduce_scratch[inv.lid + off];
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[inv.lid - at];
    workgroupBarrier();
    return r;
}
