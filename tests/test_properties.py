"""Properties over random expressions of the grammar (hypothesis).

- every partial derivative agrees with a central finite difference (in 50-digit arithmetic);
- every step of every rule tree states a true equation (its before and after agree as functions);
- every expression re-parses from its own printed form to an equal expression.
"""

from __future__ import annotations

import mpmath
import sympy
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from derive.core.derivation import differentiate
from derive.core.errors import DeriveError
from derive.core.parse import parse_expression, parse_loss
from derive.core.symbols import to_text

NAMES = ("w", "b")
UNARY = (
    *("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "softplus", "abs"),
    *("sinh", "atan", "erf", "log1p", "relu", "cbrt"),
)
BINARY = ("max", "min", "huber", "logsumexp")

leaves = st.sampled_from([*NAMES, "2", "3", "0.5", "1.5", "pi"])


def combine(children):
    unary = st.tuples(st.sampled_from(UNARY), children).map(lambda t: f"{t[0]}({t[1]})")
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    power = st.tuples(children, st.sampled_from(["2", "3", "-1"])).map(
        lambda t: f"({t[0]})**{t[1]}"
    )
    call = st.tuples(st.sampled_from(BINARY), children, children).map(
        lambda t: (
            f"{t[0]}({t[1]}, {t[2]})" if t[0] != "huber" else f"huber({t[1]}, 1 + ({t[2]})**2)"
        )
    )
    return unary | binary | power | call


expressions = st.recursive(leaves, combine, max_leaves=6).filter(
    lambda text: any(name in text for name in NAMES)
)
points = st.tuples(*(st.floats(0.3, 1.7) for _ in NAMES))

MP = {
    "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
    "softplus": lambda z: mpmath.log(1 + mpmath.exp(z)),
    "Abs": abs,
    "sign": mpmath.sign,
    "relu": lambda u: max(u, 0),
    "maximum": max,
    "minimum": min,
    "huber": lambda u, d: u * u / 2 if abs(u) <= d else d * (abs(u) - d / 2),
    "logsumexp": lambda *z: mpmath.log(sum(mpmath.exp(t) for t in z)),
    "softmax": lambda k, *z: mpmath.exp(z[int(k) - 1]) / sum(mpmath.exp(t) for t in z),
    "cbrt": mpmath.cbrt,
    "log1p": mpmath.log1p,
    "Heaviside": lambda u, h=0.5: 1 if u > 0 else 0 if u < 0 else h,
    "tie_share": lambda a, *o: 1 if a > max(o) else 0 if a < max(o) else 1 / (1 + o.count(a)),
}


def value(expr, symbols, point):
    """expr at point in 50-digit arithmetic, or None where it is not a moderate real number."""
    mpmath.mp.dps = 50
    try:
        result = sympy.lambdify(symbols, expr, modules=[MP, "mpmath"])(*map(mpmath.mpf, point))
    except ZeroDivisionError:
        return None
    if isinstance(result, mpmath.mpf) and mpmath.isfinite(result) and abs(result) < 1e12:
        return result
    return None


def at(expr, symbols, point):
    """expr at point; examples where it is undefined are discarded."""
    result = value(expr, symbols, point)
    assume(result is not None)
    return result


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


@SETTINGS
@given(expressions, points)
def test_partials_agree_with_central_differences(text, point):
    loss = parsed(text)
    derivation = differentiate(loss)
    for kink in derivation.kinks:  # there the derivative is a convention (PyTorch's), not a limit
        values = [value(e, loss.symbols, point) for e in kink.at]
        assume(None not in values and 0 not in values and len(set(values)) == len(values))
    for k, partial in enumerate(derivation.partials):
        slope = at(partial.textbook, loss.symbols, point)
        h = mpmath.mpf("1e-20")
        up = [mpmath.mpf(v) for v in point]
        down = list(up)
        up[k] += h
        down[k] -= h
        middle = at(loss.expr, loss.symbols, point)
        ahead = (at(loss.expr, loss.symbols, up) - middle) / h
        behind = (middle - at(loss.expr, loss.symbols, down)) / h
        assume(abs(ahead - behind) <= 1e-9 * (1 + abs(ahead)))  # on a kink (a tie of max…)
        central = (ahead + behind) / 2
        assert abs(slope - central) <= 1e-9 * (1 + abs(central))


def parsed(text):
    """The loss, or a discarded example when the parser refuses it (e.g. (w - w)**-1)."""
    try:
        return parse_loss(text, params=NAMES)
    except DeriveError:
        reject()


def walk(step):
    yield step
    for sub in step.substeps:
        yield from walk(sub)


@SETTINGS
@given(expressions, points)
def test_every_step_is_a_true_equation(text, point):
    loss = parsed(text)
    values = dict(zip(loss.symbols, point, strict=True))
    checked = 0
    for partial in differentiate(loss).partials:
        for step in walk(partial.steps):
            symbols = sorted(step.expr.free_symbols | step.result.free_symbols, key=str)
            here = [values.get(s, 0.9) for s in symbols]  # an inner variable u gets 0.9
            truth = value(sympy.diff(step.expr, step.variable), symbols, here)
            if truth is None:
                continue  # this step's function is undefined here (log of a negative, say)
            claimed = value(step.result, symbols, here)
            assert claimed is not None
            assert abs(claimed - truth) <= 1e-30 * (1 + abs(truth))
            checked += 1
    assume(checked > 0)


@SETTINGS
@given(expressions)
def test_printed_form_parses_back_to_an_equal_expression(text):
    expr = parsed(text).expr
    again = parse_expression(to_text(expr))
    assert sympy.simplify(again - expr) == 0 or again == expr
