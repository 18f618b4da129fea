//! The activations as a WGSL library for the user's own kernels: each elementwise op and
//! its derivative exported as a self-contained function, from the very text the crate's
//! kernels compile (`shaders/activations.wgsl`, `shaders/gradients.wgsl`, and the
//! elementwise family's wrappers), specialised for one context: its `FUSED_FMA`, its
//! parameters, and the run-time 1.0 (`opaque_one`) the library's error-free
//! transformations are kept through.
//!
//! The library is cut into its top-level items (a comment block, then a `fn`, `const`,
//! `override`, `struct` or `var<private>` at column 0); an export is the closure of the
//! items its wrapper names, every item renamed `NAME__item`, so exports with different
//! names never collide in one module.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use super::elementwise::{backward_call, forward_call};
use crate::device::wgsl::{validate_wgsl, ACTIVATIONS_WGSL, GRADIENTS_WGSL};
use crate::{Activation, Context, Direction, Error, Result};

/// One top-level item of the library: its name and text (with its comment block).
struct Item {
    name: String,
    text: String,
}

/// The library's items, in order: the math library and activations, then the derivatives.
fn library() -> &'static [Item] {
    static ITEMS: OnceLock<Vec<Item>> = OnceLock::new();
    ITEMS.get_or_init(|| {
        let mut items = items_of(ACTIVATIONS_WGSL);
        items.extend(items_of(GRADIENTS_WGSL));
        items
    })
}

/// The top-level items of a WGSL source written as the library is: each starts at column
/// 0 with a keyword, after its comment block; a `fn` or `struct` ends at a `}` in column
/// 0, a declaration at its `;`.
fn items_of(source: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut comment = String::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("//") {
            comment.push_str(line);
            comment.push('\n');
            continue;
        }
        let Some(name) = item_name(line) else {
            comment.clear();
            continue;
        };
        let mut text = std::mem::take(&mut comment);
        text.push_str(line);
        text.push('\n');
        let block = line.starts_with("fn ") || line.starts_with("struct ");
        let mut done = !block && line.trim_end().ends_with(';');
        while !done {
            let Some(next) = lines.next() else { break };
            text.push_str(next);
            text.push('\n');
            done = if block {
                next == "}"
            } else {
                next.trim_end().ends_with(';')
            };
        }
        items.push(Item {
            name: name.to_string(),
            text,
        });
    }
    items
}

/// The name a top-level line declares, if it declares one.
fn item_name(line: &str) -> Option<&str> {
    let rest = ["fn ", "const ", "override ", "struct ", "var<private> "]
        .iter()
        .find_map(|k| line.strip_prefix(k))?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The identifiers in `text`, comments excluded.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// `text` with every identifier in `names` prefixed `prefix` (whole words only).
fn renamed(text: &str, names: &BTreeSet<&str>, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if names.contains(word.as_str()) {
            out.push_str(prefix);
        }
        out.push_str(word);
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The indices of the items `roots` need, transitively, in library order.
fn closure(roots: &str) -> Vec<usize> {
    let items = library();
    let index = |name: &str| items.iter().position(|i| i.name == name);
    let mut needed = BTreeSet::new();
    let mut todo: Vec<usize> = identifiers(roots).filter_map(index).collect();
    while let Some(i) = todo.pop() {
        if needed.insert(i) {
            todo.extend(identifiers(&items[i].text).filter_map(index));
        }
    }
    needed.into_iter().collect()
}

/// An error unless `name` can name WGSL functions with `__` suffixes after it.
fn check_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__");
    if !ok {
        return Err(Error::Unsupported(format!(
            "`{name}` cannot name an exported WGSL function: give a letter followed by \
             letters, digits and single underscores"
        )));
    }
    Ok(())
}

/// The WGSL of `activation`'s function (or its derivative) named `name` for `ctx`.
pub(crate) fn export(
    ctx: &Context,
    activation: &Activation,
    name: &str,
    direction: Direction,
) -> Result<String> {
    check_name(name)?;
    let op = activation.op();
    let kernel = match direction {
        Direction::Forward => op.elementwise().map(|(wgsl, _)| wgsl),
        Direction::Backward => op.elementwise_grad().map(|(wgsl, _)| wgsl),
    };
    let Some(wgsl) = kernel else {
        return Err(Error::Unsupported(not_exportable(activation)));
    };
    if op.random().is_some() {
        return Err(Error::Unsupported(not_exportable(activation)));
    }
    let prefix = format!("{name}__");
    let params = format!("{prefix}p");
    let (signature, body) = match direction {
        Direction::Forward => ("x: f32", forward_call(wgsl, "x", &params)),
        Direction::Backward => (
            "saved: f32, grad_output: f32",
            backward_call(wgsl, "saved", "grad_output", &params),
        ),
    };
    let items = library();
    let needed = closure(&body);
    let names: BTreeSet<&str> = needed.iter().map(|&i| items[i].name.as_str()).collect();
    let header = header(ctx, activation, name, direction, signature);
    let mut out = header;
    out.push_str(&format!("var<private> {prefix}p: vec4<f32>;\n"));
    if !needed.iter().any(|&i| items[i].name == "opaque_one") {
        out.push_str(&format!("var<private> {prefix}opaque_one: f32;\n"));
    }
    out.push_str(&init(name, &prefix, activation));
    let body = renamed(&body, &names, &prefix);
    out.push_str(&format!(
        "fn {name}({signature}) -> f32 {{\n    return {body};\n}}\n"
    ));
    for &i in &needed {
        out.push('\n');
        let text = renamed(&items[i].text, &names, &prefix);
        out.push_str(&specialised(&text, &prefix, ctx.facts().fused_fma));
    }
    validate_wgsl(&out).map_err(|e| match e {
        Error::Shader { report, source } => Error::Shader {
            report: format!("the export `{name}` of `{activation}` does not validate: {report}"),
            source,
        },
        other => other,
    })?;
    Ok(out)
}

/// The export's opening comment: what it computes, for which adapter, and how to call it.
fn header(
    ctx: &Context,
    activation: &Activation,
    name: &str,
    direction: Direction,
    signature: &str,
) -> String {
    let what = match direction {
        Direction::Forward => format!("`{activation}`"),
        Direction::Backward => format!("the backward of `{activation}` (grad_input)"),
    };
    format!(
        "// {name}({signature}): {what}, exported by wgpu-activations {} for {} ({}).\n\
         // Call {name}_init(one) once at the top of the entry point, with 1.0 read at run\n\
         // time (a uniform, a storage value, or f32(min(arrayLength(&buf), 1u)) for a\n\
         // non-empty buffer), then {name}(...): the bits of the crate's own kernel.\n",
        env!("CARGO_PKG_VERSION"),
        ctx.adapter_name(),
        ctx.facts()
    )
}

/// `NAME_init(one)`: the run-time 1.0, and the spec's parameters brought in through it as
/// a kernel brings them from its uniforms (no constant the compiler could fold).
fn init(name: &str, prefix: &str, activation: &Activation) -> String {
    let bits = activation
        .param_slots()
        .map(|p| format!("{:#010x}u", p.to_bits()))
        .join(", ");
    format!(
        "fn {name}_init(one: f32) {{\n    \
         {prefix}opaque_one = one;\n    \
         {prefix}p = bitcast<vec4<f32>>(vec4<u32>({bits}) * u32(one));\n}}\n"
    )
}

/// An item with the library's pipeline-overridable constant made this context's constant.
fn specialised(text: &str, prefix: &str, fused_fma: bool) -> String {
    let over = format!("override {prefix}FUSED_FMA: bool = true;");
    text.replace(
        &over,
        &format!("const {prefix}FUSED_FMA: bool = {fused_fma};"),
    )
}

/// Why an op is not exported.
fn not_exportable(activation: &Activation) -> String {
    let op = activation.op();
    let why = if op.random().is_some() {
        "its numbers depend on each element's index in the call and the call's Philox \
         counters; run it through Context::call"
    } else if op.softmax().is_some() {
        "it normalises whole rows (a reduction, not a function of one element)"
    } else if op.grouped().is_some() {
        "each output reduces a group of inputs"
    } else {
        "it needs batch statistics of the whole tensor"
    };
    format!("`{activation}` has no exported WGSL function: {why}")
}

impl Context {
    /// WGSL defining `fn NAME(x: f32) -> f32`, `activation` with its parameters baked in,
    /// and `fn NAME_init(one: f32)`, for use inside your own kernels; every other item it
    /// declares starts with `NAME__`, so exports with different names share a module.
    /// No bindings, no `enable`. It is the code this context's kernels run (the library's
    /// functions, specialised for this adapter's `fma` and this spec), so it gives their
    /// bits and their published bound, provided your entry point calls `NAME_init` with a
    /// 1.0 it reads at run time (a uniform, a storage value, or
    /// `f32(min(arrayLength(&buf), 1u))` for a non-empty buffer) before calling `NAME`.
    /// An error for the ops that are not elementwise and for the random ops.
    ///
    /// ```no_run
    /// let ctx = wgpu_activations::Context::new()?;
    /// let gelu = ctx.wgsl_function(&"gelu".parse()?, "gelu")?;
    /// let kernel = format!("{gelu}
    /// @group(0) @binding(0) var<storage, read_write> v: array<f32>;
    /// @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
    ///     gelu_init(f32(min(arrayLength(&v), 1u)));
    ///     if (id.x < arrayLength(&v)) {{ v[id.x] = gelu(v[id.x]); }}
    /// }}");
    /// let module = ctx.compile_wgsl("my gelu", &kernel)?;
    /// # Ok::<(), wgpu_activations::Error>(())
    /// ```
    pub fn wgsl_function(&self, activation: &Activation, name: &str) -> Result<String> {
        export(self, activation, name, Direction::Forward)
    }

    /// [`Context::wgsl_function`] for the backward: `fn NAME(saved: f32, grad_output: f32)
    /// -> f32` gives grad_input, `saved` being what
    /// [`Op::backward`](crate::Op::backward)`().saved` names (x, or y for sigmoid and
    /// tanh); `fn NAME_init(one: f32)` as for the forward.
    pub fn wgsl_backward_function(&self, activation: &Activation, name: &str) -> Result<String> {
        export(self, activation, name, Direction::Backward)
    }

    /// Compiles WGSL as this context compiles its own kernels (under emulated relaxed
    /// semantics where [`ContextOptions::emulate_relaxed_math`](crate::ContextOptions)
    /// asks for it), inside error scopes: for your kernels that call exported functions,
    /// so that they compute as the crate's kernels do on this context.
    pub fn compile_wgsl(&self, label: &str, source: &str) -> Result<wgpu::ShaderModule> {
        self.scoped(|| self.shader_module(label, source))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_cut_into_named_items_that_rename_cleanly() {
        let items = library();
        assert!(items.iter().any(|i| i.name == "act_gelu"));
        assert!(items.iter().any(|i| i.name == "FUSED_FMA"));
        // no item name is also a local, a parameter or a member: renaming is safe
        let names: BTreeSet<&str> = items.iter().map(|i| i.name.as_str()).collect();
        for item in items {
            let t = &item.text;
            for name in &names {
                for bad in [
                    format!("let {name} "),
                    format!("var {name} "),
                    format!(".{name}"),
                ] {
                    assert!(!t.contains(&bad), "{}: `{bad}`", item.name);
                }
            }
        }
    }

    #[test]
    fn names_that_would_collide_are_refused() {
        for bad in ["", "_x", "a__b", "1x", "a-b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_name("my_gelu2").is_ok());
    }
}
