"""The PyTorch code of a backpropagation lesson, run: torch's backward() gives every gradient
derive gives, to 1e-12 (torch is a dev dependency, never a runtime one)."""

from __future__ import annotations

import contextlib
import io

import nbformat
import pytest
from hypothesis import assume, example, given, settings

from derive.core.backprop import backprop
from derive.core.derivation import differentiate
from derive.core.errors import DeriveError
from derive.core.parse import parse_loss
from derive.show.backprop import backprop_notebook, torch_cells, torch_code
from tests.test_backprop import MODELS, POINTS, SLOW, expressions, graph_of, relu_network

torch = pytest.importorskip("torch")


def run(code: str) -> dict:
    """The generated code, executed as a student runs it; its variables afterwards."""
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(code, "<backprop>", "exec"), namespace)  # derive's own code, from the test
    namespace["printed"] = printed.getvalue()
    return namespace


def assert_torch_agrees(graph) -> None:
    ran = run(torch_code(graph, "en"))
    needed = {n.id: n for n in graph.nodes if n.requires_grad}
    assert [name for name, _, _ in ran["nodes"]] == list(needed)
    for name, tensor, shown in ran["nodes"]:  # each tensor's .grad, after L.backward()
        grad = 0.0 if tensor.grad is None else tensor.grad.item()  # None: the loss ignores it
        assert grad == pytest.approx(needed[name].grad, rel=1e-12, abs=1e-12), name
        assert shown == needed[name].grad
    assert ran["L"].item() == pytest.approx(graph.output.value, rel=1e-12, abs=1e-12)
    assert len(ran["printed"].splitlines()) == len(needed) + 1
    for language in ("zh", "en"):  # a page shows 80 columns of code; a Chinese character is 2
        for line in torch_code(graph, language).splitlines():
            assert sum(2 if ord(ch) > 0x2E80 else 1 for ch in line) <= 80, line


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_as_torch_computes_it(name):
    text, data_text, point, rows = MODELS[name]
    graph, _ = graph_of(text, data_text, point, **rows)
    assert_torch_agrees(graph)


def test_relu_network_as_torch_computes_it():
    from derive.app.data import load_data

    derivation, point = relu_network()
    data = load_data("x1=0.5,-1,2; x2=1,0.3,-2; y=1,0,0.5")
    assert_torch_agrees(backprop(derivation, point, data, rows=(1, 2, 3)))


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(expressions(["w", "b"]), POINTS, POINTS)
@example("(w / sqrt(sigmoid(b)))", 0.5, 0.0)  # found: u**(-1/2) printed as 1/sqrt(u)
def test_random_expressions_as_torch_computes_them(text, w, b):
    try:
        loss = parse_loss(text)
        graph = backprop(differentiate(loss), {p: {"w": w, "b": b}[p] for p in loss.params})
    except DeriveError:
        assume(False)
    assume(all(abs(n.value) < 1e6 and abs(n.grad) < 1e6 for n in graph.nodes))
    assert_torch_agrees(graph)


def test_names_python_or_the_code_uses_are_renamed():
    graph, _ = graph_of(
        "(print + torch*L)**2 + abs(lambda_)", None, {"print": 1, "torch": 2, "L": 3}
    )
    code = torch_code(graph, "zh")
    assert "print_ = torch.tensor(1.0" in code and "torch_ = torch.tensor(2.0" in code
    assert "L_ = torch.tensor(3.0" in code
    assert_torch_agrees(graph)


def test_notebook_cells_are_a_heading_and_the_code_in_both_languages():
    text, data_text, point, rows = MODELS["logistic, seed 000, row 4"]
    graph, _ = graph_of(text, data_text, point, **rows)
    for language in ("zh", "en"):
        (kind, text), (code_kind, code) = torch_cells(graph, language)
        assert (kind, code_kind) == ("markdown", "code") and text.startswith("## ")
        (name, w, _), *_ = run(code)["nodes"]
        assert name == "w" and w.grad.item() == pytest.approx(graph.node("w").grad, rel=1e-12)
        book = backprop_notebook(graph, language)
        nbformat.validate(book)
        # under the lesson's title: a book's reader wants each page to open with its H1
        title, *cells = [c.source for c in book.cells]
        assert title.startswith("# ") and "\n" not in title and cells == [text, code]


def test_a_new_function_is_one_row_of_the_derivation_table(monkeypatch):
    """cosh, given only its row in OUTER_DERIVATIVES: a node, its local derivative, the check
    against the symbolic partial, and torch.cosh in the PyTorch code."""
    import sympy

    from derive.core.derivation import OUTER_DERIVATIVES
    from derive.core.parse import Loss
    from derive.core.symbols import symbol
    from tests.test_backprop import assert_backprop_is_right

    monkeypatch.setitem(OUTER_DERIVATIVES, sympy.cosh, ("cosh", sympy.sinh))
    w, b = symbol("w"), symbol("b")
    loss = Loss("cosh(w*b) + w", sympy.cosh(w * b) + w, ("w", "b"))
    graph = backprop(differentiate(loss), {"w": 0.7, "b": -1.3})
    (node,) = [n for n in graph.operations if n.op == "cosh"]
    assert node.locals[0].rule == "cosh"
    assert_backprop_is_right(graph, {})
    assert "torch.cosh(z1)" in torch_code(graph, "en")
    assert_torch_agrees(graph)
