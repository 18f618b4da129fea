// The backward of a fused bias + activation: grad_input = grad_apply(saved, g) (the op's
// derivative at the saved pre-activation, or at its output y where the op saves y), and
// grad_bias[c] = the sum of grad_input over every element of channel c, as cuBLASLt's
// DGELU_BGRAD epilogue.
//
// The tensor is seen as rows (the outer indices) of `cols` = channels * inner elements,
// column j in channel j / inner. bias_grad takes (row slice, block of columns) tiles, as
// dice's statistics do: each invocation writes grad_input down one column of its slice and
// keeps a compensated sum of it, and the workgroup's rows of a column are combined in
// order into one partial per (piece, slice, column). bias_grad_total adds a channel's
// partials in order (pieces, slices, then its columns) and stores grad_bias, rounded once
// to the storage type. One read of saved and g, one write of grad_input.
//
// Bindings: group 0 as backward.wgsl's (`load_saved`, `load_grad`, `dst_store`, from the
// generated prelude of src/device/wgsl.rs, which also defines `grad_apply`); group 1 the
// partials (vec2: sum, compensation) and grad_bias (`grad_bias_store`, the storage type).

struct BiasGrad {
    saved_offset: u32, // element offsets of the piece in its bindings' windows
    grad_offset: u32,
    out_offset: u32,
    rows: u32,         // rows in this piece
    cols: u32,         // elements per row: channels * inner
    channels: u32,
    inner: u32,
    slice_rows: u32,   // rows per slice
    slices: u32,       // slices per piece (each column's partials per piece)
    piece: u32,        // this piece: its partials start at piece * slices * cols
    pieces: u32,       // pieces in the call (bias_grad_total adds all of them)
    gb_offset: u32,    // grad_bias's element offset in its window
    one: u32,          // 1; the source of opaque_one
    pad0: u32,
    pad1: u32,
    pad2: u32,
    p: vec4<f32>,      // the op's parameters, in the op table's order
}

@group(0) @binding(2) var<uniform> bg: BiasGrad;
@group(1) @binding(0) var<storage, read_write> partials: array<vec2<f32>>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_grad(inv: Invocation,
             @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(bg.one);
    let width = min(bg.cols, WORKGROUP_SIZE);
    let depth = WORKGROUP_SIZE / width;
    let blocks = (bg.cols + width - 1u) / width;
    let col_in_block = inv.lid % width;
    let row = inv.lid / width;
    for (var w = wid.x; w < blocks * bg.slices; w += groups.x) {
        let slice = w / blocks;
        let col = (w - slice * blocks) * width + col_in_block;
        let begin = slice * bg.slice_rows;
        let end = min(begin + bg.slice_rows, bg.rows);
        var sum = vec2<f32>(0.0);
        if (row < depth && col < bg.cols) {
            for (var r = begin + row; r < end; r += depth) {
                let k = r * bg.cols + col;
                let gx = grad_apply(load_saved(bg.saved_offset + k), load_grad(bg.grad_offset + k));
                dst_store(bg.out_offset + k, gx);
                sum = add_compensated(sum, gx);
            }
        }
        reduce_scratch[inv.lid] = sum;
        workgroupBarrier();
        if (row == 0u && col < bg.cols) {
            var total = reduce_scratch[col_in_block];
            for (var d = 1u; d < depth; d++) {
                let part = reduce_scratch[d * width + col_in_block];
                total = add_compensated(total, part.x);
                total.y += part.y;
            }
            partials[(bg.piece * bg.slices + slice) * bg.cols + col] = total;
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn bias_grad_total(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) groups: vec3<u32>) {
    opaque_one = f32(bg.one);
    for (var c = gid.x; c < bg.channels; c += groups.x * WORKGROUP_SIZE) {
        var total = vec2<f32>(0.0);
        for (var p = 0u; p < bg.pieces; p++) {
            for (var s = 0u; s < bg.slices; s++) {
                let base = (p * bg.slices + s) * bg.cols + c * bg.inner;
                for (var i = 0u; i < bg.inner; i++) {
                    let part = partials[base + i];
                    total = add_compensated(total, part.x);
                    total.y += part.y;
                }
            }
        }
        grad_bias_store(bg.gb_offset + c, total.x + total.y);
    }
}
