"""Derivation: every rule tree ends where SymPy's diff does, and prints in textbook form."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from derive.derivation import NUMPY_FUNCTIONS, derive
from derive.parse import parse_loss
from derive.printing import to_latex, to_unicode

LOSSES = [
    "(w-3)**2",
    "x**2 + 2*y**2",
    "x**4 - 4*x**2 + 0.5*x",
    "x**2 - y**2",
    "a*x**2 + b*x + c",
    "log(1 + exp(w*x))",
    "sigmoid(w*x + b)",
    "softplus(w) + tanh(w*b) + sin(w)*cos(b) + tan(w/3)",
    "sqrt(w**2 + 1) + abs(w - 1)",
    "exp(-w)/w + 2**w + w**w",
]


def walk(step):
    yield step
    for sub in step.substeps:
        yield from walk(sub)


def agree(a, b, symbols, rng):
    fa, fb = (sympy.lambdify(symbols, e.rewrite(sympy.exp), modules="mpmath") for e in (a, b))
    for _ in range(5):
        point = [float(v) for v in rng.uniform(0.3, 1.7, len(symbols))]
        assert complex(fa(*point)) == pytest.approx(complex(fb(*point)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("text", LOSSES)
def test_every_partial_matches_sympy_diff_and_finite_differences(text):
    loss = parse_loss(text)
    derivation = derive(loss)
    rng = np.random.default_rng(0)
    for symbol, partial in zip(loss.symbols, derivation.partials, strict=True):
        reference = sympy.diff(loss.expr, symbol)
        agree(partial.raw, reference, loss.symbols, rng)
        agree(partial.textbook, reference, loss.symbols, rng)
        f = sympy.lambdify(loss.symbols, loss.expr, modules=[NUMPY_FUNCTIONS, "numpy"])
        g = sympy.lambdify(loss.symbols, partial.textbook, modules=[NUMPY_FUNCTIONS, "numpy"])
        point = rng.uniform(0.3, 1.7, len(loss.symbols))
        h = 1e-6
        up, down = point.copy(), point.copy()
        k = loss.symbols.index(symbol)
        up[k] += h
        down[k] -= h
        central = (f(*up) - f(*down)) / (2 * h)
        assert g(*point) == pytest.approx(central, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("text", LOSSES)
def test_every_step_states_a_true_equation(text):
    loss = parse_loss(text)
    rng = np.random.default_rng(1)
    for partial in derive(loss).partials:
        for step in walk(partial.steps):
            variables = sorted(step.expr.free_symbols | step.result.free_symbols, key=str)
            if not variables:
                assert step.result == 0
                continue
            agree(step.result, sympy.diff(step.expr, step.variable), variables, rng)


def test_chain_rule_names_its_inner_function():
    (partial,) = derive(parse_loss("(w-3)**2")).partials
    assert partial.steps.rule == "chain"
    assert to_unicode(partial.steps.inner) == "w − 3"
    assert [s.rule for s in partial.steps.substeps] == ["power", "sum"]


@pytest.mark.parametrize(
    ("text", "unicode", "latex"),
    [
        ("(w-3)**2", ["2(w − 3)"], [r"2 \left(w - 3\right)"]),
        ("x**2 + 2*y**2", ["2x", "4y"], ["2 x", "4 y"]),
        ("x**4 - 4*x**2 + 0.5*x", ["4x³ − 8x + 1/2"], [r"4 x^{3} - 8 x + \frac{1}{2}"]),
        ("a*x**2 + b*x + c", ["x²", "2a x + b", "x", "1"], ["x^{2}", "2 a x + b", "x", "1"]),
    ],
)
def test_textbook_end_forms(text, unicode, latex):
    loss = parse_loss(text)
    partials = derive(loss).partials
    assert [to_unicode(p.textbook, loss.params) for p in partials] == unicode
    assert [to_latex(p.textbook, loss.params) for p in partials] == latex
