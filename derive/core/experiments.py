"""The runs a lesson shows besides its main one, each measured by the facts stage: learning
rates chosen from the landscape, optimizers, batch sizes, and starts that end in different
places. Every one is a real descent; nothing is assumed.

Learning rates come from the curvature at the minimum. For a quadratic loss the Hessian is the
same everywhere and the thresholds are exact: along an eigendirection with eigenvalue λ, one
step multiplies the distance to the minimiser by 1 − ηλ, so plain descent stays on one side
below 1/λ_max, overshoots between 1/λ_max and 2/λ_max, and diverges above; the best fixed step
2/(λ_min + λ_max) makes the slowest contraction, max |1 − ηλᵢ|, as small as it can be. For
other losses the same holds near a minimum, where the loss is close to its quadratic model;
without a minimum there is no threshold, and the rates are taken around the lesson's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from derive.core.backprop import Graph, backprop
from derive.core.derivation import Derivation, differentiate
from derive.core.descend import Trace, descend
from derive.core.errors import DeriveError
from derive.core.facts import Behaviour, Problem, behaviour, problem
from derive.core.landscape import Kind, Landscape, StationaryPoint, landscape
from derive.core.models import Model, model_of
from derive.core.newton import NewtonTrace, newton
from derive.core.numeric import hessian
from derive.core.optimizers import Optimizer
from derive.core.parse import Loss

RATE_STEPS = 20  # at least this many steps for the comparison runs
START_STEPS = 100  # ... and for the runs from other starts


@dataclass(frozen=True)
class Curvature:
    """The Hessian's eigenvalues at the minimiser (everywhere, when `exact`)."""

    eigenvalues: tuple[float, ...]  # ascending, all positive
    exact: bool
    at: tuple[float, ...]

    @property
    def largest(self) -> float:
        return self.eigenvalues[-1]

    @property
    def smallest(self) -> float:
        return self.eigenvalues[0]

    @property
    def condition(self) -> float:
        return self.largest / self.smallest

    @property
    def best_step(self) -> float:
        """2/(λ_min + λ_max): the fixed step with the smallest worst contraction."""
        return 2 / (self.smallest + self.largest)

    def contraction(self, learning_rate: float) -> float:
        """max |1 − ηλᵢ|: the factor by which the slowest direction's distance shrinks."""
        return max(abs(1 - learning_rate * value) for value in self.eigenvalues)


@dataclass(frozen=True)
class Run:
    """One labelled run: `label` names it (an optimizer, a batch mode)."""

    label: str
    trace: Trace
    behaviour: Behaviour


@dataclass(frozen=True)
class StartRun:
    start: tuple[float, ...]
    trace: Trace
    behaviour: Behaviour
    reached: StationaryPoint | None  # the stationary point it ended at, within tolerance
    basin: StationaryPoint | None  # one parameter: the minimum of the valley it started in


@dataclass(frozen=True)
class Experiments:
    problem: Problem
    main: Behaviour
    plain: bool  # the lesson's optimizer is plain gradient descent (its rate may be scheduled)
    curvature: Curvature | None
    rates: tuple[Run, ...]  # plain descent at rates from the curvature; else the lesson's own
    rate_steps: int
    optimizers: tuple[Run, ...]
    batches: tuple[Run, ...]
    starts: tuple[StartRun, ...]
    model: Model | None
    variant: Derivation
    rows: int  # rows of data, 0 for a loss without data
    graph: Graph | None = None  # the loss as a computational graph at the start, when worth it
    constant: Run | None = None  # with a schedule: the same run at the constant base rate
    newton: NewtonTrace | None = None  # Newton's method from the same start
    newton_behaviour: Behaviour | None = None

    @property
    def landscape(self) -> Landscape:
        return self.problem.landscape


def run_experiments(
    derivation: Derivation,
    main: Trace,
    start: Mapping[str, float],
    data: Mapping[str, np.ndarray],
    starts: tuple[tuple[float, ...], ...] | None = None,
) -> Experiments:
    """`starts` chooses where the landscape section's runs begin (else derive picks them)."""
    names = derivation.loss.params
    origin = tuple(float(start.get(name, 0.0)) for name in names)
    shape = landscape(derivation, data, origin)
    setting = problem(
        derivation, shape, data, origin, float(main.loss[0]), float(np.linalg.norm(main.grad[0]))
    )
    main_behaviour = behaviour(main, setting)
    learning_rate = float(main.optimizer.options["lr"])
    steps = max(main.steps, RATE_STEPS)
    curvature = _curvature(derivation, setting, main_behaviour)
    plain = is_plain(main)

    def run(optimizer: Optimizer, count: int | None = steps, **options) -> Trace:
        return descend(derivation, start, optimizer, count, data=data, **options)

    def at_rate(rate: float) -> Optimizer:
        if plain:
            return Optimizer.make("sgd", lr=rate)
        return Optimizer.make(main.optimizer.name, **{**main.optimizer.options, "lr": rate})

    rates = tuple(
        Run(main.optimizer.name, trace, behaviour(trace, setting))
        for rate in _rates(curvature if plain else None, learning_rate)
        for trace in [run(at_rate(rate))]
    )
    optimizers = tuple(
        Run(name, trace, behaviour(trace, setting))
        for name, optimizer in _optimizers(learning_rate, main.optimizer)
        for trace in [run(optimizer)]
    )
    constant = None
    if main.schedule is not None:
        steady = run(main.optimizer, main.steps)
        constant = Run("constant", steady, behaviour(steady, setting))
    stepped = _newton(derivation, start, data, steps)
    batches = tuple(
        Run(name, trace, behaviour(trace, setting))
        for name, size, epochs in _batch_modes(data)
        for trace in [
            run(Optimizer.make("sgd", lr=learning_rate), None, epochs=epochs, batch_size=size)
        ]
    )
    return Experiments(
        problem=setting,
        main=main_behaviour,
        plain=plain,
        curvature=curvature,
        rates=rates,
        rate_steps=steps,
        optimizers=optimizers,
        batches=batches,
        starts=_starts(derivation, setting, learning_rate, max(steps, START_STEPS), starts),
        model=model_of(derivation) if data else None,
        variant=_variant(derivation),
        rows=len(next(iter(data.values()))) if data else 0,
        graph=_graph(derivation, start, data),
        constant=constant,
        newton=stepped,
        newton_behaviour=None if stepped is None else behaviour(stepped, setting),
    )


PRIMITIVE = {"add", "mul", "pow", "sum"}  # arithmetic: a graph of only these shows no chain


def _graph(derivation: Derivation, start, data) -> Graph | None:
    """The computational graph at the start (on the first row, or on all of at most four),
    when the loss composes a function with at least four operations in all: a chain of
    derivatives worth following node by node."""
    rows = len(next(iter(data.values()))) if data else 0
    try:
        graph = backprop(derivation, dict(start), data, row=1 if rows > 4 else None)
    except DeriveError:
        return None  # undefined or not differentiable at the start: no graph to show
    operations = graph.operations
    composed = any(node.op not in PRIMITIVE for node in operations)
    return graph if composed and len(operations) >= 4 else None


def is_plain(trace: Trace) -> bool:
    """Plain gradient descent, the optimizer the thresholds 1/λ, 2/λ are about (at a constant
    rate; a schedule only changes the rate)."""
    options = trace.optimizer.options
    extras = ("momentum", "weight_decay", "nesterov", "maximize", "dampening")
    return trace.optimizer.name == "sgd" and not any(options.get(key) for key in extras)


def _newton(derivation: Derivation, start, data, steps: int) -> NewtonTrace | None:
    """Newton's method from the same start, when the loss has a Hessian there."""
    stepped = newton(derivation, start, min(steps, 50), data=data)
    if stepped.steps == 0:
        return None  # no step could be taken: a singular or undefined Hessian at the start
    return stepped


def _curvature(derivation: Derivation, setting: Problem, main: Behaviour) -> Curvature | None:
    """The eigenvalues of the Hessian at the minimum the main run is measured against (at any
    point, for a quadratic loss), when they are all positive; otherwise None."""
    if main.minimiser is None:
        return None
    point = main.minimiser
    minimum = next((p for p in setting.landscape.minima if p.values == point), None)
    if minimum is not None and minimum.kink:
        return None  # a corner: no second derivative there
    loss = derivation.loss
    columns = [np.asarray(setting.data[name], dtype=float) for name in loss.data]
    rows = [len(columns[0])] if columns else []
    with np.errstate(all="ignore"):
        matrix = np.array(hessian(derivation)(*point, *columns, *rows), dtype=float)
    if not np.all(np.isfinite(matrix)):
        return None
    eigenvalues = np.linalg.eigvalsh(matrix)
    if eigenvalues.min() <= 1e-12 * max(1.0, float(np.abs(eigenvalues).max())):
        return None
    return Curvature(
        tuple(float(v) for v in eigenvalues), setting.landscape.quadratic, tuple(point)
    )


def _rates(curvature: Curvature | None, learning_rate: float) -> list[float]:
    """Four rates: from the curvature, one below every threshold, the best fixed step, one
    between 1/λ_max and 2/λ_max, one above 2/λ_max; without a curvature, around the lesson's
    own rate. Rounded to two digits, as a teacher would write them."""
    if curvature is None:
        return sorted({_round(learning_rate * f) for f in (0.1, 1, 5, 20)})
    largest = curvature.largest
    candidates = [0.1 / largest, curvature.best_step, 1.5 / largest, 2.2 / largest]
    if curvature.condition < 1.2:  # the best step is 1/λ: one between is the overshooting one
        candidates = [0.1 / largest, 1 / largest, 1.5 / largest, 2.2 / largest]
    rates: list[float] = []
    for value in sorted(_round(c) for c in candidates):
        if not rates or value > rates[-1] * 1.05:
            rates.append(value)
    return rates


def _round(value: float) -> float:
    return float(f"{value:.2g}")


def _optimizers(learning_rate: float, own: Optimizer) -> list[tuple[str, Optimizer]]:
    """Plain descent, momentum, Nesterov and Adam at the lesson's rate, and the lesson's own
    optimizer when it is none of these."""
    compared = [
        ("sgd", Optimizer.make("sgd", lr=learning_rate)),
        ("momentum", Optimizer.make("sgd", lr=learning_rate, momentum=0.9)),
        ("nesterov", Optimizer.make("sgd", lr=learning_rate, momentum=0.9, nesterov=True)),
        ("adam", Optimizer.make("adam", lr=learning_rate)),
    ]
    if all(own != optimizer for _, optimizer in compared):
        compared.append(("own", own))
    return compared


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


def _starts(
    derivation: Derivation, setting: Problem, learning_rate: float, steps: int, chosen=None
) -> tuple[StartRun, ...]:
    """Starts that end in different places: the `chosen` ones, or around each maximum in 1-D,
    on and beside a saddle's stable direction in 2-D. Only starts where the loss is defined."""
    points = setting.landscape.points
    minima = [p for p in points if p.kind is Kind.MINIMUM]
    saddles = [p for p in points if p.kind is Kind.SADDLE]
    names = derivation.loss.params
    if setting.data:
        return ()
    if chosen:
        starts = [tuple(map(float, s)) for s in chosen]
    elif len(names) == 1 and len(minima) >= 2:
        xs = [p.values[0] for p in points]
        picks = {float(np.floor(min(xs) - 0.5)), float(np.ceil(max(xs) + 0.5))}
        for p in points:
            if p.kind is Kind.MAXIMUM:
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
    for point in starts:
        trace = descend(
            derivation,
            dict(zip(names, point, strict=True)),
            Optimizer.make("sgd", lr=learning_rate),
            steps,
        )
        if trace.status == "diverged" and trace.steps == 0:
            if chosen:
                where = ", ".join(f"{n} = {v:g}" for n, v in zip(names, point, strict=True))
                raise DeriveError(f"the start {where} lies where the loss is not defined")
            continue  # the loss is undefined there: not a start
        facts = behaviour(trace, setting)
        runs.append(
            StartRun(point, trace, facts, _reached(trace, points, facts), _basin(point, points))
        )
    return tuple(runs)


def _reached(trace: Trace, points, facts: Behaviour) -> StationaryPoint | None:
    """The stationary point the run ended at: its minimiser when it converged, or any
    stationary point within a millionth of the distance the run started from."""
    end = trace.params[-1]
    if not np.all(np.isfinite(end)):
        return None
    start = trace.params[0]
    for point in points:
        target = np.array(point.values)
        scale = max(float(np.linalg.norm(start - target)), 1e-300)
        if float(np.linalg.norm(end - target)) <= 1e-6 * scale:
            return point
    return None


def _basin(start: tuple[float, ...], points) -> StationaryPoint | None:
    """One parameter: the minimum between the maxima on either side of the start."""
    if len(start) != 1:
        return None
    x = start[0]
    walls = sorted(p.values[0] for p in points if p.kind is not Kind.MINIMUM)
    left = max((w for w in walls if w < x), default=-np.inf)
    right = min((w for w in walls if w > x), default=np.inf)
    inside = [p for p in points if p.kind is Kind.MINIMUM and left < p.values[0] < right]
    return inside[0] if len(inside) == 1 else None


def _variant(derivation: Derivation) -> Derivation:
    """The exercise's variant: the same loss with an L2 penalty on its first parameter,
    kept as a sum of the two so that its derivation starts with the sum rule."""
    loss = derivation.loss
    penalty = sympy.Rational(1, 10) * loss.symbols[0] ** 2
    expr = sympy.Add(loss.expr, penalty, evaluate=False)
    text = f"{loss.text} + 0.1*{loss.params[0]}**2"
    return differentiate(Loss(text=text, expr=expr, params=loss.params, data=loss.data))
