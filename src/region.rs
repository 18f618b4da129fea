//! [`BufferRegion`]: where a call's data lies in the caller's buffers, and [`Storage`]:
//! the element type it holds there.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The element type of a tensor in a buffer. Kernels load it, compute in f32 with the
/// same code whatever the type, and round once to the type at the store (to nearest even;
/// overflow gives an infinity, NaN stays NaN), on every adapter: the conversions are
/// integer operations on the bits, so they need no `SHADER_F16` feature and no adapter
/// can flush or round them differently (the f32 arithmetic between them follows the
/// crate's numerics policy: a flushing adapter may flush an f32 subnormal, which is a
/// bf16 subnormal too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Storage {
    /// 32-bit IEEE floats.
    #[default]
    F32,
    /// 16-bit IEEE floats (binary16: 5 exponent bits, 10 mantissa bits).
    F16,
    /// bfloat16: the upper half of an f32 (8 exponent bits, 7 mantissa bits).
    Bf16,
}

impl Storage {
    /// Every storage type.
    pub const ALL: [Storage; 3] = [Storage::F32, Storage::F16, Storage::Bf16];

    /// Bytes per element.
    pub const fn bytes(self) -> u64 {
        match self {
            Storage::F32 => 4,
            Storage::F16 | Storage::Bf16 => 2,
        }
    }

    /// The name `activate --dtype` and `roofline --dtype` take: `f32`, `f16` or `bf16`.
    pub const fn name(self) -> &'static str {
        match self {
            Storage::F32 => "f32",
            Storage::F16 => "f16",
            Storage::Bf16 => "bf16",
        }
    }

    /// Whether elements are 16-bit halves of 32-bit words.
    pub(crate) const fn is_half(self) -> bool {
        !matches!(self, Storage::F32)
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Storage {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Storage::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "unknown storage type `{s}`: expected f32, f16 or bf16"
                ))
            })
    }
}

/// A place in a buffer: `buffer` starting at byte `offset`, holding elements of type
/// `storage`.
#[derive(Clone, Copy, Debug)]
pub struct BufferRegion<'a> {
    /// The buffer (it needs `STORAGE` usage for the kernels, `COPY_SRC` to download).
    pub buffer: &'a wgpu::Buffer,
    /// The byte offset of the first element (a multiple of the element's size).
    pub offset: u64,
    /// The element type (f32 unless set with [`BufferRegion::with_storage`]).
    pub storage: Storage,
}

impl<'a> BufferRegion<'a> {
    /// The start of `buffer`, holding f32 elements.
    pub fn new(buffer: &'a wgpu::Buffer) -> Self {
        BufferRegion::at(buffer, 0)
    }

    /// `buffer` from byte `offset`, holding f32 elements (so `offset` must be a multiple
    /// of 4, or of 2 once [`BufferRegion::with_storage`] makes them halves).
    pub fn at(buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        BufferRegion {
            buffer,
            offset,
            storage: Storage::F32,
        }
    }

    /// The same place holding elements of type `storage` (the offset must then be a
    /// multiple of its size: 2 bytes for f16 and bf16).
    ///
    /// ```no_run
    /// # use wgpu_activations::{BufferRegion, Context, Storage};
    /// # fn demo(ctx: &Context, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_activations::Result<()> {
    /// let silu = "silu".parse()?;
    /// let mut encoder = ctx.device().create_command_encoder(&Default::default());
    /// // 1000 f16 elements from the 3rd one of x, into the start of y
    /// let x = BufferRegion::at(x, 6).with_storage(Storage::F16);
    /// let y = BufferRegion::new(y).with_storage(Storage::F16);
    /// ctx.call(&silu, &[1000]).encode(&mut encoder, x, y)?;
    /// ctx.queue().submit([encoder.finish()]);
    /// # Ok(()) }
    /// ```
    pub fn with_storage(self, storage: Storage) -> Self {
        BufferRegion { storage, ..self }
    }

    /// The region `elements` elements further on.
    pub(crate) fn skip(self, elements: u64) -> Self {
        BufferRegion {
            offset: self.offset + elements * self.storage.bytes(),
            ..self
        }
    }

    /// The bytes `len` elements from here take.
    pub(crate) fn bytes(self, len: u64) -> u64 {
        len * self.storage.bytes()
    }
}

/// An error unless a parameter tensor (`role`) holds f32.
pub(crate) fn require_f32(role: &'static str, region: BufferRegion<'_>) -> crate::Result<()> {
    if region.storage != Storage::F32 {
        return Err(Error::Unsupported(format!(
            "the {role} holds {}: parameters and their gradients are f32 in every storage \
             type",
            region.storage
        )));
    }
    Ok(())
}

/// An element type the convenience API takes: `f32`, [`half::f16`] and [`half::bf16`].
pub trait Element: bytemuck::Pod + Send + Sync + sealed::Sealed {
    /// Its storage type.
    const STORAGE: Storage;
    /// The f32 of the same value (exact).
    fn to_f32(self) -> f32;
    /// The nearest value (ties to even), as the kernels store it.
    fn from_f32(x: f32) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

impl Element for f32 {
    const STORAGE: Storage = Storage::F32;
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
}

/// The half types: their own exact widening and rounding to nearest even.
macro_rules! half_element {
    ($($ty:ty => $storage:ident),*) => {$(
        impl Element for $ty {
            const STORAGE: Storage = Storage::$storage;
            fn to_f32(self) -> f32 {
                <$ty>::to_f32(self)
            }
            fn from_f32(x: f32) -> Self {
                <$ty>::from_f32(x)
            }
        }
    )*};
}

half_element!(half::f16 => F16, half::bf16 => Bf16);
