//! Measures every op's largest error on this adapter against the CPU reference, over the
//! whole f32 range: the numbers in the README's table.
//!
//!     cargo run --release --example accuracy [-- --markdown] [-- SPEC ...]
//!
//! `--markdown` prints the README's op table (name, formula, parameters with defaults,
//! bound and measured error), derived from the op table in src/op.rs.

use wgpu_activations::{accuracy, Accuracy, Activation, Context, Op};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    let specs: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let activations: Vec<Activation> = if specs.is_empty() {
        Op::ALL.iter().map(|&op| Activation::example(op)).collect()
    } else {
        specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?
    };
    let input = accuracy::sweep_inputs(997, 1.0 / 1024.0);
    if markdown {
        println!("| op | formula | parameters (defaults) | bound (ULP) | measured max ULP |");
        println!("|---|---|---|---|---|");
    } else {
        println!("adapter: {}", ctx.adapter_name());
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
        let output = ctx.run(a, &input)?;
        let r = accuracy::compare(a, &input, &output);
        let ulp = if r.max_ulp == u64::MAX {
            "NaN!".to_string()
        } else {
            r.max_ulp.to_string()
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
            let bound = match info.accuracy {
                Accuracy::Exact => "exact".to_string(),
                Accuracy::Ulp { default, any } if default == any => default.to_string(),
                Accuracy::Ulp { default, any } => format!("{default} ({any} for other params)"),
            };
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
            println!(
                "{:<40} {:>8}  {:e} -> {:e} ({:e})",
                a.to_string(),
                ulp,
                r.worst_input,
                r.worst_output,
                r.worst_expected
            );
        }
    }
    Ok(())
}
