//! Binding windows and bind groups: each range bound from an offset aligned to the device's
//! storage-offset alignment (the rest passed to the kernel as an element offset), bind
//! groups kept for repeated calls, and the context's shared scratch buffer.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::device::layout::{Group1, Layout};
use crate::{BufferRegion, Context, Result};

/// Bind groups the context keeps for repeated calls (each holds its buffers alive).
pub(crate) const BINDING_CACHE_ENTRIES: usize = 256;

/// One storage binding of a bind group: `size` bytes of `buffer` from `offset`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StorageBinding {
    pub(crate) binding: u32,
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

/// Which bind-group layout a cached bind group has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum GroupLayout {
    /// Group 0 of a kernel reading its inputs as `Layout` says (uniforms at binding 2).
    Tensors(Layout),
    /// A family's group 1.
    Params(Group1),
}

/// What makes two recorded calls share a bind group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BindingKey {
    pub(crate) layout: GroupLayout,
    pub(crate) storage: Vec<StorageBinding>,
    pub(crate) uniforms: Vec<u8>,
}

/// A bound window of a buffer: `size` bytes from `start`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) start: u64,
    pub(crate) size: u64,
}

/// The window of `count` elements from `region`'s offset: from an offset aligned to
/// `align`, in whole words.
pub(crate) fn window(region: BufferRegion<'_>, count: u64, align: u64) -> Window {
    let start = region.offset / align * align;
    let delta = region.offset - start;
    Window {
        start,
        size: (delta + region.bytes(count)).next_multiple_of(4),
    }
}

/// The bytes a copy or a binding of `bytes` bytes from byte `offset` covers: whole 4-byte
/// words, as wgpu requires (a half tensor may begin or end in the middle of one).
pub(crate) fn word_span(offset: u64, bytes: u64) -> (u64, u64) {
    let start = offset / 4 * 4;
    (start, (offset + bytes).div_ceil(4) * 4 - start)
}

impl Context {
    /// The alignment of a storage binding's offset (at least 16 bytes, so a window's
    /// vec4s stay aligned).
    pub(crate) fn binding_alignment(&self) -> u64 {
        u64::from(self.limits().min_storage_buffer_offset_alignment).max(16)
    }

    /// The element offset of a parameter tensor inside its bound window (what its kernel
    /// adds to every index).
    pub(crate) fn param_offset(&self, region: BufferRegion<'_>) -> u32 {
        ((region.offset % self.binding_alignment()) / region.storage.bytes()) as u32
    }

    /// The bind group of `key`'s storage bindings (and its uniforms at binding 2, in a
    /// uniform buffer of their own, for group 0), from the context's binding cache when
    /// the same call was recorded before: a repeated encode (same buffers, ranges, sizes
    /// and parameters, as in an inference loop) then creates nothing. Creation runs in an
    /// error scope. `cacheable` is false for a call that binds a fresh buffer (a staged
    /// copy, a scratch buffer): it never repeats, and keeping it would keep the copy alive.
    pub(crate) fn bind_group(
        &self,
        key: BindingKey,
        cacheable: bool,
    ) -> Result<Arc<wgpu::BindGroup>> {
        if let Some(group) = self.bindings().get(&key) {
            return Ok(group.clone());
        }
        let group = Arc::new(self.scoped(|| self.create_bind_group(&key))?);
        if cacheable {
            let mut cache = self.bindings();
            if cache.len() >= BINDING_CACHE_ENTRIES {
                // Cached groups keep their buffers alive: bound the memory held.
                cache.clear();
            }
            cache.insert(key, group.clone());
        }
        Ok(group)
    }

    /// Whether the context's binding cache holds a bind group for every key.
    pub(crate) fn all_cached(&self, keys: &[BindingKey]) -> bool {
        let cache = self.bindings();
        keys.iter().all(|k| cache.contains_key(k))
    }

    fn create_bind_group(&self, key: &BindingKey) -> wgpu::BindGroup {
        let uniforms = match key.layout {
            GroupLayout::Tensors(_) => Some(self.device().create_buffer_init(
                &wgpu::util::BufferInitDescriptor {
                    label: Some("wgpu-activations uniforms"),
                    contents: &key.uniforms,
                    usage: wgpu::BufferUsages::UNIFORM,
                },
            )),
            GroupLayout::Params(_) => None,
        };
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
        entries.extend(uniforms.as_ref().map(|u| wgpu::BindGroupEntry {
            binding: 2,
            resource: u.as_entire_binding(),
        }));
        let layout = match key.layout {
            GroupLayout::Tensors(layout) => self.layouts().group0(layout),
            GroupLayout::Params(group) => self.layouts().group1(group),
        };
        self.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("wgpu-activations"),
            layout,
            entries: &entries,
        })
    }

    /// A new storage buffer of `bytes` (at least 16), for use inside [`Context::scoped`].
    pub(crate) fn scratch_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    /// The context's shared scratch buffer (Split's and dice's partial statistics), of at
    /// least `bytes`: one per context, grown by powers of two when a call needs more,
    /// never past what one binding holds. Calls may share it: the queue runs them in
    /// order, and each call's last pass has read its partials before the next call writes.
    pub(crate) fn shared_scratch(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let mut slot = self.shared_slot();
        if let Some(buffer) = slot.as_ref().filter(|b| b.size() >= bytes) {
            return Ok(buffer.clone());
        }
        let binding = self.limits().max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(crate::Error::Unsupported(format!(
                "{bytes} bytes of partial statistics exceed this device's storage binding \
                 limit ({binding} bytes)"
            )));
        }
        let size = bytes.next_power_of_two().max(256).min(binding.max(bytes));
        let buffer = self.scoped(|| self.scratch_buffer("wgpu-activations partials", size))?;
        if let Some(old) = slot.replace(buffer.clone()) {
            // the bind groups of the outgrown buffer would keep it alive
            self.bindings()
                .retain(|k, _| !k.storage.iter().any(|b| b.buffer == old));
        }
        Ok(buffer)
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
