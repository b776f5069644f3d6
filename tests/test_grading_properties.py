"""A property of the grader: for random losses over data, the true derivative written in random
equivalent forms is always right, and the true derivative with a small perturbation (a
constant, a term in n, a term vanishing at small integers, an extra factor) is always wrong,
with a counterexample inside the domain whose two values are recomputed here by SymPy's own
substitution, row by row (not by derive's evaluator)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.core.check import check, parse_answer
from derive.core.derivation import differentiate
from derive.core.parse import parse_loss

W, B, X, Y = sympy.symbols("w b x y", real=True)
N = sympy.Symbol("n", positive=True, integer=True)

INNER = {  # u, and whether x must be positive for it
    "w*x + b": (W * X + B, False),
    "w*x**2 + b": (W * X**2 + B, False),
    "w*log(x) + b": (W * sympy.log(X) + B, True),
    "w*sqrt(x) + b*x": (W * sympy.sqrt(X) + B * X, True),
}
ROW_LOSSES = [
    lambda u: (u - Y) ** 2,
    lambda u: sympy.log(1 + sympy.exp(u)) - Y * u,
    lambda u: (u - Y) ** 4 / 4,
    lambda u: Y * sympy.sin(u),
    lambda u: sympy.exp(u / 8) - Y * u,
]
PENALTIES = [0, W**2 / 10, 3 * B**2, W**4 / 4]


@st.composite
def problems(draw):
    inner, positive = INNER[draw(st.sampled_from(sorted(INNER)))]
    row = draw(st.sampled_from(ROW_LOSSES))(inner)
    penalty = draw(st.sampled_from(PENALTIES))
    wrt = draw(st.sampled_from([W, B]))
    data = None
    if draw(st.booleans()):  # the assignment's own data, sometimes
        rows = draw(st.integers(3, 6))
        low = 1 if positive else -5
        data = {
            "x": [draw(st.integers(low, 6)) / 2 for _ in range(rows)],
            "y": [draw(st.integers(-3, 3)) / 2 for _ in range(rows)],
        }
    return row, penalty, wrt, data


def loss_text(row, penalty) -> str:
    return f"mean({row})" + (f" + {penalty}" if penalty else "")


def derivation_of(row, penalty):
    return differentiate(parse_loss(loss_text(row, penalty), params=("w", "b"), data=("x", "y")))


def equivalent_forms(df, dpen, choice: int) -> str:
    """The derivative mean(df) + dpen, written in one of several equal ways."""
    terms = sympy.Add.make_args(sympy.expand(df))
    penalty = f" + {dpen}" if dpen != 0 else ""
    forms = [
        f"mean({df})",
        f"sum({sympy.expand(df)})/n",
        " + ".join(f"mean({t})" for t in terms),
        f"2*mean({sympy.expand(df / 2)})",
        f"(1/n)*sum({sympy.factor(df)})",
        f"mean({sympy.expand(df)}) + 0*n",
    ]
    return forms[choice % len(forms)] + penalty


PERTURBATIONS = {  # name: (what is added to mean(df) + dpen, as text; as a function of w, n, rows)
    "constant": ("3/7", lambda w, n: Fraction(3, 7)),
    "term in n": ("(n-1)*(n-2)/5", lambda w, n: Fraction((n - 1) * (n - 2), 5)),
    "vanishing at small integers": (
        "(w-1)*(w-2)*(w+1)*w/3",
        lambda w, n: (w - 1) * (w - 2) * (w + 1) * w / 3,
    ),
}


def independent_value(row_expr, penalty, point, per_row: bool = True) -> sympy.Expr:
    """mean over the point's rows of row_expr, plus penalty, by SymPy substitution."""
    params = {W: sympy.Rational(str(point.params["w"])), B: sympy.Rational(str(point.params["b"]))}
    xs, ys = point.data["x"], point.data["y"]
    total = sum(
        row_expr.subs({**params, X: sympy.Rational(str(x)), Y: sympy.Rational(str(y))})
        for x, y in zip(xs, ys, strict=True)
    )
    return (total / len(xs) + sympy.Integer(0) + penalty.subs(params)).evalf(40)


def domain_ok(row, penalty, point) -> bool:
    value = independent_value(row, sympy.Integer(0) + penalty, point)  # the loss itself
    return value.is_real and value.is_finite


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(0, 5))
def test_the_true_derivative_in_any_form_is_right(problem, choice):
    row, penalty, wrt, data = problem
    derivation = derivation_of(row, penalty)
    answer = equivalent_forms(sympy.diff(row, wrt), sympy.diff(penalty, wrt), choice)
    result = check(derivation, wrt.name, parse_answer(answer, derivation), data=data)
    assert result.correct, (loss_text(row, penalty), answer, result.counterexample)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from([*PERTURBATIONS, "extra factor"]))
def test_a_perturbed_derivative_is_wrong_inside_the_domain(problem, perturbation):
    row, penalty, wrt, data = problem
    derivation = derivation_of(row, penalty)
    df, dpen = sympy.diff(row, wrt), sympy.diff(penalty, wrt)
    if perturbation == "extra factor":  # each row's term times (1 + x²): a factor left in
        answer = f"mean(({df})*(1 + x**2))" + (f" + {dpen}" if dpen != 0 else "")
        answer_row = df * (1 + X**2)
    else:
        answer = f"mean({df})" + (f" + {dpen}" if dpen != 0 else "") + " + "
        answer += PERTURBATIONS[perturbation][0]
        answer_row = df
    result = check(derivation, wrt.name, parse_answer(answer, derivation), data=data)
    assert not result.correct, (loss_text(row, penalty), answer)
    shown = result.counterexample
    point = shown.point
    assert domain_ok(row, penalty, point)  # the loss is defined there
    expected = independent_value(df, dpen, point)
    got = independent_value(answer_row, dpen, point)
    if perturbation in PERTURBATIONS:
        w = Fraction(str(point.params["w"]))
        got += sympy.Rational(PERTURBATIONS[perturbation][1](w, len(point.data["x"])))
    assert float(shown.expected) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)
    assert float(shown.answer) == pytest.approx(float(got), rel=1e-9, abs=1e-12)
    assert abs(expected - got) > 1e-30 * (1 + abs(expected))
