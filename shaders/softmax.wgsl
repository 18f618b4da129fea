// The softmax family along one axis of a tensor viewed as (outer, axis, inner): row r
// (r < outer * inner) holds the `axis` elements base(r) + j * inner, so rows along the last
// axis are contiguous and others strided; no transpose.
//
// The host's generated prelude (src/device/wgsl.rs) defines
//   const SIGN: f32         -1 for softmin (softmax of -x), else 1
//   const LOG_OUTPUT: bool  log_softmax
// WORKGROUP_SIZE, RESIDENT_K, REGISTER_VEC4S, `load_in(k)` (the input, through src, or dst
// when the input and output share a buffer and so one read-write binding) and
// `load_in4(j)` (its elements 4j to 4j + 3); activations.wgsl and one of
// reduce_tree.wgsl / reduce_subgroup.wgsl follow it.
//
// Statistics of a row, kept the same way by every strategy:
//   M    the maximum (NaN is read as +inf, so a row with NaN or +inf has M = +inf)
//   cnt  how many elements equal M; each contributes exactly exp(0) = 1 to the sum
//   s    the sum of exp(x - M) over the other elements
// The sum is cnt + s, and log(sum) = log1p((cnt - 1) + s) does not cancel when one element
// dominates (a log-probability of -1e-9 stays accurate). A row whose M is not finite (NaN,
// +inf, or only -inf) is NaN throughout, as in PyTorch.
//
// Strategies (entry points), chosen by the host from the row length and the adapter:
//   softmax_lane       one invocation per row: an online pass, then a write pass
//   softmax_workgroup  one workgroup per row: an online pass per invocation, a workgroup
//                      reduction, then a write pass
//   softmax_resident   one workgroup per row holding it in registers (RESIDENT_K elements
//                      per invocation): one read and one write, the floor
//   softmax_split_*    rows split into chunks over many workgroups: per-chunk statistics
//                      to `partials`, then each chunk combines its row's and writes
//   softmax_registers  each row held in registers by a segment of `lanes` invocations
//   (and _vec4)        (several rows per subgroup, a subgroup, or the workgroup), vec4s
//                      interleaved across the segment: one read, one write, one exp per
//                      element; _vec4 moves 16 bytes per access (contiguous rows of a
//                      multiple of 4 at aligned offsets), the other any row
//   softmax_split_*_registers  split, each chunk held in registers by the workgroup

struct Rows {
    rows: u32,       // rows in this dispatch (outer * inner)
    axis: u32,       // elements per row
    inner: u32,      // stride between a row's elements
    in_offset: u32,  // element offset of the tensor in the input binding
    out_offset: u32, // element offset of the tensor in the output binding
    chunk_len: u32,  // split: elements per chunk
    chunks: u32,     // split: chunks per row
    one: u32,        // 1; the source of opaque_one
    lanes: u32,      // registers: invocations per row (a power of two)
    per_lane: u32,   // registers: vec4s each of them holds (at most REGISTER_VEC4S)
    interleave: u32, // registers: 1 where a workgroup's rows are interleaved (strided axes)
    pad0: u32,
}

@group(0) @binding(2) var<uniform> shape: Rows;
// Split only, in a second bind group: per-(row, chunk) statistics.
@group(1) @binding(0) var<storage, read_write> partials: array<vec4<f32>>;

var<private> pos_inf: f32;
var<private> neg_inf: f32;
var<private> nan: f32;

// Every entry point calls this first.
fn setup() {
    opaque_one = f32(shape.one);
    pos_inf = bitcast<f32>(0x7f800000u * shape.one);
    neg_inf = -pos_inf;
    nan = bitcast<f32>(0x7fc00000u * shape.one);
}

fn row_base(r: u32) -> u32 {
    let o = r / shape.inner;
    return o * shape.axis * shape.inner + (r - o * shape.inner);
}

// Element j of the row at `base`, sign applied, NaN read as +inf.
fn load(base: u32, j: u32) -> f32 {
    let x = SIGN * load_in(base + j * shape.inner);
    return select(x, pos_inf, is_nan_f32(x));
}

fn store(base: u32, j: u32, y: f32) {
    dst_store(shape.out_offset + base + j * shape.inner, y);
}

// ---------------------------------------------------------------------------------------
// Online statistics (Milakov and Gimelshein, 2018), with two changes for accuracy. The
// sum is kept relative to a reference r that moves only when an element exceeds it by more
// than 8, so a rising row does not rescale the sum at every element (each rescale rounds);
// what a move rescales is at most e^-8 of the new total. And it is accumulated with a
// Neumaier compensation term, so a long row summed by one invocation stays accurate.

struct Online {
    m: f32,   // the maximum so far
    r: f32,   // the reference: m - 8 <= r <= m
    cnt: f32, // elements equal to m
    s: f32,   // sum over the others of exp(x - r) ...
    c: f32,   // ... and its compensation
}

fn online_new() -> Online {
    return Online(neg_inf, neg_inf, 0.0, 0.0, 0.0);
}

fn online_push(st: Online, x: f32) -> Online {
    var t = st;
    if (x > t.r + 8.0) {
        let f = exp_f32(t.r - x); // 0 while r is -inf
        t.s *= f;
        t.c *= f;
        t.r = x;
    }
    let is_new = x > t.m;
    let is_eq = x == t.m;
    // x joins the sum, or on a new maximum the old maximum's cnt elements do.
    let e = exp_f32(select(x, t.m, is_new) - t.r);
    let add = select(select(e, 0.0, is_eq), t.cnt * e, is_new);
    let sum = keep(t.s + add);
    t.c += keep(max(t.s, add) - sum) + min(t.s, add);
    t.s = sum;
    t.cnt = select(select(t.cnt, t.cnt + 1.0, is_eq), 1.0, is_new);
    t.m = max(t.m, x);
    return t;
}

// a - b as an exact pair; (+-inf, 0) where the difference overflows or a is infinite.
fn diff_pair(a: f32, b: f32) -> vec2<f32> {
    let d = two_sum(a, -b);
    return vec2<f32>(d.x, select(d.y, 0.0, is_inf_f32(d.x)));
}

// exp(a - b) for a <= b, the difference carried exactly (0 for a = -inf).
fn exp_diff(a: f32, b: f32) -> f32 {
    let d = diff_pair(a, b);
    return scale2_parts(exp_pair_parts(d.x, d.y));
}

// (m, cnt, s) with s relative to m.
fn online_end(t: Online) -> vec3<f32> {
    let s = t.s + t.c;
    return vec3<f32>(t.m, t.cnt, select(0.0, s * exp_diff(t.r, t.m), s != 0.0));
}

// Statistics (m, cnt, s) relative to a larger maximum M: (cnt, s) as counted against M.
fn rebase(t: vec3<f32>, big_m: f32) -> vec2<f32> {
    if (t.x == big_m) {
        return t.yz;
    }
    let w = t.y + t.z;
    return vec2<f32>(0.0, select(0.0, w * exp_diff(t.x, big_m), w != 0.0));
}

// ---------------------------------------------------------------------------------------
// Writing a row from its statistics.

struct Row {
    m: f32,
    k: f32,     // softmax: 1 / sum; log_softmax: log(sum)
    ok: bool,   // M finite
}

// log1p(t) for t >= 0, accurate for every t.
fn log1p_pos(t: f32) -> f32 {
    if (t <= 1.0) {
        return log1p_unit(t);
    }
    // 1 + t = f * 2^e, f in [1, 2): log = e ln2 + log1p(f - 1), f - 1 exact.
    let u = 1.0 + t;
    let bits = bitcast<u32>(u);
    let e = f32(i32(bits >> 23u) - 127);
    let f = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    return fma(e, LN2_F32_HI, fma(e, LN2_F32_LO, log1p_unit(f - 1.0)));
}

fn row_final(big_m: f32, cs: vec2<f32>) -> Row {
    let ok = (bitcast<u32>(big_m) & 0x7f800000u) != 0x7f800000u;
    var k: f32;
    if (LOG_OUTPUT) {
        k = log1p_pos((cs.x - 1.0) + cs.y);
    } else {
        k = 1.0 / (cs.x + cs.y);
    }
    return Row(big_m, k, ok);
}

// The output for an input x (sign applied) of a row.
fn finish(x: f32, row: Row) -> f32 {
    var y: f32;
    if (LOG_OUTPUT) {
        // (x - M) - log(sum): both terms <= 0, so nothing cancels.
        let d = diff_pair(x, row.m);
        y = (d.x - row.k) + d.y;
    } else {
        y = exp_diff(x, row.m) * row.k;
    }
    return select(nan, y, row.ok);
}

// ---------------------------------------------------------------------------------------
// Strategies

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_lane(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var r = gid.x; r < shape.rows; r += groups.x * WORKGROUP_SIZE) {
        let base = row_base(r);
        var st = online_new();
        for (var j = 0u; j < shape.axis; j++) {
            st = online_push(st, load(base, j));
        }
        let t = online_end(st);
        let row = row_final(t.x, t.yz);
        for (var j = 0u; j < shape.axis; j++) {
            store(base, j, finish(load(base, j), row));
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_workgroup(inv: Invocation,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var r = wid.x; r < shape.rows; r += groups.x) {
        let base = row_base(r);
        var st = online_new();
        for (var j = inv.lid; j < shape.axis; j += WORKGROUP_SIZE) {
            st = online_push(st, load(base, j));
        }
        let t = online_end(st);
        let big_m = wg_max(t.x, inv);
        let row = row_final(big_m, wg_sum2(rebase(t, big_m), inv));
        for (var j = inv.lid; j < shape.axis; j += WORKGROUP_SIZE) {
            store(base, j, finish(load(base, j), row));
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_resident(inv: Invocation,
                    @builtin(workgroup_id) wid: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var r = wid.x; r < shape.rows; r += groups.x) {
        let base = row_base(r);
        var v: array<f32, RESIDENT_K>;
        var m = neg_inf;
        for (var k = 0u; k < RESIDENT_K; k++) {
            let j = inv.lid + k * WORKGROUP_SIZE;
            v[k] = neg_inf;
            if (j < shape.axis) {
                v[k] = load(base, j);
            }
            m = max(m, v[k]);
        }
        let big_m = wg_max(m, inv);
        // The maximum is known exactly: each element's exp is taken once, against it.
        var e: array<f32, RESIDENT_K>;
        var cs = vec2<f32>(0.0);
        for (var k = 0u; k < RESIDENT_K; k++) {
            let is_max = v[k] == big_m;
            e[k] = select(exp_diff(v[k], big_m), 1.0, is_max);
            cs += select(vec2<f32>(0.0, e[k]), vec2<f32>(1.0, 0.0), is_max);
        }
        let row = row_final(big_m, wg_sum2(cs, inv));
        for (var k = 0u; k < RESIDENT_K; k++) {
            let j = inv.lid + k * WORKGROUP_SIZE;
            if (j < shape.axis) {
                var y: f32;
                if (LOG_OUTPUT) {
                    y = finish(v[k], row);
                } else {
                    y = select(nan, e[k] * row.k, row.ok);
                }
                store(base, j, y);
            }
        }
    }
}

// Pass 1 of split: the statistics of each (row, chunk) to partials[row * chunks + chunk]
// as (m, cnt, s, 0).
@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_stats(inv: Invocation,
                       @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    let items = shape.rows * shape.chunks;
    for (var item = wid.x; item < items; item += groups.x) {
        let r = item / shape.chunks;
        let begin = (item - r * shape.chunks) * shape.chunk_len;
        let end = min(begin + shape.chunk_len, shape.axis);
        let base = row_base(r);
        var st = online_new();
        for (var j = begin + inv.lid; j < end; j += WORKGROUP_SIZE) {
            st = online_push(st, load(base, j));
        }
        let t = online_end(st);
        let big_m = wg_max(t.x, inv);
        let cs = wg_sum2(rebase(t, big_m), inv);
        if (inv.lid == 0u) {
            partials[item] = vec4<f32>(big_m, cs, 0.0);
        }
    }
}

// Row r's statistics from its chunks' partials, combined the same way by every chunk of
// the row (so each gets the same bits).
fn split_row(r: u32, inv: Invocation) -> Row {
    let first = r * shape.chunks;
    var m = neg_inf;
    for (var i = inv.lid; i < shape.chunks; i += WORKGROUP_SIZE) {
        m = max(m, partials[first + i].x);
    }
    let big_m = wg_max(m, inv);
    var cs = vec2<f32>(0.0);
    for (var i = inv.lid; i < shape.chunks; i += WORKGROUP_SIZE) {
        cs += rebase(partials[first + i].xyz, big_m);
    }
    return row_final(big_m, wg_sum2(cs, inv));
}

// Pass 2 of split: every chunk combines its row's partial statistics and writes its
// elements.
@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_write(inv: Invocation,
                       @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    let items = shape.rows * shape.chunks;
    for (var item = wid.x; item < items; item += groups.x) {
        let r = item / shape.chunks;
        let first = r * shape.chunks;
        let row = split_row(r, inv);
        let begin = (item - first) * shape.chunk_len;
        let end = min(begin + shape.chunk_len, shape.axis);
        let base = row_base(r);
        for (var j = begin + inv.lid; j < end; j += WORKGROUP_SIZE) {
            store(base, j, finish(load(base, j), row));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Registers: a segment of `lanes` invocations holds a row (or, in split_registers, a chunk
// of one), lane l its vec4s l, l + lanes, l + 2 lanes, ... (adjacent lanes touch adjacent
// vec4s), at most REGISTER_VEC4S each. The loops run to the constant REGISTER_VEC4S with a
// uniform guard, so a compiler unrolls them and indexes the array with constants: it
// stays in registers. Each kernel has two entry points, one moving vec4s (contiguous rows
// of a multiple of 4 elements at offsets that are multiples of 4) and one moving single
// elements (any rows): an entry point may use only one view of a binding.

alias Regs = array<vec4<f32>, REGISTER_VEC4S>;

// The segments holding rows: `lanes` neighbouring invocations per row (seg_*: subgroup
// shuffles, or the workgroup), or on strided axes (`interleave`) the workgroup's rows
// interleaved, invocation i in row i % (WORKGROUP_SIZE / lanes), so that neighbouring
// invocations read neighbouring columns (strided_seg_*: the shared-memory tree).
fn row_seg_position(inv: Invocation) -> vec2<u32> {
    if (shape.interleave != 0u) {
        let segs = WORKGROUP_SIZE / shape.lanes;
        return vec2<u32>(inv.lid % segs, inv.lid / segs);
    }
    return seg_position(shape.lanes, inv);
}

fn row_seg_max(v: f32, inv: Invocation) -> f32 {
    if (shape.interleave != 0u) {
        return strided_seg_max(v, shape.lanes, inv);
    }
    return seg_max(v, shape.lanes, inv);
}

fn row_seg_sum2(v: vec2<f32>, inv: Invocation) -> vec2<f32> {
    if (shape.interleave != 0u) {
        return strided_seg_sum2(v, shape.lanes, inv);
    }
    return seg_sum2(v, shape.lanes, inv);
}

// SIGN x with NaN read as +inf, four at a time.
fn load_fix4(x: vec4<f32>) -> vec4<f32> {
    let s = SIGN * x;
    let nan4 = (bitcast<vec4<u32>>(s) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
    return select(s, vec4<f32>(pos_inf), nan4);
}

// Elements [begin, end) of the row at `base` into *v: lane `lane`'s vec4 q holds elements
// begin + 4 (q lanes + lane) + c, -inf past the end. The _vec4 forms take the row's vec4
// index `base4` and a `begin` that is a multiple of 4.
fn regs_load(v: ptr<function, Regs>, base: u32, begin: u32, end: u32, lane: u32) {
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        let j = begin + 4u * (q * shape.lanes + lane);
        var x = vec4<f32>(neg_inf);
        if (q < shape.per_lane) {
            for (var c = 0u; c < 4u; c++) {
                if (j + c < end) {
                    x[c] = load(base, j + c);
                }
            }
        }
        (*v)[q] = x;
    }
}

fn regs_store(v: ptr<function, Regs>, base: u32, begin: u32, end: u32, lane: u32) {
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        let j = begin + 4u * (q * shape.lanes + lane);
        if (q < shape.per_lane) {
            for (var c = 0u; c < 4u; c++) {
                if (j + c < end) {
                    store(base, j + c, (*v)[q][c]);
                }
            }
        }
    }
}

fn regs_load_vec4(v: ptr<function, Regs>, base4: u32, begin: u32, end: u32, lane: u32) {
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        let j = begin + 4u * (q * shape.lanes + lane);
        (*v)[q] = vec4<f32>(neg_inf);
        if (q < shape.per_lane && j < end) {
            (*v)[q] = load_fix4(load_in4(base4 + j / 4u));
        }
    }
}

fn regs_store_vec4(v: ptr<function, Regs>, base4: u32, begin: u32, end: u32, lane: u32) {
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        let j = begin + 4u * (q * shape.lanes + lane);
        if (q < shape.per_lane && j < end) {
            dst_store4(shape.out_offset / 4u + base4 + j / 4u, (*v)[q]);
        }
    }
}

// The segment's maximum of *v.
fn regs_max(v: ptr<function, Regs>, inv: Invocation) -> f32 {
    var m = neg_inf;
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        if (q < shape.per_lane) {
            let x = (*v)[q];
            m = max(m, max(max(x.x, x.y), max(x.z, x.w)));
        }
    }
    return row_seg_max(m, inv);
}

// (cnt, s) of *v against its segment's maximum big_m (see the statistics above): each
// element's exp taken once, against the exact maximum; with `keep_exp`, *v becomes
// exp(x - big_m).
fn regs_sums(v: ptr<function, Regs>, big_m: f32, keep_exp: bool, inv: Invocation) -> vec2<f32> {
    var cnt = 0.0;
    var s = vec4<f32>(0.0);
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        if (q < shape.per_lane) {
            let x = (*v)[q];
            let is_max = x == vec4<f32>(big_m);
            let e = select(vec4<f32>(exp_diff(x.x, big_m), exp_diff(x.y, big_m),
                                     exp_diff(x.z, big_m), exp_diff(x.w, big_m)),
                           vec4<f32>(1.0), is_max);
            let ones = select(vec4<f32>(0.0), vec4<f32>(1.0), is_max);
            cnt += (ones.x + ones.y) + (ones.z + ones.w);
            s += select(e, vec4<f32>(0.0), is_max);
            if (keep_exp) {
                (*v)[q] = e;
            }
        }
    }
    return row_seg_sum2(vec2<f32>(cnt, (s.x + s.y) + (s.z + s.w)), inv);
}

// *v (inputs) turned into the row's outputs.
fn regs_finish(v: ptr<function, Regs>, row: Row) {
    for (var q = 0u; q < REGISTER_VEC4S; q++) {
        if (q < shape.per_lane) {
            let x = (*v)[q];
            (*v)[q] = vec4<f32>(finish(x.x, row), finish(x.y, row),
                                finish(x.z, row), finish(x.w, row));
        }
    }
}

// The row a segment holds turned into its outputs in place. Every invocation of the
// workgroup calls it (uniform control flow).
fn registers_row(v: ptr<function, Regs>, inv: Invocation) {
    let big_m = regs_max(v, inv);
    // softmax keeps each exp for its output; log_softmax needs the inputs
    let row = row_final(big_m, regs_sums(v, big_m, !LOG_OUTPUT, inv));
    if (LOG_OUTPUT) {
        regs_finish(v, row);
    } else {
        for (var q = 0u; q < REGISTER_VEC4S; q++) {
            if (q < shape.per_lane) {
                (*v)[q] = select(vec4<f32>(nan), (*v)[q] * row.k, row.ok);
            }
        }
    }
}

// Rows per workgroup and grid step, and this invocation's row among those from `first`
// (an invocation past the last row takes the last row's values, so it still takes part in
// its segment's reductions, and stores nothing).
fn registers_rows_per_group() -> u32 {
    return WORKGROUP_SIZE / shape.lanes;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_registers_vec4(inv: Invocation,
                          @builtin(workgroup_id) wid: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    let pos = row_seg_position(inv);
    let per_group = registers_rows_per_group();
    for (var first = wid.x * per_group; first < shape.rows; first += groups.x * per_group) {
        let mine = first + pos.x;
        let base4 = min(mine, shape.rows - 1u) * (shape.axis / 4u);
        var v: Regs;
        regs_load_vec4(&v, base4, 0u, shape.axis, pos.y);
        registers_row(&v, inv);
        if (mine < shape.rows) {
            regs_store_vec4(&v, base4, 0u, shape.axis, pos.y);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_registers(inv: Invocation,
                     @builtin(workgroup_id) wid: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    let pos = row_seg_position(inv);
    let per_group = registers_rows_per_group();
    for (var first = wid.x * per_group; first < shape.rows; first += groups.x * per_group) {
        let mine = first + pos.x;
        let base = row_base(min(mine, shape.rows - 1u));
        var v: Regs;
        regs_load(&v, base, 0u, shape.axis, pos.y);
        registers_row(&v, inv);
        if (mine < shape.rows) {
            regs_store(&v, base, 0u, shape.axis, pos.y);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Split with each chunk held in registers by the workgroup (lanes = WORKGROUP_SIZE): pass
// 1 loads a chunk once, takes its exact maximum and one exp per element against it, and
// writes the chunk's (m, cnt, s) to partials; pass 2 combines the row's partials
// (split_row), loads its chunk once more and writes it. Two reads and one write of the
// tensor, no online rescaling.

// (row, first element, end) of (row, chunk) item `item`.
fn chunk_of(item: u32) -> vec3<u32> {
    let r = item / shape.chunks;
    let begin = (item - r * shape.chunks) * shape.chunk_len;
    return vec3<u32>(r, begin, min(begin + shape.chunk_len, shape.axis));
}

fn chunk_partial(v: ptr<function, Regs>, item: u32, inv: Invocation) {
    let m = regs_max(v, inv);
    let cs = regs_sums(v, m, false, inv);
    if (inv.lid == 0u) {
        partials[item] = vec4<f32>(m, cs, 0.0);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_stats_registers_vec4(inv: Invocation,
                                      @builtin(workgroup_id) wid: vec3<u32>,
                                      @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var item = wid.x; item < shape.rows * shape.chunks; item += groups.x) {
        let c = chunk_of(item);
        var v: Regs;
        regs_load_vec4(&v, c.x * (shape.axis / 4u), c.y, c.z, inv.lid);
        chunk_partial(&v, item, inv);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_stats_registers(inv: Invocation,
                                 @builtin(workgroup_id) wid: vec3<u32>,
                                 @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var item = wid.x; item < shape.rows * shape.chunks; item += groups.x) {
        let c = chunk_of(item);
        var v: Regs;
        regs_load(&v, row_base(c.x), c.y, c.z, inv.lid);
        chunk_partial(&v, item, inv);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_write_registers_vec4(inv: Invocation,
                                      @builtin(workgroup_id) wid: vec3<u32>,
                                      @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var item = wid.x; item < shape.rows * shape.chunks; item += groups.x) {
        let c = chunk_of(item);
        let row = split_row(c.x, inv);
        let base4 = c.x * (shape.axis / 4u);
        var v: Regs;
        regs_load_vec4(&v, base4, c.y, c.z, inv.lid);
        regs_finish(&v, row);
        regs_store_vec4(&v, base4, c.y, c.z, inv.lid);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn softmax_split_write_registers(inv: Invocation,
                                 @builtin(workgroup_id) wid: vec3<u32>,
                                 @builtin(num_workgroups) groups: vec3<u32>) {
    setup();
    for (var item = wid.x; item < shape.rows * shape.chunks; item += groups.x) {
        let c = chunk_of(item);
        let row = split_row(c.x, inv);
        let base = row_base(c.x);
        var v: Regs;
        regs_load(&v, base, c.y, c.z, inv.lid);
        regs_finish(&v, row);
        regs_store(&v, base, c.y, c.z, inv.lid);
    }
}
