//! The op table: every activation declared once.
//!
//! A row names the op as PyTorch does, lists its parameters with PyTorch's names and
//! defaults, and points at its WGSL function (in `shaders/activations.wgsl`) and its CPU
//! reference (in [`crate::cpu`]). The [`Op`] enum, the spec parser, the pipeline keys, the
//! test lists and the README table are all derived from these rows, so adding an
//! activation is one row here, one WGSL function and one CPU function.

use crate::cpu;

/// How closely the GPU result must match the correctly rounded reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accuracy {
    /// Bit-identical to the correctly rounded result (piecewise-linear ops).
    Exact,
    /// At most `default` ULP with the default parameters and at most `any` ULP with any
    /// parameters (ops that scale their argument before a transcendental, such as
    /// `softplus(beta=2)`, round that product first).
    Ulp { default: u32, any: u32 },
}

impl Accuracy {
    /// The ULP bound that applies to an activation with these parameters.
    pub fn max_ulp(self, default_params: bool) -> u32 {
        match self {
            Accuracy::Exact => 0,
            Accuracy::Ulp { default, any } => {
                if default_params {
                    default
                } else {
                    any
                }
            }
        }
    }
}

/// One parameter: PyTorch's name and default (`None` when the value is required; in the
/// table a required parameter is written `"name" ~ sample`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    pub name: &'static str,
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
    /// The WGSL function in `shaders/activations.wgsl`.
    pub wgsl: &'static str,
    /// The f64 CPU reference: `f(x, params)`.
    pub cpu: fn(f64, &[f64]) -> f64,
    /// The accuracy this op is held to in the tests.
    pub accuracy: Accuracy,
    /// A parameter check beyond finiteness, returning what is wrong.
    pub check: fn(&[f32]) -> Result<(), String>,
}

/// At most this many parameters per op (they travel as one `vec4<f32>`).
pub const MAX_PARAMS: usize = 4;

fn no_check(_: &[f32]) -> Result<(), String> {
    Ok(())
}

fn check_nonzero_first(p: &[f32]) -> Result<(), String> {
    if p[0] == 0.0 {
        return Err("must not be 0 (it divides)".into());
    }
    Ok(())
}

fn check_lambd(p: &[f32]) -> Result<(), String> {
    if p[0] < 0.0 {
        return Err(format!("lambd must be >= 0, got {}", p[0]));
    }
    Ok(())
}

fn check_ordered(p: &[f32]) -> Result<(), String> {
    if p[0] > p[1] {
        return Err(format!(
            "the lower bound {} must not exceed the upper bound {}",
            p[0], p[1]
        ));
    }
    Ok(())
}

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
            => $wgsl:literal, $cpu:path, $accuracy:expr, $check:path, $formula:literal;
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
                wgsl: $wgsl,
                cpu: $cpu,
                accuracy: $accuracy,
                check: $check,
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
const fn ulp(default: u32, any: u32) -> Accuracy {
    Accuracy::Ulp { default, any }
}

op_table! {
    /// x
    Identity: "identity" () => "act_identity", cpu::identity, EXACT, no_check, "x";
    /// 1 for x >= 0, else 0 (numpy's `heaviside(x, 1)`)
    BinaryStep: "binary_step" () => "act_binary_step", cpu::binary_step, EXACT, no_check,
        "1 if x >= 0 else 0";
    /// 1 / (1 + exp(-x))
    Sigmoid: "sigmoid" () => "act_sigmoid", cpu::sigmoid, ulp(2, 2), no_check,
        "1 / (1 + exp(-x))";
    /// tanh(x)
    Tanh: "tanh" () => "act_tanh", cpu::tanh, ulp(2, 2), no_check, "tanh(x)";
    /// max(0, x)
    Relu: "relu" () => "act_relu", cpu::relu, EXACT, no_check, "max(0, x)";
    /// min(max(0, x), 6)
    Relu6: "relu6" () => "act_relu6", cpu::relu6, EXACT, no_check, "min(max(0, x), 6)";
    /// x if x > 0 else negative_slope * x
    LeakyRelu: "leaky_relu" ("negative_slope" = 0.01) => "act_leaky_relu", cpu::leaky_relu,
        EXACT, no_check, "x if x > 0 else negative_slope * x";
    /// x if x > 0 else alpha * (exp(x) - 1)
    Elu: "elu" ("alpha" = 1.0) => "act_elu", cpu::elu, ulp(2, 2), no_check,
        "x if x > 0 else alpha * (exp(x) - 1)";
    /// scale * elu(x, alpha) with PyTorch's fixed scale and alpha
    Selu: "selu" () => "act_selu", cpu::selu, ulp(2, 2), no_check,
        "scale * (x if x > 0 else alpha * (exp(x) - 1)), scale = 1.0507..., alpha = 1.6733...";
    /// max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    Celu: "celu" ("alpha" = 1.0) => "act_celu", cpu::celu, ulp(2, 2), check_nonzero_first,
        "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))";
    /// x * Phi(x), with the exact normal CDF
    Gelu: "gelu" ["approximate" = "none"] () => "act_gelu", cpu::gelu, ulp(4, 4), no_check,
        "x / 2 * (1 + erf(x / sqrt(2)))";
    /// x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
    GeluTanh: "gelu" ["approximate" = "tanh"] () => "act_gelu_tanh", cpu::gelu_tanh, ulp(4, 4),
        no_check, "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))";
    /// x * sigmoid(x)
    Silu: "silu" () => "act_silu", cpu::silu, ulp(2, 2), no_check, "x * sigmoid(x)";
    /// x * sigmoid(beta * x); beta = 1.702 is the sigmoid form of GELU
    Swish: "swish" ("beta" = 1.0) => "act_swish", cpu::swish, ulp(2, 4), no_check,
        "x * sigmoid(beta * x)";
    /// x * tanh(softplus(x))
    Mish: "mish" () => "act_mish", cpu::mish, ulp(4, 4), no_check, "x * tanh(softplus(x))";
    /// log(1 + exp(beta * x)) / beta, or x where beta * x > threshold
    Softplus: "softplus" ("beta" = 1.0, "threshold" = 20.0) => "act_softplus", cpu::softplus,
        ulp(2, 4), check_nonzero_first,
        "log(1 + exp(beta * x)) / beta, or x where beta * x > threshold";
    /// x / (1 + |x|)
    Softsign: "softsign" () => "act_softsign", cpu::softsign, ulp(2, 2), no_check,
        "x / (1 + |x|)";
    /// min(max(0, x + 3), 6) / 6
    Hardsigmoid: "hardsigmoid" () => "act_hardsigmoid", cpu::hardsigmoid, ulp(2, 2), no_check,
        "min(max(0, x + 3), 6) / 6";
    /// x * min(max(0, x + 3), 6) / 6
    Hardswish: "hardswish" () => "act_hardswish", cpu::hardswish, ulp(2, 2), no_check,
        "x * min(max(0, x + 3), 6) / 6";
    /// min(max(min_val, x), max_val)
    Hardtanh: "hardtanh" ("min_val" = -1.0, "max_val" = 1.0) => "act_hardtanh", cpu::hardtanh,
        EXACT, check_ordered, "min(max(min_val, x), max_val)";
    /// log(sigmoid(x)) = -softplus(-x)
    Logsigmoid: "logsigmoid" () => "act_logsigmoid", cpu::logsigmoid, ulp(2, 2), no_check,
        "log(1 / (1 + exp(-x)))";
    /// x - tanh(x)
    Tanhshrink: "tanhshrink" () => "act_tanhshrink", cpu::tanhshrink, ulp(2, 2), no_check,
        "x - tanh(x)";
    /// x - lambd if x > lambd, x + lambd if x < -lambd, else 0
    Softshrink: "softshrink" ("lambd" = 0.5) => "act_softshrink", cpu::softshrink, EXACT,
        check_lambd, "x - lambd if x > lambd, x + lambd if x < -lambd, else 0";
    /// x if |x| > lambd else 0
    Hardshrink: "hardshrink" ("lambd" = 0.5) => "act_hardshrink", cpu::hardshrink, EXACT,
        check_lambd, "x if |x| > lambd else 0";
    /// x if x > threshold else value (both required)
    Threshold: "threshold" ("threshold" ~ 0.5, "value" ~ -2.0) => "act_threshold",
        cpu::threshold, EXACT, no_check, "x if x > threshold else value";
    /// exp(-x^2)
    Gaussian: "gaussian" () => "act_gaussian", cpu::gaussian, ulp(4, 4), no_check,
        "exp(-x^2)";
    /// leaky_relu with slope (lower + upper) / 2 (evaluation mode)
    Rrelu: "rrelu" ("lower" = 0.125, "upper" = 0.333_333_34) => "act_rrelu", cpu::rrelu,
        EXACT, check_ordered, "x if x >= 0 else x * (lower + upper) / 2 (evaluation mode)";
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
}
