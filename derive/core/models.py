"""The models a loss over data fits, recognised from its form: a regression mean((f(x) − y)²) or
a logistic classification (a cross-entropy of σ(z)), and what a classification's data allow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.numeric import NUMPY, NUMPY_FUNCTIONS, numeric
from derive.core.symbols import data_column


@dataclass(frozen=True)
class Model:
    """What a loss over data fits: a prediction (regression) or a probability (classification)."""

    kind: Literal["regression", "classification"]
    output: sympy.Expr  # f(x) for regression, z(x) inside σ for classification, plain symbols
    inputs: tuple[str, ...]
    target: str


def model_of(derivation: Derivation) -> Model | None:
    """Recognise mean((f − y)²) (regression) and a function of σ(z) and y (classification)."""
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


def separating(derivation: Derivation, data: Mapping[str, np.ndarray], point) -> bool:
    """True when the loss is the logistic cross-entropy of σ(z), z linear in the parameters, and
    `point` classifies every row right (all margins positive). Then t·point for t → ∞ drives
    every term to 0: the infimum 0 is approached and, each term being positive, never reached.
    """
    model = model_of(derivation)
    if model is None or model.kind != "classification" or not data:
        return False
    loss = derivation.loss
    params = loss.symbols
    z = model.output
    if not (z.is_polynomial(*params) and sympy.Poly(z, *params).total_degree() == 1):
        return False
    if z.xreplace(dict.fromkeys(params, 0)) != 0:
        return False  # z(t·p) = t·z(p) needs z linear in the parameters, with no offset
    y = np.asarray(data[model.target], dtype=float)
    if not np.all((y == 0) | (y == 1)):
        return False
    if not _is_cross_entropy(derivation, data, model):
        return False
    columns = [sympy.Symbol(n, real=True) for n in model.inputs]
    margin = sympy.lambdify([*params, *columns], z, modules=[NUMPY_FUNCTIONS, NUMPY])
    with np.errstate(all="ignore"):
        values = np.asarray(
            margin(*point, *(np.asarray(data[n], dtype=float) for n in model.inputs)), dtype=float
        )
    signed = np.where(y == 1, values, -values)
    return bool(np.all(np.isfinite(signed)) and np.all(signed > 0))


def _is_cross_entropy(derivation: Derivation, data, model: Model) -> bool:
    """The loss equals mean(softplus(z) − y z) at three random points (or n times it, a sum)."""
    loss = derivation.loss
    rng = np.random.default_rng(0)
    columns = [np.asarray(data[name], dtype=float) for name in loss.data]
    rows = len(columns[0])
    params = loss.symbols
    inputs = [sympy.Symbol(n, real=True) for n in model.inputs]
    z_of = sympy.lambdify([*params, *inputs], model.output, modules=[NUMPY_FUNCTIONS, NUMPY])
    function = numeric(derivation)
    y = np.asarray(data[model.target], dtype=float)
    ratios = []
    for _ in range(3):
        point = rng.normal(size=len(params))
        value = float(function(*point, *columns, rows)[0])
        z = np.asarray(z_of(*point, *(np.asarray(data[n], dtype=float) for n in model.inputs)))
        reference = float(np.mean(np.logaddexp(0.0, z) - y * z))
        ratios.append(value / reference if reference else np.nan)
    ratios = np.array(ratios)
    return bool(
        np.all(np.isfinite(ratios))
        and (np.allclose(ratios, 1, rtol=1e-9) or np.allclose(ratios, rows, rtol=1e-9))
    )
