"""Stage 3: Derivation → Trace: run gradient descent with torch.optim's update rules.

Each optimizer is its update rule as torch.optim documents it, with the same option names and
defaults, written in NumPy. The trace records, for t = 0..N, the parameters after t updates and
the loss and gradient there on the full data set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from derive.derivation import Derivation, numeric
from derive.errors import DeriveError

# torch.optim's defaults, except sgd's lr: torch requires one; the seeds' examples use 0.1.
DEFAULTS: dict[str, dict[str, object]] = {
    "sgd": {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adagrad": {
        "lr": 0.01,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
    },
    "rmsprop": {
        "lr": 0.01,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
    },
    "adam": {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
    },
    "adamw": {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.01,
        "amsgrad": False,
    },
}


@dataclass(frozen=True)
class Optimizer:
    name: str
    options: Mapping[str, object]

    @classmethod
    def make(cls, name: str = "sgd", **given: object) -> Optimizer:
        if name not in DEFAULTS:
            raise DeriveError(f"unknown optimizer {name!r} (known: {', '.join(DEFAULTS)})")
        options = dict(DEFAULTS[name])
        for key, value in given.items():
            if value is None:
                continue
            if key not in options:
                raise DeriveError(f"optimizer {name} has no option {key!r}")
            options[key] = value
        _validate(name, options)
        return cls(name, MappingProxyType(options))


def _validate(name: str, options: dict[str, object]) -> None:
    if not options["lr"] > 0:
        raise DeriveError(f"the learning rate must be positive, not {options['lr']}")
    if (
        name == "sgd"
        and options["nesterov"]
        and (options["momentum"] <= 0 or options["dampening"] != 0)
    ):
        raise DeriveError("nesterov needs a positive momentum and zero dampening (as in torch)")
    for beta in options.get("betas", ()):
        if not 0 <= beta < 1:
            raise DeriveError(f"betas must lie in [0, 1), not {beta}")


@dataclass(frozen=True)
class Trace:
    """params[t], loss[t], grad[t]: after t updates, t = 0..len-1; status says why it stopped."""

    param_names: tuple[str, ...]
    optimizer: Optimizer
    params: np.ndarray  # (T, k)
    loss: np.ndarray  # (T,)
    grad: np.ndarray  # (T, k)
    status: str  # "max_steps" | "converged" | "diverged"
    batch_size: int | None = None
    seed: int | None = None

    @property
    def steps(self) -> int:
        return len(self.loss) - 1


# -- update rules ------------------------------------------------------------------------------
# Each takes (p, g, state, t, options) with t = 1, 2, ... and returns the new p; state is a dict
# of arrays it owns.

UpdateRule = Callable[[np.ndarray, np.ndarray, dict, int, Mapping[str, object]], np.ndarray]


def _sgd(p, g, state, t, o):
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    if o["momentum"]:
        if t == 1:
            state["buf"] = g.copy()
        else:
            state["buf"] = o["momentum"] * state["buf"] + (1 - o["dampening"]) * g
        g = g + o["momentum"] * state["buf"] if o["nesterov"] else state["buf"]
    return p - o["lr"] * g


def _adagrad(p, g, state, t, o):
    if t == 1:
        state["sum"] = np.full_like(p, o["initial_accumulator_value"])
    clr = o["lr"] / (1 + (t - 1) * o["lr_decay"])
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    state["sum"] = state["sum"] + g * g
    return p - clr * g / (np.sqrt(state["sum"]) + o["eps"])


def _rmsprop(p, g, state, t, o):
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        state["grad_avg"] = np.zeros_like(p)
        state["buf"] = np.zeros_like(p)
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    alpha = o["alpha"]
    state["square_avg"] = alpha * state["square_avg"] + (1 - alpha) * g * g
    v = state["square_avg"]
    if o["centered"]:
        state["grad_avg"] = alpha * state["grad_avg"] + (1 - alpha) * g
        v = v - state["grad_avg"] ** 2
    avg = np.sqrt(v) + o["eps"]
    if o["momentum"] > 0:
        state["buf"] = o["momentum"] * state["buf"] + g / avg
        return p - o["lr"] * state["buf"]
    return p - o["lr"] * g / avg


def _adam(p, g, state, t, o, decoupled=False):
    if t == 1:
        state["m"] = np.zeros_like(p)
        state["v"] = np.zeros_like(p)
        state["v_max"] = np.zeros_like(p)
    if decoupled:
        p = p * (1 - o["lr"] * o["weight_decay"])
    elif o["weight_decay"]:
        g = g + o["weight_decay"] * p
    beta1, beta2 = o["betas"]
    state["m"] = beta1 * state["m"] + (1 - beta1) * g
    state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
    step_size = o["lr"] / (1 - beta1**t)
    bias_correction2_sqrt = math.sqrt(1 - beta2**t)
    v = state["v"]
    if o["amsgrad"]:
        state["v_max"] = np.maximum(state["v_max"], state["v"])
        v = state["v_max"]
    return p - step_size * state["m"] / (np.sqrt(v) / bias_correction2_sqrt + o["eps"])


def _adamw(p, g, state, t, o):
    return _adam(p, g, state, t, o, decoupled=True)


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
}


# -- the run -----------------------------------------------------------------------------------


def descend(
    derivation: Derivation,
    start: Mapping[str, float],
    optimizer: Optimizer,
    steps: int,
    data: Mapping[str, np.ndarray] | None = None,
    tol: float | None = None,
) -> Trace:
    """Full-batch descent from `start` for at most `steps` updates."""
    names = derivation.loss.params
    columns = [np.asarray(data[name], dtype=float) for name in derivation.loss.data]
    rows = [len(columns[0])] if columns else []
    function = numeric(derivation)

    def evaluate(*p):
        return function(*p, *columns, *rows)

    p = np.array([float(start.get(name, 0.0)) for name in names])
    rule = UPDATE_RULES[optimizer.name]
    state: dict = {}
    params, losses, grads = [], [], []
    status = "max_steps"
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            loss, *gradient = evaluate(*p)
            g = np.array(gradient, dtype=float)
            params.append(p)
            losses.append(float(loss))
            grads.append(g)
            if not (np.isfinite(loss) and np.all(np.isfinite(g)) and np.all(np.isfinite(p))):
                status = "diverged"
                break
            if tol is not None and float(np.linalg.norm(g)) <= tol:
                status = "converged"
                break
            if t < steps:
                p = rule(p, g, state, t + 1, optimizer.options)
    return Trace(
        param_names=names,
        optimizer=optimizer,
        params=np.array(params),
        loss=np.array(losses),
        grad=np.array(grads).reshape(len(losses), len(names)),
        status=status,
    )
