//! The kernel families, one file each, forward and backward side by side. A family is
//! data plus one function: its shader modules and entry points ([`Module`], [`Entry`]),
//! the pipelines it compiles, and `plan`, which reads a call, cuts it through the
//! executor ([`crate::exec::Planner::cut`]) and returns its [`Launch`]. It never records
//! anything itself.
//!
//! [`FAMILIES`] is the registry: one row per family, saying which ops (and parameter
//! tensors) it serves.

use crate::device::layout::{Group1, Layout};
use crate::device::wgsl::ModuleSpec;
use crate::exec::{CallArgs, Launch, ParamArgs, Planner};
use crate::op::Op;
use crate::{Direction, Error, Result, Storage, Strategy};

/// A family's shader module for one direction: its name (in pipeline labels and module
/// keys), how to assemble its WGSL for a [`ModuleSpec`], and the uniform block its entry
/// points read (checked against the WGSL struct by [`crate::shader::validate_all`]).
#[derive(Debug)]
pub(crate) struct Module {
    pub(crate) name: &'static str,
    pub(crate) source: fn(&ModuleSpec) -> String,
    pub(crate) uniforms: &'static UniformBlock,
}

impl Module {
    pub(crate) const fn new(
        name: &'static str,
        source: fn(&ModuleSpec) -> String,
        uniforms: &'static UniformBlock,
    ) -> Self {
        Module {
            name,
            source,
            uniforms,
        }
    }
}

/// One WGSL entry point: the module holding it, its name, its bind group 1, and whether
/// it needs subgroup operations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) module: &'static Module,
    pub(crate) name: &'static str,
    pub(crate) group1: Group1,
    pub(crate) subgroups: bool,
}

impl Entry {
    /// An entry point that runs on any adapter.
    pub(crate) const fn new(module: &'static Module, name: &'static str, group1: Group1) -> Self {
        Entry {
            module,
            name,
            group1,
            subgroups: false,
        }
    }

    /// This entry point, which needs subgroup operations.
    pub(crate) const fn with_subgroups(self) -> Self {
        Entry {
            subgroups: true,
            ..self
        }
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.module.name, self.name, self.group1) == (other.module.name, other.name, other.group1)
    }
}

impl Eq for Entry {}

impl std::hash::Hash for Entry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.module.name, self.name, self.group1).hash(state);
    }
}

/// A uniform block as its family fills it: the WGSL struct's name, and each Rust field's
/// name, byte offset and size (from [`uniforms!`]).
#[derive(Debug)]
pub(crate) struct UniformBlock {
    pub(crate) wgsl: &'static str,
    pub(crate) fields: &'static [(&'static str, usize, usize)],
    pub(crate) size: usize,
}

/// Declares a family's uniform block once, as the `#[repr(C)]` struct it fills, with the
/// [`UniformBlock`] that the naga check compares with the WGSL struct of that name (member
/// names, offsets and sizes, and the whole size), so a field added on one side only
/// fails `validate_all`.
macro_rules! uniforms {
    ($(#[$meta:meta])* struct $name:ident = $wgsl:literal { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty),*
        }

        impl $name {
            pub(crate) const BLOCK: $crate::families::UniformBlock = $crate::families::UniformBlock {
                wgsl: $wgsl,
                fields: &[$((
                    stringify!($field),
                    std::mem::offset_of!($name, $field),
                    std::mem::size_of::<$ty>(),
                )),*],
                size: std::mem::size_of::<$name>(),
            };

            /// The block's bytes.
            pub(crate) fn bytes(&self) -> Vec<u8> {
                bytemuck::bytes_of(self).to_vec()
            }
        }
    };
}

mod bias;
mod dice;
mod elementwise;
mod export;
mod grouped;
mod prelu;
mod random;
pub(crate) mod softmax;
pub(crate) mod softmax_strategy;

impl UniformBlock {
    /// An error unless `module` declares a struct of this block's name with the same
    /// members at the same offsets and sizes, and the same size.
    pub(crate) fn check(&self, module: &naga::Module) -> std::result::Result<(), String> {
        let found = module.types.iter().find_map(|(_, ty)| match &ty.inner {
            naga::TypeInner::Struct { members, span } if ty.name.as_deref() == Some(self.wgsl) => {
                Some((members, *span))
            }
            _ => None,
        });
        let Some((members, span)) = found else {
            return Err(format!("the module declares no struct {}", self.wgsl));
        };
        let gctx = module.to_ctx();
        let wgsl: Vec<(String, usize, usize)> = members
            .iter()
            .map(|m| {
                let size = module.types[m.ty].inner.size(gctx) as usize;
                (m.name.clone().unwrap_or_default(), m.offset as usize, size)
            })
            .collect();
        let rust: Vec<(String, usize, usize)> = self
            .fields
            .iter()
            .map(|&(n, o, s)| (n.to_string(), o, s))
            .collect();
        if wgsl != rust || span as usize != self.size {
            return Err(format!(
                "the WGSL struct {} ({span} bytes: {wgsl:?}) and the Rust block that fills it \
                 ({} bytes: {rust:?}) differ",
                self.wgsl, self.size
            ));
        }
        Ok(())
    }
}

/// How a family plans one call.
pub(crate) type PlanFn = for<'c, 'a> fn(&mut Planner<'c, 'a>) -> Result<Launch<'a>>;

/// The entry points a family compiles in one direction, each for each of the layouts.
pub(crate) struct Compiled {
    pub(crate) layouts: &'static [Layout],
    pub(crate) entries: &'static [Entry],
}

impl Compiled {
    /// Every entry point for a forward's layouts: the input through its own binding, or
    /// in place.
    pub(crate) const fn forward(entries: &'static [Entry]) -> Self {
        Compiled {
            layouts: &Layout::FORWARD,
            entries,
        }
    }

    /// Every entry point for every backward layout.
    pub(crate) const fn backward(entries: &'static [Entry]) -> Self {
        Compiled {
            layouts: &Layout::BACKWARD,
            entries,
        }
    }
}

/// The parameter tensors a call may bring (the kinds of [`crate::Params`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamKind {
    Prelu,
    DiceTrain,
    DiceEval,
    Bias,
}

impl ParamKind {
    pub(crate) fn of(params: Option<&ParamArgs<'_>>) -> Option<ParamKind> {
        params.map(|p| match p {
            ParamArgs::Prelu(_) => ParamKind::Prelu,
            ParamArgs::DiceTrain(_) => ParamKind::DiceTrain,
            ParamArgs::DiceEval(_) => ParamKind::DiceEval,
            ParamArgs::Bias { .. } => ParamKind::Bias,
        })
    }
}

/// One row of the registry: a family as data, and its plan.
pub(crate) struct Family {
    /// Whether it runs `op` with these parameter tensors.
    pub(crate) serves: fn(Op, Option<ParamKind>) -> bool,
    pub(crate) plan: PlanFn,
    /// The pipelines it compiles in each direction (an entry point that needs subgroups
    /// only where the device has them).
    pub(crate) forward: &'static [Compiled],
    pub(crate) backward: &'static [Compiled],
    /// Whether a call may choose its [`Strategy`].
    pub(crate) strategies: bool,
    /// Whether a forward call may write a second output (`Call::aux_output`).
    pub(crate) extra_output: bool,
}

/// Every family: the one list a new family joins.
pub(crate) const FAMILIES: &[Family] = &[
    elementwise::FAMILY,
    bias::FAMILY,
    prelu::FAMILY,
    softmax::FAMILY,
    grouped::FAMILY,
    random::FAMILY,
    dice::FAMILY,
];

/// The family that runs a call: its op's, given the parameter tensors it brings.
pub(crate) fn family(call: &CallArgs<'_>) -> Result<&'static Family> {
    let op = call.activation.op();
    let kind = ParamKind::of(call.params.as_ref());
    let family = FAMILIES
        .iter()
        .find(|f| (f.serves)(op, kind))
        .ok_or_else(|| {
            Error::Unsupported(match kind {
                Some(kind) => format!(
                    "`{}` takes no {kind:?} parameter tensors; {}",
                    call.activation,
                    "Params::Prelu goes with prelu, Params::DiceTrain and Params::DiceEval with \
                     dice, Params::Bias with the elementwise ops"
                ),
                None => format!("no kernel family runs `{}`", call.activation),
            })
        })?;
    if call.outputs > 1 && !family.extra_output {
        return Err(Error::Unsupported(format!(
            "an aux output holds the pre-activation of a fused bias + activation \
             (Params::Bias); `{}` without a bias has none",
            call.activation
        )));
    }
    if call.strategy != Strategy::Auto && !family.strategies {
        return Err(Error::Unsupported(format!(
            "a strategy chooses how the softmax family's rows map onto the GPU; `{}` has none \
             (use Strategy::Auto)",
            call.activation
        )));
    }
    Ok(family)
}

/// How to plan a call (its family's `plan`).
pub(crate) fn planner(call: &CallArgs<'_>) -> Result<PlanFn> {
    family(call).map(|f| f.plan)
}

/// Every pipeline `op` can need in `direction`, with subgroup reductions or without: each
/// family's list that serves the op with the parameter tensors it takes (prelu's, dice's),
/// and with `fused`, also the fused bias family's (`Params::Bias`, which an op only runs
/// where a call asks for it).
pub(crate) fn pipelines(
    op: Op,
    direction: Direction,
    subgroups: bool,
    fused: bool,
) -> Vec<(Layout, Entry)> {
    let kinds = [
        None,
        Some(ParamKind::Prelu),
        Some(ParamKind::DiceTrain),
        Some(ParamKind::DiceEval),
    ];
    let bias = fused.then_some(Some(ParamKind::Bias));
    FAMILIES
        .iter()
        .filter(|f| kinds.iter().chain(&bias).any(|&k| (f.serves)(op, k)))
        .flat_map(|f| match direction {
            Direction::Forward => f.forward,
            Direction::Backward => f.backward,
        })
        .flat_map(|c| {
            let entries = c.entries.iter().filter(move |e| subgroups || !e.subgroups);
            c.layouts
                .iter()
                .flat_map(move |&l| entries.clone().map(move |&e| (l, e)))
        })
        .collect()
}

/// A module as validation sees it: its family's module and what it was assembled for.
pub(crate) struct ModuleInstance {
    pub(crate) module: &'static Module,
    pub(crate) spec: ModuleSpec,
}

impl std::fmt::Display for ModuleInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.spec;
        write!(
            f,
            "{} ({}, {:?}, {}, subgroups: {})",
            self.module.name,
            s.op.name(),
            s.layout,
            s.storage,
            s.subgroups
        )
    }
}

impl ModuleInstance {
    /// The module's uniform block against its family's Rust struct.
    pub(crate) fn check_uniforms(&self, parsed: &naga::Module) -> Result<()> {
        self.module
            .uniforms
            .check(parsed)
            .map_err(|e| Error::Shader {
                report: e.clone(),
                source: e.into(),
            })
    }
}

/// Every module this crate can compile at `workgroup_size` (every op, direction, layout,
/// storage type and reduction flavour), with its source.
pub(crate) fn every_module(workgroup_size: u32) -> impl Iterator<Item = (ModuleInstance, String)> {
    Op::ALL.iter().flat_map(move |&op| {
        let directions = [Direction::Forward, Direction::Backward];
        [false, true].into_iter().flat_map(move |subgroups| {
            directions.into_iter().flat_map(move |d| {
                pipelines(op, d, subgroups, true)
                    .into_iter()
                    .flat_map(move |(layout, entry)| {
                        Storage::ALL.into_iter().map(move |storage| {
                            let spec = ModuleSpec {
                                op,
                                layout,
                                storage,
                                subgroups,
                                workgroup_size,
                                register_vec4s: crate::device::REGISTER_VEC4S,
                            };
                            let source = (entry.module.source)(&spec);
                            (
                                ModuleInstance {
                                    module: entry.module,
                                    spec,
                                },
                                source,
                            )
                        })
                    })
            })
        })
    })
}

#[cfg(test)]
mod tests {
    uniforms! {
        /// A block for the check's own test.
        struct Two = "Two" {
            a: u32,
            b: f32,
            pad0: u32,
            pad1: u32,
            p: [f32; 4],
        }
    }

    fn check(wgsl: &str) -> std::result::Result<(), String> {
        let module = naga::front::wgsl::parse_str(wgsl).expect("test WGSL parses");
        Two::BLOCK.check(&module)
    }

    #[test]
    fn a_uniform_field_on_one_side_only_fails_the_check() {
        let right = "struct Two { a: u32, b: f32, pad0: u32, pad1: u32, p: vec4<f32> }";
        assert_eq!(check(right), Ok(()));
        let zero: Two = bytemuck::Zeroable::zeroed();
        assert_eq!(zero.bytes().len(), Two::BLOCK.size);
        for wrong in [
            // a field more, or fewer (the vec4 lands at 16 either way: only the names tell)
            "struct Two { a: u32, b: f32, pad0: u32, pad1: u32, p: vec4<f32>, c: u32 }",
            "struct Two { a: u32, b: f32, p: vec4<f32> }",
            // renamed, reordered, another size, another struct
            "struct Two { a: u32, c: f32, pad0: u32, pad1: u32, p: vec4<f32> }",
            "struct Two { b: f32, a: u32, pad0: u32, pad1: u32, p: vec4<f32> }",
            "struct Two { a: u32, b: f32, pad0: u32, pad1: u32, p: vec2<f32> }",
            "struct Three { a: u32, b: f32, pad0: u32, pad1: u32, p: vec4<f32> }",
        ] {
            assert!(check(wrong).is_err(), "{wrong}");
        }
    }
}
