"""The documented JSON outputs (contracts other tools call; see the README): fields are only
ever added, never renamed or removed."""

from __future__ import annotations

import math
from collections.abc import Mapping

from derive.core.descend import Trace
from derive.core.facts import Behaviour
from derive.show.printing import to_unicode


def trace_json(trace: Trace, loss_text: str) -> dict:
    """The trace as the documented JSON object; non-finite numbers become null."""
    names = trace.param_names
    cycled = None
    if trace.momentum is not None:
        cycled = "beta1" if trace.optimizer.momentum_option == "betas" else "momentum"
    steps = []
    for t in range(len(trace.loss)):
        step = {
            "t": t,
            "params": {n: _finite(v) for n, v in zip(names, trace.params[t], strict=True)},
            "loss": _finite(trace.loss[t]),
            "grad": {n: _finite(v) for n, v in zip(names, trace.grad[t], strict=True)},
            "lr": _finite(trace.lr[t]),
        }
        if cycled:
            step[cycled] = _finite(trace.momentum[t])
        steps.append(step)
    return {
        "loss": loss_text,
        "params": list(names),
        "optimizer": {"name": trace.optimizer.name, **_plain(trace.optimizer.options)},
        "schedule": _schedule(trace),
        "batch_size": trace.batch_size,
        "seed": trace.seed,
        "status": trace.status,
        "stop": _stop(trace),
        "steps": steps,
    }


def _plain(arguments: Mapping[str, object]) -> dict:
    """Tuples (betas, etas, milestones) as JSON lists."""
    return {key: list(v) if isinstance(v, tuple) else v for key, v in arguments.items()}


def _schedule(trace: Trace) -> dict | None:
    schedule = trace.schedule
    if schedule is None:
        return None
    return {
        "name": schedule.name,
        "torch": schedule.torch_class,
        "arguments": _plain(schedule.arguments()),
        "interval": trace.schedule_interval,
    }


def _stop(trace: Trace) -> dict | None:
    """Why a diverged run stopped: overflow, or an operation undefined at those values."""
    hazard = trace.hazard
    if trace.status != "diverged" or hazard is None:
        return None
    return {
        "reason": hazard.kind,
        "expression": None
        if hazard.operation is None
        else to_unicode(hazard.operation, trace.param_names),
        "step": trace.steps,
        "params": {k: _finite(v) for k, v in hazard.params.items()},
        "row": hazard.row,
    }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def behaviour_json(facts: Behaviour, names: tuple[str, ...]) -> dict:
    """What the run did (the facts stage), as the trace's "behaviour" field."""
    minimiser = None
    if facts.minimiser is not None:
        minimiser = {n: _finite(v) for n, v in zip(names, facts.minimiser, strict=True)}
    return {
        "shape": facts.shape.value,
        "converged": facts.converged,
        "crossings": facts.crossings,
        "loss_increases": facts.loss_increases,
        "final_distance": None if facts.final_distance is None else _finite(facts.final_distance),
        "minimiser": minimiser,
        "unbounded_below": facts.unbounded_below,
        "converged_at": facts.converged_at,
        "period": facts.period,
        "infimum_not_attained": facts.infimum_not_attained,
        "escaped_saddle": facts.escaped_saddle,
        "final_gradient": _finite(facts.final_gradient),
    }
