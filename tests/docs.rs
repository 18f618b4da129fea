//! The README's op table is derived from the op table; this catches drift between them.

use wgpu_activations::Op;

#[test]
fn readme_lists_every_op_with_its_parameters_and_defaults() {
    let readme = include_str!("../README.md");
    for &op in Op::ALL {
        let info = op.info();
        let formula = info.formula.replace('|', "\\|");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `") && l.contains(&formula))
            .unwrap_or_else(|| {
                panic!(
                    "README has no table row for {} ({})",
                    info.name, info.formula
                )
            });
        assert!(row.contains(info.name), "{row}");
        for p in info.params {
            let text = match p.default {
                Some(d) => format!("`{}={d}`", p.name),
                None => format!("`{}` (required)", p.name),
            };
            assert!(
                row.contains(&text),
                "README row for {} lacks {text}: {row}",
                info.name
            );
        }
    }
}

#[test]
fn readme_lists_every_backward_with_what_it_reads() {
    use wgpu_activations::Saved;
    let readme = include_str!("../README.md");
    for &op in Op::ALL {
        let b = op.backward();
        let formula = b.formula.replace('|', "\\|");
        let reads = match b.saved {
            Saved::Input => "| x |",
            Saved::Output => "| y |",
        };
        readme
            .lines()
            .find(|l| {
                l.starts_with(&format!("| `{}", op.name()))
                    && l.contains(&formula)
                    && l.contains(reads)
            })
            .unwrap_or_else(|| {
                panic!(
                    "README's backward table has no row for {} reading {reads} ({})",
                    op.name(),
                    b.formula
                )
            });
    }
}
