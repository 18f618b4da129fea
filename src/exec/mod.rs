//! The one executor. A family describes a call (how its tensors are cut into units, then
//! its entry points, uniforms and dispatches: a [`Launch`]); everything else is done
//! here, once, for every family and direction:
//!
//! 1. [`Planner::cut`] validates the main tensors (usage, alignment, extent, one storage
//!    type, the overlaps allowed: identical ranges run in place, an input of another
//!    length than the output must lie apart), decides which binding each input is read
//!    through (its own, or the output's where it shares that buffer), stages an input in
//!    a copy where it lies too far from the output for one window, and cuts the call into
//!    binding-sized pieces of whole units, each bound from an aligned offset;
//! 2. the family, given the pieces, returns its [`Launch`] (checking its own limits, such
//!    as the loop budget, first);
//! 3. [`Planner::record`] compiles (or finds) the pipelines, builds the bind groups
//!    through the context's cache, and only then records into the caller's encoder: the
//!    staging copies, and one compute pass of every dispatch in order. An error anywhere
//!    before that leaves the encoder as it was.

pub(crate) mod bind;
pub(crate) mod check;
pub(crate) mod host;
pub(crate) mod limits;

use std::sync::Arc;

use bind::{bind_windows, window, word_span, BindingKey, GroupLayout, StorageBinding};

use crate::device::layout::{Binding, Group1, Layout};
use crate::device::pipelines::PipelineKey;
use crate::families::Entry;
use crate::{Activation, BufferRegion, Context, Direction, Error, Result, Storage, Strategy};

/// A parameter tensor of a call in a buffer (host data already uploaded): f32, `len`
/// elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParamRegion<'a> {
    pub(crate) region: BufferRegion<'a>,
    pub(crate) len: u64,
}

/// The parameter tensors a call brings ([`crate::Params`], in buffers).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ParamArgs<'a> {
    Prelu(ParamRegion<'a>),
    DiceTrain(ParamRegion<'a>),
    DiceEval([ParamRegion<'a>; 3]),
    /// A bias (in the tensors' storage type) along `dim`.
    Bias {
        bias: ParamRegion<'a>,
        dim: i64,
    },
}

/// One call, as the public API hands it to the executor.
pub(crate) struct CallArgs<'a> {
    pub(crate) activation: Activation,
    pub(crate) shape: &'a [usize],
    pub(crate) strategy: Strategy,
    pub(crate) direction: Direction,
    pub(crate) params: Option<ParamArgs<'a>>,
    /// Where the backward writes the parameter tensor's gradient.
    pub(crate) param_grad: Option<BufferRegion<'a>>,
    /// The forward's input and output, or the backward's saved tensor, grad_output and
    /// grad_input; then a second output where the call has one (the forward's
    /// pre-activation, `Call::aux_output`).
    pub(crate) tensors: Vec<BufferRegion<'a>>,
    /// How many of `tensors` are written: 1, or 2 with the second output.
    pub(crate) outputs: usize,
}

impl<'a> CallArgs<'a> {
    /// The main tensors' names, in order.
    pub(crate) fn roles(&self) -> &'static [&'static str] {
        match self.direction {
            Direction::Forward => &["input", "output", "aux output"],
            Direction::Backward => &["saved", "grad_output", "grad_input"],
        }
    }

    /// How many of the tensors are read.
    pub(crate) fn inputs(&self) -> usize {
        self.tensors.len() - self.outputs
    }

    /// The tensor written: the output, or grad_input.
    pub(crate) fn output(&self) -> BufferRegion<'a> {
        self.tensors[self.inputs()]
    }
}

/// How a family's call is cut into pieces.
pub(crate) struct Cut {
    /// Units in the call; a piece holds whole units.
    pub(crate) units: u64,
    /// Elements per unit of each main tensor, in the call's order (inputs, then output).
    pub(crate) per_unit: Vec<u64>,
    /// What a unit is, for the error when one exceeds a binding ("one 1024 x 1 slab of
    /// the tensor").
    pub(crate) unit: String,
    /// What to do when an input of another length than the output overlaps it.
    pub(crate) shorter_hint: &'static str,
}

impl Cut {
    /// A call of `len` elements in every tensor, cut anywhere (on 16-byte boundaries).
    pub(crate) fn elements(len: u64, tensors: usize) -> Cut {
        Cut::units(len, 1, tensors, "one element".into())
    }

    /// A call of `units` units of `per_unit` elements in every one of its `tensors`.
    pub(crate) fn units(units: u64, per_unit: u64, tensors: usize, unit: String) -> Cut {
        Cut {
            units,
            per_unit: vec![per_unit; tensors],
            unit,
            shorter_hint: "",
        }
    }
}

/// One binding-sized piece of a call: `units` units from unit `first`.
pub(crate) struct Piece {
    pub(crate) first: u64,
    pub(crate) units: u64,
    /// Each main tensor's element offset inside its bound window (inputs, then output).
    pub(crate) offsets: Vec<u32>,
    bindings: Vec<StorageBinding>,
}

/// An input read from a copy: `size` bytes of `source` from `start`, into `buffer`.
struct Staged {
    source: wgpu::Buffer,
    start: u64,
    size: u64,
    buffer: wgpu::Buffer,
}

/// A cut call: where its inputs are read, its storage type and its pieces.
struct Cutting {
    layout: Layout,
    storage: Storage,
    per_piece: u64,
    pieces: Vec<Piece>,
    staged: Vec<Staged>,
}

/// One binding of a family's group 1, at the binding number of its place in the list.
pub(crate) enum Group1Binding<'a> {
    /// A parameter tensor of the caller's (f32, `len` elements), in an aligned window.
    Tensor(BufferRegion<'a>, u64),
    /// A fresh scratch buffer of at least this many bytes.
    Scratch(u64),
    /// The context's shared scratch buffer, of at least this many bytes.
    Shared(u64),
    /// A fresh buffer holding these values (a parameter the call's spec gives as one
    /// number, which the kernel reads per feature).
    Values(Vec<f32>),
}

/// One dispatch: entry `entry` of the launch, on piece `piece`'s bind group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) entry: usize,
    pub(crate) piece: usize,
    pub(crate) groups: u32,
}

/// What a family runs for a call: its entry points, group 1, each piece's uniform block,
/// and the dispatches in order.
pub(crate) struct Launch<'a> {
    pub(crate) entries: Vec<Entry>,
    pub(crate) group1: Vec<Group1Binding<'a>>,
    pub(crate) uniforms: Vec<Vec<u8>>,
    pub(crate) steps: Vec<Step>,
}

impl Launch<'_> {
    /// Nothing to run (an empty tensor).
    pub(crate) fn empty() -> Self {
        Launch {
            entries: Vec::new(),
            group1: Vec::new(),
            uniforms: Vec::new(),
            steps: Vec::new(),
        }
    }

    /// Adds a dispatch of `groups` workgroups of entry `entry` on piece `piece`.
    pub(crate) fn step(&mut self, entry: usize, piece: usize, groups: u32) {
        self.steps.push(Step {
            entry,
            piece,
            groups,
        });
    }
}

/// A call being planned: the family reads the call and cuts it; the executor records it.
pub(crate) struct Planner<'c, 'a> {
    pub(crate) ctx: &'c Context,
    pub(crate) call: &'c CallArgs<'a>,
    cutting: Option<Cutting>,
}

impl<'c, 'a> Planner<'c, 'a> {
    pub(crate) fn new(ctx: &'c Context, call: &'c CallArgs<'a>) -> Self {
        Planner {
            ctx,
            call,
            cutting: None,
        }
    }

    /// The main tensors' storage type (after [`Planner::cut`]).
    pub(crate) fn storage(&self) -> Storage {
        self.done().storage
    }

    /// The pieces (after [`Planner::cut`]).
    pub(crate) fn pieces(&self) -> &[Piece] {
        &self.done().pieces
    }

    /// Units in the largest piece (after [`Planner::cut`]).
    pub(crate) fn per_piece(&self) -> u64 {
        self.done().per_piece
    }

    fn done(&self) -> &Cutting {
        self.cutting
            .as_ref()
            .expect("a family cuts its call before reading its pieces")
    }

    /// Validates the main tensors for `cut`, decides where each input is read, and cuts
    /// the call into binding-sized pieces (see the module docs).
    pub(crate) fn cut(&mut self, cut: Cut) -> Result<()> {
        let (tensors, roles) = (&self.call.tensors, self.call.roles());
        let lens = cut
            .per_unit
            .iter()
            .map(|p| p.checked_mul(cut.units).unwrap_or(u64::MAX))
            .collect::<Vec<_>>();
        for ((&role, &t), &len) in roles.iter().zip(tensors).zip(&lens) {
            check::region(role, t, len)?;
        }
        let storage = storage_of(roles, tensors)?;
        let out = self.call.inputs();
        for i in 0..out {
            let names = [roles[i], roles[out]];
            if cut.per_unit[i] == cut.per_unit[out] {
                check::in_place(names, tensors[i], tensors[out], lens[i])?;
            } else {
                let (a, b) = ((tensors[i], lens[i]), (tensors[out], lens[out]));
                check::apart(names, a, b, cut.shorter_hint)?;
            }
        }
        self.check_extra_outputs(&lens)?;
        let (bindings, room) = self.bindings(&cut, storage)?;
        self.check_extra_beside_inputs(&bindings)?;
        let widest = cut.per_unit.iter().copied().max().unwrap_or(1).max(1);
        let per_piece = room / widest;
        if per_piece == 0 && cut.units > 0 {
            return Err(Error::Unsupported(format!(
                "{} takes {} bytes, past this device's storage binding limit ({} bytes)",
                cut.unit,
                widest * storage.bytes(),
                self.max_binding()
            )));
        }
        let staged = self.stage(&bindings, &lens)?;
        let layout = Layout::of(&bindings, self.call.outputs > 1);
        let pieces = self.cut_pieces(&cut, &bindings, &staged, per_piece);
        self.cutting = Some(Cutting {
            layout,
            storage,
            per_piece,
            pieces,
            staged: staged.into_iter().flatten().collect(),
        });
        Ok(())
    }

    /// A second output may overlap neither the output nor an input.
    fn check_extra_outputs(&self, lens: &[u64]) -> Result<()> {
        let (tensors, roles, out) = (&self.call.tensors, self.call.roles(), self.call.inputs());
        for e in out + 1..tensors.len() {
            for i in 0..=out {
                let hint = "every output is written, and an input is read while it is: give \
                            them disjoint ranges";
                let (a, b) = ((tensors[e], lens[e]), (tensors[i], lens[i]));
                check::apart([roles[e], roles[i]], a, b, hint)?;
            }
        }
        Ok(())
    }

    /// A second output may not share a buffer with an input read through a read-only
    /// binding (wgpu refuses one dispatch that binds a buffer read-only and writable).
    fn check_extra_beside_inputs(&self, bindings: &[Binding]) -> Result<()> {
        let (tensors, roles, out) = (&self.call.tensors, self.call.roles(), self.call.inputs());
        for e in out + 1..tensors.len() {
            let read_only = (0..out).find(|&i| {
                bindings[i] != Binding::Dst
                    && tensors[i].buffer == tensors[e].buffer
                    && tensors[i].buffer != tensors[out].buffer
            });
            if let Some(i) = read_only {
                return Err(Error::Unsupported(format!(
                    "the {} shares a buffer with the {}, which the kernel reads through a \
                     read-only binding while writing the {}: put it in a buffer of its own",
                    roles[e], roles[i], roles[e]
                )));
            }
        }
        Ok(())
    }

    fn max_binding(&self) -> u64 {
        let limits = self.ctx.limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }

    /// The binding each input is read through (`Src` for a staged one), and the elements
    /// a piece's window may hold: inputs in the output's buffer share its binding, so the
    /// distance between them eats into it; where that leaves less than a quarter of a
    /// binding, the farthest is read from a copy instead, and an input of another length
    /// always is.
    fn bindings(&self, cut: &Cut, storage: Storage) -> Result<(Vec<Binding>, u64)> {
        let tensors = &self.call.tensors;
        let out = self.call.inputs();
        let (align, max_binding) = (self.ctx.binding_alignment(), self.max_binding());
        // whole 16-byte blocks: both the vec4 path and the tail stay aligned
        let per_16 = 16 / storage.bytes();
        let room = |reach: u64| max_binding.saturating_sub(align + reach) / 16 * per_16;
        if room(0) == 0 {
            return Err(Error::Unsupported(format!(
                "max_storage_buffer_binding_size {max_binding} leaves no room past the \
                 offset alignment {align}"
            )));
        }
        let shares = |i: usize| tensors[i].buffer == tensors[out].buffer;
        let mut copy: Vec<bool> = (0..out)
            .map(|i| shares(i) && cut.per_unit[i] != cut.per_unit[out])
            .collect();
        let room = loop {
            let sharing: Vec<usize> = (0..out).filter(|&i| shares(i) && !copy[i]).collect();
            let offsets = sharing.iter().map(|&i| tensors[i].offset);
            let lo = offsets.clone().fold(tensors[out].offset, u64::min);
            let hi = offsets.fold(tensors[out].offset, u64::max);
            if room(hi - lo) >= room(0) / 4 {
                break room(hi - lo);
            }
            let distance = |&i: &usize| tensors[i].offset.abs_diff(tensors[out].offset);
            let far = sharing.iter().copied().rev().max_by_key(distance);
            copy[far.expect("a reach comes from an input sharing the buffer")] = true;
        };
        let mut own = [Binding::Src, Binding::Aux].into_iter();
        let bindings = (0..out)
            .map(|i| match shares(i) && !copy[i] {
                true => Binding::Dst,
                false => own.next().expect("at most two inputs"),
            })
            .collect();
        Ok((bindings, room))
    }

    /// The copies of the inputs read through a binding of their own while in the
    /// output's buffer (created now; recorded with the launch).
    fn stage(&self, bindings: &[Binding], lens: &[u64]) -> Result<Vec<Option<Staged>>> {
        let tensors = &self.call.tensors;
        let out = self.call.output();
        let mut staged = Vec::new();
        for (i, &b) in bindings.iter().enumerate() {
            let t = tensors[i];
            if b == Binding::Dst || t.buffer != out.buffer || lens[i] == 0 {
                staged.push(None);
                continue;
            }
            check::usage(
                "input sharing the output's buffer (read from a copy)",
                t.buffer,
                wgpu::BufferUsages::COPY_SRC,
            )?;
            let (start, size) = word_span(t.offset, t.bytes(lens[i]));
            let buffer = self.ctx.scoped(|| {
                self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgpu-activations staged input"),
                    size,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
            staged.push(Some(Staged {
                source: t.buffer.clone(),
                start,
                size,
                buffer,
            }));
        }
        Ok(staged)
    }

    /// The pieces: each tensor's window of the piece's units (tensors read through one
    /// binding get one window covering them all), and their offsets inside.
    fn cut_pieces(
        &self,
        cut: &Cut,
        bindings: &[Binding],
        staged: &[Option<Staged>],
        per_piece: u64,
    ) -> Vec<Piece> {
        let tensors = &self.call.tensors;
        let align = self.ctx.binding_alignment();
        // the regions the kernels read: a copy lies at its original offset's place in a word
        let regions: Vec<BufferRegion<'_>> = tensors
            .iter()
            .enumerate()
            .map(|(i, &t)| match staged.get(i) {
                Some(Some(s)) => {
                    BufferRegion::at(&s.buffer, t.offset - s.start).with_storage(t.storage)
                }
                _ => t,
            })
            .collect();
        let extra = std::iter::repeat_n(Binding::Extra, self.call.outputs - 1);
        let numbers: Vec<u32> = bindings
            .iter()
            .copied()
            .chain([Binding::Dst])
            .chain(extra)
            .map(Binding::number)
            .collect();
        crate::exec::pieces(cut.units, per_piece)
            .map(|(first, units)| {
                let roles: Vec<_> = (0..regions.len())
                    .map(|i| {
                        let p = cut.per_unit[i];
                        (numbers[i], regions[i].skip(first * p), units * p)
                    })
                    .collect();
                let (bindings, deltas) = bind_windows(&roles, align);
                let bytes = tensors[0].storage.bytes();
                Piece {
                    first,
                    units,
                    offsets: deltas.iter().map(|d| (d / bytes) as u32).collect(),
                    bindings,
                }
            })
            .collect()
    }

    /// Records `launch` into `encoder` (see the module docs).
    pub(crate) fn record(
        self,
        encoder: &mut wgpu::CommandEncoder,
        launch: Launch<'_>,
    ) -> Result<()> {
        let Some(done) = self.cutting.as_ref().filter(|_| !launch.steps.is_empty()) else {
            return Ok(());
        };
        let ctx = self.ctx;
        let op = self.call.activation.op();
        let pipelines = launch
            .entries
            .iter()
            .map(|&entry| ctx.pipeline(PipelineKey::new(op, entry, done.layout, done.storage)))
            .collect::<Result<Vec<_>>>()?;
        let group1 = self.group1(&launch)?;
        let cacheable = done.staged.is_empty();
        let keys0: Vec<BindingKey> = done
            .pieces
            .iter()
            .zip(&launch.uniforms)
            .map(|(piece, uniforms)| BindingKey {
                layout: GroupLayout::Tensors(done.layout),
                storage: piece.bindings.clone(),
                uniforms: uniforms.clone(),
            })
            .collect();
        // group1 asked on its own miss
        if group1.as_ref().is_none_or(|(_, hit)| *hit) {
            self.call.check_host_state(ctx.all_cached(&keys0))?;
        }
        let group1 = group1.map(|(group, _)| group);
        let groups0 = keys0
            .into_iter()
            .map(|key| ctx.bind_group(key, cacheable))
            .collect::<Result<Vec<_>>>()?;
        for s in &done.staged {
            encoder.copy_buffer_to_buffer(&s.source, s.start, &s.buffer, 0, s.size);
        }
        let label = format!("wgpu-activations {}", launch.entries[0].module.name);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&label),
            timestamp_writes: None,
        });
        if let Some(group) = &group1 {
            pass.set_bind_group(1, group.as_ref(), &[]);
        }
        let (mut entry, mut piece) = (usize::MAX, usize::MAX);
        for step in &launch.steps {
            if step.entry != entry {
                pass.set_pipeline(&pipelines[step.entry]);
                entry = step.entry;
            }
            if step.piece != piece {
                pass.set_bind_group(0, groups0[step.piece].as_ref(), &[]);
                piece = step.piece;
            }
            pass.dispatch_workgroups(step.groups, 1, 1);
        }
        Ok(())
    }

    /// Bind group 1 of the launch's entries (which share one layout), from the family's
    /// list of bindings, and whether the context's cache held it; `None` where they have
    /// none.
    fn group1(&self, launch: &Launch<'_>) -> Result<Option<(Arc<wgpu::BindGroup>, bool)>> {
        let group = launch.entries[0].group1;
        debug_assert!(launch.entries.iter().all(|e| e.group1 == group));
        debug_assert_eq!(group.slots().1.len(), launch.group1.len(), "{group:?}");
        if group == Group1::None {
            return Ok(None);
        }
        let align = self.ctx.binding_alignment();
        let limit = self.ctx.limits().max_storage_buffer_binding_size;
        let mut fresh = false;
        let mut storage = Vec::new();
        for (binding, b) in (0u32..).zip(&launch.group1) {
            let bytes = match *b {
                Group1Binding::Tensor(region, len) => window(region, len.max(1), align).size,
                Group1Binding::Scratch(bytes) | Group1Binding::Shared(bytes) => bytes,
                Group1Binding::Values(ref v) => 4 * v.len() as u64,
            };
            if bytes > limit {
                return Err(Error::Unsupported(format!(
                    "the {} call's {bytes}-byte parameter or scratch binding exceeds this \
                     device's storage binding limit ({limit} bytes); cut the tensor into \
                     smaller calls",
                    launch.entries[0].module.name
                )));
            }
            let (buffer, offset, size) = match *b {
                Group1Binding::Tensor(region, len) => {
                    let w = window(region, len.max(1), align);
                    (region.buffer.clone(), w.start, w.size)
                }
                Group1Binding::Scratch(bytes) => {
                    fresh = true;
                    let buffer = self
                        .ctx
                        .scoped(|| self.ctx.scratch_buffer("wgpu-activations scratch", bytes))?;
                    let size = buffer.size();
                    (buffer, 0, size)
                }
                Group1Binding::Values(ref values) => {
                    fresh = true;
                    let buffer = self.ctx.upload("wgpu-activations parameter", values)?;
                    let size = buffer.size();
                    (buffer, 0, size)
                }
                Group1Binding::Shared(bytes) => {
                    let buffer = self.ctx.shared_scratch(bytes)?;
                    let size = buffer.size();
                    (buffer, 0, size)
                }
            };
            storage.push(StorageBinding {
                binding,
                buffer,
                offset,
                size,
            });
        }
        let key = BindingKey {
            layout: GroupLayout::Params(group),
            storage,
            uniforms: Vec::new(),
        };
        let hit = !fresh && self.ctx.all_cached(std::slice::from_ref(&key));
        if !hit {
            // before wgpu creates a bind group of a mapped or destroyed buffer
            self.call.check_host_state(false)?;
        }
        self.ctx.bind_group(key, !fresh).map(|g| Some((g, hit)))
    }
}

/// The one storage type of a call's main tensors: kernels load and store one type.
/// Parameter tensors (prelu's weights, dice's statistics and alpha, and their gradients)
/// are f32 whatever it is.
fn storage_of(roles: &[&'static str], tensors: &[BufferRegion<'_>]) -> Result<Storage> {
    let first = tensors[0].storage;
    let name = |role: &str| {
        if role == "saved" {
            "saved tensor"
        } else {
            role
        }
        .to_string()
    };
    match roles.iter().zip(tensors).find(|(_, t)| t.storage != first) {
        None => Ok(first),
        Some((other, t)) => Err(Error::Unsupported(format!(
            "the {} holds {first} and the {} {}: a call's tensors share one storage type",
            name(roles[0]),
            name(other),
            t.storage
        ))),
    }
}

/// `(first, count)` of each piece of `total` units cut into pieces of at most `per_piece`
/// (at least 1).
pub(crate) fn pieces(total: u64, per_piece: u64) -> impl Iterator<Item = (u64, u64)> {
    let per_piece = per_piece.max(1);
    (0..total.div_ceil(per_piece)).map(move |i| {
        let first = i * per_piece;
        (first, per_piece.min(total - first))
    })
}

/// Plans and records one call: the family its op and parameter tensors name plans it, the
/// executor cuts and records it.
pub(crate) fn encode(
    ctx: &Context,
    encoder: &mut wgpu::CommandEncoder,
    call: &CallArgs<'_>,
) -> Result<()> {
    let plan = crate::families::planner(call)?;
    let mut planner = Planner::new(ctx, call);
    let launch = plan(&mut planner)?;
    planner.record(encoder, launch)
}
