//! The checks of a call's regions, written once: usage, alignment and extent of each,
//! one storage type for the main tensors, the overlaps wgpu would not catch (or would
//! report past this crate's error scopes), and where parameter tensors may lie.
//! Whether the caller's buffers are still mapped or destroyed is asked here too
//! ([`unmapped_and_alive`]), on a bind-group cache miss.

use super::{CallArgs, ParamArgs};
use crate::{BufferRegion, Error, Result};

/// A region of `len` elements that a kernel binds: `STORAGE` usage, an offset that is a
/// multiple of the element size, and room for `len` elements in whole words.
pub(crate) fn region(role: &'static str, region: BufferRegion<'_>, len: u64) -> Result<()> {
    usage(role, region.buffer, wgpu::BufferUsages::STORAGE)?;
    aligned(role, region)?;
    extent(role, region, len)
}

/// An error if wgpu holds `buffer` mapped for the host or destroyed: binding or copying
/// either is a validation error that wgpu reports only at the caller's submit, to the
/// device's handler. wgpu 30 has no `Buffer::map_state()`, but `get_mapped_range` of the
/// first word tells without side effects (it returns its error and reports nothing to the
/// device's handler): a view, dropped at once, means mapped (at creation, or by a
/// `map_async` whose range holds the first word); wgpu-core's "out of bounds" (a mapped
/// range that leaves the first word out) or the wrapper's refusal of an overlapping view
/// mean mapped too; an error naming destruction means destroyed. Only that evidence
/// refuses: any other error (wgpu's "not mapped", or a message a later wgpu words
/// differently) lets the call go on, as before this check.
///
/// What this cannot see, documented in docs/calls.md: a `map_async` still pending (wgpu
/// says "not mapped" until the mapping completes). A buffer of fewer than 4 bytes holds no
/// mappable word and is not asked. The view lives for the duration of the check: a
/// program that unmaps the buffer on another thread at that moment (already a race with
/// the call) meets wgpu's panic for unmapping a buffer with a live view.
pub(crate) fn unmapped_and_alive(role: &'static str, buffer: &wgpu::Buffer) -> Result<()> {
    if buffer.size() < 4 {
        return Ok(());
    }
    let Err(e) = buffer.slice(0..4).get_mapped_range() else {
        return Err(Error::BufferMapped { role });
    };
    // wgpu-core names a resource as "Buffer with 'LABEL' label ...": read what follows
    // the last "label", so that a caller's label cannot pass for the error's words
    let text = e.to_string();
    let e = text.rsplit("label").next().unwrap_or_default();
    if e.contains("destroyed") {
        Err(Error::BufferDestroyed { role })
    } else if e.contains("out of bounds") || e.contains("get_mapped_range") {
        Err(Error::BufferMapped { role })
    } else {
        Ok(())
    }
}

/// An error unless the region's offset is a multiple of its element size.
pub(crate) fn aligned(role: &'static str, region: BufferRegion<'_>) -> Result<()> {
    if !region.offset.is_multiple_of(region.storage.bytes()) {
        return Err(Error::Misaligned {
            role,
            offset: region.offset,
            element: region.storage.bytes(),
        });
    }
    Ok(())
}

/// An error unless `buffer` (the call's `role`) was created with `needed` usage.
pub(crate) fn usage(
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

/// `len` elements from the region's offset, in whole words (a half tensor's last word is
/// bound and copied whole), must fit its buffer (an overflowing length never fits).
pub(crate) fn extent(role: &'static str, region: BufferRegion<'_>, len: u64) -> Result<()> {
    let size = region.buffer.size();
    let needed = len
        .checked_mul(region.storage.bytes())
        .and_then(|b| b.checked_add(region.offset))
        .and_then(|end| end.checked_next_multiple_of(4));
    match needed {
        Some(needed) if needed <= size => Ok(()),
        needed => Err(Error::BufferTooSmall {
            role,
            offset: region.offset,
            len,
            needed: needed.unwrap_or(u64::MAX),
            size,
        }),
    }
}

/// The bytes `a` covers with `a_len` elements and `b` with `b_len`, when they share a
/// buffer and overlap.
fn overlap(
    a: BufferRegion<'_>,
    a_len: u64,
    b: BufferRegion<'_>,
    b_len: u64,
) -> Option<(std::ops::Range<u64>, std::ops::Range<u64>)> {
    let (x, y) = (
        a.offset..a.offset + a.bytes(a_len),
        b.offset..b.offset + b.bytes(b_len),
    );
    (a.buffer == b.buffer && x.start < y.end && y.start < x.end).then_some((x, y))
}

/// An error if two ranges of one length in one buffer overlap without being the same
/// range (in place is allowed; a partial overlap would read what was written).
pub(crate) fn in_place(
    [first, second]: [&'static str; 2],
    a: BufferRegion<'_>,
    b: BufferRegion<'_>,
    len: u64,
) -> Result<()> {
    match overlap(a, len, b, len) {
        Some((input, output)) if a.offset != b.offset => Err(Error::Overlap {
            first,
            second,
            input,
            output,
            hint: "use identical ranges for in place, or disjoint ones",
        }),
        _ => Ok(()),
    }
}

/// An error if `a` (`a_len` elements) and `b` (`b_len`) overlap at all: two written
/// tensors, or an input whose length differs from the output's (`hint` says what to do).
pub(crate) fn apart(
    [first, second]: [&'static str; 2],
    (a, a_len): (BufferRegion<'_>, u64),
    (b, b_len): (BufferRegion<'_>, u64),
    hint: &'static str,
) -> Result<()> {
    match overlap(a, a_len, b, b_len) {
        Some((input, output)) => Err(Error::Overlap {
            first,
            second,
            input,
            output,
            hint,
        }),
        None => Ok(()),
    }
}

/// A parameter tensor of `len` elements read while the kernel writes `output` (prelu's
/// weights, dice's alpha and statistics): f32, a valid region, not in the output's buffer
/// (wgpu refuses one dispatch that binds a buffer both read-only and writable, whatever
/// the ranges, and would report it to the device's handler at submit).
pub(crate) fn parameter(
    role: &'static str,
    param: BufferRegion<'_>,
    len: u64,
    output: BufferRegion<'_>,
) -> Result<()> {
    crate::region::require_f32(role, param)?;
    parameter_in_call_storage(role, param, len, output)
}

/// [`parameter`] for a tensor held in the call's storage type (a bias).
pub(crate) fn parameter_in_call_storage(
    role: &'static str,
    param: BufferRegion<'_>,
    len: u64,
    output: BufferRegion<'_>,
) -> Result<()> {
    region(role, param, len)?;
    if param.buffer == output.buffer {
        return Err(Error::SharesOutputBuffer { role });
    }
    Ok(())
}

/// Where a written parameter gradient (prelu's grad_weight, dice's grad_alpha, a bias's
/// gradient; `len` elements) may lie: in none of the buffers the kernels read (`read`,
/// through read-only bindings while it is written), and apart from grad_input's `out_len`.
pub(crate) fn written_apart(
    role: &'static str,
    grad: BufferRegion<'_>,
    len: u64,
    read: &[(&str, BufferRegion<'_>)],
    grad_input: (BufferRegion<'_>, u64),
) -> Result<()> {
    region(role, grad, len)?;
    if let Some((other, _)) = read.iter().find(|(_, r)| r.buffer == grad.buffer) {
        return Err(Error::Unsupported(format!(
            "{role} shares a buffer with the {other}, which the kernels read through a \
             read-only binding while writing {role}: put {role} in a buffer of its own"
        )));
    }
    apart(
        [role, "grad_input"],
        (grad, len),
        grad_input,
        "both are written: give them disjoint ranges",
    )
}

impl<'a> CallArgs<'a> {
    /// Every caller's buffer the call binds, with its role: the main tensors, the
    /// parameter tensors and the parameter gradient.
    fn buffers(&self) -> Vec<(&'static str, &'a wgpu::Buffer)> {
        let mut all: Vec<_> = self
            .roles()
            .iter()
            .copied()
            .zip(self.tensors.iter().map(|t| t.buffer))
            .collect();
        let (params, grad): (Vec<_>, _) = match self.params {
            None => (Vec::new(), "parameter gradient"),
            Some(ParamArgs::Prelu(w)) => (vec![("weights", w)], "grad_weight"),
            Some(ParamArgs::DiceTrain(a)) => (vec![("alpha", a)], "grad_alpha"),
            Some(ParamArgs::DiceEval([m, v, a])) => {
                (vec![("mean", m), ("var", v), ("alpha", a)], "grad_alpha")
            }
            Some(ParamArgs::Bias { bias, .. }) => (vec![("bias", bias)], "grad_bias"),
        };
        all.extend(params.into_iter().map(|(role, p)| (role, p.region.buffer)));
        all.extend(self.param_grad.map(|g| (grad, g.buffer)));
        all
    }

    /// An error if one of the call's buffers is mapped for the host or destroyed
    /// ([`unmapped_and_alive`]). Run where a bind group is created, not found in
    /// the context's cache: asking wgpu costs an error string per buffer (about a
    /// microsecond a call on a 2-core machine, measured with benches/encode), and a
    /// cached bind group's buffers were asked when it was created. What a cache hit
    /// cannot see: a buffer destroyed since (docs/calls.md says to call
    /// `Context::release_cached_bindings` after destroying buffers), or remapped since
    /// (only a buffer with `MAP_*` usage can be, so those are asked every call).
    pub(crate) fn check_host_state(&self, cache_hit: bool) -> Result<()> {
        let mappable = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE;
        for (role, buffer) in self.buffers() {
            if !cache_hit || buffer.usage().intersects(mappable) {
                unmapped_and_alive(role, buffer)?;
            }
        }
        Ok(())
    }
}
