"""What a run did, measured on its own numbers: the facts every behaviour word of a lesson is
chosen from.

Float noise is never behaviour. Each problem gets a `Resolution`: the size below which a
parameter, a loss or a gradient difference is rounding, scaled to the problem (its start, its
minimiser, its loss), and every comparison here goes through it. A run's shape is read from the
pattern of its iterates, so that once the pattern is clear the shape does not depend on how many
steps were asked for:

- monotone: never crosses the minimiser along any eigendirection of the Hessian there, and the
  loss never rises;
- overshoots: crosses it (or the loss rises), and the swings shrink, so the run settles;
- oscillating: keeps swinging without the swings shrinking;
- cycle: returns to the same points, period k;
- diverges: numbers that are no longer finite, or iterates running off without bound;
- stationary_start: the gradient is 0 where the run starts, so it never moves.

Crossings are counted along the eigendirections of the Hessian at the minimiser, and only where
the loss is close to its quadratic model (the Hessian within half of its value at the
minimiser): far from it, a curved valley is not an overshoot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.landscape import Kind, Landscape, Minimum, StationaryPoint, landscape, refine
from derive.core.models import separating
from derive.core.newton import NewtonTrace
from derive.core.numeric import hessian

CONVERGED = 1e-6  # within this fraction of the starting distance to the minimiser: converged
NOISE = 1e-12  # relative size of float noise in parameters and gradients
LOSS_NOISE = 1e-24  # ... in a loss near its minimum (a loss is quadratic in the distance)
SWING = 1e-6  # swings that change by less than this fraction neither grow nor shrink
LONGEST_CYCLE = 8


class Shape(StrEnum):
    MONOTONE = "monotone"
    OVERSHOOTS = "overshoots"
    OSCILLATING = "oscillating"
    CYCLE = "cycle"
    DIVERGES = "diverges"
    STATIONARY_START = "stationary_start"


@dataclass(frozen=True)
class Resolution:
    """Differences below these are float noise in this problem.

    A loss value is uncertain by the loss's own rounding, by what rounding the parameters does
    to it (‖∇L‖ times the parameters' floor), and, near a minimum where the gradient vanishes,
    by the quadratic term of that (`loss`).
    """

    params: float
    loss: float  # absolute, near a minimum
    gradient: float

    def loss_noise(self, a: float, b: float, slope: float = 0.0) -> float:
        return NOISE * max(abs(a), abs(b)) + self.loss + abs(slope) * self.params


@dataclass(frozen=True)
class Behaviour:
    shape: Shape
    converged: bool  # within CONVERGED × the starting distance of the minimiser at the end
    converged_at: int | None  # the first step from which it stays within that
    crossings: int  # steps that crossed the minimiser along some eigendirection
    crossings_by_direction: tuple[int, ...]  # along each eigendirection, stiffest last
    loss_increases: int  # steps that raised the loss (beyond noise)
    loss_decreases: int  # steps that lowered it
    final_distance: float | None  # to the minimiser
    start_distance: float | None
    minimiser: tuple[float, ...] | None
    minimiser_loss: float | None  # L at the minimiser
    unbounded_below: bool  # the run follows the loss down a direction where it has no bound
    infimum_not_attained: bool  # the loss falls toward a bound it never reaches
    period: int | None  # of a cycle
    final_gradient: float  # ‖∇L‖ at the end
    steps: int
    stop: str | None  # why a diverged run stopped: "overflow", "log", "division", "root"
    escaped_saddle: bool  # came near a saddle point and left it
    steps_shrink: bool  # every step shorter than the one before (beyond noise)
    tolerance: float | None  # the distance counted as converged

    @property
    def settled(self) -> bool:
        return self.shape in (Shape.MONOTONE, Shape.OVERSHOOTS) and self.converged


@dataclass(frozen=True)
class Problem:
    """What the facts of every run of one lesson are measured against."""

    derivation: Derivation
    landscape: Landscape
    data: Mapping[str, np.ndarray]
    resolution: Resolution
    start: tuple[float, ...]


def problem(
    derivation: Derivation,
    landscape: Landscape,
    data: Mapping[str, np.ndarray],
    start: tuple[float, ...],
    start_loss: float,
    start_gradient: float = 0.0,
) -> Problem:
    """The noise floors of a problem, from its start, its minima and its loss and gradient
    there."""
    origin = np.array(start, dtype=float)
    scale = float(np.linalg.norm(origin))
    loss_scale = abs(start_loss)
    slope = abs(start_gradient) if math.isfinite(start_gradient) else 0.0
    for point in landscape.minima:
        scale = max(scale, float(np.linalg.norm(point.values)))
        scale = max(scale, float(np.linalg.norm(origin - point.values)))
        loss_scale = max(loss_scale, abs(point.loss), abs(start_loss - point.loss))
    scale = max(scale, 1e-300)
    loss_scale = max(loss_scale, 1e-300)
    curvature = max(
        (max(map(abs, p.curvature), default=0.0) for p in landscape.minima), default=0.0
    )
    resolution = Resolution(
        params=NOISE * scale,
        loss=LOSS_NOISE * loss_scale,
        gradient=NOISE * max(slope, curvature * scale, 1e-300),
    )
    return Problem(derivation, landscape, dict(data), resolution, tuple(map(float, start)))


def behaviour(trace: Trace | NewtonTrace, setting: Problem) -> Behaviour:
    """The facts of one run (of any optimizer, or Newton's method)."""
    with np.errstate(all="ignore"):  # a diverging run's numbers overflow on the way
        return _behaviour(trace, setting)


def _behaviour(trace: Trace, setting: Problem) -> Behaviour:
    params, losses = trace.params, trace.loss
    placed = np.all(np.isfinite(params), axis=1)
    finite = placed & np.isfinite(losses)
    last = int(np.nonzero(finite)[0][-1]) if finite.any() else 0
    # where the parameters are still numbers, though the loss may have overflowed already
    located = int(np.nonzero(placed)[0][-1]) if placed.any() else 0
    end = params[last]
    resolution = setting.resolution
    minimum = _reference(trace, setting, end)
    pstar = None if minimum is None else np.array(minimum.values)
    moves = np.linalg.norm(np.diff(params[: last + 1], axis=0), axis=1)
    slopes = np.linalg.norm(trace.grad[: last + 1], axis=1)
    increases, decreases = _loss_changes(losses[: last + 1], slopes, resolution)
    final_gradient = float(np.linalg.norm(trace.grad[last])) if finite.any() else math.nan
    hazard = getattr(trace, "hazard", None)  # a Newton run has none
    stop = hazard.kind if trace.status == "diverged" and hazard else None
    if trace.status == "diverged" and stop is None:
        stop = "overflow"
    heads_off = _heads_off(params[: last + 1], losses[: last + 1], setting.landscape, resolution)
    unbounded = setting.landscape.minimum is Minimum.UNBOUNDED_BELOW and heads_off
    not_attained = heads_off and (
        setting.landscape.minimum is Minimum.NOT_ATTAINED
        or (minimum is None and separating(setting.derivation, setting.data, end))
    )
    common = {
        "loss_increases": increases,
        "loss_decreases": decreases,
        "minimiser": None if pstar is None else tuple(float(v) for v in pstar),
        "minimiser_loss": None if minimum is None else minimum.loss,
        "unbounded_below": unbounded,
        "infimum_not_attained": not_attained,
        "final_gradient": final_gradient,
        "steps": trace.steps,
        "stop": stop,
        "escaped_saddle": _escaped_saddle(params[: last + 1], setting.landscape),
        "steps_shrink": bool(np.all(np.diff(moves) <= resolution.params)),
    }
    start_gradient = float(np.linalg.norm(trace.grad[0])) if finite[0] else math.inf
    if (
        start_gradient <= resolution.gradient
        and float(np.max(moves, initial=0.0)) <= resolution.params
    ):
        distance = None if pstar is None else float(np.linalg.norm(params[0] - pstar))
        at_minimum = distance is not None and distance <= resolution.params
        return Behaviour(
            shape=Shape.STATIONARY_START,
            converged=at_minimum,
            converged_at=0 if at_minimum else None,
            crossings=0,
            crossings_by_direction=(),
            final_distance=distance,
            start_distance=distance,
            period=None,
            tolerance=None,
            **common,
        )
    if pstar is None:
        return _without_minimiser(trace, moves, increases, heads_off, common)
    distances = np.linalg.norm(params[: last + 1] - pstar, axis=1)
    tolerance = max(CONVERGED * distances[0], resolution.params)
    period = _period(params[: last + 1], resolution)
    if period is not None and float(distances[-2 * period :].max()) <= tolerance:
        period = None  # repeating within the tolerance: that is converged, not a cycle
    outside = np.nonzero(distances > tolerance)[0]
    converged_at = 0 if not len(outside) else int(outside[-1]) + 1
    converged = trace.status != "diverged" and period is None and converged_at <= last
    by_direction = _crossings(params[: located + 1], pstar, setting, resolution)
    crossings = int(np.sum(np.any(by_direction, axis=1))) if by_direction.size else 0
    if trace.status == "diverged":
        shape = Shape.DIVERGES
    elif period is not None:
        shape = Shape.CYCLE
    elif crossings == 0 and increases == 0:
        shape = Shape.MONOTONE
    else:
        crossed = np.nonzero(np.any(by_direction, axis=1))[0] if by_direction.size else []
        shape = _swings(distances, int(crossed[0]) + 1 if len(crossed) else 0)
    return Behaviour(
        shape=shape,
        converged=converged,
        converged_at=converged_at if converged else None,
        crossings=crossings,
        crossings_by_direction=tuple(int(n) for n in by_direction.sum(axis=0)),
        final_distance=float(distances[-1]) if trace.status != "diverged" else None,
        start_distance=float(distances[0]),
        period=period,
        tolerance=tolerance,
        **common,
    )


# -- the pieces -------------------------------------------------------------------------------


def _reference(trace: Trace, setting: Problem, end: np.ndarray) -> StationaryPoint | None:
    """The minimum this run is measured against: the nearest to where it ended among those the
    landscape knows, or the one Newton's method finds from there (losses over data)."""
    minima = setting.landscape.minima
    if not minima and setting.derivation.loss.data and np.all(np.isfinite(end)):
        found = refine(setting.derivation, setting.data, end)
        minima = (found,) if found is not None and found.kind is Kind.MINIMUM else ()
    if not minima:
        return None
    return min(minima, key=lambda p: float(np.linalg.norm(np.array(p.values) - end)))


def _loss_changes(losses: np.ndarray, slopes: np.ndarray, resolution: Resolution):
    """(steps that raised the loss, steps that lowered it), beyond noise."""
    before, after = losses[:-1], losses[1:]
    slope = np.maximum(slopes[:-1], slopes[1:])
    noise = (
        NOISE * np.maximum(np.abs(before), np.abs(after))
        + resolution.loss
        + slope * resolution.params
    )
    change = after - before
    return int(np.sum(change > noise)), int(np.sum(change < -noise))


def _crossings(params, pstar, setting: Problem, resolution: Resolution) -> np.ndarray:
    """(steps, k) booleans: step t crossed the minimiser along eigendirection j, where both ends
    lie in the quadratic region around it."""
    matrix = _hessian_at(setting, pstar)
    if matrix is None:
        return np.zeros((len(params) - 1, 0), dtype=bool)
    _, vectors = np.linalg.eigh(matrix)
    coordinates = (params - pstar) @ vectors
    local = _quadratic_region(params, pstar, matrix, setting)
    visible = np.abs(coordinates) > resolution.params
    flips = (np.sign(coordinates[1:]) != np.sign(coordinates[:-1])) & visible[1:] & visible[:-1]
    return flips & (local[1:] & local[:-1])[:, None]


def _quadratic_region(params, pstar, matrix, setting: Problem) -> np.ndarray:
    """Points within the radius inside which the Hessian stays within half of its value at the
    minimiser (everywhere, for a quadratic loss)."""
    if setting.landscape.quadratic:
        return np.ones(len(params), dtype=bool)
    distances = np.linalg.norm(params - pstar, axis=1)
    order = np.argsort(distances)
    probes = order[np.unique(np.linspace(0, len(order) - 1, 40).round().astype(int))]
    size = np.linalg.norm(matrix, 2)
    radius = math.inf
    for index in probes:
        other = _hessian_at(setting, params[index])
        if other is None or np.linalg.norm(other - matrix, 2) > 0.5 * size:
            radius = float(distances[index])
            break
    return distances < radius


def _hessian_at(setting: Problem, point) -> np.ndarray | None:
    loss = setting.derivation.loss
    columns = [np.asarray(setting.data[name], dtype=float) for name in loss.data]
    rows = [len(columns[0])] if columns else []
    with np.errstate(all="ignore"):
        entries = hessian(setting.derivation)(*point, *columns, *rows)
    matrix = np.array(entries, dtype=float)
    return matrix if np.all(np.isfinite(matrix)) else None


def _swings(distances: np.ndarray, first_swing: int) -> Shape:
    """Shrinking, steady or growing swings: the largest distance to the minimiser in the last
    third of the swinging against its first third (from the first crossing on: the approach
    before it is not a swing)."""
    swinging = distances[first_swing:] if len(distances) - first_swing >= 2 else distances
    third = max(1, -(-len(swinging) // 3))
    first, last = float(swinging[:third].max()), float(swinging[-third:].max())
    if last > first * (1 + SWING) and distances[-1] > distances[0]:
        return Shape.DIVERGES
    if last < first * (1 - SWING):
        return Shape.OVERSHOOTS
    return Shape.OSCILLATING


def _period(params: np.ndarray, resolution: Resolution) -> int | None:
    """The smallest k ≥ 2 with p(t) = p(t − k) over at least three periods at the end."""
    for k in range(2, LONGEST_CYCLE + 1):
        span = 3 * k
        if len(params) <= span:
            return None
        tail = params[-span - k :]
        if np.all(np.linalg.norm(tail[k:] - tail[:-k], axis=1) <= resolution.params):
            return k
    return None


def _heads_off(params, losses, landscape: Landscape, resolution: Resolution) -> bool:
    """The loss keeps falling while the run approaches no stationary point: over the last
    third of the run the loss fell and the distance to the nearest stationary point did not
    shrink (or there is none)."""
    if len(params) < 3:
        return False
    third = max(1, len(losses) // 3)
    earlier = len(losses) - 1 - third
    falling = losses[-1] < losses[earlier] - resolution.loss_noise(losses[-1], losses[earlier], 0.0)
    if not falling:
        return False
    if not landscape.points:
        return True
    targets = np.array([p.values for p in landscape.points])
    nearest = int(np.argmin(np.linalg.norm(targets - params[-1], axis=1)))
    now = float(np.linalg.norm(params[-1] - targets[nearest]))
    before = float(np.linalg.norm(params[earlier] - targets[nearest]))
    return now >= before


def _escaped_saddle(params, landscape: Landscape) -> bool:
    for saddle in (p for p in landscape.points if p.kind is Kind.SADDLE):
        distances = np.linalg.norm(params - np.array(saddle.values), axis=1)
        closest = int(np.argmin(distances))
        if 0 < distances[closest] <= 0.5 * distances[0] and distances[-1] >= 2 * distances[closest]:
            return True
    return False


def _without_minimiser(trace, moves, increases, heads_off, common) -> Behaviour:
    """No minimum to measure against, so nothing to overshoot: iterates running off with
    growing steps, or running off while the loss rises on the way, diverge; a loss that never
    rises is monotone; one that rises without the run heading off oscillates."""
    third = max(1, -(-len(moves) // 3))
    growing = len(moves) >= 2 and moves[-third:].max() > moves[:third].max() * (1 + SWING)
    if trace.status == "diverged" or growing or (increases and heads_off):
        shape = Shape.DIVERGES
    elif increases == 0:
        shape = Shape.MONOTONE
    else:
        shape = Shape.OSCILLATING
    return Behaviour(
        shape=shape,
        converged=False,
        converged_at=None,
        crossings=0,
        crossings_by_direction=(),
        final_distance=None,
        start_distance=None,
        period=None,
        tolerance=None,
        **common,
    )


def measure(derivation: Derivation, trace: Trace, data: Mapping[str, np.ndarray]) -> Behaviour:
    """The facts of one run on its own: its landscape, its noise floors, its behaviour."""
    start = tuple(float(v) for v in trace.params[0])
    shape = landscape(derivation, data, start)
    start_gradient = (
        float(np.linalg.norm(trace.grad[0])) if np.all(np.isfinite(trace.grad[0])) else 0.0
    )
    setting = problem(derivation, shape, data, start, float(trace.loss[0]), start_gradient)
    return behaviour(trace, setting)
