//! `accuracy --halves`: every elementwise op over every f16 and every bf16 value (65,536
//! each), in that storage type, against the f64 reference correctly rounded to it.

use half::{bf16, f16};
use wgpu_activations::{cpu, Activation, Context, Element, Op};

/// (largest distance in ULPs of the type, elements not correctly rounded) over every
/// value of `T`; NaN meets NaN, and a NaN against a number counts as `u32::MAX`.
fn measure<T: Element>(
    ctx: &Context,
    a: &Activation,
    bits: impl Fn(T) -> u16,
    from_bits: impl Fn(u16) -> T,
    from_f64: impl Fn(f64) -> T,
) -> Result<(u32, usize), Box<dyn std::error::Error>> {
    let x: Vec<T> = (0..=u16::MAX).map(&from_bits).collect();
    let y = ctx.call(a, &[x.len()]).run(&x)?;
    let ordered = |v: T| {
        let b = bits(v);
        let m = i32::from(b & 0x7fff);
        if b & 0x8000 != 0 {
            -m
        } else {
            m
        }
    };
    let (mut worst, mut inexact) = (0u32, 0usize);
    for (&xi, &yi) in x.iter().zip(&y) {
        let want = from_f64(cpu::reference_f64(a, xi.to_f32()));
        let d = match (yi.to_f32().is_nan(), want.to_f32().is_nan()) {
            (true, true) => 0,
            (false, false) => ordered(yi).abs_diff(ordered(want)),
            _ => u32::MAX,
        };
        worst = worst.max(d);
        inexact += usize::from(d != 0);
    }
    Ok((worst, inexact))
}

pub(crate) fn main(
    ctx: &Context,
    specs: &[Activation],
    markdown: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let activations: Vec<Activation> = if specs.is_empty() {
        Op::elementwise_ops().map(Activation::example).collect()
    } else {
        specs.to_vec()
    };
    if markdown {
        println!("| op | f16: max ULP | f16: not correctly rounded | bf16: max ULP | bf16: not correctly rounded |");
        println!("|---|---|---|---|---|");
    } else {
        println!("adapter: {}", ctx.adapter_name());
        println!("inputs: every f16 and every bf16 value (65,536 each), in that storage type");
        println!(
            "{:<40} {:>8} {:>12} {:>8} {:>12}",
            "op", "f16 ULP", "f16 inexact", "bf16 ULP", "bf16 inexact"
        );
    }
    for a in activations
        .iter()
        .filter(|a| a.op().elementwise().is_some())
    {
        let (u16_, n16) = measure(ctx, a, f16::to_bits, f16::from_bits, f16::from_f64)?;
        let (ub, nb) = measure(ctx, a, bf16::to_bits, bf16::from_bits, bf16::from_f64)?;
        let show = |u: u32| {
            if u == u32::MAX {
                "NaN!".to_string()
            } else {
                u.to_string()
            }
        };
        if markdown {
            println!("| `{a}` | {} | {n16} | {} | {nb} |", show(u16_), show(ub));
        } else {
            println!(
                "{:<40} {:>8} {:>12} {:>8} {:>12}",
                a.to_string(),
                show(u16_),
                n16,
                show(ub),
                nb
            );
        }
    }
    Ok(())
}
