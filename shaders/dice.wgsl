// Dice (Deep Interest Network), training mode, on a (batch, features) view of a tensor:
// per feature f, the batch mean and biased variance over the batch, then
//   y = x * (alpha + (1 - alpha) * sigmoid((x - mean) / sqrt(var + eps)))
// which is p * x + (1 - p) * alpha * x. The statistics take four dispatches, each
// coalesced (adjacent invocations read adjacent features) and spread over the batch:
// dice_sums writes a compensated partial sum of x per (batch slice, feature), dice_mean
// combines them into the mean, dice_squares and dice_variance do the same for the squared
// deviations from it, into (mean, var) in `stats`; dice_apply (one invocation per
// element) reads them.
// Evaluation mode, dice_eval, reads running statistics and a per-feature alpha from the
// caller's buffers instead (bind group 1, read-only).
// The host's generated prelude (src/device/wgsl.rs) defines WORKGROUP_SIZE and `load_in(k)`
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
    start: u32,      // evaluation mode: the piece's first element in the tensor
    slice_rows: u32, // training mode: batch rows per slice of the statistics
    slices: u32,     // training mode: slices (each feature's partials)
    p: vec4<f32>,    // alpha (training mode), eps
}

@group(0) @binding(2) var<uniform> dice_u: Dice;
@group(1) @binding(0) var<storage, read_write> stats: array<vec4<f32>>;

// The statistics' tiles: a workgroup takes `width` consecutive features (all of them, or a
// workgroup's width of them) over one slice of the batch, its invocation i feature i %
// width of the block and every `depth`-th row from i / width, so a workgroup reads whole
// rows of the block at a time. Partials are (sum, compensation) per (slice, feature), in
// stats[slice * features + f].xy; a feature's (mean, var) go to stats[f].zw, beside its
// first slice's partial (so one slice costs the statistics' own 16 bytes a feature). Only
// components are written, never a whole vec4 of another pass's.
fn tile_width() -> u32 {
    return min(dice_u.features, WORKGROUP_SIZE);
}

// Sums x (or, with `squares`, (x - mean)^2) over each tile: per invocation a compensated
// sum over its rows, then the workgroup's rows of a feature combined in order by the
// invocation of the first row. Every invocation runs the tile loop (uniform: barriers).
fn dice_partials(squares: bool, inv: Invocation, wid: u32, groups: u32) {
    opaque_one = f32(dice_u.one);
    let fcount = dice_u.features;
    let width = tile_width();
    let depth = WORKGROUP_SIZE / width;
    let blocks = (fcount + width - 1u) / width;
    let col = inv.lid % width;
    let row = inv.lid / width;
    for (var w = wid; w < blocks * dice_u.slices; w += groups) {
        let slice = w / blocks;
        let f = (w - slice * blocks) * width + col;
        let begin = slice * dice_u.slice_rows;
        let end = min(begin + dice_u.slice_rows, dice_u.batch);
        var sum = vec2<f32>(0.0);
        if (row < depth && f < fcount) {
            let mean = select(0.0, stats[min(f, fcount - 1u)].z, squares);
            for (var b = begin + row; b < end; b += depth) {
                let x = load_in(b * fcount + f);
                let d = x - mean;
                sum = add_compensated(sum, select(x, d * d, squares));
            }
        }
        reduce_scratch[inv.lid] = sum;
        workgroupBarrier();
        if (row == 0u && f < fcount) {
            var total = reduce_scratch[col];
            for (var r = 1u; r < depth; r++) {
                let part = reduce_scratch[r * width + col];
                total = add_compensated(total, part.x);
                total.y += part.y;
            }
            let at = slice * fcount + f;
            stats[at].x = total.x;
            stats[at].y = total.y;
        }
        workgroupBarrier();
    }
}

// Feature f's partials combined in slice order: the mean of x, or of the squares.
fn dice_total(f: u32) -> f32 {
    let fcount = dice_u.features;
    var total = vec2<f32>(0.0);
    for (var s = 0u; s < dice_u.slices; s++) {
        let part = stats[s * fcount + f];
        total = add_compensated(total, part.x);
        total.y += part.y;
    }
    return (total.x + total.y) / f32(dice_u.batch);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_sums(inv: Invocation,
             @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    dice_partials(false, inv, wid.x, groups.x);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_squares(inv: Invocation,
                @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) groups: vec3<u32>) {
    dice_partials(true, inv, wid.x, groups.x);
}

// Every feature's total of its partials: its mean to stats[f].z, or with `variance` its
// variance (the mean of the squared deviations) to stats[f].w.
fn dice_totals(variance: bool, first: u32, stride: u32) {
    opaque_one = f32(dice_u.one);
    for (var f = first; f < dice_u.features; f += stride) {
        let t = dice_total(f);
        if (variance) {
            stats[f].w = t;
        } else {
            stats[f].z = t;
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_mean(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    dice_totals(false, gid.x, groups.x * WORKGROUP_SIZE);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn dice_variance(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) groups: vec3<u32>) {
    dice_totals(true, gid.x, groups.x * WORKGROUP_SIZE);
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
        dst_store(dice_u.out_offset + i, dice_value(x, st.z, st.w, alpha, eps));
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
        dst_store(dice_u.out_offset + i, dice_value(x, st.z, st.w, alpha, eps));
    }
}

