//! Measures every op's largest error on this adapter against the CPU reference, over the
//! whole f32 range: the numbers in the README's table.
//!
//!     cargo run --release --example accuracy [-- --markdown] [-- SPEC ...]
//!
//! `--markdown` prints the README's op table (name, formula, parameters with defaults,
//! bound and measured error), derived from the op table in src/op.rs. `--backward`
//! measures the backward kernels instead (grad_output 1 over the same sweep for the
//! elementwise ops, random grad_outputs for the others), and with `--markdown` prints the
//! README's backward table. `--halves` measures every elementwise op over every f16 and
//! every bf16 value in that storage type, against the reference correctly rounded to it.

use wgpu_activations::{accuracy, cpu, Accuracy, Activation, Context, Op};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    if args.iter().any(|a| a == "--backward") {
        return backward::main(&ctx, &args, markdown);
    }
    let specs: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let activations: Vec<Activation> = if specs.is_empty() {
        Op::ALL.iter().map(|&op| Activation::example(op)).collect()
    } else {
        specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?
    };
    if args.iter().any(|a| a == "--halves") {
        let chosen = if specs.is_empty() {
            &[][..]
        } else {
            &activations[..]
        };
        return halves::main(&ctx, chosen, markdown);
    }
    let input = accuracy::sweep_inputs(997, 1.0 / 1024.0);
    if markdown {
        println!("| op | formula | parameters (defaults) | bound (ULP) | measured max ULP |");
        println!("|---|---|---|---|---|");
    } else {
        println!("adapter: {}", ctx.adapter_name());
        println!("adapter facts: {}", ctx.facts());
        println!(
            "inputs: {} (every 997th f32 bit pattern of each sign, [-20, 20] step 2^-10, extremal values)",
            input.len()
        );
        println!(
            "{:<40} {:>8}  worst input -> got (expected)",
            "op", "max ULP"
        );
    }
    for a in &activations {
        let (ulp, worst) = if a.op().info().is_dice() {
            let (err, worst) = dice_error(&ctx, a)?;
            (format!("{err:.1e} rel"), worst)
        } else if let Accuracy::Relative { rel, abs } = a.op().info().accuracy {
            let (err, worst) = softmax_error(&ctx, a, rel, abs)?;
            (format!("{err:.1e} rel"), worst)
        } else if a.op().random().is_some() {
            // seeded per element index: the CPU, mirroring this adapter's float model
            // (whether it flushes subnormals), reproduces the GPU's bits (NaN as NaN)
            let output = ctx.call(a, &[input.len()]).run(&input)?;
            let expected = ctx
                .facts()
                .float_model()
                .reference(a, &input)
                .expect("a random op");
            let differ = output
                .iter()
                .zip(&expected)
                .filter(|(y, r)| !(y.is_nan() && r.is_nan()) && y.to_bits() != r.to_bits())
                .count();
            (
                differ.to_string(),
                format!("{differ} elements differ in their bits"),
            )
        } else if let Some(k) = a.group_size() {
            // the sweep as one axis of groups
            let n = input.len() / k * k;
            let output = ctx.call(a, &[n]).run(&input[..n])?;
            let expected = cpu::reference_shaped_f64(a, &input[..n], &[n])?;
            let (mut worst_ulp, mut at) = (0u64, 0usize);
            for (i, (&y, &r)) in output.iter().zip(&expected).enumerate() {
                // the accuracy module's policy (a subnormal may come back as a zero of
                // its sign)
                let e = accuracy::error_against(r as f32, y);
                if e > worst_ulp {
                    (worst_ulp, at) = (e, i);
                }
            }
            let ulp = if worst_ulp == u64::MAX {
                "NaN!".to_string()
            } else {
                worst_ulp.to_string()
            };
            let worst = format!(
                "output {at} -> {:e} ({:e})",
                output.get(at).copied().unwrap_or(0.0),
                expected.get(at).copied().unwrap_or(0.0)
            );
            (ulp, worst)
        } else {
            let output = ctx.call(a, &[input.len()]).run(&input)?;
            let r = accuracy::compare(a, &input, &output);
            let ulp = if r.max_ulp == u64::MAX {
                "NaN!".to_string()
            } else {
                r.max_ulp.to_string()
            };
            let worst = format!(
                "{:e} -> {:e} ({:e})",
                r.worst_input, r.worst_output, r.worst_expected
            );
            (ulp, worst)
        };
        if markdown {
            let info = a.op().info();
            let params: Vec<String> = info
                .params
                .iter()
                .map(|p| match p.default {
                    Some(d) => format!("`{}={d}`", p.name),
                    None => format!("`{}` (required)", p.name),
                })
                .collect();
            let bound = bound_text(a, info.accuracy);
            let name = if info.params.iter().any(|p| p.default.is_none()) {
                format!("`{}(...)`", info.name)
            } else {
                format!("`{a}`")
            };
            println!(
                "| {name} | {} | {} | {bound} | {ulp} |",
                info.formula.replace('|', "\\|"),
                if params.is_empty() {
                    "-".to_string()
                } else {
                    params.join(", ")
                }
            );
        } else {
            println!("{:<40} {:>8}  {worst}", a.to_string(), ulp);
        }
    }
    Ok(())
}

/// A bound as the README's tables write it.
pub(crate) fn bound_text(a: &Activation, bound: Accuracy) -> String {
    match bound {
        Accuracy::Exact if a.op().random().is_some() => "bit-exact".to_string(),
        Accuracy::Exact => "exact".to_string(),
        Accuracy::Ulp { default, any } if default == any => default.to_string(),
        Accuracy::Ulp { default, any } => format!("{default} ({any} for other params)"),
        Accuracy::UlpOrAbs { ulp, abs } => format!("{ulp} (or {abs:e} \\|g\\| abs)"),
        Accuracy::Relative { rel, abs } => format!("{rel:e} rel ({abs:e} abs)"),
    }
}

/// The largest relative error of a softmax-family op over rows of 1 to 1,048,576
/// elements with logits uniform in [-s, s) for s = 1, 10, 100, along the last axis and a
/// strided one, with the strategy `Auto` picks.
fn softmax_error(
    ctx: &Context,
    a: &Activation,
    rel: f64,
    abs: f64,
) -> Result<(f64, String), Box<dyn std::error::Error>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = |scale: f32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        scale * ((state >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
    };
    let mut worst = (0.0, String::new());
    for (shape, dim) in [
        (vec![3usize, 1], -1i64),
        (vec![300, 7], -1),
        (vec![64, 1000], -1),
        (vec![3, 65_536], -1),
        (vec![1, 1 << 20], -1),
        (vec![30, 1000, 3], 1),
    ] {
        let n: usize = shape.iter().product();
        let rows = n / shape[shape.len() - 1];
        let cols = n / rows;
        let x: Vec<f32> = (0..n)
            .map(|i| uniform([1.0, 10.0, 100.0][(i / cols) % 3]))
            .collect();
        let a = a.with("dim", dim as f32)?;
        let y = ctx.call(&a, &shape).run(&x)?;
        let r = cpu::reference_shaped_f64(&a, &x, &shape)?;
        let report = accuracy::compare_relative(&r, &y, rel, abs);
        if report.max_error >= worst.0 {
            worst = (
                report.max_error,
                format!(
                    "{shape:?} dim {dim}: element {} -> {:e} ({:e})",
                    report.worst_index, report.worst_output, report.worst_expected
                ),
            );
        }
    }
    Ok(worst)
}

/// The largest relative error of dice over (batch, features) tensors of uniform values.
fn dice_error(ctx: &Context, a: &Activation) -> Result<(f64, String), Box<dyn std::error::Error>> {
    let mut worst = (0.0, String::new());
    for (shape, scale) in [
        (vec![1024usize, 64], 1.0f32),
        (vec![64, 1024], 10.0),
        (vec![3, 5, 7], 100.0),
    ] {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|i| scale * (((i * 7919) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        let y = ctx.call(a, &shape).run(&x)?;
        let r = cpu::reference_shaped_f64(a, &x, &shape)?;
        let report = accuracy::compare_relative(&r, &y, 1e-5, 1e-12);
        if report.max_error >= worst.0 {
            worst = (
                report.max_error,
                format!("{shape:?}: element {}", report.worst_index),
            );
        }
    }
    Ok(worst)
}

mod backward;
mod halves;
