"""Stage 3: Derivation → Trace: run gradient descent with torch.optim's update rules.

Each optimizer is its update rule as torch.optim documents it, with the same option names and
defaults, written in NumPy. The trace records, for t = 0..N, the parameters after t updates and
the loss and gradient there on the full data set.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from derive.core.derivation import Derivation
from derive.core.errors import DeriveError
from derive.core.hazards import Hazard, explain, kink_met
from derive.core.numeric import numeric, scalar_numeric

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
    """params[t], loss[t], grad[t]: after t updates, t = 0..len-1; status says why it stopped.

    loss and grad are always on the full data set, whatever the batch of the update was.
    """

    param_names: tuple[str, ...]
    optimizer: Optimizer
    params: np.ndarray  # (T, k)
    loss: np.ndarray  # (T,)
    grad: np.ndarray  # (T, k)
    status: str  # "max_steps" | "converged" | "diverged"
    batch_size: int | None = None
    seed: int | None = None
    hazard: Hazard | None = None  # why the run stopped early, or a non-differentiable point met

    @property
    def steps(self) -> int:
        return len(self.loss) - 1


# -- update rules ------------------------------------------------------------------------------
# Each takes (p, g, state, t, options) with t = 1, 2, ... and returns the new p; `state` is a
# dict of arrays it owns. The arithmetic follows torch.optim's implementation operation for
# operation (lerp, addcmul, addcdiv), so that results agree to the last bits.

UpdateRule = Callable[[np.ndarray, np.ndarray, dict, int, Mapping[str, object]], np.ndarray]


def _sgd(p, g, state, t, o):
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    if o["momentum"]:
        if t == 1:
            state["buf"] = g.copy()
        else:
            state["buf"] = state["buf"] * o["momentum"] + (1 - o["dampening"]) * g
        g = g + o["momentum"] * state["buf"] if o["nesterov"] else state["buf"]
    return p - o["lr"] * g


def _adagrad(p, g, state, t, o):
    if t == 1:
        state["sum"] = np.full_like(p, o["initial_accumulator_value"])
    clr = o["lr"] / (1 + (t - 1) * o["lr_decay"])
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    state["sum"] = state["sum"] + g * g
    return p - clr * (g / (np.sqrt(state["sum"]) + o["eps"]))


def _rmsprop(p, g, state, t, o):
    if t == 1:
        state["square_avg"] = np.zeros_like(p)
        state["grad_avg"] = np.zeros_like(p)
        state["buf"] = np.zeros_like(p)
    if o["weight_decay"]:
        g = g + o["weight_decay"] * p
    alpha = o["alpha"]
    state["square_avg"] = state["square_avg"] * alpha + (1 - alpha) * (g * g)
    if o["centered"]:
        state["grad_avg"] = state["grad_avg"] + (1 - alpha) * (g - state["grad_avg"])
        avg = np.sqrt(state["square_avg"] - state["grad_avg"] * state["grad_avg"]) + o["eps"]
    else:
        avg = np.sqrt(state["square_avg"]) + o["eps"]
    if o["momentum"] > 0:
        state["buf"] = state["buf"] * o["momentum"] + g / avg
        return p - o["lr"] * state["buf"]
    return p - o["lr"] * (g / avg)


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
    state["m"] = state["m"] + (1 - beta1) * (g - state["m"])
    state["v"] = state["v"] * beta2 + (1 - beta2) * (g * g)
    step_size = o["lr"] / (1 - beta1**t)
    bias_correction2_sqrt = math.sqrt(1 - beta2**t)
    v = state["v"]
    if o["amsgrad"]:
        state["v_max"] = np.maximum(state["v_max"], state["v"])
        v = state["v_max"]
    return p - step_size * (state["m"] / (np.sqrt(v) / bias_correction2_sqrt + o["eps"]))


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
    steps: int | None = None,
    *,
    epochs: int | None = None,
    data: Mapping[str, np.ndarray] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    tol: float | None = None,
) -> Trace:
    """Run `steps` updates (or `epochs` passes over the data) from `start`.

    Full batch unless `batch_size` is smaller than the data: then each epoch draws a permutation
    from numpy.random.default_rng(seed) and takes batches in order, the last partial one kept.
    """
    loss = derivation.loss
    names = loss.params
    p0 = [float(start.get(name, 0.0)) for name in names]
    columns = [np.asarray(data[name], dtype=float) for name in loss.data] if loss.data else []
    rows = len(columns[0]) if columns else 0
    if batch_size is not None and (not columns or batch_size >= rows):
        batch_size = None
    if batch_size is not None and seed is None:
        seed = 0
    if steps is None:
        batches_per_epoch = -(-rows // batch_size) if batch_size else 1
        steps = (epochs or 0) * batches_per_epoch
    plain = optimizer.name == "sgd" and not any(
        optimizer.options[k] for k in ("momentum", "weight_decay")
    )
    if not columns and plain:
        run = _plain_on_floats(scalar_numeric(derivation), p0, optimizer.options["lr"], steps, tol)
    else:
        run = _vectorized(derivation, columns, p0, optimizer, steps, batch_size, seed, tol)
    params, losses, grads, status = run
    params = _matrix(params, len(names))
    if status == "diverged":
        hazard = explain(derivation, params[-1], dict(data or {}))
    else:
        hazard = kink_met(derivation, params, data)
    return Trace(
        param_names=names,
        optimizer=optimizer,
        params=params,
        loss=np.array(losses, dtype=float),
        grad=_matrix(grads, len(names)),
        status=status,
        batch_size=batch_size,
        seed=seed,
        hazard=hazard,
    )


def _matrix(rows: list, width: int) -> np.ndarray:
    """Rows of floats (lists from the float path, arrays from the vectorized one) → (T, width)."""
    flat = itertools.chain.from_iterable(rows)
    return np.fromiter(flat, dtype=float, count=len(rows) * width).reshape(len(rows), width)


def _vectorized(derivation, columns, p0, optimizer, steps, batch_size, seed, tol):
    function = numeric(derivation)
    rows = [len(columns[0])] if columns else []
    rule = UPDATE_RULES[optimizer.name]
    rng = np.random.default_rng(seed) if batch_size else None
    batches: list[np.ndarray] = []
    state: dict = {}
    p = np.array(p0)
    params, losses, grads = [], [], []
    status = "max_steps"
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            loss, *gradient = function(*p, *columns, *rows)
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
            if t == steps:
                break
            if batch_size:
                if not batches:
                    order = rng.permutation(rows[0])
                    batches = [order[k : k + batch_size] for k in range(0, rows[0], batch_size)]
                batch = batches.pop(0)
                _, *batch_gradient = function(*p, *(c[batch] for c in columns), len(batch))
                g = np.array(batch_gradient, dtype=float)
            p = rule(p, g, state, t + 1, optimizer.options)
    return params, losses, grads, status


def _plain_on_floats(function, p0, lr, steps, tol):
    """Plain gradient descent on Python floats: the same arithmetic, without array overhead."""
    p = p0
    params, losses, grads = [], [], []
    status = "max_steps"
    for t in range(steps + 1):
        try:
            loss, *g = function(*p)
        except (OverflowError, ValueError, ZeroDivisionError):
            loss, g = math.nan, [math.nan] * len(p)
        params.append(p)
        losses.append(loss)
        grads.append(g)
        # One sum is finite only if every term is; the exact test runs only when it is not.
        if not math.isfinite(loss + sum(g) + sum(p)) and not _all_finite([loss, *g, *p]):
            status = "diverged"
            break
        if tol is not None and math.hypot(*g) <= tol:
            status = "converged"
            break
        if t < steps:
            p = [value - lr * slope for value, slope in zip(p, g, strict=True)]
    return params, losses, grads, status


def _all_finite(values: list[float]) -> bool:
    return all(map(math.isfinite, values))
