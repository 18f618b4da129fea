// One subgroup per row (modules built with subgroup operations only): each lane runs the
// online statistics over a strided share of the row, subgroupMax and subgroupAdd combine
// the lanes, then the lanes write their share. No workgroup barrier and no shared memory,
// so a workgroup serves WORKGROUP_SIZE / subgroup size rows at once: the strategy for
// rows too long for one invocation and too short to fill a workgroup.
//
// The subgroup operations run in control flow that is uniform within each subgroup:
// every lane of a subgroup has the same row (lanes past the last row take the last row
// and do not store), and the per-lane loops end before the reductions.

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_subgroup(inv: Invocation,
                    @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    let per_group = inv.sg_count;
    for (var first = wid.x * per_group; first < shape.rows; first += groups.x * per_group) {
        let mine = first + inv.sg_id;
        let r = min(mine, shape.rows - 1u);
        let base = row_base(r);
        var st = online_new();
        for (var j = inv.sg_lane; j < shape.axis; j += inv.sg_size) {
            st = online_push(st, load(base, j));
        }
        let t = online_end(st);
        let big_m = subgroupMax(t.x);
        let row = row_final(big_m, subgroupAdd(rebase(t, big_m)));
        if (mine < shape.rows) {
            for (var j = inv.sg_lane; j < shape.axis; j += inv.sg_size) {
                store(base, j, finish(load(base, j), row));
            }
        }
    }
}
