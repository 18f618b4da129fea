#![warn(missing_docs)]
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
//!
//! Every op has a backward, with PyTorch's semantics at every point: grad_input from the
//! saved tensor (x, or y where [`Op::backward`] says [`Saved::Output`]) and grad_output,
//! through [`Context::encode_backward`] / [`Context::encode_backward_shaped`] or the
//! slice forms [`Context::run_backward`] and [`Context::run_backward_shaped`]
//! ([`Context::encode_prelu_backward`] and [`Context::encode_dice_backward`] add the
//! weight and alpha gradients):
//!
//! ```no_run
//! # fn main() -> wgpu_activations::Result<()> {
//! let ctx = wgpu_activations::Context::new()?;
//! let silu = "silu".parse()?;
//! let grad_input = ctx.run_backward(&silu, &[-1.0, 0.0, 1.0], &[1.0; 3])?; // silu'(x)
//! # Ok(()) }
//! ```
//!
//! # f16 and bf16
//!
//! Every kernel also runs on f16 and bf16 tensors ([`Storage`], set on the
//! [`BufferRegion`]): it loads them, computes in f32 with the same code and rounds once to
//! the type at the store (to nearest even), with integer conversions that give the same
//! bits on every adapter. [`Context::run_typed`] and [`Context::run_backward_typed`] take
//! `half::f16` and `half::bf16` slices:
//!
//! ```no_run
//! # fn main() -> wgpu_activations::Result<()> {
//! use half::f16;
//! let ctx = wgpu_activations::Context::new()?;
//! let x: Vec<f16> = [-1.0f32, 0.0, 1.0].map(f16::from_f32).to_vec();
//! let y = ctx.run_typed(&"gelu".parse()?, &x, &[3])?;
//! # Ok(()) }
//! ```
//!
//! # Numerics on any adapter
//!
//! The WGSL spec lets an adapter flush subnormal inputs and results to zero, divide
//! through a reciprocal that is only accurate for divisors in [2^-126, 2^126], rearrange
//! or contract arithmetic, drop NaN payloads, and have an unfused `fma`; GPUs do. The
//! kernels are written so that, on any adapter that follows the spec:
//! - ops that select an input, a parameter or a constant (`relu`, `hardtanh`, `maxout`,
//!   ...) return its bits, subnormals included, and never flip a sign; the exact
//!   products and differences (`leaky_relu`, `prelu`, `rrelu`, `softshrink`) are
//!   correctly rounded wherever the result is normal;
//! - every other op is within its published bound wherever the true result is normal,
//!   also for subnormal inputs, and a subnormal true result comes back within the bound
//!   or as a zero of its sign ([`accuracy::error_against`] is that policy);
//! - NaN in gives NaN out (any payload);
//! - the random ops give the same bits for a seed in any chunking, and
//!   [`random::FloatModel`] (from [`Context::float_model`]) reproduces them on the CPU.
//!
//! [`ContextOptions::emulate_relaxed_math`] makes any adapter (lavapipe in CI) compute
//! the way a GPU may, so that the tests catch code that relies on stricter arithmetic;
//! [`Context::adapter_facts`] says what the adapter itself does.

pub mod accuracy;
mod activation;
mod cache;
mod context;
pub mod cpu;
mod error;
pub mod kernels;
pub mod op;
pub mod random;
mod region;
mod relaxed;
pub mod shader;
mod shape;

pub use activation::Activation;
pub use cache::{CacheStats, Layout, Via};
pub use context::{Context, ContextOptions};
pub use error::{Error, Result};
pub use kernels::dice::DiceEval;
pub use kernels::dice_backward::{DiceGrad, DiceStats};
pub use kernels::prelu_backward::PreluGradRegions;
pub use kernels::softmax::Strategy;
pub use op::{Accuracy, Op, Saved, SoftmaxKind};
pub use region::{BufferRegion, Element, Storage};
pub use shape::RowView;
