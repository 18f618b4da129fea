#!/usr/bin/env python3
"""Fit the polynomial coefficients used by shaders/activations.wgsl.

Each kernel of the f32 math library is `known part + small correction * polynomial`; this
script fits the polynomial by Chebyshev interpolation at 50-digit precision (mpmath), rounds
the coefficients to f32, and reports the worst relative error of the rounded polynomial over
its interval (evaluated exactly on a dense grid), so every constant in the shader can be
regenerated and audited. Needs numpy and mpmath.

    python3 tools/fit_coefficients.py          # prints the coefficients and their errors
    python3 tools/fit_coefficients.py --wgsl   # prints the shader's polynomial block
"""
import sys

import mpmath as mp
import numpy as np

WGSL = "--wgsl" in sys.argv

mp.mp.dps = 50


def cheb_fit(g, a, b, degree, center):
    """Monomial coefficients in (v - center) of the Chebyshev interpolant of g on [a, b]."""
    n = degree + 1
    nodes = [mp.mpf(a + b) / 2 + mp.mpf(b - a) / 2 * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)
             for k in range(n)]
    # Solve the interpolation system in the shifted monomial basis at high precision.
    m = mp.matrix([[(x - center) ** j for j in range(n)] for x in nodes])
    y = mp.matrix([g(x) for x in nodes])
    c = mp.lu_solve(m, y)
    return [c[j] for j in range(n)]


def f32(x):
    return float(np.float32(float(x)))


def max_rel_err(g, coeffs, a, b, center, samples=4000):
    worst = 0.0
    for i in range(samples + 1):
        v = mp.mpf(a) + (mp.mpf(b) - a) * i / samples
        p = mp.mpf(0)
        for c in reversed(coeffs):
            p = p * (v - center) + mp.mpf(c)
        exact = g(v)
        worst = max(worst, float(abs((p - exact) / exact)))
    return worst


def report(name, g, a, b, degree, center=0.0, split_c0=False):
    """Prints NAME = [c0, c1, ...] (f32 coefficients in (v - center)).

    With split_c0, the constant term is printed as an exact pair NAME_C0 = (hi, lo) and
    the list NAME_Q starts at c1: the shader evaluates c0_hi + (c0_lo + v * Q(v)), so the
    rounding of c0 to f32 (up to half an ULP of the whole result) does not count.
    """
    c = mp.mpf(center)
    exact = cheb_fit(g, a, b, degree, c)
    coeffs = [f32(x) for x in exact]
    if split_c0:
        hi = coeffs[0]
        lo = f32(exact[0] - mp.mpf(hi))
        err = max_rel_err(g, [mp.mpf(hi) + mp.mpf(lo)] + coeffs[1:], a, b, c)
    else:
        err = max_rel_err(g, coeffs, a, b, c)
    print(f"// {name}: degree {degree} on [{a}, {b}] in (v - {center}), "
          f"max rel err {err:.2e} (2^{np.log2(err):.1f})")
    if split_c0:
        if WGSL:
            print(f"const {name}_C0_HI: f32 = {hi!r};\nconst {name}_C0_LO: f32 = {lo!r};")
        else:
            print(f"{name}_C0 = ({hi!r}, {lo!r})")
        coeffs = coeffs[1:]
        name += "_Q"
    if WGSL:
        lit = lambda x: repr(x) if ("e" in repr(x) or "." in repr(x)) else repr(x) + ".0"
        print(f"fn poly_{name.lower()}(v: f32) -> f32 {{")
        print(f"    var p = {lit(coeffs[-1])};")
        for x in reversed(coeffs[:-1]):
            print(f"    p = fma(p, v, {lit(x)});")
        print("    return p;\n}\n")
    else:
        print(f"{name} = [{', '.join(repr(x) for x in coeffs)}]\n")


def safe(fn, limit):
    """Evaluate fn(v), using its series value at v == 0 (removable singularities)."""
    return lambda v: fn(v) if abs(v) > mp.mpf(10) ** -30 else limit


# exp(r) = 1 + r + r^2 * P(r),  |r| <= ln2 / 2
report("EXP_P", safe(lambda r: (mp.exp(r) - 1 - r) / r**2, mp.mpf(1) / 2),
       -0.3466, 0.3466, 5)
# log1p(f) = f - f^2/2 + f^3 * L(f),  f in [-0.21, 0.61]
report("LOG1P_L", safe(lambda f: (mp.log1p(f) - f + f**2 / 2) / f**3, mp.mpf(1) / 3),
       -0.21, 0.61, 9)
# tanh(x) = x + x^3 * T(x^2),  |x| <= 0.625
report("TANH_T", safe(lambda s: (mp.tanh(mp.sqrt(s)) - mp.sqrt(s)) / mp.sqrt(s) ** 3,
                      -mp.mpf(1) / 3), 0.0, 0.625**2, 6)
# x - tanh(x) = x^3 * (1/3 + s * Q(s)),  s = x^2, |x| <= 1; 1/3 is carried as a pair
report("TANHSHRINK_Q", safe(lambda s: ((mp.sqrt(s) - mp.tanh(mp.sqrt(s))) / mp.sqrt(s) ** 3
                                       - mp.mpf(1) / 3) / s, -mp.mpf(2) / 15), 0.0, 1.0, 9)
# erf(t) = t * E(t^2),  |t| <= 0.35
report("ERF_E", safe(lambda s: mp.erf(mp.sqrt(s)) / mp.sqrt(s), 2 / mp.sqrt(mp.pi)),
       0.0, 0.35**2, 5)
# erfc(t) = exp(-t^2) * erfcx(t): erfcx on [0.35, 3.5] in (t - 1.925)
report("ERFCX_NEAR", lambda t: mp.erfc(t) * mp.exp(t * t), 0.35, 3.5, 14, 1.925)
# t * erfcx(t) on t >= 3.5 as a polynomial in w = 1 / t, w in [0, 1/3.5]; a wider
# interval gives large alternating coefficients that cancel in f32 Horner. Its constant
# term 1/sqrt(pi) is carried as a pair: its f32 rounding alone is 0.9 ULP of GELU's tail.
report("ERFCX_FAR", lambda w: (mp.erfc(1 / w) * mp.exp(1 / w**2)) / w if w > 0
       else 1 / mp.sqrt(mp.pi), 0.0, 1 / 3.5, 9, split_c0=True)
