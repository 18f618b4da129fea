//! Activate a buffer on the GPU from a terminal.
//!
//! ```text
//! cargo run --release --example activate -- SPEC [--shape D0,D1,...] [--input FILE] [--output FILE] [--dtype T]
//! cargo run --release --example activate -- SPEC --backward [--shape ...] [--input X --grad-output G] [--output GX] [--dtype T]
//! cargo run --release --example activate -- SPEC --bias FILE --shape M,N [--input FILE] [--output FILE] [--dtype T]
//! cargo run --release --example activate -- --wgsl SPEC
//! ```
//!
//! - No `--input`: activates a small sample buffer and prints the input, the GPU output,
//!   the CPU reference and the largest difference, with the adapter's name.
//! - `--input FILE`: raw little-endian f32 values. `--output FILE`: the results, raw
//!   little-endian f32, in the same order (written whole or not at all).
//! - `--dtype f16|bf16` (default f32): the files hold raw little-endian f16 or bf16
//!   values (2 bytes each), the kernels load and store that type (computing in f32), and
//!   differences are counted in its ULPs against the f64 reference rounded to it.
//! - `--shape`: the tensor shape (default: one dimension, the input's length); it must
//!   hold as many elements as the input. The softmax family normalises along the spec's
//!   `dim` (`softmax(dim=0) --shape 4,8`); grouped ops (`maxout(k=2)`, `glu`) shrink that
//!   axis, and the output file holds the shorter tensor; elementwise ops ignore the shape.
//! - `--output` is written whole or not at all: into a temporary file beside the target,
//!   then renamed over it, so two writers of one file never interleave (the last rename
//!   wins) and a failed run leaves the old file. A symbolic link is followed (the file it
//!   names is replaced, the link kept); a device or FIFO (`/dev/null`, `/dev/stdout`) is
//!   written through directly.
//! - `--backward`: the backward instead: grad_input from x (`--input`) and grad_output
//!   (`--grad-output`, the forward output's shape), written to `--output`. Ops whose
//!   backward reads y (sigmoid, tanh, the softmax family) get it from the GPU forward
//!   first. Without files: x, y = f(x), and grad_input for a sample grad_output (1 for the
//!   elementwise ops, so it is f'(x)) beside the CPU reference.
//! - `--bias FILE`: the fused bias + activation, `f(x + bias)`, the bias along the last
//!   axis of `--shape` (raw values of `--dtype`, one per index of that axis); the
//!   reference is the op of the sums. A bias of another length, or with `--backward`, is a
//!   usage error.
//! - `--wgsl`: prints the op's forward and backward as WGSL functions for the user's own
//!   kernels (`NAME` and `NAME_backward`, with their `_init`), specialised for this
//!   adapter (`Context::wgsl_function`); an op that is not elementwise is a usage error.
//! - `--help`: this usage on stdout, exit 0. Any error: one line on stderr and a non-zero
//!   exit status (2 for usage, 1 otherwise), never a panic (also when stdout is closed).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wgpu_activations::{accuracy, cpu, Accuracy, Activation, Context, Storage};

const USAGE: &str = "usage: activate SPEC [--shape D0,D1,...] [--input FILE] [--output FILE] \
     [--dtype f32|f16|bf16]  (e.g. activate 'gelu(approximate=tanh)')\n       \
     activate SPEC --backward [--shape D0,D1,...] [--input X --grad-output G] [--output GX] \
     [--dtype f32|f16|bf16]\n       \
     activate SPEC --bias FILE --shape D0,...,N [--input FILE] [--output FILE] [--dtype ...]\n       \
     activate --wgsl SPEC";

const SAMPLE: [f32; 13] = [
    -10.0, -8.0, -4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0,
];

struct Args {
    spec: String,
    shape: Option<Vec<usize>>,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    backward: bool,
    grad_output: Option<PathBuf>,
    dtype: Storage,
    bias: Option<PathBuf>,
    wgsl: bool,
}

enum Failure {
    Usage(String),
    Run(String),
    /// `--help`: the usage on stdout, success.
    Help,
}

/// Prints to stdout, turning a write error (a closed pipe, a full disk) into a failure
/// instead of println!'s panic.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(stdout_failure)?
    };
}

fn stdout_failure(e: std::io::Error) -> Failure {
    Failure::Run(format!("cannot write to standard output: {e}"))
}

fn parse_args(args: impl Iterator<Item = OsString>) -> Result<Args, Failure> {
    let usage = |m: String| Failure::Usage(format!("{m}\n{USAGE}"));
    // Every argument is text (a spec, a flag, a shape) or a path; paths stay OsStrings.
    let mut args = args.peekable();
    let mut spec = None;
    let (mut shape, mut input, mut output, mut grad_output) = (None, None, None, None);
    let mut backward = false;
    let (mut bias, mut wgsl) = (None, false);
    let mut dtype = Storage::F32;
    while let Some(raw) = args.next() {
        let arg = raw.to_str().map(str::to_string);
        let mut path = |flag: &str| {
            args.next()
                .map(PathBuf::from)
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        let Some(arg) = arg else {
            return Err(usage(format!(
                "argument `{}` is not valid UTF-8 (specs and flags are text)",
                raw.to_string_lossy()
            )));
        };
        let mut value = |flag: &str| {
            let v = path(flag)?;
            v.to_str().map(str::to_string).ok_or_else(|| {
                usage(format!(
                    "{flag} value `{}` is not valid UTF-8",
                    v.to_string_lossy()
                ))
            })
        };
        match arg.as_str() {
            "--shape" => {
                let v = value("--shape")?;
                let dims = v
                    .split(',')
                    .map(|d| d.trim().parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        usage(format!("--shape must be comma-separated sizes, got `{v}`"))
                    })?;
                shape = Some(dims);
            }
            "--input" => input = Some(path("--input")?),
            "--output" => output = Some(path("--output")?),
            "--grad-output" => grad_output = Some(path("--grad-output")?),
            "--backward" => backward = true,
            "--bias" => bias = Some(path("--bias")?),
            "--wgsl" => wgsl = true,
            "--dtype" => {
                dtype = value("--dtype")?
                    .parse()
                    .map_err(|e: wgpu_activations::Error| usage(e.to_string()))?
            }
            "-h" | "--help" => return Err(Failure::Help),
            flag if flag.starts_with("--") => return Err(usage(format!("unknown flag `{flag}`"))),
            _ if spec.is_none() => spec = Some(arg),
            _ => return Err(usage(format!("unexpected argument `{arg}`"))),
        }
    }
    let spec = spec.ok_or_else(|| usage("missing SPEC".to_string()))?;
    if grad_output.is_some() && !backward {
        return Err(usage("--grad-output is for --backward".to_string()));
    }
    if bias.is_some() && backward {
        return Err(usage("--bias is for the forward".to_string()));
    }
    let files = input.is_some() || output.is_some() || bias.is_some() || backward;
    if wgsl && (files || shape.is_some()) {
        return Err(usage(
            "--wgsl prints the functions; it takes no files or shape".to_string(),
        ));
    }
    if backward && input.is_some() != grad_output.is_some() {
        return Err(usage(
            "--backward takes both --input (x) and --grad-output, or neither (a sample)"
                .to_string(),
        ));
    }
    Ok(Args {
        spec,
        shape,
        input,
        output,
        backward,
        grad_output,
        dtype,
        bias,
        wgsl,
    })
}

/// The values of a raw little-endian file of `dtype` elements, as f32.
fn read_values(path: &Path, dtype: Storage) -> Result<Vec<f32>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Run(format!("cannot read {}: {e}", path.display())))?;
    dtype::decode(&bytes, dtype).map_err(|e| Failure::Run(format!("{} {e}", path.display())))
}

/// Writes `values` (of `dtype`) to `path` whole or not at all: into a temporary file of a unique name
/// beside the target, renamed over it at the end (two writers never share a temporary
/// file, and the last rename wins). A symbolic link is followed, so the file it names is
/// replaced and the link kept; a device or FIFO is written through directly.
fn write_values(path: &Path, values: &[f32], dtype: Storage) -> Result<(), Failure> {
    let bytes = dtype::encode(values, dtype);
    let fail = |what: &str, e: std::io::Error| {
        Failure::Run(format!("cannot write {}: {what}: {e}", path.display()))
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => {
            // /dev/null, /dev/stdout, a FIFO: no rename is possible, nor needed
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| fail("opening it", e))?;
            return f.write_all(&bytes).map_err(|e| fail("writing", e));
        }
        Ok(meta) if meta.is_dir() => {
            return Err(Failure::Run(format!(
                "cannot write {}: it is a directory; name a file",
                path.display()
            )))
        }
        _ => {}
    }
    // A link: replace what it names, beside it, and keep the link.
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| fail("following the symbolic link", e))?
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(|e| {
            fail(
                &format!("creating a temporary file in {}", dir.display()),
                e,
            )
        })?;
    let tmp_name = tmp.path().display().to_string();
    // The new file gets the old one's permissions, or the usual ones (tempfile's are 0600).
    let permissions = std::fs::metadata(&target).map(|m| m.permissions());
    #[cfg(unix)]
    let permissions = permissions.or_else(|_| {
        use std::os::unix::fs::PermissionsExt;
        Ok::<_, std::io::Error>(std::fs::Permissions::from_mode(0o644))
    });
    if let Ok(p) = permissions {
        tmp.as_file()
            .set_permissions(p)
            .map_err(|e| fail(&format!("setting the permissions of {tmp_name}"), e))?;
    }
    tmp.write_all(&bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| fail(&format!("writing the temporary file {tmp_name}"), e))?;
    // On error the temporary file is removed when `tmp` drops.
    tmp.persist(&target)
        .map_err(|e| fail(&format!("renaming {tmp_name} over it"), e.error))?;
    Ok(())
}

fn run(args: Args) -> Result<(), Failure> {
    let activation: Activation = args
        .spec
        .parse()
        .map_err(|e| Failure::Usage(format!("{e}")))?;
    if args.wgsl {
        return print_wgsl(&activation);
    }
    let input = match &args.input {
        Some(path) => read_values(path, args.dtype)?,
        // A grouped op's sample is a whole number of groups.
        None if args.shape.is_none() => {
            let k = activation.group_size().unwrap_or(1);
            SAMPLE[..SAMPLE.len() / k * k].to_vec()
        }
        None => SAMPLE.to_vec(),
    };
    let input = dtype::round(&input, args.dtype);
    let half = args.dtype != Storage::F32;
    let shape = args.shape.clone().unwrap_or_else(|| vec![input.len()]);
    let elements = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--shape {shape:?} holds more elements than this machine can address \
                 (the product overflows); the input has {}",
                input.len()
            ))
        })?;
    if elements != input.len() {
        return Err(Failure::Usage(format!(
            "--shape {shape:?} holds {elements} elements, the input has {}",
            input.len()
        )));
    }
    let bias = match &args.bias {
        Some(path) => Some(read_bias(path, &activation, &shape, args.dtype)?),
        None => None,
    };
    // The reference of the fused path is the op of the sums, rounded once to f32.
    let pre = match &bias {
        Some(b) => input
            .iter()
            .enumerate()
            .map(|(i, &x)| x + b[i % b.len()])
            .collect(),
        None => input.clone(),
    };
    // A `dim` outside the shape is a usage error, caught before any GPU work.
    let reference = cpu::reference_shaped_f64(&activation, &pre, &shape)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if args.backward {
        return backward::run(&args, &activation, &input, &shape);
    }
    let ctx = Context::new().map_err(|e| Failure::Run(e.to_string()))?;
    let output = dtype::forward(
        &ctx,
        args.dtype,
        &activation,
        &input,
        &shape,
        bias.as_deref(),
    )
    .map_err(|e| Failure::Run(e.to_string()))?;
    if let Some(path) = &args.output {
        write_values(path, &output, args.dtype)?;
    }
    let grouped = activation.group_size().is_some();
    let random = activation.op().random().is_some();
    let relative = match activation.op().info().accuracy {
        Accuracy::Relative { rel, abs } => Some((rel, abs)),
        _ => None,
    };
    if args.input.is_none() {
        say!("{activation} on {} in {}", ctx.adapter_name(), args.dtype);
        let unit = match (half, relative) {
            (true, _) => format!("ULP {}", args.dtype),
            (false, Some(_)) => "rel err".to_string(),
            (false, None) => "ULP".to_string(),
        };
        let first = if grouped { "output" } else { "input" };
        say!(
            "{first:>14} {:>16} {:>16} {:>9}",
            "gpu",
            "cpu reference",
            unit
        );
        for (i, y) in output.iter().enumerate() {
            let err = match relative {
                _ if half => dtype::ulps(*y, reference[i], args.dtype).to_string(),
                Some((rel, abs)) => {
                    let r = accuracy::compare_relative(&reference[i..=i], &[*y], rel, abs);
                    format!("{:.1e}", r.max_error)
                }
                // indexed ops: the reference of element i, not of its value alone
                None if grouped || random => grouped_ulp(*y, reference[i]).to_string(),
                None => accuracy::element_error(&activation, pre[i], *y).to_string(),
            };
            let r = reference[i] as f32;
            let lead = if grouped {
                i.to_string()
            } else {
                format!("{:e}", input[i])
            };
            say!("{lead:>14} {y:>16e} {r:>16e} {err:>9}");
        }
    } else {
        say!(
            "{activation} on {} in {}: {} values, shape {shape:?}",
            ctx.adapter_name(),
            args.dtype,
            input.len()
        );
    }
    match relative {
        _ if half => {
            let (worst, at) = dtype::worst(&output, &reference, args.dtype);
            say!(
                "largest difference from the CPU reference rounded to {0}: {worst} {0} ULP \
                 (at output {at})",
                args.dtype
            );
        }
        None if grouped || random => {
            let (worst, at) = output
                .iter()
                .zip(&reference)
                .map(|(&y, &r)| grouped_ulp(y, r))
                .zip(0..)
                .max()
                .unwrap_or((0, 0));
            say!(
                "largest difference from the CPU reference: {worst} ULP (at output {at}), \
                 {} outputs of shape {:?}",
                output.len(),
                activation.output_shape(&shape).unwrap_or_default()
            );
        }
        Some((rel, abs)) => {
            let r = accuracy::compare_relative(&reference, &output, rel, abs);
            say!(
                "largest error against the f64 CPU reference: {:.2e} relative (bound {rel:e}, \
                 or {abs:e} absolute) at element {}: gpu {:e}, reference {:e}",
                r.max_error,
                r.worst_index,
                r.worst_output,
                r.worst_expected
            );
        }
        None => {
            let report = accuracy::compare(&activation, &pre, &output);
            let worst = if report.max_ulp == u64::MAX {
                "NaN mismatch".to_string()
            } else {
                format!("{} ULP", report.max_ulp)
            };
            say!(
                "largest difference from the CPU reference: {worst} (at x = {:e}: gpu {:e}, \
                 reference {:e})",
                report.worst_input,
                report.worst_output,
                report.worst_expected
            );
        }
    }
    Ok(())
}

/// The bias of `--bias`: one value per index of the shape's last axis, of an op a bias may
/// precede.
fn read_bias(
    path: &Path,
    a: &Activation,
    shape: &[usize],
    dtype: Storage,
) -> Result<Vec<f32>, Failure> {
    if a.op().elementwise().is_none() || a.op().random().is_some() {
        return Err(Failure::Usage(format!(
            "--bias goes with the elementwise ops; `{a}` is not one\n{USAGE}"
        )));
    }
    let bias = read_values(path, dtype)?;
    let last = shape.last().copied().unwrap_or(1);
    if bias.len() != last {
        return Err(Failure::Usage(format!(
            "the bias holds {} values and the last axis of the shape {shape:?} has {last}: \
             one per index of it\n{USAGE}",
            bias.len()
        )));
    }
    Ok(bias)
}

/// `--wgsl`: the op's forward and backward as exported WGSL functions for this adapter.
fn print_wgsl(a: &Activation) -> Result<(), Failure> {
    let ctx = Context::new().map_err(|e| Failure::Run(e.to_string()))?;
    let name = a.op().name();
    let backward = format!("{name}_backward");
    let usage = |e: wgpu_activations::Error| Failure::Usage(format!("{e}\n{USAGE}"));
    let forward = ctx.wgsl_function(a, name).map_err(usage)?;
    let backward = ctx.wgsl_backward_function(a, &backward).map_err(usage)?;
    say!("{forward}\n{backward}");
    Ok(())
}

/// ULPs between a grouped op's output and its f64 reference, under the accuracy policy
/// (NaN meets NaN; a subnormal may come back as a zero of its sign).
fn grouped_ulp(y: f32, r: f64) -> u64 {
    accuracy::error_against(r as f32, y)
}

/// One line on stderr; a closed stderr is ignored (eprintln! would panic).
fn complain(m: &str) {
    let _ = writeln!(std::io::stderr().lock(), "activate: {m}");
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1)).and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Help) => match writeln!(std::io::stdout().lock(), "{USAGE}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                complain(&format!("cannot write to standard output: {e}"));
                ExitCode::FAILURE
            }
        },
        Err(Failure::Usage(m)) => {
            complain(&m.replace('\n', " -- "));
            ExitCode::from(2)
        }
        Err(Failure::Run(m)) => {
            complain(&m.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

mod backward;
mod dtype;
