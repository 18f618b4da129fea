//! [`Activation`]: an op with its parameter values, and the spec grammar that names one.
//!
//! Grammar: `NAME` or `NAME(KEY=VALUE, ...)`, values are numbers or bare words. Parsing is
//! [`FromStr`], printing is [`Display`], and the two round-trip.

use std::fmt;
use std::str::FromStr;

use crate::op::{Op, MAX_PARAMS};
use crate::{Error, Result};

/// Other names users know, mapped to the table's name (Keras and TF spellings).
const ALIASES: &[(&str, &str)] = &[
    ("linear", "identity"),
    ("heaviside", "binary_step"),
    ("hard_sigmoid", "hardsigmoid"),
    ("hard_swish", "hardswish"),
    ("log_sigmoid", "logsigmoid"),
];

/// An op and its parameters, ready to run.
///
/// ```
/// use wgpu_activations::{Activation, Op};
/// let a: Activation = "leaky_relu(negative_slope=0.2)".parse().unwrap();
/// assert_eq!(a.op(), Op::LeakyRelu);
/// assert_eq!(a.param("negative_slope"), Some(0.2));
/// assert_eq!(a.to_string(), "leaky_relu(negative_slope=0.2)");
/// assert_eq!(Activation::new(Op::Elu).unwrap().to_string(), "elu");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Activation {
    op: Op,
    params: [f32; MAX_PARAMS],
}

impl Activation {
    /// The op with its default parameters; an error if it has a required one
    /// (`threshold`), which [`Activation::with`] or a spec string must give.
    pub fn new(op: Op) -> Result<Self> {
        let info = op.info();
        let mut params = [0.0; MAX_PARAMS];
        for (slot, param) in params.iter_mut().zip(info.params) {
            *slot = param.default.ok_or_else(|| Error::Spec {
                spec: info.name.to_string(),
                reason: format!("`{}` is required", param.name),
            })?;
        }
        Ok(Activation { op, params })
    }

    /// The op with its defaults, and the table's sample values for required parameters
    /// (`threshold(threshold=0.5, value=-2)`): one instance of every op, for tests,
    /// benchmarks and tables.
    pub fn example(op: Op) -> Self {
        let mut params = [0.0; MAX_PARAMS];
        for (slot, param) in params.iter_mut().zip(op.info().params) {
            *slot = param.example;
        }
        Activation { op, params }
    }

    /// Builds from an op and all its parameter values in table order, validating them.
    pub fn from_params(op: Op, values: &[f32]) -> Result<Self> {
        let info = op.info();
        if values.len() != info.params.len() {
            return Err(Error::Spec {
                spec: info.name.to_string(),
                reason: format!(
                    "expects {} parameter(s) ({}), got {}",
                    info.params.len(),
                    param_names(op),
                    values.len()
                ),
            });
        }
        let mut params = [0.0; MAX_PARAMS];
        params[..values.len()].copy_from_slice(values);
        let a = Activation { op, params };
        a.validate()?;
        Ok(a)
    }

    /// The same activation with one parameter changed.
    pub fn with(self, name: &str, value: f32) -> Result<Self> {
        let info = self.op.info();
        let index = info
            .params
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| Error::Spec {
                spec: self.to_string(),
                reason: unknown_key(self.op, name),
            })?;
        let mut a = self;
        a.params[index] = value;
        a.validate()?;
        Ok(a)
    }

    /// The op.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The parameter values, in the op table's order.
    pub fn params(&self) -> &[f32] {
        &self.params[..self.op.info().params.len()]
    }

    /// The four parameter slots as the shader receives them (unused ones are 0).
    pub fn param_slots(&self) -> [f32; MAX_PARAMS] {
        self.params
    }

    /// One parameter by its PyTorch name.
    pub fn param(&self, name: &str) -> Option<f32> {
        let info = self.op.info();
        let i = info.params.iter().position(|p| p.name == name)?;
        Some(self.params[i])
    }

    /// The axis a softmax-family op normalises along (its `dim`, negative from the end);
    /// -1 for ops without one.
    pub fn dim(&self) -> i64 {
        self.param("dim").map_or(-1, |d| d as i64)
    }

    /// The shape of the output for an input of `shape`: the same, except for grouped
    /// ops, whose axis shrinks `k`-fold (2-fold for `glu`). An error when `dim` is outside
    /// the shape, or the axis is not a multiple of the group size.
    ///
    /// ```
    /// use wgpu_activations::Activation;
    /// let maxout: Activation = "maxout(k=4, dim=1)".parse().unwrap();
    /// assert_eq!(maxout.output_shape(&[2, 12, 3]).unwrap(), vec![2, 3, 3]);
    /// assert!(maxout.output_shape(&[2, 10, 3]).is_err());
    /// let glu: Activation = "glu".parse().unwrap();
    /// assert_eq!(glu.output_shape(&[5, 8]).unwrap(), vec![5, 4]);
    /// ```
    pub fn output_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let len = crate::shape::element_count(shape)?;
        if self.op.elementwise().is_some() {
            return Ok(shape.to_vec());
        }
        let view = crate::RowView::new(shape, self.dim(), len)?;
        let Some(k) = self.group_size() else {
            return Ok(shape.to_vec());
        };
        if view.axis % k != 0 {
            return Err(Error::Shape {
                shape: shape.to_vec(),
                reason: if self.op.grouped().is_some_and(|k| k.is_gated()) {
                    format!(
                        "{} halves dim {}, which has an odd length {}",
                        self.op.name(),
                        self.dim(),
                        view.axis
                    )
                } else {
                    format!(
                        "dim {} has {} elements, not a multiple of k = {k}",
                        self.dim(),
                        view.axis
                    )
                },
            });
        }
        let mut out = if shape.is_empty() {
            vec![1]
        } else {
            shape.to_vec()
        };
        let rank = out.len() as i64;
        let axis = (self.dim() + rank) % rank;
        out[axis as usize] /= k;
        Ok(out)
    }

    /// The number of inputs per output of a grouped op (`k`, or 2 for `glu`); `None`
    /// for other ops.
    pub fn group_size(&self) -> Option<usize> {
        match self.op.grouped()? {
            kind if kind.is_gated() => Some(2),
            _ => self.param("k").map(|k| k as usize),
        }
    }

    /// Whether every parameter has its default value (the ULP bound can depend on it).
    pub fn has_default_params(&self) -> bool {
        self.op
            .info()
            .params
            .iter()
            .zip(self.params())
            .all(|(p, &v)| p.default == Some(v))
    }

    fn validate(&self) -> Result<()> {
        let info = self.op.info();
        for (p, v) in info.params.iter().zip(self.params()) {
            if !v.is_finite() {
                return Err(Error::Spec {
                    spec: self.to_string(),
                    reason: format!("`{}` must be finite, got {v}", p.name),
                });
            }
        }
        (info.check)(self.params()).map_err(|reason| Error::Spec {
            spec: self.to_string(),
            reason,
        })
    }
}

fn param_names(op: Op) -> String {
    let names: Vec<_> = op.info().params.iter().map(|p| p.name).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn unknown_key(op: Op, key: &str) -> String {
    let info = op.info();
    let mut keys: Vec<&str> = info.params.iter().map(|p| p.name).collect();
    if let Some((k, _)) = info.variant {
        keys.push(k);
    }
    if keys.is_empty() {
        format!("`{}` takes no parameters, got `{key}`", info.name)
    } else {
        format!(
            "`{}` has no parameter `{key}`; it takes {}",
            info.name,
            keys.join(", ")
        )
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.op.info();
        let mut parts = Vec::new();
        // The word selector is printed only when it is not the name's first (default) row.
        if let Some((key, word)) = info.variant {
            let first = Op::ALL.iter().find(|o| o.name() == info.name);
            if first != Some(&self.op) {
                parts.push(format!("{key}={word}"));
            }
        }
        for (p, v) in info.params.iter().zip(self.params()) {
            if p.default != Some(*v) {
                parts.push(format!("{}={v}", p.name));
            }
        }
        if parts.is_empty() {
            write!(f, "{}", info.name)
        } else {
            write!(f, "{}({})", info.name, parts.join(", "))
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let err = |reason: String| Error::Spec {
            spec: spec.to_string(),
            reason,
        };
        let (name, args) = split_spec(spec.trim()).map_err(err)?;
        let rows = rows_named(name).map_err(err)?;
        let mut pairs = match args {
            Some(inner) => parse_pairs(inner).map_err(err)?,
            None => Vec::new(),
        };
        let op = pick_variant(&rows, &mut pairs).map_err(err)?;
        let info = op.info();
        let mut values: Vec<Option<f32>> = info.params.iter().map(|p| p.default).collect();
        for (k, v) in pairs {
            let i = info
                .params
                .iter()
                .position(|p| p.name == k)
                .ok_or_else(|| err(unknown_key(op, k)))?;
            let value: f32 = v
                .parse()
                .map_err(|_| err(format!("`{k}` must be a number, got `{v}`")))?;
            values[i] = Some(value);
        }
        let mut params = Vec::with_capacity(values.len());
        for (p, v) in info.params.iter().zip(values) {
            params.push(v.ok_or_else(|| err(format!("`{}` is required", p.name)))?);
        }
        Activation::from_params(op, &params).map_err(|e| match e {
            Error::Spec { reason, .. } => err(reason),
            other => other,
        })
    }
}

/// `NAME` or `NAME(ARGS)` into the name and the text between the parentheses.
fn split_spec(text: &str) -> std::result::Result<(&str, Option<&str>), String> {
    let (name, args) = match text.find('(') {
        None => (text, None),
        Some(open) => {
            let inner = text[open + 1..]
                .strip_suffix(')')
                .ok_or_else(|| "expected `)` at the end".to_string())?;
            if inner.contains(['(', ')']) {
                return Err("unbalanced parentheses".into());
            }
            (text[..open].trim(), Some(inner))
        }
    };
    if name.is_empty() {
        return Err("empty name; expected e.g. `relu` or `leaky_relu(negative_slope=0.2)`".into());
    }
    Ok((name, args))
}

/// The op table's rows of a name (or alias): several where a word selects among them
/// (gelu's `approximate`); an error with a suggestion for an unknown name.
fn rows_named(name: &str) -> std::result::Result<Vec<Op>, String> {
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, target)| *target);
    let rows: Vec<Op> = Op::ALL
        .iter()
        .copied()
        .filter(|o| o.name() == canonical)
        .collect();
    if rows.is_empty() {
        return Err(match suggest(name) {
            Some(s) => format!("unknown activation `{name}`; did you mean `{s}`?"),
            None => format!("unknown activation `{name}`"),
        });
    }
    Ok(rows)
}

/// `KEY=VALUE, ...` into trimmed pairs, each key once.
fn parse_pairs(inner: &str) -> std::result::Result<Vec<(&str, &str)>, String> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for item in inner.split(',').map(str::trim) {
        if item.is_empty() {
            if inner.trim().is_empty() {
                break;
            }
            return Err("empty argument between commas".into());
        }
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, got `{item}`"))?;
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            return Err(format!("missing value for `{k}`"));
        }
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("`{k}` is given twice"));
        }
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// The row a word selector picks (gelu's `approximate=tanh`), taking the selector out
/// of `pairs`; the first row where there is none.
fn pick_variant(rows: &[Op], pairs: &mut Vec<(&str, &str)>) -> std::result::Result<Op, String> {
    let first = rows[0];
    let Some((vkey, _)) = first.info().variant else {
        return Ok(first);
    };
    let Some(&(_, word)) = pairs.iter().find(|(k, _)| *k == vkey) else {
        return Ok(first);
    };
    let op = *rows
        .iter()
        .find(|o| o.info().variant.map(|(_, w)| w) == Some(word))
        .ok_or_else(|| {
            let words: Vec<_> = rows
                .iter()
                .filter_map(|o| o.info().variant)
                .map(|v| v.1)
                .collect();
            format!("`{vkey}` must be one of {}, got `{word}`", words.join(", "))
        })?;
    pairs.retain(|(k, _)| *k != vkey);
    Ok(op)
}

impl Activation {
    /// Parses a comma-separated list of specs; commas inside a spec's parentheses belong
    /// to that spec.
    ///
    /// ```
    /// use wgpu_activations::Activation;
    /// let list = Activation::parse_list("relu, softplus(beta=2, threshold=10),softmax").unwrap();
    /// assert_eq!(list.len(), 3);
    /// assert_eq!(list[1].to_string(), "softplus(beta=2, threshold=10)");
    /// assert!(Activation::parse_list("relu,(").is_err());
    /// ```
    pub fn parse_list(list: &str) -> Result<Vec<Activation>> {
        let (mut specs, mut current, mut depth) = (Vec::new(), String::new(), 0i32);
        for c in list.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    specs.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        specs.push(current);
        specs
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }
}

/// The closest name (or alias) to a misspelling, if any is close enough to be a guess.
fn suggest(name: &str) -> Option<&'static str> {
    let candidates = Op::ALL
        .iter()
        .map(|o| o.name())
        .chain(ALIASES.iter().map(|(a, _)| *a));
    let lower = name.to_ascii_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting an insertion, deletion, substitution or swap of two adjacent
/// letters as one edit (optimal string alignment): "gleu" is one swap from "gelu".
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("gelu", "gelu"), 0);
        assert_eq!(edit_distance("gleu", "gelu"), 1);
        assert_eq!(edit_distance("relu", "relu6"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
