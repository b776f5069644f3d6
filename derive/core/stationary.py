"""What is known of a loss's shape: its stationary points, each with its kind, and what is
proven about its minimum. Made by `landscape` (exactly, where SymPy can) and `search`
(numerically); read by the lesson, the diff and the facts of a run."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sympy

MAX_POINTS = 60  # a landscape lists at most this many stationary points


class Kind(StrEnum):
    MINIMUM = "minimum"
    MAXIMUM = "maximum"
    SADDLE = "saddle"
    INFLECTION = "inflection"  # one parameter, L' = 0 but no extremum (x³ at 0)
    DEGENERATE = "degenerate"  # singular Hessian and the higher derivatives not settled


class Minimum(StrEnum):
    """What is known about the loss's minimum."""

    GLOBAL = "global"  # at least one point proven to be a global minimum
    FOUND = "found"  # minima found; none proven global
    UNBOUNDED_BELOW = "unbounded_below"  # proven: L → −∞
    NOT_ATTAINED = "not_attained"  # proven: inf L is approached at an end, reached nowhere
    AT_EDGE = "at_edge"  # proven: the least value is at a closed end of the domain (√w at 0)
    NONE_FOUND = "none_found"  # no minimum found, nothing proven


@dataclass(frozen=True)
class StationaryPoint:
    values: tuple[float, ...]
    kind: Kind
    loss: float
    exact: tuple[sympy.Expr, ...] | None = None  # when SymPy found it exactly
    curvature: tuple[float, ...] = ()  # Hessian eigenvalues, ascending (empty at a kink)
    kink: bool = False  # a corner of the loss where 0 is a subgradient (|w − 1| at 1)
    global_minimum: bool = False  # proven


@dataclass(frozen=True)
class Landscape:
    points: tuple[StationaryPoint, ...]
    complete: bool  # every stationary point over the whole domain is listed
    minimum: Minimum
    infimum: float | None = None  # inf L when proven (unbounded: −inf)
    # where inf L is approached when it is not attained: a parameter's value (±inf or a finite
    # end of the domain, one parameter) or a direction (several)
    approached: tuple[float, ...] | None = None
    quadratic: bool = False  # the Hessian is the same everywhere
    search_bound: float | None = None  # half-width of the numeric search, when one ran

    @property
    def minima(self) -> tuple[StationaryPoint, ...]:
        return tuple(p for p in self.points if p.kind is Kind.MINIMUM)
