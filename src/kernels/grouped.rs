//! The grouped family: `maxout`, `fold_max`, `fold_min`, `fold_mean` and `glu`, each
//! output reducing a group of inputs along one axis, so the axis shrinks (`k`-fold, or
//! 2-fold for `glu`).
//!
//! Host side of `shaders/grouped.wgsl`: one invocation per output element, the tensor cut
//! into whole groups where it exceeds a storage binding, within the adapter's loop budget.

use bytemuck::{Pod, Zeroable};

use super::dispatch::{check_region, pieces, window, Dispatch, Staged};
use crate::cache::{Entry, Layout, PipelineKey, StorageBinding};
use crate::op::GroupKind;
use crate::region::call_storage;
use crate::Storage;
use crate::{Activation, BufferRegion, Context, Error, Result, RowView};

/// The uniform block of `shaders/grouped.wgsl` (`Groups`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Uniforms {
    outputs: u32,
    k: u32,
    inner: u32,
    in_offset: u32,
    out_offset: u32,
    one: u32,
    pad: [u32; 2],
}

impl Context {
    /// Records a grouped op on a tensor of `shape`; `output` holds
    /// [`Activation::output_shape`] elements. Input and output may share a buffer only in
    /// disjoint ranges (the input is then read from a copy, so it needs `COPY_SRC`).
    pub(crate) fn encode_grouped(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        activation: &Activation,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        shape: &[usize],
    ) -> Result<()> {
        let kind = activation
            .op()
            .grouped()
            .ok_or_else(|| Error::Unsupported(format!("`{activation}` is not a grouped op")))?;
        let out_shape = activation.output_shape(shape)?;
        let len = out_shape.iter().product::<usize>() * activation.group_size().unwrap_or(1);
        let view = RowView::new(shape, activation.dim(), len)?;
        let k = activation.group_size().unwrap_or(1) as u64;
        let (len, out_len) = (len as u64, len as u64 / k);
        check_region("input", input, len)?;
        check_region("output", output, out_len)?;
        let storage = call_storage(&[("input", input), ("output", output)])?;
        if len == 0 {
            return Ok(());
        }
        let staged = self.stage_grouped_input(encoder, input, output, len, out_len)?;
        let input = staged.as_ref().map_or(input, |s| s.region());

        let pieces = self.grouped_pieces(kind, view, k, len, false, storage)?;
        let workgroups = pieces.workgroups;
        let pipeline = self.pipeline(PipelineKey::new(
            activation.op(),
            Layout::Separate,
            if workgroups {
                Entry::GroupedWg {
                    subgroups: self.subgroups(),
                }
            } else {
                Entry::Grouped
            },
            storage,
        ))?;

        let dispatches = self.grouped_dispatches(&pieces, input, output, staged.is_none())?;
        self.record_pass(
            encoder,
            "wgpu-activations grouped",
            &pipeline,
            None,
            &dispatches,
        );
        Ok(())
    }
}

/// How a grouped call is cut into binding-sized pieces of whole units (a group of
/// `k x inner` inputs, or for glu a whole axis slab).
pub(crate) struct Pieces {
    pub(crate) unit: u64,
    pub(crate) units: u64,
    pub(crate) units_per_piece: u64,
    pub(crate) align: u64,
    pub(crate) k: u64,
    /// The group length the shader sees (k, or half the axis for glu).
    pub(crate) group_len: u32,
    pub(crate) inner: u32,
    /// One workgroup per output (large groups) rather than one invocation.
    pub(crate) workgroups: bool,
}

impl Context {
    /// The input to read from: a copy where input and output share a buffer (allowed
    /// only in disjoint ranges: a grouped op's output is shorter, so it cannot run in
    /// place).
    fn stage_grouped_input(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        len: u64,
        out_len: u64,
    ) -> Result<Option<Staged>> {
        if input.buffer != output.buffer {
            return Ok(None);
        }
        let (a, b) = (input.offset, output.offset);
        let (a_end, b_end) = (a + input.bytes(len), b + output.bytes(out_len));
        if a < b_end && b < a_end {
            return Err(Error::Overlap {
                first: "input",
                second: "output",
                input: a..a_end,
                output: b..b_end,
                hint: "a grouped op cannot run in place (its output is shorter than its \
                       input); write to a disjoint range or another buffer",
            });
        }
        Ok(Some(self.copy_input(encoder, input, len)?))
    }

    /// One dispatch per piece: its bound windows of input and output, and its uniforms.
    fn grouped_dispatches(
        &self,
        p: &Pieces,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        cacheable: bool,
    ) -> Result<Vec<Dispatch>> {
        let wg = u64::from(self.workgroup_size());
        let (unit, k, align) = (p.unit, p.k, p.align);
        let mut dispatches = Vec::new();
        for (first, count) in pieces(p.units, p.units_per_piece) {
            let inw = window(input.skip(first * unit), count * unit, align);
            let outw = window(output.skip(first * unit / k), count * unit / k, align);
            let storage = vec![
                StorageBinding {
                    binding: 0,
                    buffer: input.buffer.clone(),
                    offset: inw.start,
                    size: inw.size,
                },
                StorageBinding {
                    binding: 1,
                    buffer: output.buffer.clone(),
                    offset: outw.start,
                    size: outw.size,
                },
            ];
            let outputs = count * unit / k;
            let uniforms = Uniforms {
                outputs: outputs as u32,
                k: p.group_len,
                inner: p.inner,
                in_offset: (inw.delta / input.storage.bytes()) as u32,
                out_offset: (outw.delta / output.storage.bytes()) as u32,
                one: 1,
                pad: [0; 2],
            };
            let group = self.bind_group_with_uniforms(
                "grouped",
                Layout::Separate,
                storage,
                &uniforms,
                cacheable,
            )?;
            let wanted = if p.workgroups {
                outputs
            } else {
                outputs.div_ceil(wg)
            };
            dispatches.push((group, wanted.clamp(1, self.max_groups()) as u32));
        }
        Ok(dispatches)
    }
}

impl Context {
    /// Cuts a grouped call into binding-sized pieces of whole units (a group of
    /// `k x inner` inputs, contiguous and mapping to `inner` contiguous outputs; for glu
    /// a whole axis slab, whose halves pair up), and chooses one invocation or one
    /// workgroup per output within the adapter's loop budget.
    pub(crate) fn grouped_pieces(
        &self,
        kind: GroupKind,
        view: RowView,
        k: u64,
        len: u64,
        backward: bool,
        storage: Storage,
    ) -> Result<Pieces> {
        let limits = self.limits();
        let align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let unit = if kind.is_gated() {
            (view.axis * view.inner) as u64
        } else {
            k * view.inner as u64
        };
        let units = len / unit;
        let units_per_piece = max_binding.saturating_sub(align) / storage.bytes() / unit.max(1);
        if units_per_piece == 0 {
            return Err(Error::Unsupported(format!(
                "one group of the tensor ({} bytes) exceeds this device's storage binding \
                 limit ({max_binding} bytes)",
                unit * storage.bytes()
            )));
        }
        let wg = u64::from(self.workgroup_size());
        let piece_outputs = units_per_piece.min(units) * unit / k;
        // glu reads two values per output; the mean may run its loop twice (again at
        // 2^-32 scale on overflow, or at 2^64 scale for subnormals, never both).
        // The backward: max and min read the group, then write it; the mean only writes.
        let per_output = match (kind, backward) {
            (kind, _) if kind.is_gated() => 1,
            (GroupKind::Mean, false) | (GroupKind::Max | GroupKind::Min, true) => 2 * k,
            _ => k,
        };
        let lane_iterations = self.grid_stride_iterations(piece_outputs, per_output);
        // One workgroup per output for large groups (or where one invocation's loop
        // would pass the adapter's budget): each invocation folds a strided share and
        // the workgroup reductions combine them.
        let workgroups = !kind.is_gated() && (k >= 1024 || !self.within_budget(lane_iterations));
        // The backward of max and min reads its group twice and writes it once.
        let passes = if backward && matches!(kind, GroupKind::Max | GroupKind::Min) {
            3
        } else {
            1
        };
        let per_invocation = if workgroups {
            piece_outputs.div_ceil(self.max_groups()) * (passes * k.div_ceil(wg) + 4 * wg + 8)
        } else {
            lane_iterations
        };
        self.check_budget(per_invocation, &format!("groups of {k}"))?;
        Ok(Pieces {
            unit,
            units,
            units_per_piece,
            align,
            k,
            group_len: if kind.is_gated() {
                (view.axis / 2) as u32
            } else {
                k as u32
            },
            inner: view.inner as u32,
            workgroups,
        })
    }
}
