#![warn(missing_docs)]
//! WGSL compute shaders for neural-network activation functions, run through wgpu and
//! checked against an f64 CPU reference.
//!
//! ```no_run
//! use wgpu_activations::{BufferRegion, Context};
//! # fn main() -> wgpu_activations::Result<()> {
//! let ctx = Context::new()?; // or Context::from_device(device, queue)
//! let gelu = "gelu(approximate=tanh)".parse()?;
//!
//! // Convenience: a slice in, a Vec out.
//! let y = ctx.call(&gelu, &[3]).run(&[-2.0f32, 0.0, 2.0])?;
//!
//! // Encode: record into your own command encoder, on your own buffers.
//! # let (x_buf, y_buf): (wgpu::Buffer, wgpu::Buffer) = todo!();
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! ctx.call(&gelu, &[1024]).encode(&mut encoder, BufferRegion::new(&x_buf), BufferRegion::new(&y_buf))?;
//! ctx.queue().submit([encoder.finish()]);
//! # Ok(()) }
//! ```
//!
//! Every op runs through [`Context::call`]: a [`Call`] names the activation and the
//! tensor's shape, may choose a softmax [`Strategy`] or bring [`Params`] (prelu's
//! per-channel weights, dice's per-feature alpha and statistics), and runs forward or
//! backward on buffers or slices, in f32, f16 or bf16 ([`Storage`]). The [`guide`]
//! chapters say how each part behaves; [`op`] holds the one table of ops, [`cpu`] the f64
//! references, [`accuracy`] the policy the tests compare by.

pub mod accuracy;
mod activation;
mod call;
pub mod cpu;
mod device;
mod error;
mod exec;
mod families;
mod files;
pub mod op;
pub mod random;
mod region;
mod shape;
mod tuning;

/// The reference, one chapter per subject (the repository's `docs/*.md`; their Rust
/// examples are compiled as doctests).
pub mod guide {
    #[doc = include_str!("../docs/calls.md")]
    pub mod calls {}
    #[doc = include_str!("../docs/ops.md")]
    pub mod ops {}
    #[doc = include_str!("../docs/softmax.md")]
    pub mod softmax {}
    #[doc = include_str!("../docs/gradients.md")]
    pub mod gradients {}
    #[doc = include_str!("../docs/fusion.md")]
    pub mod fusion {}
    #[doc = include_str!("../docs/storage.md")]
    pub mod storage {}
    #[doc = include_str!("../docs/numerics.md")]
    pub mod numerics {}
    #[doc = include_str!("../docs/performance.md")]
    pub mod performance {}
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The WGSL this crate compiles, and naga validation of it (no GPU needed).
pub mod shader {
    pub use crate::device::wgsl::{validate_all, validate_wgsl, ACTIVATIONS_WGSL, GRADIENTS_WGSL};
}

pub use activation::Activation;
pub use call::{Call, Direction, ParamTensor, Params};
pub use device::pipelines::CacheStats;
pub use device::{AdapterFacts, Context, ContextOptions, KernelOptions};
pub use error::{Error, Result};
pub use families::softmax_strategy::{RowPlan, Strategy};
pub use op::{Accuracy, Op, Saved, SoftmaxKind};
pub use region::{BufferRegion, Element, Storage};
pub use shape::RowView;
pub use tuning::{Rows, Stopwatch, TuneKey, Tuned, TuningOptions, TUNING_ENV, TUNING_FILE_ENV};
