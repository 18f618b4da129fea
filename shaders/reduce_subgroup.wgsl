// Workgroup reductions with subgroup operations: each subgroup reduces in registers, its
// first invocation publishes the result, and after one barrier every invocation combines
// the per-subgroup results itself (at most WORKGROUP_SIZE / subgroup size of them), so a
// reduction costs two barriers whatever the workgroup size. Same contract as
// reduce_tree.wgsl; needs the device feature SUBGROUP.

struct Invocation {
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
    @builtin(subgroup_size) sg_size: u32,
}

var<workgroup> reduce_scratch: array<vec2<f32>, WORKGROUP_SIZE>;

fn wg_max(v: f32, inv: Invocation) -> f32 {
    let s = subgroupMax(v);
    if (inv.sg_lane == 0u) {
        reduce_scratch[inv.sg_id] = vec2<f32>(s, 0.0);
    }
    workgroupBarrier();
    var r = reduce_scratch[0].x;
    for (var i = 1u; i < inv.sg_count; i++) {
        r = max(r, reduce_scratch[i].x);
    }
    workgroupBarrier();
    return r;
}

fn wg_sum2(v: vec2<f32>, inv: Invocation) -> vec2<f32> {
    let s = subgroupAdd(v);
    if (inv.sg_lane == 0u) {
        reduce_scratch[inv.sg_id] = s;
    }
    workgroupBarrier();
    var r = reduce_scratch[0];
    for (var i = 1u; i < inv.sg_count; i++) {
        r += reduce_scratch[i];
    }
    workgroupBarrier();
    return r;
}


// Segmented reductions: the workgroup's invocations in segments of `lanes` (a power of two
// no larger than the smallest subgroup, or WORKGROUP_SIZE), each segment reducing on
// its own; every invocation of a segment gets the same value. Within a subgroup they are
// butterflies of subgroupShuffleXor (each step adds the same two values in both lanes, so
// every lane ends with the same bits); a segment of the whole workgroup is wg_max/wg_sum2.
// Called in uniform control flow with a uniform `lanes`.

// (segment, lane within it) of this invocation: segments are aligned runs of `lanes`
// subgroup lanes, so a segment never straddles two subgroups.
fn seg_position(lanes: u32, inv: Invocation) -> vec2<u32> {
    if (lanes >= WORKGROUP_SIZE) {
        return vec2<u32>(0u, inv.lid);
    }
    let i = inv.sg_id * inv.sg_size + inv.sg_lane;
    return vec2<u32>(i / lanes, i % lanes);
}

fn seg_max(v: f32, lanes: u32, inv: Invocation) -> f32 {
    if (lanes >= WORKGROUP_SIZE) {
        return wg_max(v, inv);
    }
    var r = v;
    for (var o = 1u; o < lanes; o <<= 1u) {
        r = max(r, subgroupShuffleXor(r, o));
    }
    return r;
}

fn seg_sum2(v: vec2<f32>, lanes: u32, inv: Invocation) -> vec2<f32> {
    if (lanes >= WORKGROUP_SIZE) {
        return wg_sum2(v, inv);
    }
    var r = v;
    for (var o = 1u; o < lanes; o <<= 1u) {
        r += subgroupShuffleXor(r, o);
    }
    return r;
}
