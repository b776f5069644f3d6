"""`derive check`: right answers in any equivalent form; wrong ones with a diagnosis and a point
where the two differ, recomputed here by hand."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import pytest

from derive.app.grading import grade_many
from derive.core.check import check, parse_answer
from derive.core.derivation import differentiate
from derive.core.parse import parse_loss
from derive.show.report import detail_text

MSE = "mean((w*x + b - y)**2)"
LOGISTIC = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
DATA = ("x", "y")


def verdict(loss, wrt, answer):
    derivation = differentiate(parse_loss(loss, data=DATA if "mean" in loss else ()))
    return check(derivation, wrt, parse_answer(answer, derivation))


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def mse_dw(w, b, x, y):
    return Fraction(2, len(x)) * sum((w * xi + b - yi) * xi for xi, yi in zip(x, y, strict=True))


def exact(point):
    """The counterexample's values as Fractions, to compute with by hand."""
    params = {k: Fraction(str(v)) for k, v in point.params.items()}
    data = {k: [Fraction(str(v)) for v in vs] for k, vs in point.data.items()}
    return params, data


@pytest.mark.parametrize(
    ("loss", "wrt", "answer"),
    [
        (MSE, "w", "2*mean((w*x+b-y)*x)"),
        (MSE, "w", "2/n*sum((w*x+b-y)*x)"),  # Σ/n and mean
        (MSE, "w", "2*mean(w*x**2 + b*x - x*y)"),  # expanded
        (MSE, "b", "2*(w*mean(x) + b - mean(y))"),  # mean taken apart
        (LOGISTIC, "w", "mean((sigmoid(w*x+b) - y)*x)"),
        (LOGISTIC, "w", "mean((1/(1+exp(-(w*x+b))) - y)*x)"),  # σ written out
        ("(w-3)**2", "w", "2*(w-3)"),
        ("(w-3)**2", "w", "2*w - 6"),  # expanded vs factored
        ("w*sin(w)", "w", "sin(w) + w*cos(w)"),  # product rule
        ("log(1+exp(w*x))", "w", "x*sigmoid(w*x)"),  # chain rule, σ form
        ("log(1+exp(w*x))", "w", "x*exp(w*x)/(1+exp(w*x))"),
    ],
)
def test_equivalent_forms_are_right(loss, wrt, answer):
    result = verdict(loss, wrt, answer)
    assert result.correct
    assert result.counterexample is None and result.diagnosis is None


def test_mse_missing_factor_two_with_a_small_counterexample():
    result = verdict(MSE, "w", "mean((w*x+b-y)*x)")
    assert not result.correct
    assert (result.diagnosis, detail_text(result)) == ("factor", "1/2")
    params, data = exact(result.counterexample.point)
    assert 2 <= len(data["x"]) <= 3
    assert all(abs(v) <= 2 and v.denominator <= 2 for v in params.values())
    w, b, x, y = params["w"], params["b"], data["x"], data["y"]
    assert result.counterexample.expected == mse_dw(w, b, x, y)
    assert result.counterexample.answer == sum(
        (w * a + b - c) * a for a, c in zip(x, y, strict=True)
    ) / len(x)


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def rows(d):
    return list(zip(d["x"], d["y"], strict=True))


# Each case: the true derivative and the answer, written here in plain Python.
MSE_W = lambda p, d: mean(2 * (p["w"] * x + p["b"] - y) * x for x, y in rows(d))  # noqa: E731
LOG_W = lambda p, d: mean((sigmoid(p["w"] * x + p["b"]) - y) * x for x, y in rows(d))  # noqa: E731
S = sigmoid


def SQ_W(p, d):  # ∂/∂w mean((σ(wx + b) − y)²)
    return mean(
        2 * (S(p["w"] * x + p["b"]) - y) * S(p["w"] * x + p["b"]) * (1 - S(p["w"] * x + p["b"])) * x
        for x, y in rows(d)
    )


DIAGNOSES = [
    (
        MSE,
        "w",
        "2*sum((w*x+b-y)*x)",
        "factor",
        "n",
        MSE_W,
        lambda p, d: sum(2 * (p["w"] * x + p["b"] - y) * x for x, y in rows(d)),
    ),
    (MSE, "w", "-2*mean((w*x+b-y)*x)", "sign", None, MSE_W, lambda p, d: -MSE_W(p, d)),
    (
        MSE,
        "w",
        "2*mean(w*x+b-y)",
        "wrong_parameter",
        "b",
        MSE_W,
        lambda p, d: mean(2 * (p["w"] * x + p["b"] - y) for x, y in rows(d)),
    ),
    (
        MSE,
        "w",
        "2*(w*x+b-y)*x",
        "mean_dropped",
        None,
        MSE_W,  # a lone xᵢ: the first row's
        lambda p, d: 2 * (p["w"] * d["x"][0] + p["b"] - d["y"][0]) * d["x"][0],
    ),
    (
        LOGISTIC,
        "w",
        "mean(sigmoid(w*x+b) - y)",
        "wrong_parameter",
        "b",
        LOG_W,
        lambda p, d: mean(sigmoid(p["w"] * x + p["b"]) - y for x, y in rows(d)),
    ),
    (
        LOGISTIC,
        "w",
        "2*mean((sigmoid(w*x+b) - y)*x)",
        "factor",
        "2",
        LOG_W,
        lambda p, d: 2 * LOG_W(p, d),
    ),
    (
        "mean((sigmoid(w*x+b) - y)**2)",
        "w",
        "2*mean((sigmoid(w*x+b) - y)*x)",
        "sigmoid_derivative",
        "w xᵢ + b",
        SQ_W,
        lambda p, d: mean(2 * (sigmoid(p["w"] * x + p["b"]) - y) * x for x, y in rows(d)),
    ),
    (
        "(w-3)**2",
        "w",
        "w - 3",
        "factor",
        "1/2",
        lambda p, d: 2 * (p["w"] - 3),
        lambda p, d: p["w"] - 3,
    ),
    (
        "(w-3)**2",
        "w",
        "2*(3 - w)",
        "sign",
        None,
        lambda p, d: 2 * (p["w"] - 3),
        lambda p, d: 2 * (3 - p["w"]),
    ),
    (
        "log(1+exp(w*x))",
        "w",
        "exp(w*x)/(1+exp(w*x))",
        "chain",
        "x (u = w x)",
        lambda p, d: p["x"] * sigmoid(p["w"] * p["x"]),
        lambda p, d: sigmoid(p["w"] * p["x"]),
    ),
    (
        "(2*w + 1)**3",
        "w",
        "3*(2*w+1)**2",
        "chain",
        "2 (u = 2w + 1)",
        lambda p, d: 6 * (2 * p["w"] + 1) ** 2,
        lambda p, d: 3 * (2 * p["w"] + 1) ** 2,
    ),
    (
        "w*exp(w)",
        "w",
        "-(exp(w) + w*exp(w))",
        "sign",
        None,  # product rule, sign flipped
        lambda p, d: math.exp(p["w"]) * (1 + p["w"]),
        lambda p, d: -math.exp(p["w"]) * (1 + p["w"]),
    ),
    (
        "w*sin(w)",
        "w",
        "cos(w)",
        None,
        None,  # product rule forgotten: no common mistake fits
        lambda p, d: math.sin(p["w"]) + p["w"] * math.cos(p["w"]),
        lambda p, d: math.cos(p["w"]),
    ),
]


@pytest.mark.parametrize(
    ("loss", "wrt", "answer", "diagnosis", "detail", "expected_fn", "answer_fn"),
    DIAGNOSES,
    ids=[f"{c[0][:20]}|{c[2]}" for c in DIAGNOSES],
)
def test_diagnoses(loss, wrt, answer, diagnosis, detail, expected_fn, answer_fn):
    result = verdict(loss, wrt, answer)
    assert not result.correct
    assert (result.diagnosis, detail_text(result)) == (diagnosis, detail)
    shown = result.counterexample
    params = {k: float(v) for k, v in shown.point.params.items()}
    data = {k: [float(v) for v in vs] for k, vs in shown.point.data.items()}
    assert float(shown.expected) == pytest.approx(expected_fn(params, data), rel=1e-12)
    assert float(shown.answer) == pytest.approx(answer_fn(params, data), rel=1e-12)
    assert float(shown.expected) != pytest.approx(float(shown.answer), rel=1e-9)


def test_logistic_counterexample_values_by_hand():
    result = verdict(LOGISTIC, "w", "mean(sigmoid(w*x+b) - y)")
    params, data = exact(result.counterexample.point)
    w, b = float(params["w"]), float(params["b"])
    x, y = [float(v) for v in data["x"]], [float(v) for v in data["y"]]
    expected = sum((sigmoid(w * a + b) - c) * a for a, c in zip(x, y, strict=True)) / len(x)
    answer = sum(sigmoid(w * a + b) - c for a, c in zip(x, y, strict=True)) / len(x)
    assert float(result.counterexample.expected) == pytest.approx(expected, rel=1e-12)
    assert float(result.counterexample.answer) == pytest.approx(answer, rel=1e-12)


def test_chain_rule_counterexample_by_hand():
    result = verdict("log(1+exp(w*x))", "w", "exp(w*x)/(1+exp(w*x))")
    params, _ = exact(result.counterexample.point)
    w, x = float(params["w"]), float(params["x"])
    assert float(result.counterexample.expected) == pytest.approx(x * sigmoid(w * x), rel=1e-12)
    assert float(result.counterexample.answer) == pytest.approx(sigmoid(w * x), rel=1e-12)


def test_never_right_when_a_point_disagrees():
    # equal to the derivative except far from the sampled region would still be caught by the
    # exact comparison: 2(w − 3) + 10⁻²⁰ differs by a rational amount at every point
    assert not verdict("(w-3)**2", "w", "2*(w-3) + 1e-20").correct


def test_cli_exit_codes_and_json(derive_cli):
    args = ["check", "--loss", MSE, "--data", "x=1,2,3; y=2,3,4", "--wrt", "w"]
    assert derive_cli(*args, "--answer", "2*mean((w*x+b-y)*x)").code == 0
    wrong = derive_cli(*args, "--answer", "mean((w*x+b-y)*x)", "--json")
    assert wrong.code == 1
    doc = json.loads(wrong.out)
    assert set(doc) >= {"correct", "expected", "answer", "diagnosis", "counterexample"}
    assert (
        doc["correct"] is False and doc["diagnosis"] == "Your answer is 1/2 times the derivative."
    )
    ce = doc["counterexample"]
    w, b, x, y = ce["params"]["w"], ce["params"]["b"], ce["data"]["x"], ce["data"]["y"]
    assert ce["expected_value"] == pytest.approx(float(mse_dw(w, b, x, y)))
    bad = derive_cli(*args, "--answer", "2*mean((w*x+b-y)*x")
    assert bad.code == 2 and "never closed" in bad.err
    unknown = derive_cli(*args, "--answer", "2*q")
    assert unknown.code == 2 and "uses q" in unknown.err
    assert derive_cli(*args[:-1], "q", "--answer", "1").code == 2
    row_index = derive_cli(*args, "--answer", "i")  # once a ValueError that ended the class
    assert row_index.code == 2 and "uses i" in row_index.err


def test_chinese_verdict(derive_cli):
    result = derive_cli(
        "check", "--loss", "(w-3)**2", "--wrt", "w", "--answer", "w-3", "--lang", "zh"
    )
    assert result.code == 1
    assert result.out.splitlines()[0] == "不正确"
    assert "你的答案是正确结果的 1/2 倍。" in result.out


def test_a_class_file(tmp_path, derive_cli):
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "student,answer\n"
        "alice,2*mean((w*x+b-y)*x)\n"
        "bob,mean((w*x+b-y)*x)\n"
        'carol,"2*mean((w*x+b-y)*x"\n'
        "dave\n"
        "erin,2/n*sum((w*x+b-y)*x)\n"
        "frank,mean((w*x+b-y)*x)\n"
    )
    out = tmp_path / "report"
    result = derive_cli(
        "check",
        "--loss",
        MSE,
        "--data",
        "x=1,2,3; y=2,3,4",
        "--wrt",
        "w",
        "--answers",
        str(answers),
        "--out",
        str(out),
        "--jobs",
        "2",
    )
    assert result.code == 0
    with open(out / "grades.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["line"], r["student"], r["verdict"]) for r in rows] == [
        ("2", "alice", "right"),
        ("3", "bob", "wrong"),
        ("4", "carol", "invalid"),
        ("5", "dave", "invalid"),
        ("6", "erin", "right"),
        ("7", "frank", "wrong"),
    ]
    assert rows[1]["diagnosis"] == "factor" and json.loads(rows[1]["counterexample"])["params"]
    assert "never closed" in rows[2]["problem"] and "1 cells" in rows[3]["problem"]
    report = (out / "report.en.md").read_text()
    assert "| Right | 2 | 33.3% |" in report and "| Wrong | 2 | 33.3% |" in report
    assert "| Invalid | 2 | 33.3% |" in report
    # the mistakes table: the factor named, with its count and an example answer
    assert "| M1 | 1\\/2 times the derivative | 2 | 33.3% | A2 `mean((w*x+b-y)*x)` |" in report
    assert "7 lines read\\: the header and 6 rows\\. All 6 rows are reported" in report
    assert (out / "report.zh.html").exists()


def test_each_distinct_answer_is_graded_once():
    derivation = differentiate(parse_loss(MSE, data=DATA))
    graded_in_workers = []
    texts = ["2*mean((w*x+b-y)*x)", "2 * mean((w*x + b - y)*x)", "mean((w*x+b-y)*x)"] * 50
    graded = grade_many(
        derivation,
        "w",
        texts,
        jobs=1,
        progress=lambda done, total, _: graded_in_workers.append(total),
    )
    assert set(graded_in_workers) == {2}  # the first two parse to the same expression
    assert graded[texts[0]].verdict.correct and not graded[texts[2]].verdict.correct
