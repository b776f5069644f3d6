"""The numeric search for stationary points, where no exact solution is at hand: sign changes
of L' on a grid (one parameter), Newton's method from many starts at once (several), a linear
solve (a quadratic over data). Every root is confirmed at 40 digits, so a gradient that merely
underflows is not a root. Imported only when a search runs: NumPy is 0.13 s of a `diff`."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import mpmath
import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.functions import as_sympy
from derive.core.numeric import NUMPY, NUMPY_FUNCTIONS, numeric
from derive.core.numeric import hessian as numeric_hessian
from derive.core.stationary import MAX_POINTS, Kind, Landscape, Minimum, StationaryPoint

# derive's own functions (σ, softplus) for NumPy and for mpmath at 40 digits
FLOATS = [NUMPY_FUNCTIONS, NUMPY]
DIGITS_MODULES = [
    {
        "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
        "softplus": lambda z: mpmath.log1p(mpmath.exp(z)),
        "Heaviside": lambda u, at_zero=0.5: mpmath.mpf(1 if u > 0 else 0 if u < 0 else at_zero),
    },
    "mpmath",
]
SEARCH_BOUND = 10.0  # the numeric search, when one is needed, covers [−10, 10] in each parameter
DIGITS = 40  # precision of the Newton check of a numeric root


def refine(
    derivation: Derivation, data: Mapping[str, np.ndarray], point: Sequence[float]
) -> StationaryPoint | None:
    """The stationary point Newton's method reaches from `point`, checked to converge."""
    functions = Functions(derivation, data)
    found = functions.newton(np.array(point, dtype=float)[None, :])
    if not len(found):
        return None
    return functions.classify(found[0])


def one_parameter(expr, w) -> Landscape:
    """Sign changes of L' on a fine grid of [−10, 10], each checked by Newton at 40 digits."""
    loss = _lambdify(w, expr, FLOATS)
    slope = _lambdify(w, sympy.diff(expr, w), FLOATS)
    curve = _lambdify(w, sympy.diff(expr, w, 2), FLOATS)
    grid = np.linspace(-SEARCH_BOUND, SEARCH_BOUND, 4001)
    with np.errstate(all="ignore"):
        values = np.broadcast_to(np.asarray(slope(grid), dtype=float), grid.shape)
    starts = [grid[k] for k in np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) <= 0)[0]]
    check = Newton1(expr, w)
    found: list[float] = []
    for x in starts:
        root = check(x)
        if root is not None and not any(abs(root - f) <= 1e-9 * (1 + abs(f)) for f in found):
            found.append(root)
    points = []
    with np.errstate(all="ignore"):
        for root in sorted(found):
            value, second = float(loss(root)), float(curve(root))
            if not math.isfinite(value):
                continue
            kind = kind_from_curvature(np.array([second]))
            points.append(StationaryPoint((root,), kind, value, None, (second,)))
    minimum = Minimum.FOUND if any(p.kind is Kind.MINIMUM for p in points) else Minimum.NONE_FOUND
    return Landscape(tuple(points), False, minimum, search_bound=SEARCH_BOUND)


class Newton1:
    """Newton's method on L' at 40 digits: a root only where it converges."""

    def __init__(self, expr, w):
        self.slope = _lambdify(w, sympy.diff(expr, w), DIGITS_MODULES)
        self.curve = _lambdify(w, sympy.diff(expr, w, 2), DIGITS_MODULES)
        self.loss = _lambdify(w, expr, DIGITS_MODULES)

    def __call__(self, x: float) -> float | None:
        with mpmath.workdps(DIGITS):
            point = mpmath.mpf(x)
            try:
                for _ in range(100):
                    step = self.slope(point) / self.curve(point)
                    point -= step
                    if abs(step) <= mpmath.mpf(10) ** -25 * (1 + abs(point)):
                        value = self.loss(point)
                        if isinstance(value, mpmath.mpc) or not mpmath.isfinite(value):
                            return None
                        return float(point)
            except (ZeroDivisionError, ValueError, TypeError, OverflowError):
                return None
        return None


def several_parameters(derivation: Derivation, start) -> Landscape:
    """Newton's method from a grid of starts, vectorized; each root checked at 40 digits."""
    symbols = derivation.loss.symbols
    bound = SEARCH_BOUND
    if start is not None and len(start):
        bound = max(bound, 2 * float(np.max(np.abs(start))))
    k = len(symbols)
    per_axis = {2: 21, 3: 9, 4: 6}.get(k, 0)
    if per_axis:
        axes = [np.linspace(-bound, bound, per_axis)] * k
        starts = np.array(list(itertools.product(*axes)))
    else:
        starts = np.random.default_rng(0).uniform(-bound, bound, size=(1500, k))
    functions = Functions(derivation, {})
    points = [p for p in (functions.classify(r) for r in functions.newton(starts)) if p]
    points.sort(key=lambda p: p.values)
    minimum = Minimum.FOUND if any(p.kind is Kind.MINIMUM for p in points) else Minimum.NONE_FOUND
    return Landscape(tuple(points[:MAX_POINTS]), False, minimum, search_bound=bound)


def over_data(derivation: Derivation, data: Mapping[str, np.ndarray]) -> Landscape:
    """A loss quadratic in the parameters (least squares) over data: its one minimum by a
    linear solve, global when the Hessian is positive definite."""
    functions = Functions(derivation, data)
    origin = np.zeros(len(derivation.loss.params))
    matrix = functions.hessian_at(origin)
    eigenvalues = np.linalg.eigvalsh(matrix)
    scale = max(float(np.max(np.abs(eigenvalues))), 1e-300)
    if eigenvalues.min() < -1e-12 * scale:
        return Landscape((), True, Minimum.UNBOUNDED_BELOW, -math.inf, quadratic=True)
    if eigenvalues.min() <= 1e-12 * scale:
        return Landscape((), False, Minimum.NONE_FOUND, quadratic=True)  # a valley of minima
    solution = np.linalg.solve(matrix, -functions.gradient_at(origin))
    point = functions.classify(solution)
    if point is None:
        return Landscape((), False, Minimum.NONE_FOUND, quadratic=True)
    point = replace(point, global_minimum=True)
    return Landscape((point,), True, Minimum.GLOBAL, point.loss, quadratic=True)


class Functions:
    """L, ∇L and the Hessian, vectorized over points (rows), for Newton's method."""

    def __init__(self, derivation: Derivation, data: Mapping[str, np.ndarray]):
        self.derivation = derivation
        self.function = numeric(derivation)
        self.second = numeric_hessian(derivation)
        loss = derivation.loss
        self.columns = [np.asarray(data[name], dtype=float) for name in loss.data]
        self.rows = [len(self.columns[0])] if self.columns else []
        self.k = len(loss.params)
        self._precise = None

    def precise(self):
        """L, ∇L and the Hessian for mpmath (no data), lambdified once."""
        if self._precise is None:
            symbols = self.derivation.loss.symbols
            expr = as_sympy(self.derivation.loss.expr)
            self._precise = (
                _lambdify(symbols, expr, DIGITS_MODULES),
                [_lambdify(symbols, expr.diff(s), DIGITS_MODULES) for s in symbols],
                _lambdify(symbols, sympy.hessian(expr, symbols), DIGITS_MODULES),
            )
        return self._precise

    def _call(self, function, points: np.ndarray):
        params = [points[:, j] for j in range(self.k)]
        if self.columns:
            params = [p[:, None] for p in params]
        with np.errstate(all="ignore"):
            return function(*params, *self.columns, *self.rows)

    def values(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, *gradient = self._call(self.function, points)
        count = len(points)
        loss = _per_point(loss, count)
        gradient = np.stack([_per_point(g, count) for g in gradient], axis=1)
        return loss, gradient

    def hessians(self, points: np.ndarray) -> np.ndarray:
        entries = self._call(self.second, points)
        count = len(points)
        return np.array([[_per_point(e, count) for e in row] for row in entries]).transpose(2, 0, 1)

    def gradient_at(self, point: np.ndarray) -> np.ndarray:
        return self.values(point[None, :])[1][0]

    def hessian_at(self, point: np.ndarray) -> np.ndarray:
        return self.hessians(point[None, :])[0]

    def newton(self, starts: np.ndarray, iterations: int = 60) -> list[np.ndarray]:
        """Distinct points where Newton's method converged, from each start at once, each
        checked again at 40 digits."""
        points = np.array(starts, dtype=float)
        for _ in range(iterations):
            _, gradient = self.values(points)
            matrices = self.hessians(points)
            good = np.all(np.isfinite(gradient), axis=1) & np.all(
                np.isfinite(matrices), axis=(1, 2)
            )
            points, gradient, matrices = points[good], gradient[good], matrices[good]
            if not len(points):
                return []
            # the pseudo-inverse: a singular Hessian ((w + b + c)³⁰ is flat across its plane of
            # minima) gives the least step, not an error
            step = (np.linalg.pinv(matrices) @ gradient[:, :, None])[:, :, 0]
            points = points - step
        _, gradient = self.values(points)
        size = np.linalg.norm(gradient, axis=1)
        roots: list[np.ndarray] = []
        for candidate in distinct(points[np.isfinite(size) & (size < 1e-8)]):
            root = self._verified(candidate)
            if root is not None:
                roots.append(root)
        return distinct(roots)

    def _verified(self, point: np.ndarray) -> np.ndarray | None:
        """The root near `point` at 40 digits, or None. mpmath does not underflow (e^(−900) is
        not 0), so a float gradient that vanished by underflow is caught at the first step:
        Newton's method, started within float precision of a true root, moves by a
        float-sized step and converges; from a plateau it jumps."""
        if self.columns:  # over data: the float check is all there is
            return point if np.linalg.norm(self.gradient_at(point)) < 1e-7 else None
        value, gradient, second = self.precise()
        with mpmath.workdps(DIGITS):
            x = mpmath.matrix([mpmath.mpf(float(v)) for v in point])
            tolerance = mpmath.mpf(10) ** -25
            try:
                for iteration in range(40):
                    g = mpmath.matrix([f(*x) for f in gradient])
                    if all(v == 0 for v in g):
                        break  # an exact root (a degenerate one has a singular Hessian)
                    step = mpmath.lu_solve(mpmath.matrix(second(*x)), g)
                    size = mpmath.norm(step) / (1 + mpmath.norm(x))
                    if iteration == 0 and size > mpmath.mpf(10) ** -6:
                        return None
                    x -= step
                    if size <= tolerance:
                        break
                else:
                    return None
                result = value(*x)
            except (ZeroDivisionError, ValueError, TypeError, OverflowError, ArithmeticError):
                return None
            if isinstance(result, mpmath.mpc) or not mpmath.isfinite(result):
                return None
            return np.array([float(v) for v in x])

    def classify(self, point: Sequence[float]) -> StationaryPoint | None:
        point = np.asarray(point, dtype=float)
        loss, gradient = self.values(point[None, :])
        if not (np.isfinite(loss[0]) and np.all(np.isfinite(gradient))):
            return None
        curvature = np.linalg.eigvalsh(self.hessian_at(point))
        if not np.all(np.isfinite(curvature)):
            return None
        return StationaryPoint(
            values=tuple(float(v) for v in point),
            kind=kind_from_curvature(curvature),
            loss=float(loss[0]),
            curvature=tuple(float(c) for c in curvature),
        )


def distinct(points) -> list[np.ndarray]:
    kept: list[np.ndarray] = []
    for point in points:
        if not any(np.allclose(point, k, rtol=1e-7, atol=1e-9) for k in kept):
            kept.append(point)
    return kept


def kind_from_curvature(curvature: np.ndarray) -> Kind:
    tolerance = 1e-9 * max(1.0, float(np.max(np.abs(curvature))))
    if np.all(curvature > tolerance):
        return Kind.MINIMUM
    if np.all(curvature < -tolerance):
        return Kind.MAXIMUM
    if np.any(curvature > tolerance) and np.any(curvature < -tolerance):
        return Kind.SADDLE
    return Kind.DEGENERATE


def _per_point(value, count: int) -> np.ndarray:
    """One value per point: a term without data (λw²) keeps the data axis, of length 1."""
    value = np.asarray(value, dtype=float)
    shape = (count, 1) if value.ndim == 2 else (count,)
    return np.broadcast_to(value, shape).reshape(count)


def _lambdify(symbols, expr, modules):
    """A compiled function of `expr`; δ(u) (from differentiating |u| twice) is 0, as it is
    everywhere but at the kink itself, where no second derivative exists."""
    expr = expr.replace(sympy.DiracDelta, lambda *args: sympy.Integer(0))
    return sympy.lambdify(symbols, expr, modules=modules)


def curvatures(hessian: sympy.Matrix) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues (ascending) and eigenvectors (columns) of a constant Hessian."""
    return np.linalg.eigh(np.array(hessian.tolist(), dtype=float))
