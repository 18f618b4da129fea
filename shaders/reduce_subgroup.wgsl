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

