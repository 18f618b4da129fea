//! WGSL compute shaders for neural-network activation functions, run through wgpu and
//! checked against an f64 CPU reference.
//!
//! Two ways in:
//!
//! ```no_run
//! use wgpu_activations::{Activation, BufferRegion, Context};
//! # fn main() -> wgpu_activations::Result<()> {
//! let ctx = Context::new()?; // or Context::from_device(device, queue)
//! let gelu: Activation = "gelu(approximate=tanh)".parse()?;
//!
//! // Convenience: a slice in, a Vec out.
//! let y = ctx.run(&gelu, &[-2.0, 0.0, 2.0])?;
//!
//! // Encode: record into your own command encoder, on your own buffers.
//! # let (x_buf, y_buf): (wgpu::Buffer, wgpu::Buffer) = todo!();
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! ctx.encode(&mut encoder, &gelu, BufferRegion::new(&x_buf), BufferRegion::new(&y_buf), 1024)?;
//! ctx.queue().submit([encoder.finish()]);
//! # Ok(()) }
//! ```
//!
//! Every op is declared once in the table in [`op`]; [`cpu`] holds the reference that the
//! GPU results are checked against, and [`shader`] the WGSL with naga validation.

pub mod accuracy;
mod activation;
mod cache;
mod context;
pub mod cpu;
mod error;
pub mod kernels;
pub mod op;
pub mod random;
mod relaxed;
pub mod shader;
mod shape;

pub use activation::Activation;
pub use cache::{CacheStats, Layout};
pub use context::{Context, ContextOptions};
pub use error::{Error, Result};
pub use kernels::dice::DiceEval;
pub use kernels::elementwise::BufferRegion;
pub use kernels::softmax::Strategy;
pub use op::{Accuracy, Op, SoftmaxKind};
pub use shape::RowView;
