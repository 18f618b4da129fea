//! Timing the strategies on this adapter: the stopwatch, the tensors timed, and
//! [`Context::tune`].

use std::collections::HashMap;
use std::time::Instant;

use super::{candidates, fastest, Rows, TuneKey, Tuned};
use crate::families::softmax::view_of;
use crate::families::softmax_strategy as strategy;
use crate::{
    Activation, BufferRegion, Context, Direction, Error, Result, RowView, Storage, Strategy,
};

/// Times work recorded into command encoders on a context's queue: with GPU timestamps
/// written by empty compute passes on either side of the work where the device has
/// `Features::TIMESTAMP_QUERY`, else by the wall clock around submit-and-wait.
///
/// ```no_run
/// use wgpu_activations::{BufferRegion, Context, Stopwatch};
/// # fn demo(ctx: &Context, x: &wgpu::Buffer, y: &wgpu::Buffer) -> wgpu_activations::Result<()> {
/// let softmax = "softmax".parse()?;
/// let stopwatch = Stopwatch::new(ctx);
/// let seconds = stopwatch.time(10, &mut |encoder| {
///     ctx.call(&softmax, &[1024, 1024]).encode(encoder, BufferRegion::new(x), BufferRegion::new(y))
/// })?;
/// println!("{seconds:e} s per run ({})", stopwatch.method());
/// # Ok(()) }
/// ```
pub struct Stopwatch<'a> {
    ctx: &'a Context,
    /// Two timestamps and the buffer they resolve into, where the device has them.
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl std::fmt::Debug for Stopwatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopwatch")
            .field("method", &self.method())
            .finish()
    }
}

impl<'a> Stopwatch<'a> {
    /// A stopwatch on `ctx`'s queue.
    pub fn new(ctx: &'a Context) -> Self {
        let device = ctx.device();
        let queries = device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            .then(|| {
                ctx.scoped(|| {
                    let set = device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("stopwatch"),
                        ty: wgpu::QueryType::Timestamp,
                        count: 2,
                    });
                    let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("stopwatch resolve"),
                        size: 16,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    });
                    (set, resolve)
                })
                .ok()
            })
            .flatten();
        Stopwatch { ctx, queries }
    }

    /// How it times: `"timestamp"` or `"wall"`.
    pub fn method(&self) -> &'static str {
        if self.queries.is_some() {
            "timestamp"
        } else {
            "wall"
        }
    }

    /// Seconds per repetition of the work `record` records: `reps` repetitions (at least
    /// one) in one command buffer, submitted and waited for.
    pub fn time(
        &self,
        reps: u32,
        record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<f64> {
        let reps = reps.max(1);
        let mut encoder = self
            .ctx
            .device()
            .create_command_encoder(&Default::default());
        self.stamp(&mut encoder, 0);
        for _ in 0..reps {
            record(&mut encoder)?;
        }
        self.stamp(&mut encoder, 1);
        if let Some((set, resolve)) = &self.queries {
            encoder.resolve_query_set(set, 0..2, resolve, 0);
        }
        self.ctx.wait()?; // earlier work is not timed
        let start = Instant::now();
        self.ctx.queue().submit([encoder.finish()]);
        self.ctx.wait()?;
        let wall = start.elapsed().as_secs_f64();
        let Some((_, resolve)) = &self.queries else {
            return Ok(wall / f64::from(reps));
        };
        let bytes = self.ctx.read_back(resolve, 0, 16)?;
        let ticks: [u64; 2] = bytemuck::pod_read_unaligned(&bytes);
        let period = f64::from(self.ctx.queue().get_timestamp_period());
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period * 1e-9 / f64::from(reps))
    }

    /// An empty compute pass that writes timestamp `index`.
    fn stamp(&self, encoder: &mut wgpu::CommandEncoder, index: u32) {
        if let Some((set, _)) = &self.queries {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("stopwatch"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(index),
                    end_of_pass_write_index: None,
                }),
            });
        }
    }
}

/// The most elements of a tensor tuning allocates (per tensor): a larger call is timed
/// with fewer rows, as many as its rows bucket allows.
const MOST_ELEMENTS: u64 = 1 << 24;

/// The time one sample aims at: repetitions are added until a sample takes about this.
const SAMPLE_SECONDS: f64 = 0.005;

/// The tensors a kind of call is timed on, and what each strategy needs.
struct Bench<'c> {
    ctx: &'c Context,
    activation: Activation,
    shape: Vec<usize>,
    direction: Direction,
    storage: Storage,
    x: wgpu::Buffer,
    grad: wgpu::Buffer,
    y: wgpu::Buffer,
    /// Repetitions per sample of each strategy timed so far.
    reps: HashMap<Strategy, u32>,
}

impl<'c> Bench<'c> {
    /// Tensors of `shape` (or, past [`MOST_ELEMENTS`], of fewer rows in the same
    /// bucket) for `activation`, holding a pattern of values in [-4, 4].
    fn new(
        ctx: &'c Context,
        activation: &Activation,
        shape: &[usize],
        direction: Direction,
        storage: Storage,
    ) -> Result<Self> {
        let view = view_of(activation, shape)?;
        let shape = bench_shape(ctx, activation, shape, view, storage);
        let len = crate::shape::element_count(&shape)?;
        let values: Vec<f32> = (0..len)
            .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 8192) as f32 / 1024.0 - 4.0)
            .collect();
        let upload = |label| ctx.upload_as(label, &values, storage);
        Ok(Bench {
            ctx,
            activation: *activation,
            shape,
            direction,
            storage,
            x: upload("tuning input")?,
            grad: upload("tuning grad_output")?,
            y: upload("tuning output")?,
            reps: HashMap::new(),
        })
    }

    fn record(&self, strategy: Strategy, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        let region = |b| BufferRegion::new(b).with_storage(self.storage);
        let call = self
            .ctx
            .call(&self.activation, &self.shape)
            .strategy(strategy);
        match self.direction {
            Direction::Forward => call.encode(encoder, region(&self.x), region(&self.y)),
            Direction::Backward => call.encode_backward(
                encoder,
                region(&self.x),
                region(&self.grad),
                region(&self.y),
            ),
        }
    }

    /// One sample of `strategy`: seconds per run. Its first sample follows an untimed
    /// run (compiling its pipelines) and is one run, which sizes its later samples (as
    /// many runs as take about [`SAMPLE_SECONDS`]); where one run takes longer than that,
    /// that run is the sample.
    fn sample(&mut self, stopwatch: &Stopwatch<'_>, strategy: Strategy) -> Result<f64> {
        let mut record = |e: &mut wgpu::CommandEncoder| self.record(strategy, e);
        if let Some(&reps) = self.reps.get(&strategy) {
            return stopwatch.time(reps, &mut record);
        }
        stopwatch.time(1, &mut record)?; // warm-up
        let once = stopwatch.time(1, &mut record)?;
        let reps = (SAMPLE_SECONDS / once.max(1e-7)).clamp(1.0, 256.0) as u32;
        let t = if reps > 1 {
            stopwatch.time(reps, &mut record)?
        } else {
            once
        };
        self.reps.insert(strategy, reps);
        Ok(t)
    }
}

/// The shape tuning times for `shape`: the same, or where a tensor of it passes
/// [`MOST_ELEMENTS`] (or the device's buffer size), the same rank, axis and row length with
/// fewer rows (the dims before the axis folded into the one before it, those after into
/// the one after), no fewer than its rows bucket holds.
fn bench_shape(
    ctx: &Context,
    activation: &Activation,
    shape: &[usize],
    view: RowView,
    storage: Storage,
) -> Vec<usize> {
    let most = MOST_ELEMENTS.min(ctx.limits().max_buffer_size / storage.bytes());
    let rows = view.rows() as u64;
    if rows * view.axis as u64 <= most {
        return shape.to_vec();
    }
    let floor = match TuneKey::of(view, storage, Direction::Forward).rows {
        Rows::Few => 1,
        Rows::Some => 64,
        Rows::Many => 4096,
    };
    let wanted = (most / view.axis.max(1) as u64).clamp(floor, rows);
    let inner = (view.inner as u64).min(wanted);
    let outer = (wanted / inner).clamp(1, view.outer as u64);
    let rank = shape.len().max(1) as i64;
    let d = activation.dim().rem_euclid(rank) as usize;
    let mut out = vec![1; shape.len().max(1)];
    out[d] = view.axis;
    if d > 0 {
        out[d - 1] = outer as usize;
    }
    if d + 1 < out.len() {
        out[d + 1] = inner as usize;
    }
    out
}

impl Context {
    /// Times the softmax-family strategies that can serve `activation` on `shape` in
    /// `direction` and `storage` here, and records the fastest: `Strategy::Auto` then
    /// runs it for every call of the same kind (the same [`TuneKey`]: direction, storage
    /// type, row-length bucket, rows bucket, contiguous or strided), and where the context
    /// has a tuning file ([`TuningOptions::file`](crate::TuningOptions)), it is written.
    /// Returns the strategy chosen.
    ///
    /// Each strategy runs once untimed (its pipelines compile), once to size its samples
    /// (repetitions for about 5 ms; a run that takes longer is its first sample), then
    /// once per sample; strategies slower than twice
    /// the fastest first sample are dropped, the others sampled twice more, and the lowest
    /// median wins. Timestamps where the device has `Features::TIMESTAMP_QUERY`, else the
    /// wall clock ([`Stopwatch`]). The tensors are the call's shape, or for a call of
    /// more than 2^24 elements, fewer rows of the same length.
    ///
    /// With tuning off (`WGPU_ACTIVATIONS_TUNING=off`), nothing is timed or recorded and
    /// the static table's choice is returned.
    ///
    /// ```no_run
    /// use wgpu_activations::{Context, ContextOptions, Direction, Storage, TuningOptions};
    /// let ctx = Context::with_options(ContextOptions {
    ///     tuning: TuningOptions::user_cache(),
    ///     ..Default::default()
    /// })?;
    /// let softmax = "softmax".parse()?;
    /// let chosen = ctx.tune(&softmax, &[4096, 1024], Direction::Forward, Storage::F32)?;
    /// println!("{chosen:?}\n{}", ctx.tuned());
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn tune(
        &self,
        activation: &Activation,
        shape: &[usize],
        direction: Direction,
        storage: Storage,
    ) -> Result<Strategy> {
        if !self.tuning().enabled() {
            return self.tune_with(activation, shape, direction, storage, &mut |_| {
                unreachable!("tuning is off: nothing is timed")
            });
        }
        let mut bench = Bench::new(self, activation, shape, direction, storage)?;
        let stopwatch = Stopwatch::new(self);
        self.tune_with(activation, shape, direction, storage, &mut |s| {
            bench.sample(&stopwatch, s)
        })
    }

    /// [`Context::tune`] with the caller's timer: `timer(strategy)` gives one sample,
    /// seconds per run of the call with that strategy (an error drops the strategy).
    /// Only strategies that can serve the call are timed. For tests, and for callers who
    /// time in their own pipeline.
    ///
    /// ```no_run
    /// use wgpu_activations::{Context, Direction, Storage, Strategy};
    /// let ctx = Context::new()?;
    /// let softmax = "softmax".parse()?;
    /// let mut timer = |s: Strategy| Ok(if s == Strategy::Lane { 1e-6 } else { 1e-3 });
    /// let chosen = ctx.tune_with(&softmax, &[64, 32], Direction::Forward, Storage::F32, &mut timer)?;
    /// assert_eq!(chosen, Strategy::Lane);
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn tune_with(
        &self,
        activation: &Activation,
        shape: &[usize],
        direction: Direction,
        storage: Storage,
        timer: &mut dyn FnMut(Strategy) -> Result<f64>,
    ) -> Result<Strategy> {
        if activation.op().softmax().is_none() {
            return Err(Error::Unsupported(format!(
                "`{activation}` is not a softmax-family op: it has no strategies to tune"
            )));
        }
        let view = view_of(activation, shape)?;
        if view.is_empty() {
            return Err(Error::Unsupported(format!(
                "a tensor of shape {shape:?} is empty: there is nothing to time"
            )));
        }
        if !self.tuning().enabled() {
            return Ok(strategy::auto(self, view, storage, direction));
        }
        let serving: Vec<Strategy> = candidates(direction)
            .iter()
            .copied()
            .filter(|&s| strategy::serves(self, s, view, storage))
            .collect();
        let (chosen, seconds) = fastest(&serving, timer)?;
        self.tuning()
            .record(TuneKey::of(view, storage, direction), chosen, seconds)?;
        Ok(chosen)
    }

    /// The tuned choices `Auto` takes on this context (its file's and those tuned since),
    /// and why its file was ignored, if it was. Its `Display` is one line per choice.
    pub fn tuned(&self) -> Tuned {
        self.tuning().snapshot()
    }

    /// Tunes `view` on first use (`Auto` met it with no tuned choice): a softmax over the
    /// middle axis of an (outer, axis, inner) tensor; a failure is a warning, and `Auto`
    /// keeps its table.
    pub(crate) fn tune_first_use(&self, view: RowView, storage: Storage, direction: Direction) {
        let softmax = Activation::new(crate::Op::Softmax).and_then(|a| a.with("dim", 1.0));
        let shape = [view.outer, view.axis, view.inner];
        if let Err(e) = softmax.and_then(|a| self.tune(&a, &shape, direction, storage)) {
            self.tuning().warn(format!(
                "tuning {direction:?} {storage} rows of {} on first use failed ({e}); \
                 Auto keeps its table",
                view.axis
            ));
        }
    }
}
