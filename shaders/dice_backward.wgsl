// Dice's backward on a (batch, features) view, from the saved input x and grad_output g,
// per feature f with alpha a = alpha[f], s = sqrt(var + eps), z = (x - mean) / s,
// p = sigmoid(z) and q = g x (1 - a) p (1 - p) (the gradient reaching z):
//   training (mean and biased variance of the batch, through which x reaches every y):
//     grad_input = g (a + (1 - a) p) + (q - mean(q) - z mean(q z)) / s
//   evaluation (running statistics, constants):
//     grad_input = g (a + (1 - a) p) + q / s
//   grad_alpha[f] = sum over the batch of g x (1 - p)
// dice_grad_column (one invocation per feature) or dice_grad_column_wg (one workgroup per
// feature, large batches) computes the feature's statistics and sums into `columns` and
// grad_alpha; dice_grad_apply (one invocation per element) writes grad_input.
// The prelude defines `load_saved(k)`, `load_grad(k)` and WORKGROUP_SIZE; activations.wgsl,
// gradients.wgsl and a reduction flavour precede this file.

struct DiceGrad {
    batch: u32,
    features: u32,
    saved_offset: u32,   // element offsets in the bound windows
    grad_offset: u32,
    out_offset: u32,
    alpha_at: u32,
    grad_alpha_at: u32,
    mean_at: u32,        // evaluation mode: the running statistics' offsets
    var_at: u32,
    eval: u32,           // 1 in evaluation mode
    one: u32,
    pad0: u32,
    eps: f32,
    pad1: f32,
    pad2: f32,
    pad3: f32,
}

@group(0) @binding(2) var<uniform> du: DiceGrad;
// per feature: (mean, s, mean(q), mean(q z))
@group(1) @binding(0) var<storage, read_write> columns: array<vec4<f32>>;
@group(1) @binding(1) var<storage, read> alpha: array<f32>;
@group(1) @binding(2) var<storage, read_write> grad_alpha: array<f32>;
@group(1) @binding(3) var<storage, read> run_mean: array<f32>;
@group(1) @binding(4) var<storage, read> run_var: array<f32>;

fn x_at(b: u32, f: u32) -> f32 {
    return load_saved(du.saved_offset + b * du.features + f);
}

fn g_at(b: u32, f: u32) -> f32 {
    return load_grad(du.grad_offset + b * du.features + f);
}

// (z, p, 1 - p) of x for a feature's mean and s.
fn standardized(x: f32, mean: f32, s: f32) -> vec3<f32> {
    let z = (x - mean) / s;
    return vec3<f32>(z, act_sigmoid(z, vec4<f32>(0.0)), act_sigmoid(-z, vec4<f32>(0.0)));
}

// The sum of x over a strided share of the batch, compensated.
fn share_sum_x(f: u32, begin: u32, step: u32) -> vec2<f32> {
    var sc = vec2<f32>(0.0);
    for (var b = begin; b < du.batch; b += step) {
        sc = add_compensated(sc, x_at(b, f));
    }
    return sc;
}

fn share_sum_sq(f: u32, begin: u32, step: u32, mean: f32) -> vec2<f32> {
    var sc = vec2<f32>(0.0);
    for (var b = begin; b < du.batch; b += step) {
        let d = x_at(b, f) - mean;
        sc = add_compensated(sc, d * d);
    }
    return sc;
}

// (sum q, sum q z, sum g x (1 - p)) over a strided share of the batch (plain sums: the
// bound is relative to the terms' magnitudes).
fn share_sums(f: u32, begin: u32, step: u32, mean: f32, s: f32, a: f32) -> vec3<f32> {
    var acc = vec3<f32>(0.0);
    for (var b = begin; b < du.batch; b += step) {
        let x = x_at(b, f);
        let g = g_at(b, f);
        let zp = standardized(x, mean, s);
        let gx = g * x;
        let q = gx * (1.0 - a) * zp.y * zp.z;
        acc += vec3<f32>(q, q * zp.x, gx * zp.z);
    }
    return acc;
}

// The feature's mean and s: the running statistics, or the batch's (sum of x, sum of
// squared deviations) as the reductions combined them.
fn eval_stats(f: u32) -> vec2<f32> {
    return vec2<f32>(run_mean[du.mean_at + f], sqrt(run_var[du.var_at + f] + du.eps));
}

fn finish_column(f: u32, mean: f32, s: f32, sums: vec3<f32>) {
    let n = f32(du.batch);
    columns[f] = vec4<f32>(mean, s, sums.x / n, sums.y / n);
    grad_alpha[du.grad_alpha_at + f] = sums.z;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_grad_column(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(du.one);
    for (var f = gid.x; f < du.features; f += groups.x * WORKGROUP_SIZE) {
        var st = eval_stats(f);
        if (du.eval == 0u) {
            let sx = share_sum_x(f, 0u, 1u);
            let mean = (sx.x + sx.y) / f32(du.batch);
            let sq = share_sum_sq(f, 0u, 1u, mean);
            st = vec2<f32>(mean, sqrt((sq.x + sq.y) / f32(du.batch) + du.eps));
        }
        let a = alpha[du.alpha_at + f];
        finish_column(f, st.x, st.y, share_sums(f, 0u, 1u, st.x, st.y, a));
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_grad_column_wg(inv: Invocation,
                       @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(du.one);
    for (var f = wid.x; f < du.features; f += groups.x) {
        var st = eval_stats(f);
        if (du.eval == 0u) {
            let sx = wg_sum_compensated(share_sum_x(f, inv.lid, WORKGROUP_SIZE), inv);
            let mean = (sx.x + sx.y) / f32(du.batch);
            let sq = wg_sum_compensated(share_sum_sq(f, inv.lid, WORKGROUP_SIZE, mean), inv);
            st = vec2<f32>(mean, sqrt((sq.x + sq.y) / f32(du.batch) + du.eps));
        }
        let a = alpha[du.alpha_at + f];
        let part = share_sums(f, inv.lid, WORKGROUP_SIZE, st.x, st.y, a);
        let qs = wg_sum2(part.xy, inv);
        let ga = wg_sum2(vec2<f32>(part.z, 0.0), inv);
        if (inv.lid == 0u) {
            finish_column(f, st.x, st.y, vec3<f32>(qs, ga.x));
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_grad_apply(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(du.one);
    let n = du.batch * du.features;
    for (var i = gid.x; i < n; i += groups.x * WORKGROUP_SIZE) {
        let f = i % du.features;
        let col = columns[f];
        let x = load_saved(du.saved_offset + i);
        let g = load_grad(du.grad_offset + i);
        let a = alpha[du.alpha_at + f];
        let zp = standardized(x, col.x, col.y);
        let q = g * x * (1.0 - a) * zp.y * zp.z;
        let direct = g * (a + (1.0 - a) * zp.y);
        var through = q;
        if (du.eval == 0u) {
            through = (q - col.z) - zp.x * col.w;
        }
        dst_store(du.out_offset + i, direct + through / col.y);
    }
}
