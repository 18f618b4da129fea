//! Shared test helpers: one context per test binary, runs through the encode API with
//! poisoned outputs, and comparisons under the accuracy policy.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgpu::util::DeviceExt;
use wgpu_activations::{accuracy, cpu, Accuracy, Activation, BufferRegion, Context, Op, Strategy};

/// A quiet NaN with a payload no op produces: an element left unwritten shows as this.
pub const POISON_BITS: u32 = 0x7fa5_a5a5;

/// The shared context. With no adapter at all this fails loudly, saying how to get one;
/// a GPU test never passes silently.
pub fn ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        Context::new().unwrap_or_else(|e| {
            panic!(
                "GPU tests need an adapter: {e}\n(on a machine without a GPU, install Mesa's \
                 Vulkan drivers: apt-get install -y mesa-vulkan-drivers libvulkan1)"
            )
        })
    })
}

/// A context whose shaders run under emulated relaxed float semantics (subnormals flushed,
/// division by a flushed reciprocal, constants distributed over sums), as the WGSL spec
/// allows a GPU to compute: what an NVIDIA H100 does, on lavapipe.
pub fn relaxed_ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Context::with_options(wgpu_activations::ContextOptions {
            emulate_relaxed_math: true,
            ..Default::default()
        })
        .expect("a context with emulated relaxed semantics");
        assert!(
            ctx.facts().flushes_subnormals,
            "the relaxed mode must flush"
        );
        ctx
    })
}

/// The default context and the relaxed one, with a name for messages.
pub fn both_contexts() -> [(&'static str, &'static Context); 2] {
    [("", ctx()), ("relaxed: ", relaxed_ctx())]
}

/// The op with default parameters, or (threshold) with 0.5 and -2.
pub fn activation(op: Op) -> Activation {
    Activation::example(op)
}

pub fn storage_buffer(ctx: &Context, data: &[f32]) -> wgpu::Buffer {
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("test data"),
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        })
}

pub fn poisoned_buffer(ctx: &Context, len: usize) -> wgpu::Buffer {
    let poison = vec![f32::from_bits(POISON_BITS); len.max(1)];
    storage_buffer(ctx, &poison)
}

/// Applies `a` through the encode API into a poisoned output buffer and reads it back.
pub fn gpu_apply(ctx: &Context, a: &Activation, input: &[f32]) -> Vec<f32> {
    let src = storage_buffer(ctx, if input.is_empty() { &[0.0] } else { input });
    let dst = poisoned_buffer(ctx, input.len());
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, &[input.len()])
        .encode(
            &mut encoder,
            BufferRegion::new(&src),
            BufferRegion::new(&dst),
        )
        .unwrap();
    ctx.queue().submit([encoder.finish()]);
    ctx.download(BufferRegion::new(&dst), input.len() as u64)
        .unwrap()
}

/// Panics with the worst element unless `output` is within `max_ulp` of the reference
/// everywhere, and no element kept the poison.
pub fn assert_within(a: &Activation, input: &[f32], output: &[f32], max_ulp: u64, what: &str) {
    assert_eq!(input.len(), output.len(), "{a}: {what}: length");
    if let Some(i) = output.iter().position(|y| y.to_bits() == POISON_BITS) {
        panic!(
            "{a}: {what}: element {i} of {} was never written",
            output.len()
        );
    }
    let r = accuracy::compare(a, input, output);
    assert!(
        r.max_ulp <= max_ulp,
        "{a}: {what}: {} ULP (bound {max_ulp}) at x = {:e}: got {:e}, expected {:e}",
        if r.max_ulp == u64::MAX {
            "NaN mismatch".to_string()
        } else {
            r.max_ulp.to_string()
        },
        r.worst_input,
        r.worst_output,
        r.worst_expected
    );
}

/// Panics unless every element of `got` is `want`'s under the accuracy policy at 0 ULP:
/// the same value, NaN for NaN (any payload), and for a subnormal `want` also a zero of
/// its sign (an adapter may flush subnormal results).
pub fn assert_exact(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() != POISON_BITS && accuracy::error_against(w, g) == 0,
            "{what}: element {i} is {g:e} ({:#010x}), expected {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Panics unless `got` has `want`'s bits exactly, NaN for NaN (any payload) and +0 for -0
/// (equal values): for ops that select an input, a parameter or a constant, which no
/// adapter may change, subnormals included.
pub fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.is_nan() && w.is_nan()) || g == w,
            "{what}: element {i} is {g:e} ({:#010x}), expected {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Subnormal values of both signs, for exact-op tests.
pub fn subnormals() -> Vec<f32> {
    let v = [1u32, 2, 3, 0x1234, 0x40_0000, 0x7f_fffe, 0x7f_ffff].map(f32::from_bits);
    v.iter().chain(v.map(|x| -x).iter()).copied().collect()
}

/// The bound the op table gives this activation.
pub fn bound(a: &Activation) -> u64 {
    u64::from(
        a.op()
            .info()
            .accuracy
            .max_ulp(a.has_default_params())
            .expect("an elementwise op has a ULP bound"),
    )
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    /// Log-uniform magnitude in [lo, hi) with a random sign.
    pub fn log_uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let m = (lo.ln() + (hi.ln() - lo.ln()) * self.uniform(0.0, 1.0)).exp();
        if self.next_u64() & 1 == 0 {
            m
        } else {
            -m
        }
    }
}

/// The input categories PyTorch's unary-op tests use.
pub fn normal_inputs(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(1);
    (0..n).map(|_| rng.uniform(-10.0, 10.0)).collect()
}

pub fn small_inputs(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(2);
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                rng.uniform(-1.0, 1.0)
            } else {
                rng.log_uniform(1e-30, 1.0)
            }
        })
        .collect()
}

pub fn large_inputs(n: usize) -> Vec<f32> {
    let mut rng = Rng::new(3);
    (0..n).map(|_| rng.log_uniform(1e3, 3.4e38)).collect()
}

/// Runs a softmax-family op on a tensor of `shape` through the encode API with the given
/// strategy, into a poisoned output buffer (or in place), and reads it back.
pub fn gpu_rows(
    ctx: &Context,
    a: &Activation,
    input: &[f32],
    shape: &[usize],
    strategy: Strategy,
    in_place: bool,
) -> Vec<f32> {
    let src = storage_buffer(ctx, if input.is_empty() { &[0.0] } else { input });
    let dst = if in_place {
        None
    } else {
        Some(poisoned_buffer(ctx, input.len()))
    };
    let out = dst.as_ref().unwrap_or(&src);
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    ctx.call(a, shape)
        .strategy(strategy)
        .encode(
            &mut encoder,
            BufferRegion::new(&src),
            BufferRegion::new(out),
        )
        .unwrap_or_else(|e| panic!("{a} {shape:?} {strategy:?}: {e}"));
    ctx.queue().submit([encoder.finish()]);
    ctx.download(BufferRegion::new(out), input.len() as u64)
        .unwrap()
}

/// Panics with the worst element unless `output` is within the softmax family's bound
/// (1e-5 relative, 1e-12 absolute) of the f64 reference everywhere, and nothing kept the
/// poison.
pub fn assert_rows_close(
    a: &Activation,
    input: &[f32],
    shape: &[usize],
    output: &[f32],
    what: &str,
) {
    if let Some(i) = output.iter().position(|y| y.to_bits() == POISON_BITS) {
        panic!(
            "{a} {shape:?}: {what}: element {i} of {} was never written",
            output.len()
        );
    }
    let expected = cpu::reference_shaped_f64(a, input, shape).unwrap();
    let Accuracy::Relative { rel, abs } = a.op().info().accuracy else {
        panic!("{a} has no relative bound");
    };
    let r = accuracy::compare_relative(&expected, output, rel, abs);
    assert!(
        r.within(rel),
        "{a} {shape:?}: {what}: error {:e} at element {} (input {:e}): got {:e}, expected {:e}",
        r.max_error,
        r.worst_index,
        input[r.worst_index.min(input.len().saturating_sub(1))],
        r.worst_output,
        r.worst_expected
    );
}

/// A device whose storage bindings hold 16K floats and whose dispatches have at most 4
/// workgroups: chunking and grid-stride loops on small inputs.
pub fn small_device() -> Context {
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: 1 << 16,
        max_compute_workgroups_per_dimension: 4,
        ..ctx().limits().clone()
    };
    Context::with_options(wgpu_activations::ContextOptions {
        limits: Some(limits),
        ..Default::default()
    })
    .expect("a device with lowered limits")
}

/// A context without subgroup operations: its kernels reduce through the shared-memory
/// tree, the path adapters without subgroups take.
pub fn tree_ctx() -> &'static Context {
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Context::with_options(wgpu_activations::ContextOptions {
            optional_features: Some(wgpu::Features::empty()),
            ..Default::default()
        })
        .expect("a context without optional features");
        assert!(!ctx.facts().subgroups);
        ctx
    })
}

pub use wgpu_activations::{Direction, ParamTensor, Params, Storage};

/// Counts the errors that reach `ctx`'s device's uncaptured-error handler (printing each).
pub fn count_uncaptured(ctx: &Context) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    ctx.device()
        .on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
            eprintln!("uncaptured: {e}");
            c.fetch_add(1, Ordering::SeqCst);
        }));
    count
}

/// PReLU's spec (its one weight is replaced by the call's weight tensor).
pub fn prelu_op() -> Activation {
    Activation::example(Op::Prelu)
}

/// A softmax-family call on rows of `view` (a tensor [outer, axis, inner] along dim 1).
fn rows_call(ctx: &Context, view: wgpu_activations::RowView) -> wgpu_activations::Call<'_> {
    let softmax: Activation = "softmax(dim=1)".parse().unwrap();
    ctx.call(&softmax, &[view.outer, view.axis, view.inner])
}

/// Whether `strategy` serves the forward of f32 rows of `view` on `ctx`.
pub fn serves(ctx: &Context, strategy: Strategy, view: wgpu_activations::RowView) -> bool {
    rows_call(ctx, view)
        .strategy(strategy)
        .row_plan(Direction::Forward, Storage::F32)
        .is_ok()
}

/// What `Auto` runs for the forward of f32 rows of `view` on `ctx`.
pub fn auto_strategy(ctx: &Context, view: wgpu_activations::RowView) -> Strategy {
    rows_call(ctx, view)
        .row_plan(Direction::Forward, Storage::F32)
        .unwrap()
        .strategy
}

/// How `Strategy::Registers` holds contiguous rows of `axis`: (invocations per row, vec4s
/// each), or `None` past its capacity.
pub fn registers_shape(ctx: &Context, axis: u64) -> Option<(u64, u64)> {
    let view = wgpu_activations::RowView::new(&[1, axis as usize], -1, axis as usize).unwrap();
    rows_call(ctx, view)
        .strategy(Strategy::Registers)
        .row_plan(Direction::Forward, Storage::F32)
        .ok()
        .map(|p| (p.lanes, p.vec4s_per_lane))
}

/// Where PReLU's backward reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct PreluGradRegions<'a> {
    pub x: BufferRegion<'a>,
    pub grad_output: BufferRegion<'a>,
    pub grad_input: BufferRegion<'a>,
    pub weight: BufferRegion<'a>,
    pub grad_weight: BufferRegion<'a>,
}

/// PReLU's backward with `weights` weights from `r.weight` on a tensor of `shape`.
pub fn encode_prelu_backward(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    r: PreluGradRegions<'_>,
    weights: usize,
    shape: &[usize],
) -> Result<(), wgpu_activations::Error> {
    let weight = ParamTensor::Buffer(r.weight, weights);
    ctx.call(&prelu_op(), shape)
        .params(Params::Prelu { weight })
        .param_grad(r.grad_weight)
        .encode_backward(encoder, r.x, r.grad_output, r.grad_input)
}

/// PReLU's backward on slices: (grad_input, grad_weight).
pub fn run_prelu_backward(
    ctx: &Context,
    x: &[f32],
    g: &[f32],
    shape: &[usize],
    weight: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), wgpu_activations::Error> {
    ctx.call(&prelu_op(), shape)
        .params(Params::Prelu {
            weight: weight.into(),
        })
        .run_gradients(x, g)
}

/// Dice's spec with alpha 0 (replaced by the call's alpha tensor) and `eps`.
pub fn dice_op(eps: f32) -> Result<Activation, wgpu_activations::Error> {
    Activation::from_params(Op::Dice, &[0.0, eps])
}

/// The features of a dice tensor of `shape` (every dim but the batch's).
fn features(shape: &[usize]) -> usize {
    shape.iter().skip(1).product()
}

/// Dice's evaluation-mode statistics in the caller's buffers.
#[derive(Clone, Copy, Debug)]
pub struct DiceEval<'a> {
    pub mean: BufferRegion<'a>,
    pub var: BufferRegion<'a>,
    pub alpha: BufferRegion<'a>,
    pub eps: f32,
}

/// Dice in training mode with one alpha per feature from `alpha`.
pub fn encode_dice_train(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    input: BufferRegion<'_>,
    output: BufferRegion<'_>,
    alpha: BufferRegion<'_>,
    eps: f32,
    shape: &[usize],
) -> Result<(), wgpu_activations::Error> {
    let alpha = ParamTensor::Buffer(alpha, features(shape));
    ctx.call(&dice_op(eps)?, shape)
        .params(Params::DiceTrain { alpha })
        .encode(encoder, input, output)
}

/// Dice in evaluation mode.
pub fn encode_dice_eval(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    input: BufferRegion<'_>,
    output: BufferRegion<'_>,
    s: DiceEval<'_>,
    shape: &[usize],
) -> Result<(), wgpu_activations::Error> {
    let f = features(shape);
    let [mean, var, alpha] = [s.mean, s.var, s.alpha].map(|r| ParamTensor::Buffer(r, f));
    ctx.call(&dice_op(s.eps)?, shape)
        .params(Params::DiceEval { mean, var, alpha })
        .encode(encoder, input, output)
}

/// Dice in training mode on slices.
pub fn run_dice_train(
    ctx: &Context,
    x: &[f32],
    shape: &[usize],
    alpha: &[f32],
    eps: f32,
) -> Result<Vec<f32>, wgpu_activations::Error> {
    ctx.call(&dice_op(eps)?, shape)
        .params(Params::DiceTrain {
            alpha: alpha.into(),
        })
        .run(x)
}

/// Dice in evaluation mode on slices.
pub fn run_dice_eval(
    ctx: &Context,
    x: &[f32],
    shape: &[usize],
    mean: &[f32],
    var: &[f32],
    alpha: &[f32],
    eps: f32,
) -> Result<Vec<f32>, wgpu_activations::Error> {
    let params = Params::DiceEval {
        mean: mean.into(),
        var: var.into(),
        alpha: alpha.into(),
    };
    ctx.call(&dice_op(eps)?, shape).params(params).run(x)
}

/// Where dice's backward reads and writes.
#[derive(Clone, Copy, Debug)]
pub struct DiceGrad<'a> {
    pub x: BufferRegion<'a>,
    pub grad_output: BufferRegion<'a>,
    pub grad_input: BufferRegion<'a>,
    pub alpha: BufferRegion<'a>,
    pub grad_alpha: BufferRegion<'a>,
}

/// Which statistics dice's forward used.
#[derive(Clone, Copy, Debug)]
pub enum DiceStats<'a> {
    Batch {
        eps: f32,
    },
    Running {
        mean: BufferRegion<'a>,
        var: BufferRegion<'a>,
        eps: f32,
    },
}

/// Dice's backward with one alpha per feature, writing grad_alpha.
pub fn encode_dice_backward(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    r: DiceGrad<'_>,
    stats: DiceStats<'_>,
    shape: &[usize],
) -> Result<(), wgpu_activations::Error> {
    let f = features(shape);
    let alpha = ParamTensor::Buffer(r.alpha, f);
    let (eps, params) = match stats {
        DiceStats::Batch { eps } => (eps, Params::DiceTrain { alpha }),
        DiceStats::Running { mean, var, eps } => {
            let [mean, var] = [mean, var].map(|m| ParamTensor::Buffer(m, f));
            (eps, Params::DiceEval { mean, var, alpha })
        }
    };
    ctx.call(&dice_op(eps)?, shape)
        .params(params)
        .param_grad(r.grad_alpha)
        .encode_backward(encoder, r.x, r.grad_output, r.grad_input)
}

/// Dice's backward on slices: (grad_input, grad_alpha), with the running (mean,
/// variance) of evaluation mode or the batch statistics.
pub fn run_dice_backward(
    ctx: &Context,
    x: &[f32],
    g: &[f32],
    shape: &[usize],
    alpha: &[f32],
    running: Option<(&[f32], &[f32])>,
    eps: f32,
) -> Result<(Vec<f32>, Vec<f32>), wgpu_activations::Error> {
    let alpha = alpha.into();
    let params = match running {
        None => Params::DiceTrain { alpha },
        Some((mean, var)) => Params::DiceEval {
            mean: mean.into(),
            var: var.into(),
            alpha,
        },
    };
    ctx.call(&dice_op(eps)?, shape)
        .params(params)
        .run_gradients(x, g)
}
