//! The gallery example draws an op and its derivative, GPU and CPU, for a few ops of
//! every kind, and an index page that lists them.

use std::process::Command;

#[test]
fn gallery_draws_every_kind_of_op_and_an_index() {
    let mut exe = std::env::current_exe().expect("the test binary's path");
    exe.pop();
    if exe.ends_with("deps") {
        exe.pop();
    }
    let exe = exe
        .join("examples")
        .join(format!("gallery{}", std::env::consts::EXE_SUFFIX));
    assert!(
        exe.exists(),
        "{} is missing: `cargo test` builds the examples",
        exe.display()
    );
    let out = std::env::temp_dir().join(format!("wgpu-activations-gallery-{}", std::process::id()));
    let mut cmd = Command::new(&exe);
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let status = cmd
        .args([
            "--ops",
            "gelu,sigmoid,softmax,maxout(k=2),glu,dice(alpha=0.3),rrelu(training=true)",
        ])
        .args(["--points", "101", "--out"])
        .arg(&out)
        .output()
        .expect("gallery runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let index = std::fs::read_to_string(out.join("index.html")).unwrap();
    for name in [
        "gelu",
        "sigmoid",
        "softmax",
        "maxout_k_2",
        "glu",
        "dice_alpha_0_3",
        "rrelu_training_true",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("{name}.svg")))
            .unwrap_or_else(|e| panic!("{name}.svg: {e}"));
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        // the four curves: f and f' from the GPU, and their references
        assert!(
            svg.matches("<polyline").count() >= 4,
            "{name}: fewer than four curves"
        );
        assert!(
            svg.contains("f'(x), GPU backward") && svg.contains("CPU reference"),
            "{name}"
        );
        assert!(
            index.contains(&format!("src=\"{name}.svg\"")),
            "index lacks {name}"
        );
    }
    // the derivative's formula from the op table is on the index page
    assert!(index.contains("Phi(x) + x phi(x)"));
    let _ = std::fs::remove_dir_all(&out);
}
