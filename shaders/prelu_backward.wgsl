// PReLU's backward with 1 or C weights, from the saved input x and grad_output g:
//   grad_input[i] = g if x > 0 else w[c] g            (PyTorch's: NaN x takes w[c] g)
//   grad_weight[c] = sum over channel c of (0 if x > 0 else x g)
// prelu_grad: one workgroup per (channel, slice) of a piece of the tensor writes
// grad_input for its elements and its share of the weight gradient to `partials`;
// prelu_grad_weight: one invocation per channel adds its partials (every piece's) into
// grad_weight. The prelude defines `load_saved(k)`, `load_grad(k)` and WORKGROUP_SIZE;
// activations.wgsl, gradients.wgsl and a reduction flavour precede this file.

struct PreluGrad {
    n: u32,             // elements in this piece (whole slabs of channels * inner)
    saved_offset: u32,  // element offsets in the bound windows
    grad_offset: u32,
    out_offset: u32,
    channels: u32,      // C (1 for a single weight)
    inner: u32,         // elements per channel per outer index (1 for a single weight)
    w_offset: u32,      // element offsets of the weights and of grad_weight
    gw_offset: u32,
    slices: u32,        // S: slices per channel in every piece
    slice_len: u32,     // elements of one channel per slice
    piece: u32,         // this piece's index: its partials start at piece * C * S
    pieces: u32,        // pieces in the call (prelu_grad_weight adds all of them)
    one: u32,           // 1; the source of opaque_one
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(2) var<uniform> pg: PreluGrad;
@group(1) @binding(0) var<storage, read> weights: array<f32>;
@group(1) @binding(1) var<storage, read_write> partials: array<vec2<f32>>;
@group(1) @binding(2) var<storage, read_write> grad_weight: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn prelu_grad(inv: Invocation,
              @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(pg.one);
    let c_count = pg.channels;
    let inner = pg.inner;
    let per_channel = pg.n / c_count;
    for (var item = wid.x; item < c_count * pg.slices; item += groups.x) {
        let c = item / pg.slices;
        let begin = (item - c * pg.slices) * pg.slice_len;
        let end = min(begin + pg.slice_len, per_channel);
        let w = weights[pg.w_offset + c];
        var acc = vec2<f32>(0.0);
        for (var t = begin + inv.lid; t < end; t += WORKGROUP_SIZE) {
            let o = t / inner;
            let i = (o * c_count + c) * inner + (t - o * inner);
            let x = load_saved(pg.saved_offset + i);
            let g = load_grad(pg.grad_offset + i);
            let positive = gt(x, 0.0);
            dst_store(pg.out_offset + i, select(mul_rescued(g, w), g, positive));
            acc = add_compensated(acc, select(x * g, 0.0, positive));
        }
        let total = wg_sum2(acc, inv);
        if (inv.lid == 0u) {
            partials[(pg.piece * c_count + c) * pg.slices + item - c * pg.slices] = total;
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn prelu_grad_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
    opaque_one = f32(pg.one);
    let c = gid.x;
    if (c >= pg.channels) {
        return;
    }
    var acc = vec2<f32>(0.0);
    for (var p = 0u; p < pg.pieces; p++) {
        for (var s = 0u; s < pg.slices; s++) {
            let part = partials[(p * pg.channels + c) * pg.slices + s];
            acc = add_compensated(acc, part.x);
            acc.y += part.y;
        }
    }
    grad_weight[pg.gw_offset + c] = acc.x + acc.y;
}
