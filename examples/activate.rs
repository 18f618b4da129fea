//! Activate a buffer on the GPU from a terminal.
//!
//! ```text
//! cargo run --release --example activate -- SPEC [--shape D0,D1,...] [--input FILE] [--output FILE]
//! ```
//!
//! - No `--input`: activates a small sample buffer and prints the input, the GPU output,
//!   the CPU reference and the largest difference, with the adapter's name.
//! - `--input FILE`: raw little-endian f32 values. `--output FILE`: the results, raw
//!   little-endian f32, in the same order (written whole or not at all).
//! - `--shape`: the tensor shape (default: one dimension, the input's length); it must
//!   hold as many elements as the input. The softmax family normalises along the spec's
//!   `dim` (`softmax(dim=0) --shape 4,8`); grouped ops (`maxout(k=2)`, `glu`) shrink that
//!   axis, and the output file holds the shorter tensor; elementwise ops ignore the shape.
//! - Any error: one line on stderr and a non-zero exit status (2 for usage, 1 otherwise).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wgpu_activations::{accuracy, cpu, Accuracy, Activation, Context};

const USAGE: &str =
    "usage: activate SPEC [--shape D0,D1,...] [--input FILE] [--output FILE]  (e.g. activate 'gelu(approximate=tanh)')";

const SAMPLE: [f32; 13] = [
    -10.0, -8.0, -4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0,
];

struct Args {
    spec: String,
    shape: Option<Vec<usize>>,
    input: Option<PathBuf>,
    output: Option<PathBuf>,
}

enum Failure {
    Usage(String),
    Run(String),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, Failure> {
    let usage = |m: String| Failure::Usage(format!("{m}\n{USAGE}"));
    let mut spec = None;
    let (mut shape, mut input, mut output) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))
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
            "--input" => input = Some(PathBuf::from(value("--input")?)),
            "--output" => output = Some(PathBuf::from(value("--output")?)),
            "-h" | "--help" => return Err(Failure::Usage(USAGE.to_string())),
            flag if flag.starts_with("--") => return Err(usage(format!("unknown flag `{flag}`"))),
            _ if spec.is_none() => spec = Some(arg),
            _ => return Err(usage(format!("unexpected argument `{arg}`"))),
        }
    }
    let spec = spec.ok_or_else(|| usage("missing SPEC".to_string()))?;
    Ok(Args {
        spec,
        shape,
        input,
        output,
    })
}

fn read_f32s(path: &Path) -> Result<Vec<f32>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Run(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() % 4 != 0 {
        return Err(Failure::Run(format!(
            "{} holds {} bytes, not a whole number of f32 values (4 bytes each)",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Writes beside the target and renames, so a failure leaves no partial file.
fn write_f32s(path: &Path, values: &[f32]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Run(format!("cannot write {}: {e}", path.display()));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

fn run(args: Args) -> Result<(), Failure> {
    let activation: Activation = args
        .spec
        .parse()
        .map_err(|e| Failure::Usage(format!("{e}")))?;
    let input = match &args.input {
        Some(path) => read_f32s(path)?,
        // A grouped op's sample is a whole number of groups.
        None if args.shape.is_none() => {
            let k = activation.group_size().unwrap_or(1);
            SAMPLE[..SAMPLE.len() / k * k].to_vec()
        }
        None => SAMPLE.to_vec(),
    };
    let shape = args.shape.clone().unwrap_or_else(|| vec![input.len()]);
    let elements: usize = shape.iter().product();
    if elements != input.len() {
        return Err(Failure::Usage(format!(
            "--shape {shape:?} holds {elements} elements, the input has {}",
            input.len()
        )));
    }
    // A `dim` outside the shape is a usage error, caught before any GPU work.
    let reference = cpu::reference_shaped_f64(&activation, &input, &shape)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let ctx = Context::new().map_err(|e| Failure::Run(e.to_string()))?;
    let output = ctx
        .run_shaped(&activation, &input, &shape)
        .map_err(|e| Failure::Run(e.to_string()))?;
    if let Some(path) = &args.output {
        write_f32s(path, &output)?;
    }
    let grouped = activation.group_size().is_some();
    let random = activation.op().random().is_some();
    let relative = match activation.op().info().accuracy {
        Accuracy::Relative { rel, abs } => Some((rel, abs)),
        _ => None,
    };
    if args.input.is_none() {
        println!("{activation} on {}", ctx.adapter_name());
        let unit = if relative.is_some() { "rel err" } else { "ULP" };
        let first = if grouped { "output" } else { "input" };
        println!(
            "{first:>14} {:>16} {:>16} {:>9}",
            "gpu", "cpu reference", unit
        );
        for (i, y) in output.iter().enumerate() {
            let err = match relative {
                Some((rel, abs)) => {
                    let r = accuracy::compare_relative(&reference[i..=i], &[*y], rel, abs);
                    format!("{:.1e}", r.max_error)
                }
                // indexed ops: the reference of element i, not of its value alone
                None if grouped || random => grouped_ulp(*y, reference[i]).to_string(),
                None => accuracy::element_error(&activation, input[i], *y).to_string(),
            };
            let r = reference[i] as f32;
            let lead = if grouped {
                i.to_string()
            } else {
                format!("{:e}", input[i])
            };
            println!("{lead:>14} {y:>16e} {r:>16e} {err:>9}");
        }
    } else {
        println!(
            "{activation} on {}: {} values, shape {shape:?}",
            ctx.adapter_name(),
            input.len()
        );
    }
    match relative {
        None if grouped || random => {
            let (worst, at) = output
                .iter()
                .zip(&reference)
                .map(|(&y, &r)| grouped_ulp(y, r))
                .zip(0..)
                .max()
                .unwrap_or((0, 0));
            println!(
                "largest difference from the CPU reference: {worst} ULP (at output {at}), \
                 {} outputs of shape {:?}",
                output.len(),
                activation.output_shape(&shape).unwrap_or_default()
            );
        }
        Some((rel, abs)) => {
            let r = accuracy::compare_relative(&reference, &output, rel, abs);
            println!(
                "largest error against the f64 CPU reference: {:.2e} relative (bound {rel:e}, \
                 or {abs:e} absolute) at element {}: gpu {:e}, reference {:e}",
                r.max_error, r.worst_index, r.worst_output, r.worst_expected
            );
        }
        None => {
            let report = accuracy::compare(&activation, &input, &output);
            let worst = if report.max_ulp == u64::MAX {
                "NaN mismatch".to_string()
            } else {
                format!("{} ULP", report.max_ulp)
            };
            println!(
                "largest difference from the CPU reference: {worst} (at x = {:e}: gpu {:e}, \
                 reference {:e})",
                report.worst_input, report.worst_output, report.worst_expected
            );
        }
    }
    Ok(())
}

/// ULPs between a grouped op's output and its f64 reference (NaN meets NaN).
fn grouped_ulp(y: f32, r: f64) -> u64 {
    let r = r as f32;
    match (y.is_nan(), r.is_nan()) {
        (true, true) => 0,
        (false, false) => accuracy::ulp_distance(y, r),
        _ => u64::MAX,
    }
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("activate: {}", m.replace('\n', " -- "));
            ExitCode::from(2)
        }
        Err(Failure::Run(m)) => {
            eprintln!("activate: {}", m.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
