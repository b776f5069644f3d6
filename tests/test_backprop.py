"""Backpropagation graphs: every node's gradient against a central difference of the loss through
that node, every parameter's gradient against SymPy's own derivative of the loss, both computed
here at 60 digits; the models of the issue, random expressions of the grammar, the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from derive.app.cli import main
from derive.app.data import load_data
from derive.core import backprop as core
from derive.core.backprop import another_point, backprop
from derive.core.derivation import Derivation, Partial, Step, differentiate
from derive.core.errors import DeriveError
from derive.core.functions import sigmoid
from derive.core.parse import Loss, parse_loss
from derive.core.symbols import INDEX, N_ROWS, data_column, symbol
from derive.show.backprop import backprop_json, backprop_text
from derive.show.catalog import messages

ROOT = Path(__file__).resolve().parent.parent
DIGITS = 60

LOGISTIC = "mean(-(y*log(sigmoid(w*x + b)) + (1-y)*log(1 - sigmoid(w*x + b))))"
SEED_000_DATA = "x=-3,-2,-1,-0.5,0.5,1,2,3; y=0,0,0,1,0,1,1,1"  # examples/seeds/course.toml
NETWORK = "mean((v1*tanh(w11*x1 + w12*x2 + b1) + v2*tanh(w21*x1 + w22*x2 + b2) + c - y)**2)"
NETWORK_DATA = "x1=0,0,1,1; x2=0,1,0,1; y=0,1,1,0"
NETWORK_AT = {
    "w11": 0.5, "w12": -0.3, "b1": 0.1, "w21": -0.2, "w22": 0.4, "b2": 0.0,
    "v1": 0.7, "v2": -0.5, "c": 0.2,
}  # fmt: skip
SOFTMAX = (
    "mean(-(y1*log(exp(w1*x+b1)/(exp(w1*x+b1)+exp(w2*x+b2)+exp(w3*x+b3)))"
    " + y2*log(exp(w2*x+b2)/(exp(w1*x+b1)+exp(w2*x+b2)+exp(w3*x+b3)))"
    " + y3*log(exp(w3*x+b3)/(exp(w1*x+b1)+exp(w2*x+b2)+exp(w3*x+b3)))))"
)
SOFTMAX_DATA = "x=0.5,-1,2; y1=1,0,0; y2=0,1,0; y3=0,0,1"
SOFTMAX_AT = {"w1": 0.3, "b1": 0.1, "w2": -0.2, "b2": 0.0, "w3": 0.5, "b3": -0.1}


def relu_network() -> tuple[Derivation, dict]:
    """Two inputs, three ReLU units, squared error: built with SymPy (Max(0, u)), because the
    parser of this branch has no relu; its derivation from SymPy's own diff."""
    x1, x2, y = (data_column(name) for name in ("x1", "x2", "y"))
    names = [f"{p}{k}" for k in (1, 2, 3) for p in ("w", "u", "b", "v")] + ["c"]
    s = {name: symbol(name) for name in names}
    hidden = [sympy.Max(0, s[f"w{k}"] * x1 + s[f"u{k}"] * x2 + s[f"b{k}"]) for k in (1, 2, 3)]
    output = sum(s[f"v{k}"] * h for k, h in zip((1, 2, 3), hidden, strict=True)) + s["c"]
    expr = sympy.Sum((output - y) ** 2, (INDEX, 1, N_ROWS)) / N_ROWS
    loss = Loss("relu network", expr, tuple(names), ("x1", "x2", "y"))
    partials = tuple(
        Partial(name, Step("identity", expr, s[name], d), d, d, None)
        for name in names
        for d in [sympy.diff(expr, s[name])]
    )
    rng = np.random.default_rng(7)
    point = {name: float(v) for name, v in zip(names, rng.uniform(-1, 1, len(names)), strict=True)}
    return Derivation(loss, partials), point


# -- the independent computations --------------------------------------------------------------


def batch_loss(loss: Loss, data, rows) -> sympy.Expr:
    """The loss on the batch, written out: each Σ as the sum of its rows' terms, n their count,
    data as the exact numbers given."""
    expr = loss.expr
    if loss.data:
        expr = expr.xreplace({N_ROWS: len(rows)})
        expr = expr.replace(
            lambda e: isinstance(e, sympy.Sum),
            lambda e: sympy.Add(*(e.function.xreplace({INDEX: r}) for r in rows)),
        )
        cells = {
            data_column(c).xreplace({INDEX: r}): sympy.Float(float(data[c][r - 1]), DIGITS)
            for c in loss.data
            for r in rows
        }
        expr = expr.xreplace(cells)
    return expr


def at(expr: sympy.Expr, point) -> sympy.Float:
    values = {symbol(name): sympy.Float(value, DIGITS) for name, value in point.items()}
    return expr.xreplace(values).evalf(DIGITS)


class OneSided(Exception):  # noqa: N818 - a case, not an error
    """A node whose value cannot move both ways: no central difference there."""


def values(graph, data, override: tuple[str, sympy.Float] | None = None, exact=None) -> dict:
    """Every node's value from the graph's node formulas, in order, at 60 digits; with
    `override`, one node's value is replaced and what is downstream of it recomputed."""
    out: dict[str, sympy.Float] = {}
    changed: set[str] = set()
    for node in graph.nodes:
        if override and node.id == override[0]:
            out[node.id] = override[1]
            changed.add(node.id)
        elif exact is not None and not changed & set(node.inputs):
            out[node.id] = exact[node.id]
        elif node.kind == "param":
            out[node.id] = sympy.Float(graph.point[node.id], DIGITS)
        elif node.kind == "data":
            out[node.id] = sympy.Float(float(data[node.column][node.row - 1]), DIGITS)
        else:
            inputs = {graph.node(i).symbol: out[i] for i in node.inputs}
            out[node.id] = node.formula.xreplace(inputs).evalf(DIGITS)
            changed.add(node.id)
    return out


def at_a_kink(graph) -> bool:
    """A node on a corner of |u|, relu, max or min: no central difference means anything there
    (derive uses PyTorch's subgradient)."""
    for node in graph.nodes:
        inputs = [graph.node(i).value for i in node.inputs]
        if node.op in ("abs", "relu") and inputs and inputs[0] == 0:
            return True
        if node.op in ("max", "min") and len(set(inputs)) < len(inputs):
            return True
    return False


def assert_backprop_is_right(graph, data) -> None:
    """Node values, node gradients (central differences through each node) and parameter
    gradients (SymPy's diff of the written-out loss), all to 1e-10."""
    loss = graph.derivation.loss
    written = batch_loss(loss, data, graph.rows)
    direct = float(at(written, graph.point))
    exact = values(graph, data)
    assert float(exact[graph.output.id]) == pytest.approx(direct, rel=1e-12, abs=1e-12)
    h = sympy.Float("1e-25", DIGITS)
    for node in graph.nodes:
        assert node.value == pytest.approx(float(exact[node.id]), rel=1e-14, abs=1e-14)
        up = values(graph, data, (node.id, exact[node.id] + h), exact)[graph.output.id]
        down = values(graph, data, (node.id, exact[node.id] - h), exact)[graph.output.id]
        if not (up.is_real and down.is_real):
            raise OneSided(node.id)  # at the edge of a domain: √w at w = 0
        difference = float((up - down) / (2 * h))
        assert node.grad == pytest.approx(difference, rel=1e-10, abs=1e-10), node.id
        if node is not graph.output:
            assert node.grad == pytest.approx(sum(s.product for s in node.shares), rel=1e-14)
    for p in graph.params:
        expected = float(at(sympy.diff(written, symbol(p.name)), graph.point))
        assert p.grad == pytest.approx(expected, rel=1e-10, abs=1e-10), p.name
        assert p.symbolic == pytest.approx(expected, rel=1e-10, abs=1e-10), p.name


def graph_of(text: str, data_text: str | None, point, **rows):
    data = load_data(data_text) if data_text else {}
    loss = parse_loss(text, data=tuple(data))
    return backprop(differentiate(loss), point, data, **rows), data


# -- the models ----------------------------------------------------------------------------------

MODELS = {
    "logistic, seed 000, row 4": (LOGISTIC, SEED_000_DATA, {"w": 0.5, "b": 0.1}, {"row": 4}),
    "logistic, seed 000, rows 1-3": (
        LOGISTIC,
        SEED_000_DATA,
        {"w": -0.7, "b": 0.3},
        {"rows": (1, 2, 3)},
    ),
    "linear, seed 001, the batch": (
        "mean((theta0 + theta1*x - y)**2)",
        "x=1,2,3; y=2,3,4",
        {"theta0": 0.6, "theta1": 1.33},
        {},
    ),
    "linear, seed 004, row 5": (
        "mean((w*x + b - y)**2)",
        str(ROOT / "examples/seeds/line.csv"),
        {"w": 1.5, "b": 0.5},
        {"row": 5},
    ),
    "two-layer tanh network, row 2": (NETWORK, NETWORK_DATA, NETWORK_AT, {"row": 2}),
    "two-layer tanh network, rows 1-2": (NETWORK, NETWORK_DATA, NETWORK_AT, {"rows": (1, 2)}),
    "softmax cross-entropy, 3 classes": (SOFTMAX, SOFTMAX_DATA, SOFTMAX_AT, {"row": 2}),
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    text, data_text, point, rows = MODELS[request.param]
    return graph_of(text, data_text, point, **rows)


def test_every_model_node_by_node(model):
    graph, data = model
    assert_backprop_is_right(graph, data)


def test_relu_network_node_by_node():
    derivation, point = relu_network()
    data = load_data("x1=0.5,-1,2; x2=1,0.3,-2; y=1,0,0.5")
    for rows in ({"row": 3}, {"rows": (1, 2)}):
        graph = backprop(derivation, point, data, **rows)
        assert {n.op for n in graph.operations} >= {"relu", "mul", "add", "pow"}
        assert_backprop_is_right(graph, data)


def test_relu_at_zero_passes_no_gradient_as_pytorch():
    u = symbol("w") * symbol("w") - 1  # w = 1: the ReLU's input is exactly 0
    loss = Loss("relu", sympy.Max(0, u) + symbol("w"), ("w",))
    d = sympy.diff(loss.expr, symbol("w")).subs(sympy.Heaviside(u), sympy.Heaviside(u, 0))
    derivation = Derivation(
        loss, (Partial("w", Step("identity", loss.expr, symbol("w"), d), d, d, None),)
    )
    graph = backprop(derivation, {"w": 1.0})
    relu = next(n for n in graph.operations if n.op == "relu")
    assert relu.value == 0 and relu.locals[0].value == 0
    assert graph.params[0].grad == 1.0


def test_shared_subexpression_is_one_node_and_its_gradient_sums_its_consumers():
    graph, _ = graph_of(LOGISTIC, SEED_000_DATA, {"w": 0.5, "b": 0.1}, row=4)
    (shared,) = [n for n in graph.operations if n.op == "sigmoid"]
    assert len(shared.consumers) == 2
    for share in shared.shares:
        consumer = graph.node(share.consumer)
        assert share.upstream == consumer.grad
        assert share.product == pytest.approx(share.upstream * share.local, rel=1e-15)
    assert shared.grad == pytest.approx(sum(s.product for s in shared.shares), rel=1e-15)
    # by hand: σ(−0.15) = 0.46257…; ∂L/∂σ = −y/σ on this row (y = 1)
    s = 1 / (1 + np.exp(0.15))
    assert shared.value == pytest.approx(s, rel=1e-14)
    assert shared.grad == pytest.approx(-1 / s, rel=1e-13)


def test_a_batch_has_the_mean_one_over_n_as_a_node():
    graph, _ = graph_of("mean((w*x + b - y)**2)", "x=1,2,3; y=2,3,4", {"w": 0.5, "b": 0.1})
    mean = graph.node(graph.mean)
    assert mean is graph.output and mean.locals[0].value == pytest.approx(1 / 3, rel=1e-15)
    total = graph.node(mean.inputs[0])
    assert total.op == "sum" and len(total.inputs) == 3
    w = graph.node("w")
    assert len(w.consumers) == 3  # one product w·x per row
    # the batch mean, by a loop: (2/3) Σ (w xᵢ + b − yᵢ) xᵢ
    rows = [(1, 2), (2, 3), (3, 4)]
    expected = 2 / 3 * sum((0.5 * x + 0.1 - y) * x for x, y in rows)
    assert w.grad == pytest.approx(expected, rel=1e-14)
    # one row: no Σ node and no 1/n node
    single, _ = graph_of("mean((w*x + b - y)**2)", "x=1,2,3; y=2,3,4", {"w": 0.5}, row=2)
    assert single.mean is None and "sum" not in {n.op for n in single.operations}
    assert single.node("w").grad == pytest.approx(2 * (0.5 * 2 - 3) * 2)


def test_a_wrong_local_fact_is_caught_by_the_symbolic_check(monkeypatch):
    wrong = dict(core.OUTER_DERIVATIVES)
    wrong[sigmoid] = ("sigmoid", lambda u: sigmoid(u))  # forgot the (1 − σ)
    monkeypatch.setattr(core, "OUTER_DERIVATIVES", wrong)
    with pytest.raises(AssertionError, match="symbolic partial"):
        graph_of(LOGISTIC, SEED_000_DATA, {"w": 0.5, "b": 0.1}, row=4)


# -- random expressions of the grammar -------------------------------------------------------------

UNARY = ["exp", "log", "sigmoid", "tanh", "softplus", "sin", "cos", "abs", "sqrt"]
SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much]  # undefined points are filtered


def expressions(leaves: list[str]):
    """Expressions of the grammar over `leaves`, always an operation at the top."""

    def operation(inner):
        return st.one_of(
            st.tuples(st.sampled_from(UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(["+ 0.5", "* 3", "- 2", "/ 4"])).map(
                lambda t: f"({t[0]} {t[1]})"
            ),
            st.tuples(inner, st.sampled_from(["2", "3", "-1"])).map(lambda t: f"({t[0]})**{t[1]}"),
        )

    return operation(st.recursive(st.sampled_from(leaves), operation, max_leaves=5))


POINTS = st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 3))


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(expressions(["w", "b"]), POINTS, POINTS)
def test_random_expressions_node_by_node(text, w, b):
    try:
        loss = parse_loss(text)
        graph = backprop(differentiate(loss), {p: {"w": w, "b": b}[p] for p in loss.params})
    except DeriveError:  # no operation left (w - w), or undefined at the point (log of −1)
        assume(False)
    assume(all(abs(n.value) < 1e6 and abs(n.grad) < 1e6 for n in graph.nodes))
    assume(not at_a_kink(graph))
    try:
        assert_backprop_is_right(graph, {})
    except OneSided:
        assume(False)


@settings(max_examples=15, deadline=None, suppress_health_check=SLOW)
@given(expressions(["w", "b", "x", "y"]), POINTS, POINTS, st.sampled_from([None, 1, 3]))
@example("exp(w)", 0.5, 0.0, None)  # found: a Σ whose rows share one node counted it thrice
def test_random_expressions_over_data_node_by_node(text, w, b, row):
    data = load_data("x=0.5,-1.5,2; y=1,0,-0.5")
    try:
        loss = parse_loss(f"mean({text})", data=("x", "y"))
        point = {p: {"w": w, "b": b}[p] for p in loss.params}
        graph = backprop(differentiate(loss), point, data, row=row)
    except DeriveError:  # no parameter, or undefined at the point
        assume(False)
    assume(all(abs(n.value) < 1e6 and abs(n.grad) < 1e6 for n in graph.nodes))
    assume(not at_a_kink(graph))
    try:
        assert_backprop_is_right(graph, data)
    except OneSided:
        assume(False)


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loss", "log(w)", "--at", "w=-1"], "z1 = log(w) is not a finite real number"),
        (["--loss", "sqrt(w)", "--at", "w=0"], "not differentiable there"),
        (["--loss", "w", "--at", "w=1"], "no operation"),
        (["--loss", "w - w"], "does not depend on its parameters"),
        (["--loss", "(w-3)**2", "--row", "1"], "the loss has no data"),
        (["--loss", "(w-3)**2", "--at", "v=1"], "--at sets 'v'"),
        (["--loss", "mean((w*x-y)**2)", "--data", "x=1,2; y=1,2", "--row", "3"], "row 3 is not"),
        (["--loss", "mean((w*x-y)**2)", "--data", "x=1,2; y=1,2", "--rows", "1,1"], "twice"),
        (["--loss", "mean((w*x-y)**2)", "--data", "x=1,2; y=1,2", "--rows", "2-1"], "not a range"),
        (["--loss", "mean((w*x-y)**2)", "--data", "x=1,2,3,4,5; y=1,2,3,4,5"], "at most 4 rows"),
        (["--loss", "(w-3)**2", "--format", "ipynb"], "give --out"),
        (["--loss", "(w-3)**2", "--lang", "all"], "--lang all is for --out"),
        (["--loss", "(w-3)**2", "--json", "--out", "x"], "not allowed with"),
        (["--loss", "(w-3)@2"], "unexpected character"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(derive_cli, args, message):
    run = derive_cli("backprop", *args)
    assert run.code == 2 and run.out == ""
    assert message in run.err.splitlines()[0]


# -- the outputs ---------------------------------------------------------------------------------


def test_json_is_the_documented_contract(derive_cli):
    run = derive_cli(
        "backprop", "--loss", LOGISTIC, "--data", SEED_000_DATA, "--at", "w=0.5,b=0.1",
        "--row", "4", "--json",
    )  # fmt: skip
    assert run.code == 0
    graph = json.loads(run.out)
    assert graph["row"] == 4 and graph["rows"] == [4] and graph["point"] == {"w": 0.5, "b": 0.1}
    first = graph["nodes"][0]
    assert first == first | {"id": "z1", "op": "mul", "inputs": ["w", "x"], "expr": "w*x"}
    assert first["value"] == -0.25
    ids = {n["id"] for n in graph["nodes"]} | {leaf["id"] for leaf in graph["leaves"]}
    for node in graph["nodes"]:
        assert set(node["inputs"]) <= ids and set(node["consumers"]) <= ids
        assert {"id", "op", "inputs", "expr", "value", "grad"} <= set(node)
    assert graph["nodes"][-1]["id"] == graph["output"] and graph["nodes"][-1]["grad"] == 1.0
    # ∂L/∂w on this row, by hand: (σ(w x + b) − y) x
    s = 1 / (1 + np.exp(0.15))
    assert graph["params"]["w"]["grad"] == pytest.approx((s - 1) * -0.5, rel=1e-14)
    assert graph["params"]["b"]["grad"] == pytest.approx(s - 1, rel=1e-14)
    batch = json.loads(
        derive_cli("backprop", "--loss", "mean((w*x-y)**2)", "--data", "x=1,2; y=1,2", "--json").out
    )
    assert batch["row"] is None and batch["rows"] == [1, 2] and batch["mean"] is not None
    assert {leaf["id"] for leaf in batch["leaves"]} == {"w", "x[1]", "y[1]", "x[2]", "y[2]"}


def test_text_in_both_languages_shows_each_pass_and_the_check(derive_cli):
    for language, words in (("en", "Backward pass"), ("zh", "反向传播")):
        run = derive_cli(
            "backprop", "--loss", "mean((w*x + b - y)**2)", "--data", "x=1,2,3; y=2,3,4",
            "--at", "w=0.5,b=0.1", "--lang", language,
        )  # fmt: skip
        assert run.code == 0 and words in run.out
        # (2/3) Σ (w xᵢ + b − yᵢ) xᵢ at w = 0.5, b = 0.1, by a loop
        expected = 2 / 3 * sum((0.5 * x + 0.1 - y) * x for x, y in [(1, 2), (2, 3), (3, 4)])
        assert f"∂L/∂w = {expected:.6g}".replace("-", "−") in run.out
        assert "z₁₁ = z₁₀/3" in run.out  # the mean's 1/n
        assert "= (−0.933333) + (−2.53333) + (−4.8) = −8.26667" in run.out  # w's three paths


def test_text_of_both_languages_uses_the_catalog_sentences():
    graph, _ = graph_of("(w-3)**2", None, {"w": 1})
    for language in ("zh", "en"):
        text = backprop_text(graph, language)
        words = messages(language)["backprop"]["text"]
        assert words["forward"] in text and words["backward"] in text and words["check"] in text
        assert "z₂ = z₁² = (−2)² = 4" in text


def test_catalog_sections_match_and_name_only_new_rules():
    zh, en = messages("zh"), messages("en")

    def keys(table, prefix=""):
        return {
            k2
            for k, v in table.items()
            for k2 in (keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k})
        }

    assert keys(zh["backprop"]) == keys(en["backprop"])
    for language in (zh, en):
        assert not set(language["backprop"]["rules"]) & set(language["rules"])
        assert set(language["backprop"]["facts"]) == set(language["backprop"]["rules"])


def test_exercise_point_is_another_point_of_the_same_rows():
    graph, data = graph_of(LOGISTIC, SEED_000_DATA, {"w": 0.5, "b": 0.1}, rows=(1, 2, 3))
    other = another_point(graph, data)
    assert other.rows == graph.rows and other.point == {"w": 1.0, "b": 0.6}
    assert_backprop_is_right(other, data)


@pytest.fixture(scope="module")
def network_lesson(tmp_path_factory):
    out = tmp_path_factory.mktemp("backprop") / "network"
    at = ",".join(f"{k}={v}" for k, v in NETWORK_AT.items())
    args = ["backprop", "--loss", NETWORK, "--data", NETWORK_DATA, "--at", at, "--row", "2"]
    assert main([*args, "--out", str(out), "--format", "ipynb"]) == 0
    return out, args


def test_lesson_files_in_both_languages(network_lesson):
    out, _ = network_lesson
    for language in ("zh", "en"):
        for name in (
            f"backprop.{language}.md",
            f"backprop.{language}.html",
            f"backprop-notebook.{language}.ipynb",
        ):
            assert (out / name).stat().st_size > 0
        assert (out / "figures" / language / "backprop.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_holds_everything_the_html_shows(network_lesson):
    import re

    out, _ = network_lesson
    for language in ("zh", "en"):
        markdown = (out / f"backprop.{language}.md").read_text(encoding="utf-8")
        html = (out / f"backprop.{language}.html").read_text(encoding="utf-8")
        words = messages(language)["backprop"]
        for heading in ("graph_heading", "forward_heading", "backward_heading", "check_heading",
                        "torch_heading", "exercises_heading", "answers_heading"):  # fmt: skip
            assert f"## {words[heading]}" in markdown and words[heading] in html
        assert markdown.count("![") == len(re.findall(r"<img ", html)) == 1
        rows = [
            line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line
        ]
        assert len(rows) == html.count("<tr>")
        assert markdown.count("$") // 2 >= html.count("<math") // 2
        assert "L.backward()" in markdown and "L.backward()" in html


def test_lesson_numbers_are_the_networks_by_hand(network_lesson):
    out, _ = network_lesson
    markdown = (out / "backprop.en.md").read_text(encoding="utf-8")
    # row 2: x1 = 0, x2 = 1, y = 1
    p = NETWORK_AT
    h1 = np.tanh(p["w11"] * 0 + p["w12"] * 1 + p["b1"])
    h2 = np.tanh(p["w21"] * 0 + p["w22"] * 1 + p["b2"])
    error = p["v1"] * h1 + p["v2"] * h2 + p["c"] - 1
    assert f"The loss is $L = z_{{12}} = {error**2:.6g}$." in markdown
    for name, latex, grad in (("v1", "v_{1}", 2 * error * h1), ("c", "c", 2 * error)):
        row = f"| ${latex}$ | ${p[name]:g}$ | ${grad:.6g}$ | ${grad:.6g}$ |"
        assert row in markdown


def test_rebuilds_are_byte_identical(tmp_path):
    args = ["backprop", "--loss", "mean((w*x + b - y)**2)", "--data", "x=1,2,3; y=2,3,4"]
    first, second = tmp_path / "a", tmp_path / "b"
    assert main([*args, "--out", str(first), "--lang", "zh"]) == 0
    assert main([*args, "--out", str(second), "--lang", "zh"]) == 0
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_backprop_json_of_a_graph_is_plain_data():
    graph, _ = graph_of(SOFTMAX, SOFTMAX_DATA, SOFTMAX_AT, row=1)
    assert json.loads(json.dumps(backprop_json(graph))) == backprop_json(graph)


def readme_backprop_commands() -> list[list[str]]:
    """Every `derive backprop` command of the README, with its continuation lines."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        shlex.split(line)[1:] for line in text.splitlines() if line.startswith("derive backprop")
    ]


def test_every_readme_example_runs(tmp_path, capsys):
    commands = readme_backprop_commands()
    assert len(commands) == 5  # logistic, two linear, the network's lesson, softmax
    for args in commands:
        if "--out" in args:
            args[args.index("--out") + 1] = str(tmp_path / "lesson")
        assert main(args) == 0, args
        assert "Traceback" not in capsys.readouterr().err
    assert (tmp_path / "lesson" / "backprop-notebook.zh.ipynb").exists()


def test_exercises_do_not_give_their_answers_away(tmp_path):
    data = "x=1,2,3; y=2,3,4"
    out = tmp_path / "lesson"
    loss = "mean((theta0 + theta1*x - y)**2)"
    assert (
        main(["backprop", "--loss", loss, "--data", data, "--lang", "en", "--out", str(out)]) == 0
    )
    markdown = (out / "backprop.en.md").read_text(encoding="utf-8")
    questions = markdown[markdown.index("## Exercises") : markdown.index("## Answers")]
    answers = markdown[markdown.index("## Answers") :]
    # at the exercise's point θ₀ = θ₁ = 0.5, by hand: each row's error e = θ₀ + θ₁x − y
    errors = [0.5 + 0.5 * x - y for x, y in [(1, 2), (2, 3), (3, 4)]]
    assert "$\\theta_{0} = 0.5$, $\\theta_{1} = 0.5$" in questions
    grad_theta0 = 2 / 3 * sum(errors)
    assert f"${grad_theta0:.6g}$" in answers and f"${grad_theta0:.6g}$" not in questions
    assert questions.count("| ? |") >= 2
