"""Issue 15's reproductions: right answers where the loss is defined on part of the line, wrong
answers that hid behind narrow sampling or a tolerance, counterexamples inside the domain and on
the assignment's data, and the diagnoses that name their quantity. Every counterexample's two
values are recomputed here in plain Python (math, fractions), and shown to lie in the domain."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest

from derive.core.check import BeyondLimitsError, Diagnosis, check, parse_answer
from derive.core.derivation import differentiate
from derive.core.parse import parse_loss
from derive.show.report import detail_text, diagnosis_sentence

MSE = "mean((w*x + b - y)**2)"


def verdict(loss, wrt, answer, data=None):
    columns = tuple(data) if data else (("x", "y") if "mean" in loss or "sum" in loss else ())
    derivation = differentiate(parse_loss(loss, data=columns))
    return check(derivation, wrt, parse_answer(answer, derivation), data=data)


def values(point):
    params = {k: Fraction(str(v)) for k, v in point.params.items()}
    data = {k: [Fraction(str(v)) for v in vs] for k, vs in point.data.items()}
    return params, data


def assert_values(result, expected_fn, answer_fn):
    """The counterexample's values, recomputed here from its point."""
    shown = result.counterexample
    params, data = values(shown.point)
    expected = expected_fn(params, data)
    answer = answer_fn(params, data)
    assert float(shown.expected) == pytest.approx(float(expected), rel=1e-12, abs=1e-300)
    if answer is None:
        assert shown.answer is None
    else:
        assert float(shown.answer) == pytest.approx(float(answer), rel=1e-12, abs=1e-300)
        assert float(expected) != pytest.approx(float(answer), rel=1e-9) or expected != answer
    return params, data


def mse_dw(p, d):
    rows = list(zip(d["x"], d["y"], strict=True))
    return Fraction(2, len(rows)) * sum((p["w"] * x + p["b"] - y) * x for x, y in rows)


# -- right answers where the loss is defined on part of the line ----------------------------------

POSITIVE_X = {"x": [0.5, 1.0, 2.0, 4.0, 8.0], "y": [1.0, 2.0, 2.5, 3.5, 4.0]}


@pytest.mark.parametrize(
    ("loss", "wrt", "answer", "data"),
    [
        ("sqrt(w-3)", "w", "1/(2*sqrt(w-3))", None),
        ("-(p*log(p)+(1-p)*log(1-p))", "p", "log(1-p)-log(p)", None),
        ("-(p*log(p)+(1-p)*log(1-p))", "p", "log((1-p)/p)", None),
        ("mean((w*log(x)+b-y)**2)", "w", "2*mean((w*log(x)+b-y)*log(x))", None),
        ("mean((w*log(x)+b-y)**2)", "w", "2*mean((w*log(x)+b-y)*log(x))", POSITIVE_X),
        ("mean((w*sqrt(x)+b-y)**2)", "b", "2*mean(w*sqrt(x)+b-y)", POSITIVE_X),
        ("log(w)", "w", "1/abs(w)", None),  # equal wherever log(w) is defined
        ("w*log(w**2)", "w", "log(w**2) + 2", None),
        ("mean(-(y*log(p)+(1-y)*log(1-p)))", "p", "mean((p-y)/(p*(1-p)))", None),
    ],
)
def test_right_inside_the_domain(loss, wrt, answer, data):
    result = verdict(loss, wrt, answer, data)
    assert result.correct, result.counterexample
    assert result.points >= 10


# -- wrong answers that used to be accepted ---------------------------------------------------


def test_an_answer_undefined_where_the_derivative_is_defined_is_wrong():
    result = verdict("w*log(w**2)", "w", "2*log(w)+2")
    assert not result.correct
    params, _ = assert_values(
        result, lambda p, d: math.log(float(p["w"]) ** 2) + 2, lambda p, d: None
    )
    assert params["w"] < 0  # log(w) is undefined there, log(w²) is not
    assert params["w"] == -1  # the simplest such point


def test_a_polynomial_in_n_cannot_hide_behind_small_data_sets():
    data = {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [2.0, 4.0, 5.0, 4.0, 5.0]}
    result = verdict(MSE, "w", "2*mean((w*x+b-y)*x)+(n-2)*(n-3)*(n-4)", data)
    assert not result.correct
    _, d = assert_values(
        result,
        mse_dw,
        lambda p, d: mse_dw(p, d) + (len(d["x"]) - 2) * (len(d["x"]) - 3) * (len(d["x"]) - 4),
    )
    assert len(d["x"]) not in (2, 3, 4)


@pytest.mark.parametrize("k", [5, 9, 1000])
def test_a_difference_far_from_zero_is_found(k):
    result = verdict("(w-3)**2", "w", f"2*(w-3)+abs(w-{k})+w-{k}")
    assert not result.correct
    params, _ = assert_values(
        result,
        lambda p, d: 2 * (p["w"] - 3),
        lambda p, d: 2 * (p["w"] - 3) + abs(p["w"] - k) + p["w"] - k,
    )
    assert params["w"] > k
    assert params["w"].denominator == 1  # rounded to a number a student can check


def test_a_difference_at_non_dyadic_points_is_found():
    result = verdict("(w-3)**2", "w", "2*(w-3)+sin(12*pi*w)")
    assert not result.correct
    params, _ = assert_values(
        result,
        lambda p, d: 2 * (p["w"] - 3),
        lambda p, d: 2 * (p["w"] - 3) + math.sin(12 * math.pi * p["w"]),
    )
    assert (12 * params["w"]).denominator != 1


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        ("1e-35", lambda: mpmath.mpf("1e-35")),
        ("1e-300", lambda: mpmath.mpf("1e-300")),
        ("exp(-2000)", lambda: mpmath.exp(-2000)),
    ],
)
def test_no_tolerance_can_be_gamed(offset, value):
    result = verdict("exp(2*w)", "w", f"2*exp(2*w)+{offset}")
    assert not result.correct
    shown = result.counterexample
    w = (
        mpmath.mpf(Fraction(str(shown.point.params["w"])).numerator)
        / Fraction(str(shown.point.params["w"])).denominator
    )
    if offset != "exp(-2000)":
        assert w == 1  # the simplest point, with the digits it takes to show the difference
    with mpmath.workdps(4000):  # both values recomputed here, far beyond the offset
        expected = 2 * mpmath.exp(2 * w)
        answer = expected + value()
        for shown_value, true in ((shown.expected, expected), (shown.answer, answer)):
            digits = len(str(shown_value).split("e")[0]) - 3
            assert abs(mpmath.mpf(str(shown_value)) - true) <= abs(true) * mpmath.mpf(10) ** (
                -digits + 2
            )
        assert mpmath.mpf(str(shown.answer)) != mpmath.mpf(str(shown.expected))


# -- counterexamples inside the domain, on the assignment's data ----------------------------------


def test_counterexample_for_log_lies_where_log_is_defined():
    result = verdict("log(w)", "w", "1/w**2")
    params, _ = assert_values(result, lambda p, d: 1 / p["w"], lambda p, d: 1 / p["w"] ** 2)
    assert params["w"] > 0


def test_cross_entropy_counterexample_has_a_probability():
    loss = "mean(-(y*log(p)+(1-y)*log(1-p)))"
    result = verdict(loss, "p", "mean(-y/p + (1-y)/(1+p))")
    params, _ = assert_values(
        result,
        lambda p, d: sum(-y / p["p"] + (1 - y) / (1 - p["p"]) for y in d["y"]) / len(d["y"]),
        lambda p, d: sum(-y / p["p"] + (1 - y) / (1 + p["p"]) for y in d["y"]) / len(d["y"]),
    )
    assert 0 < params["p"] < 1


def test_counterexample_uses_the_assignments_data():
    data = {"x": [0.5, 1.5, 2.5], "y": [1.0, 2.0, 2.5]}
    result = verdict(MSE, "w", "mean((w*x+b-y)*x)", data)
    _, d = assert_values(result, mse_dw, lambda p, d: mse_dw(p, d) / 2)
    assert d == {name: [Fraction(str(v)) for v in vs] for name, vs in data.items()}


def test_the_assignments_data_even_where_simplest_parameters_agree():
    data = {"x": [1.0, 2.0, 3.0], "y": [2.0, 3.0, 4.0]}  # at w = b = 1 every residual is 0
    result = verdict(MSE, "w", "mean((w*x+b-y)*x)", data)
    params, d = assert_values(result, mse_dw, lambda p, d: mse_dw(p, d) / 2)
    assert d == {"x": [1, 2, 3], "y": [2, 3, 4]} and params == {"w": 1, "b": 2}


def test_long_assignment_data_gives_a_few_of_its_rows():
    data = {"x": [float(k % 7) + 0.25 for k in range(500)], "y": [float(k % 5) for k in range(500)]}
    result = verdict(MSE, "w", "mean((w*x+b-y)*x)", data)
    _, d = assert_values(result, mse_dw, lambda p, d: mse_dw(p, d) / 2)
    rows = len(d["x"])
    assert rows <= 5 and d["x"] == [Fraction(str(v)) for v in data["x"][:rows]]


def test_unused_columns_are_neither_enumerated_nor_shown():
    # 12 columns, 10 of them unused: once 7¹² combinations were enumerated (a hang)
    columns = {f"c{k}": [1.0, 2.0, 3.0] for k in range(10)} | {
        "x": [1.0, 2.0, 3.0],
        "y": [2.0, 3.0, 4.0],
    }
    result = verdict(MSE, "w", "mean(w*x+b-y)", columns)
    assert not result.correct
    assert set(result.counterexample.point.data) == {"x", "y"}


# -- diagnoses that say the quantity ------------------------------------------------------------


def mse_dx(p, d):  # ∂L/∂x: the data column taken as the variable
    rows = list(zip(d["x"], d["y"], strict=True))
    return Fraction(2, len(rows)) * sum((p["w"] * x + p["b"] - y) * p["w"] for x, y in rows)


@pytest.mark.parametrize(
    ("loss", "answer", "diagnosis", "detail", "answer_fn"),
    [
        (MSE, "2*mean((w*x+b-y)*w)", Diagnosis.COLUMN_AS_PARAMETER, "x", mse_dx),
        (
            MSE,
            "2*mean(w*x+b-y)*x",  # the mean closed before the factor xᵢ
            Diagnosis.MEAN_TOO_EARLY,
            "xᵢ",
            lambda p, d: (
                2
                * sum(p["w"] * x + p["b"] - y for x, y in zip(d["x"], d["y"], strict=True))
                / len(d["x"])
                * d["x"][0]
            ),
        ),
        (MSE, "mean((w*x+b-y)*x)", Diagnosis.FACTOR, "1/2", lambda p, d: mse_dw(p, d) / 2),
        (
            MSE,
            "2*sum((w*x+b-y)*x)",
            Diagnosis.FACTOR,
            "n",
            lambda p, d: mse_dw(p, d) * len(d["x"]),
        ),
        (
            MSE,
            "2*(w*x+b-y)*x",
            Diagnosis.MEAN_DROPPED,
            None,
            lambda p, d: 2 * (p["w"] * d["x"][0] + p["b"] - d["y"][0]) * d["x"][0],
        ),
        (
            MSE,
            "(w*x+b-y)*x",
            Diagnosis.MEAN_DROPPED,
            "1/2",
            lambda p, d: (p["w"] * d["x"][0] + p["b"] - d["y"][0]) * d["x"][0],
        ),
        (
            "sum((w*x + b - y)**2)",  # Σ missing, not the mean
            "2*(w*x+b-y)*x",
            Diagnosis.SUM_DROPPED,
            None,
            lambda p, d: 2 * (p["w"] * d["x"][0] + p["b"] - d["y"][0]) * d["x"][0],
        ),
    ],
)
def test_data_diagnoses(loss, answer, diagnosis, detail, answer_fn):
    result = verdict(loss, "w", answer)
    assert (result.diagnosis, detail_text(result)) == (diagnosis, detail)
    expected_fn = mse_dw if loss == MSE else (lambda p, d: mse_dw(p, d) * len(d["x"]))
    assert_values(result, expected_fn, answer_fn)


@pytest.mark.parametrize(
    ("loss", "answer", "detail", "expected_fn", "answer_fn"),
    [
        (
            "(w-3)**2 + w**3",
            "2*(w-3) + w**2",
            "w³: 1/3 × 3w²",
            lambda w: 2 * (w - 3) + 3 * w**2,
            lambda w: 2 * (w - 3) + w**2,
        ),
        (
            "(w-3)**2 + w**3",
            "2*(w-3)",
            "w³: 0 × 3w²",
            lambda w: 2 * (w - 3) + 3 * w**2,
            lambda w: 2 * (w - 3),
        ),
        (
            "(w-1)**4 + 0.1*w**2",  # a penalty's derivative halved
            "4*(w-1)**3 + 0.1*w",
            "w²/10: 1/2 × w/5",
            lambda w: 4 * (w - 1) ** 3 + Fraction(1, 5) * w,
            lambda w: 4 * (w - 1) ** 3 + Fraction(1, 10) * w,
        ),
    ],
)
def test_a_mistake_in_one_term(loss, answer, detail, expected_fn, answer_fn):
    result = verdict(loss, "w", answer)
    assert (result.diagnosis, detail_text(result)) == (Diagnosis.TERM, detail)
    assert_values(result, lambda p, d: expected_fn(p["w"]), lambda p, d: answer_fn(p["w"]))


def test_a_constant_outside_any_list_is_named():
    result = verdict("log(w)/log(2)", "w", "1/w")  # log₂ w, with the 1/ln 2 forgotten
    assert result.diagnosis == Diagnosis.FACTOR
    assert detail_text(result) == "log(2)"
    assert_values(result, lambda p, d: 1 / (p["w"] * math.log(2)), lambda p, d: 1 / p["w"])
    assert "log(2) times the derivative" in diagnosis_sentence(result, "en", "w")
    assert "1/log(2)" in diagnosis_sentence(verdict("log(w)", "w", "1/(w*log(2))"), "en", "w")


def test_an_exponential_tower_is_beyond_the_limits_at_once():
    with pytest.raises(BeyondLimitsError) as raised:
        verdict("(w-3)**2", "w", "exp(exp(exp(exp(w))))")
    assert raised.value.point.params == {"w": 1}  # e^e^e^e ≈ 10^(1.6·10⁶): no number to show


@pytest.mark.parametrize("answer", ["sin(exp(exp(3*w)))", "exp(w**64)*(w+1)**63"])
def test_huge_answers_are_graded_quickly_at_small_points(answer):
    result = verdict("(w-3)**2", "w", answer)
    assert not result.correct
    assert result.counterexample.point.params == {"w": 1}
