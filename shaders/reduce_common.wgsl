// Workgroup reductions shared by both flavours (appended after reduce_tree.wgsl or
// reduce_subgroup.wgsl, whose Invocation and reduce_scratch they use).
// A compensated sum (value, compensation) over the workgroup, exact in each step of a
// shared-memory tree (TwoSum; subgroups have no compensated add): for means and variances, where a plain sum of partial sums
// would lose what the compensation kept. Same contract as wg_sum2.
fn wg_sum_compensated(v: vec2<f32>, inv: Invocation) -> vec2<f32> {
    reduce_scratch[inv.lid] = v;
    workgroupBarrier();
    for (var off = WORKGROUP_SIZE / 2u; off > 0u; off >>= 1u) {
        if (inv.lid < off) {
            let a = reduce_scratch[inv.lid];
            let b = reduce_scratch[inv.lid + off];
            let s = two_sum(a.x, b.x);
            let e = select(s.y, 0.0, is_inf_f32(s.x));
            reduce_scratch[inv.lid] = vec2<f32>(s.x, (a.y + b.y) + e);
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[0];
    workgroupBarrier();
    return r;
}

// Segmented reductions over interleaved segments: the workgroup's invocations in
// WORKGROUP_SIZE / lanes segments of `lanes` each (powers of two), invocation i in segment
// i % segments, so neighbouring invocations are in neighbouring segments; every
// invocation of a segment gets the same value. Through the shared-memory tree, in a fixed
// order, with either flavour. Called in uniform control flow with a uniform `lanes`.
fn strided_seg_max(v: f32, lanes: u32, inv: Invocation) -> f32 {
    let segs = WORKGROUP_SIZE / lanes;
    reduce_scratch[inv.lid] = vec2<f32>(v, 0.0);
    workgroupBarrier();
    for (var off = lanes / 2u; off > 0u; off >>= 1u) {
        if (inv.lid / segs < off) {
            reduce_scratch[inv.lid].x = max(reduce_scratch[inv.lid].x,
                                            reduce_scratch[inv.lid + off * segs].x);
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[inv.lid % segs].x;
    workgroupBarrier();
    return r;
}

fn strided_seg_sum2(v: vec2<f32>, lanes: u32, inv: Invocation) -> vec2<f32> {
    let segs = WORKGROUP_SIZE / lanes;
    reduce_scratch[inv.lid] = v;
    workgroupBarrier();
    for (var off = lanes / 2u; off > 0u; off >>= 1u) {
        if (inv.lid / segs < off) {
            reduce_scratch[inv.lid] += reduce_scratch[inv.lid + off * segs];
        }
        workgroupBarrier();
    }
    let r = reduce_scratch[inv.lid % segs];
    workgroupBarrier();
    return r;
}
