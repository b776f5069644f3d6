"""Stage 3: Derivation → Trace: run gradient descent with torch.optim's update rules.

The optimizers are torch.optim's (core/optimizers.py), the learning-rate schedules
torch.optim.lr_scheduler's (core/schedules.py). The trace records, for t = 0..N, the parameters
after t updates, the loss and gradient there on the full data set, and the learning rate of the
next update.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from derive.core.derivation import Derivation
from derive.core.errors import DeriveError
from derive.core.hazards import Hazard, explain, kink_met
from derive.core.numeric import numeric, scalar_numeric
from derive.core.optimizers import QUANTITIES, UPDATE_RULES, Optimizer, Quantity, documented
from derive.core.schedules import Schedule

Status = Literal["max_steps", "converged", "diverged"]
Interval = Literal["step", "epoch"]


@dataclass(frozen=True)
class WorkedValue:
    quantity: Quantity  # torch's name for it, where torch holds it, its documented symbol
    value: np.ndarray  # shape () for one number of the step, (k,) for one per parameter


@dataclass(frozen=True)
class WorkedStep:
    """One update, θ_t → θ_{t+1}, torch's step t + 1: the optimizer's quantities after it, in
    the order torch computes them (the rate, the gradient used, moments, corrections...)."""

    step: int  # torch's state["step"] after the update: t + 1
    values: tuple[WorkedValue, ...]

    def __getitem__(self, name: str) -> np.ndarray:
        for worked in self.values:
            if worked.quantity.name == name:
                return worked.value
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(worked.quantity.name for worked in self.values)


@dataclass(frozen=True)
class Trace:
    """params[t], loss[t], grad[t], lr[t]: after t updates, t = 0..len-1; status says why it
    stopped.

    loss and grad are always on the full data set, whatever the batch of the update was. lr[t]
    is the rate of the update θ_t → θ_{t+1}, torch's scheduler.get_last_lr() at that moment
    (a schedule stepped per epoch gives the batches of an epoch one rate); constant without a
    schedule. The last entry's is the rate the schedule holds after the run.
    """

    param_names: tuple[str, ...]
    optimizer: Optimizer
    params: np.ndarray  # (T, k)
    loss: np.ndarray  # (T,)
    grad: np.ndarray  # (T, k)
    lr: np.ndarray  # (T,)
    status: Status
    batch_size: int | None = None
    seed: int | None = None
    hazard: Hazard | None = None  # why the run stopped early, or a non-differentiable point met
    schedule: Schedule | None = None  # with the arguments derive filled in (T_max, ...)
    schedule_interval: Interval = "step"  # scheduler.step() after every update, or every epoch
    momentum: np.ndarray | None = None  # (T,): the momentum (or β₁) a one-cycle schedule sets
    worked: tuple[WorkedStep, ...] = ()  # worked[t]: the update θ_t → θ_{t+1}, first ones only

    @property
    def steps(self) -> int:
        return len(self.loss) - 1


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
    schedule: Schedule | None = None,
    worked_steps: int = 0,
) -> Trace:
    """Run `steps` updates (or `epochs` passes over the data) from `start`.

    Full batch unless `batch_size` is smaller than the data: then each epoch draws a permutation
    from numpy.random.default_rng(seed) and takes batches in order, the last partial one kept.
    A `schedule` steps after every update when the run counts steps, after every epoch when it
    counts epochs (torch's scheduler.step() once per optimizer.step(), or once per epoch).
    `worked_steps`: record the optimizer's quantities in the first that many updates.
    """
    if worked_steps < 0:
        raise DeriveError(f"worked_steps must not be negative, not {worked_steps}")
    loss = derivation.loss
    names = loss.params
    p0 = [float(start.get(name, 0.0)) for name in names]
    columns = [np.asarray(data[name], dtype=float) for name in loss.data] if loss.data else []
    rows = len(columns[0]) if columns else 0
    if batch_size is not None and (not columns or batch_size >= rows):
        batch_size = None
    if batch_size is not None and seed is None:
        seed = 0
    interval: Interval = "step"
    updates_per_schedule_step = 1
    if steps is None:
        interval = "epoch"
        updates_per_schedule_step = -(-rows // batch_size) if batch_size else 1
        steps = (epochs or 0) * updates_per_schedule_step
    schedule, rates, momenta = _scheduled(optimizer, schedule, steps, updates_per_schedule_step)
    options_at = _options_at(optimizer, schedule, rates, momenta)
    options = optimizer.options
    plain = (
        optimizer.name == "sgd"
        and not any(options[k] for k in ("momentum", "weight_decay", "maximize"))
        and momenta is None
        and not worked_steps
    )
    if not columns and plain:
        run = _plain_on_floats(scalar_numeric(derivation), p0, rates, steps, tol)
        worked = ()
    else:
        run, worked = _vectorized(
            derivation,
            columns,
            p0,
            optimizer,
            options_at,
            steps,
            batch_size,
            seed,
            tol,
            worked_steps,
        )
    params, losses, grads, status = run
    params = _matrix(params, len(names))
    if status == "diverged":
        hazard = explain(derivation, params[-1], dict(data or {}))
    else:
        hazard = kink_met(derivation, params, data)
    length = len(losses)
    return Trace(
        param_names=names,
        optimizer=optimizer,
        params=params,
        loss=np.array(losses, dtype=float),
        grad=_matrix(grads, len(names)),
        lr=np.array(rates[:length], dtype=float),
        status=status,
        batch_size=batch_size,
        seed=seed,
        hazard=hazard,
        schedule=schedule,
        schedule_interval=interval,
        momentum=None if momenta is None else np.array(momenta[:length], dtype=float),
        worked=worked,
    )


def _scheduled(
    optimizer: Optimizer, schedule: Schedule | None, steps: int, per: int
) -> tuple[Schedule | None, list[float], list[float] | None]:
    """The schedule as resolved for this run, and the rate (and cycled momentum) of the update
    from each θ_t, t = 0..steps, when the scheduler steps once every `per` updates."""
    lr = float(optimizer.options["lr"])
    if schedule is None:
        return None, [lr] * (steps + 1), None
    count = steps // per + 1
    schedule = schedule.resolved(lr, count - 1)
    rates, momenta = schedule.rates(lr, count), schedule.momenta(count)
    if momenta is not None and optimizer.momentum_option is None:
        raise DeriveError(
            f"schedule {schedule.name} cycles the momentum, and {optimizer.name} has no "
            "momentum or betas (torch refuses it too): add cycle_momentum=false"
        )
    rates = [rates[t // per] for t in range(steps + 1)]
    if momenta is not None:
        momenta = [momenta[t // per] for t in range(steps + 1)]
    return schedule, rates, momenta


def _options_at(
    optimizer: Optimizer,
    schedule: Schedule | None,
    rates: list[float],
    momenta: list[float] | None,
) -> Callable[[int], Mapping[str, object]]:
    """The options of the update from θ_t: torch's param_groups[0] as the scheduler left it."""
    if schedule is None:
        return lambda t: optimizer.options
    key = optimizer.momentum_option

    def at(t: int) -> Mapping[str, object]:
        options = {**optimizer.options, "lr": rates[t]}
        if momenta is not None:
            beta2 = options["betas"][1] if key == "betas" else None
            options[key] = momenta[t] if key == "momentum" else (momenta[t], beta2)
        return options

    return at


def _matrix(rows: list, width: int) -> np.ndarray:
    """Rows of floats (lists from the float path, arrays from the vectorized one) → (T, width)."""
    flat = itertools.chain.from_iterable(rows)
    return np.fromiter(flat, dtype=float, count=len(rows) * width).reshape(len(rows), width)


def _vectorized(
    derivation, columns, p0, optimizer, options_at, steps, batch_size, seed, tol, worked_steps
):
    function = numeric(derivation)
    rows = [len(columns[0])] if columns else []
    rule = UPDATE_RULES[optimizer.name]
    rng = np.random.default_rng(seed) if batch_size else None
    batches: list[np.ndarray] = []
    state: dict = {}
    p = np.array(p0)
    params, losses, grads, worked = [], [], [], []
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
            options = options_at(t)
            update = rule(p, g, state, t + 1, options)
            if t < worked_steps:
                values = {"lr": options["lr"], **update.intermediates, **state}
                worked.append(_worked_step(optimizer.name, t + 1, values))
            p = update.params
    return (params, losses, grads, status), tuple(worked)


def _worked_step(name: str, step: int, values: dict[str, object]) -> WorkedStep:
    """The quantities of `name` present in this step (a momentum buffer only with momentum...)."""
    values |= documented(name, values)
    return WorkedStep(
        step,
        tuple(
            WorkedValue(quantity, np.array(values[quantity.name], dtype=float))
            for quantity in QUANTITIES[name]
            if quantity.name in values
        ),
    )


def _plain_on_floats(function, p0, rates, steps, tol):
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
            lr = rates[t]
            p = [value - lr * slope for value, slope in zip(p, g, strict=True)]
    return params, losses, grads, status


def _all_finite(values: list[float]) -> bool:
    return all(map(math.isfinite, values))
