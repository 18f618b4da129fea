// Dice (Deep Interest Network), training mode, on a (batch, features) view of a tensor:
// per feature f, the batch mean and biased variance over the batch, then
//   y = x * (alpha + (1 - alpha) * sigmoid((x - mean) / sqrt(var + eps)))
// which is p * x + (1 - p) * alpha * x. Two entry points: dice_stats (one invocation per
// feature, two compensated passes over its column: mean, then the squared deviations)
// writes (mean, var) to `stats`; dice_apply (one invocation per element) reads them.
// Evaluation mode, dice_eval, reads running statistics and a per-feature alpha from the
// caller's buffers instead (bind group 1, read-only).
// The host's generated prelude (src/shader.rs) defines WORKGROUP_SIZE and `load_in(k)`
// (the input, through src, or dst in place); activations.wgsl and a reduction follow it.

struct Dice {
    batch: u32,
    features: u32,
    in_offset: u32,
    out_offset: u32,
    n: u32,          // batch * features
    one: u32,
    mean_at: u32,    // evaluation mode: element offsets of the running mean, running
    var_at: u32,     // variance and per-feature alpha in their bindings
    alpha_at: u32,
    start: u32,      // evaluation mode: the chunk's first element in the tensor
    pad0: u32,
    pad1: u32,
    p: vec4<f32>,    // alpha (training mode), eps
}

@group(0) @binding(2) var<uniform> dice_u: Dice;
@group(1) @binding(0) var<storage, read_write> stats: array<vec4<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_stats(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(dice_u.one);
    let fcount = dice_u.features;
    for (var f = gid.x; f < fcount; f += groups.x * WORKGROUP_SIZE) {
        var sum = vec2<f32>(0.0);
        for (var b = 0u; b < dice_u.batch; b++) {
            sum = add_compensated(sum, load_in(b * fcount + f));
        }
        let mean = (sum.x + sum.y) / f32(dice_u.batch);
        var ss = vec2<f32>(0.0);
        for (var b = 0u; b < dice_u.batch; b++) {
            let d = load_in(b * fcount + f) - mean;
            ss = add_compensated(ss, d * d);
        }
        stats[f] = vec4<f32>(mean, (ss.x + ss.y) / f32(dice_u.batch), 0.0, 0.0);
    }
}

// Evaluation mode's bind group 1 (declared over the same slots as `stats`; no entry point
// uses both).
@group(1) @binding(0) var<storage, read> run_mean: array<f32>;
@group(1) @binding(1) var<storage, read> run_var: array<f32>;
@group(1) @binding(2) var<storage, read> feature_alpha: array<f32>;

fn dice_value(x: f32, mean: f32, var_: f32, alpha: f32, eps: f32) -> f32 {
    let z = (x - mean) / sqrt(var_ + eps);
    let p = act_sigmoid(z, vec4<f32>(0.0));
    // a NaN statistic (a NaN or infinity in the column) makes the whole column NaN
    return pass_nan(z, x * (alpha + (1.0 - alpha) * p));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_eval(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(dice_u.one);
    let eps = dice_u.p.y;
    for (var i = gid.x; i < dice_u.n; i += groups.x * WORKGROUP_SIZE) {
        let f = (dice_u.start + i) % dice_u.features;
        let x = load_in(i);
        let y = dice_value(x, run_mean[dice_u.mean_at + f], run_var[dice_u.var_at + f],
                           feature_alpha[dice_u.alpha_at + f], eps);
        dst_store(dice_u.out_offset + i, y);
    }
}

// Training mode with a per-feature alpha: the alpha beside the statistics in group 1.
@group(1) @binding(1) var<storage, read> train_alpha: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_apply_alpha(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(dice_u.one);
    let eps = dice_u.p.y;
    for (var i = gid.x; i < dice_u.n; i += groups.x * WORKGROUP_SIZE) {
        let f = i % dice_u.features;
        let st = stats[f];
        let x = load_in(i);
        let alpha = train_alpha[dice_u.alpha_at + f];
        dst_store(dice_u.out_offset + i, dice_value(x, st.x, st.y, alpha, eps));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_apply(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(dice_u.one);
    let alpha = dice_u.p.x;
    let eps = dice_u.p.y;
    for (var i = gid.x; i < dice_u.n; i += groups.x * WORKGROUP_SIZE) {
        let x = load_in(i);
        let st = stats[i % dice_u.features];
        dst_store(dice_u.out_offset + i, dice_value(x, st.x, st.y, alpha, eps));
    }
}

// One workgroup per feature, for large batches: strided compensated sums per invocation,
// combined by the workgroup reductions (reduce_*.wgsl), for the mean and then the squared
// deviations. The same `stats` output as dice_stats.
@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_stats_workgroup(inv: Invocation,
                        @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(dice_u.one);
    let fcount = dice_u.features;
    for (var f = wid.x; f < fcount; f += groups.x) {
        var sum = vec2<f32>(0.0);
        for (var b = inv.lid; b < dice_u.batch; b += WORKGROUP_SIZE) {
            sum = add_compensated(sum, load_in(b * fcount + f));
        }
        let total = wg_sum_compensated(sum, inv);
        let mean = (total.x + total.y) / f32(dice_u.batch);
        var ss = vec2<f32>(0.0);
        for (var b = inv.lid; b < dice_u.batch; b += WORKGROUP_SIZE) {
            let d = load_in(b * fcount + f) - mean;
            ss = add_compensated(ss, d * d);
        }
        let squares = wg_sum_compensated(ss, inv);
        if (inv.lid == 0u) {
            stats[f] = vec4<f32>(mean, (squares.x + squares.y) / f32(dice_u.batch), 0.0, 0.0);
        }
    }
}
