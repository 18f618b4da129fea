//! Measures every op's largest error on this adapter against the CPU reference, over the
//! whole f32 range: the numbers in the README's table.
//!
//!     cargo run --release --example accuracy [-- SPEC ...]

use wgpu_activations::{accuracy, Activation, Context, Op};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let specs: Vec<String> = std::env::args().skip(1).collect();
    let activations: Vec<Activation> = if specs.is_empty() {
        Op::ALL
            .iter()
            .map(|&op| Activation::new(op).or_else(|_| Activation::from_params(op, &[0.5, -2.0])))
            .collect::<Result<_, _>>()?
    } else {
        specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?
    };
    let input = accuracy::sweep_inputs(997, 1.0 / 1024.0);
    println!("adapter: {}", ctx.adapter_name());
    println!("inputs: {} (every 997th f32 bit pattern of each sign, [-20, 20] step 2^-10, extremal values)", input.len());
    println!("{:<40} {:>8}  worst input -> got (expected)", "op", "max ULP");
    for a in &activations {
        let output = ctx.run(a, &input)?;
        let r = accuracy::compare(a, &input, &output);
        let ulp = if r.max_ulp == u64::MAX { "NaN!".to_string() } else { r.max_ulp.to_string() };
        println!(
            "{:<40} {:>8}  {:e} -> {:e} ({:e})",
            a.to_string(),
            ulp,
            r.worst_input,
            r.worst_output,
            r.worst_expected
        );
    }
    Ok(())
}
