//! Bind-group layouts: which binding each of a kernel's tensors is read through (group 0),
//! the families' parameter tensors and scratch buffers (group 1), and the pipeline layout
//! of every pair, created once per context.

use std::collections::HashMap;

/// A storage binding of group 0, by the name its arrays have in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Binding {
    /// Binding 0, read-only: the first input with a binding of its own.
    Src,
    /// Binding 1, read-write: the output, and any input read in place or from a window
    /// shared with it (one buffer may not be bound read-only and writable at once).
    Dst,
    /// Binding 3, read-only: the second input with a binding of its own.
    Aux,
    /// Binding 4, read-write: a second output (a fused epilogue's pre-activation).
    Extra,
}

impl Binding {
    /// The binding number.
    pub(crate) fn number(self) -> u32 {
        match self {
            Binding::Src => 0,
            Binding::Dst => 1,
            Binding::Aux => 3,
            Binding::Extra => 4,
        }
    }

    /// The WGSL name of its arrays and accessors (`src_load`, `dst_store4`, ...).
    pub(crate) fn wgsl(self) -> &'static str {
        match self {
            Binding::Src => "src",
            Binding::Dst => "dst",
            Binding::Aux => "aux",
            Binding::Extra => "extra",
        }
    }
}

/// Where a kernel reads its inputs: a forward's one input, or a backward's saved tensor
/// and grad_output. The module's WGSL and its group-0 layout follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// One input, through its own binding (`Src`) or the output's (`Dst`, in place).
    One(Binding),
    /// One input as `One`, and a second output through `Extra`.
    OneAndExtra(Binding),
    /// A backward's two inputs: the saved tensor's binding and grad_output's.
    Two(Binding, Binding),
}

impl Layout {
    /// A forward's layouts: the input through its own binding, or in place.
    pub(crate) const FORWARD: [Layout; 2] = [Layout::One(Binding::Src), Layout::One(Binding::Dst)];

    /// The forward's layouts with a second output.
    pub(crate) const FORWARD_AND_EXTRA: [Layout; 2] = [
        Layout::OneAndExtra(Binding::Src),
        Layout::OneAndExtra(Binding::Dst),
    ];

    /// Every backward layout: grad_input's buffer shared by neither input, by grad_output
    /// (in place on it), by the saved tensor, or by both.
    pub(crate) const BACKWARD: [Layout; 4] = [
        Layout::Two(Binding::Src, Binding::Aux),
        Layout::Two(Binding::Src, Binding::Dst),
        Layout::Two(Binding::Dst, Binding::Src),
        Layout::Two(Binding::Dst, Binding::Dst),
    ];

    /// The inputs' bindings, in order.
    pub(crate) fn inputs(self) -> Vec<Binding> {
        match self {
            Layout::One(b) | Layout::OneAndExtra(b) => vec![b],
            Layout::Two(a, b) => vec![a, b],
        }
    }

    /// The layout of inputs read through `bindings` (one or two), with a second output or
    /// not.
    pub(crate) fn of(bindings: &[Binding], extra: bool) -> Layout {
        match (bindings, extra) {
            (&[a], false) => Layout::One(a),
            (&[a], true) => Layout::OneAndExtra(a),
            (&[a, b], false) => Layout::Two(a, b),
            _ => unreachable!("a kernel reads one or two tensors and writes one or two"),
        }
    }

    /// Whether the layout has a second output.
    pub(crate) fn has_extra(self) -> bool {
        matches!(self, Layout::OneAndExtra(_))
    }

    /// The storage bindings of group 0.
    pub(crate) fn group0(self) -> Group0 {
        let inputs = self.inputs();
        match (self.has_extra(), inputs.contains(&Binding::Src)) {
            (true, true) => Group0::SeparateExtra,
            (true, false) => Group0::InPlaceExtra,
            _ if inputs.contains(&Binding::Aux) => Group0::TwoInputs,
            (false, true) => Group0::Separate,
            (false, false) => Group0::InPlace,
        }
    }
}

/// The bind-group layouts of group 0: which storage bindings a [`Layout`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Group0 {
    /// `src`, `dst` and the uniforms.
    Separate,
    /// `dst` and the uniforms: every input read through the output's binding.
    InPlace,
    /// `src`, `dst`, the uniforms and `aux`.
    TwoInputs,
    /// `src`, `dst`, the uniforms and `extra` (a second output).
    SeparateExtra,
    /// `dst`, the uniforms and `extra`.
    InPlaceExtra,
}

/// One binding of a bind-group layout: a storage buffer read-only or read-write, or a
/// uniform buffer, at its binding number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Read(u32),
    Write(u32),
    Uniform(u32),
}

impl Group0 {
    pub(crate) const ALL: [Group0; 5] = [
        Group0::Separate,
        Group0::InPlace,
        Group0::TwoInputs,
        Group0::SeparateExtra,
        Group0::InPlaceExtra,
    ];

    /// The group's bindings, and a label for its layout.
    pub(crate) fn slots(self) -> (&'static str, &'static [Slot]) {
        use Slot::*;
        match self {
            Group0::Separate => ("input and output", &[Read(0), Write(1), Uniform(2)]),
            Group0::InPlace => ("input in the output", &[Write(1), Uniform(2)]),
            Group0::TwoInputs => ("two inputs", &[Read(0), Write(1), Uniform(2), Read(3)]),
            Group0::SeparateExtra => (
                "input and two outputs",
                &[Read(0), Write(1), Uniform(2), Write(4)],
            ),
            Group0::InPlaceExtra => (
                "input in the output, and a second output",
                &[Write(1), Uniform(2), Write(4)],
            ),
        }
    }
}

/// Bind group 1 of an entry point: none, or its family's parameter tensors and scratch
/// buffers, binding 0 first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Group1 {
    None,
    /// Split's (or dice's) partial statistics.
    Partials,
    /// PReLU's weights.
    Weights,
    /// Dice's running mean, variance and alpha (evaluation mode).
    DiceEval,
    /// Dice's statistics and per-feature alpha (training mode).
    DiceAlpha,
    /// PReLU's backward: the weights, per-(channel, slice) partial sums and the weight
    /// gradient.
    PreluGrad,
    /// Dice's backward: per-feature sums, alpha, grad_alpha, and the running mean and
    /// variance (evaluation mode).
    DiceGrad,
    /// A fused bias + activation's bias (in the tensors' storage type).
    Bias,
    /// Its backward: per-(piece, slice, column) partial sums and grad_bias.
    BiasGrad,
}

impl Group1 {
    pub(crate) const ALL: [Group1; 9] = [
        Group1::None,
        Group1::Partials,
        Group1::Weights,
        Group1::DiceEval,
        Group1::DiceAlpha,
        Group1::PreluGrad,
        Group1::DiceGrad,
        Group1::Bias,
        Group1::BiasGrad,
    ];

    /// The group's bindings, and a label for its layout (`None` has no group 1).
    pub(crate) fn slots(self) -> (&'static str, &'static [Slot]) {
        use Slot::*;
        match self {
            Group1::None => ("", &[]),
            Group1::Partials => ("partials", &[Write(0)]),
            Group1::Weights => ("prelu weights", &[Read(0)]),
            Group1::DiceEval => ("dice running statistics", &[Read(0), Read(1), Read(2)]),
            Group1::DiceAlpha => ("dice statistics and alpha", &[Write(0), Read(1)]),
            Group1::PreluGrad => (
                "prelu weights, partial sums and weight gradient",
                &[Read(0), Write(1), Write(2)],
            ),
            Group1::DiceGrad => (
                "dice backward",
                &[Write(0), Read(1), Write(2), Read(3), Read(4)],
            ),
            Group1::Bias => ("bias", &[Read(0)]),
            Group1::BiasGrad => ("bias backward", &[Write(0), Write(1)]),
        }
    }
}

/// The storage buffers among `slots` (what the per-stage limit counts).
fn storage_buffers(slots: &[Slot]) -> u32 {
    slots
        .iter()
        .filter(|s| !matches!(s, Slot::Uniform(_)))
        .count() as u32
}

/// A pipeline layout, or why this device cannot have it (a limit it exceeds).
pub(crate) type PipelineLayout = std::result::Result<wgpu::PipelineLayout, String>;

/// Every bind-group layout of groups 0 and 1, and the pipeline layout of each pair.
pub(crate) struct Layouts {
    group0: HashMap<Group0, wgpu::BindGroupLayout>,
    group1: HashMap<Group1, wgpu::BindGroupLayout>,
    pipelines: HashMap<(Group0, Group1), PipelineLayout>,
}

impl Layouts {
    /// The pipeline layout of an entry point: its inputs' layout and its bind group 1.
    pub(crate) fn pipeline(&self, layout: Layout, group1: Group1) -> &PipelineLayout {
        &self.pipelines[&(layout.group0(), group1)]
    }

    pub(crate) fn group0(&self, layout: Layout) -> &wgpu::BindGroupLayout {
        &self.group0[&layout.group0()]
    }

    /// The bind-group layout of a group 1 (`Group1::None` has none).
    pub(crate) fn group1(&self, group: Group1) -> &wgpu::BindGroupLayout {
        &self.group1[&group]
    }

    /// Every bind-group layout, and the pipeline layout of every (group 0, group 1) pair.
    /// A pipeline layout that binds more storage buffers than the device allows per
    /// shader stage is not created (it would be a validation error); the kernels that
    /// need it return an error naming the limit, and the others still work.
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let create = |(label, slots): (&str, &[Slot])| {
            let entries: Vec<wgpu::BindGroupLayoutEntry> =
                slots.iter().map(|&s| entry(s)).collect();
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &entries,
            })
        };
        let group0: HashMap<_, _> = Group0::ALL
            .into_iter()
            .map(|g| (g, create(g.slots())))
            .collect();
        let group1: HashMap<_, _> = Group1::ALL
            .into_iter()
            .filter(|&g| g != Group1::None)
            .map(|g| (g, create(g.slots())))
            .collect();
        let mut pipelines = HashMap::new();
        for g0 in Group0::ALL {
            for g1 in Group1::ALL {
                let storage = storage_buffers(g0.slots().1) + storage_buffers(g1.slots().1);
                let layout = pipeline_layout(device, &group0[&g0], group1.get(&g1), storage);
                pipelines.insert((g0, g1), layout);
            }
        }
        Layouts {
            group0,
            group1,
            pipelines,
        }
    }
}

/// The pipeline layout of groups 0 and 1 (binding `storage` storage buffers in all), or
/// why the device cannot have it.
fn pipeline_layout(
    device: &wgpu::Device,
    group0: &wgpu::BindGroupLayout,
    group1: Option<&wgpu::BindGroupLayout>,
    storage: u32,
) -> PipelineLayout {
    let max = device.limits().max_storage_buffers_per_shader_stage;
    if storage > max {
        return Err(format!(
            "this kernel binds {storage} storage buffers and the device allows {max} per \
             shader stage (Limits::max_storage_buffers_per_shader_stage); request the \
             adapter's own limits (ContextOptions::limits: None)"
        ));
    }
    let mut layouts = vec![Some(group0)];
    layouts.extend(group1.map(Some));
    Ok(
        device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &layouts,
            immediate_size: 0,
        }),
    )
}

/// The layout entry of one binding, visible to compute shaders.
fn entry(slot: Slot) -> wgpu::BindGroupLayoutEntry {
    let (binding, ty) = match slot {
        Slot::Read(b) => (b, wgpu::BufferBindingType::Storage { read_only: true }),
        Slot::Write(b) => (b, wgpu::BufferBindingType::Storage { read_only: false }),
        Slot::Uniform(b) => (b, wgpu::BufferBindingType::Uniform),
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}
