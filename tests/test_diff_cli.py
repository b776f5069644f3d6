"""`derive diff`: every partial with its steps, as text, LaTeX or JSON, in Chinese or English."""

from __future__ import annotations

import json

import pytest


def test_text_shows_rules_and_the_textbook_form(derive_cli):
    result = derive_cli("diff", "--loss", "mean((w*x + b - y)**2)", "--data", "x=1,2,3; y=2,3,4")
    assert result.code == 0
    out = result.out
    assert "Loss: (1/n) Σ (w xᵢ + b − yᵢ)²" in out
    assert "∂L/∂w = (2/n) Σ (w xᵢ + b − yᵢ) xᵢ" in out
    assert "∂L/∂b = (2/n) Σ (w xᵢ + b − yᵢ)" in out
    assert "Chain rule, with u = w xᵢ + b − yᵢ" in out
    assert "Linearity of the sum" in out
    assert "Stationary" not in out  # not solved for losses over data


def test_chinese_words(derive_cli):
    out = derive_cli("diff", "--loss", "(w-3)**2", "--lang", "zh").out
    assert "链式法则，令 u = w − 3" in out and "幂法则" in out
    assert "dL/dw = 2(w − 3)" in out
    assert "w = 3  (全局最小值点, L = 0)" in out  # a quadratic with L'' = 2 > 0


def test_wrt_selects_one_partial(derive_cli):
    out = derive_cli("diff", "--loss", "x**2 + 2*y**2", "--wrt", "y").out
    assert "∂L/∂y = 4y" in out and "∂L/∂x" not in out


def test_seed_004_quartic_lists_its_three_stationary_points(derive_cli):
    out = derive_cli("diff", "--loss", "x**4 - 4*x**2 + 0.5*x").out
    assert "dL/dx = 4x³ − 8x + 1/2" in out
    assert "x = −1.44448  (global minimum" in out  # the lower of the two: 0.5x < 0 there
    assert "x = 0.0626228  (maximum" in out
    assert "x = 1.38186  (local minimum" in out


def test_saddle(derive_cli):
    out = derive_cli("diff", "--loss", "x**2 - y**2").out
    assert "x = 0, y = 0  (saddle point, L = 0)" in out


def test_latex_format(derive_cli):
    logistic = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
    args = ["--loss", logistic, "--data", "x=1,2; y=0,1", "--format", "latex", "--wrt", "w"]
    out = derive_cli("diff", *args).out
    assert r"\begin{align*}" in out
    assert (
        r"\frac{\partial L}{\partial w} &= \frac{1}{n} \sum_{i=1}^{n} "
        r"\left(\sigma\left(w x_{i} + b\right) - y_{i}\right) x_{i}" in out
    )
    assert r"\intertext{" in out


def test_json_format_is_the_rule_tree(derive_cli):
    doc = json.loads(derive_cli("diff", "--loss", "(w-3)**2", "--format", "json").out)
    assert doc["loss"] == "(w - 3)**2" and doc["params"] == ["w"]
    (partial,) = doc["partials"]
    assert partial["result"] == "2(w − 3)" and partial["text"] == "2*(w - 3)"
    tree = partial["steps"]
    assert tree["rule"] == "chain" and tree["inner"] == "w − 3"
    assert [s["rule"] for s in tree["substeps"]] == ["power", "sum"]
    assert doc["stationary_points"] == [
        {
            "params": {"w": 3.0},
            "kind": "minimum",
            "loss": 0.0,
            "exact": ["3"],
            "global_minimum": True,
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loss", "(w-3)**2", "--wrt", "q"], "--wrt q: not a parameter (w)"),
        (["--loss", "(w-3)**2", "--format", "pdf"], "invalid choice"),
        (["--loss", "mean(x*w)"], "give the data with --data"),
        (["--loss", "mean(x*w)", "--data", "x=1,2; x=3,4"], "given twice"),
    ],
)
def test_bad_input(derive_cli, args, message):
    result = derive_cli("diff", *args)
    assert result.code == 2
    assert message in result.err
