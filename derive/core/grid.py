"""The loss and a fitted model as plain functions of arrays, for drawing: a curve, a contour
grid, a prediction line. Over data, a grid of parameter values is evaluated a block at a time,
so that memory stays bounded however many rows there are."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.models import Model
from derive.core.numeric import NUMPY, NUMPY_FUNCTIONS, numeric
from derive.core.symbols import N_ROWS

CELLS = 4_000_000  # parameter points × rows evaluated at once (about 32 MB a temporary)
GRID_CELLS = 300_000_000  # parameter points × rows one contour may cost: a few seconds


def grid_side(loss: Callable[..., np.ndarray], finest: int) -> int:
    """Points along each axis of a contour grid: `finest` unless every point costs a pass over
    many rows (then fewer, at least 40: at 10⁶ rows, 40 × 40)."""
    rows = getattr(loss, "rows", 0)
    if not rows:
        return finest
    return int(np.clip(np.sqrt(GRID_CELLS / rows), 40, finest))


def loss_function(
    derivation: Derivation, data: Mapping[str, np.ndarray]
) -> Callable[..., np.ndarray]:
    """L at arrays of parameter values (a curve, a grid), on the full data set.

    When every sum over the data is a polynomial in the parameters (a squared error of a
    linear or polynomial model, with or without a penalty), the sums are taken once, monomial
    by monomial: Σᵢ (w xᵢ + b − yᵢ)² = w² Σx² + 2wb Σx − 2w Σxy + … The grid then costs the
    same at 10⁶ rows as at 10⁴ and the values are the same function. Otherwise (and on small
    data sets, where rows are cheap) the grid is evaluated over all rows, a block at a time."""
    if derivation.loss.data and len(data[derivation.loss.data[0]]) > MOMENT_ROWS:
        moments = _moment_form(derivation, data)
        if moments is not None:
            return moments
    function = numeric(derivation)
    columns = [np.asarray(data[name], dtype=float) for name in derivation.loss.data]
    rows = len(columns[0]) if columns else 0

    def loss(*params):
        shape = np.broadcast(*[np.asarray(p, dtype=float) for p in params]).shape
        flat = [np.broadcast_to(np.asarray(p, dtype=float), shape).ravel() for p in params]
        out = np.empty(int(np.prod(shape, dtype=int)))
        block = max(1, CELLS // max(rows, 1)) if columns else max(len(out), 1)
        with np.errstate(all="ignore"):
            for start in range(0, len(out), block):
                part = [p[start : start + block] for p in flat]
                if columns:  # a trailing axis to broadcast against the rows
                    part = [p[:, None] for p in part]
                value = function(*part, *columns, *([rows] if columns else []))[0]
                out[start : start + block] = np.broadcast_to(
                    np.asarray(value, dtype=float), (len(part[0]),)
                )
        return out.reshape(shape)

    loss.rows = rows  # each point costs a pass over this many rows (grid_side)
    return loss


MOMENT_TERMS = 64  # monomials per sum beyond which the sums are not taken term by term
# Below this many rows the grid is cheap row by row, and row by row it has no cancellation
# between large moments (w² Σx² − 2w Σxy + Σy² loses digits when the data sit far from 0).
MOMENT_ROWS = 1_000


def _moment_form(
    derivation: Derivation, data: Mapping[str, np.ndarray]
) -> Callable[..., np.ndarray] | None:
    """L with each Σᵢ over the data replaced by Σ over monomials m(θ)·Σᵢ cₘ(rowᵢ), or None
    when a sum is not a polynomial in the parameters (σ, log, |·| inside)."""
    loss = derivation.loss
    rows = len(np.asarray(data[loss.data[0]]))
    symbols = loss.symbols
    columns = {name: np.asarray(data[name], dtype=float) for name in loss.data}
    replaced = {}
    for total in loss.expr.atoms(sympy.Sum):
        body = total.function
        if not body.is_polynomial(*symbols):
            return None
        polynomial = sympy.Poly(sympy.expand(body), *symbols)
        if len(polynomial.terms()) > MOMENT_TERMS:
            return None
        value = sympy.Integer(0)
        for powers, coefficient in polynomial.terms():
            monomial = sympy.Mul(*(s**k for s, k in zip(symbols, powers, strict=True)))
            value += monomial * sympy.Float(_row_sum(coefficient, columns, rows), 17)
        replaced[total] = value
    reduced = loss.expr.xreplace(replaced).xreplace({N_ROWS: rows})
    if reduced.free_symbols - set(symbols):
        return None
    function = sympy.lambdify(symbols, reduced, modules=[NUMPY_FUNCTIONS, NUMPY])

    def loss_at(*params):
        shape = np.broadcast(*[np.asarray(p, dtype=float) for p in params]).shape
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(function(*params), dtype=float), shape)

    return loss_at


def _row_sum(coefficient: sympy.Expr, columns: Mapping[str, np.ndarray], rows: int) -> float:
    """Σᵢ of an expression of one row's cells (xᵢ², xᵢyᵢ, 1)."""
    cells = {e: sympy.Symbol(str(e.base), real=True) for e in coefficient.atoms(sympy.Indexed)}
    if not cells:
        return float(coefficient) * rows
    names = sorted({str(e.base) for e in cells})
    plain = coefficient.xreplace(cells)
    compute = sympy.lambdify([sympy.Symbol(n, real=True) for n in names], plain, modules=NUMPY)
    with np.errstate(all="ignore"):
        values = np.broadcast_to(compute(*(columns[n] for n in names)), (rows,))
    return float(np.sum(values))


def predictor(
    model: Model, param_names: tuple[str, ...], values: np.ndarray
) -> Callable[..., np.ndarray]:
    """The fitted model at the given parameters: f(x) for a regression, σ(z(x)) for a
    classification."""
    symbols = [sympy.Symbol(n, real=True) for n in param_names]
    inputs = [sympy.Symbol(n, real=True) for n in model.inputs]
    output = model.output if model.kind == "regression" else 1 / (1 + sympy.exp(-model.output))
    fitted = output.xreplace(dict(zip(symbols, map(float, values), strict=True)))
    function = sympy.lambdify(inputs, fitted, modules=[NUMPY_FUNCTIONS, NUMPY])

    def predict(*points):
        with np.errstate(all="ignore"):
            return np.broadcast_to(function(*points), np.shape(points[0]))

    return predict
