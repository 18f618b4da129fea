//! `activate SPEC --backward`: grad_input from x and grad_output.

use std::io::Write;

use wgpu_activations::{accuracy, cpu, Accuracy, Activation, Context, Saved};

use super::{dtype, read_values, stdout_failure, write_values, Args, Failure};

/// A sample grad_output: 1 for the elementwise ops (so grad_input is f'(x)); for the
/// others, whose grad_input mixes a row or a group, varied values.
fn sample_grad(elementwise: bool, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| {
            if elementwise {
                1.0
            } else {
                [0.5, -1.0, 0.25, 2.0, -0.75][i % 5]
            }
        })
        .collect()
}

pub(super) fn run(
    args: &Args,
    activation: &Activation,
    x: &[f32],
    shape: &[usize],
) -> Result<(), Failure> {
    let op = activation.op();
    let elementwise = op.elementwise_grad().is_some();
    let out_len: usize = activation
        .output_shape(shape)
        .map_err(|e| Failure::Usage(e.to_string()))?
        .iter()
        .product();
    let g = match &args.grad_output {
        Some(path) => read_values(path, args.dtype)?,
        None => dtype::round(&sample_grad(elementwise, out_len), args.dtype),
    };
    if g.len() != out_len {
        return Err(Failure::Usage(format!(
            "--grad-output holds {} values; the forward's output of shape {shape:?} has {out_len}",
            g.len()
        )));
    }
    let ctx = Context::new().map_err(|e| Failure::Run(e.to_string()))?;
    let run = |e: wgpu_activations::Error| Failure::Run(e.to_string());
    let y = dtype::forward(&ctx, args.dtype, activation, x, shape, None).map_err(run)?;
    let saved = match op.backward().saved {
        Saved::Input => x.to_vec(),
        Saved::Output => y.clone(),
    };
    let gx = dtype::backward(&ctx, args.dtype, activation, &saved, &g, shape).map_err(run)?;
    if let Some(path) = &args.output {
        write_values(path, &gx, args.dtype)?;
    }
    let reference = cpu::reference_backward_f64(activation, &saved, &g, shape).map_err(run)?;
    let half = args.dtype != wgpu_activations::Storage::F32;
    let errors = if half {
        // counted in the storage type's ULPs against the reference rounded to it
        let ulps = gx.iter().zip(&reference);
        ulps.map(|(&y, &r)| dtype::ulps(y, r, args.dtype))
            .map(|e| (e as f64, e.to_string()))
            .collect()
    } else {
        element_errors(activation, &saved, &g, shape, &gx, &reference)?
    };
    let relative = !half && matches!(op.backward().accuracy, Accuracy::Relative { .. });
    let unit = match (half, relative) {
        (true, _) => format!("ULP {}", args.dtype),
        (false, true) => "rel err".to_string(),
        (false, false) => "ULP".to_string(),
    };
    if args.input.is_none() {
        say!(
            "backward of {activation} on {} in {}",
            ctx.adapter_name(),
            args.dtype
        );
        say!(
            "{:>14} {:>14} {:>14} {:>14} {:>16} {:>9}",
            "x",
            "y (gpu)",
            "grad_output",
            "grad_input",
            "cpu reference",
            unit
        );
        for i in 0..x.len() {
            // y and grad_output have the output's length: shown beside x only where it
            // is x's (a grouped op's are listed below)
            let aligned = y.len() == x.len();
            let (yi, gi) = (
                y.get(i).filter(|_| aligned).copied(),
                g.get(i).filter(|_| aligned).copied(),
            );
            let show = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:e}"));
            say!(
                "{:>14e} {:>14} {:>14} {:>14e} {:>16e} {:>9}",
                x[i],
                show(yi),
                show(gi),
                gx[i],
                reference[i] as f32,
                errors[i].1
            );
        }
        if y.len() != x.len() {
            say!("y (gpu): {y:?}");
            say!("grad_output: {g:?}");
        }
    } else {
        say!(
            "backward of {activation} on {}: {} values, shape {shape:?}",
            ctx.adapter_name(),
            x.len()
        );
    }
    let (worst, at) = errors
        .iter()
        .enumerate()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map_or((0.0, 0), |(i, e)| (e.0, i));
    say!(
        "largest difference of grad_input from the CPU reference: {} (bound {}) at element \
         {at}: gpu {:e}, reference {:e}",
        if relative {
            format!("{worst:.2e} relative")
        } else {
            format!("{worst} {unit}")
        },
        if half {
            format!("{}: the f32 bound, rounded once", args.dtype)
        } else {
            bound_text(op.backward().accuracy)
        },
        gx.get(at).copied().unwrap_or(0.0),
        reference.get(at).copied().unwrap_or(0.0)
    );
    Ok(())
}

/// Each element's error under its op's backward bound: (value, text).
fn element_errors(
    a: &Activation,
    saved: &[f32],
    g: &[f32],
    shape: &[usize],
    gx: &[f32],
    reference: &[f64],
) -> Result<Vec<(f64, String)>, Failure> {
    let op = a.op();
    let bound = op.backward().accuracy;
    let run = |e: wgpu_activations::Error| Failure::Run(e.to_string());
    let magnitude = if op.softmax().is_some() {
        Some(cpu::backward_magnitude(a, saved, g, shape).map_err(run)?)
    } else if op.info().is_dice() {
        let features = saved.len() / shape.first().copied().unwrap_or(1).max(1);
        let alpha = vec![a.params()[0]; features];
        Some(
            cpu::reference_dice_backward(saved, g, shape, &alpha, None, a.params()[1])
                .map_err(run)?
                .magnitude,
        )
    } else {
        None
    };
    Ok(gx
        .iter()
        .zip(reference)
        .enumerate()
        .map(|(i, (&y, &r))| match &magnitude {
            Some(m) => {
                let e = accuracy::compare_scaled(&[r], &[m[i]], &[y]).max_error;
                (e, format!("{e:.1e}"))
            }
            None => {
                let gi = if op.elementwise_grad().is_some() {
                    g[i]
                } else {
                    1.0
                };
                let e = accuracy::gradient_error(r, y, gi, bound);
                let text = if e == u64::MAX {
                    "NaN!".to_string()
                } else {
                    e.to_string()
                };
                (e as f64, text)
            }
        })
        .collect())
}

/// A backward bound in words.
fn bound_text(bound: Accuracy) -> String {
    match bound {
        Accuracy::Exact => "exact".to_string(),
        Accuracy::Ulp { default, .. } => format!("{default} ULP"),
        Accuracy::UlpOrAbs { ulp, abs } => format!("{ulp} ULP, or {abs:e} |grad_output|"),
        Accuracy::Relative { rel, .. } => format!("{rel:e} of the terms' magnitude"),
    }
}
