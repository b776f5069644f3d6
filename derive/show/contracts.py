"""The documented JSON outputs (contracts other tools call; see the README): fields are only
ever added, never renamed or removed."""

from __future__ import annotations

import math

from derive.core.descend import Trace
from derive.core.facts import Behaviour
from derive.show.printing import to_unicode


def trace_json(trace: Trace, loss_text: str) -> dict:
    """The trace as the documented JSON object; non-finite numbers become null."""
    names = trace.param_names
    options = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in trace.optimizer.options.items()
    }
    return {
        "loss": loss_text,
        "params": list(names),
        "optimizer": {"name": trace.optimizer.name, **options},
        "batch_size": trace.batch_size,
        "seed": trace.seed,
        "status": trace.status,
        "stop": _stop(trace),
        "steps": [
            {
                "t": t,
                "params": {n: _finite(v) for n, v in zip(names, trace.params[t], strict=True)},
                "loss": _finite(trace.loss[t]),
                "grad": {n: _finite(v) for n, v in zip(names, trace.grad[t], strict=True)},
            }
            for t in range(len(trace.loss))
        ],
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
