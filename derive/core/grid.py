"""The loss and a fitted model as plain functions of arrays, for drawing: a curve, a contour
grid, a prediction line. Over data, a grid of parameter values is evaluated a block at a time,
so that memory stays bounded however many rows there are."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.models import Model
from derive.core.numeric import NUMPY_FUNCTIONS, numeric

CELLS = 4_000_000  # parameter points × rows evaluated at once (about 32 MB a temporary)


def loss_function(
    derivation: Derivation, data: Mapping[str, np.ndarray]
) -> Callable[..., np.ndarray]:
    """L at arrays of parameter values (a curve, a grid), on the full data set."""
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

    return loss


def predictor(
    model: Model, param_names: tuple[str, ...], values: np.ndarray
) -> Callable[..., np.ndarray]:
    """The fitted model at the given parameters: f(x) for a regression, σ(z(x)) for a
    classification."""
    symbols = [sympy.Symbol(n, real=True) for n in param_names]
    inputs = [sympy.Symbol(n, real=True) for n in model.inputs]
    output = model.output if model.kind == "regression" else 1 / (1 + sympy.exp(-model.output))
    fitted = output.xreplace(dict(zip(symbols, map(float, values), strict=True)))
    function = sympy.lambdify(inputs, fitted, modules=[NUMPY_FUNCTIONS, "numpy"])

    def predict(*points):
        with np.errstate(all="ignore"):
            return np.broadcast_to(function(*points), np.shape(points[0]))

    return predict
