//! The `activate` example as a user runs it: exit codes (0, 1 for a failed run, 2 for
//! usage, never 101), one line on stderr, and an output file written whole or not at all,
//! also by two processes at once.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `activate` example binary.
fn activate() -> Command {
    example("activate")
}

/// An example binary that `cargo test` builds beside the test binaries.
fn example(name: &str) -> Command {
    let mut dir = std::env::current_exe().expect("the test binary's path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let exe = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} is missing: `cargo test` builds the examples first",
        exe.display()
    );
    let mut cmd = Command::new(exe);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    activate().args(args).output().expect("activate runs")
}

/// Exit status and stderr: not a panic (101), and at most one line.
fn status_and_line(out: &Output) -> (i32, String) {
    let code = out.status.code().expect("an exit code, not a signal");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_ne!(code, 101, "panicked: {err}");
    assert!(
        err.lines().count() <= 1,
        "more than one line on stderr: {err}"
    );
    (code, err)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-activations-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_f32s(path: &PathBuf, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn exit_codes_say_usage_failure_or_success() {
    let (code, _) = status_and_line(&run(&["--help"]));
    assert_eq!(code, 0, "--help is not an error");
    for (args, want, says) in [
        (&["gleu"][..], 2, "gelu"),
        (&[][..], 2, "missing SPEC"),
        (&["relu", "--bogus"][..], 2, "unknown flag"),
        (
            &["relu", "--shape", "4294967296,4294967296,16"][..],
            2,
            "overflows",
        ),
        (&["relu", "--shape", "2,2"][..], 2, "holds 4 elements"),
        (
            &["relu", "--input", "/nonexistent/x.f32"][..],
            1,
            "cannot read",
        ),
    ] {
        let (code, err) = status_and_line(&run(args));
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(
            err.contains(says),
            "{args:?}: `{err}` does not say `{says}`"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let out = activate()
        .arg(std::ffi::OsStr::from_bytes(b"rel\xffu"))
        .output()
        .unwrap();
    let (code, err) = status_and_line(&out);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("UTF-8"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_is_a_failure_not_a_panic() {
    let input = scratch("closed-in.f32");
    write_f32s(&input, &[1.0, -1.0]);
    let output = scratch("closed-out.f32");
    // stdout on /dev/full: every write fails (ENOSPC), after the output file is written
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if let Ok(full) = full {
        let out = activate()
            .args(["relu", "--input", input.to_str().unwrap(), "--output"])
            .arg(&output)
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let (code, err) = status_and_line(&out);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("standard output"), "{err}");
        assert_eq!(
            std::fs::read(&output).unwrap().len(),
            8,
            "the file was written"
        );
    }
    // a pipe whose reader has gone
    let mut child = activate()
        .arg("relu")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let (code, err) = status_and_line(&out);
    assert!(code == 1 || code == 0, "{err}");
}

#[test]
fn two_writers_of_one_output_never_interleave() {
    // Two large, different results written to one file at once: each run succeeds and
    // the file is exactly one of them, with no temporary file left behind.
    let n = 1 << 20;
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| -(i as f32) - 1.0).collect();
    let (ia, ib) = (scratch("two-a.f32"), scratch("two-b.f32"));
    write_f32s(&ia, &a);
    write_f32s(&ib, &b);
    let out = scratch("two-out.f32");
    for _ in 0..3 {
        let spawn = |input: &PathBuf| {
            activate()
                .args(["identity", "--input"])
                .arg(input)
                .arg("--output")
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&ia), spawn(&ib));
        for p in [pa, pb] {
            let o = p.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let got = std::fs::read(&out).unwrap();
        let as_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        assert!(
            got == as_bytes(&a) || got == as_bytes(&b),
            "the output mixes the two writers"
        );
    }
    let dir = out.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[cfg(unix)]
#[test]
fn a_symlink_is_followed_and_a_device_written_through() {
    let input = scratch("link-in.f32");
    write_f32s(&input, &[2.0, -3.0]);
    let real = scratch("link-real.f32");
    std::fs::write(&real, b"old").unwrap();
    let link = scratch("link.f32");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = status_and_line(
        &activate()
            .args(["relu", "--input", input.to_str().unwrap(), "--output"])
            .arg(&link)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(&real).unwrap(),
        [2.0f32, 0.0].map(f32::to_le_bytes).concat()
    );
    let (code, err) = status_and_line(
        &activate()
            .args([
                "relu",
                "--input",
                input.to_str().unwrap(),
                "--output",
                "/dev/null",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device_like());
}

/// Whether a file type is a device (character or block).
trait DeviceLike {
    fn is_char_device_like(&self) -> bool;
}

#[cfg(unix)]
impl DeviceLike for std::fs::FileType {
    fn is_char_device_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_char_device() || self.is_block_device()
    }
}

fn read_f32s(path: &PathBuf) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn backward_writes_grad_input_and_checks_its_files() {
    let (x, g, gx) = (scratch("bx.f32"), scratch("bg.f32"), scratch("bgx.f32"));
    write_f32s(&x, &[-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, -0.5, 0.5]);
    write_f32s(&g, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (x_s, g_s, gx_s) = (path(&x), path(&g), path(&gx));
    // relu: g where x > 0
    let out = run(&[
        "relu",
        "--backward",
        "--input",
        &x_s,
        "--grad-output",
        &g_s,
        "--output",
        &gx_s,
    ]);
    assert_eq!(status_and_line(&out).0, 0, "{out:?}");
    assert_eq!(read_f32s(&gx), [0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 8.0]);
    let xs = [-2.0f32, -1.0, 0.0, 1.0, 2.0, 3.0, -0.5, 0.5];
    let gs = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let run_to_file = |spec: &str, shape: &str| {
        let out = run(&[
            spec,
            "--backward",
            "--shape",
            shape,
            "--input",
            &x_s,
            "--grad-output",
            &g_s,
            "--output",
            &gx_s,
        ]);
        assert_eq!(status_and_line(&out).0, 0, "{spec}");
        read_f32s(&gx)
    };
    // sigmoid reads y, which the example computes first: g y (1 - y)
    let got = run_to_file("sigmoid", "8");
    let s = |v: f64| 1.0 / (1.0 + (-v).exp());
    for i in 0..8 {
        let (xv, gv) = (f64::from(xs[i]), f64::from(gs[i]));
        let want = gv * s(xv) * (1.0 - s(xv));
        let err = (f64::from(got[i]) - want).abs();
        assert!(err <= 1e-6 * want.abs(), "{i}: {} vs {want}", got[i]);
    }
    // softmax along rows of 4: y (g - sum(g y)), row by row
    let got = run_to_file("softmax", "2,4");
    for row in 0..2 {
        let r = row * 4..row * 4 + 4;
        let max = xs[r.clone()].iter().fold(f32::MIN, |m, &v| m.max(v));
        let e: Vec<f64> = xs[r.clone()]
            .iter()
            .map(|&v| f64::from(v - max).exp())
            .collect();
        let total: f64 = e.iter().sum();
        let y: Vec<f64> = e.iter().map(|v| v / total).collect();
        let dot: f64 = y.iter().zip(&gs[r]).map(|(y, &g)| y * f64::from(g)).sum();
        for j in 0..4 {
            let g = f64::from(gs[row * 4 + j]);
            let want = y[j] * (g - dot);
            let scale = y[j] * (g.abs() + dot.abs());
            let err = (f64::from(got[row * 4 + j]) - want).abs();
            assert!(err <= 1e-5 * scale, "softmax row {row}, {j}");
        }
    }
    // glu's grad_output has the output's shape: one of the input's length is refused
    let out = run(&[
        "glu",
        "--backward",
        "--shape",
        "2,4",
        "--input",
        &x_s,
        "--grad-output",
        &g_s,
    ]);
    let (code, err) = status_and_line(&out);
    assert_eq!(
        code, 2,
        "grad_output of the input's length is a usage error: {err}"
    );
    assert!(err.contains("--grad-output"), "{err}");
    // usage: --grad-output without --backward, --input without --grad-output
    assert_eq!(status_and_line(&run(&["relu", "--grad-output", &g_s])).0, 2);
    assert_eq!(
        status_and_line(&run(&["relu", "--backward", "--input", &x_s])).0,
        2
    );
    // the sample: x, y, grad_output 1 and f'(x) beside the reference
    let out = run(&["gelu", "--backward"]);
    assert_eq!(status_and_line(&out).0, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("grad_input") && text.contains("cpu reference"),
        "{text}"
    );
}

#[test]
fn half_files_in_and_out() {
    let (x, y) = (scratch("x.f16"), scratch("y.f16"));
    let xs = [-2.0f32, -0.5, 0.0, 1.0, 3.0];
    let bytes: Vec<u8> = xs
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    std::fs::write(&x, bytes).unwrap();
    let (x_s, y_s) = (x.to_str().unwrap(), y.to_str().unwrap());
    let out = run(&["relu", "--input", x_s, "--output", y_s, "--dtype", "f16"]);
    assert_eq!(status_and_line(&out).0, 0, "{out:?}");
    let got: Vec<f32> = std::fs::read(&y)
        .unwrap()
        .chunks_exact(2)
        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    assert_eq!(got, [0.0, 0.0, 0.0, 1.0, 3.0]);
    // bf16: 2 bytes a value, and the backward too: relu' (x) * g with g = x
    let out = run(&[
        "relu",
        "--backward",
        "--input",
        x_s,
        "--grad-output",
        x_s,
        "--output",
        y_s,
        "--dtype",
        "bf16",
    ]);
    assert_eq!(status_and_line(&out).0, 0, "{out:?}");
    assert_eq!(std::fs::read(&y).unwrap().len(), 10);
    // an odd byte count is not a whole number of halves; an unknown type is usage
    std::fs::write(&x, [0u8; 3]).unwrap();
    let (code, err) = status_and_line(&run(&["relu", "--input", x_s, "--dtype", "f16"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("f16"), "{err}");
    let (code, err) = status_and_line(&run(&["relu", "--dtype", "f64"]));
    assert_eq!(code, 2, "{err}");
    // the sample: differences counted in the type's ULPs
    let out = run(&["gelu", "--dtype", "bf16"]);
    assert_eq!(status_and_line(&out).0, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 bf16 ULP"), "{text}");
}

#[test]
fn roofline_reports_its_floors_and_pytorch_figures() {
    // PyTorch's figures as torch_bench.py prints them (and a line that is not one)
    let dir = tempfile::tempdir().unwrap();
    let torch = dir.path().join("torch.jsonl");
    std::fs::write(
        &torch,
        "{\"peer\": \"torch\", \"op\": \"relu\", \"elements\": 4096, \"row\": null, \
         \"seconds\": 2.5e-06, \"copy_seconds\": 2e-06, \"ratio\": 0.8}\n\
         not a figure\n\
         {\"peer\": \"torch\", \"op\": \"softmax\", \"elements\": 4096, \"row\": 128, \
         \"seconds\": 4e-06, \"copy_seconds\": 2e-06, \"ratio\": 0.5}\n",
    )
    .unwrap();
    let out = example("roofline")
        .args([
            "--ops",
            "relu,softmax,sigmoid",
            "--elements",
            "4096",
            "--rows",
            "128",
        ])
        .args(["--samples", "1", "--json", "--torch"])
        .arg(&torch)
        .output()
        .expect("roofline runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = |op: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{{\"op\": \"{op}\"")))
            .unwrap_or_else(|| panic!("no {op} line in {stdout}"))
            .to_string()
    };
    for op in ["relu", "softmax", "sigmoid"] {
        assert!(line(op).contains("\"identity_ratio\": "), "{}", line(op));
    }
    assert!(
        line("relu").contains("\"torch_seconds\": 2.5e-6"),
        "{}",
        line("relu")
    );
    assert!(
        line("softmax").contains("\"torch_copy_seconds\": 2e-6"),
        "{}",
        line("softmax")
    );
    assert!(!line("sigmoid").contains("torch"), "{}", line("sigmoid"));
    // an unreadable file is a usage error, not a panic
    let out = example("roofline")
        .args(["--torch", "/nonexistent/torch.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bias_fuses_before_the_op_and_a_wrong_length_is_a_usage_error() {
    let (x, b, y) = (
        scratch("bias-x.f32"),
        scratch("bias-b.f32"),
        scratch("bias-y.f32"),
    );
    write_f32s(&x, &[1.0, 2.0, 3.0, -4.0, -5.0, -6.0]);
    write_f32s(&b, &[0.5, -1.0, 2.0]);
    let (x_s, b_s, y_s) = (
        x.to_str().unwrap(),
        b.to_str().unwrap(),
        y.to_str().unwrap(),
    );
    let out = run(&[
        "relu", "--bias", b_s, "--shape", "2,3", "--input", x_s, "--output", y_s,
    ]);
    assert_eq!(status_and_line(&out).0, 0);
    // relu(x + b) with b along the last axis
    assert_eq!(read_f32s(&y), [1.5, 1.0, 5.0, 0.0, 0.0, 0.0]);
    for (args, says) in [
        (
            &["relu", "--bias", b_s, "--shape", "3,2", "--input", x_s][..],
            "the bias holds 3 values",
        ),
        (
            &["softmax", "--bias", b_s, "--shape", "2,3", "--input", x_s][..],
            "elementwise",
        ),
        (
            &["gelu", "--bias", b_s, "--backward"][..],
            "--bias is for the forward",
        ),
    ] {
        let (code, err) = status_and_line(&run(args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn wgsl_prints_the_forward_and_backward_functions() {
    let out = run(&["--wgsl", "leaky_relu(negative_slope=0.2)"]);
    assert_eq!(status_and_line(&out).0, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    for f in [
        "fn leaky_relu(",
        "fn leaky_relu_init(",
        "fn leaky_relu_backward(",
        "fn leaky_relu_backward_init(",
    ] {
        assert!(text.contains(f), "{f} missing");
    }
    wgpu_activations::shader::validate_wgsl(&text).unwrap();
    let (code, err) = status_and_line(&run(&["--wgsl", "softmax"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rows"), "{err}");
    let (code, err) = status_and_line(&run(&["--wgsl", "gelu", "--shape", "4"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_fused_matmul_example_gives_the_crate_kernels_bits() {
    for spec in ["gelu", "silu"] {
        let out = example("fused_matmul")
            .args(["--size", "64", "--samples", "1", "--spec", spec])
            .output()
            .expect("fused_matmul runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{spec}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("crate's fused bias") && text.contains(": true"),
            "{text}"
        );
    }
}
