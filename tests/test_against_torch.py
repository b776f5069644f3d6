"""When torch is installed (it is not a dependency), derive must agree with torch.optim itself."""

from __future__ import annotations

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.descend import Optimizer, descend
from derive.core.parse import parse_loss

torch = pytest.importorskip("torch")

CASES = [
    ("sgd", {"lr": 1e-4, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.01, "lr_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("adamw", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
]
TORCH = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW"}


@pytest.mark.parametrize(("name", "options"), CASES)
def test_rosenbrock_50_steps_as_torch_optim(name, options):
    trace = descend(
        differentiate(parse_loss("(1 - x)**2 + 100*(y - x**2)**2")),
        {"x": -1.5, "y": 2},
        Optimizer.make(name, **options),
        50,
    )
    p = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    optimizer = getattr(torch.optim, TORCH[name])([p], **options, foreach=False)
    for t in range(1, 51):
        optimizer.zero_grad()
        ((1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2).backward()
        optimizer.step()
        np.testing.assert_allclose(trace.params[t], p.detach().numpy(), rtol=1e-12)
