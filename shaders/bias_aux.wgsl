// The _aux entry points of bias.wgsl (appended to it in the modules of the layouts with
// a second output): the pre-activation x + bias also stored, through `extra`, for the
// backward of the ops that read x.

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_aux_vec4(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(params.one);
    let out4 = params.out_offset / 4u;
    let aux4 = params.aux_offset / 4u;
    for (var j = gid.x; j < params.n / 4u; j += groups.x * WORKGROUP_SIZE) {
        let s = biased4(j);
        extra_store4(aux4 + j, s);
        dst_store4(out4 + j, apply4(s));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_aux_scalar(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(params.one);
    for (var k = params.scalar_start + gid.x; k < params.n; k += groups.x * WORKGROUP_SIZE) {
        let s = biased(k);
        extra_store(params.aux_offset + k, s);
        dst_store(params.out_offset + k, apply(s));
    }
}
