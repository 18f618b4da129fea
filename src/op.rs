//! The op table: every activation declared once.
//!
//! A row names the op as PyTorch does, lists its parameters with PyTorch's names and
//! defaults, and points at its WGSL function (in `shaders/activations.wgsl`) and its CPU
//! reference (in [`crate::cpu`]). The [`Op`] enum, the spec parser, the pipeline keys, the
//! test lists and the README table are all derived from these rows, so adding an
//! activation is one row here, one WGSL function and one CPU function.

mod checks;

use crate::cpu::derivative as d;
use crate::cpu::scalar as cpu;
use checks::*;

/// How closely the GPU result must match the correctly rounded reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Accuracy {
    /// Bit-identical to the correctly rounded result (piecewise-linear ops).
    Exact,
    /// Within `rel` relative error of the f64 reference, or `abs` absolute error for
    /// values that small (the softmax family, whose elements share a row's sum).
    Relative {
        /// The relative bound.
        rel: f64,
        /// The absolute bound for values smaller than `abs / rel`.
        abs: f64,
    },
    /// At most `default` ULP with the default parameters and at most `any` ULP with any
    /// parameters (ops that scale their argument before a transcendental, such as
    /// `softplus(beta=2)`, round that product first).
    Ulp {
        /// The bound with the default parameters.
        default: u32,
        /// The bound with any parameters.
        any: u32,
    },
    /// At most `ulp` ULP, or an absolute error of at most `abs * |grad_output|`: the
    /// bound of a derivative that crosses zero, where its terms cancel (backward only).
    UlpOrAbs {
        /// The ULP bound.
        ulp: u32,
        /// The absolute bound, per unit of `|grad_output|`.
        abs: f64,
    },
}

impl Accuracy {
    /// The ULP bound that applies to an activation with these parameters (`None` for a
    /// [`Accuracy::Relative`] bound).
    pub fn max_ulp(self, default_params: bool) -> Option<u32> {
        match self {
            Accuracy::Exact => Some(0),
            Accuracy::Ulp { default, any } => Some(if default_params { default } else { any }),
            Accuracy::UlpOrAbs { ulp, .. } => Some(ulp),
            Accuracy::Relative { .. } => None,
        }
    }
}

/// One parameter: PyTorch's name and default (`None` when the value is required; in the
/// table a required parameter is written `"name" ~ sample`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    /// PyTorch's name for it.
    pub name: &'static str,
    /// Its default; `None` where the spec must give it.
    pub default: Option<f32>,
    /// The default, or for a required parameter a sample value (what
    /// [`Activation::example`](crate::Activation::example) uses).
    pub example: f32,
}

/// Everything the crate knows about one op; see [`Op::info`].
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    /// The spec name, as in `torch.nn.functional` (`"leaky_relu"`).
    pub name: &'static str,
    /// A word-valued selector that picks this row among rows sharing `name`, e.g.
    /// `("approximate", "tanh")` for `gelu(approximate=tanh)`; the first row of a name
    /// carries the default word.
    pub variant: Option<(&'static str, &'static str)>,
    /// Numeric parameters in the order they travel to the shader (`p.x`, `p.y`, ...).
    pub params: &'static [Param],
    /// The formula, for documentation.
    pub formula: &'static str,
    /// The kernel family that runs it, with what the family needs to know.
    pub kernel: Kernel,
    /// The accuracy this op is held to in the tests.
    pub accuracy: Accuracy,
    /// A parameter check beyond finiteness, returning what is wrong.
    pub check: fn(&[f32]) -> Result<(), String>,
    /// The backward: what it reads, its derivative and its bound.
    pub backward: Backward,
}

/// What a backward kernel reads besides `grad_output`: the forward's input `x`, or its
/// output `y` where PyTorch saves the output (sigmoid, tanh, the softmax family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Saved {
    /// The forward's input `x`.
    Input,
    /// The forward's output `y`.
    Output,
}

/// The backward of a table row: `grad_input` from the saved tensor and `grad_output`.
#[derive(Clone, Copy, Debug)]
pub struct Backward {
    /// Whether the kernel reads `x` or `y`.
    pub saved: Saved,
    /// The derivative (in terms of the saved tensor), for documentation; `grad_input` is
    /// `grad_output` times it for the elementwise ops.
    pub formula: &'static str,
    /// The bound `grad_input` is held to in the tests.
    pub accuracy: Accuracy,
}

/// The kernel family of an op, and what that family needs from the table row.
#[derive(Clone, Copy, Debug)]
pub enum Kernel {
    /// `y[i] = f(x[i])`: the WGSL function in `shaders/activations.wgsl` (called as
    /// `f(x, params)`) and the f64 CPU reference `f(x, params)`.
    Elementwise {
        /// The WGSL function's name.
        wgsl: &'static str,
        /// The f64 reference.
        cpu: CpuFn,
        /// The WGSL backward, `grad_NAME(saved, grad_output, params)`, which returns
        /// `grad_input` (in `shaders/gradients.wgsl`).
        grad_wgsl: &'static str,
        /// Its f64 reference, `f(saved, grad_output, params)`.
        grad_cpu: GradFn,
    },
    /// A normalisation along one axis (`dim`), run by the row kernels of
    /// `shaders/softmax.wgsl`.
    Softmax(SoftmaxKind),
    /// Groups of inputs along one axis (`dim`) reduced to one output each, run by
    /// `shaders/grouped.wgsl`: the axis shrinks `k`-fold (2-fold for `glu`).
    Grouped(GroupKind),
    /// Dice: batch statistics per feature, then elementwise, run by `shaders/dice.wgsl`:
    /// the batch is dim 0, the features the other dims.
    Dice,
    /// Elementwise with random numbers from a counter-based generator keyed by (seed,
    /// element index), run by `shaders/random.wgsl` and reproduced bit for bit by the CPU
    /// reference.
    Random(RandomKind),
}

/// Which random op a [`Kernel::Random`] row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RandomKind {
    /// `rrelu(training=true)`: a uniform slope in [lower, upper) per element.
    Rrelu,
    /// `noisy_relu`: max(0, x + std * N(0, 1)) per element.
    NoisyRelu,
}

impl RandomKind {
    /// The WGSL id of the kind (`RANDOM_KIND` in `shaders/random.wgsl`).
    pub(crate) fn id(self) -> u32 {
        self as u32
    }
}

/// Which grouped op a [`Kernel::Grouped`] row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupKind {
    /// The maximum of each group of `k` consecutive values (`maxout`, `fold_max`).
    Max,
    /// The minimum of each group (`fold_min`).
    Min,
    /// The mean of each group (`fold_mean`).
    Mean,
    /// `a * sigmoid(b)` with the axis split into halves `a` and `b` (`glu`).
    Glu,
    /// `silu(a) * b` over the halves (`swiglu`).
    SwiGlu,
    /// `gelu(a) * b` (`geglu`).
    GeGlu,
    /// `gelu(a, approximate=tanh) * b` (`geglu(approximate=tanh)`).
    GeGluTanh,
    /// `relu(a) * b` (`reglu`).
    ReGlu,
}

impl GroupKind {
    /// The WGSL id of the kind (`GROUP_KIND` in `shaders/grouped.wgsl`).
    pub(crate) fn id(self) -> u32 {
        self as u32
    }

    /// The elementwise op a gated unit applies to its first half `a` before multiplying
    /// by `b` (its forward, backward and references are that row's); `None` for the
    /// others (glu gates `a` by `sigmoid(b)` instead).
    pub fn gate(self) -> Option<Op> {
        match self {
            GroupKind::SwiGlu => Some(Op::Silu),
            GroupKind::GeGlu => Some(Op::Gelu),
            GroupKind::GeGluTanh => Some(Op::GeluTanh),
            GroupKind::ReGlu => Some(Op::Relu),
            GroupKind::Max | GroupKind::Min | GroupKind::Mean | GroupKind::Glu => None,
        }
    }

    /// Whether the axis splits into two halves (glu and the gated units) rather than
    /// groups of `k`.
    pub fn is_gated(self) -> bool {
        self == GroupKind::Glu || self.gate().is_some()
    }
}

/// Which member of the softmax family a [`Kernel::Softmax`] row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SoftmaxKind {
    /// `exp(x - max) / sum(exp(x - max))`
    Softmax,
    /// `x - max - log(sum(exp(x - max)))`
    LogSoftmax,
    /// `softmax(-x)`
    Softmin,
}

/// An f64 reference: `f(x, params)`.
pub type CpuFn = fn(f64, &[f64]) -> f64;

/// An f64 backward reference: `grad_input = f(saved, grad_output, params)`.
pub type GradFn = fn(f64, f64, &[f64]) -> f64;

/// An elementwise row's kernel: its forward and backward, in WGSL and as references.
const fn ew(wgsl: &'static str, cpu: CpuFn, grad_wgsl: &'static str, grad_cpu: GradFn) -> Kernel {
    Kernel::Elementwise {
        wgsl,
        cpu,
        grad_wgsl,
        grad_cpu,
    }
}

/// A row's backward: what it reads, its bound and its derivative's formula.
const fn grad(saved: Saved, accuracy: Accuracy, formula: &'static str) -> Backward {
    Backward {
        saved,
        formula,
        accuracy,
    }
}

const INPUT: Saved = Saved::Input;
const OUTPUT: Saved = Saved::Output;

const fn row(kind: SoftmaxKind) -> Kernel {
    Kernel::Softmax(kind)
}

const fn group(kind: GroupKind) -> Kernel {
    Kernel::Grouped(kind)
}

/// At most this many parameters per op (they travel as one `vec4<f32>`).
pub const MAX_PARAMS: usize = 4;

macro_rules! param {
    ($name:literal ~ $example:literal) => {
        Param {
            name: $name,
            default: None,
            example: $example,
        }
    };
    ($name:literal = $default:literal) => {
        Param {
            name: $name,
            default: Some($default),
            example: $default,
        }
    };
}

macro_rules! op_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident: $name:literal $([$vkey:literal = $vword:literal])?
            ($($pname:literal $($pkind:tt $pvalue:literal)?),*)
            => $kernel:expr, $accuracy:expr, $check:path, $formula:literal,
            $backward:expr;
    )*) => {
        /// Every activation this crate implements; see [`Op::info`] for its table row.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Op {
            $($(#[doc = $doc])* $variant,)*
        }

        static OPS: &[OpInfo] = &[$(
            OpInfo {
                name: $name,
                variant: op_table!(@variant $($vkey, $vword)?),
                params: &[$(param!($pname $($pkind $pvalue)?)),*],
                formula: $formula,
                kernel: $kernel,
                accuracy: $accuracy,
                check: $check,
                backward: $backward,
            },
        )*];

        impl Op {
            /// Every op, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$variant),*];
        }
    };
    (@variant) => { None };
    (@variant $k:literal, $w:literal) => { Some(($k, $w)) };
}

const EXACT: Accuracy = Accuracy::Exact;
/// The softmax family's (and dice's) bound, forward and backward: 1e-5 relative, or 1e-12
/// absolute for tiny values; their elements depend on a whole row's or column's
/// statistics (the backward's relative to its terms' magnitude, `|y| (|g| + sum |g y|)`,
/// since the difference `g - sum(g y)` may cancel).
const ROW: Accuracy = Accuracy::Relative {
    rel: 1e-5,
    abs: 1e-12,
};
const fn ulp(default: u32, any: u32) -> Accuracy {
    Accuracy::Ulp { default, any }
}
/// A derivative's bound: `ulp` ULP, or `abs * |grad_output|` absolute where the
/// derivative crosses zero (its terms cancel there, in f32 as in any f32 library).
const fn ulp_or(ulp: u32, abs: f64) -> Accuracy {
    Accuracy::UlpOrAbs { ulp, abs }
}
op_table! {
    /// x
    Identity: "identity" () => ew("act_identity", cpu::identity, "grad_identity", d::identity),
        EXACT, no_check, "x", grad(INPUT, EXACT, "1");
    /// 1 for x >= 0, else 0 (numpy's `heaviside(x, 1)`)
    BinaryStep: "binary_step" () => ew("act_binary_step", cpu::binary_step, "grad_binary_step",
        d::binary_step), EXACT, no_check, "1 if x >= 0 else 0",
        grad(INPUT, EXACT, "0 (also at 0, as torch.sign's)");
    /// 1 / (1 + exp(-x))
    Sigmoid: "sigmoid" () => ew("act_sigmoid", cpu::sigmoid, "grad_sigmoid", d::sigmoid),
        ulp(2, 2), no_check, "1 / (1 + exp(-x))", grad(OUTPUT, ulp(2, 2), "y (1 - y)");
    /// tanh(x)
    Tanh: "tanh" () => ew("act_tanh", cpu::tanh, "grad_tanh", d::tanh), ulp(2, 2), no_check,
        "tanh(x)", grad(OUTPUT, ulp(2, 2), "1 - y^2");
    /// max(0, x)
    Relu: "relu" () => ew("act_relu", cpu::relu, "grad_relu", d::relu), EXACT, no_check,
        "max(0, x)", grad(INPUT, EXACT, "0 if x <= 0 else 1");
    /// min(max(0, x), 6)
    Relu6: "relu6" () => ew("act_relu6", cpu::relu6, "grad_relu6", d::relu6), EXACT, no_check,
        "min(max(0, x), 6)", grad(INPUT, EXACT, "0 if x <= 0 or x >= 6 else 1");
    /// x if x > 0 else negative_slope * x
    LeakyRelu: "leaky_relu" ("negative_slope" = 0.01) => ew("act_leaky_relu", cpu::leaky_relu,
        "grad_leaky_relu", d::leaky_relu), EXACT, no_check, "x if x > 0 else negative_slope * x",
        grad(INPUT, EXACT, "1 if x > 0 else negative_slope");
    /// x if x > 0 else alpha * (exp(x) - 1)
    Elu: "elu" ("alpha" = 1.0) => ew("act_elu", cpu::elu, "grad_elu", d::elu), ulp(2, 2),
        no_check, "x if x > 0 else alpha * (exp(x) - 1)",
        grad(INPUT, ulp(2, 2), "1 if x > 0 else alpha * exp(x)");
    /// scale * elu(x, alpha) with PyTorch's fixed scale and alpha
    Selu: "selu" () => ew("act_selu", cpu::selu, "grad_selu", d::selu), ulp(2, 2), no_check,
        "scale * (x if x > 0 else alpha * (exp(x) - 1)), scale = 1.0507..., alpha = 1.6733...",
        grad(INPUT, ulp(2, 2), "scale if x > 0 else scale * alpha * exp(x)");
    /// max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    Celu: "celu" ("alpha" = 1.0) => ew("act_celu", cpu::celu, "grad_celu", d::celu), ulp(2, 2),
        check_alpha_divides, "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))",
        grad(INPUT, ulp(2, 2), "1 if x > 0 else exp(x / alpha)");
    /// x * Phi(x), with the exact normal CDF
    Gelu: "gelu" ["approximate" = "none"] () => ew("act_gelu", cpu::gelu, "grad_gelu", d::gelu),
        ulp(4, 4), no_check, "x / 2 * (1 + erf(x / sqrt(2)))",
        grad(INPUT, ulp_or(4, 1e-7), "Phi(x) + x phi(x)");
    /// x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
    GeluTanh: "gelu" ["approximate" = "tanh"] () => ew("act_gelu_tanh", cpu::gelu_tanh,
        "grad_gelu_tanh", d::gelu_tanh), ulp(4, 4), no_check,
        "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))",
        grad(INPUT, ulp_or(4, 6e-8), "s (1 + (1 - s) x u'), s = sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3)");
    /// x * sigmoid(x)
    Silu: "silu" () => ew("act_silu", cpu::silu, "grad_silu", d::silu), ulp(2, 2), no_check,
        "x * sigmoid(x)", grad(INPUT, ulp_or(4, 6e-8), "s (1 + x (1 - s)), s = sigmoid(x)");
    /// x * sigmoid(beta * x); beta = 1.702 is the sigmoid form of GELU
    Swish: "swish" ("beta" = 1.0) => ew("act_swish", cpu::swish, "grad_swish", d::swish),
        ulp(2, 4), no_check, "x * sigmoid(beta * x)",
        grad(INPUT, ulp_or(4, 6e-8), "s (1 + beta x (1 - s)), s = sigmoid(beta x)");
    /// x * tanh(softplus(x))
    Mish: "mish" () => ew("act_mish", cpu::mish, "grad_mish", d::mish), ulp(4, 4), no_check,
        "x * tanh(softplus(x))",
        grad(INPUT, ulp_or(6, 6e-8), "t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))");
    /// log(1 + exp(beta * x)) / beta, or x where beta * x > threshold
    Softplus: "softplus" ("beta" = 1.0, "threshold" = 20.0) => ew("act_softplus", cpu::softplus,
        "grad_softplus", d::softplus), ulp(2, 4), check_beta_divides,
        "log(1 + exp(beta * x)) / beta, or x where beta * x > threshold",
        grad(INPUT, ulp(2, 2), "sigmoid(beta x), or 1 where beta * x > threshold");
    /// x / (1 + |x|)
    Softsign: "softsign" () => ew("act_softsign", cpu::softsign, "grad_softsign", d::softsign),
        ulp(2, 2), no_check, "x / (1 + |x|)", grad(INPUT, ulp(2, 2), "1 / (1 + |x|)^2");
    /// min(max(0, x + 3), 6) / 6
    Hardsigmoid: "hardsigmoid" () => ew("act_hardsigmoid", cpu::hardsigmoid, "grad_hardsigmoid",
        d::hardsigmoid), ulp(2, 2), no_check, "min(max(0, x + 3), 6) / 6",
        grad(INPUT, ulp(1, 1), "1/6 if -3 < x < 3 else 0");
    /// x * min(max(0, x + 3), 6) / 6
    Hardswish: "hardswish" () => ew("act_hardswish", cpu::hardswish, "grad_hardswish",
        d::hardswish), ulp(2, 2), no_check, "x * min(max(0, x + 3), 6) / 6",
        grad(INPUT, ulp(2, 2), "0 if x <= -3, x / 3 + 1/2 if x < 3, else 1");
    /// min(max(min_val, x), max_val)
    Hardtanh: "hardtanh" ("min_val" = -1.0, "max_val" = 1.0) => ew("act_hardtanh", cpu::hardtanh,
        "grad_hardtanh", d::hardtanh), EXACT, check_ordered, "min(max(min_val, x), max_val)",
        grad(INPUT, EXACT, "0 if x <= min_val or x >= max_val else 1");
    /// log(sigmoid(x)) = -softplus(-x)
    Logsigmoid: "logsigmoid" () => ew("act_logsigmoid", cpu::logsigmoid, "grad_logsigmoid",
        d::logsigmoid), ulp(2, 2), no_check, "log(1 / (1 + exp(-x)))",
        grad(INPUT, ulp(2, 2), "sigmoid(-x)");
    /// x - tanh(x)
    Tanhshrink: "tanhshrink" () => ew("act_tanhshrink", cpu::tanhshrink, "grad_tanhshrink",
        d::tanhshrink), ulp(2, 2), no_check, "x - tanh(x)", grad(INPUT, ulp(4, 4), "tanh(x)^2");
    /// x - lambd if x > lambd, x + lambd if x < -lambd, else 0
    Softshrink: "softshrink" ("lambd" = 0.5) => ew("act_softshrink", cpu::softshrink,
        "grad_softshrink", d::softshrink), EXACT, check_lambd,
        "x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
        grad(INPUT, EXACT, "0 if -lambd <= x <= lambd else 1");
    /// x if |x| > lambd else 0
    Hardshrink: "hardshrink" ("lambd" = 0.5) => ew("act_hardshrink", cpu::hardshrink,
        "grad_hardshrink", d::hardshrink), EXACT, check_lambd, "x if |x| > lambd else 0",
        grad(INPUT, EXACT, "0 if -lambd <= x <= lambd else 1");
    /// x if x > threshold else value (both required)
    Threshold: "threshold" ("threshold" ~ 0.5, "value" ~ -2.0) => ew("act_threshold",
        cpu::threshold, "grad_threshold", d::threshold), EXACT, no_check,
        "x if x > threshold else value", grad(INPUT, EXACT, "0 if x <= threshold else 1");
    /// exp(-x^2)
    Gaussian: "gaussian" () => ew("act_gaussian", cpu::gaussian, "grad_gaussian", d::gaussian),
        ulp(4, 4), no_check, "exp(-x^2)", grad(INPUT, ulp(4, 4), "-2 x exp(-x^2)");
    /// x if x > 0 else weight * x; one weight here, per-channel weights through
    /// `Params::Prelu`
    Prelu: "prelu" ("weight" = 0.25) => ew("act_prelu", cpu::prelu, "grad_prelu", d::prelu),
        EXACT, no_check, "x if x > 0 else weight * x (per channel: Params::Prelu)",
        grad(INPUT, EXACT, "1 if x > 0 else weight");
    /// max(0, x + std * N(0, 1)), the noise drawn per element from a counter-based
    /// generator keyed by (seed, element index)
    NoisyRelu: "noisy_relu" ("std" ~ 0.5, "seed" = 0.0) => Kernel::Random(RandomKind::NoisyRelu),
        EXACT, check_noisy, "max(0, x + std * N(0, 1)), seeded per element",
        grad(INPUT, EXACT, "1 if x + std * N(0, 1) > 0 else 0, the same draw");
    /// sqrt((x - c)^2 + a^2), a radial basis function
    Multiquadric: "multiquadric" ("c" = 0.0, "a" = 1.0) => ew("act_multiquadric",
        cpu::multiquadric, "grad_multiquadric", d::multiquadric), ulp(1, 1), no_check,
        "sqrt((x - c)^2 + a^2)", grad(INPUT, ulp(2, 2), "(x - c) / sqrt((x - c)^2 + a^2)");
    /// 1 / sqrt((x - c)^2 + a^2), a radial basis function
    InverseMultiquadric: "inverse_multiquadric" ("c" = 0.0, "a" = 1.0)
        => ew("act_inverse_multiquadric", cpu::inverse_multiquadric, "grad_inverse_multiquadric",
        d::inverse_multiquadric), ulp(1, 1), no_check, "1 / sqrt((x - c)^2 + a^2)",
        grad(INPUT, ulp(4, 4), "-(x - c) / ((x - c)^2 + a^2)^(3/2)");
    /// leaky_relu with slope (lower + upper) / 2 (evaluation mode)
    Rrelu: "rrelu" ["training" = "false"] ("lower" = 0.125, "upper" = 0.333_333_34)
        => ew("act_rrelu", cpu::rrelu, "grad_rrelu", d::rrelu), EXACT, check_ordered,
        "x if x >= 0 else x * (lower + upper) / 2 (evaluation mode)",
        grad(INPUT, EXACT, "1 if x > 0 else (lower + upper) / 2");
    /// x * a slope drawn uniformly from [lower, upper) per element, from a counter-based
    /// generator keyed by (seed, element index): the same bits on every adapter
    RreluTrain: "rrelu" ["training" = "true"] ("lower" = 0.125, "upper" = 0.333_333_34,
        "seed" = 0.0) => Kernel::Random(RandomKind::Rrelu), EXACT, check_rrelu_train,
        "x if x >= 0 else x * U(lower, upper), seeded per element (training mode)",
        grad(INPUT, EXACT, "1 if x > 0 else U(lower, upper), the same draw");
    /// the maximum of each group of k consecutive values along `dim`
    Maxout: "maxout" ("k" ~ 2.0, "dim" = -1.0) => group(GroupKind::Max), EXACT, check_k_dim,
        "max of each group of k consecutive values along dim",
        grad(INPUT, EXACT, "1 at the group's first maximum, 0 elsewhere");
    /// the maximum of each group of k (the seeds' folding activation)
    FoldMax: "fold_max" ("k" ~ 2.0, "dim" = -1.0) => group(GroupKind::Max), EXACT, check_k_dim,
        "max over groups of k along dim (folding)",
        grad(INPUT, EXACT, "1 at the group's first maximum, 0 elsewhere");
    /// the minimum of each group of k
    FoldMin: "fold_min" ("k" ~ 2.0, "dim" = -1.0) => group(GroupKind::Min), EXACT, check_k_dim,
        "min over groups of k along dim (folding)",
        grad(INPUT, EXACT, "1 at the group's first minimum, 0 elsewhere");
    /// the mean of each group of k
    FoldMean: "fold_mean" ("k" ~ 2.0, "dim" = -1.0) => group(GroupKind::Mean), ulp(2, 2),
        check_k_dim, "mean over groups of k along dim (folding)", grad(INPUT, ulp(1, 1), "1 / k");
    /// a * sigmoid(b), the axis split into halves a and b
    Glu: "glu" ("dim" = -1.0) => group(GroupKind::Glu), ulp(2, 2), check_dim,
        "a * sigmoid(b), dim split into halves a and b",
        grad(INPUT, ulp(3, 3), "sigmoid(b) for a; a sigmoid(b) sigmoid(-b) for b");
    /// silu(a) * b, the axis split into halves a and b (SwiGLU)
    SwiGlu: "swiglu" ("dim" = -1.0) => group(GroupKind::SwiGlu), ulp(3, 3), check_dim,
        "silu(a) * b, dim split into halves a and b",
        grad(INPUT, ulp_or(5, 6e-8), "b silu'(a) for a; silu(a) for b");
    /// gelu(a) * b (GeGLU)
    GeGlu: "geglu" ["approximate" = "none"] ("dim" = -1.0) => group(GroupKind::GeGlu), ulp(5, 5),
        check_dim, "gelu(a) * b, dim split into halves a and b",
        grad(INPUT, ulp_or(5, 1e-7), "b gelu'(a) for a; gelu(a) for b");
    /// gelu(a, approximate=tanh) * b
    GeGluTanh: "geglu" ["approximate" = "tanh"] ("dim" = -1.0) => group(GroupKind::GeGluTanh),
        ulp(5, 5), check_dim, "gelu_tanh(a) * b, dim split into halves a and b",
        grad(INPUT, ulp_or(5, 6e-8), "b gelu_tanh'(a) for a; gelu_tanh(a) for b");
    /// relu(a) * b (ReGLU)
    ReGlu: "reglu" ("dim" = -1.0) => group(GroupKind::ReGlu), EXACT, check_dim,
        "relu(a) * b, dim split into halves a and b",
        grad(INPUT, EXACT, "b if a > 0 else 0 for a; relu(a) for b");
    /// Dice from Deep Interest Network, training mode: per-feature batch mean and biased
    /// variance over dim 0
    Dice: "dice" ("alpha" ~ 0.25, "eps" = 1e-9) => Kernel::Dice, ROW, check_eps,
        "p * x + (1 - p) * alpha * x, p = sigmoid((x - mean) / sqrt(var + eps)), batch statistics over dim 0",
        grad(INPUT, ROW, "g (a + (1 - a) p) + (q - mean(q) - z mean(q z)) / s, q = g x (1 - a) p (1 - p), z = (x - mean) / s, s = sqrt(var + eps)");
    /// exp(x - max) / sum(exp(x - max)) along `dim`
    Softmax: "softmax" ("dim" = -1.0) => row(SoftmaxKind::Softmax), ROW, check_dim,
        "exp(x - max) / sum(exp(x - max)) along dim", grad(OUTPUT, ROW, "y (g - sum(g y))");
    /// x - max - log(sum(exp(x - max))) along `dim`
    LogSoftmax: "log_softmax" ("dim" = -1.0) => row(SoftmaxKind::LogSoftmax), ROW, check_dim,
        "x - max - log(sum(exp(x - max))) along dim", grad(OUTPUT, ROW, "g - exp(y) sum(g)");
    /// softmax(-x) along `dim`
    Softmin: "softmin" ("dim" = -1.0) => row(SoftmaxKind::Softmin), ROW, check_dim,
        "softmax(-x) along dim", grad(OUTPUT, ROW, "-y (g - sum(g y))");
}

impl OpInfo {
    /// Whether the op takes batch statistics first (`dice`).
    pub fn is_dice(&self) -> bool {
        matches!(self.kernel, Kernel::Dice)
    }
}

impl Op {
    /// This op's row in the table.
    pub fn info(self) -> &'static OpInfo {
        &OPS[self as usize]
    }

    /// The spec name (`"gelu"` for both GELU rows).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The WGSL function and CPU reference of an elementwise op; `None` for other families.
    pub fn elementwise(self) -> Option<(&'static str, CpuFn)> {
        match self.info().kernel {
            Kernel::Elementwise { wgsl, cpu, .. } => Some((wgsl, cpu)),
            _ => None,
        }
    }

    /// The WGSL backward and its f64 reference of an elementwise op; `None` for other
    /// families.
    pub fn elementwise_grad(self) -> Option<(&'static str, GradFn)> {
        match self.info().kernel {
            Kernel::Elementwise {
                grad_wgsl,
                grad_cpu,
                ..
            } => Some((grad_wgsl, grad_cpu)),
            _ => None,
        }
    }

    /// This op's backward: what it reads, its derivative and its bound.
    pub fn backward(self) -> &'static Backward {
        &self.info().backward
    }

    /// Which softmax-family op this is; `None` for other families.
    pub fn softmax(self) -> Option<SoftmaxKind> {
        match self.info().kernel {
            Kernel::Softmax(kind) => Some(kind),
            _ => None,
        }
    }

    /// Which grouped op this is; `None` for other families.
    pub fn grouped(self) -> Option<GroupKind> {
        match self.info().kernel {
            Kernel::Grouped(kind) => Some(kind),
            _ => None,
        }
    }

    /// Every grouped op, in table order.
    pub fn grouped_ops() -> impl Iterator<Item = Op> {
        Op::ALL.iter().copied().filter(|o| o.grouped().is_some())
    }

    /// Which random op this is; `None` for other families.
    pub fn random(self) -> Option<RandomKind> {
        match self.info().kernel {
            Kernel::Random(kind) => Some(kind),
            _ => None,
        }
    }

    /// Every elementwise op, in table order.
    pub fn elementwise_ops() -> impl Iterator<Item = Op> {
        Op::ALL
            .iter()
            .copied()
            .filter(|o| o.elementwise().is_some())
    }

    /// Every softmax-family op, in table order.
    pub fn softmax_ops() -> impl Iterator<Item = Op> {
        Op::ALL.iter().copied().filter(|o| o.softmax().is_some())
    }
}
