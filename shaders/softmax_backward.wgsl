// The softmax family's backward along one axis, rows viewed as in softmax.wgsl (row r holds
// the `axis` elements base(r) + j * inner). From the saved output y and grad_output g:
//   softmax      gx = y (g - s),     s = sum(g y)
//   softmin      gx = -y (g - s),    s = sum(g y)   (softmin(x) = softmax(-x))
//   log_softmax  gx = g - exp(y) s,  s = sum(g)
// Each row is read twice (the sum, then the write); the sum is compensated per
// invocation. A NaN anywhere in a row makes its sum, and so the whole row, NaN, as in
// PyTorch.
//
// The prelude defines LOG_OUTPUT, SIGN, `load_saved(k)` and `load_grad(k)` (through the
// binding the layout gives each), WORKGROUP_SIZE; activations.wgsl and a reduction flavour
// precede this file.
//
// Strategies, as for the forward: softmax_grad_lane (one invocation per row),
// softmax_grad_workgroup (one workgroup per row), softmax_grad_split_* (rows in chunks over
// many workgroups: per-chunk sums to `partials`, then every chunk adds its row's and
// writes); softmax_backward_subgroup.wgsl adds one subgroup per row.

struct Rows {
    rows: u32,          // rows in this dispatch (outer * inner)
    axis: u32,          // elements per row
    inner: u32,         // stride between a row's elements
    saved_offset: u32,  // element offsets of the tensors in their bound windows
    grad_offset: u32,
    out_offset: u32,
    chunk_len: u32,     // split: elements per chunk
    chunks: u32,        // split: chunks per row
    one: u32,           // 1; the source of opaque_one
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(2) var<uniform> shape: Rows;
// Split only, in a second bind group: per-(row, chunk) sums.
@group(1) @binding(0) var<storage, read_write> partials: array<vec4<f32>>;

fn row_base(r: u32) -> u32 {
    let o = r / shape.inner;
    return o * shape.axis * shape.inner + (r - o * shape.inner);
}

fn saved_at(base: u32, j: u32) -> f32 {
    return load_saved(shape.saved_offset + base + j * shape.inner);
}

fn grad_at(base: u32, j: u32) -> f32 {
    return load_grad(shape.grad_offset + base + j * shape.inner);
}

// Element j's term of the row's sum.
fn term(base: u32, j: u32) -> f32 {
    if (LOG_OUTPUT) {
        return grad_at(base, j);
    }
    return grad_at(base, j) * saved_at(base, j);
}

// The sum over a strided share of the row [begin, end), step `step`, compensated.
fn share_sum(base: u32, begin: u32, end: u32, step: u32) -> vec2<f32> {
    var sc = vec2<f32>(0.0);
    for (var j = begin; j < end; j += step) {
        sc = add_compensated(sc, term(base, j));
    }
    return sc;
}

// Writes grad_input over [begin, end), step `step`, for the row's sum s.
fn write_share(base: u32, begin: u32, end: u32, step: u32, s: f32) {
    for (var j = begin; j < end; j += step) {
        let y = saved_at(base, j);
        let g = grad_at(base, j);
        var gx: f32;
        if (LOG_OUTPUT) {
            // exp of a log-probability (<= 0) as parts, times s before the scaling: a
            // probability below f32's normal range (y < -87) times a large sum may be
            // normal; -inf gives 0
            let e = exp_parts(y);
            let es = select(scale2_wide((e.x + e.y) * s, i32(e.z)), exp_f32(y) * s,
                            abs(s) > 1.0e37 || is_inf_f32(y));
            gx = pass_nan(y, g - es);
        } else {
            // a subnormal y (a flushing adapter zeroes it) from its bits: y (g - s) may
            // be normal for a large g
            gx = SIGN * mul_rescued(y, g - s);
        }
        dst_store(shape.out_offset + base + j * shape.inner, gx);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_grad_lane(@builtin(global_invocation_id) gid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(shape.one);
    for (var r = gid.x; r < shape.rows; r += groups.x * WORKGROUP_SIZE) {
        let base = row_base(r);
        let sc = share_sum(base, 0u, shape.axis, 1u);
        write_share(base, 0u, shape.axis, 1u, sc.x + sc.y);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_grad_workgroup(inv: Invocation,
                          @builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(shape.one);
    for (var r = wid.x; r < shape.rows; r += groups.x) {
        let base = row_base(r);
        let sc = wg_sum2(share_sum(base, inv.lid, shape.axis, WORKGROUP_SIZE), inv);
        write_share(base, inv.lid, shape.axis, WORKGROUP_SIZE, sc.x + sc.y);
    }
}

// Pass 1 of split: the sum of each (row, chunk) to partials[row * chunks + chunk].
@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_grad_split_stats(inv: Invocation,
                            @builtin(workgroup_id) wid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(shape.one);
    let items = shape.rows * shape.chunks;
    for (var item = wid.x; item < items; item += groups.x) {
        let r = item / shape.chunks;
        let begin = (item - r * shape.chunks) * shape.chunk_len;
        let end = min(begin + shape.chunk_len, shape.axis);
        let sc = wg_sum2(share_sum(row_base(r), begin + inv.lid, end, WORKGROUP_SIZE), inv);
        if (inv.lid == 0u) {
            partials[item] = vec4<f32>(sc, 0.0, 0.0);
        }
    }
}

// Pass 2 of split: every chunk adds its row's partial sums (in the same order, so every
// chunk of a row gets the same bits) and writes its elements.
@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_grad_split_write(inv: Invocation,
                            @builtin(workgroup_id) wid: vec3<u32>,
                            @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(shape.one);
    let items = shape.rows * shape.chunks;
    for (var item = wid.x; item < items; item += groups.x) {
        let r = item / shape.chunks;
        let first = r * shape.chunks;
        var sc = vec2<f32>(0.0);
        for (var i = inv.lid; i < shape.chunks; i += WORKGROUP_SIZE) {
            sc += partials[first + i].xy;
        }
        let total = wg_sum2(sc, inv);
        let begin = (item - first) * shape.chunk_len;
        let end = min(begin + shape.chunk_len, shape.axis);
        write_share(row_base(r), begin + inv.lid, end, WORKGROUP_SIZE, total.x + total.y);
    }
}
