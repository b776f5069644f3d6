"""The grader on the whole grammar of losses: every loss of the corpus (relu, huber, max/min,
logsumexp, softmax, where, inverse and hyperbolic functions…), named constants, one-hot targets,
and kinks. Each counterexample's values are recomputed here: by finite differences of the loss
written out independently (tests/test_losses.py builds it from SymPy's own functions), or by
hand in plain Python."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath
import pytest
import sympy

from derive.core.check import Outcome, Point, check, parse_answer, value_at
from derive.core.derivation import differentiate
from derive.core.parse import one_hot_targets, parse_loss
from derive.core.symbols import to_text
from tests.test_losses import CORPUS, ids, loss_of, native

OFFSET = Fraction(1, 7)
STEP = sympy.Rational(1, 10**20)  # of the finite differences, computed with 80 digits


def fraction(value) -> Fraction:
    return Fraction(str(value))


def independent(case, point: Point, name: str, t: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """The case's loss, built from SymPy's own functions, at the point with `name` = t: its real
    and imaginary parts to 80 digits (a float would lose the difference across STEP)."""
    rows = [
        {column: sympy.Rational(str(values[k])) for column, values in point.data.items()}
        for k in range(point.rows)
    ]
    values = {sympy.Symbol(k, real=True): sympy.Rational(str(v)) for k, v in point.params.items()}
    values[sympy.Symbol(name, real=True)] = t
    return native(case.build(rows)).xreplace(values).evalf(80).as_real_imag()


@pytest.mark.parametrize("case", CORPUS, ids=ids)
def test_every_loss_of_the_corpus_is_graded(case):
    """The textbook derivative, as a student would type it, is right; the same plus 1/7 is wrong,
    at a point where the loss is defined and differentiable (its one-sided difference quotients
    agree), with the derivative's value there equal to the central difference."""
    loss = loss_of(case)
    derivation = differentiate(loss)
    partial = derivation.partials[0]
    data = {name: [float(v) for v in values] for name, values in case.data.items()} or None
    text = to_text(partial.textbook)
    right = check(derivation, partial.param, parse_answer(text, derivation), data=data)
    assert right.correct, text
    wrong = check(derivation, partial.param, parse_answer(f"({text}) + 1/7", derivation), data=data)
    assert not wrong.correct
    shown = wrong.counterexample
    assert fraction(shown.answer) - fraction(shown.expected) == pytest.approx(OFFSET, rel=1e-12)
    at = sympy.Rational(str(shown.point.params[partial.param]))
    here = independent(case, shown.point, partial.param, at)
    ahead = independent(case, shown.point, partial.param, at + STEP)
    behind = independent(case, shown.point, partial.param, at - STEP)
    assert here[1] == ahead[1] == behind[1] == 0  # inside the domain
    right_side, left_side = (ahead[0] - here[0]) / STEP, (here[0] - behind[0]) / STEP
    central = float((ahead[0] - behind[0]) / (2 * STEP))
    assert float(right_side) == pytest.approx(float(left_side), rel=1e-9, abs=1e-9)
    assert float(shown.expected) == pytest.approx(central, rel=1e-9, abs=1e-12)


# -- named constants ------------------------------------------------------------------------------


def test_a_constant_without_a_value_varies_like_a_parameter():
    """λ has no value: 2(w − 3) + w is right only at λ = 1/2, and the counterexample names λ."""
    derivation = differentiate(parse_loss("(w - 3)**2 + lam*w**2", params=("w",)))
    assert check(derivation, "w", parse_answer("2*(w-3) + 2*lam*w", derivation)).correct
    wrong = check(derivation, "w", parse_answer("2*(w-3) + w", derivation))
    assert not wrong.correct
    point = {k: fraction(v) for k, v in wrong.counterexample.point.params.items()}
    assert set(point) == {"w", "lam"} and point["lam"] != Fraction(1, 2)
    w, lam = point["w"], point["lam"]
    assert fraction(wrong.counterexample.expected) == 2 * (w - 3) + 2 * lam * w
    assert fraction(wrong.counterexample.answer) == 2 * (w - 3) + w


def test_a_constant_with_a_value_may_be_written_either_way():
    derivation = differentiate(
        parse_loss("(w - 3)**2 + lam*w**2", constants={"lam": Fraction(1, 10)})
    )
    for answer in ("2*(w-3) + 2*lam*w", "2*(w-3) + w/5", "2*(w-3) + 0.2*w"):
        verdict = check(derivation, "w", parse_answer(answer, derivation))
        assert verdict.correct, answer
        assert verdict.answer == parse_answer(answer, derivation)  # shown as written
    wrong = check(derivation, "w", parse_answer("2*(w-3) + lam*w", derivation))
    w = fraction(wrong.counterexample.point.params["w"])
    assert set(wrong.counterexample.point.params) == {"w"}
    assert fraction(wrong.counterexample.expected) == 2 * (w - 3) + w / 5
    assert fraction(wrong.counterexample.answer) == 2 * (w - 3) + w / 10


def test_constants_on_the_command_line(derive_cli):
    """--const gives λ its value, and an answer may name λ; --params leaves it free; a name the
    loss does not have is refused in one line that lists the names it has."""
    base = ["check", "--loss", "(w - 3)**2 + lam*w**2", "--wrt", "w"]
    for answer in ("2*(w-3) + 2*lam*w", "2*(w-3) + 0.2*w"):
        assert derive_cli(*base, "--const", "lam=0.1", "--answer", answer).code == 0
    wrong = derive_cli(*base, "--const", "lam=0.1", "--answer", "2*(w-3) + lam*w", "--json")
    assert wrong.code == 1
    shown = json.loads(wrong.out)["counterexample"]
    w = Fraction(str(shown["params"]["w"]))
    assert shown["expected_value"] == pytest.approx(float(2 * (w - 3) + w / 5))
    assert shown["answer_value"] == pytest.approx(float(2 * (w - 3) + w / 10))
    assert derive_cli(*base, "--params", "w", "--answer", "2*(w-3) + 2*lam*w").code == 0
    assert derive_cli(*base, "--params", "w", "--answer", "2*(w-3) + w/5").code == 1
    unknown = derive_cli(*base, "--const", "lam=0.1", "--answer", "2*(w-3) + 2*mu*w")
    assert unknown.code == 2 and "Traceback" not in unknown.err
    assert "the answer uses mu, which the loss does not (w, lam)" in unknown.err


# -- one-hot targets ------------------------------------------------------------------------------

CE = (
    "-mean(y1*log(softmax(1, w1*x+b1, w2*x+b2, w3*x+b3)) "
    "+ y2*log(softmax(2, w1*x+b1, w2*x+b2, w3*x+b3)) "
    "+ y3*log(softmax(3, w1*x+b1, w2*x+b2, w3*x+b3)))"
)
P1 = "softmax(1, w1*x+b1, w2*x+b2, w3*x+b3)"


def softmax_ce_dw1(params, data) -> float:
    """∂L/∂w₁ by hand: (1/n) Σ (p₁ − y₁) x when every row's targets sum to 1."""
    total = 0.0
    rows = len(data["x"])
    for k in range(rows):
        x = data["x"][k]
        z = [params[f"w{j}"] * x + params[f"b{j}"] for j in (1, 2, 3)]
        top = max(z)
        e = [math.exp(v - top) for v in z]
        total += (e[0] / sum(e) - data["y1"][k]) * x
    return total / rows


def test_one_hot_targets_stay_one_hot_in_every_data_set():
    columns = {"x": [1.0, 2.0, -1.0], "y1": [1, 0, 0], "y2": [0, 1, 0], "y3": [0, 0, 1]}
    loss = one_hot_targets(parse_loss(CE, data=tuple(columns)), columns)
    derivation = differentiate(loss)
    for answer in (f"mean(({P1} - y1)*x)", f"mean(({P1}*(y1 + y2 + y3) - y1)*x)"):
        assert check(derivation, "w1", parse_answer(answer, derivation), data=columns).correct
    wrong = check(derivation, "w1", parse_answer(f"mean(({P1} - y2)*x)", derivation), data=columns)
    shown = wrong.counterexample
    data = {k: [float(fraction(v)) for v in vs] for k, vs in shown.point.data.items()}
    for row in zip(data["y1"], data["y2"], data["y3"], strict=True):
        assert sorted(row) == [0, 0, 1]
    params = {k: float(fraction(v)) for k, v in shown.point.params.items()}
    assert float(shown.expected) == pytest.approx(softmax_ce_dw1(params, data), rel=1e-12)


def test_targets_that_are_not_one_hot_are_not_taken_to_be():
    """Rows whose targets do not sum to 1: (p₁ − y₁)·x is not the derivative, and the
    counterexample shows targets that are not one-hot."""
    columns = {"x": [1.0, 2.0, -1.0], "y1": [1, 1, 0], "y2": [0, 1, 0], "y3": [0, 0, 0]}
    derivation = differentiate(one_hot_targets(parse_loss(CE, data=tuple(columns)), columns))
    answer = parse_answer(f"mean(({P1} - y1)*x)", derivation)
    wrong = check(derivation, "w1", answer, data=columns)
    assert not wrong.correct
    data = wrong.counterexample.point.data
    sums = {sum(fraction(data[f"y{j}"][k]) for j in (1, 2, 3)) for k in range(len(data["x"]))}
    assert sums != {1}


# -- kinks and branches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "wrt", "answer"),
    [
        # relu'(0): torch says 0, this answer 1; the loss has no derivative there
        ("mean(relu(w*x - y)*exp(w))", "w", "mean(exp(w)*(relu(w*x-y) + where(w*x-y >= 0, x, 0)))"),
        ("|x - 1| + |x + 2|", "x", "where(x >= 1, 1, -1) + where(x > -2, 1, -1)"),
        ("max(x, y, 1) + (x - 2)^2", "x", "where(x > y, where(x > 1, 1, 0), 0) + 2*(x - 2)"),
    ],
)
def test_answers_that_differ_only_at_a_kink_are_right(loss, wrt, answer):
    columns = ("x", "y") if "mean" in loss else ()
    derivation = differentiate(parse_loss(loss, data=columns))
    assert check(derivation, wrt, parse_answer(answer, derivation)).correct


def test_a_branch_wrong_on_a_short_stretch_is_found():
    """|x − 1|' switches at 1, the answer at 1.001: they differ on [1, 1.001) only."""
    derivation = differentiate(parse_loss("|x - 1| + |x + 2|"))
    answer = "where(x >= 1.001, 1, -1) + where(x > -2, 1, -1)"
    shown = check(derivation, "x", parse_answer(answer, derivation)).counterexample
    x = fraction(shown.point.params["x"])
    assert 1 < x < Fraction(1001, 1000)
    sign = lambda u: (u > 0) - (u < 0)  # noqa: E731
    assert fraction(shown.expected) == sign(x - 1) + sign(x + 2) == 2
    assert fraction(shown.answer) == (1 if x >= Fraction(1001, 1000) else -1) + 1 == 0


def test_a_tie_in_two_parameters_is_found():
    """∂max(x, y, 1)/∂x is 1 where x is the largest; the answer forgets it on 1 < x ≤ 1.01."""
    derivation = differentiate(parse_loss("max(x, y, 1) + (x - 2)^2"))
    answer = "where(x > y, where(x > 1.01, 1, 0), 0) + 2*(x - 2)"
    shown = check(derivation, "x", parse_answer(answer, derivation)).counterexample
    x, y = (fraction(shown.point.params[k]) for k in ("x", "y"))
    assert x > y and 1 < x <= Fraction(101, 100)
    assert fraction(shown.expected) == 1 + 2 * (x - 2)
    assert fraction(shown.answer) == 2 * (x - 2)


def test_a_branch_is_chosen_exactly_where_the_interval_cannot_tell():
    """w·x − y = 0.1·10 − 1 is 0 exactly, but its interval holds both signs; the exact value
    picks the branch, and the value is computed, not left unsure."""
    answer = parse_answer(
        "mean(where(w*x - y > 0, exp(w), -exp(w)))",
        differentiate(parse_loss("mean((w*x - y)**2)", data=("x", "y"))),
    )
    ten, one = sympy.Integer(10), sympy.Integer(1)
    point = Point((("w", sympy.Rational(1, 10)),), (("x", (ten,)), ("y", (one,))))
    value = value_at(answer, point)
    assert value is not Outcome.UNSURE
    with mpmath.workdps(80):  # the interval holds −e^0.1 and is 30 digits narrow
        truth = -mpmath.exp(mpmath.mpf(1) / 10)
        assert truth in value and value.delta < mpmath.mpf(10) ** -30
