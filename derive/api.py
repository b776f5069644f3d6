"""derive from Python: the same stages and records as the `derive` command, for notebooks and
scripts.

    import derive
    d = derive.differentiate("mean((w*x + b - y)**2)", data={"x": [1, 2, 3], "y": [2, 3, 4]})
    d                                         # in Jupyter: every partial, step by step
    run = derive.descend(d, start={"w": 0, "b": 0}, lr=0.1, steps=100)
    derive.behaviour(d, run).shape            # Shape.OVERSHOOTS
    derive.plot_loss(run, ax=ax)              # on your own axes; your backend is untouched
    derive.check(d, "w", "2*mean((w*x+b-y)*x)").correct
    derive.lesson(d, run, "lesson/")          # Markdown and HTML, zh and en

Records display themselves in Jupyter (Markdown with typeset math); each is the frozen record
the command line uses: `Derivation`, `Trace`, `Behaviour`, `Verdict`, `Landscape`, `Graph`.
Bad input raises `derive.DeriveError` with the same one-line message the command prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from derive.app.build import build_lesson
from derive.core.backprop import Graph
from derive.core.backprop import backprop as _backprop
from derive.core.check import Verdict, parse_answer
from derive.core.check import check as _check
from derive.core.derivation import Derivation
from derive.core.derivation import differentiate as _differentiate
from derive.core.descend import Trace
from derive.core.descend import descend as _descend
from derive.core.errors import DeriveError
from derive.core.facts import Behaviour, measure
from derive.core.landscape import Landscape
from derive.core.landscape import landscape as _landscape
from derive.core.optimizers import Optimizer
from derive.core.parse import Loss, parse_loss
from derive.core.schedules import parse_schedule
from derive.show import display
from derive.show.catalog import LANGUAGES

Data = Mapping[str, Sequence[float] | np.ndarray]


def differentiate(
    loss: str | Loss, data: Data | None = None, params: Sequence[str] | None = None
) -> Derivation:
    """Every partial derivative of `loss`, as a tree of named rules ending in textbook form.
    `data` names the columns that mean(...) and sum(...) range over."""
    if isinstance(loss, Loss):
        return _differentiate(loss)
    columns = tuple(_columns(data))
    return _differentiate(parse_loss(loss, params=tuple(params) if params else None, data=columns))


def descend(
    loss: str | Derivation,
    start: Mapping[str, float] | None = None,
    *,
    optimizer: str = "sgd",
    lr: float | None = None,
    steps: int | None = 20,
    epochs: int | None = None,
    data: Data | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    schedule: str | None = None,
    tol: float | None = None,
    worked_steps: int = 0,
    **options: object,
) -> Trace:
    """A run of torch.optim's `optimizer` (torch's option names as keywords: momentum=0.9,
    betas=(0.9, 0.99)...), with an optional learning-rate schedule ("cosine:T_max=50")."""
    derivation = loss if isinstance(loss, Derivation) else differentiate(loss, data)
    columns = _columns(data)
    if epochs is not None:
        steps = None
    return _descend(
        derivation,
        dict(start or {}),
        Optimizer.make(optimizer, lr=lr, **options),
        steps,
        epochs=epochs,
        data={name: columns[name] for name in derivation.loss.data},
        batch_size=batch_size,
        seed=seed,
        tol=tol,
        schedule=None if schedule is None else parse_schedule(schedule),
        worked_steps=worked_steps,
    )


def behaviour(derivation: Derivation, trace: Trace, data: Data | None = None) -> Behaviour:
    """What the run did, measured (the facts every behaviour word of a lesson comes from)."""
    return measure(derivation, trace, _columns(data))


def stationary_points(derivation: Derivation, data: Data | None = None) -> Landscape:
    """Where the gradient vanishes, each point classified, and what is proven about the
    minimum (global, unbounded below, never attained)."""
    return _landscape(derivation, _columns(data))


def check(derivation: Derivation, wrt: str, answer: str) -> Verdict:
    """Grade a hand-derived ∂L/∂wrt: right, or wrong with a diagnosis and a point."""
    if wrt not in derivation.loss.params:
        raise DeriveError(f"{wrt!r} is not a parameter ({', '.join(derivation.loss.params)})")
    return _check(derivation, wrt, parse_answer(answer, derivation))


def backprop(
    derivation: Derivation,
    at: Mapping[str, float] | None = None,
    data: Data | None = None,
    row: int | None = None,
) -> Graph:
    """The loss as a computational graph at `at`, forward and backward, checked against the
    symbolic partials."""
    return _backprop(derivation, dict(at or {}), _columns(data), row=row)


def lesson(
    derivation: Derivation,
    trace: Trace,
    out: str | Path,
    *,
    data: Data | None = None,
    languages: Sequence[str] = LANGUAGES,
    sections: Sequence[str] | None = None,
) -> list[Path]:
    """Write the lesson of this run into `out` (which must be new, empty, or a lesson derive
    wrote before): Markdown and standalone HTML with figures, per language."""
    columns = _columns(data)
    used = {name: columns[name] for name in derivation.loss.data}
    start = dict(zip(trace.param_names, map(float, trace.params[0]), strict=True))
    written = build_lesson(
        derivation,
        trace,
        Path(out),
        tuple(languages),
        data=used,
        start=start,
        sections=tuple(sections) if sections else None,
    )
    return [Path(out).parent / path for path in written]


def plot_loss(trace: Trace, ax=None):
    """The loss at each step, on `ax` (a new figure when None: returned, to display it)."""
    return display.plot_loss(trace, ax)


def plot_path(derivation: Derivation, trace: Trace, data: Data | None = None, ax=None):
    """The run's steps on the loss's curve (one parameter) or contour lines (two)."""
    return display.plot_path(derivation, trace, _columns(data), ax)


def _columns(data: Data | None) -> dict[str, np.ndarray]:
    """Columns of one length, as float arrays; names and values checked as --data checks them."""
    if not data:
        return {}
    columns = {}
    for name, values in data.items():
        array = np.asarray(values, dtype=float)
        if array.ndim != 1 or not len(array):
            raise DeriveError(f"data column {name!r} must be a non-empty list of numbers")
        if not np.all(np.isfinite(array)):
            raise DeriveError(f"data column {name!r} holds a value that is not finite")
        columns[str(name)] = array
    if len({len(values) for values in columns.values()}) != 1:
        raise DeriveError("the data columns differ in length")
    return columns


display.attach()
