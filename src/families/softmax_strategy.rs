//! How the softmax family maps rows onto the GPU: the [`Strategy`] a call names, what
//! `Auto` resolves to on this adapter, and the arithmetic of each strategy (its
//! chunking, its workgroups, the loop iterations one invocation runs, how the register
//! strategies hold a row). The measurements behind `Auto`'s table are in
//! `benches/NOTES.md` ("Softmax strategies").

use crate::device::wgsl::RESIDENT_K;
use crate::{Context, Direction, Error, Result, RowView, Storage};

/// [`Strategy::Registers`] gives a row as many invocations as hold it in this many vec4s
/// each (up to a subgroup): two vec4s in flight per invocation, and several rows per
/// subgroup for rows shorter than a subgroup's 4 x 2 x 32 elements.
const REGISTER_TARGET: u64 = 2;

/// Rows per workgroup of [`Strategy::Registers`] on strided axes: 8 f32 columns fill a
/// 32-byte memory sector.
const STRIDED_ROWS: u64 = 8;

/// How the rows of a softmax-family call are mapped onto the GPU: a parameter of the call
/// ([`crate::Call::strategy`]); every strategy gives results within the family's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Chosen from the shape and the adapter ([`crate::Call::row_plan`] says which).
    Auto,
    /// One invocation per row, many rows per workgroup: an online max-and-sum pass, then
    /// a write pass. No barriers; suits short rows, strided (non-last) axes with many
    /// rows, and CPU adapters, where a barrier is costly.
    Lane,
    /// One subgroup per row, several rows per workgroup: an online pass per lane over a
    /// strided share of the row, subgroup reductions, then a write pass. No barriers;
    /// needs `Features::SUBGROUP`. For rows too long for one invocation and too short to
    /// fill a workgroup.
    Subgroup,
    /// One workgroup per row: an online pass per invocation over a strided share of the
    /// row, a workgroup reduction, then a write pass. Any row length.
    Workgroup,
    /// One workgroup per row holding the row in registers: one read and one write of the
    /// tensor. Rows of at most `workgroup_size * 16` elements.
    Resident,
    /// Each row split into chunks over many workgroups, so that a few very long rows (a
    /// 256K vocabulary, a million columns) still fill the device: per-chunk statistics,
    /// then every chunk combines its row's and writes. Two dispatches and a scratch buffer;
    /// about 2,048 workgroups in all on a GPU, two per core on a CPU adapter.
    Split,
    /// Each row held in registers by a segment of invocations sized to it: several rows
    /// per subgroup for short rows, one subgroup, or (past what a subgroup holds) the
    /// whole workgroup, each invocation holding at most 8 vec4s. One read and one write of
    /// the tensor, one exp per element, 16-byte loads and stores for contiguous rows of a
    /// multiple of 4 elements at offsets that are multiples of 4 elements (single elements
    /// otherwise). Rows of at most [`crate::AdapterFacts::registers_capacity`] elements;
    /// segments below a workgroup need `Features::SUBGROUP` (else a shared-memory tree
    /// reduces them). `Auto`'s choice on GPUs for rows up to that capacity.
    Registers,
    /// [`Strategy::Split`] with each chunk held in registers by a workgroup (chunks of at
    /// most [`crate::AdapterFacts::registers_capacity`] elements): the statistics pass
    /// loads a chunk once and takes one exp per element against the chunk's exact
    /// maximum, the write pass loads it again and writes; vec4 loads and stores where rows
    /// are contiguous and aligned. Two reads and one write of the tensor, no online
    /// rescaling. `Auto`'s choice on GPUs for rows longer than [`Strategy::Registers`]
    /// holds.
    SplitRegisters,
}

impl Strategy {
    /// Every concrete strategy (not `Auto`).
    pub const ALL: [Strategy; 7] = [
        Strategy::Lane,
        Strategy::Subgroup,
        Strategy::Workgroup,
        Strategy::Resident,
        Strategy::Split,
        Strategy::Registers,
        Strategy::SplitRegisters,
    ];
}

/// What a softmax-family call runs ([`crate::Call::row_plan`]): the strategy (`Auto`
/// resolved), and how it holds and cuts each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowPlan {
    /// The strategy that runs.
    pub strategy: Strategy,
    /// [`Strategy::Registers`]: invocations per row, the vec4s each holds, and whether
    /// the rows of a workgroup are interleaved (strided axes). 1, 1, false otherwise.
    pub lanes: u64,
    /// See `lanes`.
    pub vec4s_per_lane: u64,
    /// See `lanes`.
    pub interleaved: bool,
    /// Split's and SplitRegisters' elements per chunk (the row length otherwise).
    pub chunk_len: u64,
    /// Split's and SplitRegisters' chunks per row (1 otherwise).
    pub chunks: u64,
}

/// The longest row [`Strategy::Resident`] holds.
pub(crate) fn resident_capacity(ctx: &Context) -> u64 {
    u64::from(ctx.workgroup_size() * RESIDENT_K)
}

/// The longest row [`Strategy::Registers`] holds: a workgroup's invocations with their
/// vec4s each.
pub(crate) fn registers_capacity(ctx: &Context) -> u64 {
    u64::from(ctx.workgroup_size() * 4 * ctx.register_vec4s())
}

/// How [`Strategy::Registers`] holds contiguous rows of `axis` elements: (invocations per
/// row, vec4s each holds), or `None` for rows longer than its capacity. A row takes the
/// fewest invocations (a power of two) that hold it in at most 2 vec4s each, up to the
/// smallest subgroup (segments reduce with subgroup shuffles; with no subgroups, up to the
/// workgroup through shared memory); past that, the whole workgroup. So rows of 32 take 4
/// lanes (8 rows per 32-lane subgroup), rows of 256 to 1,024 a subgroup of 32, and longer
/// rows a workgroup.
pub(crate) fn registers_shape(ctx: &Context, axis: u64) -> Option<(u64, u64)> {
    let wg = u64::from(ctx.workgroup_size());
    let most = u64::from(ctx.register_vec4s());
    let quads = axis.div_ceil(4).max(1);
    let widest = if ctx.subgroups() {
        ctx.subgroup_sizes().0.min(wg)
    } else {
        wg
    };
    let mut lanes = 1;
    while lanes < widest && quads.div_ceil(lanes) > REGISTER_TARGET {
        lanes *= 2;
    }
    if quads.div_ceil(lanes) > most {
        lanes = wg;
    }
    let per_lane = quads.div_ceil(lanes);
    (per_lane <= most).then_some((lanes, per_lane))
}

/// How [`Strategy::Registers`] holds the rows of `view`: (invocations per row, vec4s
/// each holds, interleaved). Contiguous rows as [`registers_shape`] says. Strided rows (a
/// non-last axis) of up to a workgroup's eighth times 32 elements take the fewest
/// invocations that hold them in 2 vec4s each, at most a workgroup's eighth, so at least 8
/// rows share a workgroup, with their invocations interleaved (invocation i holds row i %
/// rows): each access of 8 neighbouring invocations reads 8 neighbouring columns, a whole
/// 32-byte sector.
pub(crate) fn register_layout(ctx: &Context, view: RowView) -> Option<(u64, u64, bool)> {
    let wg = u64::from(ctx.workgroup_size());
    let widest = (wg / STRIDED_ROWS).max(1);
    let quads = (view.axis as u64).div_ceil(4).max(1);
    if view.inner > 1 && quads.div_ceil(widest) <= u64::from(ctx.register_vec4s()) {
        let mut lanes = 1;
        while lanes < widest && quads.div_ceil(lanes) > REGISTER_TARGET {
            lanes *= 2;
        }
        return Some((lanes, quads.div_ceil(lanes), true));
    }
    registers_shape(ctx, view.axis as u64).map(|(lanes, per_lane)| (lanes, per_lane, false))
}

/// `Auto` on a CPU adapter, which runs a workgroup's invocations as SIMD lanes of one
/// thread and pays for every barrier: one row per lane wherever the loop budget allows,
/// one subgroup per row for long contiguous rows, else one workgroup per row when there
/// are rows for every core, else Split.
fn auto_on_cpu(ctx: &Context, view: RowView, cores: usize) -> Strategy {
    let rows = view.rows();
    let long = (2048..=16_384).contains(&view.axis);
    if rows >= 64 && long && view.inner == 1 && ctx.subgroups() {
        Strategy::Subgroup
    } else if rows >= 64 || view.axis <= 64 {
        Strategy::Lane
    } else if rows >= cores {
        Strategy::Workgroup
    } else {
        Strategy::Split
    }
}

/// `Auto` on a GPU: rows in registers where they fit (strided rows of 65 to 1,024 too),
/// else the online strategies as measured on an H100; the backward (which has no register
/// kernels, reading two tensors per row) keeps the online table.
fn auto_on_gpu(ctx: &Context, view: RowView, forward: bool) -> Strategy {
    let (rows, wg) = (view.rows(), ctx.workgroup_size() as usize);
    let strided_in_registers = view.inner > 1
        && view.axis > 64
        && register_layout(ctx, view).is_some_and(|(_, _, interleaved)| interleaved);
    if forward && strided_in_registers {
        Strategy::Registers
    } else if view.inner > 1 && rows >= 64 * wg {
        // adjacent invocations read adjacent columns
        Strategy::Lane
    } else if forward && registers_shape(ctx, view.axis as u64).is_some() {
        Strategy::Registers
    } else if !forward && ctx.subgroups() && view.axis <= 2048 {
        Strategy::Subgroup
    } else if !forward && view.axis <= 32 {
        Strategy::Lane
    } else if rows >= 512 || (view.axis <= 16_384 && rows >= 64) {
        Strategy::Workgroup
    } else if forward {
        Strategy::SplitRegisters
    } else {
        Strategy::Split
    }
}

/// What `Auto` runs for `view` in `direction`: the table's choice, or the first fallback
/// within the adapter's loop budget (lavapipe's cuts long rows short in Lane).
pub(crate) fn auto(
    ctx: &Context,
    view: RowView,
    storage: Storage,
    direction: Direction,
) -> Strategy {
    let forward = direction == Direction::Forward;
    let preferred = match ctx.cpu_cores() {
        Some(cores) => auto_on_cpu(ctx, view, cores),
        None => auto_on_gpu(ctx, view, forward),
    };
    let fallbacks = [
        Strategy::Workgroup,
        Strategy::Split,
        Strategy::SplitRegisters,
    ];
    let usable = |s: &Strategy| forward || *s != Strategy::SplitRegisters;
    std::iter::once(preferred)
        .chain(fallbacks.into_iter().filter(usable))
        .find(|&s| serves(ctx, s, view, storage))
        .unwrap_or(Strategy::Split)
}

/// Whether `strategy` can serve `view` here: the row length (Resident and Registers hold
/// rows up to their capacity), subgroups where it needs them, and the loop iterations one
/// invocation runs against the adapter's loop budget.
pub(crate) fn serves(ctx: &Context, strategy: Strategy, view: RowView, storage: Storage) -> bool {
    let fits = match strategy {
        Strategy::Auto => return true,
        Strategy::Resident => view.axis as u64 <= resident_capacity(ctx),
        Strategy::Subgroup => ctx.subgroups(),
        Strategy::Registers => register_layout(ctx, view).is_some(),
        _ => true,
    };
    if !fits || ctx.loop_budget().is_none() {
        return fits;
    }
    // Rows in the largest binding-sized piece.
    let slab = (view.axis * view.inner).max(1) as u64;
    let per_binding = ctx.limits().max_storage_buffer_binding_size / storage.bytes() / slab;
    let rows = (per_binding.max(1) * view.inner as u64).min(view.rows() as u64);
    ctx.within_budget(iterations(ctx, strategy, rows, view))
}

/// An upper bound on the loop iterations one invocation runs (all loops together) for
/// `rows` rows of `view`'s in one dispatch.
fn iterations(ctx: &Context, strategy: Strategy, rows: u64, view: RowView) -> u64 {
    let axis = view.axis as u64;
    let wg = u64::from(ctx.workgroup_size());
    let (chunk_len, chunks) = chunking(ctx, strategy, rows, axis);
    let groups = dispatch_groups(ctx, strategy, rows, view, chunks);
    // A workgroup reduction: the tree halves WG, subgroups loop over their results.
    let reduce = if ctx.subgroups() {
        wg
    } else {
        wg.ilog2() as u64
    } + 2;
    let k = u64::from(ctx.register_vec4s());
    match strategy {
        Strategy::Lane => rows.div_ceil(groups * wg) * (2 * axis + 2),
        Strategy::Subgroup => {
            let (smallest, largest) = ctx.subgroup_sizes();
            let rows_per_group = (wg / largest).max(1);
            rows.div_ceil(groups * rows_per_group) * (2 * axis.div_ceil(smallest) + 2)
        }
        Strategy::Workgroup => rows.div_ceil(groups) * (2 * axis.div_ceil(wg) + 2 * reduce + 2),
        Strategy::Resident => rows.div_ceil(groups) * (3 * u64::from(RESIDENT_K) + 2 * reduce + 2),
        Strategy::Registers => {
            let (lanes, ..) = register_layout(ctx, view).unwrap_or((wg, 1, false));
            // loads and stores (four elements each on the single-element path), the
            // row's three loops, two segmented reductions
            let per_row = 13 * k + 2 * reduce + 2 * u64::from(wg.ilog2()) + 2;
            rows.div_ceil(groups * (wg / lanes)) * per_row
        }
        Strategy::SplitRegisters => {
            let items = (rows * chunks).div_ceil(groups);
            items * (13 * k + 2 * chunks.div_ceil(wg) + 4 * reduce + 2)
        }
        Strategy::Split | Strategy::Auto => {
            let items = (rows * chunks).div_ceil(groups);
            // the larger of the two passes
            items * (2 * chunk_len.div_ceil(wg) + 2 * chunks.div_ceil(wg) + 4 * reduce + 2)
        }
    }
}

/// (elements per chunk, chunks per row): Split's chunking, SplitRegisters' (as Split's,
/// but each chunk a whole number of vec4s per invocation and at most what the register
/// kernels hold), one whole row otherwise. Enough chunks to give the device about 2,048
/// workgroups in all (two per core on a CPU adapter), each chunk at least 4 elements per
/// invocation and a whole number of workgroup widths.
pub(crate) fn chunking(ctx: &Context, strategy: Strategy, rows: u64, axis: u64) -> (u64, u64) {
    let wg = u64::from(ctx.workgroup_size());
    let target = ctx.target_groups(2048);
    let chunk_len = match strategy {
        Strategy::Split => {
            let most = axis.div_ceil(4 * wg).max(1);
            let chunks = target.div_ceil(rows.max(1)).clamp(1, most);
            axis.div_ceil(chunks).div_ceil(wg) * wg
        }
        Strategy::SplitRegisters => {
            let (quantum, capacity) = (4 * wg, registers_capacity(ctx));
            let chunks = target.div_ceil(rows.max(1)).max(axis.div_ceil(capacity));
            (axis.div_ceil(chunks).div_ceil(quantum) * quantum).min(capacity)
        }
        _ => return (axis, 1),
    }
    .max(1);
    (chunk_len, axis.div_ceil(chunk_len).max(1))
}

/// Workgroups one dispatch of `strategy` uses for `rows` rows of `view`'s in `chunks`
/// chunks.
pub(crate) fn dispatch_groups(
    ctx: &Context,
    strategy: Strategy,
    rows: u64,
    view: RowView,
    chunks: u64,
) -> u64 {
    let wg = u64::from(ctx.workgroup_size());
    let wanted = match strategy {
        Strategy::Lane => rows.div_ceil(wg),
        // as many rows per workgroup as the largest subgroups leave room for
        Strategy::Subgroup => rows.div_ceil((wg / ctx.subgroup_sizes().1).max(1)),
        Strategy::Split | Strategy::SplitRegisters => rows * chunks,
        Strategy::Registers => {
            let (lanes, ..) = register_layout(ctx, view).unwrap_or((wg, 1, false));
            rows.div_ceil(wg / lanes)
        }
        _ => rows,
    };
    u64::from(ctx.clamp_groups(wanted))
}

/// The strategy that runs `view` in `direction`: `Auto` resolved for this adapter (and in
/// the backward, which has no register or resident kernels, `Registers` and
/// `SplitRegisters` as its `Auto`, `Resident` as `Workgroup`), or an error where the
/// strategy cannot serve the rows, saying which and what to do.
pub(crate) fn resolve(
    ctx: &Context,
    requested: Strategy,
    view: RowView,
    storage: Storage,
    direction: Direction,
) -> Result<Strategy> {
    let backward = direction == Direction::Backward;
    let auto = requested == Strategy::Auto
        || (backward && matches!(requested, Strategy::Registers | Strategy::SplitRegisters));
    if requested == Strategy::Subgroup && !ctx.subgroups() {
        return Err(Error::Unsupported(
            "the subgroup strategy needs subgroup operations (Features::SUBGROUP), which \
             this device lacks; use Strategy::Auto"
                .into(),
        ));
    }
    let strategy = match requested {
        _ if auto => crate::families::softmax::auto_or_tuned(ctx, view, storage, direction),
        Strategy::Resident if backward => Strategy::Workgroup,
        s => s,
    };
    let capacity = match strategy {
        Strategy::Resident => Some(("resident strategy", resident_capacity(ctx), String::new())),
        Strategy::Registers => Some((
            "registers strategy",
            registers_capacity(ctx),
            format!(
                " (a workgroup's invocations with {} vec4s each)",
                ctx.register_vec4s()
            ),
        )),
        _ => None,
    };
    if let Some((name, most, why)) = capacity.filter(|c| view.axis as u64 > c.1) {
        let hint = if strategy == Strategy::Registers {
            "; use Strategy::Auto"
        } else {
            ""
        };
        return Err(Error::Unsupported(format!(
            "the {name} holds rows of at most {most} elements{why}, these have {}{hint}",
            view.axis
        )));
    }
    if !serves(ctx, strategy, view, storage) {
        return Err(Error::Unsupported(past_budget(
            ctx, requested, strategy, view, auto,
        )));
    }
    Ok(strategy)
}

/// Why `strategy` (for `requested`) cannot serve `view` within the loop budget.
fn past_budget(
    ctx: &Context,
    requested: Strategy,
    strategy: Strategy,
    view: RowView,
    auto: bool,
) -> String {
    let budget = ctx.loop_budget().unwrap_or(u64::MAX);
    let (rows, axis) = (view.rows(), view.axis);
    if auto {
        return format!(
            "no strategy serves {rows} rows of {axis} elements within this adapter's loop \
             budget ({budget} iterations per invocation; lavapipe stops every loop there): \
             even Split's chunks are too many for one invocation to combine; run rows this \
             long on a GPU, which has no such budget"
        );
    }
    let ran = if requested == strategy {
        String::new()
    } else {
        format!(" (running as {strategy:?} in the backward)")
    };
    format!(
        "{requested:?}{ran} would run more loop iterations per invocation than this adapter \
         allows ({budget}; lavapipe stops at 65,535) on {rows} rows of {axis}; use \
         Strategy::Auto"
    )
}

/// The plan of a call of `view`: the strategy that runs and how it holds and cuts rows,
/// planned for pieces of `piece_rows` rows.
pub(crate) fn row_plan(
    ctx: &Context,
    strategy: Strategy,
    view: RowView,
    piece_rows: u64,
) -> RowPlan {
    let (chunk_len, chunks) = chunking(ctx, strategy, piece_rows, view.axis as u64);
    let wg = u64::from(ctx.workgroup_size());
    let (lanes, vec4s_per_lane, interleaved) = match strategy {
        Strategy::Registers => register_layout(ctx, view).unwrap_or((1, 1, false)),
        Strategy::SplitRegisters => (wg, chunk_len.div_ceil(4 * wg), false),
        _ => (1, 1, false),
    };
    RowPlan {
        strategy,
        lanes,
        vec4s_per_lane,
        interleaved,
        chunk_len,
        chunks,
    }
}
