//! `accuracy --backward`: every op's backward against its f64 reference.

use wgpu_activations::{accuracy, cpu, Accuracy, Activation, Context, Op, Saved};

pub fn main(
    ctx: &Context,
    args: &[String],
    markdown: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let specs: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let activations: Vec<Activation> = if specs.is_empty() {
        Op::ALL.iter().map(|&op| Activation::example(op)).collect()
    } else {
        specs.iter().map(|s| s.parse()).collect::<Result<_, _>>()?
    };
    let sweep = accuracy::sweep_inputs(997, 1.0 / 1024.0);
    if markdown {
        println!("| op | reads | derivative | bound | measured |");
        println!("|---|---|---|---|---|");
    } else {
        println!("adapter: {}", ctx.adapter_name());
        println!("adapter facts: {}", ctx.facts());
        println!(
            "backward, elementwise ops: {} inputs (as the forward's sweep), grad_output 1",
            sweep.len()
        );
        println!("{:<40} {:>10}  worst", "op", "error");
    }
    for a in &activations {
        let (error, worst) = measure(ctx, a, &sweep)?;
        let info = a.op().backward();
        if markdown {
            let name = if a.op().info().params.iter().any(|p| p.default.is_none()) {
                format!("`{}(...)`", a.op().name())
            } else {
                format!("`{a}`")
            };
            let reads = match info.saved {
                Saved::Input => "x",
                Saved::Output => "y",
            };
            println!(
                "| {name} | {reads} | {} | {} | {error} |",
                info.formula.replace('|', "\\|"),
                super::bound_text(a, info.accuracy)
            );
        } else {
            println!("{:<40} {:>10}  {worst}", a.to_string(), error);
        }
    }
    Ok(())
}

/// (the largest error as the bound counts it, where it occurred).
fn measure(
    ctx: &Context,
    a: &Activation,
    sweep: &[f32],
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let op = a.op();
    if let Some((_, f)) = op.elementwise_grad() {
        let saved = match op.backward().saved {
            Saved::Input => sweep.to_vec(),
            Saved::Output => cpu::reference(a, sweep),
        };
        let g = vec![1.0; saved.len()];
        let got = ctx.call(a, &[saved.len()]).run_backward(&saved, &g)?;
        let p: Vec<f64> = a.params().iter().map(|&v| f64::from(v)).collect();
        let bound = op.backward().accuracy;
        let (mut worst, mut at, mut worst_abs) = (0u64, 0usize, 0.0f64);
        for (i, (&s, &y)) in saved.iter().zip(&got).enumerate() {
            let want = f(f64::from(s), 1.0, &p);
            let e = accuracy::gradient_error(want, y, 1.0, bound);
            if e > worst {
                (worst, at) = (e, i);
            }
            // where a derivative near its root leans on the absolute bound: how far off
            if let Accuracy::UlpOrAbs { ulp, .. } = bound {
                if accuracy::error_against(want as f32, y) > u64::from(ulp) {
                    worst_abs = worst_abs.max((f64::from(y) - want).abs());
                }
            }
        }
        let mut text = if worst == u64::MAX {
            "NaN!".to_string()
        } else {
            worst.to_string()
        };
        if worst_abs > 0.0 {
            text = format!("{text} (elsewhere {worst_abs:.1e} abs)");
        }
        let detail = format!(
            "saved {:e} -> {:e} ({:e})",
            saved[at],
            got[at],
            f(f64::from(saved[at]), 1.0, &p)
        );
        return Ok((text, detail));
    }
    if op.random().is_some() {
        let g: Vec<f32> = (0..sweep.len()).map(|i| 1.0 + (i % 7) as f32).collect();
        let got = ctx.call(a, &[sweep.len()]).run_backward(sweep, &g)?;
        let want = ctx
            .facts()
            .float_model()
            .backward_reference(a, sweep, &g)
            .expect("a random op");
        let differ = got
            .iter()
            .zip(&want)
            .filter(|(y, r)| !(y.is_nan() && r.is_nan()) && y.to_bits() != r.to_bits())
            .count();
        return Ok((
            differ.to_string(),
            format!("{differ} elements differ in their bits"),
        ));
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move |scale: f32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        scale * ((state >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
    };
    let shapes: Vec<(Vec<usize>, i64)> = if op.info().is_dice() {
        vec![(vec![1024, 64], 0), (vec![3, 5, 7], 0)]
    } else if op.grouped().is_some() {
        vec![(vec![64, 1000], -1), (vec![30, 4, 100], 1)]
    } else {
        vec![
            (vec![300, 7], -1),
            (vec![64, 1000], -1),
            (vec![2, 65_536], -1),
            (vec![30, 1000, 3], 1),
        ]
    };
    let mut worst = (0.0f64, String::new());
    for (shape, dim) in shapes {
        let a = if op.info().is_dice() {
            *a
        } else {
            a.with("dim", dim as f32)?
        };
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|i| uniform([1.0, 10.0, 30.0][i % 3])).collect();
        let out_len: usize = a.output_shape(&shape)?.iter().product();
        let g: Vec<f32> = (0..out_len).map(|_| uniform(1.0)).collect();
        let saved = match op.backward().saved {
            Saved::Input => x.clone(),
            Saved::Output => cpu::reference_shaped_f64(&a, &x, &shape)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        };
        let got = ctx.call(&a, &shape).run_backward(&saved, &g)?;
        let want = cpu::reference_backward_f64(&a, &saved, &g, &shape)?;
        let error = match op.backward().accuracy {
            Accuracy::Relative { .. } if op.softmax().is_some() => {
                let m = cpu::backward_magnitude(&a, &saved, &g, &shape)?;
                accuracy::compare_scaled(&want, &m, &got).max_error
            }
            Accuracy::Relative { .. } => {
                let m = cpu::reference_dice_backward(
                    &saved,
                    &g,
                    &shape,
                    &vec![a.params()[0]; out_len / shape[0]],
                    None,
                    a.params()[1],
                )?
                .magnitude;
                accuracy::compare_scaled(&want, &m, &got).max_error
            }
            // the gated units: the gate's bound, per unit of the |g| it sees
            bound @ Accuracy::UlpOrAbs { .. } => {
                let m = cpu::backward_magnitude(&a, &saved, &g, &shape)?;
                got.iter()
                    .zip(&want)
                    .zip(&m)
                    .map(|((&y, &r), &m)| accuracy::gradient_error(r, y, m as f32, bound) as f64)
                    .fold(0.0, f64::max)
            }
            _ => got
                .iter()
                .zip(&want)
                .map(|(&y, &r)| accuracy::error_against(r as f32, y) as f64)
                .fold(0.0, f64::max),
        };
        if error >= worst.0 {
            worst = (error, format!("{shape:?} dim {dim}"));
        }
    }
    let text = match op.backward().accuracy {
        Accuracy::Relative { .. } => format!("{:.1e} rel", worst.0),
        _ if worst.0 == u64::MAX as f64 => "NaN!".to_string(),
        _ => format!("{}", worst.0 as u64),
    };
    Ok((text, worst.1))
}
