//! The dispatch plumbing every family shares, written once: validating the caller's
//! regions (`check_region`, `plan`), splitting a range into binding-sized chunks with
//! aligned offsets (`Plan`, `window`, `chunk_dispatches`), bind groups with their uniforms
//! from the context's cache (`bind_group_with_uniforms`), recording a pass
//! (`record_pass`), staging an input that shares a buffer too far away (`stage_input`),
//! and the blocking helpers (`run_with_buffers`, `download`).

use std::sync::Arc;

use bytemuck::Pod;
use wgpu::util::DeviceExt;

use crate::cache::{BindingKey, Layout, StorageBinding, BINDING_CACHE_ENTRIES};
use crate::region::{call_storage, Element};
use crate::{BufferRegion, Context, Error, Result, Storage};

/// The size of an f32 in bytes (the parameter tensors' type, and every scratch buffer's).
pub(crate) const F32: u64 = 4;

/// The bytes a copy or a binding of `bytes` bytes from byte `offset` covers: whole 4-byte
/// words, as wgpu requires (a half tensor may begin or end in the middle of one).
pub(crate) fn word_span(offset: u64, bytes: u64) -> (u64, u64) {
    let start = offset / 4 * 4;
    (start, (offset + bytes).div_ceil(4) * 4 - start)
}

/// `(first, count)` of each piece of `total` units cut into pieces of at most `per_piece`
/// (at least 1): the one chunk loop every family's dispatches follow.
pub(crate) fn pieces(total: u64, per_piece: u64) -> impl Iterator<Item = (u64, u64)> {
    let per_piece = per_piece.max(1);
    (0..total.div_ceil(per_piece)).map(move |i| {
        let first = i * per_piece;
        (first, per_piece.min(total - first))
    })
}

impl Context {
    /// The alignment of a storage binding's offset (at least 16 bytes, so a window's
    /// vec4s stay aligned).
    pub(crate) fn binding_alignment(&self) -> u64 {
        u64::from(self.limits().min_storage_buffer_offset_alignment).max(16)
    }

    /// The most workgroups one dispatch dimension takes (at least 1).
    pub(crate) fn max_groups(&self) -> u64 {
        u64::from(self.limits().max_compute_workgroups_per_dimension).max(1)
    }

    /// Loop iterations each invocation runs when `items` items of `per_item` iterations
    /// are spread over a grid-stride dispatch of the most workgroups, one invocation per
    /// item per step.
    pub(crate) fn grid_stride_iterations(&self, items: u64, per_item: u64) -> u64 {
        let invocations = u64::from(self.workgroup_size()) * self.max_groups();
        items.div_ceil(invocations) * per_item
    }

    /// Whether one invocation may run `per_invocation` loop iterations on this adapter
    /// (lavapipe stops every loop of an invocation after its budget, silently).
    pub(crate) fn within_budget(&self, per_invocation: u64) -> bool {
        self.loop_budget()
            .is_none_or(|budget| per_invocation <= budget)
    }

    /// An error unless one invocation may run `per_invocation` loop iterations here:
    /// the one place the loop budget is enforced. `work` says what needs them.
    pub(crate) fn check_budget(&self, per_invocation: u64, work: &str) -> Result<()> {
        match self.loop_budget() {
            Some(budget) if per_invocation > budget => Err(Error::Unsupported(format!(
                "{work} need {per_invocation} loop iterations per invocation with at most {} \
                 workgroups; this adapter stops every loop after {budget} (lavapipe does); \
                 split the work into smaller calls, or run it on a GPU",
                self.max_groups()
            ))),
            _ => Ok(()),
        }
    }
}

impl Context {
    /// The bind group of the storage bindings plus `uniforms` at binding 2 (in a uniform
    /// buffer of its own), from the context's binding cache when the same call was
    /// recorded before: a repeated encode (same buffers, ranges, sizes and parameters, as
    /// in an inference loop) then creates nothing. Creation runs in an error scope.
    /// `cacheable` is false for a call that binds a fresh staged copy of its input (it
    /// never repeats, and keeping it would keep the copy alive).
    pub(crate) fn bind_group_with_uniforms(
        &self,
        label: &str,
        layout: Layout,
        storage: Vec<StorageBinding>,
        uniforms: &impl Pod,
        cacheable: bool,
    ) -> Result<Arc<wgpu::BindGroup>> {
        let key = BindingKey {
            layout,
            storage,
            uniforms: bytemuck::bytes_of(uniforms).to_vec(),
        };
        if let Some(group) = self.bindings().get(&key) {
            return Ok(group.clone());
        }
        let group = self.scoped(|| {
            let ubuf = self
                .device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: &key.uniforms,
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            let mut entries: Vec<wgpu::BindGroupEntry<'_>> = key
                .storage
                .iter()
                .map(|b| wgpu::BindGroupEntry {
                    binding: b.binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &b.buffer,
                        offset: b.offset,
                        size: wgpu::BufferSize::new(b.size),
                    }),
                })
                .collect();
            entries.push(wgpu::BindGroupEntry {
                binding: 2,
                resource: ubuf.as_entire_binding(),
            });
            self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: self.bind_group_layout(layout),
                entries: &entries,
            })
        })?;
        let group = Arc::new(group);
        if !cacheable {
            return Ok(group);
        }
        let mut cache = self.bindings();
        if cache.len() >= BINDING_CACHE_ENTRIES {
            // Cached groups keep their buffers alive: bound the memory held.
            cache.clear();
        }
        cache.insert(key, group.clone());
        Ok(group)
    }

    /// One dispatch per binding-sized chunk of `len` elements, one invocation per element,
    /// each chunk's uniforms built by `uniforms`. `cacheable` as in
    /// [`Context::bind_group_with_uniforms`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn chunk_dispatches<U: Pod>(
        &self,
        label: &str,
        plan: &Plan,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        len: u64,
        cacheable: bool,
        uniforms: impl Fn(&Chunk) -> U,
    ) -> Result<Vec<Dispatch>> {
        let wg = u64::from(self.workgroup_size());
        let max_groups = u64::from(self.limits().max_compute_workgroups_per_dimension).max(1);
        let mut dispatches = Vec::new();
        for (start, count) in pieces(len, plan.chunk) {
            let (entries, in_delta, out_delta) = plan.bindings(input, output, start, count);
            let chunk = Chunk {
                start,
                count,
                in_offset: (in_delta / input.storage.bytes()) as u32,
                out_offset: (out_delta / output.storage.bytes()) as u32,
            };
            let group = self.bind_group_with_uniforms(
                label,
                plan.layout,
                entries,
                &uniforms(&chunk),
                cacheable,
            )?;
            dispatches.push((group, count.div_ceil(wg).clamp(1, max_groups) as u32));
        }
        Ok(dispatches)
    }

    /// Records one compute pass running `pipeline` for each dispatch, with `group1` as
    /// bind group 1 when the kernel has one.
    pub(crate) fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        group1: Option<&wgpu::BindGroup>,
        dispatches: &[Dispatch],
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        if let Some(group) = group1 {
            pass.set_bind_group(1, group, &[]);
        }
        for (group, groups) in dispatches {
            pass.set_bind_group(0, group.as_ref(), &[]);
            pass.dispatch_workgroups(*groups, 1, 1);
        }
    }

    /// When the plan says so, copies the input to a temporary buffer (recorded in
    /// `encoder`) and returns it: the input then comes from there.
    pub(crate) fn stage_input(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        input: BufferRegion<'_>,
        len: u64,
    ) -> Result<Option<Staged>> {
        if !plan.copy_input {
            return Ok(None);
        }
        self.copy_input(encoder, input, len).map(Some)
    }

    /// Records a copy of `len` elements of `input` into a new storage buffer: for a
    /// kernel whose input shares a buffer with its output but cannot share its binding
    /// (a buffer may not be bound read-only and writable in one dispatch). The copy holds
    /// whole words, so a half tensor at an odd element lies 2 bytes in:
    /// [`Staged::region`] says where.
    pub(crate) fn copy_input(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        len: u64,
    ) -> Result<Staged> {
        require_usage(
            "input (sharing a buffer with the output, too far from it to bind both)",
            input.buffer,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        let (start, size) = word_span(input.offset, input.bytes(len));
        let buffer = self.scoped(|| {
            self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("staged input"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        encoder.copy_buffer_to_buffer(input.buffer, start, &buffer, 0, size);
        Ok(Staged {
            buffer,
            offset: input.offset - start,
            storage: input.storage,
        })
    }
}

/// A copy of an input ([`Context::copy_input`]).
pub(crate) struct Staged {
    buffer: wgpu::Buffer,
    offset: u64,
    storage: Storage,
}

impl Staged {
    /// Where the input lies in the copy.
    pub(crate) fn region(&self) -> BufferRegion<'_> {
        BufferRegion::at(&self.buffer, self.offset).with_storage(self.storage)
    }
}

/// One chunk of a kernel with a vec4 entry point and a scalar one for the tail: its bind
/// group, whether the vec4 entry runs, its elements, and the first the scalar entry takes.
pub(crate) type SplitDispatch = (Arc<wgpu::BindGroup>, bool, u64, u64);

impl Context {
    /// Records one pass of vec4 and scalar-tail dispatches (the elementwise forward and
    /// backward), `VEC4S_PER_INVOCATION` vec4s per invocation (the forward takes them in
    /// one unrolled step, the backward in as many grid-stride steps: launching an
    /// invocation per vec4 instead made lavapipe 1.5-3x slower there), one element per
    /// invocation in the tail.
    pub(crate) fn record_vec4_and_tail(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        [vec4, scalar]: [&wgpu::ComputePipeline; 2],
        dispatches: &[SplitDispatch],
    ) {
        let wg = u64::from(self.workgroup_size());
        let max_groups = self.max_groups();
        let groups = |items: u64| items.div_ceil(wg).clamp(1, max_groups) as u32;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for (bind_group, vectorised, count, scalar_start) in dispatches {
            pass.set_bind_group(0, bind_group.as_ref(), &[]);
            if *vectorised && count / 4 > 0 {
                pass.set_pipeline(vec4);
                let steps = (count / 4).div_ceil(u64::from(crate::shader::VEC4S_PER_INVOCATION));
                pass.dispatch_workgroups(groups(steps), 1, 1);
            }
            if scalar_start < count {
                pass.set_pipeline(scalar);
                pass.dispatch_workgroups(groups(count - scalar_start), 1, 1);
            }
        }
    }
}

/// One binding-sized chunk of an elementwise-shaped call: `count` elements from element
/// `start`, at element offsets `in_offset` and `out_offset` inside their bound windows.
pub(crate) struct Chunk {
    pub(crate) start: u64,
    pub(crate) count: u64,
    pub(crate) in_offset: u32,
    pub(crate) out_offset: u32,
}

/// A bind group and its workgroup count: one dispatch.
pub(crate) type Dispatch = (Arc<wgpu::BindGroup>, u32);

/// How a call is split up.
pub(crate) struct Plan {
    layout: Layout,
    /// Copy the input to a temporary buffer first (same buffer, ranges too far apart).
    copy_input: bool,
    /// Elements per chunk (a multiple of 4).
    pub(crate) chunk: u64,
    align: u64,
}

impl Plan {
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The group-0 storage bindings for `count` elements from element `start` of both
    /// regions, and the byte offset of each range inside its bound window.
    pub(crate) fn bindings<'a>(
        &self,
        input: BufferRegion<'a>,
        output: BufferRegion<'a>,
        start: u64,
        count: u64,
    ) -> (Vec<StorageBinding>, u64, u64) {
        let (input, output) = (input.skip(start), output.skip(start));
        let roles = match self.layout {
            Layout::Shared => [(1, input, count), (1, output, count)],
            _ => [(0, input, count), (1, output, count)],
        };
        let (entries, deltas) = bind_windows(&roles, self.align);
        (entries, deltas[0], deltas[1])
    }
}

/// The storage bindings for `(binding, region, count)` roles: `count` elements from each
/// region's offset, read through the binding given with it (roles sharing a binding get
/// one window that covers them all, from an offset aligned to `align`), and each role's
/// byte offset inside its window.
pub(crate) fn bind_windows(
    roles: &[(u32, BufferRegion<'_>, u64)],
    align: u64,
) -> (Vec<StorageBinding>, Vec<u64>) {
    let mut bindings: Vec<StorageBinding> = Vec::new();
    for &(binding, region, count) in roles {
        let w = window(region, count, align);
        match bindings.iter_mut().find(|b| b.binding == binding) {
            Some(b) => {
                let end = (b.offset + b.size).max(w.start + w.size);
                b.offset = b.offset.min(w.start);
                b.size = end - b.offset;
            }
            None => bindings.push(StorageBinding {
                binding,
                buffer: region.buffer.clone(),
                offset: w.start,
                size: w.size,
            }),
        }
    }
    let deltas = roles
        .iter()
        .map(|&(binding, region, _)| {
            let bound = bindings.iter().find(|b| b.binding == binding);
            region.offset - bound.map_or(0, |b| b.offset)
        })
        .collect();
    (bindings, deltas)
}

/// A bound window of a buffer: `size` bytes from `start`, the range beginning `delta`
/// bytes in.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: u64,
    pub(crate) size: u64,
    pub(crate) delta: u64,
}

/// The window of `count` elements from `region`'s offset: from an offset aligned to
/// `align`, in whole words.
pub(crate) fn window(region: BufferRegion<'_>, count: u64, align: u64) -> Window {
    let start = region.offset / align * align;
    let delta = region.offset - start;
    Window {
        start,
        size: (delta + region.bytes(count)).next_multiple_of(4),
        delta,
    }
}

impl Context {
    /// Validates the regions and decides layout and chunk size.
    pub(crate) fn plan(
        &self,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
        len: u64,
    ) -> Result<Plan> {
        check_region("input", input, len)?;
        check_region("output", output, len)?;
        let storage = call_storage(&[("input", input), ("output", output)])?;
        // elements per 16 bytes: chunks of whole vec4-sized blocks keep both paths aligned
        let per_16 = 16 / storage.bytes();
        let limits = self.limits();
        let align = self.binding_alignment();
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        check_in_place("input", "output", input, output, len)?;
        let same = input.buffer == output.buffer;
        let (layout, reach) = if same {
            // Both ranges share one binding, so the distance between them eats into it.
            (Layout::Shared, input.offset.abs_diff(output.offset))
        } else {
            (Layout::Separate, 0)
        };
        // A shared binding spans both ranges; if the distance leaves no room for a useful
        // chunk (a quarter of a binding), stage the input in a copy instead.
        let room = max_binding.saturating_sub(align + reach);
        let separate_chunk = max_binding.saturating_sub(align) / 16 * per_16;
        if layout == Layout::Shared && room / 16 * per_16 < separate_chunk / 4 {
            return Ok(Plan {
                layout: Layout::Separate,
                copy_input: true,
                chunk: separate_chunk,
                align,
            });
        }
        if separate_chunk == 0 {
            return Err(Error::Unsupported(format!(
                "max_storage_buffer_binding_size {max_binding} leaves no room past the \
                 offset alignment {align}"
            )));
        }
        Ok(Plan {
            layout,
            copy_input: false,
            chunk: room / 16 * per_16,
            align,
        })
    }
}

/// An error if two ranges of `len` elements in one buffer overlap without being the
/// same range (in place is allowed; a partial overlap would read what was written).
pub(crate) fn check_in_place(
    first: &'static str,
    second: &'static str,
    a: BufferRegion<'_>,
    b: BufferRegion<'_>,
    len: u64,
) -> Result<()> {
    let bytes = a.bytes(len);
    let (x, y) = (a.offset, b.offset);
    if a.buffer == b.buffer && x != y && x < y + bytes && y < x + bytes {
        return Err(Error::Overlap {
            first,
            second,
            input: x..x + bytes,
            output: y..y + bytes,
            hint: "use identical ranges for in place, or disjoint ones",
        });
    }
    Ok(())
}

/// Where a second written region of a backward (prelu's grad_weight, dice's grad_alpha,
/// `len` elements) may lie: in none of the buffers the kernels read (`read`, through
/// read-only bindings while it is written), and apart from grad_input's `out_len`.
pub(crate) fn check_written_apart(
    role: &'static str,
    region: BufferRegion<'_>,
    len: u64,
    read: &[(&str, BufferRegion<'_>)],
    grad_input: BufferRegion<'_>,
    out_len: u64,
) -> Result<()> {
    check_region(role, region, len)?;
    if let Some((other, _)) = read.iter().find(|(_, r)| r.buffer == region.buffer) {
        return Err(Error::Unsupported(format!(
            "{role} shares a buffer with the {other}, which the kernels read through a \
             read-only binding while writing {role}: put {role} in a buffer of its own"
        )));
    }
    check_apart(role, region, len, grad_input, out_len)
}

/// An error if an output region of `len` elements (prelu's grad_weight, dice's
/// grad_alpha) overlaps grad_input's `out_len` in the same buffer: both are written, and
/// wgpu allows two writable bindings of one buffer, so nothing else would catch it.
pub(crate) fn check_apart(
    role: &'static str,
    region: BufferRegion<'_>,
    len: u64,
    grad_input: BufferRegion<'_>,
    out_len: u64,
) -> Result<()> {
    let (a, b) = (region.offset, grad_input.offset);
    let (a_end, b_end) = (a + region.bytes(len), b + grad_input.bytes(out_len));
    if region.buffer == grad_input.buffer && a < b_end && b < a_end {
        return Err(Error::Overlap {
            first: role,
            second: "grad_input",
            input: a..a_end,
            output: b..b_end,
            hint: "both are written: give them disjoint ranges",
        });
    }
    Ok(())
}

/// A parameter tensor of `len` elements read while the kernel writes `output` (prelu's
/// weights, dice's alpha and statistics): f32, a valid region, not in the output's buffer.
pub(crate) fn check_parameter(
    role: &'static str,
    region: BufferRegion<'_>,
    len: u64,
    output: BufferRegion<'_>,
) -> Result<()> {
    crate::region::require_f32(role, region)?;
    check_region(role, region, len)?;
    check_not_in_output(role, region, output)
}

pub(crate) fn check_region(role: &'static str, region: BufferRegion<'_>, len: u64) -> Result<()> {
    require_usage(role, region.buffer, wgpu::BufferUsages::STORAGE)?;
    if !region.offset.is_multiple_of(region.storage.bytes()) {
        return Err(Error::Misaligned {
            role,
            offset: region.offset,
            element: region.storage.bytes(),
        });
    }
    check_extent(role, region, len)
}

/// An error unless `buffer` (the call's `role`) was created with `needed` usage.
fn require_usage(
    role: &'static str,
    buffer: &wgpu::Buffer,
    needed: wgpu::BufferUsages,
) -> Result<()> {
    let actual = buffer.usage();
    if !actual.contains(needed) {
        return Err(Error::MissingUsage {
            role,
            missing: needed,
            actual,
        });
    }
    Ok(())
}

/// An error if `aux` (read while the kernel runs: prelu's weights, dice's statistics or
/// alpha) lies in the output's buffer: wgpu refuses one dispatch that binds a buffer both
/// read-only and writable (whatever the ranges), and would report it to the device's
/// handler at submit, past this crate's error scopes.
pub(crate) fn check_not_in_output(
    role: &'static str,
    aux: BufferRegion<'_>,
    output: BufferRegion<'_>,
) -> Result<()> {
    if aux.buffer == output.buffer {
        return Err(Error::SharesOutputBuffer { role });
    }
    Ok(())
}

/// `len` elements from the region's offset, in whole words (a half tensor's last word is
/// bound and copied whole), must fit its buffer (an overflowing length never fits).
fn check_extent(role: &'static str, region: BufferRegion<'_>, len: u64) -> Result<()> {
    let needed = len
        .checked_mul(region.storage.bytes())
        .and_then(|b| b.checked_add(region.offset))
        .and_then(|end| end.checked_next_multiple_of(4))
        .ok_or(Error::BufferTooSmall {
            role,
            offset: region.offset,
            len,
            needed: u64::MAX,
            size: region.buffer.size(),
        })?;
    if needed > region.buffer.size() {
        return Err(Error::BufferTooSmall {
            role,
            offset: region.offset,
            len,
            needed,
            size: region.buffer.size(),
        });
    }
    Ok(())
}

impl Context {
    /// A `STORAGE` buffer holding a parameter tensor of the convenience API (weights,
    /// alpha, statistics), at least one element long (wgpu binds no empty buffer). For
    /// use inside [`Context::scoped`].
    pub(crate) fn parameter_buffer(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        self.device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(if data.is_empty() { &[0.0] } else { data }),
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    /// A `STORAGE | COPY_SRC` buffer for `len` f32 parameter gradients (at least one). For
    /// use inside [`Context::scoped`].
    pub(crate) fn gradient_buffer(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: len.max(1) as u64 * F32,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// Uploads `input`, lets `record` encode from it into an output buffer of the same
    /// length, submits, and reads the output back.
    pub(crate) fn run_with_buffers<T: Element>(
        &self,
        input: &[T],
        record: impl FnOnce(&mut wgpu::CommandEncoder, BufferRegion<'_>, BufferRegion<'_>) -> Result<()>,
    ) -> Result<Vec<T>> {
        self.run_with_buffers_sized(input, input.len(), record)
    }

    /// [`Context::run_with_buffers`] with an output of `out_len` elements.
    pub(crate) fn run_with_buffers_sized<T: Element>(
        &self,
        input: &[T],
        out_len: usize,
        record: impl FnOnce(&mut wgpu::CommandEncoder, BufferRegion<'_>, BufferRegion<'_>) -> Result<()>,
    ) -> Result<Vec<T>> {
        self.run_with_inputs(&[input], out_len, |encoder, inputs, output| {
            record(encoder, inputs[0], output)
        })
    }

    /// Uploads each of `inputs` to a buffer of its own, lets `record` encode from them
    /// into an output buffer of `out_len` elements, submits, and reads the output back.
    /// The regions hold `T`'s storage type.
    pub(crate) fn run_with_inputs<T: Element>(
        &self,
        inputs: &[&[T]],
        out_len: usize,
        record: impl FnOnce(
            &mut wgpu::CommandEncoder,
            &[BufferRegion<'_>],
            BufferRegion<'_>,
        ) -> Result<()>,
    ) -> Result<Vec<T>> {
        let out_len = out_len as u64;
        if out_len == 0 || inputs.iter().any(|x| x.is_empty()) {
            return Ok(vec![T::from_f32(0.0); out_len as usize]);
        }
        // whole words: a half tensor of odd length gets a padding element
        let words = |len: u64| (len * T::STORAGE.bytes()).div_ceil(4) * 4;
        let (srcs, dst) = self.scoped(|| {
            let srcs: Vec<wgpu::Buffer> = inputs
                .iter()
                .map(|x| {
                    let mut bytes = bytemuck::cast_slice::<T, u8>(x).to_vec();
                    bytes.resize(words(x.len() as u64) as usize, 0);
                    self.device()
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("run input"),
                            contents: &bytes,
                            usage: wgpu::BufferUsages::STORAGE,
                        })
                })
                .collect();
            let dst = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("run output"),
                size: words(out_len),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (srcs, dst)
        })?;
        let region = |b| BufferRegion::new(b).with_storage(T::STORAGE);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        let regions: Vec<BufferRegion<'_>> = srcs.iter().map(region).collect();
        record(&mut encoder, &regions, region(&dst))?;
        self.scoped(|| self.queue().submit([encoder.finish()]))?;
        let result = self.download_typed(region(&dst), out_len);
        // These buffers never come back: drop the bind groups that hold them.
        self.bindings().retain(|k, _| {
            !k.storage
                .iter()
                .any(|b| b.buffer == dst || srcs.contains(&b.buffer))
        });
        result
    }

    /// Reads `len` elements of a buffer (which needs `COPY_SRC` usage) back to the host
    /// as f32 (f16 and bf16 elements widened exactly), waiting for all submitted work
    /// first.
    pub fn download(&self, region: BufferRegion<'_>, len: u64) -> Result<Vec<f32>> {
        match region.storage {
            Storage::F32 => self.download_typed::<f32>(region, len),
            Storage::F16 => widen(self.download_typed::<half::f16>(region, len)),
            Storage::Bf16 => widen(self.download_typed::<half::bf16>(region, len)),
        }
    }

    /// Reads `len` elements of type `T` (the region's storage type) of a buffer (which
    /// needs `COPY_SRC` usage) back to the host, waiting for all submitted work first.
    ///
    /// ```no_run
    /// # use wgpu_activations::{BufferRegion, Context, Storage};
    /// # fn demo(ctx: &Context, y: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let y = BufferRegion::new(y).with_storage(Storage::Bf16);
    /// let values: Vec<half::bf16> = ctx.download_typed(y, 1000)?;
    /// # Ok(()) }
    /// ```
    pub fn download_typed<T: Element>(&self, region: BufferRegion<'_>, len: u64) -> Result<Vec<T>> {
        require_usage(
            "download source",
            region.buffer,
            wgpu::BufferUsages::COPY_SRC,
        )?;
        if region.storage != T::STORAGE {
            return Err(Error::Unsupported(format!(
                "the download source holds {} but {} was asked for",
                region.storage,
                T::STORAGE
            )));
        }
        if !region.offset.is_multiple_of(region.storage.bytes()) {
            return Err(Error::Misaligned {
                role: "download source",
                offset: region.offset,
                element: region.storage.bytes(),
            });
        }
        // Overflowing lengths are too long for any buffer, not a wrapped small copy.
        check_extent("download source", region, len)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        // Copies are whole words: a half tensor may begin or end inside one.
        let (start, size) = word_span(region.offset, region.bytes(len));
        let staging = self.scoped(|| {
            let staging = self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("download staging"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.device().create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(region.buffer, start, &staging, 0, size);
            self.queue().submit([encoder.finish()]);
            staging
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            // The receiver outlives the wait below; a send error cannot happen.
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| Error::Readback(e.to_string()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let data = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            let skip = (region.offset - start) as usize;
            let bytes = &view[skip..skip + region.bytes(len) as usize];
            // the mapping is aligned, but an odd skip is not for T: copy element by element
            bytes
                .chunks_exact(std::mem::size_of::<T>())
                .map(bytemuck::pod_read_unaligned)
                .collect()
            // the view drops here, before unmap
        };
        staging.unmap();
        Ok(data)
    }
}

fn widen<T: Element>(values: Result<Vec<T>>) -> Result<Vec<f32>> {
    values.map(|v| v.into_iter().map(Element::to_f32).collect())
}
