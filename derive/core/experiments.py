"""The runs a lesson shows besides its main one: learning rates, optimizers, batch sizes, and
starts that lead to different minima. Every one is a real descent; nothing is assumed.

For a quadratic loss the learning-rate thresholds are exact: with λ the largest eigenvalue of
the (constant) Hessian, plain descent oscillates above 1/λ and diverges above 2/λ. Otherwise λ
is the curvature where the main run ended, and the behaviour of each run is measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from derive.core.derivation import Derivation, differentiate
from derive.core.descend import Optimizer, Trace, descend
from derive.core.landscape import StationaryPoint, stationary_points
from derive.core.numeric import hessian
from derive.core.parse import Loss, data_column

RATE_ROLES = (("small", 0.05), ("good", 0.5), ("oscillating", 1.5), ("diverging", 2.2))


@dataclass(frozen=True)
class Curvature:
    largest: float  # λ_max of the Hessian
    exact: bool  # True for a quadratic loss, whose Hessian is the same everywhere
    direction: tuple[float, ...]  # its eigenvector: where a too-large step overshoots first


@dataclass(frozen=True)
class Run:
    """One labelled run: `label` names it (a rate's role, an optimizer, a batch mode, a start)."""

    label: str
    trace: Trace
    behaviour: str  # "converges" | "slow" | "oscillates" | "diverges" | "escapes"


@dataclass(frozen=True)
class StartRun:
    start: tuple[float, ...]
    trace: Trace
    reached: StationaryPoint | None


@dataclass(frozen=True)
class Model:
    """What a loss over data fits: a prediction (regression) or a probability (classification)."""

    kind: str  # "regression" | "classification"
    output: sympy.Expr  # f(x) for regression, z(x) inside σ for classification, in plain symbols
    inputs: tuple[str, ...]
    target: str


@dataclass(frozen=True)
class Experiments:
    curvature: Curvature | None
    rates: tuple[Run, ...]
    optimizers: tuple[Run, ...]
    batches: tuple[Run, ...]
    points: tuple[StationaryPoint, ...]
    starts: tuple[StartRun, ...]
    model: Model | None
    variant: Derivation
    rows: int  # rows of data, 0 for a loss without data


def run_experiments(
    derivation: Derivation,
    main: Trace,
    start: Mapping[str, float],
    data: Mapping[str, np.ndarray],
    starts: tuple[tuple[float, ...], ...] | None = None,
) -> Experiments:
    """`starts` chooses where the landscape section's runs begin (else derive picks them)."""
    lr = float(main.optimizer.options["lr"])
    steps = max(main.steps, 20)
    curvature = _curvature(derivation, main, data)
    points = () if data else stationary_points(derivation)

    def run(optimizer: Optimizer, count: int = steps, **options) -> Trace:
        return descend(derivation, start, optimizer, count, data=data, **options)

    stiff = None if curvature is None else np.array(curvature.direction)
    rates = tuple(
        Run(role, trace, behaviour(trace, stiff))
        for role, rate in _rates(curvature, lr)
        for trace in [run(Optimizer.make("sgd", lr=rate))]
    )
    optimizers = tuple(
        Run(name, trace, behaviour(trace))
        for name, optimizer in _optimizers(lr)
        for trace in [run(optimizer)]
    )
    batches = tuple(
        Run(name, trace, behaviour(trace))
        for name, size, epochs in _batch_modes(data)
        for trace in [run(Optimizer.make("sgd", lr=lr), None, epochs=epochs, batch_size=size)]
    )
    return Experiments(
        curvature=curvature,
        rates=rates,
        optimizers=optimizers,
        batches=batches,
        points=points,
        starts=_starts(derivation, points, lr, max(steps, 100), starts),
        model=model_of(derivation) if data else None,
        variant=_variant(derivation),
        rows=len(next(iter(data.values()))) if data else 0,
    )


def behaviour(trace: Trace, direction: np.ndarray | None = None) -> str:
    """What a run did, measured on its own numbers. Oscillation is looked for along
    `direction` (the stiffest one, when known) or along each parameter."""
    if trace.status == "diverged" or trace.loss[-1] > 10 * max(trace.loss[0], 1e-300):
        return "diverges"
    size = np.linalg.norm(trace.params, axis=1)
    if trace.loss[-1] < trace.loss[0] and size[-1] > 100 * max(size[0], 1.0):
        return "escapes"  # the loss falls without bound: there is no minimum to reach
    moves = np.diff(trace.params, axis=0)
    if direction is not None:
        moves = moves @ direction[:, None]
    if len(moves) >= 4:
        turns = np.sum(moves[1:] * moves[:-1] < 0, axis=0) / (len(moves) - 1)
        if np.max(turns) > 0.5:
            return "oscillates"
    norms = np.linalg.norm(trace.grad, axis=1)
    if norms[0] > 0 and norms[-1] > 0.5 * norms[0]:
        return "slow"
    return "converges"


def _curvature(derivation: Derivation, main: Trace, data) -> Curvature | None:
    """λ_max: exact for a quadratic loss, else at the end of the main run (when it is a minimum)."""
    quadratic = all(_degree_at_most(component, derivation, 1) for component in derivation.gradient)
    point = main.params[0] if quadratic else main.params[-1]
    if not np.all(np.isfinite(point)):
        return None
    columns = [np.asarray(data[name], dtype=float) for name in derivation.loss.data]
    rows = [len(columns[0])] if columns else []
    with np.errstate(all="ignore"):
        matrix = np.array(hessian(derivation)(*point, *columns, *rows), dtype=float)
    if not np.all(np.isfinite(matrix)):
        return None
    eigenvalues = np.linalg.eigvalsh(matrix)  # ascending
    if eigenvalues.min() <= 0:
        return None  # no minimum here to converge to, so no threshold to state
    vectors = np.linalg.eigh(matrix)[1]
    return Curvature(float(eigenvalues.max()), quadratic, tuple(vectors[:, -1].tolist()))


def _degree_at_most(expr: sympy.Expr, derivation: Derivation, degree: int) -> bool:
    """Polynomial of at most this degree in the parameters, looking inside Σ over data."""
    body = expr.replace(sympy.Sum, lambda summand, *limits: summand)
    symbols = derivation.loss.symbols
    if not body.is_polynomial(*symbols):
        return False
    return body == 0 or sympy.Poly(body, *symbols).total_degree() <= degree


def _rates(curvature: Curvature | None, lr: float) -> list[tuple[str, float]]:
    if curvature is None:  # no curvature to go by: around the lesson's rate, measured
        factors = (0.1, 1, 5, 20)
        return [(role, _round(lr * f)) for (role, _), f in zip(RATE_ROLES, factors, strict=True)]
    return [(role, _round(factor / curvature.largest)) for role, factor in RATE_ROLES]


def _round(value: float) -> float:
    return float(f"{value:.2g}")


def _optimizers(lr: float) -> list[tuple[str, Optimizer]]:
    return [
        ("sgd", Optimizer.make("sgd", lr=lr)),
        ("momentum", Optimizer.make("sgd", lr=lr, momentum=0.9)),
        ("nesterov", Optimizer.make("sgd", lr=lr, momentum=0.9, nesterov=True)),
        ("adam", Optimizer.make("adam", lr=lr)),
    ]


def _batch_modes(data) -> list[tuple[str, int | None, int]]:
    """Full batch, stochastic (1 row) and mini-batch, over as many epochs as keep SGD to ~2000
    updates."""
    if not data:
        return []
    rows = len(next(iter(data.values())))
    if rows < 3:
        return []
    epochs = max(1, min(20, 2000 // rows))
    mini = max(2, min(32, rows // 4))
    return [("batch", None, epochs), ("stochastic", 1, epochs), ("minibatch", mini, epochs)]


def _starts(derivation, points, lr: float, steps: int, chosen=None) -> tuple[StartRun, ...]:
    """Starts that end in different places: the `chosen` ones, or around each maximum in 1-D,
    on and beside a saddle's stable direction in 2-D."""
    minima = [p for p in points if p.kind == "minimum"]
    saddles = [p for p in points if p.kind == "saddle"]
    names = derivation.loss.params
    if chosen:
        starts = [tuple(map(float, s)) for s in chosen]
    elif len(minima) < 2 and not saddles:
        return ()
    elif len(names) == 1:
        xs = [p.values[0] for p in points]
        picks = {float(np.floor(min(xs) - 0.5)), float(np.ceil(max(xs) + 0.5))}
        for p in points:
            if p.kind == "maximum":
                picks |= {round(p.values[0] - 0.5, 1), round(p.values[0] + 0.5, 1)}
        starts = [(x,) for x in sorted(picks)]
    elif len(names) == 2 and saddles:
        saddle = saddles[0]
        matrix = hessian(derivation)(*saddle.values)
        values, vectors = np.linalg.eigh(np.array(matrix, dtype=float))
        stable, unstable = vectors[:, np.argmax(values)], vectors[:, np.argmin(values)]
        on = np.array(saddle.values) + 2 * stable
        starts = [tuple(float(v) for v in on), tuple(float(v) for v in on + 0.01 * unstable)]
    else:
        return ()
    runs = []
    for start in starts:
        trace = descend(
            derivation, dict(zip(names, start, strict=True)), Optimizer.make("sgd", lr=lr), steps
        )
        runs.append(StartRun(start, trace, _nearest(trace.params[-1], points)))
    return tuple(runs)


def _nearest(end: np.ndarray, points) -> StationaryPoint | None:
    if not np.all(np.isfinite(end)):
        return None
    close = [p for p in points if np.linalg.norm(np.array(p.values) - end) < 1e-2]
    return close[0] if close else None


def _variant(derivation: Derivation) -> Derivation:
    """The exercise's variant: the same loss with an L2 penalty on its first parameter,
    kept as a sum of the two so that its derivation starts with the sum rule."""
    loss = derivation.loss
    penalty = sympy.Rational(1, 10) * loss.symbols[0] ** 2
    expr = sympy.Add(loss.expr, penalty, evaluate=False)
    text = f"{loss.text} + 0.1*{loss.params[0]}**2"
    return differentiate(Loss(text=text, expr=expr, params=loss.params, data=loss.data))


def model_of(derivation: Derivation) -> Model | None:
    """Recognise mean((f − y)²) (regression) and a cross-entropy of σ(z) (classification)."""
    loss = derivation.loss
    sums = list(loss.expr.atoms(sympy.Sum))
    if len(sums) != 1:
        return None
    body = sums[0].function
    plain = {data_column(name): sympy.Symbol(name, real=True) for name in loss.data}
    for target in loss.data:
        y = data_column(target)
        if body.is_Pow and body.exp == 2 and body.base.coeff(y) in (1, -1):
            sign = body.base.coeff(y)
            output = -sign * (body.base - sign * y)
            kind = "regression"
        elif body.has(y) and body.atoms(sympy.Function):
            inside = [
                f.args[0] for f in body.atoms(sympy.Function) if type(f).__name__ == "sigmoid"
            ]
            if len(set(inside)) != 1 or inside[0].has(y):
                continue
            output, kind = inside[0], "classification"
        else:
            continue
        if output.has(y):
            continue
        inputs = tuple(n for n in loss.data if output.has(data_column(n)))
        if 1 <= len(inputs) <= 2:
            return Model(kind, output.xreplace(plain), inputs, target)
    return None
