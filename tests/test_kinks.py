"""At a kink (|u| at 0, relu at 0, a tie of max or min, where's boundary) derive uses the
derivative PyTorch's autograd uses; a run that lands on one says which value it used there.

The expected numbers come from torch itself and from plain loops written here.
"""

from __future__ import annotations

import numpy as np
import pytest

from derive.app.cli import main
from derive.core.derivation import Convention, differentiate
from derive.core.descend import Optimizer, descend
from derive.core.numeric import numeric, scalar_numeric
from derive.core.parse import parse_loss

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_gradient(function, *values):
    tensors = [torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for v in values]
    function(*tensors).backward()
    return [t.grad.item() for t in tensors]


def zero():
    return torch.zeros((), dtype=torch.float64)


KINKS = [
    # loss, point on its kink, the same function in torch
    ("relu(w)", (0.0,), torch.relu),
    ("abs(w)", (0.0,), torch.abs),
    ("|w - 1| + relu(b)", (1.0, 0.0), lambda w, b: torch.abs(w - 1) + torch.relu(b)),
    ("max(w, b)", (1.0, 1.0), torch.maximum),
    ("min(w, b)", (1.0, 1.0), torch.minimum),
    ("max(w, b, c)", (2.0, 2.0, 2.0), lambda *a: torch.stack(a).amax(0)),
    ("max(w, b, c)", (2.0, 2.0, 1.0), lambda *a: torch.stack(a).amax(0)),
    ("min(w, b, c)", (0.5, 0.5, 0.5), lambda *a: torch.stack(a).amin(0)),
    ("max(0, 1 - w)", (1.0,), lambda w: torch.maximum(zero(), 1 - w)),
    ("max(0, 1 - w)**2", (1.0,), lambda w: torch.maximum(zero(), 1 - w) ** 2),
    ("leaky_relu(w, 0.1)", (0.0,), lambda w: F.leaky_relu(w, 0.1)),
    ("leaky_relu(w)", (0.0,), F.leaky_relu),
    ("leaky_relu(w, a)", (0.0, 0.25), lambda w, a: F.prelu(w.reshape(1), a.reshape(1)).sum()),
    ("where(w >= 0, w, -w)", (0.0,), lambda w: torch.where(w >= 0, w, -w)),
    ("where(w > 0, w, -w)", (0.0,), lambda w: torch.where(w > 0, w, -w)),
    ("huber(w - 1)", (2.0,), lambda w: F.huber_loss(w - 1, zero(), delta=1.0)),
    ("huber(w, 2)", (-2.0,), lambda w: F.huber_loss(w, zero(), delta=2.0)),
    ("sign(w)*3 + w", (0.0,), lambda w: torch.sign(w) * 3 + w),
]


@pytest.mark.parametrize(("text", "point", "function"), KINKS, ids=[k[0] for k in KINKS])
def test_the_derivative_at_a_kink_is_torchs(text, point, function):
    loss = parse_loss(text)
    derivation = differentiate(loss)
    expected = torch_gradient(function, *point)
    _, *on_floats = scalar_numeric(derivation)(*point)
    _, *on_arrays = numeric(derivation)(*point)
    assert on_floats == expected
    assert [float(g) for g in on_arrays] == expected


def test_the_hinge_on_data_at_a_tie_is_torchs():
    x, y = [1.0, -1.0, 2.0], [1.0, -1.0, 1.0]
    derivation = differentiate(parse_loss("mean(max(0, 1 - y*(w*x + b)))", data=("x", "y")))
    w, b = 0.5, 0.5  # rows 1 and 2 sit on the kink: 1 − y(wx + b) = 0
    _, dw, db = numeric(derivation)(w, b, np.array(x), np.array(y), 3)

    def hinge(w, b):
        z = w * torch.tensor(x, dtype=torch.float64) + b
        return torch.maximum(zero(), 1 - torch.tensor(y, dtype=torch.float64) * z).mean()

    assert [float(dw), float(db)] == torch_gradient(hinge, w, b)


def hinge_by_hand(xs, ys, w, b, lr, steps):
    """Plain gradient descent on the hinge loss, the subgradient H(0) = ½ at a tie."""
    path, ties = [(w, b)], []
    for t in range(steps):
        gw = gb = 0.0
        for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
            u = 1 - y * (w * x + b)
            h = 1.0 if u > 0 else 0.0 if u < 0 else 0.5
            if u == 0:
                ties.append((t, k))
            gw += -h * y * x / len(xs)
            gb += -h * y / len(xs)
        w, b = w - lr * gw, b - lr * gb
        path.append((w, b))
    return path, ties


def test_hinge_descent_through_the_kink_equals_a_plain_loop():
    xs, ys = [1.0, 2.0], [1.0, -1.0]
    path, ties = hinge_by_hand(xs, ys, 0.0, 0.0, 0.5, 8)
    assert ties == [(2, 1)]  # the run does land on the kink: step 2, row 2
    derivation = differentiate(parse_loss("mean(max(0, 1 - y*(w*x + b)))", data=("x", "y")))
    trace = descend(
        derivation,
        {"w": 0.0, "b": 0.0},
        Optimizer.make("sgd", lr=0.5),
        8,
        data={"x": np.array(xs), "y": np.array(ys)},
    )
    assert trace.params.tolist() == [list(p) for p in path]
    hazard = trace.hazard
    assert (hazard.kind, hazard.convention, hazard.step, hazard.row) == (
        "kink",
        Convention.MAX,
        2,
        2,
    )
    assert hazard.row_values == {"x": 2.0, "y": -1.0}


def test_relu_descent_stops_at_the_kink_where_its_derivative_is_0():
    path, w = [2.0], 2.0
    for _ in range(6):  # plain loop: relu'(u) = 1 for u > 0, 0 for u ≤ 0 (torch.relu)
        w -= 0.5 * (1.0 if w - 1 > 0 else 0.0)
        path.append(w)
    assert path[2:] == [1.0] * 5
    derivation = differentiate(parse_loss("relu(w - 1)"))
    trace = descend(derivation, {"w": 2.0}, Optimizer.make("sgd", lr=0.5), 6)
    assert trace.params[:, 0].tolist() == path
    assert trace.hazard.convention is Convention.RELU and trace.hazard.step == 2


def test_abs_at_zero_is_still_reported_as_abs():
    trace = descend(
        differentiate(parse_loss("abs(w)")), {"w": 1.0}, Optimizer.make("sgd", lr=0.5), 3
    )
    assert trace.hazard.kind == "abs" and trace.hazard.convention is Convention.ABS


def test_descend_prints_the_value_used_at_the_kink(derive_cli):
    out = derive_cli("descend", "--loss", "relu(w - 1)", "--init", "w=2", "--lr", "0.5").out
    assert "relu(w − 1) is not differentiable at w = 1 (step 2)" in out
    assert "derive uses 0 there, as torch.relu does" in out


def test_a_kink_lesson_table_crosses_the_kink(tmp_path):
    code = main(
        [
            "lesson",
            "--loss",
            "mean(max(0, 1 - y*(w*x + b)))",
            "--data",
            "x=1,2; y=1,-1",
            "--init",
            "w=0,b=0",
            "--lr",
            "0.5",
            "--steps",
            "4",
            "--sections",
            "table",
            "--lang",
            "en",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    table = (tmp_path / "out" / "lesson.en.md").read_text()
    path, _ = hinge_by_hand([1.0, 2.0], [1.0, -1.0], 0.0, 0.0, 0.5, 4)
    # step 2 → 3 is the one through the kink: its gradient used H(0) = ½ for row 2
    (w2, b2), (w3, b3) = path[2], path[3]
    row = f"| 2 | {w2:g} | {b2:g} |".replace("-", "−")
    assert row in table
    assert f"= {w3:g} |".replace("-", "−") in table and f"= {b3:g} |" in table
