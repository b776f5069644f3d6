"""The shape of a loss: its stationary points (∇L = 0), each classified by the Hessian.

Used by `derive diff` and by lessons (local minima, saddles, how large a learning rate may be).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.numeric import NUMPY_FUNCTIONS
from derive.core.numeric import hessian as numeric_hessian

SEARCH_BOUND = 10.0  # numeric search for ∇L = 0 covers [−10, 10] in each parameter


@dataclass(frozen=True)
class StationaryPoint:
    """A point where ∇L = 0, classified by the eigenvalues of the Hessian there."""

    values: tuple[float, ...]
    kind: str  # "minimum" | "maximum" | "saddle" | "degenerate"
    loss: float
    exact: tuple[sympy.Expr, ...] | None = None  # when SymPy solved ∇L = 0 exactly


def stationary_points(derivation: Derivation) -> tuple[StationaryPoint, ...]:
    """Solve ∇L = 0: exactly for low-degree polynomial gradients, else numerically on
    [−SEARCH_BOUND, SEARCH_BOUND] (one or two parameters). Losses over data are not solved."""
    loss = derivation.loss
    symbols = loss.symbols
    if loss.data or len(symbols) > 3:
        return ()
    gradient = derivation.gradient
    hessian = numeric_hessian(derivation)
    value = sympy.lambdify(symbols, loss.expr, modules=[NUMPY_FUNCTIONS, "numpy"])
    exact = _exact_solutions(gradient, symbols)
    if exact is not None:
        points = [(tuple(float(v) for v in solution), solution) for solution in exact]
    elif len(symbols) <= 2:
        points = [(point, None) for point in _numeric_solutions(derivation, hessian)]
    else:
        return ()
    found = []
    with np.errstate(all="ignore"):
        for point, solution in sorted(points):
            curvature = np.linalg.eigvalsh(np.array(hessian(*point), dtype=float))
            found.append(StationaryPoint(point, _kind(curvature), float(value(*point)), solution))
    return tuple(found)


def _exact_solutions(gradient, symbols) -> list[tuple[sympy.Expr, ...]] | None:
    """Real solutions of a polynomial system of degree ≤ 2 (one variable: ≤ 4), else None."""
    limit = 4 if len(symbols) == 1 else 2
    for component in gradient:
        if not component.is_polynomial(*symbols):
            return None
        if component != 0 and sympy.Poly(component, *symbols).total_degree() > limit:
            return None
    if len(symbols) == 1 and sympy.Poly(gradient[0], *symbols).total_degree() > 2:
        return None  # cubic roots in radicals help no student: solve numerically instead
    solutions = sympy.solve(list(gradient), list(symbols), dict=True)
    real = []
    for solution in solutions:
        values = tuple(solution.get(s, s) for s in symbols)
        if any(v.free_symbols for v in values):
            return None  # a line or plane of solutions: not a list of points
        if all(v.is_real for v in values):
            real.append(values)
    return real


def _numeric_solutions(derivation: Derivation, hessian) -> list[tuple[float, ...]]:
    symbols = derivation.loss.symbols
    gradient = sympy.lambdify(
        symbols, list(derivation.gradient), modules=[NUMPY_FUNCTIONS, "numpy"]
    )
    if len(symbols) == 1:
        return [(x,) for x in _roots_1d(lambda x: gradient(x)[0])]
    starts = np.linspace(-SEARCH_BOUND, SEARCH_BOUND, 21)
    found: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for a in starts:
            for b in starts:
                point = _newton(gradient, hessian, np.array([a, b]))
                if point is not None and not any(np.allclose(point, f, atol=1e-7) for f in found):
                    found.append(point)
    return [tuple(float(v) for v in p) for p in found]


def _roots_1d(g: Callable[[float], float]) -> list[float]:
    """Sign changes of g on a fine grid, each refined by bisection to full precision."""
    grid = np.linspace(-SEARCH_BOUND, SEARCH_BOUND, 4001)
    with np.errstate(all="ignore"):
        values = np.array([float(g(x)) for x in grid])
    roots = [float(x) for x, v in zip(grid, values, strict=True) if v == 0]
    for k in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)[0]:
        low, high = float(grid[k]), float(grid[k + 1])
        for _ in range(100):
            middle = 0.5 * (low + high)
            if middle in (low, high):
                break
            if np.sign(g(middle)) == np.sign(g(low)):
                low = middle
            else:
                high = middle
        roots.append(0.5 * (low + high))
    return sorted(roots)


def _newton(gradient, hessian, point: np.ndarray) -> np.ndarray | None:
    for _ in range(60):
        g = np.array(gradient(*point), dtype=float)
        if not np.all(np.isfinite(g)):
            return None
        if np.linalg.norm(g) < 1e-12:
            break
        try:
            point = point - np.linalg.solve(np.array(hessian(*point), dtype=float), g)
        except np.linalg.LinAlgError:
            return None
    good = np.linalg.norm(np.array(gradient(*point), dtype=float)) < 1e-9
    inside = np.all(np.abs(point) <= SEARCH_BOUND)
    return point if good and inside else None


def _kind(curvature: np.ndarray, tolerance: float = 1e-9) -> str:
    if np.all(curvature > tolerance):
        return "minimum"
    if np.all(curvature < -tolerance):
        return "maximum"
    if np.any(curvature > tolerance) and np.any(curvature < -tolerance):
        return "saddle"
    return "degenerate"
