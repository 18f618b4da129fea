//! [`BufferRegion`]: where a call's data lies in the caller's buffers.

/// A place in a buffer: `buffer` starting at byte `offset`.
#[derive(Clone, Copy, Debug)]
pub struct BufferRegion<'a> {
    /// The buffer (it needs `STORAGE` usage for the kernels, `COPY_SRC` to download).
    pub buffer: &'a wgpu::Buffer,
    /// The byte offset of the first element (a multiple of 4).
    pub offset: u64,
}

impl<'a> BufferRegion<'a> {
    /// The start of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer) -> Self {
        BufferRegion { buffer, offset: 0 }
    }

    /// `buffer` from byte `offset` (a multiple of 4).
    pub fn at(buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        BufferRegion { buffer, offset }
    }

    /// The region `elements` f32 elements further on.
    pub(crate) fn skip(self, elements: u64) -> Self {
        BufferRegion {
            buffer: self.buffer,
            offset: self.offset + elements * 4,
        }
    }
}
