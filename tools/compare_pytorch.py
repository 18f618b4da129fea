#!/usr/bin/env python3
"""Compare wgpu-activations with your own PyTorch, op by op, forward and backward.

Runs the crate's `activate` example on the GPU (or lavapipe) for every op of the README
table that PyTorch has (and for the crate's few extras written as torch formulas), on
inputs that are not the crate's own sweep: uniform, normal, log-uniform over the whole f32
range with both signs, the neighbourhoods of every branch point, subnormals, +-0, +-inf
and NaN. PyTorch's float64 result, rounded to f32, is the reference; each case reports

- the crate's largest error against it on finite results (ULP, or relative for the
  softmax family, as the README bounds it), the README's bound and whether it holds;
- PyTorch float32's own largest error against the same reference, for scale;
- how many results are not bit-identical to PyTorch float32 (NaN meets any NaN);
- the elements where the crate and PyTorch float64 differ in kind (NaN against a number,
  an infinity against a finite value, zeros of opposite signs), with an input for each:
  the README's "Differences from PyTorch" lists the ones that are on purpose.

Not part of CI (`pip install torch numpy mpmath` is about 5 GB). Usage:

    cargo build --release --example activate
    pip install torch numpy mpmath
    python3 tools/compare_pytorch.py [--activate target/release/examples/activate]
        [--n 200000] [--ops gelu,silu,...] [--forward-only] [--markdown FILE]

Exit status 0 when every case holds its bound on finite results, 1 otherwise.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import tempfile

import mpmath as mp
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F32_TINY = np.float32(np.finfo(np.float32).tiny)


def swish(beta):
    return lambda x: x * torch.sigmoid(beta * x)


def gated(f):
    def g(x):
        a, b = x.chunk(2, dim=-1)
        return f(a) * b

    return g


def fold(k, how):
    return lambda x: how(x.reshape(*x.shape[:-1], x.shape[-1] // k, k))


# spec -> (torch function of a tensor, kind). Kinds: "elementwise", "grouped" (the last
# axis halves or shrinks), "rows" (the softmax family, relative bounds).
CASES = {
    "identity": (lambda x: x * 1, "elementwise"),
    "binary_step": (lambda x: torch.heaviside(x, torch.ones_like(x)), "elementwise"),
    "sigmoid": (torch.sigmoid, "elementwise"),
    "tanh": (torch.tanh, "elementwise"),
    "relu": (F.relu, "elementwise"),
    "relu6": (F.relu6, "elementwise"),
    "leaky_relu": (F.leaky_relu, "elementwise"),
    "leaky_relu(negative_slope=0.2)": (lambda x: F.leaky_relu(x, 0.2), "elementwise"),
    "elu": (F.elu, "elementwise"),
    "elu(alpha=0.5)": (lambda x: F.elu(x, 0.5), "elementwise"),
    "selu": (F.selu, "elementwise"),
    "celu": (F.celu, "elementwise"),
    "celu(alpha=0.3)": (lambda x: F.celu(x, 0.3), "elementwise"),
    "gelu": (F.gelu, "elementwise"),
    "gelu(approximate=tanh)": (lambda x: F.gelu(x, approximate="tanh"), "elementwise"),
    "silu": (F.silu, "elementwise"),
    "swish(beta=1.5)": (swish(1.5), "elementwise"),
    "mish": (F.mish, "elementwise"),
    "softplus": (F.softplus, "elementwise"),
    "softplus(beta=2,threshold=10)": (lambda x: F.softplus(x, 2, 10), "elementwise"),
    "softsign": (F.softsign, "elementwise"),
    "hardsigmoid": (F.hardsigmoid, "elementwise"),
    "hardswish": (F.hardswish, "elementwise"),
    "hardtanh": (F.hardtanh, "elementwise"),
    "hardtanh(min_val=-2,max_val=3)": (lambda x: F.hardtanh(x, -2.0, 3.0), "elementwise"),
    "logsigmoid": (F.logsigmoid, "elementwise"),
    "tanhshrink": (F.tanhshrink, "elementwise"),
    "softshrink": (F.softshrink, "elementwise"),
    "hardshrink": (F.hardshrink, "elementwise"),
    "threshold(threshold=0.5,value=-2)": (lambda x: F.threshold(x, 0.5, -2.0), "elementwise"),
    "prelu": (lambda x: F.prelu(x, torch.tensor([0.25], dtype=x.dtype)), "elementwise"),
    "rrelu": (lambda x: F.rrelu(x, training=False), "elementwise"),
    # not in torch.nn.functional: the README's formula written in torch
    "gaussian": (lambda x: torch.exp(-x * x), "elementwise"),
    "multiquadric(c=0.5,a=2)": (lambda x: torch.sqrt((x - 0.5) ** 2 + 4.0), "elementwise"),
    "inverse_multiquadric": (lambda x: 1 / torch.sqrt(x * x + 1.0), "elementwise"),
    "maxout(k=2)": (fold(2, lambda v: v.max(-1).values), "grouped"),
    "fold_min(k=4)": (fold(4, lambda v: v.min(-1).values), "grouped"),
    "fold_mean(k=4)": (fold(4, lambda v: v.mean(-1)), "grouped"),
    "glu": (F.glu, "grouped"),
    "swiglu": (gated(F.silu), "grouped"),
    "geglu": (gated(F.gelu), "grouped"),
    "geglu(approximate=tanh)": (gated(lambda a: F.gelu(a, approximate="tanh")), "grouped"),
    "reglu": (gated(F.relu), "grouped"),
    "softmax": (lambda x: F.softmax(x, -1), "rows"),
    "softmax(dim=0)": (lambda x: F.softmax(x, 0), "rows"),
    "log_softmax": (lambda x: F.log_softmax(x, -1), "rows"),
    "log_softmax(dim=0)": (lambda x: F.log_softmax(x, 0), "rows"),
    "softmin": (lambda x: F.softmin(x, -1), "rows"),
}
# Ops whose backward reads the saved output y (as PyTorch saves it): the reference is the
# derivative in float64 of the f32 y, the tensor the backward is given (the README's
# bounds are against that; from the exact y, sigmoid'(20) = 2e-9 is 0 in f32 y(1 - y)).
READS_Y = {
    "sigmoid": (torch.sigmoid, lambda y, g: g * y * (1 - y)),
    "tanh": (torch.tanh, lambda y, g: g * (1 - y * y)),
}
# heaviside has no derivative in PyTorch; the crate's is torch.sign's (zeros)
BACKWARD_FN = {"binary_step": torch.sign}
# Left out: noisy_relu and rrelu(training=true) draw from the crate's Philox stream, not
# PyTorch's generator; dice is not a PyTorch op.


mp.mp.dps = 50
SQRT2 = mp.sqrt(2)
SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")
SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")


def mp_softplus(x, beta=1, threshold=20):
    return x if beta * x > threshold else mp.log1p(mp.exp(beta * x)) / beta


def mp_gelu(x):
    return x / 2 * mp.erfc(-x / SQRT2)


def mp_gelu_tanh(x):
    return x / 2 * (1 + mp.tanh(mp.sqrt(2 / mp.pi) * (x + mp.mpf("0.044715") * x**3)))


def mp_elu(alpha):
    return lambda x: x if x > 0 else alpha * mp.expm1(x)


def mp_celu(alpha):
    return lambda x: max(0, x) + min(0, alpha * mp.expm1(x / alpha))


def mp_sigmoid(x):
    return 1 / (1 + mp.exp(-x))


# The smooth ops' formulas at 50 digits: the arbiter where PyTorch float64 and the crate
# disagree beyond the bound (PyTorch's float64 formula can cancel: gelu(-8.5) is -0 in
# float64, -8.07e-17 in fact). Derivatives by mpmath.diff at the same precision.
MP = {
    "sigmoid": mp_sigmoid,
    "tanh": mp.tanh,
    "elu": mp_elu(1),
    "elu(alpha=0.5)": mp_elu(mp.mpf("0.5")),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * mp.expm1(x)),
    "celu": mp_celu(1),
    "celu(alpha=0.3)": mp_celu(mp.mpf(float(np.float32(0.3)))),
    "gelu": mp_gelu,
    "gelu(approximate=tanh)": mp_gelu_tanh,
    "silu": lambda x: x * mp_sigmoid(x),
    "swish(beta=1.5)": lambda x: x * mp_sigmoid(mp.mpf(1.5) * x),
    "mish": lambda x: x * mp.tanh(mp_softplus(x)),
    "softplus": mp_softplus,
    "softplus(beta=2,threshold=10)": lambda x: mp_softplus(x, 2, 10),
    "softsign": lambda x: x / (1 + abs(x)),
    "logsigmoid": lambda x: -mp.log1p(mp.exp(-x)),
    "tanhshrink": lambda x: x - mp.tanh(x),
    "gaussian": lambda x: mp.exp(-x * x),
    "multiquadric(c=0.5,a=2)": lambda x: mp.sqrt((x - mp.mpf(0.5)) ** 2 + 4),
    "inverse_multiquadric": lambda x: 1 / mp.sqrt(x * x + 1),
}
# the gated units' gates (glu, a * sigmoid(b), gates the other way and is handled apart)
MP_GATES = {"swiglu": lambda a: a * mp_sigmoid(a), "geglu": mp_gelu,
            "geglu(approximate=tanh)": mp_gelu_tanh}


def mp_value(spec, x, i, g, shape):
    """Element i of the op (or its backward with grad_output g) at 50 digits, or None."""
    if spec in MP:
        f, t = MP[spec], mp.mpf(float(x[i]))
        if not mp.isfinite(t):
            return None
        if g is None:
            return f(t)
        with mp.workdps(250):  # a derivative far below the function's value (1e-67
            return mp.diff(f, t) * float(g[i])  # beside 1) needs the digits between
    if spec != "glu" and spec not in MP_GATES:
        return None
    h = shape[-1] // 2
    r, j = divmod(i, h if g is None else shape[-1])
    row = x.reshape(shape)
    a, b = (mp.mpf(float(v)) for v in (row[r, j % h], row[r, j % h + h]))
    if not (mp.isfinite(a) and mp.isfinite(b)):
        return None
    gg = None if g is None else float(g.reshape(shape[0], h)[r, j % h])
    if spec == "glu":  # a * sigmoid(b)
        if g is None:
            return a * mp_sigmoid(b)
        return gg * (mp_sigmoid(b) if j < h else a * mp_sigmoid(b) * mp_sigmoid(-b))
    # the gate rounded to f32 before the product, as PyTorch's gelu(a) * b and the
    # crate's reference do (docs/ops.md)
    f = MP_GATES[spec]
    gate = mp.mpf(float(np.float32(float(f(a)))))
    if g is None:
        return gate * b
    with mp.workdps(250):
        return gg * (b * mp.diff(f, a) if j < h else gate)


def arbitrate(spec, x, g, shape, got, err, ref64, bound, absg=0.0, ge=None, limit=200_000):
    """Re-reference the elements over the bound with mpmath (the first `limit` of them),
    under the same policy (absg * |ge| absolute where the bound has one): returns the
    errors against it, and how many elements PyTorch float64 got wrong."""
    over = np.flatnonzero(np.isfinite(err) & (err > bound))[:limit]
    torch_wrong = 0
    for i in over:
        v = mp_value(spec, x, i, g, shape)
        if v is None:
            continue
        r32, exact = np.float32(float(v)), np.array([float(v)])
        gi = None if ge is None else ge[i : i + 1]
        e = ulp_errors(np.array([r32]), got[i : i + 1], absg, gi, exact)[0]
        torch32 = np.array([np.float32(ref64[i])])
        if ulp_errors(np.array([r32]), torch32, absg, gi, exact)[0] > bound:
            torch_wrong += 1
        err[i] = e
    return err, torch_wrong


def readme_bounds():
    """The README's bounds by op name: {"forward"|"backward": {name: text}}."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    out, section = {"forward": {}, "backward": {}}, None
    for line in text.splitlines():
        if line.startswith("## "):
            section = {"## Ops": "forward", "## Backward": "backward"}.get(line.strip())
        m = re.match(r"\| `([^`]+)` \|(.*)\|", line)
        if section and m:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", m.group(2))]
            out[section][m.group(1)] = cells[-2]
    return out


def bound_of(spec, direction, bounds):
    """(kind, ulp or rel, abs per |g|) for the spec from the README's text."""
    name = spec if spec in bounds[direction] else re.sub(r"\(.*\)", "", spec)
    if name not in bounds[direction]:
        name = re.sub(r"\(.*\)", "(...)", spec)
    text = bounds[direction].get(name, "")
    if "exact" in text:
        return ("ulp", 0, 0.0)
    if "rel" in text:
        rel, ab = re.findall(r"\d[0-9.e-]*", text)[:2]
        return ("rel", float(rel), float(ab))
    numbers = re.findall(r"\d+", text.split("(")[0])
    ulp = int(numbers[0]) if numbers else 0
    other = re.search(r"\((\d+) for other params\)", text)
    if other and "(" in spec:
        ulp = int(other.group(1))
    absg = re.search(r"or ([0-9.e-]+) \\?\|g\\?\| abs", text)
    return ("ulp", ulp, float(absg.group(1)) if absg else 0.0)


def inputs(n, seed):
    """About n f32 inputs: the fixed points (branch-point neighbourhoods, subnormals,
    specials), then uniform, normal and log-uniform draws over the whole range."""
    rng = np.random.default_rng(seed)
    points = np.array([0, 0.5, 1, 2, 3, 6, 10, 20, 30, 88, 89, 104, 1e4, 1e19], np.float32)
    points = np.concatenate([points, -points])
    # 8 neighbours (-4..+3 ULPs in the bit pattern) of each point
    # in the float order (ordered bits), so that the neighbours of +-0 are subnormals
    k = ordered(points).repeat(8) + np.tile(np.arange(-4, 4), len(points))
    steps = np.where(k < 0, np.int64(-(2**31)) - k, k).astype(np.int64).astype(np.uint32).view(np.int32)
    sub = rng.integers(1, 1 << 23, 512).astype(np.int32).view(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4028235e38, -3.4028235e38,
                        F32_TINY, -F32_TINY], np.float32)
    fixed = np.concatenate([steps.view(np.float32), sub, -sub, special])
    q = max(0, n - len(fixed)) // 4 + 1
    wide = rng.choice([-1.0, 1.0], q) * np.exp(rng.uniform(math.log(1e-45), math.log(3.4e38), q))
    draws = [rng.uniform(-10, 10, q), rng.normal(0, 3, q), wide, rng.uniform(-100, 100, q)]
    x = np.concatenate([fixed] + [d.astype(np.float32) for d in draws])
    return rng.permutation(x)


def ordered(a):
    b = a.view(np.int32).astype(np.int64)
    return np.where(b < 0, np.int64(-(2**31)) - b, b)


def ulp_errors(expected, got, absg=0.0, g=None, exact64=None):
    """Per element: the crate's policy (NaN meets NaN, +0 and -0 one point, a subnormal
    true result met by any value of its sign below the normal range; within absg * |g| of
    the f64 value counts 0)."""
    err = np.abs(ordered(expected) - ordered(got)).astype(np.float64)
    nan_e, nan_g = np.isnan(expected), np.isnan(got)
    err[nan_e & nan_g] = 0
    err[nan_e ^ nan_g] = np.inf
    # a subnormal true result: any value of its sign up to f32's smallest normal (the
    # crate's bounds hold where the true result is normal; a flushing adapter gives 0)
    subnormal = (np.abs(expected) < F32_TINY) & (np.abs(got) <= F32_TINY)
    err[subnormal & ((np.signbit(got) == np.signbit(expected)) | (got == 0) | (expected == 0))] = 0
    if absg and g is not None and exact64 is not None:
        close = np.abs(got.astype(np.float64) - exact64) <= absg * np.abs(g.astype(np.float64))
        err[close & ~nan_g] = 0
    return err


def rel_errors(expected64, got, scale64, ab):
    """Per element: |got - r| / max(scale, f32 tiny), 0 within `ab`; NaN meets NaN."""
    diff = np.abs(got.astype(np.float64) - expected64)
    err = diff / np.maximum(scale64, float(F32_TINY))
    err[diff <= ab] = 0
    nan_e, nan_g = np.isnan(expected64), np.isnan(got)
    err[nan_e & nan_g] = 0
    err[nan_e ^ nan_g] = np.inf
    same_inf = np.isinf(expected64) & (expected64 == got)
    err[same_inf] = 0
    return err


def g_per_element(spec, g, x, shape):
    """The scale of each grad_input element's absolute bound, for the grouped ops: the
    grad_output it is scaled by, times b for the gate's derivative (the a half), as the
    crate's tests scale it (tests/backward_grouped.rs)."""
    rows, width = shape
    if spec.startswith(("maxout", "fold")):
        return np.repeat(g, width // (len(g) // rows))
    half, b = g.reshape(rows, width // 2), x.reshape(shape)[:, width // 2 :]
    return np.concatenate([half * b, half], axis=1).reshape(-1)


def run_activate(binary, spec, shape, x, g=None):
    with tempfile.TemporaryDirectory() as d:
        xin, out = os.path.join(d, "x.f32"), os.path.join(d, "y.f32")
        x.astype("<f4").tofile(xin)
        cmd = [binary, spec, "--shape", ",".join(map(str, shape)), "--input", xin, "--output", out]
        if g is not None:
            gin = os.path.join(d, "g.f32")
            g.astype("<f4").tofile(gin)
            cmd += ["--backward", "--grad-output", gin]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
        return np.fromfile(out, "<f4")


def torch_run(f, x, shape, dtype, g=None, spec=None):
    if g is not None:
        f = BACKWARD_FN.get(spec, f)
    t = torch.tensor(x.reshape(shape), dtype=dtype, requires_grad=g is not None)
    y = f(t)
    if g is None:
        return y.detach().numpy().reshape(-1)
    (gx,) = torch.autograd.grad(y, t, torch.tensor(g.reshape(y.shape), dtype=dtype))
    return gx.numpy().reshape(-1)


def kind_differences(x_of, got, ref64):
    """Elements where the crate and PyTorch float64 differ in kind, one input each."""
    ref32 = ref64.astype(np.float32)
    classes = {
        "NaN vs number": np.isnan(got) != np.isnan(ref32),
        "inf vs finite": (np.isinf(got) != np.isinf(ref32)) & ~np.isnan(got) & ~np.isnan(ref32),
        "zero signs": (got == 0) & (ref32 == 0) & (np.signbit(got) != np.signbit(ref32)),
    }
    out = []
    for name, mask in classes.items():
        idx = np.flatnonzero(mask)
        if len(idx):
            i = idx[0]
            out.append(f"{name} x{len(idx)} (at {x_of(i)}: crate {got[i]:.9g}, torch {ref32[i]:.9g})")
    return out


def case(binary, spec, direction, n, bounds, seed):
    f, kind = CASES[spec]
    rng = np.random.default_rng(seed + 1)
    if kind == "rows":
        rows, cols = 256, max(4, n // 256)
        x = (rng.normal(0, 4, rows * cols)).astype(np.float32)
        shape = (rows, cols)
        # a half-masked row, a fully masked row (NaN in both), a wide row, along the
        # axis the spec normalises: rows of the last axis, or columns for dim=0
        v = x.reshape(shape) if "dim=0" not in spec else x.reshape(shape).T
        v[0, : v.shape[1] // 2] = -np.inf
        v[1, :] = -np.inf
        v[2, :] *= 1e6
    else:
        x = inputs(n, seed)
        x = x[: len(x) // 8 * 8]
        shape = (len(x) // 8, 8)
    out_len = len(torch_run(f, x, shape, torch.float64))
    g = None
    if direction == "backward":
        g = rng.normal(0, 1, out_len).astype(np.float32)
        g[::7] = 1.0
    got = run_activate(binary, spec, shape, x, g)
    ref64 = torch_run(f, x, shape, torch.float64, g, spec)
    if g is not None and spec in READS_Y:
        forward, derivative = READS_Y[spec]
        # the crate's backward reads the y its own forward wrote (as the example does)
        y = torch.tensor(run_activate(binary, spec, shape, x), dtype=torch.float64)
        ref64 = derivative(y, torch.tensor(g, dtype=torch.float64)).numpy()
    t32 = torch_run(f, x, shape, torch.float32, g, spec)
    bkind, b, ab = bound_of(spec, direction, bounds)
    # the bounds hold on finite inputs with a finite true result
    finite = np.isfinite(ref64)
    if kind == "elementwise":
        finite &= np.isfinite(x)
    if spec in MP_GATES and g is None:
        # a gate value below f32's normal range has only a subnormal's precision (and is
        # 0 on a flushing adapter) before the product: docs/ops.md leaves it out of the bound
        a = torch.tensor(x.reshape(shape)[:, : shape[1] // 2], dtype=torch.float64)
        gate = (f(torch.cat([a, torch.ones_like(a)], 1))).numpy().reshape(-1)
        finite &= ~(np.abs(gate) < F32_TINY)
    if bkind == "rel" or kind == "rows":
        if direction == "backward":
            y64 = torch_run(f, x, shape, torch.float64).reshape(shape)
            gy = g.reshape(shape).astype(np.float64)
            scale = np.abs(ref64) + np.abs(np.nan_to_num(y64 * gy)).reshape(-1) + np.abs(gy).reshape(-1)
        else:
            scale = np.abs(ref64)
        err, terr = rel_errors(ref64, got, scale, ab), rel_errors(ref64, t32, scale, ab)
        fmt = lambda v: f"{v:.2g} rel"
        torch_wrong = 0
    else:
        # an exact op is held to PyTorch float32's bits (leaky_relu's slope is an f32)
        r32 = t32 if b == 0 else ref64.astype(np.float32)
        ge = g if g is None or len(g) == len(got) else g_per_element(spec, g, x, shape)
        err = ulp_errors(r32, got, ab, ge, ref64)
        terr = ulp_errors(r32, t32, ab, ge, ref64)
        fmt = lambda v: "inf" if v == np.inf else f"{int(v)} ULP"
        err, torch_wrong = np.where(finite, err, 0), 0
        if not (g is not None and spec in READS_Y):  # there the reference is exact
            err, torch_wrong = arbitrate(spec, x, g, shape, got, err, ref64, b, ab, ge)
    worst = float(np.max(err[finite], initial=0))
    tworst = float(np.max(terr[finite], initial=0))
    same = (got.view(np.int32) == t32.view(np.int32)) | (np.isnan(got) & np.isnan(t32))
    xs = x.reshape(-1)
    per = len(xs) // len(ref64)
    x_of = (lambda i: f"x={xs[i]:.9g}") if per == 1 else (lambda i: f"element {i}")
    return {
        "spec": spec,
        "direction": direction,
        "n": len(ref64),
        "crate": fmt(worst),
        "torch_f32": fmt(tworst),
        "bound": fmt(b) if bkind == "rel" else f"{b} ULP" + (f" or {ab:g}|g| abs" if ab else ""),
        "holds": worst <= b,
        "differing": f"{int(np.sum(~same))}",
        "kinds": kind_differences(x_of, got, ref64),
        "torch_wrong": torch_wrong,
    }


def main():
    np.seterr(all="ignore")  # inf and NaN are among the inputs on purpose
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--activate", default=os.path.join(ROOT, "target/release/examples/activate"))
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--ops", default=",".join(CASES), help="specs, comma-separated")
    p.add_argument("--forward-only", action="store_true")
    p.add_argument("--markdown", help="also write the table to this file")
    p.add_argument("--seed", type=int, default=2026)
    a = p.parse_args()
    if not os.path.exists(a.activate):
        sys.exit(f"{a.activate} not found: run `cargo build --release --example activate`")
    bounds = readme_bounds()
    ops = [o for o in re.split(r",(?![^(]*\))", a.ops) if o]  # commas outside parentheses
    unknown = [o for o in ops if o not in CASES]
    if unknown:
        sys.exit(f"no PyTorch counterpart here for {unknown}; known: {', '.join(CASES)}")
    lines = [
        f"PyTorch {torch.__version__}; reference: PyTorch float64 rounded to f32",
        "",
        "| op | direction | n | crate max err (finite) | bound | holds | torch f32 max err | elements not bit-identical to torch f32 | torch f64 wrong (mpmath) | differences in kind |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    print(lines[0], flush=True)
    failed = 0
    for spec in ops:
        for direction in ["forward"] + ([] if a.forward_only else ["backward"]):
            r = case(a.activate, spec, direction, a.n, bounds, a.seed)
            failed += not r["holds"]
            row = (f"| `{r['spec']}` | {direction} | {r['n']} | {r['crate']} | {r['bound']} | "
                   f"{'yes' if r['holds'] else 'NO'} | {r['torch_f32']} | {r['differing']} | "
                   f"{r['torch_wrong']} | "
                   f"{'; '.join(r['kinds']) or '-'} |")
            lines.append(row)
            print(row, flush=True)
    if a.markdown:
        with open(a.markdown, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    print(f"{failed} case(s) outside their bound" if failed else "every case within its bound")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
