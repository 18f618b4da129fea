// The softmax family's backward with one subgroup per row (modules with subgroup
// operations only), as softmax_subgroup.wgsl for the forward: lanes past the last row take
// the last row and do not store, so the subgroup reduction runs in uniform control flow.

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_grad_subgroup(inv: Invocation,
                         @builtin(workgroup_id) wid: vec3<u32>,
                         @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(shape.one);
    let per_group = inv.sg_count;
    for (var first = wid.x * per_group; first < shape.rows; first += groups.x * per_group) {
        let mine = first + inv.sg_id;
        let base = row_base(min(mine, shape.rows - 1u));
        let sc = subgroupAdd(share_sum(base, inv.sg_lane, shape.axis, inv.sg_size));
        if (mine < shape.rows) {
            write_share(base, inv.sg_lane, shape.axis, inv.sg_size, sc.x + sc.y);
        }
    }
}
