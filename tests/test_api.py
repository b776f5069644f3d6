"""The Python API (issue 14): the records the command uses, checked against computations
written here; figures on the caller's axes with the caller's backend; a notebook that uses it,
run in a real kernel, shows its records and its figure after plt.show()."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import derive

X = np.array([1.0, 2.0, 3.0, 4.0])
Y = np.array([2.0, 2.5, 4.5, 5.0])


def test_the_partials_are_the_slopes_of_the_loss():
    d = derive.differentiate("mean((w*x + b - y)**2)", data={"x": X, "y": Y})
    assert d.loss.params == ("w", "b")

    def loss(w, b):
        return np.mean((w * X + b - Y) ** 2)

    w, b, h = 0.3, -0.2, 1e-6
    run = derive.descend(d, start={"w": w, "b": b}, steps=0, data={"x": X, "y": Y})
    gw, gb = run.grad[0]
    assert run.loss[0] == pytest.approx(loss(w, b), rel=1e-14)
    assert gw == pytest.approx((loss(w + h, b) - loss(w - h, b)) / (2 * h), rel=1e-7)
    assert gb == pytest.approx((loss(w, b + h) - loss(w, b - h)) / (2 * h), rel=1e-7)


def test_a_run_is_plain_gradient_descent_by_default():
    run = derive.descend("(w-3)**2", start={"w": 0}, lr=0.1, steps=10)
    w, expected = 0.0, [0.0]
    for _ in range(10):
        w -= 0.1 * 2 * (w - 3)
        expected.append(w)
    assert np.allclose(run.params[:, 0], expected, rtol=0, atol=1e-15)


def test_momentum_follows_torch_s_rule():
    run = derive.descend("(w-3)**2", start={"w": 0}, lr=0.1, steps=5, momentum=0.9)
    w, buffer, expected = 0.0, None, [0.0]
    for _ in range(5):
        g = 2 * (w - 3)
        buffer = g if buffer is None else 0.9 * buffer + g
        w -= 0.1 * buffer
        expected.append(w)
    assert np.allclose(run.params[:, 0], expected, rtol=0, atol=1e-14)


def test_behaviour_and_check_and_bad_input():
    d = derive.differentiate("(w-3)**2")
    calm = derive.behaviour(d, derive.descend(d, start={"w": 0}, lr=0.1, steps=30))
    assert calm.shape.value == "monotone" and calm.crossings == 0
    swinging = derive.behaviour(d, derive.descend(d, start={"w": 0}, lr=0.9, steps=30))
    assert swinging.shape.value == "overshoots" and swinging.crossings == 30  # 1 − 2η = −0.8
    assert derive.check(d, "w", "2*w - 6").correct
    assert not derive.check(d, "w", "2*w - 3").correct
    with pytest.raises(derive.DeriveError, match="never closed"):
        derive.differentiate("(w-3")


def test_figures_go_on_the_caller_s_axes_and_leave_the_backend_alone():
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    d = derive.differentiate("(w-3)**2")
    run = derive.descend(d, start={"w": 0}, lr=0.1, steps=10)
    fig = Figure()
    ax = fig.add_subplot()
    derive.plot_loss(run, ax=ax)
    (line,) = [line for line in ax.get_lines() if len(line.get_ydata()) == 11]
    assert np.allclose(line.get_ydata(), (run.params[:, 0] - 3) ** 2)
    derive.plot_path(d, run, ax=fig.add_subplot())
    assert matplotlib.get_backend() == backend


PARTIAL = r"\frac{dL}{dw} = 2 \left(w - 3\right)"  # ∂L/∂w of (w − 3)², typeset
NOTEBOOK = [
    "import matplotlib.pyplot as plt\nimport derive",
    'd = derive.differentiate("(w-3)**2")\nd',
    'run = derive.descend(d, start={"w": 0}, lr=0.1, steps=10)\nderive.behaviour(d, run)',
    "fig, ax = plt.subplots()\nderive.plot_loss(run, ax=ax)\nplt.show()",
]


def test_a_notebook_using_the_api_shows_its_records_and_its_figure(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="nbclient comes with the dev extra")
    import nbformat

    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(code) for code in NOTEBOOK]
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [cell.outputs for cell in book.cells]
    derivation = next(o for o in outputs[1] if o.output_type == "execute_result")
    assert PARTIAL in derivation.data["text/markdown"]
    facts = next(o for o in outputs[2] if o.output_type == "execute_result")
    assert "monotone" in facts.data["text/markdown"]
    shown = [o for o in outputs[3] if o.output_type == "display_data"]
    assert shown and "image/png" in shown[0].data  # the figure appears after plt.show()
