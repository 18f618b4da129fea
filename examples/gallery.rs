//! Every op and its derivative, drawn: the function and the backward computed on the GPU,
//! the CPU references overlaid, one SVG per op and an index page.
//!
//! ```text
//! cargo run --release --example gallery -- [--ops SPEC,SPEC,...] [--out DIR] [--points N]
//! ```
//!
//! - `--ops`: the specs to draw (default: every op, with the op table's sample values).
//! - `--out`: where the pictures and `index.html` go (default `target/gallery`).
//! - `--points`: samples per curve (default 401).
//!
//! Elementwise ops are drawn over a range that shows their shape (wider where they
//! saturate slowly); the derivative is grad_input for grad_output 1. Ops that are not
//! elementwise are drawn through a one-variable slice: the softmax family on rows
//! `(x, 0)` (softmax's first output is then `sigmoid(x)`), its derivative the backward
//! with grad_output `(1, 0)`; maxout and folding on groups `(x, 0)`; glu on halves
//! `a = b = x` (glu's `x sigmoid(x)`, swiglu's `silu(x) x`), its derivative the sum of both
//! halves' gradients; dice in
//! evaluation mode with running mean 0 and variance 1 (training mode couples every point
//! of the batch); the random ops as drawn for each point's index, which is what they do.
//!
//! The SVG is written by hand (a few dozen elements per picture): text in SVG needs no
//! font on the machine that draws it, and the example needs no plotting crate.

use std::fmt::Write as _;
use std::path::PathBuf;

use wgpu_activations::{cpu, Activation, Context, Op, Params, Saved};

struct Args {
    ops: Vec<Activation>,
    out: PathBuf,
    points: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!("gallery: {msg}\nusage: gallery [--ops SPEC,SPEC,...] [--out DIR] [--points N]");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        ops: Op::ALL.iter().map(|&op| Activation::example(op)).collect(),
        out: PathBuf::from("target/gallery"),
        points: 401,
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
                    Activation::parse_list(&value()).unwrap_or_else(|e| usage(&e.to_string()))
            }
            "--out" => args.out = PathBuf::from(value()),
            "--points" => {
                args.points = value()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| (2..=100_000).contains(&n))
                    .unwrap_or_else(|| usage("--points takes a number from 2 to 100000"))
            }
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    args
}

/// The four curves of one picture: f and f' from the GPU and from the CPU.
struct Curves {
    x: Vec<f64>,
    gpu: Vec<f64>,
    cpu: Vec<f64>,
    gpu_grad: Vec<f64>,
    cpu_grad: Vec<f64>,
    /// How the picture was made, when it is not simply f(x).
    note: &'static str,
}

/// The x range an op is drawn over.
fn range(a: &Activation) -> (f64, f64) {
    match a.op() {
        Op::Gaussian => (-3.0, 3.0),
        Op::Softsign | Op::Multiquadric | Op::InverseMultiquadric => (-8.0, 8.0),
        Op::Hardswish | Op::Hardsigmoid | Op::Relu6 => (-5.0, 8.0),
        _ => (-5.0, 5.0),
    }
}

type Failure = Box<dyn std::error::Error>;

fn curves(ctx: &Context, a: &Activation, n: usize) -> Result<Curves, Failure> {
    let (lo, hi) = range(a);
    let x: Vec<f32> = (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
        .collect();
    let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let op = a.op();
    if op.softmax().is_some() || op.grouped().is_some() {
        return paired(ctx, a, &x);
    }
    if op.info().is_dice() {
        return dice_eval(ctx, a, &x);
    }
    let y = ctx.call(a, &[x.len()]).run(&x)?;
    let saved = match op.backward().saved {
        Saved::Input => x.clone(),
        Saved::Output => y.clone(),
    };
    let ones = vec![1.0; n];
    let gx = ctx.call(a, &[saved.len()]).run_backward(&saved, &ones)?;
    let (cpu, cpu_grad) = if op.random().is_some() {
        let model = ctx.facts().float_model();
        let y = model.reference(a, &x).expect("a random op");
        let g = model.backward_reference(a, &x, &ones).expect("a random op");
        (wide(y), wide(g))
    } else {
        let y = cpu::reference_shaped_f64(a, &x, &[n])?;
        // the derivative at the reference's own saved tensor
        let s: Vec<f32> = match op.backward().saved {
            Saved::Input => x.clone(),
            Saved::Output => y.iter().map(|&v| v as f32).collect(),
        };
        (y, cpu::reference_backward_f64(a, &s, &ones, &[n])?)
    };
    Ok(Curves {
        x: wide(x),
        gpu: wide(y),
        cpu,
        gpu_grad: wide(gx),
        cpu_grad,
        note: if op.random().is_some() {
            "each point draws its own numbers from (seed, its index)"
        } else {
            ""
        },
    })
}

/// The softmax family on rows (x, 0), the grouped ops on groups (x, 0) (glu on halves
/// a = b = x): the first output against x, its derivative from the backward.
fn paired(ctx: &Context, a: &Activation, x: &[f32]) -> Result<Curves, Failure> {
    let n = x.len();
    let op = a.op();
    let glu = op.grouped().is_some_and(|k| k.is_gated());
    let a = if op.grouped().is_some() && !glu {
        a.with("k", 2.0)?
    } else {
        *a
    };
    // rows of two along the last axis: (x, 0), or glu's (a, b) = (x, x)
    let input: Vec<f32> = x
        .iter()
        .flat_map(|&v| [v, if glu { v } else { 0.0 }])
        .collect();
    let shape = [n, 2];
    let a = a.with("dim", -1.0)?;
    let y = ctx.call(&a, &shape).run(&input)?;
    let out_per_row = y.len() / n;
    let first = |v: &[f32]| {
        v.iter()
            .step_by(out_per_row)
            .map(|&v| f64::from(v))
            .collect()
    };
    let saved = match op.backward().saved {
        Saved::Input => input.clone(),
        Saved::Output => y.clone(),
    };
    // grad_output 1 on each row's first output (glu and the grouped ops have one)
    let g: Vec<f32> = (0..y.len())
        .map(|i| if i % out_per_row == 0 { 1.0 } else { 0.0 })
        .collect();
    let gx = ctx.call(&a, &shape).run_backward(&saved, &g)?;
    let yr = cpu::reference_shaped_f64(&a, &input, &shape)?;
    let saved_r: Vec<f32> = match op.backward().saved {
        Saved::Input => input.clone(),
        Saved::Output => yr.iter().map(|&v| v as f32).collect(),
    };
    let gr = cpu::reference_backward_f64(&a, &saved_r, &g, &shape)?;
    // d/dx of the first output: x enters the first element of its row, or both (glu)
    let grad = |v: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| {
                if glu {
                    v[2 * i] + v[2 * i + 1]
                } else {
                    v[2 * i]
                }
            })
            .collect()
    };
    let gx64: Vec<f64> = gx.iter().map(|&v| f64::from(v)).collect();
    Ok(Curves {
        x: x.iter().map(|&v| f64::from(v)).collect(),
        gpu: first(&y),
        cpu: yr.iter().step_by(out_per_row).copied().collect(),
        gpu_grad: grad(&gx64),
        cpu_grad: grad(&gr),
        note: if glu {
            "halves a = b = x"
        } else if op.softmax().is_some() {
            "the first output of rows (x, 0)"
        } else {
            "groups (x, 0)"
        },
    })
}

/// dice in evaluation mode (running mean 0, variance 1) with the spec's alpha.
fn dice_eval(ctx: &Context, a: &Activation, x: &[f32]) -> Result<Curves, Failure> {
    let n = x.len();
    let (alpha, eps) = (a.params()[0], a.params()[1]);
    let shape = [n, 1];
    let (mean, var, alphas) = ([0.0f32], [1.0f32], [alpha]);
    let running = Params::DiceEval {
        mean: mean[..].into(),
        var: var[..].into(),
        alpha: alphas[..].into(),
    };
    let call = ctx.call(a, &shape).params(running);
    let y = call.run(x)?;
    let ones = vec![1.0; n];
    let gx = call.run_backward(x, &ones)?;
    let yr = cpu::reference_dice_eval(x, &shape, &mean, &var, &[alpha], eps)?;
    let gr = cpu::reference_dice_backward(x, &ones, &shape, &[alpha], Some((&mean, &var)), eps)?;
    let wide = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    Ok(Curves {
        x: wide(x),
        gpu: wide(&y),
        cpu: yr,
        gpu_grad: wide(&gx),
        cpu_grad: gr.grad_input,
        note: "evaluation mode, running mean 0 and variance 1",
    })
}

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 360.0;
const MARGIN: f64 = 48.0;

/// A tidy step for about 6 ticks over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = span / 6.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p)
}

fn svg(a: &Activation, c: &Curves) -> String {
    let all = c
        .gpu
        .iter()
        .chain(&c.cpu)
        .chain(&c.gpu_grad)
        .chain(&c.cpu_grad);
    let finite: Vec<f64> = all.copied().filter(|v| v.is_finite()).collect();
    let (mut ymin, mut ymax) = finite
        .iter()
        .fold((0.0f64, 1.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    // a little room, and no runaway axis from a steep tail
    ymin = ymin.max(-8.0) - 0.05 * (ymax - ymin);
    ymax = ymax.min(8.0) + 0.05 * (ymax - ymin);
    let (xmin, xmax) = (c.x[0], c.x[c.x.len() - 1]);
    let px = |x: f64| MARGIN + (x - xmin) / (xmax - xmin) * (WIDTH - 2.0 * MARGIN);
    let py = |y: f64| HEIGHT - MARGIN - (y - ymin) / (ymax - ymin) * (HEIGHT - 2.0 * MARGIN);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    // grid and ticks
    let (xs, ys) = (tick_step(xmax - xmin), tick_step(ymax - ymin));
    let mut t = (xmin / xs).ceil() * xs;
    while t <= xmax + 1e-9 {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#eee\"/>\
             <text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{4}</text>",
            px(t),
            MARGIN,
            HEIGHT - MARGIN,
            HEIGHT - MARGIN + 14.0,
            trim(t)
        );
        t += xs;
    }
    let mut t = (ymin / ys).ceil() * ys;
    while t <= ymax + 1e-9 {
        let _ = writeln!(
            s,
            "<line x1=\"{1:.1}\" y1=\"{0:.1}\" x2=\"{2:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>\
             <text x=\"{3:.1}\" y=\"{4:.1}\" text-anchor=\"end\">{5}</text>",
            py(t),
            MARGIN,
            WIDTH - MARGIN,
            MARGIN - 4.0,
            py(t) + 4.0,
            trim(t)
        );
        t += ys;
    }
    // the axes through 0
    if ymin < 0.0 && ymax > 0.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{MARGIN}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#999\"/>",
            py(0.0),
            WIDTH - MARGIN
        );
    }
    if xmin < 0.0 && xmax > 0.0 {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{MARGIN}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#999\"/>",
            px(0.0),
            HEIGHT - MARGIN
        );
    }
    let series = [
        (&c.gpu, "#1f77b4", "", "f(x), GPU"),
        (&c.cpu, "#0b3a5e", "4 4", "f(x), CPU reference"),
        (&c.gpu_grad, "#d62728", "", "f'(x), GPU backward"),
        (&c.cpu_grad, "#6b1010", "4 4", "f'(x), CPU reference"),
    ];
    for (k, (values, color, dash, label)) in series.iter().enumerate() {
        // a polyline per finite run, clipped to the plot
        let mut run = String::new();
        let flush = |run: &mut String, s: &mut String| {
            if !run.is_empty() {
                let _ = writeln!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\" \
                     stroke-dasharray=\"{dash}\" points=\"{run}\"/>",
                    if dash.is_empty() { 2.0 } else { 1.2 }
                );
                run.clear();
            }
        };
        for (&x, &y) in c.x.iter().zip(values.iter()) {
            if y.is_finite() && (ymin..=ymax).contains(&y) {
                let _ = write!(run, "{:.1},{:.1} ", px(x), py(y));
            } else {
                flush(&mut run, &mut s);
            }
        }
        flush(&mut run, &mut s);
        let ly = MARGIN + 14.0 * k as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{2:.1}\" y2=\"{1:.1}\" stroke=\"{color}\" \
             stroke-width=\"2\" stroke-dasharray=\"{dash}\"/><text x=\"{3:.1}\" y=\"{4:.1}\">{label}</text>",
            MARGIN + 8.0,
            ly,
            MARGIN + 30.0,
            MARGIN + 34.0,
            ly + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{0:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{1}</text>\
         <text x=\"{0:.1}\" y=\"34\" text-anchor=\"middle\" fill=\"#555\">{2}</text>\n</svg>",
        WIDTH / 2.0,
        escape(&a.to_string()),
        escape(c.note)
    );
    s
}

/// A tick label: up to 3 decimals, no trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{:.3}", if v.abs() < 1e-9 { 0.0 } else { v });
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A file name for a spec: its characters that are not alphanumeric become `_`.
fn file_name(a: &Activation) -> String {
    let name: String = a
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}.svg", name.trim_end_matches('_'))
}

fn main() {
    let args = parse_args();
    let ctx = Context::new().unwrap_or_else(|e| {
        eprintln!("gallery: {e}");
        std::process::exit(1)
    });
    std::fs::create_dir_all(&args.out).unwrap_or_else(|e| {
        eprintln!("gallery: cannot create {}: {e}", args.out.display());
        std::process::exit(1)
    });
    let mut index = String::from(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>wgpu-activations: every op and its \
         derivative</title>\n<style>body{font-family:sans-serif;max-width:1200px;margin:auto}\
         figure{display:inline-block;margin:8px;vertical-align:top;width:560px}\
         figcaption{font-size:13px}</style>\n<h1>Every op and its derivative</h1>\n<p>The \
         function and its backward (grad_output 1) computed on the GPU (solid), the f64 CPU \
         references dashed.</p>\n",
    );
    let mut failed = false;
    for a in &args.ops {
        let result = curves(&ctx, a, args.points).map(|c| svg(a, &c));
        let picture = match result {
            Ok(p) => p,
            Err(e) => {
                eprintln!("gallery: {a}: {e}");
                failed = true;
                continue;
            }
        };
        let name = file_name(a);
        let path = args.out.join(&name);
        if let Err(e) = std::fs::write(&path, picture) {
            eprintln!("gallery: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        let info = a.op().info();
        let _ = writeln!(
            index,
            "<figure><img src=\"{name}\" alt=\"{0}\" width=\"560\"><figcaption><b>{0}</b>: \
             {1}<br>derivative: {2}</figcaption></figure>",
            escape(&a.to_string()),
            escape(info.formula),
            escape(info.backward.formula)
        );
    }
    let index_path = args.out.join("index.html");
    if let Err(e) = std::fs::write(&index_path, index) {
        eprintln!("gallery: cannot write {}: {e}", index_path.display());
        std::process::exit(1);
    }
    println!("{} pictures and {}", args.ops.len(), index_path.display());
    if failed {
        std::process::exit(1);
    }
}
