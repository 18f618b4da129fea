//! [`Call`]: one way to run every op, forward or backward, on the caller's buffers
//! (`encode*`, recorded into the caller's encoder) or on the host's slices (`run*`).

use crate::exec::{self, CallArgs, ParamArgs, ParamRegion};
use crate::families::softmax::{piece_rows, view_of};
use crate::families::softmax_strategy::{resolve, row_plan, RowPlan};
use crate::region::Element;
use crate::shape::{check_grad_len, check_len, element_count};
use crate::{Activation, BufferRegion, Context, Result, Storage, Strategy};

/// Which way a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// `y = f(x)`.
    Forward,
    /// `grad_input` from the saved tensor and `grad_output`.
    Backward,
}

/// A parameter tensor of a call (f32 whatever the storage type of the call's tensors):
/// in one of the caller's buffers, with its element count, or on the host (uploaded for
/// the call).
#[derive(Clone, Copy, Debug)]
pub enum ParamTensor<'a> {
    /// `len` f32 values from the region's offset (`STORAGE` usage).
    Buffer(BufferRegion<'a>, usize),
    /// Values on the host.
    Host(&'a [f32]),
}

impl<'a> From<&'a [f32]> for ParamTensor<'a> {
    fn from(values: &'a [f32]) -> Self {
        ParamTensor::Host(values)
    }
}

impl ParamTensor<'_> {
    fn len(&self) -> usize {
        match self {
            ParamTensor::Buffer(_, len) => *len,
            ParamTensor::Host(values) => values.len(),
        }
    }
}

/// The parameter tensors a call brings beside its input, for the ops whose parameters
/// are per channel or per feature. A backward call with them also writes their gradient
/// ([`Call::param_grad`], [`Call::run_gradients`]).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Params<'a> {
    /// PReLU's weights: 1, or one per channel (dim 1 of the shape), as
    /// `torch.nn.functional.prelu` (the spec `prelu(weight=W)` is one weight).
    Prelu {
        /// The weights.
        weight: ParamTensor<'a>,
    },
    /// Dice in training mode with one alpha per feature (the spec's `alpha` is not used;
    /// its `eps` is).
    DiceTrain {
        /// One alpha per feature.
        alpha: ParamTensor<'a>,
    },
    /// Dice in evaluation mode: running statistics and alpha, one per feature each (the
    /// spec's `eps` added to the variance).
    DiceEval {
        /// The running mean.
        mean: ParamTensor<'a>,
        /// The running (biased) variance.
        var: ParamTensor<'a>,
        /// alpha.
        alpha: ParamTensor<'a>,
    },
    /// A bias fused before any elementwise op, `y = f(x + bias)`, as a GEMM epilogue:
    /// one value per index of axis `dim` (`-1`, the last, after `x @ W + b`; `1` for
    /// NCHW), in the tensors' storage type (host values are rounded to it once). A
    /// forward may also write the pre-activation `x + bias` ([`Call::aux_output`]); a
    /// backward from it (or from y, for sigmoid and tanh) writes grad_input and the
    /// bias's gradient, the sum of grad_input over every axis but `dim`.
    Bias {
        /// The bias.
        bias: ParamTensor<'a>,
        /// The axis it runs along (negative counts from the end).
        dim: i64,
    },
}

impl<'a> Params<'a> {
    fn tensors(&self) -> Vec<ParamTensor<'a>> {
        match *self {
            Params::Prelu { weight } => vec![weight],
            Params::DiceTrain { alpha } => vec![alpha],
            Params::DiceEval { mean, var, alpha } => vec![mean, var, alpha],
            Params::Bias { bias, .. } => vec![bias],
        }
    }

    /// Whether the tensors are held in the call's storage type (a bias), rather than f32.
    fn in_call_storage(&self) -> bool {
        matches!(self, Params::Bias { .. })
    }

    /// The length of the tensor a backward call writes the gradient of (the weights, or
    /// alpha).
    fn grad_len(&self) -> usize {
        self.tensors().last().map_or(0, ParamTensor::len)
    }
}

/// One call of an op on a tensor of a shape: built by [`Context::call`], given a
/// strategy or parameter tensors where the op takes them, then run forward or backward,
/// on buffers or slices. Nothing compiles twice: each pipeline is built on first use and
/// kept by the context.
///
/// ```no_run
/// use wgpu_activations::{BufferRegion, Context, Strategy};
/// # fn main() -> wgpu_activations::Result<()> {
/// let ctx = Context::new()?;
/// let y = ctx.call(&"gelu".parse()?, &[3]).run(&[-1.0f32, 0.0, 1.0])?;
///
/// // log-probabilities over a 32,000-token vocabulary for 8 sequences, in place
/// # let logits: wgpu::Buffer = todo!();
/// let log_softmax = "log_softmax(dim=-1)".parse()?;
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// let region = BufferRegion::new(&logits);
/// ctx.call(&log_softmax, &[8, 32_000]).encode(&mut encoder, region, region)?;
/// ctx.queue().submit([encoder.finish()]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a call does nothing until it is encoded or run"]
pub struct Call<'a> {
    ctx: &'a Context,
    activation: Activation,
    shape: Vec<usize>,
    strategy: Strategy,
    params: Option<Params<'a>>,
    param_grad: Option<BufferRegion<'a>>,
    aux: Option<BufferRegion<'a>>,
}

impl Context {
    /// A call of `activation` on a tensor of `shape` (the softmax family normalises
    /// along the activation's `dim`, grouped ops shrink it; elementwise ops only count
    /// its elements).
    pub fn call<'a>(&'a self, activation: &Activation, shape: &[usize]) -> Call<'a> {
        Call {
            ctx: self,
            activation: *activation,
            shape: shape.to_vec(),
            strategy: Strategy::Auto,
            params: None,
            param_grad: None,
            aux: None,
        }
    }
}

impl<'a> Call<'a> {
    /// How the softmax family maps rows onto the GPU (an error at encode for other ops,
    /// and where the strategy cannot serve the shape).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The parameter tensors of prelu (per channel) or dice (per feature).
    pub fn params(mut self, params: Params<'a>) -> Self {
        self.params = Some(params);
        self
    }

    /// Where [`Call::encode_backward`] writes the gradient of the parameter tensor (the
    /// weights, or alpha; f32, written, not accumulated into), in a buffer apart from
    /// every tensor the kernels read. Without it the gradient is computed and dropped.
    pub fn param_grad(mut self, region: BufferRegion<'a>) -> Self {
        self.param_grad = Some(region);
        self
    }

    /// Where a forward with [`Params::Bias`] also writes the pre-activation `x + bias`
    /// (cuBLASLt's `_AUX`), for the backward of the ops that read x: the tensor's shape
    /// and storage type, in a buffer the kernel does not read, apart from the output.
    pub fn aux_output(mut self, region: BufferRegion<'a>) -> Self {
        self.aux = Some(region);
        self
    }

    /// Records `output = f(input)` into the caller's encoder; nothing is submitted or
    /// read back. `input` and `output` may be the same region (in place) or disjoint
    /// regions of one buffer (a grouped op, whose output is shorter, only disjoint). Both
    /// need `STORAGE` usage and offsets that are multiples of the element size (their
    /// [`Storage`], which they share); an empty tensor records nothing.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: BufferRegion<'_>,
        output: BufferRegion<'_>,
    ) -> Result<()> {
        let mut tensors = vec![input, output];
        tensors.extend(self.aux);
        self.record(encoder, crate::Direction::Forward, tensors)
    }

    /// Records the backward: `grad_input` from `saved` (the forward's input x, or its
    /// output y where [`Op::backward`](crate::Op::backward) says
    /// [`Saved::Output`](crate::Saved::Output)) and `grad_output` (the forward output's
    /// shape). grad_input may be grad_output's region or the saved tensor's (in place), or
    /// disjoint from both; partial overlaps are errors.
    pub fn encode_backward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        saved: BufferRegion<'_>,
        grad_output: BufferRegion<'_>,
        grad_input: BufferRegion<'_>,
    ) -> Result<()> {
        let tensors = vec![saved, grad_output, grad_input];
        self.record(encoder, crate::Direction::Backward, tensors)
    }

    fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        direction: crate::Direction,
        tensors: Vec<BufferRegion<'_>>,
    ) -> Result<()> {
        let host = self.params.map(|p| p.tensors()).unwrap_or_default();
        let storage = match self.params {
            Some(p) if p.in_call_storage() => tensors[0].storage,
            _ => Storage::F32,
        };
        let uploads = host
            .iter()
            .map(|t| match t {
                ParamTensor::Host(values) => self
                    .ctx
                    .upload_as("parameter tensor", values, storage)
                    .map(Some),
                ParamTensor::Buffer(..) => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let regions: Vec<ParamRegion<'_>> = host
            .iter()
            .zip(&uploads)
            .map(|(t, up)| match (t, up) {
                (ParamTensor::Buffer(region, len), _) => ParamRegion {
                    region: *region,
                    len: *len as u64,
                },
                (ParamTensor::Host(values), Some(buffer)) => ParamRegion {
                    region: BufferRegion::new(buffer).with_storage(storage),
                    len: values.len() as u64,
                },
                (ParamTensor::Host(_), None) => unreachable!("host values are uploaded"),
            })
            .collect();
        let params = self.params.map(|p| match p {
            Params::Prelu { .. } => ParamArgs::Prelu(regions[0]),
            Params::DiceTrain { .. } => ParamArgs::DiceTrain(regions[0]),
            Params::DiceEval { .. } => ParamArgs::DiceEval([regions[0], regions[1], regions[2]]),
            Params::Bias { dim, .. } => ParamArgs::Bias {
                bias: regions[0],
                dim,
            },
        });
        let outputs = match direction {
            crate::Direction::Forward => tensors.len() - 1,
            crate::Direction::Backward => 1,
        };
        let args = CallArgs {
            activation: self.activation,
            shape: &self.shape,
            strategy: self.strategy,
            direction,
            params,
            param_grad: self.param_grad,
            tensors,
            outputs,
        };
        exec::encode(self.ctx, encoder, &args)
    }

    /// Whether the host's slices may be cut into calls of their own (an elementwise op:
    /// each element on its own), so no buffer exceeds the device's limit.
    fn cuts_on_host(&self) -> bool {
        self.activation.op().elementwise().is_some() && self.params.is_none()
    }

    /// Elements per call where the host's slices are cut (at most 1 GiB of f32 each).
    fn host_piece(&self) -> usize {
        (self.ctx.limits().max_buffer_size / 4).clamp(4, 1 << 28) as usize
    }

    /// Runs the call on the host's slice: uploads it, records, submits and reads the
    /// output back (f32, [`half::f16`] or [`half::bf16`] elements: the kernels compute in
    /// f32 and round once to `T` at the store). The blocking convenience API, for tests,
    /// examples and quick use.
    ///
    /// ```no_run
    /// use wgpu_activations::Context;
    /// let ctx = Context::new()?;
    /// // columns of a 2 x 3 matrix
    /// let y = ctx.call(&"softmax(dim=0)".parse()?, &[2, 3]).run(&[0.0f32, 1.0, 2.0, 0.0, 1.0, 2.0])?;
    /// assert!(y.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run<T: Element>(&self, input: &[T]) -> Result<Vec<T>> {
        check_len(&self.shape, input.len())?;
        let out_len = element_count(&self.activation.output_shape(&self.shape)?)?;
        if self.cuts_on_host() && input.len() > self.host_piece() {
            let mut out = Vec::with_capacity(input.len());
            for x in input.chunks(self.host_piece()) {
                out.extend(self.ctx.call(&self.activation, &[x.len()]).run(x)?);
            }
            return Ok(out);
        }
        self.ctx
            .run_with_inputs(&[input], out_len, |encoder, inputs, output| {
                self.encode(encoder, inputs[0], output)
            })
    }

    /// [`Call::run`] into `output`, which must have `input.len()` elements (so not for
    /// the grouped ops, whose output is shorter).
    pub fn run_into<T: Element>(&self, input: &[T], output: &mut [T]) -> Result<()> {
        if input.len() != output.len() {
            return Err(crate::Error::LengthMismatch {
                input: input.len(),
                output: output.len(),
            });
        }
        if self.activation.output_shape(&self.shape)? != self.shape {
            return Err(crate::Error::Unsupported(format!(
                "`{}` shrinks its axis, so the output is shorter than the input; use run",
                self.activation
            )));
        }
        output.copy_from_slice(&self.run(input)?);
        Ok(())
    }

    /// The backward on the host's slices: `grad_input` from `saved` and `grad_output`
    /// (see [`Call::encode_backward`]).
    ///
    /// ```no_run
    /// use wgpu_activations::Context;
    /// let ctx = Context::new()?;
    /// let grad_input = ctx.call(&"relu".parse()?, &[3]).run_backward(&[-1.0f32, 0.0, 2.0], &[5.0; 3])?;
    /// assert_eq!(grad_input, [0.0, 0.0, 5.0]);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_backward<T: Element>(&self, saved: &[T], grad_output: &[T]) -> Result<Vec<T>> {
        self.run_gradients(saved, grad_output).map(|(gx, _)| gx)
    }

    /// [`Call::run_backward`] with the gradient of the call's parameter tensor (the
    /// weights, or alpha; empty without one).
    ///
    /// ```no_run
    /// use wgpu_activations::{Context, Params};
    /// let ctx = Context::new()?;
    /// // a 2 x 2 tensor: channels are dim 1, the columns, with slopes 0.5 and 0.25
    /// let weight = [0.5, 0.25];
    /// let prelu = ctx.call(&"prelu".parse()?, &[2, 2]).params(Params::Prelu { weight: weight[..].into() });
    /// let (gx, gw) = prelu.run_gradients(&[-1.0f32, 2.0, -4.0, -2.0], &[1.0; 4])?;
    /// assert_eq!(gx, [0.5, 1.0, 0.5, 0.25]);
    /// assert_eq!(gw, [-5.0, -2.0]);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn run_gradients<T: Element>(
        &self,
        saved: &[T],
        grad_output: &[T],
    ) -> Result<(Vec<T>, Vec<f32>)> {
        let expected = element_count(&self.activation.output_shape(&self.shape)?)?;
        check_grad_len(saved.len(), grad_output.len(), expected)?;
        check_len(&self.shape, saved.len())?;
        if self.cuts_on_host() && saved.len() > self.host_piece() {
            let mut out = Vec::with_capacity(saved.len());
            let piece = self.host_piece();
            for (s, g) in saved.chunks(piece).zip(grad_output.chunks(piece)) {
                out.extend(
                    self.ctx
                        .call(&self.activation, &[s.len()])
                        .run_backward(s, g)?,
                );
            }
            return Ok((out, Vec::new()));
        }
        let grad_len = self.params.map_or(0, |p| p.grad_len());
        let storage = match self.params {
            Some(p) if p.in_call_storage() => T::STORAGE,
            _ => Storage::F32,
        };
        let zeros = vec![0.0; grad_len];
        let grads = self
            .params
            .map(|_| self.ctx.upload_as("parameter gradient", &zeros, storage))
            .transpose()?;
        let grad_region = |buffer| BufferRegion::new(buffer).with_storage(storage);
        let mut call = self.clone();
        if let Some(buffer) = &grads {
            call.param_grad = Some(grad_region(buffer));
        }
        let gx = self.ctx.run_with_inputs(
            &[saved, grad_output],
            saved.len(),
            |encoder, inputs, gx| call.encode_backward(encoder, inputs[0], inputs[1], gx),
        )?;
        let gp = match &grads {
            Some(buffer) if !saved.is_empty() && grad_len > 0 => {
                self.ctx.download(grad_region(buffer), grad_len as u64)?
            }
            _ => vec![0.0; grad_len],
        };
        Ok((gx, gp))
    }

    /// What a softmax-family call runs in `direction` on tensors of `storage`: the
    /// strategy (`Auto` resolved for this adapter) and how it holds and cuts rows; an
    /// error where the call's strategy cannot serve the shape, saying why. (Planned for
    /// separate tensors at aligned offsets; the caller's buffers may cut it into more
    /// pieces.)
    ///
    /// ```no_run
    /// use wgpu_activations::{Context, Direction, Storage, Strategy};
    /// let ctx = Context::new()?;
    /// let call = ctx.call(&"softmax".parse()?, &[512, 1024]);
    /// let plan = call.row_plan(Direction::Forward, Storage::F32)?;
    /// println!("{:?}: {} invocations per row", plan.strategy, plan.lanes);
    /// assert!(call.strategy(Strategy::Resident).row_plan(Direction::Forward, Storage::F32).is_ok());
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn row_plan(&self, direction: crate::Direction, storage: Storage) -> Result<RowPlan> {
        if self.activation.op().softmax().is_none() {
            return Err(crate::Error::Unsupported(format!(
                "`{}` is not a softmax-family op: it has no row plan",
                self.activation
            )));
        }
        let view = view_of(&self.activation, &self.shape)?;
        let strategy = resolve(self.ctx, self.strategy, view, storage, direction)?;
        Ok(row_plan(
            self.ctx,
            strategy,
            view,
            piece_rows(self.ctx, view, storage),
        ))
    }
}
