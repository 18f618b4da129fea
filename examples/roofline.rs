//! How close each kernel gets to the memory floor on this adapter: the median time of an
//! op beside floors measured in the same run: a `copy_buffer_to_buffer` of the same bytes,
//! this crate's own `identity` kernel on the same tensor (one read and one write; on a GPU
//! whose buffer copy is slow, the floor a shader can reach), and, given `--torch FILE`,
//! PyTorch's time for the same op and size and its device copy.
//!
//! ```text
//! cargo run --release --example roofline -- [--ops SPEC,SPEC,...] [--elements N[,N...]]
//!     [--rows L[,L...]] [--strategy S[,S...]] [--samples S] [--json] [--pipeline-cache FILE]
//!     [--backward] [--dtype T[,T...]] [--torch FILE] [--bias N] [--tune] [--tuning-file FILE]
//!     [--runtime-checks] [--zero-init] [--register-vec4s 4|8] [--serial-compile]
//! ```
//!
//! - `--ops`: the specs to measure (default: every op). Commas inside a spec's parentheses
//!   belong to the spec: `--ops 'relu,softplus(beta=2, threshold=10),softmax'`.
//! - `--elements`: sizes in elements (default: a ladder from 1K to 64M, by 4x).
//! - `--dtype f32,f16,bf16` (default f32): the tensors' storage types, each timed in turn
//!   in the same run (the op column then names the type). GB/s counts the type's bytes,
//!   Gel/s the elements (a half kernel at the memory floor moves twice the f32 one's), and
//!   the copy moves the same bytes.
//! - `--strategy`: the softmax family's strategies to time, each beside the others
//!   (`auto,lane,subgroup,workgroup,resident,split,registers,split_registers`; default
//!   `auto`; case, `_` and `-` ignored); a strategy the adapter cannot run for a shape is
//!   reported and skipped.
//! - `--rows`: row lengths for the softmax family (default 32, 128, 1024, 4096, 65536,
//!   1048576), each as a (elements / length, length) tensor where it fits; for a spec with
//!   `dim=0`, a (length, elements / length) tensor: rows strided across it, as PyTorch's
//!   `softmax(x.view(1024, n / 1024), 0)`.
//! - `--torch FILE`: JSON lines of `shared/tools/torch_bench.py` (PyTorch's `seconds` and
//!   `copy_seconds` per `op`, `elements` and `row`), matched to each measurement by spec,
//!   size and row length: the table adds `torch/op` (PyTorch's time over ours: 1.0 is
//!   PyTorch's speed, more is faster) and `tcopy/op` (PyTorch's device copy over ours).
//! - Timing: GPU timestamps written by empty compute passes on either side of the work
//!   where the adapter has `TIMESTAMP_QUERY`, else wall-clock submit-and-wait; each sample
//!   repeats the work enough times to take about 20 ms, and the median of `--samples`
//!   (default 5) samples is reported, per repetition.
//! - Prints a table (op, elements, row length, time, GB/s, copy time, copy / op, identity
//!   / op), or with `--json` one JSON object per line: `op` (the spec), `elements`, `row`
//!   (softmax only), `seconds`, `bytes`, `elements_per_second`, `dtype`, `copy_seconds`,
//!   `ratio` (copy / op), `identity_seconds`, `identity_ratio` (identity / op), with
//!   `--torch` `torch_seconds`, `torch_ratio`, `torch_copy_seconds`, `torch_copy_ratio`
//!   where PyTorch has the figure, `method`, `adapter`.
//! - `--backward`: times each op's backward instead (grad_input from the saved tensor and
//!   grad_output: two reads and one write), beside a copy of the same bytes and the op's
//!   forward at the same size: `bwd/fwd` is the backward's time per element over the
//!   forward's.
//! - Cold start first (stderr, or a `"cold_start"` JSON line): a bare wgpu device on the
//!   same kind of adapter, timed before anything else (`driver_device_seconds`: the
//!   driver's and wgpu's share), creating the context, the first result, and compiling
//!   every pipeline, with `--pipeline-cache FILE` loading and
//!   saving wgpu's pipeline cache there.
//! - `--bias N`: times each elementwise op fused after a bias (`Params::Bias`, along the
//!   last axis of an (elements / N, N) tensor) beside the two-kernel path on the same
//!   tensor: the bias added by the fused identity, then the op in place (`... + bias [two
//!   kernels]`); the JSON line of the fused one adds `two_kernel_seconds` and
//!   `fused_speedup` (two kernels' time over the fused one's).
//! - `--tune`: tunes each softmax-family shape on this adapter (`Context::tune`, forward,
//!   and backward with `--backward`) before timing it, so that the `auto` line, labelled
//!   `[auto: S]` with the strategy it ran, sits beside every strategy `--strategy` names
//!   (`--strategy auto,lane,subgroup,...`); the tuned table is printed last (stderr, or
//!   `"tuned"` JSON lines). `--tuning-file FILE` reads and writes the choices there.
//! - The kernel options ([`KernelOptions`]), so that one build measures each variant:
//!   `--runtime-checks` compiles with wgpu's shader runtime checks (index clamps, loop
//!   counters), `--zero-init` zero-initialises workgroup memory, `--register-vec4s 4|8`
//!   sets the register strategies' vec4s per invocation. The cold-start line names them
//!   (`adapter_facts`, and `kernels` in JSON). `--serial-compile` compiles every pipeline
//!   on one thread for the cold start (`Context::warm_up_on(1, ..)`), to compare with
//!   `warm_up`'s parallel compile.

use std::time::{Duration, Instant};

use wgpu_activations::{
    Activation, BufferRegion, Context, ContextOptions, Direction, KernelOptions, Op, ParamTensor,
    Params, Stopwatch, Storage, Strategy, TuningOptions,
};

struct Args {
    ops: Vec<Activation>,
    elements: Vec<u64>,
    rows: Vec<u64>,
    samples: usize,
    json: bool,
    pipeline_cache: Option<std::path::PathBuf>,
    /// The softmax family's strategies to time (`Auto` alone by default).
    strategies: Vec<Strategy>,
    /// Time the backward kernels.
    backward: bool,
    /// The tensors' storage type.
    dtypes: Vec<Storage>,
    /// PyTorch's figures (torch_bench.py's JSON lines).
    torch: Vec<TorchFigure>,
    /// Time the fused bias + activation, the bias this long.
    bias: Option<u64>,
    /// Tune each softmax-family shape before timing it.
    tune: bool,
    /// The tuning file (read at start, written after each tuning).
    tuning_file: Option<std::path::PathBuf>,
    /// How the context compiles its kernels.
    kernels: KernelOptions,
    /// Compile every pipeline on one thread (one op at a time) for the cold start.
    serial_compile: bool,
}

/// One line of torch_bench.py's output.
#[derive(Debug)]
struct TorchFigure {
    op: String,
    elements: u64,
    row: Option<u64>,
    seconds: f64,
    copy_seconds: f64,
}

/// The value of `"key": ...` in one flat JSON object line (a string without its quotes,
/// or a bare number, `null` or word), for the few fields of torch_bench.py's lines.
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = line[at..].trim_start().strip_prefix(':')?.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.find('"').map(|end| &quoted[..end]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// PyTorch's figures from torch_bench.py's output (other lines are skipped).
fn read_torch(path: &str) -> Vec<TorchFigure> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| usage(&format!("--torch {path}: {e}")));
    let figures: Vec<TorchFigure> = text
        .lines()
        .filter_map(|line| {
            Some(TorchFigure {
                op: json_field(line, "op")?.to_string(),
                elements: json_field(line, "elements")?.parse().ok()?,
                row: json_field(line, "row").and_then(|r| r.parse().ok()),
                seconds: json_field(line, "seconds")?.parse().ok()?,
                copy_seconds: json_field(line, "copy_seconds")?.parse().ok()?,
            })
        })
        .collect();
    if figures.is_empty() {
        usage(&format!(
            "--torch {path}: no line with op, elements, seconds and copy_seconds"
        ));
    }
    figures
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "roofline: {msg}\nusage: roofline [--ops SPEC,SPEC,...] [--elements N[,N...]] \
         [--rows L[,L...]] [--strategy S[,S...]] [--samples S] [--json] [--backward] \
         [--pipeline-cache FILE] [--dtype f32,f16,bf16] [--torch FILE] [--bias N] [--tune] \
         [--tuning-file FILE] [--runtime-checks] [--zero-init] [--register-vec4s 4|8] \
         [--serial-compile]"
    );
    std::process::exit(2)
}

fn numbers(flag: &str, list: &str) -> Vec<u64> {
    list.split(',')
        .map(|v| {
            v.trim()
                .replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| usage(&format!("{flag} takes positive integers, got `{v}`")))
        })
        .collect()
}

fn parse_args() -> Args {
    let mut args = Args {
        ops: Op::ALL.iter().map(|&op| Activation::example(op)).collect(),
        elements: (0..9).map(|i| 1024u64 << (2 * i)).collect(),
        rows: vec![32, 128, 1024, 4096, 65_536, 1 << 20],
        samples: 5,
        json: false,
        pipeline_cache: None,
        strategies: vec![Strategy::Auto],
        backward: false,
        dtypes: vec![Storage::F32],
        torch: Vec::new(),
        bias: None,
        tune: false,
        tuning_file: None,
        kernels: KernelOptions::default(),
        serial_compile: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--ops" => {
                args.ops =
                    Activation::parse_list(&value()).unwrap_or_else(|e| usage(&format!("{e}")))
            }
            "--elements" => args.elements = numbers("--elements", &value()),
            "--rows" => args.rows = numbers("--rows", &value()),
            "--samples" => args.samples = numbers("--samples", &value())[0] as usize,
            "--json" => args.json = true,
            "--backward" => args.backward = true,
            "--dtype" => {
                args.dtypes = value()
                    .split(',')
                    .map(|t| t.trim().parse().unwrap_or_else(|e| usage(&format!("{e}"))))
                    .collect()
            }
            "--pipeline-cache" => args.pipeline_cache = Some(value().into()),
            "--torch" => args.torch = read_torch(&value()),
            "--bias" => args.bias = Some(numbers("--bias", &value())[0]),
            "--tune" => args.tune = true,
            "--tuning-file" => args.tuning_file = Some(value().into()),
            "--runtime-checks" => args.kernels.runtime_checks = true,
            "--zero-init" => args.kernels.zero_initialize_workgroup_memory = true,
            "--register-vec4s" => {
                args.kernels.register_vec4s = numbers("--register-vec4s", &value())[0] as u32
            }
            "--serial-compile" => args.serial_compile = true,
            "--strategy" => {
                args.strategies = value()
                    .split(',')
                    .map(|name| {
                        let all = [Strategy::Auto].into_iter().chain(Strategy::ALL);
                        all.into_iter()
                            .find(|s| {
                                let name = name.trim().replace(['_', '-'], "");
                                format!("{s:?}").eq_ignore_ascii_case(&name)
                            })
                            .unwrap_or_else(|| usage(&format!("unknown strategy `{name}`")))
                    })
                    .collect()
            }
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    args
}

/// Seconds to create a bare wgpu device on the adapter a context would take (a
/// discrete GPU first): the driver's and wgpu's share of the context's creation, timed
/// first, before anything has warmed the driver. 0 where no adapter answers.
fn driver_device_seconds() -> f64 {
    let start = Instant::now();
    let instance = wgpu::Instance::default();
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }));
    let Ok(adapter) = adapter else { return 0.0 };
    let device = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()));
    let seconds = start.elapsed().as_secs_f64();
    drop(device);
    seconds
}

/// Times `record` (which records one repetition of the work) on the GPU, with the
/// crate's stopwatch.
struct Timer<'a>(Stopwatch<'a>);

impl<'a> Timer<'a> {
    fn new(ctx: &'a Context) -> Self {
        Timer(Stopwatch::new(ctx))
    }

    fn method(&self) -> &'static str {
        self.0.method()
    }

    /// One sample: `reps` repetitions in one submission; seconds per repetition.
    fn sample(&self, reps: u32, record: &dyn Fn(&mut wgpu::CommandEncoder)) -> f64 {
        self.0
            .time(reps, &mut |e| {
                record(e);
                Ok(())
            })
            .expect("the GPU ran the work")
    }

    /// The median of `samples` samples, each repeating the work for about 20 ms.
    fn median(&self, samples: usize, record: &dyn Fn(&mut wgpu::CommandEncoder)) -> f64 {
        let once = self.sample(1, record).max(1e-7); // also a warm-up
        let reps = (0.02 / once).clamp(1.0, 1000.0) as u32;
        let mut times: Vec<f64> = (0..samples.max(1))
            .map(|_| self.sample(reps, record))
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }
}

fn main() {
    let args = parse_args();
    let driver = driver_device_seconds();
    let cold = Instant::now();
    let ctx = Context::with_options(ContextOptions {
        pipeline_cache: args.pipeline_cache.clone(),
        tuning: TuningOptions {
            file: args.tuning_file.clone(),
            on_first_use: false,
        },
        kernels: args.kernels,
        ..Default::default()
    })
    .unwrap_or_else(|e| {
        eprintln!("roofline: {e}");
        std::process::exit(1)
    });
    let created = cold.elapsed();
    let relu: Activation = "relu".parse().unwrap();
    ctx.call(&relu, &[1024])
        .run(&[1.0; 1024])
        .expect("a first result");
    let first = cold.elapsed();
    let warm = Instant::now();
    let threads = if args.serial_compile { 1 } else { 0 };
    ctx.warm_up_on(threads, &[], &[Direction::Forward], Storage::F32)
        .expect("every pipeline compiles");
    for &dtype in args.dtypes.iter().filter(|&&t| t != Storage::F32) {
        ctx.warm_up(&[], &[Direction::Forward, Direction::Backward], dtype)
            .expect("every half pipeline compiles");
    }
    let compiled = warm.elapsed();
    if args.pipeline_cache.is_some() {
        ctx.save_pipeline_cache().expect("the pipeline cache saves");
    }
    let adapter = ctx.adapter_name();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if args.json {
        println!(
            "{{\"cold_start\": true, \"context_seconds\": {:e}, \"first_result_seconds\": {:e}, \
             \"all_pipelines_seconds\": {:e}, \"driver_device_seconds\": {:e}, \
             \"pipeline_cache\": {}, \"adapter\": \"{}\", \
             \"fused_fma\": {}, \"flushes_subnormals\": {}, \"subgroups\": {}, \
             \"adapter_facts\": \"{}\", \"kernels\": \"{}\", \"serial_compile\": {}}}",
            created.as_secs_f64(),
            first.as_secs_f64(),
            compiled.as_secs_f64(),
            driver,
            ctx.has_pipeline_cache(),
            adapter.replace('"', "'"),
            ctx.facts().fused_fma,
            ctx.facts().flushes_subnormals,
            ctx.facts().subgroups,
            ctx.facts(),
            ctx.facts().kernels,
            args.serial_compile
        );
    } else {
        eprintln!(
            "adapter: {adapter}\nadapter facts: {}\ncold start: a bare wgpu device {:.1} ms (the \
             driver's share), then the context {:.1} ms, first result {:.1} ms, every \
             pipeline compiled {:.1} ms more (pipeline cache: {})",
            ctx.facts(),
            driver * 1e3,
            ms(created),
            ms(first),
            ms(compiled),
            if ctx.has_pipeline_cache() {
                "yes"
            } else {
                "no"
            }
        );
        println!(
            "{:<34} {:>10} {:>8} {:>12} {:>8} {:>8} {:>12} {:>9} {:>7}{}{}",
            "op",
            "elements",
            "row",
            "time (µs)",
            "GB/s",
            "Gel/s",
            "copy (µs)",
            "copy/op",
            "id/op",
            if args.torch.is_empty() {
                ""
            } else {
                " torch/op tcopy/op"
            },
            if args.backward { "  bwd/fwd" } else { "" }
        );
    }

    let timer = Timer::new(&ctx);
    let max = args.elements.iter().copied().max().unwrap_or(0);
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    // the backward's floor copies 1.5x the elements (three tensors' bytes)
    let room = if args.backward {
        max.div_ceil(2) * 3
    } else {
        max
    };
    let make = |label, elements: u64| {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: elements * 4,
            usage,
            mapped_at_creation: false,
        })
    };
    let (src, dst) = (make("roofline input", room), make("roofline output", room));
    let grad = make("roofline grad_output", if args.backward { max } else { 1 });
    let data: Vec<f32> = (0..max).map(|i| (i % 4001) as f32 / 200.0 - 10.0).collect();
    let g: Vec<f32> = (0..max).map(|i| (i % 97) as f32 / 97.0 - 0.5).collect();
    if args.backward {
        ctx.warm_up(&[], &[Direction::Backward], Storage::F32)
            .expect("every backward pipeline compiles");
    }

    for (&dtype, &n) in args
        .dtypes
        .iter()
        .flat_map(|t| args.elements.iter().map(move |n| (t, n)))
    {
        if n == args.elements[0] {
            ctx.queue().write_buffer(&src, 0, &stored(&data, dtype));
            if args.backward {
                ctx.queue().write_buffer(&grad, 0, &stored(&g, dtype));
            }
        }
        let region = |b| BufferRegion::new(b).with_storage(dtype);
        let named = |spec: &str| {
            if args.dtypes.len() > 1 {
                format!("{spec} [{dtype}]")
            } else {
                spec.to_string()
            }
        };
        // one read and one write; the backward two reads and one write
        let tensors = if args.backward { 3 } else { 2 };
        let bytes = tensors * dtype.bytes() * n;
        let copied = bytes / 2 / 4 / 4 * 4; // f32 elements of a copy moving `bytes`
        let copy = timer.median(args.samples, &|e| {
            e.copy_buffer_to_buffer(&src, 0, &dst, 0, copied * 4)
        });
        // This crate's identity kernel on the same tensors: the floor a shader reaches here
        // (the backward's: identity's backward, two reads and one write).
        let identity = Activation::example(Op::Identity);
        let identity_seconds = timer.median(args.samples, &|e| {
            let (x, y, g) = (region(&src), region(&dst), region(&grad));
            if args.backward {
                ctx.call(&identity, &[n as usize])
                    .encode_backward(e, x, g, y)
            } else {
                ctx.call(&identity, &[n as usize]).encode(e, x, y)
            }
            .expect("identity encodes")
        });
        let report = |spec: &str, row: Option<u64>, seconds: f64, forward: Option<f64>| {
            let ratio = copy / seconds;
            let identity_ratio = identity_seconds / seconds;
            let per_forward = forward.map(|f| seconds / f);
            // PyTorch's forward figure for this spec, size and row (f32 only)
            let torch = args.torch.iter().find(|t| {
                forward.is_none()
                    && dtype == Storage::F32
                    && t.op == spec
                    && t.elements == n
                    && t.row == row
            });
            if args.json {
                let row = row.map_or(String::new(), |r| format!("\"row\": {r}, "));
                let fwd = forward.map_or(String::new(), |f| {
                    format!("\"backward\": true, \"forward_seconds\": {f:e}, ")
                });
                let peer = torch.map_or(String::new(), |t| {
                    format!(
                        "\"torch_seconds\": {:e}, \"torch_ratio\": {:.4}, \
                         \"torch_copy_seconds\": {:e}, \"torch_copy_ratio\": {:.4}, ",
                        t.seconds,
                        t.seconds / seconds,
                        t.copy_seconds,
                        t.copy_seconds / seconds
                    )
                });
                println!(
                    "{{\"op\": \"{spec}\", \"elements\": {n}, {row}\"seconds\": {seconds:e}, \
                     {fwd}\"bytes\": {bytes}, \"elements_per_second\": {:e}, \"dtype\": \"{}\", \
                     \"copy_seconds\": {copy:e}, \"ratio\": {ratio:.4}, \
                     \"identity_seconds\": {identity_seconds:e}, \
                     \"identity_ratio\": {identity_ratio:.4}, {peer}\"method\": \"{}\", \
                     \"adapter\": \"{}\"}}",
                    n as f64 / seconds,
                    dtype,
                    timer.method(),
                    adapter.replace('"', "'")
                );
            } else {
                let peer = match torch {
                    Some(t) => format!(
                        " {:>8.3} {:>8.3}",
                        t.seconds / seconds,
                        t.copy_seconds / seconds
                    ),
                    None if args.torch.is_empty() => String::new(),
                    None => format!(" {:>8} {:>8}", "-", "-"),
                };
                println!(
                    "{:<34} {:>10} {:>8} {:>12.1} {:>8.2} {:>8.3} {:>12.1} {:>9.3} {:>7.3}{peer}{}",
                    named(spec),
                    n,
                    row.map_or("-".to_string(), |r| r.to_string()),
                    seconds * 1e6,
                    bytes as f64 / seconds / 1e9,
                    n as f64 / seconds / 1e9,
                    copy * 1e6,
                    ratio,
                    identity_ratio,
                    per_forward.map_or(String::new(), |r| format!(" {r:>8.3}"))
                );
            }
        };
        let bias_buffer = make("roofline bias", args.bias.unwrap_or(1));
        for a in &args.ops {
            let spec = a.to_string();
            if let Some(len) = args.bias {
                let fusable = a.op().elementwise().is_some() && a.op().random().is_none();
                if !fusable || n % len != 0 {
                    continue;
                }
                let shape = [(n / len) as usize, len as usize];
                let bias = Params::Bias {
                    bias: ParamTensor::Buffer(region(&bias_buffer), len as usize),
                    dim: -1,
                };
                let identity = Activation::example(Op::Identity);
                let fused = timer.median(args.samples, &|e| {
                    let (x, y) = (region(&src), region(&dst));
                    let call = ctx.call(a, &shape).params(bias);
                    call.encode(e, x, y).expect("the fused bias encodes")
                });
                let two = timer.median(args.samples, &|e| {
                    let (x, y) = (region(&src), region(&dst));
                    let add = ctx.call(&identity, &shape).params(bias);
                    add.encode(e, x, y).expect("the bias adds");
                    ctx.call(a, &shape).encode(e, y, y).expect("the op encodes")
                });
                if args.json {
                    println!(
                        "{{\"op\": \"{spec} + bias\", \"elements\": {n}, \"bias\": {len}, \
                         \"seconds\": {fused:e}, \"two_kernel_seconds\": {two:e}, \
                         \"fused_speedup\": {:.4}, \"identity_seconds\": {identity_seconds:e}, \
                         \"identity_ratio\": {:.4}, \"dtype\": \"{dtype}\", \"method\": \"{}\", \
                         \"adapter\": \"{}\"}}",
                        two / fused,
                        identity_seconds / fused,
                        timer.method(),
                        adapter.replace('"', "'")
                    );
                } else {
                    report(&format!("{spec} + bias"), None, fused, None);
                    report(&format!("{spec} + bias [two kernels]"), None, two, None);
                }
                continue;
            }
            // softmax: one tensor per row length; others: one axis of n (dice: a batch of
            // n / 256 with 256 features)
            let shapes: Vec<(Option<u64>, Vec<usize>)> = if a.op().softmax().is_some() {
                args.rows
                    .iter()
                    .filter(|&&r| r <= n && n % r == 0)
                    .map(|&r| {
                        let (r, others) = (r as usize, (n / r) as usize);
                        if a.dim() == 0 {
                            (Some(r as u64), vec![r, others])
                        } else {
                            (Some(r as u64), vec![others, r])
                        }
                    })
                    .collect()
            } else if a.op().info().is_dice() && n % 256 == 0 {
                vec![(None, vec![(n / 256) as usize, 256])]
            } else {
                vec![(None, vec![n as usize])]
            };
            let strategies: &[Strategy] = if a.op().softmax().is_some() {
                &args.strategies
            } else {
                &[Strategy::Auto]
            };
            for (row, shape) in shapes {
                if args.tune {
                    tune(&ctx, a, &shape, args.backward, dtype);
                }
                for &strategy in strategies {
                    let encode = |e: &mut wgpu::CommandEncoder| {
                        let (x, y) = (region(&src), region(&dst));
                        if strategy == Strategy::Auto {
                            ctx.call(a, &shape).encode(e, x, y)
                        } else {
                            ctx.call(a, &shape).strategy(strategy).encode(e, x, y)
                        }
                    };
                    // What this adapter cannot run is reported, not timed.
                    let mut probe = ctx.device().create_command_encoder(&Default::default());
                    if let Err(e) = encode(&mut probe) {
                        eprintln!("{spec} {strategy:?} at {n} elements ({shape:?}): skipped: {e}");
                        continue;
                    }
                    let t = timer.median(args.samples, &|e| {
                        encode(e).expect("the op encoded once already")
                    });
                    let label = if strategy == Strategy::Auto && args.tune {
                        let plan = ctx.call(a, &shape).row_plan(Direction::Forward, dtype);
                        format!("{spec} [auto: {:?}]", plan.expect("it ran").strategy)
                    } else if strategy == Strategy::Auto {
                        spec.clone()
                    } else {
                        format!("{spec} [{strategy:?}]")
                    };
                    if !args.backward {
                        report(&label, row, t, None);
                        continue;
                    }
                    let backward = |e: &mut wgpu::CommandEncoder| {
                        let (x, g, gx) = (region(&src), region(&grad), region(&dst));
                        if strategy == Strategy::Auto {
                            ctx.call(a, &shape).encode_backward(e, x, g, gx)
                        } else {
                            ctx.call(a, &shape)
                                .strategy(strategy)
                                .encode_backward(e, x, g, gx)
                        }
                    };
                    let mut probe = ctx.device().create_command_encoder(&Default::default());
                    if let Err(e) = backward(&mut probe) {
                        eprintln!("{spec} backward at {n} elements ({shape:?}): skipped: {e}");
                        continue;
                    }
                    let tb = timer.median(args.samples, &|e| {
                        backward(e).expect("the backward encoded once already")
                    });
                    let label = if strategy == Strategy::Auto && args.tune {
                        let plan = ctx.call(a, &shape).row_plan(Direction::Backward, dtype);
                        format!("{spec} [auto: {:?}]", plan.expect("it ran").strategy)
                    } else {
                        label
                    };
                    report(&format!("{label} backward"), row, tb, Some(t));
                }
            }
        }
    }
    if args.tune {
        print_tuned(&ctx, args.json);
    }
}

/// `values` as the bytes of `dtype` elements, in whole 4-byte words (an odd number of
/// halves gets a padding element: wgpu writes whole words).
fn stored(values: &[f32], dtype: Storage) -> Vec<u8> {
    let mut bytes: Vec<u8> = match dtype {
        Storage::F32 => bytemuck::cast_slice(values).to_vec(),
        Storage::F16 => values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        Storage::Bf16 => values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect(),
    };
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    bytes
}

/// Tunes the forward (and with `--backward` the backward) of `a` on `shape`, saying what
/// was chosen on stderr.
fn tune(ctx: &Context, a: &Activation, shape: &[usize], backward: bool, dtype: Storage) {
    let directions: &[Direction] = if backward {
        &[Direction::Forward, Direction::Backward]
    } else {
        &[Direction::Forward]
    };
    for &direction in directions {
        match ctx.tune(a, shape, direction, dtype) {
            Ok(s) => eprintln!("tuned {a} {direction:?} {dtype} {shape:?}: {s:?}"),
            Err(e) => eprintln!("tuning {a} {direction:?} {dtype} {shape:?} failed: {e}"),
        }
    }
}

/// The context's tuned table: one line per choice on stderr, or with `--json` one
/// `"tuned"` JSON line per choice.
fn print_tuned(ctx: &Context, json: bool) {
    let tuned = ctx.tuned();
    for w in &tuned.warnings {
        eprintln!("tuning: {w}");
    }
    if !json {
        eprint!("tuned choices:\n{tuned}");
        return;
    }
    for (key, strategy, seconds) in &tuned.choices {
        println!(
            "{{\"tuned\": true, \"direction\": \"{:?}\", \"dtype\": \"{}\", \"axis_bucket\": {}, \
             \"rows\": \"{:?}\", \"strided\": {}, \"strategy\": \"{strategy:?}\", \"seconds\": {seconds:e}}}",
            key.direction, key.storage, key.axis_bucket, key.rows, key.strided
        );
    }
}
