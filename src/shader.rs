//! WGSL sources: the shared scalar library plus one template per kernel family, and naga
//! validation of every variant (no GPU needed).

use crate::cache::{Entry, Layout};
use crate::op::{GroupKind, Op, RandomKind, SoftmaxKind};
use crate::{Error, Result, Storage};

/// The scalar activation functions every kernel family calls.
pub const ACTIVATIONS_WGSL: &str = include_str!("../shaders/activations.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../shaders/elementwise.wgsl");
const SOFTMAX_WGSL: &str = include_str!("../shaders/softmax.wgsl");
const SOFTMAX_SUBGROUP_WGSL: &str = include_str!("../shaders/softmax_subgroup.wgsl");
const GROUPED_WGSL: &str = include_str!("../shaders/grouped.wgsl");
const PRELU_WGSL: &str = include_str!("../shaders/prelu.wgsl");
const PRELU_BACKWARD_WGSL: &str = include_str!("../shaders/prelu_backward.wgsl");
const DICE_BACKWARD_WGSL: &str = include_str!("../shaders/dice_backward.wgsl");
const RANDOM_WGSL: &str = include_str!("../shaders/random.wgsl");
const RANDOM_FORWARD_WGSL: &str = include_str!("../shaders/random_forward.wgsl");
const RANDOM_BACKWARD_WGSL: &str = include_str!("../shaders/random_backward.wgsl");
const DICE_WGSL: &str = include_str!("../shaders/dice.wgsl");
/// The f16 and bf16 conversions (modules for half storage only).
pub(crate) const STORAGE_WGSL: &str = include_str!("../shaders/storage.wgsl");
/// The elementwise ops' backward functions.
pub const GRADIENTS_WGSL: &str = include_str!("../shaders/gradients.wgsl");
const BACKWARD_WGSL: &str = include_str!("../shaders/backward.wgsl");
const GROUPED_BACKWARD_WGSL: &str = include_str!("../shaders/grouped_backward.wgsl");
const SOFTMAX_BACKWARD_WGSL: &str = include_str!("../shaders/softmax_backward.wgsl");
const SOFTMAX_BACKWARD_SUBGROUP_WGSL: &str =
    include_str!("../shaders/softmax_backward_subgroup.wgsl");
/// Workgroup reductions through a shared-memory tree (any adapter).
pub(crate) const REDUCE_TREE_WGSL: &str = include_str!("../shaders/reduce_tree.wgsl");
/// Workgroup reductions with subgroup operations (adapters with `Features::SUBGROUP`).
pub(crate) const REDUCE_SUBGROUP_WGSL: &str = include_str!("../shaders/reduce_subgroup.wgsl");
/// Reductions built on either flavour (the compensated sum).
pub(crate) const REDUCE_COMMON_WGSL: &str = include_str!("../shaders/reduce_common.wgsl");

/// Contiguous vec4s each invocation of the elementwise kernel takes per grid step (the
/// body below is written out for 4).
pub(crate) const VEC4S_PER_INVOCATION: u32 = 4;

/// Elements each invocation holds in registers in the resident softmax strategy.
pub(crate) const RESIDENT_K: u32 = 16;

/// The most vec4s each invocation holds in the registers softmax strategy (32 f32: more
/// spilled to memory on an H100 in the evidence's plain-WGSL probe, which held 64).
pub(crate) const REGISTER_VEC4S: u32 = 8;

/// f16's conversions, as every f16 module is generated: the integer ones of storage.wgsl.
const F16_CONVERSIONS: &str = "fn decode(h: u32) -> f32 { return f16_to_f32(h); }
fn encode(x: f32) -> u32 { return f32_to_f16(x); }
fn decode2(w: u32) -> vec2<f32> { return vec2<f32>(f16_to_f32(w & 0xffffu), f16_to_f32(w >> 16u)); }
fn encode2(v: vec2<f32>) -> u32 { return f32_to_f16(v.x) | (f32_to_f16(v.y) << 16u); }";

/// f16's conversions through WGSL's builtins, which a context swaps in for
/// [`F16_CONVERSIONS`] where its probe found them exact (they need wgpu's
/// `SHADER_F16_IN_F32` downlevel capability, so a portable module cannot name them).
pub(crate) const F16_BUILTIN_CONVERSIONS: &str =
    "fn decode(h: u32) -> f32 { return unpack2x16float(h).x; }
fn encode(x: f32) -> u32 { return pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu; }
fn decode2(w: u32) -> vec2<f32> { return unpack2x16float(w); }
fn encode2(v: vec2<f32>) -> u32 { return pack2x16float(v); }";

/// An f16 module with the builtin conversions in place of the integer ones (the same
/// module otherwise: the prelude emits [`F16_CONVERSIONS`] once, verbatim).
pub(crate) fn with_builtin_f16(source: String) -> String {
    assert!(
        source.contains(F16_CONVERSIONS),
        "an f16 module holds the integer conversions to swap"
    );
    source.replacen(F16_CONVERSIONS, F16_BUILTIN_CONVERSIONS, 1)
}

/// bf16's conversions (no builtin converts bf16).
const BF16_CONVERSIONS: &str = "fn decode(h: u32) -> f32 { return bf16_to_f32(h); }
fn encode(x: f32) -> u32 { return f32_to_bf16(x); }
fn decode2(w: u32) -> vec2<f32> { return vec2<f32>(bf16_to_f32(w & 0xffffu), bf16_to_f32(w >> 16u)); }
fn encode2(v: vec2<f32>) -> u32 { return f32_to_bf16(v.x) | (f32_to_bf16(v.y) << 16u); }";

/// The generated head of a module: the constants its shader reads and the wrapper
/// functions that name what varies between variants (the activation, the binding the
/// input is read through). It is the one way WGSL is assembled here: the shader files
/// hold no placeholder tokens, only names this prelude defines.
struct Prelude(String, Storage);

impl Prelude {
    /// Every module's constants (the workgroup size, and the tuning constants some
    /// kernels size their arrays and loops with) and its tensors' bindings: `src` (0,
    /// read-only) and `dst` (1), holding `storage` elements.
    fn new(workgroup_size: u32, storage: Storage) -> Self {
        let prelude = Prelude(
            format!(
                "// generated by wgpu-activations (src/shader.rs)\n\
             const WORKGROUP_SIZE: u32 = {workgroup_size}u;\n\
             const VEC4S_PER_INVOCATION: u32 = {VEC4S_PER_INVOCATION}u;\n\
             const RESIDENT_K: u32 = {RESIDENT_K}u;\n\
             const REGISTER_VEC4S: u32 = {REGISTER_VEC4S}u;\n"
            ),
            storage,
        );
        let prelude = match storage {
            Storage::F32 => prelude,
            Storage::F16 => prelude.line(F16_CONVERSIONS),
            Storage::Bf16 => prelude.line(BF16_CONVERSIONS),
        };
        prelude
            .tensor("src", 0, false)
            .tensor("dst", 1, true)
            .storage_library()
    }

    /// The declarations of tensor binding `name` and its accessors, which every kernel
    /// goes through: `NAME_load(k)` (element k, as f32), `NAME_load4(j)` (elements 4j to
    /// 4j + 3), and when `writable`, `NAME_store(k, v)` and `NAME_store4(j, v)`. f16 and
    /// bf16 elements are halves of u32 words: a single element is stored with two atomic
    /// operations on its half of the word (an invocation writing the other half, in this
    /// tensor or a neighbour's, is never overwritten); four aligned ones as two whole words.
    fn tensor(self, name: &str, binding: u32, writable: bool) -> Self {
        let access = if writable { "read_write" } else { "read" };
        let var = |alias: &str, ty: &str| {
            format!(
                "@group(0) @binding({binding}) var<storage, {access}> {name}{alias}: array<{ty}>;"
            )
        };
        // An entry point may use one view of a binding: a writable half tensor's single
        // elements go through the atomic view, its blocks of four (never mixed with them in
        // one entry point) through whole words.
        let (views, load, load4, store, store4) = match (self.1.is_half(), writable) {
            (false, _) => (
                [var("", "f32"), var("_v4", "vec4<f32>")],
                format!("{name}[k]"),
                format!("{name}_v4[j]"),
                format!("{name}[k] = v;"),
                format!("{name}_v4[j] = v;"),
            ),
            (true, atomic) => (
                [
                    var("_w2", "vec2<u32>"),
                    if atomic {
                        var("_atomic", "atomic<u32>")
                    } else {
                        var("_w", "u32")
                    },
                ],
                if atomic {
                    format!("decode(half_bits(atomicLoad(&{name}_atomic[k >> 1u]), k))")
                } else {
                    format!("decode(half_bits({name}_w[k >> 1u], k))")
                },
                format!("decode4({name}_w2[j])"),
                format!(
                    "let shift = (k & 1u) * 16u;\n    \
                     atomicAnd(&{name}_atomic[k >> 1u], ~(0xffffu << shift));\n    \
                     atomicOr(&{name}_atomic[k >> 1u], encode(v) << shift);"
                ),
                format!("{name}_w2[j] = encode4(v);"),
            ),
        };
        let mut lines = views.to_vec();
        lines.push(format!(
            "fn {name}_load(k: u32) -> f32 {{ return {load}; }}"
        ));
        lines.push(format!(
            "fn {name}_load4(j: u32) -> vec4<f32> {{ return {load4}; }}"
        ));
        if writable {
            lines.push(format!(
                "fn {name}_store(k: u32, v: f32) {{\n    {store}\n}}"
            ));
            lines.push(format!(
                "fn {name}_store4(j: u32, v: vec4<f32>) {{ {store4} }}"
            ));
        }
        lines.iter().fold(self, |p, l| p.line(l))
    }

    /// The half conversions, for half storage.
    fn storage_library(self) -> Self {
        if self.1.is_half() {
            self.line(STORAGE_WGSL)
        } else {
            self
        }
    }

    fn line(mut self, line: &str) -> Self {
        self.0.push_str(line);
        self.0.push('\n');
        self
    }

    /// `const NAME: u32 = VALUE;`
    fn id(self, name: &str, value: u32) -> Self {
        self.line(&format!("const {name}: u32 = {value}u;"))
    }

    /// `fn load_in(k)`: element `k` of the input from the uniform block `uniforms`'
    /// `in_offset`, through `src`, or through `dst` when the input shares the output's
    /// binding (in place: one buffer may not be bound read-only and writable at once);
    /// `fn load_in4(j)`: its elements 4j to 4j + 3, for an `in_offset` that is a multiple
    /// of 4.
    fn input(self, layout: Layout, uniforms: &str) -> Self {
        let binding = input_binding(layout);
        self.line(&format!(
            "fn load_in(k: u32) -> f32 {{ return {binding}_load({uniforms}.in_offset + k); }}"
        ))
        .line(&format!(
            "fn load_in4(j: u32) -> vec4<f32> {{ return {binding}_load4({uniforms}.in_offset / 4u + j); }}"
        ))
    }

    /// `fn load_saved{suffix}(k)` and `fn load_grad{suffix}(k)`: a backward kernel's
    /// inputs, each through the binding `layout` names (`suffix` "4" for vec4s, "" for
    /// elements), after the declaration of `aux` (binding 3, read-only) when `suffix` is "".
    fn backward_inputs(mut self, layout: Layout, suffix: &str) -> Self {
        let Layout::Backward { saved, grad } = layout else {
            panic!("a backward kernel needs a backward layout, got {layout:?}");
        };
        if suffix.is_empty() {
            self = self.tensor("aux", 3, false);
        }
        let ty = if suffix == "4" { "vec4<f32>" } else { "f32" };
        for (role, via) in [("saved", saved), ("grad", grad)] {
            let b = via.wgsl();
            self = self.line(&format!(
                "fn load_{role}{suffix}(k: u32) -> {ty} {{ return {b}_load{suffix}(k); }}"
            ));
        }
        self
    }

    /// The module: this prelude, the shared scalar library, then `parts` in order.
    fn assemble(self, parts: &[&str]) -> String {
        let mut out = self.0;
        out.push_str(ACTIVATIONS_WGSL);
        for part in parts {
            out.push('\n');
            out.push_str(part);
        }
        out
    }
}

/// The binding a forward kernel's input is read through (a backward layout's saved
/// tensor's, for the families whose backward reads one input like a forward).
fn input_binding(layout: Layout) -> &'static str {
    match layout {
        Layout::Separate => "src",
        Layout::Shared => "dst",
        Layout::Backward { saved, .. } => saved.wgsl(),
    }
}

/// The complete WGSL of the elementwise kernel for `op`, as the pipeline cache compiles it.
///
/// # Panics
/// If `op` is not an elementwise op.
pub fn elementwise_source(op: Op, layout: Layout, workgroup_size: u32, storage: Storage) -> String {
    let (wgsl, _) = op
        .elementwise()
        .expect("elementwise_source needs an elementwise op");
    let binding = input_binding(layout);
    Prelude::new(workgroup_size, storage)
        .line(&format!(
            "fn apply(x: f32) -> f32 {{ return pass_nan(x, {wgsl}(x, params.p)); }}"
        ))
        .line(&format!(
            "fn load4(j: u32) -> vec4<f32> {{ return {binding}_load4(j); }}"
        ))
        .line(&format!(
            "fn load1(j: u32) -> f32 {{ return {binding}_load(j); }}"
        ))
        .assemble(&[ELEMENTWISE_WGSL])
}

/// The complete WGSL of the elementwise backward kernel for `op`, with its inputs read
/// through the bindings `layout` names.
///
/// # Panics
/// If `op` is not an elementwise op or `layout` not a backward one.
pub fn backward_source(op: Op, layout: Layout, workgroup_size: u32, storage: Storage) -> String {
    let (wgsl, _) = op
        .elementwise_grad()
        .expect("backward_source needs an elementwise op");
    Prelude::new(workgroup_size, storage)
        .line(&format!(
            "fn grad_apply(s: f32, g: f32) -> f32 {{ return {wgsl}(s, g, params.p); }}"
        ))
        .backward_inputs(layout, "4")
        .backward_inputs(layout, "")
        .assemble(&[GRADIENTS_WGSL, BACKWARD_WGSL])
}

/// The complete WGSL of the softmax-family backward kernels for `op` (every strategy's
/// entry point), its inputs read through the bindings `layout` names.
///
/// # Panics
/// If `op` is not a softmax-family op or `layout` not a backward one.
pub fn softmax_backward_source(
    op: Op,
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    let kind = op
        .softmax()
        .expect("softmax_backward_source needs a softmax-family op");
    let prelude =
        softmax_consts(Prelude::new(workgroup_size, storage), kind).backward_inputs(layout, "");
    prelude.assemble(&[
        &reduce_wgsl(subgroups),
        SOFTMAX_BACKWARD_WGSL,
        if subgroups {
            SOFTMAX_BACKWARD_SUBGROUP_WGSL
        } else {
            ""
        },
    ])
}

/// The softmax family's constants: `SIGN` (-1 for softmin, softmax of -x) and
/// `LOG_OUTPUT` (log_softmax).
fn softmax_consts(prelude: Prelude, kind: SoftmaxKind) -> Prelude {
    let sign = if kind == SoftmaxKind::Softmin {
        -1.0
    } else {
        1.0
    };
    prelude
        .line(&format!("const SIGN: f32 = {sign:?};"))
        .line(&format!(
            "const LOG_OUTPUT: bool = {};",
            kind == SoftmaxKind::LogSoftmax
        ))
}

/// The complete WGSL of the softmax-family kernels for `op` (every strategy's entry
/// point), with subgroup or shared-memory-tree reductions.
///
/// # Panics
/// If `op` is not a softmax-family op.
pub fn softmax_source(
    op: Op,
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    let kind = op
        .softmax()
        .expect("softmax_source needs a softmax-family op");
    // naga 30 takes subgroup operations without `enable subgroups;` (which it rejects as
    // not yet implemented); wgpu gates them on `Features::SUBGROUP` instead.
    softmax_consts(Prelude::new(workgroup_size, storage), kind)
        .input(layout, "shape")
        .assemble(&[
            &reduce_wgsl(subgroups),
            SOFTMAX_WGSL,
            if subgroups { SOFTMAX_SUBGROUP_WGSL } else { "" },
        ])
}

/// The complete WGSL of the grouped kernel for `op` (maxout, folding, glu).
///
/// # Panics
/// If `op` is not a grouped op.
pub fn grouped_source(op: Op, workgroup_size: u32, storage: Storage, subgroups: bool) -> String {
    let kind = op.grouped().expect("grouped_source needs a grouped op");
    group_ids(Prelude::new(workgroup_size, storage), kind)
        .assemble(&[&reduce_wgsl(subgroups), GROUPED_WGSL])
}

/// The grouped kernels' ids: every kind's and this module's.
fn group_ids(prelude: Prelude, kind: GroupKind) -> Prelude {
    // the gated units' gate: the op table's WGSL function of their gate op (identity for
    // the other kinds, whose shaders never call it)
    let (gate, _) = kind
        .gate()
        .unwrap_or(Op::Identity)
        .elementwise()
        .expect("a gate is an elementwise op");
    prelude
        .id("GROUP_MAX", GroupKind::Max.id())
        .id("GROUP_MIN", GroupKind::Min.id())
        .id("GROUP_MEAN", GroupKind::Mean.id())
        .id("GROUP_GLU", GroupKind::Glu.id())
        .id("GROUP_KIND", kind.id())
        .line(&format!("const GATED: bool = {};", kind.gate().is_some()))
        .line(&format!(
            "fn gate(a: f32) -> f32 {{ return {gate}(a, vec4<f32>(0.0)); }}"
        ))
}

/// The complete WGSL of the grouped ops' backward kernels for `op`, its inputs read
/// through the bindings `layout` names.
///
/// # Panics
/// If `op` is not a grouped op or `layout` not a backward one.
pub fn grouped_backward_source(
    op: Op,
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    let kind = op
        .grouped()
        .expect("grouped_backward_source needs a grouped op");
    let gate = kind.gate().unwrap_or(Op::Identity);
    let (grad, _) = gate
        .elementwise_grad()
        .expect("a gate is an elementwise op");
    group_ids(Prelude::new(workgroup_size, storage), kind)
        .line(&format!(
            "fn gate_grad(a: f32, g: f32) -> f32 {{ return {grad}(a, g, vec4<f32>(0.0)); }}"
        ))
        .backward_inputs(layout, "")
        .assemble(&[
            GRADIENTS_WGSL,
            &reduce_wgsl(subgroups),
            GROUPED_BACKWARD_WGSL,
        ])
}

/// The workgroup reductions, with subgroup operations or through a shared-memory tree,
/// and those built on either.
fn reduce_wgsl(subgroups: bool) -> String {
    let flavour = if subgroups {
        REDUCE_SUBGROUP_WGSL
    } else {
        REDUCE_TREE_WGSL
    };
    format!("{flavour}\n{REDUCE_COMMON_WGSL}")
}

/// The complete WGSL of the per-channel PReLU kernel.
pub fn prelu_source(layout: Layout, workgroup_size: u32, storage: Storage) -> String {
    Prelude::new(workgroup_size, storage)
        .input(layout, "prelu_u")
        .assemble(&[PRELU_WGSL])
}

/// The complete WGSL of PReLU's per-channel backward kernels (grad_input with partial
/// weight sums, then the weight gradient), its inputs read through `layout`'s bindings.
pub fn prelu_backward_source(
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    Prelude::new(workgroup_size, storage)
        .backward_inputs(layout, "")
        .assemble(&[GRADIENTS_WGSL, &reduce_wgsl(subgroups), PRELU_BACKWARD_WGSL])
}

/// The complete WGSL of dice's backward kernels, its inputs read through `layout`'s
/// bindings.
pub fn dice_backward_source(
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    Prelude::new(workgroup_size, storage)
        .backward_inputs(layout, "")
        .assemble(&[GRADIENTS_WGSL, &reduce_wgsl(subgroups), DICE_BACKWARD_WGSL])
}

/// The complete WGSL of a random op's kernel.
///
/// # Panics
/// If `op` is not a random op.
pub fn random_source(op: Op, layout: Layout, workgroup_size: u32, storage: Storage) -> String {
    let kind = op.random().expect("random_source needs a random op");
    random_ids(Prelude::new(workgroup_size, storage), kind)
        .input(layout, "random_u")
        .assemble(&[RANDOM_WGSL, RANDOM_FORWARD_WGSL])
}

/// The complete WGSL of a random op's backward kernel, its inputs read through the
/// bindings `layout` names.
///
/// # Panics
/// If `op` is not a random op or `layout` not a backward one.
pub fn random_backward_source(
    op: Op,
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
) -> String {
    let kind = op
        .random()
        .expect("random_backward_source needs a random op");
    random_ids(Prelude::new(workgroup_size, storage), kind)
        .backward_inputs(layout, "")
        .assemble(&[RANDOM_WGSL, RANDOM_BACKWARD_WGSL])
}

/// The random kernels' ids: every kind's and this module's.
fn random_ids(prelude: Prelude, kind: RandomKind) -> Prelude {
    prelude
        .id("RANDOM_RRELU", RandomKind::Rrelu.id())
        .id("RANDOM_NOISY_RELU", RandomKind::NoisyRelu.id())
        .id("RANDOM_KIND", kind.id())
}

/// The WGSL of the module holding `entry` for `op` with this layout: one exhaustive match
/// on the entry point, which names its family's shader.
pub(crate) fn module_source(
    op: Op,
    layout: Layout,
    entry: Entry,
    workgroup_size: u32,
    storage: Storage,
) -> String {
    let subgroups = entry.subgroups();
    match entry {
        Entry::Vec4 | Entry::Scalar => elementwise_source(op, layout, workgroup_size, storage),
        Entry::GradVec4 | Entry::GradScalar => backward_source(op, layout, workgroup_size, storage),
        Entry::GradRow { .. } => {
            softmax_backward_source(op, layout, workgroup_size, storage, subgroups)
        }
        Entry::GradRandom => random_backward_source(op, layout, workgroup_size, storage),
        Entry::GradDiceColumn { .. }
        | Entry::GradDiceColumnWg { .. }
        | Entry::GradDiceApply { .. } => {
            dice_backward_source(layout, workgroup_size, storage, subgroups)
        }
        Entry::GradPrelu { .. } | Entry::GradPreluWeight { .. } => {
            prelu_backward_source(layout, workgroup_size, storage, subgroups)
        }
        Entry::GradGrouped { .. } | Entry::GradGroupedWg { .. } => {
            grouped_backward_source(op, layout, workgroup_size, storage, subgroups)
        }
        Entry::Prelu => prelu_source(layout, workgroup_size, storage),
        Entry::Row { .. } => softmax_source(op, layout, workgroup_size, storage, subgroups),
        Entry::Grouped | Entry::GroupedWg { .. } => {
            grouped_source(op, workgroup_size, storage, subgroups)
        }
        Entry::Random => random_source(op, layout, workgroup_size, storage),
        Entry::DiceStats { .. } | Entry::DiceApply | Entry::DiceEval | Entry::DiceApplyAlpha => {
            dice_source(layout, workgroup_size, storage, subgroups)
        }
    }
}

/// The complete WGSL of dice's kernels (statistics, elementwise pass, evaluation mode).
pub fn dice_source(
    layout: Layout,
    workgroup_size: u32,
    storage: Storage,
    subgroups: bool,
) -> String {
    Prelude::new(workgroup_size, storage)
        .input(layout, "dice_u")
        .assemble(&[&reduce_wgsl(subgroups), DICE_WGSL])
}

/// The WGSL this crate compiles for `op`'s main entry point with this layout (and
/// reduction flavour, for the families that reduce).
pub fn source(
    op: Op,
    layout: Layout,
    workgroup_size: u32,
    subgroups: bool,
    storage: Storage,
) -> String {
    let pipelines = crate::cache::pipelines(op, subgroups);
    let pick = |flavour: bool| {
        pipelines
            .iter()
            .find(|(l, e)| *l == layout && (!flavour || e.subgroups() == subgroups))
    };
    let &(layout, entry) = pick(true)
        .or_else(|| pick(false))
        .or(pipelines.first())
        .expect("every family compiles at least one pipeline");
    module_source(op, layout, entry, workgroup_size, storage)
}

/// Parses and validates WGSL with naga, as wgpu would before compiling it.
pub fn validate_wgsl(source: &str) -> Result<()> {
    validate_with(source, naga::valid::Capabilities::SUBGROUP)
}

/// [`validate_wgsl`] for an adapter with `capabilities`.
fn validate_with(source: &str, capabilities: naga::valid::Capabilities) -> Result<()> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| Error::Shader {
        report: format!("WGSL parse error: {}", e.emit_to_string(source)),
        source: Box::new(e),
    })?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .map_err(|e| Error::Shader {
            report: format!("WGSL validation error: {}", e.emit_to_string(source)),
            source: Box::new(e.into_inner()),
        })?;
    Ok(())
}

/// Validates every shader module this crate can compile, for every op, layout, storage
/// type (f16 with either conversion) and reduction flavour (the modules [`crate::Context::warm_up`] compiles, with and without
/// subgroups), each once.
pub fn validate_all(workgroup_size: u32) -> Result<()> {
    for &op in Op::ALL {
        let mut seen = std::collections::HashSet::new();
        for subgroups in [false, true] {
            let forward = crate::cache::pipelines(op, subgroups);
            let backward = crate::cache::backward_pipelines(op, subgroups);
            let modules = forward.into_iter().chain(backward);
            for ((layout, entry), storage) in modules.flat_map(|m| Storage::ALL.map(|s| (m, s))) {
                let source = module_source(op, layout, entry, workgroup_size, storage);
                if !seen.insert(source.clone()) {
                    continue;
                }
                let builtin = (storage == Storage::F16).then(|| with_builtin_f16(source.clone()));
                let f16_in_f32 = naga::valid::Capabilities::SUBGROUP
                    | naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
                validate_wgsl(&source)
                    .and_then(|()| builtin.map_or(Ok(()), |b| validate_with(&b, f16_in_f32)))
                    .map_err(|e| match e {
                        Error::Shader { report, source } => Error::Shader {
                            report: format!(
                                "{} ({layout:?}, {entry:?}, {storage}): {report}",
                                op.name()
                            ),
                            source,
                        },
                        other => other,
                    })?;
            }
        }
    }
    Ok(())
}
