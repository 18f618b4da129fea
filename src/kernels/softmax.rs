//! The softmax family: `softmax`, `log_softmax` and `softmin` along any axis.
//!
//! Host side of `shaders/softmax.wgsl`. A tensor is viewed as (outer, axis, inner)
//! ([`RowView`]) and each of its `outer * inner` rows is normalised where it lies, strided
//! when the axis is not the last, so no transpose is needed. A [`Strategy`] picks how rows
//! map onto invocations; [`Strategy::Auto`] picks one from the row length, the number of
//! rows and the kind of adapter.

use super::dispatch::pieces;
use crate::cache::{Direction, Entry, PipelineKey, RowKernel};
use crate::op::Kernel;
use crate::shader::{REGISTER_VEC4S, RESIDENT_K};
use crate::{Activation, BufferRegion, Context, Element, Error, Result, RowView, Storage};
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

/// [`Strategy::Registers`] gives a row as many invocations as hold it in this many vec4s
/// each (up to a subgroup): two vec4s in flight per invocation, and several rows per
/// subgroup for rows shorter than a subgroup's 4 x 2 x 32 elements.
const REGISTER_TARGET: u64 = 2;

/// Rows per workgroup of [`Strategy::Registers`] on strided axes: 8 f32 columns fill a
/// 32-byte memory sector.
const STRIDED_ROWS: u64 = 8;

/// How the rows of a softmax are mapped onto the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Strategy {
    /// Chosen by [`Context::softmax_strategy`] from the shape and the adapter.
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
    /// otherwise). Rows of at most [`Context::registers_capacity`] elements; segments
    /// below a workgroup need `Features::SUBGROUP` (else a shared-memory tree reduces
    /// them). `Auto`'s choice on GPUs for rows up to that capacity.
    Registers,
    /// [`Strategy::Split`] with each chunk held in registers by a workgroup (chunks of at
    /// most [`Context::registers_capacity`] elements): the statistics pass loads a chunk
    /// once and takes one exp per element against the chunk's exact maximum, the write
    /// pass loads it again and writes; vec4 loads and stores where rows are contiguous and
    /// aligned. Two reads and one write of the tensor, no online rescaling. `Auto`'s
    /// choice on GPUs for rows longer than [`Strategy::Registers`] holds.
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

/// The uniform block of `shaders/softmax.wgsl` (`Rows`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    rows: u32,
    axis: u32,
    inner: u32,
    in_offset: u32,
    out_offset: u32,
    chunk_len: u32,
    chunks: u32,
    one: u32,
    lanes: u32,
    per_lane: u32,
    interleave: u32,
    pad: u32,
}

impl Context {
    /// The longest row [`Strategy::Resident`] can hold.
    pub fn resident_capacity(&self) -> usize {
        (self.workgroup_size() * RESIDENT_K) as usize
    }

    /// The longest row [`Strategy::Registers`] can hold: a workgroup's invocations with 8
    /// vec4s each.
    pub fn registers_capacity(&self) -> usize {
        (self.workgroup_size() * 4 * REGISTER_VEC4S) as usize
    }

    /// How [`Strategy::Registers`] holds contiguous rows (the last axis) of `axis`
    /// elements: (invocations per row, vec4s each holds), or `None` for rows longer than
    /// [`Context::registers_capacity`]. (Strided rows of up to a workgroup's eighth times
    /// 32 elements are held differently: at least 8 to a workgroup, interleaved.)
    ///
    /// A row takes the fewest invocations (a power of two) that hold it in at most 2
    /// vec4s each, up to the smallest subgroup (segments reduce with
    /// subgroup shuffles; with no subgroups, up to the workgroup through shared memory);
    /// past that, the whole workgroup with up to 8 vec4s each. So rows of 32 take 4 lanes
    /// (8 rows per 32-lane subgroup), rows of 256 to 1,024 a subgroup of 32, and longer
    /// rows a workgroup.
    ///
    /// ```no_run
    /// # let ctx = wgpu_activations::Context::new()?;
    /// if let Some((lanes, vec4s)) = ctx.registers_shape(1024) {
    ///     println!("rows of 1,024: {lanes} invocations per row, {vec4s} vec4s each");
    /// }
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn registers_shape(&self, axis: u64) -> Option<(u64, u64)> {
        let wg = u64::from(self.workgroup_size());
        let quads = axis.div_ceil(4).max(1);
        let widest = if self.subgroups() {
            self.subgroup_sizes().0.min(wg)
        } else {
            wg
        };
        let mut lanes = 1;
        while lanes < widest && quads.div_ceil(lanes) > REGISTER_TARGET {
            lanes *= 2;
        }
        if quads.div_ceil(lanes) > u64::from(REGISTER_VEC4S) {
            lanes = wg;
        }
        let per_lane = quads.div_ceil(lanes);
        (per_lane <= u64::from(REGISTER_VEC4S)).then_some((lanes, per_lane))
    }

    /// How [`Strategy::Registers`] holds the rows of `view`: (invocations per row, vec4s
    /// each holds, interleaved). Contiguous rows as [`Context::registers_shape`] says.
    /// Strided rows (a non-last axis) of up to a workgroup's eighth times 32 elements
    /// (1,024 at a workgroup of 256) take the fewest invocations that hold them in 2
    /// vec4s each, at most a workgroup's eighth, so at least 8 rows share a workgroup,
    /// with their invocations interleaved (invocation i holds row i % rows), so each access
    /// of 8 neighbouring invocations reads 8 neighbouring columns: 32 bytes, a whole
    /// memory sector.
    pub(crate) fn register_layout(&self, view: RowView) -> Option<(u64, u64, bool)> {
        let wg = u64::from(self.workgroup_size());
        let widest = (wg / STRIDED_ROWS).max(1);
        let quads = (view.axis as u64).div_ceil(4).max(1);
        if view.inner > 1 && quads.div_ceil(widest) <= u64::from(REGISTER_VEC4S) {
            let mut lanes = 1;
            while lanes < widest && quads.div_ceil(lanes) > REGISTER_TARGET {
                lanes *= 2;
            }
            return Some((lanes, quads.div_ceil(lanes), true));
        }
        self.registers_shape(view.axis as u64)
            .map(|(lanes, per_lane)| (lanes, per_lane, false))
    }

    /// The strategy [`Strategy::Auto`] resolves to for `view` (of f32) on this adapter.
    pub fn softmax_strategy(&self, view: RowView) -> Strategy {
        self.softmax_strategy_in(view, Storage::F32)
    }

    /// [`Context::softmax_strategy`] for a tensor of `storage`.
    pub(crate) fn softmax_strategy_in(&self, view: RowView, storage: Storage) -> Strategy {
        self.auto_strategy(view, storage, Direction::Forward)
    }

    /// What `Auto` runs for `view` in `direction`. The backward has no register kernels
    /// (it reads two tensors per row), so on a GPU it keeps the table measured for the
    /// online strategies (runs 6 and 7 in benches/NOTES.md).
    fn auto_strategy(&self, view: RowView, storage: Storage, direction: Direction) -> Strategy {
        let rows = view.rows();
        let wg = self.workgroup_size() as usize;
        let forward = direction == Direction::Forward;
        let preferred = if let Some(cores) = self.cpu_cores() {
            // A CPU adapter runs a workgroup's invocations as SIMD lanes of one thread,
            // and every barrier switches between them (measured on lavapipe: Lane 18 ms
            // for 1M elements in rows of 32 to 1024, Workgroup 161 ms for 1024 rows of
            // 1024): one row per lane wherever the loop budget allows, else one
            // workgroup per row when there are rows for every core, else Split.
            // One subgroup per row (SIMD lanes sharing a row) ran rows of 2,048 to 16,384
            // 1.04-2.4x faster than Lane, and 1.3-2.8x in the backward
            // (benches/NOTES.md, 2026-12-05).
            let long = (2048..=16_384).contains(&view.axis);
            if rows >= 64 && long && view.inner == 1 && self.subgroups() {
                Strategy::Subgroup
            } else if rows >= 64 || view.axis <= 64 {
                Strategy::Lane
            } else if rows >= cores {
                Strategy::Workgroup
            } else {
                Strategy::Split
            }
        } else if forward
            && view.inner > 1
            && view.axis > 64
            && self.register_layout(view).is_some_and(|l| l.2)
        {
            // Strided rows of 65 to 1,024 in registers, 8 or more rows per workgroup
            // interleaved: one read and one write in whole 32-byte sectors, where Lane
            // (below) reads twice and chains its online statistics through every element
            // (0.16 of the copy on an H100 for dim 0 of [1024, n / 1024]; but 0.41 for rows
            // of 32, its best, kept). Not yet measured on a GPU.
            Strategy::Registers
        } else if view.inner > 1 && rows >= 64 * wg {
            // a strided axis with many rows: adjacent invocations read adjacent columns
            Strategy::Lane
        } else if forward && self.registers_shape(view.axis as u64).is_some() {
            // Rows that fit in registers: one read, one write and one exp per element, as
            // the evidence's plain-WGSL probe on an H100 (2.3-2.7 TB/s for rows of 128 to
            // 1,024 with a subgroup per row, 1.9-2.2 TB/s with a workgroup per row),
            // where Subgroup reached 0.56-1.34 TB/s reading each row twice with two exps
            // per element (benches/NOTES.md). Not yet measured on a GPU in this form.
            Strategy::Registers
        } else if !forward && self.subgroups() && view.axis <= 2048 {
            // measured on an H100 (run 7): one subgroup per row the fastest for rows of
            // 32 to 2,048 among the online strategies
            Strategy::Subgroup
        } else if !forward && view.axis <= 32 {
            Strategy::Lane
        } else if rows >= 512 || (view.axis <= 16_384 && rows >= 64) {
            // Measured on an H100: one workgroup per row the fastest for rows of 4,096 to
            // 16,384, where its second read of a row may still find it in the cache;
            // Split won for longer rows and for few rows.
            Strategy::Workgroup
        } else if forward {
            // Split with chunks in registers: Split's traffic (two reads, one write) with
            // one exp per element per pass and no online rescaling (not yet measured on a
            // GPU; Split reached 1.1 TB/s there).
            Strategy::SplitRegisters
        } else {
            Strategy::Split
        };
        // Within the adapter's loop budget (lavapipe's cuts long rows short in Lane).
        let fallbacks = [
            Strategy::Workgroup,
            Strategy::Split,
            Strategy::SplitRegisters,
        ];
        let usable = |s: &Strategy| forward || *s != Strategy::SplitRegisters;
        std::iter::once(preferred)
            .chain(fallbacks.into_iter().filter(usable))
            .find(|&s| self.serves_in(s, view, storage))
            .unwrap_or(Strategy::Split)
    }

    /// Whether `strategy` can serve `view` here: the row length ([`Strategy::Resident`]
    /// holds at most [`Context::resident_capacity`]), and the loop iterations one
    /// invocation runs against the adapter's [`Context::loop_budget`] (on lavapipe,
    /// [`Strategy::Lane`] serves rows up to about 32K elements). `Auto` serves everything.
    pub fn serves(&self, strategy: Strategy, view: RowView) -> bool {
        self.serves_in(strategy, view, Storage::F32)
    }

    /// [`Context::serves`] for a tensor of `storage` (a binding holds more rows of halves).
    pub(crate) fn serves_in(&self, strategy: Strategy, view: RowView, storage: Storage) -> bool {
        if strategy == Strategy::Auto {
            return true;
        }
        if strategy == Strategy::Resident && view.axis > self.resident_capacity() {
            return false;
        }
        if strategy == Strategy::Subgroup && !self.subgroups() {
            return false;
        }
        if strategy == Strategy::Registers && self.register_layout(view).is_none() {
            return false;
        }
        if self.loop_budget().is_none() {
            return true;
        }
        // Rows in the largest binding-sized piece.
        let slab = (view.axis * view.inner).max(1) as u64;
        let per_binding = self.limits().max_storage_buffer_binding_size / storage.bytes() / slab;
        let rows = (per_binding.max(1) * view.inner as u64).min(view.rows() as u64);
        self.within_budget(self.iterations(strategy, rows, view))
    }

    /// An upper bound on the loop iterations one invocation runs (all loops together)
    /// for `rows` rows of `axis` in one dispatch.
    fn iterations(&self, strategy: Strategy, rows: u64, view: RowView) -> u64 {
        let axis = view.axis as u64;
        let wg = u64::from(self.workgroup_size());
        let (chunk_len, chunks) = self.chunking(strategy, rows, axis);
        let groups = self.dispatch_groups(strategy, rows, view, chunks);
        // A workgroup reduction: the tree halves WG, subgroups loop over their results.
        let reduce = if self.subgroups() {
            wg
        } else {
            wg.ilog2() as u64
        } + 2;
        let k = u64::from(RESIDENT_K);
        match strategy {
            Strategy::Lane => rows.div_ceil(groups * wg) * (2 * axis + 2),
            Strategy::Subgroup => {
                let (smallest, largest) = self.subgroup_sizes();
                let rows_per_group = (wg / largest).max(1);
                rows.div_ceil(groups * rows_per_group) * (2 * axis.div_ceil(smallest) + 2)
            }
            Strategy::Workgroup => rows.div_ceil(groups) * (2 * axis.div_ceil(wg) + 2 * reduce + 2),
            Strategy::Resident => rows.div_ceil(groups) * (3 * k + 2 * reduce + 2),
            Strategy::Registers => {
                let (lanes, ..) = self.register_layout(view).unwrap_or((wg, 1, false));
                let k = u64::from(REGISTER_VEC4S);
                // loads and stores (four elements each on the single-element path), the
                // row's three loops, two segmented reductions
                let per_row = 13 * k + 2 * reduce + 2 * u64::from(wg.ilog2()) + 2;
                rows.div_ceil(groups * (wg / lanes)) * per_row
            }
            Strategy::SplitRegisters => {
                let items = (rows * chunks).div_ceil(groups);
                let k = u64::from(REGISTER_VEC4S);
                items * (13 * k + 2 * chunks.div_ceil(wg) + 4 * reduce + 2)
            }
            _ => {
                let items = (rows * chunks).div_ceil(groups);
                // the larger of the two passes
                items * (2 * chunk_len.div_ceil(wg) + 2 * chunks.div_ceil(wg) + 4 * reduce + 2)
            }
        }
    }

    /// (elements per chunk, chunks per row): Split's chunking, one whole row otherwise.
    pub(crate) fn chunking(&self, strategy: Strategy, rows: u64, axis: u64) -> (u64, u64) {
        match strategy {
            Strategy::Split => self.split_chunks(rows, axis),
            Strategy::SplitRegisters => self.split_register_chunks(rows, axis),
            _ => (axis, 1),
        }
    }

    /// [`Strategy::SplitRegisters`]' chunk length and chunks per row: as Split's, about
    /// `target` workgroups in all, but each chunk a whole number of vec4s per invocation
    /// (4 x the workgroup size) and at most [`Context::registers_capacity`].
    fn split_register_chunks(&self, rows: u64, axis: u64) -> (u64, u64) {
        let quantum = 4 * u64::from(self.workgroup_size());
        let capacity = self.registers_capacity() as u64;
        let target = self.cpu_cores().map_or(2048, |c| 2 * c as u64);
        let chunks = target.div_ceil(rows.max(1)).max(axis.div_ceil(capacity));
        let chunk_len = (axis.div_ceil(chunks).div_ceil(quantum) * quantum).min(capacity);
        (chunk_len, axis.div_ceil(chunk_len).max(1))
    }

    /// Split's chunk length and chunks per row, for `rows` rows of `axis`: enough chunks
    /// to give the device about `target` workgroups in all (twice the cores of a CPU
    /// adapter, where each workgroup is costly; 2,048 on a GPU), each chunk at least 4
    /// elements per invocation and a whole number of workgroup widths.
    fn split_chunks(&self, rows: u64, axis: u64) -> (u64, u64) {
        let wg = u64::from(self.workgroup_size());
        let target = self.cpu_cores().map_or(2048, |c| 2 * c as u64);
        let most = axis.div_ceil(4 * wg).max(1);
        let chunks = target.div_ceil(rows.max(1)).clamp(1, most);
        let chunk_len = axis.div_ceil(chunks).div_ceil(wg) * wg;
        (chunk_len, axis.div_ceil(chunk_len).max(1))
    }

    /// Workgroups one dispatch of `strategy` uses for `rows` rows of `view`'s in `chunks`
    /// chunks.
    pub(crate) fn dispatch_groups(
        &self,
        strategy: Strategy,
        rows: u64,
        view: RowView,
        chunks: u64,
    ) -> u64 {
        let wg = u64::from(self.workgroup_size());
        let max = u64::from(self.limits().max_compute_workgroups_per_dimension).max(1);
        let wanted = match strategy {
            Strategy::Lane => rows.div_ceil(wg),
            // as many rows per workgroup as the largest subgroups leave room for
            Strategy::Subgroup => rows.div_ceil((wg / self.subgroup_sizes().1).max(1)),
            Strategy::Split | Strategy::SplitRegisters => rows * chunks,
            Strategy::Registers => {
                let (lanes, ..) = self.register_layout(view).unwrap_or((wg, 1, false));
                rows.div_ceil(wg / lanes)
            }
            _ => rows,
        };
        wanted.clamp(1, max)
    }

    /// Records a softmax-family op (or an elementwise op, which ignores the shape beyond
    /// its element count) on a tensor of `shape`, along the activation's `dim`.
    ///
    /// Like [`Context::encode`], `input` and `output` may be the same region (in place)
    /// or disjoint regions of one buffer; nothing is submitted or read back.
    ///
    /// ```no_run
    /// # use wgpu_activations::{Context, BufferRegion};
    /// # fn demo(ctx: &Context, logits: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// // log-probabilities over a 32,000-token vocabulary for 8 sequences, in place
    /// let log_softmax = "log_softmax(dim=-1)".parse()?;
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// let region = BufferRegion::new(logits);
    /// ctx.encode_shaped(&mut encoder, &log_softmax, region, region, &[8, 32_000])?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn encode_shaped(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        shape: &[usize],
    ) -> Result<()> {
        match activation.op().info().kernel {
            Kernel::Softmax(_) => {
                self.encode_rows(encoder, activation, input, output, shape, Strategy::Auto)
            }
            Kernel::Grouped(_) => self.encode_grouped(encoder, activation, input, output, shape),
            Kernel::Statistical => {
                self.encode_dice(encoder, activation, input, output, shape, None)
            }
            Kernel::Random(_) => {
                let len = crate::shape::element_count(shape)?;
                self.encode_random(encoder, activation, input, output, len as u64)
            }
            Kernel::Elementwise { .. } => {
                let len = crate::shape::element_count(shape)?;
                self.encode(encoder, activation, input, output, len as u64)
            }
        }
    }

    /// [`Context::encode_shaped`] for a softmax-family op with a chosen strategy (an
    /// error where it cannot serve the shape: [`Strategy::Resident`] with rows longer
    /// than [`Context::resident_capacity`]).
    pub fn encode_rows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        shape: &[usize],
        strategy: Strategy,
    ) -> Result<()> {
        if activation.op().softmax().is_none() {
            return Err(Error::Unsupported(format!(
                "`{activation}` is not a softmax-family op; use encode or encode_shaped"
            )));
        }
        let view = RowView::new(shape, activation.dim(), crate::shape::element_count(shape)?)?;
        let len = view.len() as u64;
        let plan = self.plan(input, output, len)?;
        if len == 0 {
            return Ok(());
        }
        let strategy = self.resolve_strategy(strategy, view, input.storage, Direction::Forward)?;
        // Whole (axis x inner) slabs per binding-sized piece.
        let slab = (view.axis * view.inner) as u64;
        let slabs_per_piece = plan.chunk / slab;
        if slabs_per_piece == 0 {
            return Err(Error::Unsupported(format!(
                "one {} x {} slab of the tensor ({} bytes) exceeds this device's storage \
                 binding limit ({} bytes)",
                view.axis,
                view.inner,
                input.bytes(slab),
                self.limits().max_storage_buffer_binding_size
            )));
        }
        let staged = self.stage_input(encoder, &plan, input, len)?;
        let input = staged.as_ref().map_or(input, |s| s.region());

        // One chunking for every piece, planned for the largest.
        let piece_rows = (slabs_per_piece as usize).min(view.outer) * view.inner;
        let (chunk_len, chunks) = self.chunking(strategy, piece_rows as u64, view.axis as u64);
        let (lanes, per_lane, interleave) = match strategy {
            Strategy::Registers => self.register_layout(view).unwrap_or((1, 1, false)),
            Strategy::SplitRegisters => {
                let wg = u64::from(self.workgroup_size());
                (wg, chunk_len.div_ceil(4 * wg), false)
            }
            _ => (1, 1, false),
        };

        // Each piece's bindings and uniforms, then the kernels (the register kernels move vec4s where
        // every piece's rows are contiguous and start at multiples of 4 elements), then
        // the bind groups (cached, or created in an error scope), then the pass.
        let mut planned = Vec::new();
        for (outer_start, outer) in pieces(view.outer as u64, slabs_per_piece) {
            let outer = outer as usize;
            let start = outer_start * slab;
            let count = outer as u64 * slab;
            let (entries, in_delta, out_delta) = plan.bindings(input, output, start, count);
            let rows = outer * view.inner;
            let uniforms = Uniforms {
                rows: rows as u32,
                axis: view.axis as u32,
                inner: view.inner as u32,
                in_offset: (in_delta / input.storage.bytes()) as u32,
                out_offset: (out_delta / output.storage.bytes()) as u32,
                chunk_len: chunk_len as u32,
                chunks: chunks as u32,
                one: 1,
                lanes: lanes as u32,
                per_lane: per_lane as u32,
                interleave: interleave.into(),
                pad: 0,
            };
            planned.push((entries, uniforms));
        }
        let vec4 = view.inner == 1
            && view.axis % 4 == 0
            && planned
                .iter()
                .all(|(_, u)| u.in_offset % 4 == 0 && u.out_offset % 4 == 0);
        let kernels = self.row_kernels(
            activation,
            plan.layout(),
            strategy,
            vec4,
            crate::cache::Direction::Forward,
            input.storage,
        )?;
        let partials = match strategy {
            Strategy::Split | Strategy::SplitRegisters => {
                Some(self.partials_group(piece_rows as u64 * chunks * 16)?)
            }
            _ => None,
        };
        let mut dispatches = Vec::new();
        for (entries, uniforms) in planned {
            let bind_group = self.bind_group_with_uniforms(
                "softmax",
                plan.layout(),
                entries,
                &uniforms,
                staged.is_none(),
            )?;
            let groups = self.dispatch_groups(strategy, uniforms.rows.into(), view, chunks);
            dispatches.push((bind_group, groups as u32));
        }

        record_rows(encoder, &kernels, partials.as_deref(), &dispatches);
        Ok(())
    }

    /// Applies an op to a tensor of `shape` (softmax-family ops along their `dim`) and
    /// returns the result: the blocking convenience API.
    ///
    /// ```no_run
    /// use wgpu_activations::{Activation, Context};
    /// let ctx = Context::new()?;
    /// let softmax: Activation = "softmax(dim=0)".parse()?;
    /// // columns of a 2 x 3 matrix
    /// let y = ctx.run_shaped(&softmax, &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0], &[2, 3])?;
    /// assert!(y.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_shaped(
        &self,
        activation: &Activation,
        input: &[f32],
        shape: &[usize],
    ) -> Result<Vec<f32>> {
        self.run_typed(activation, input, shape)
    }

    /// [`Context::run_shaped`] on f32, [`half::f16`] or [`half::bf16`] elements: the
    /// kernels load them, compute in f32 and round once to `T` at the store.
    ///
    /// ```no_run
    /// use half::f16;
    /// use wgpu_activations::{Activation, Context};
    /// let ctx = Context::new()?;
    /// let swiglu: Activation = "swiglu".parse()?;
    /// let x: Vec<f16> = [-1.0f32, 0.5, 2.0, 3.0].map(f16::from_f32).to_vec();
    /// let y = ctx.run_typed(&swiglu, &x, &[4])?; // silu(a) * b over the halves
    /// assert_eq!(y.len(), 2);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_typed<T: Element>(
        &self,
        activation: &Activation,
        input: &[T],
        shape: &[usize],
    ) -> Result<Vec<T>> {
        crate::shape::check_len(shape, input.len())?;
        match activation.op().info().kernel {
            Kernel::Elementwise { .. } => {
                let mut output = vec![T::from_f32(0.0); input.len()];
                self.run_elementwise_into(activation, input, &mut output)?;
                Ok(output)
            }
            // The output's length differs from the input's for grouped ops.
            Kernel::Softmax(_) | Kernel::Grouped(_) | Kernel::Statistical | Kernel::Random(_) => {
                let out_len = activation.output_shape(shape)?.iter().product();
                self.run_with_buffers_sized(input, out_len, |encoder, src, dst| {
                    self.encode_shaped(encoder, activation, src, dst, shape)
                })
            }
        }
    }

    /// [`Context::run_shaped`] for a softmax-family op with a chosen strategy.
    pub fn run_rows(
        &self,
        activation: &Activation,
        input: &[f32],
        shape: &[usize],
        strategy: Strategy,
    ) -> Result<Vec<f32>> {
        RowView::new(shape, activation.dim(), input.len())?;
        self.run_with_buffers(input, |encoder, src, dst| {
            self.encode_rows(encoder, activation, src, dst, shape, strategy)
        })
    }
}

impl Context {
    /// The bind group of Split's partials buffer, of at least `bytes`: one per context,
    /// grown when a call needs more. Calls may share it: the queue runs them in order,
    /// and each call's second pass has read its partials before the next call writes.
    pub(crate) fn partials_group(&self, bytes: u64) -> Result<Arc<wgpu::BindGroup>> {
        let mut slot = self.partials_slot();
        if let Some((size, group)) = slot.as_ref() {
            if *size >= bytes {
                return Ok(group.clone());
            }
        }
        // grown by powers of two, but never past what one binding holds
        let binding = self.limits().max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(Error::Unsupported(format!(
                "{bytes} bytes of partial statistics exceed this device's storage binding \
                 limit ({binding} bytes)"
            )));
        }
        let size = bytes.next_power_of_two().max(256).min(binding.max(bytes));
        let group = self.scoped(|| {
            let buffer = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("softmax partials"),
                size,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("softmax partials"),
                layout: self.partials_layout(),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            })
        })?;
        let group = Arc::new(group);
        *slot = Some((size, group.clone()));
        Ok(group)
    }
}

impl Context {
    /// The strategy that runs `view` in `direction`: `Auto` resolved for this adapter
    /// (and in the backward, which has no register or resident kernels, `Registers` and
    /// `SplitRegisters` as its `Auto`, `Resident` as `Workgroup`), and an error where the
    /// strategy cannot serve the rows (too long for `Resident` or `Registers`, or past the
    /// loop budget), saying which and what to do.
    pub(crate) fn resolve_strategy(
        &self,
        strategy: Strategy,
        view: RowView,
        storage: Storage,
        direction: Direction,
    ) -> Result<Strategy> {
        let backward = direction == Direction::Backward;
        let auto = strategy == Strategy::Auto
            || (backward && matches!(strategy, Strategy::Registers | Strategy::SplitRegisters));
        let requested = strategy;
        if strategy == Strategy::Subgroup && !self.subgroups() {
            return Err(Error::Unsupported(
                "the subgroup strategy needs subgroup operations (Features::SUBGROUP), which \
                 this device lacks; use Strategy::Auto"
                    .into(),
            ));
        }
        let strategy = match strategy {
            _ if auto => self.auto_strategy(view, storage, direction),
            Strategy::Resident if backward => Strategy::Workgroup,
            s => s,
        };
        if strategy == Strategy::Resident && view.axis > self.resident_capacity() {
            return Err(Error::Unsupported(format!(
                "the resident strategy holds rows of at most {} elements, these have {}",
                self.resident_capacity(),
                view.axis
            )));
        }
        if strategy == Strategy::Registers && view.axis > self.registers_capacity() {
            return Err(Error::Unsupported(format!(
                "the registers strategy holds rows of at most {} elements (a workgroup's \
                 invocations with {REGISTER_VEC4S} vec4s each), these have {}; use \
                 Strategy::Auto",
                self.registers_capacity(),
                view.axis
            )));
        }
        if !self.serves_in(strategy, view, storage) {
            let budget = self.loop_budget().unwrap_or(u64::MAX);
            let (rows, axis) = (view.rows(), view.axis);
            return Err(Error::Unsupported(if auto {
                format!(
                    "no strategy serves {rows} rows of {axis} elements within this \
                     adapter's loop budget ({budget} iterations per invocation; lavapipe \
                     stops every loop there): even Split's chunks are too many for one \
                     invocation to combine; run rows this long on a GPU, which has no such \
                     budget"
                )
            } else {
                let ran = if requested == strategy {
                    String::new()
                } else {
                    format!(" (running as {strategy:?} in the backward)")
                };
                format!(
                    "{requested:?}{ran} would run more loop iterations per invocation than \
                     this adapter allows ({budget}; lavapipe stops at 65,535) on {rows} rows \
                     of {axis}; use Strategy::Auto"
                )
            }));
        }
        Ok(strategy)
    }

    /// The pipelines a strategy runs, in order (Split: statistics, then the write), of
    /// the forward or the backward (which has no Resident or Registers: they run as other
    /// strategies); `vec4` picks Registers' 16-byte kernel.
    pub(crate) fn row_kernels(
        &self,
        activation: &Activation,
        layout: crate::cache::Layout,
        strategy: Strategy,
        vec4: bool,
        direction: crate::cache::Direction,
        storage: crate::Storage,
    ) -> Result<Vec<std::sync::Arc<wgpu::ComputePipeline>>> {
        let subgroups = self.subgroups();
        let pipeline = |kernel| {
            let entry = match direction {
                crate::cache::Direction::Forward => Entry::Row { kernel, subgroups },
                crate::cache::Direction::Backward => Entry::GradRow { kernel, subgroups },
            };
            self.pipeline(PipelineKey::new(activation.op(), layout, entry, storage))
        };
        Ok(match strategy {
            Strategy::Lane => vec![pipeline(RowKernel::Lane)?],
            Strategy::Subgroup => vec![pipeline(RowKernel::Subgroup)?],
            Strategy::Workgroup => vec![pipeline(RowKernel::Workgroup)?],
            Strategy::Resident => vec![pipeline(RowKernel::Resident)?],
            Strategy::Registers => vec![pipeline(RowKernel::Registers { vec4 })?],
            Strategy::SplitRegisters => vec![
                pipeline(RowKernel::SplitStatsRegisters { vec4 })?,
                pipeline(RowKernel::SplitWriteRegisters { vec4 })?,
            ],
            _ => vec![
                pipeline(RowKernel::SplitStats)?,
                pipeline(RowKernel::SplitWrite)?,
            ],
        })
    }
}

/// One pass: bind group 1 (Split's partials) once, then each piece's bind group with every
/// kernel of the strategy.
pub(crate) fn record_rows(
    encoder: &mut wgpu::CommandEncoder,
    kernels: &[std::sync::Arc<wgpu::ComputePipeline>],
    partials: Option<&wgpu::BindGroup>,
    dispatches: &[super::dispatch::Dispatch],
) {
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some("wgpu-activations softmax"),
        timestamp_writes: None,
    });
    if let Some(group) = partials {
        pass.set_bind_group(1, group, &[]);
    }
    for (bind_group, groups) in dispatches {
        pass.set_bind_group(0, bind_group.as_ref(), &[]);
        for kernel in kernels {
            pass.set_pipeline(kernel);
            pass.dispatch_workgroups(*groups, 1, 1);
        }
    }
}
