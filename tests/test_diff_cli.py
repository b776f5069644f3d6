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
    # each rule's name on a text row of its own: MathJax and KaTeX have no \intertext
    assert r"\intertext" not in out and "& \\text{Constant multiple rule} \\\\\n" in out


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


# -- the losses courses use (issue 16) ----------------------------------------------------------


@pytest.mark.parametrize("form", ["json", "latex", "text"])
@pytest.mark.parametrize("loss", ["sigmoid(x)", "sigmoid(w)**3", "softplus(w)**2 + relu(w)**2"])
def test_powers_of_sigmoid_and_softplus_print_in_every_format(derive_cli, form, loss):
    result = derive_cli("diff", "--loss", loss, "--format", form)
    assert result.code == 0, result.err
    if form == "latex":
        assert r"\sigma\left(" in result.out or r"\operatorname{softplus}" in result.out


def test_softmax_cross_entropy_reaches_p_minus_y_with_one_hot_targets(derive_cli):
    logits = "w1*x+b1, w2*x+b2, w3*x+b3"
    loss = "-mean(" + " + ".join(f"y{k}*log(softmax({k}, {logits}))" for k in (1, 2, 3)) + ")"
    data = "x=1,2,-1,3; y1=1,0,0,0; y2=0,1,0,1; y3=0,0,1,0"
    out = derive_cli("diff", "--loss", loss, "--data", data).out
    p = "softmax{k}(w₁ xᵢ + b₁, w₂ xᵢ + b₂, w₃ xᵢ + b₃)"
    for k in (1, 2, 3):
        assert (
            f"∂L/∂w{'₁₂₃'[k - 1]} = (1/n) Σ ({p.format(k='₁₂₃'[k - 1])} − y{'₁₂₃'[k - 1]}ᵢ) xᵢ"
            in out
        )
    assert "Simplify with one-hot targets: y₁ᵢ + y₂ᵢ + y₃ᵢ = 1 ⇒" in out
    # targets that do not sum to 1 in every row: the identity is not used
    other = derive_cli("diff", "--loss", loss, "--data", "x=1,2; y1=1,1; y2=0,1; y3=0,0").out
    assert (
        "one-hot" not in other
        and "(softmax₁(w₁ xᵢ + b₁, w₂ xᵢ + b₂, w₃ xᵢ + b₃) − y₁ᵢ)" not in other
    )


def test_constants_stay_symbols_in_the_derivation(derive_cli):
    args = ["--loss", "mean((w*x + b - y)**2) + lam*w**2", "--data", "x=1,2,3; y=2,3,4"]
    out = derive_cli("diff", *args, "--const", "lam=0.1", "--wrt", "w").out
    assert "Constants: λ = 1/10" in out
    assert "∂L/∂w = 2λ w + (2/n) Σ (w xᵢ + b − yᵢ) xᵢ" in out
    doc = json.loads(derive_cli("diff", *args, "--const", "lam=0.1", "--format", "json").out)
    assert doc["constants"] == {"lam": "1/10"} and doc["params"] == ["w", "b"]
    assert doc["partials"][0]["text"] == "2*lam*w + 2*mean((b + w*x - y)*x)"
    # with --params, every other name is a constant; diff keeps it a symbol
    doc = json.loads(derive_cli("diff", *args, "--params", "w,b", "--format", "json").out)
    assert doc["constants"] == {"lam": None} and doc["flagged"] == []


def test_a_descended_hyperparameter_is_flagged(derive_cli):
    args = ["--loss", "mean((w*x + b - y)**2) + lambda*w**2", "--data", "x=1,2,3; y=2,3,4"]
    doc = json.loads(derive_cli("diff", *args, "--format", "json").out)
    assert doc["params"] == ["w", "b", "lambda"]
    assert doc["flagged"] == [{"param": "lambda", "reason": "hyperparameter"}]
    result = derive_cli("descend", *args, "--steps", "1")
    assert "derive: note: lambda looks like a constant" in result.err
    rows = derive_cli("diff", "--loss", "1/(2*m)*sum((w*x - y)**2)", "--data", "x=1,2; y=2,3")
    assert "Note: m divides the sum over the data" in rows.out


def test_descent_needs_a_value_for_every_constant(derive_cli):
    result = derive_cli("descend", "--loss", "(w - 1)**2 + lam*w**2", "--params", "w")
    assert result.code == 2
    assert "lam is a constant of the loss (not in --params)" in result.err
    ok = derive_cli("descend", "--loss", "(w - 1)**2 + lam*w**2", "--const", "lam=1", "--json")
    steps = json.loads(ok.out)["steps"]
    w, trace = 0.0, []
    for _ in range(21):  # plain loop: L' = 2(w − 1) + 2w with λ = 1
        trace.append(w)
        w -= 0.1 * (2 * (w - 1) + 2 * w)
    assert [s["params"]["w"] for s in steps] == pytest.approx(trace, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--const", "q=1"], "--const q: the loss does not use q"),
        (["--const", "lam=1", "--const", "lam=2"], "--const lam is given twice"),
        (["--const", "lam"], "--const expects name=value pairs"),
        (["--const", "lam=w"], "is not a real number"),
        (["--const", "x=1"], "x is both a data column and a constant"),
        (["--const", "w=1", "--params", "w"], "w is both a parameter and a constant"),
    ],
)
def test_bad_constants(derive_cli, args, message):
    base = ["--loss", "mean((w*x - y)**2) + lam*w**2", "--data", "x=1,2; y=2,3"]
    result = derive_cli("diff", *base, *args)
    assert result.code == 2 and message in result.err


def test_check_grades_answers_that_use_the_constants(derive_cli):
    base = ["--loss", "(w - 3)**2 + lam*w**2", "--wrt", "w"]
    right = derive_cli("check", *base, "--const", "lam=0.5", "--answer", "2*(w-3) + 2*lam*w")
    assert right.code == 0, right.out
    numbers = derive_cli("check", *base, "--const", "lam=0.5", "--answer", "2*(w-3) + w")
    assert numbers.code == 0  # λ = 1/2 written as its value
    wrong = derive_cli("check", *base, "--const", "lam=0.5", "--answer", "2*(w-3) + lam*w")
    assert wrong.code == 1
    symbolic = derive_cli("check", *base, "--params", "w", "--answer", "2*(w-3) + 2*lam*w")
    assert symbolic.code == 0  # no value: right for every λ
    half = derive_cli("check", *base, "--params", "w", "--answer", "2*(w-3) + w")
    assert half.code == 1  # right only at λ = 1/2


def test_the_matrix_form_of_a_linear_model(derive_cli):
    data = "x1=1,2,3,0; x2=0,1,-1,2; y=1,3,2,4"
    loss = "mean((w1*x1 + w2*x2 + b - y)**2)"
    out = derive_cli("diff", "--loss", loss, "--data", data).out
    assert "In matrix notation (X = [x₁ x₂ 1], θ = (w₁, w₂, b)ᵀ):" in out
    assert "∇_θ L = (2/n) Xᵀ(Xθ − y)" in out
    doc = json.loads(derive_cli("diff", "--loss", loss, "--data", data, "--format", "json").out)
    assert doc["vector_form"] == {
        "kind": "least_squares",
        "features": ["x1", "x2", None],
        "weights": ["w1", "w2", "b"],
        "target": "y",
        "loss": "(1/n) (Xθ − y)ᵀ(Xθ − y)",
        "gradient": "(2/n) Xᵀ(Xθ − y)",
        "loss_latex": r"\frac{1}{n} \left(X \theta - y\right)^{T} \left(X \theta - y\right)",
        "gradient_latex": r"\frac{2}{n} X^{T} \left(X \theta - y\right)",
    }
    latex = derive_cli("diff", "--loss", loss, "--data", data, "--format", "latex").out
    assert r"\nabla_{\theta} L &= \frac{2}{n} X^{T} \left(X \theta - y\right)" in latex
    none = json.loads(derive_cli("diff", "--loss", "(w-3)**2", "--format", "json").out)
    assert none["vector_form"] is None and none["kinks"] == [] and none["constants"] == {}


def test_kinks_and_their_conventions_are_listed(derive_cli):
    out = derive_cli("diff", "--loss", "relu(w - 1) + max(w, b)").out
    assert "derive uses 0 there, as torch.relu does" in out
    assert "splits the gradient evenly among the tied ones" in out
    doc = json.loads(derive_cli("diff", "--loss", "relu(w - 1) + abs(b)", "--format", "json").out)
    assert sorted(doc["kinks"], key=str) == [
        {"function": "abs(b)", "convention": "abs"},
        {"function": "relu(w - 1)", "convention": "relu"},
    ]
