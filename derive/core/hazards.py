"""Why a number is not finite: which log, division or root, at which parameters and data row.

A descent that meets a non-finite loss or gradient stops; this says why in words a student can
act on: overflow (the steps grew without bound), or an operation undefined at those values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.numeric import ARRAY_FUNCTIONS
from derive.core.symbols import N_ROWS, data_column


@dataclass(frozen=True)
class Hazard:
    kind: str  # "overflow" | "log" | "division" | "root" | "abs"
    operation: sympy.Expr | None  # the operation: log(w), 1/(w - 1); None for an overflow
    params: Mapping[str, float]
    row: int | None = None  # 1-based row of the data, when one row is to blame
    row_values: Mapping[str, float] | None = None


def explain(derivation: Derivation, params: np.ndarray, data: Mapping[str, np.ndarray]) -> Hazard:
    """The reason L or its gradient is not finite at `params`."""
    loss = derivation.loss
    values = dict(zip(loss.params, map(float, params), strict=True))
    if not np.all(np.isfinite(params)) or np.max(np.abs(params)) > 1e150:
        return Hazard("overflow", None, values)
    for kind, operation, argument in _risky(derivation):
        bad = _offending_rows(argument, derivation, params, data, kind)
        if bad is None:
            continue
        if bad is True:
            return Hazard(kind, operation, values)
        row = {name: float(data[name][bad]) for name in loss.data}
        return Hazard(kind, operation, values, bad + 1, row)
    return Hazard("overflow", None, values)


def _risky(derivation: Derivation):
    """Operations that are undefined somewhere: logs, divisions, even roots, in L and ∇L."""
    expressions = [derivation.loss.expr, *derivation.gradient]
    seen = set()
    for expr in expressions:
        for node in sympy.preorder_traversal(expr):
            if node in seen or node.has(N_ROWS, sympy.Sum):
                continue  # 1/n and whole sums: not one operation at one row
            seen.add(node)
            if isinstance(node, sympy.log):
                yield "log", node, node.args[0]
            elif node.is_Pow and node.exp.is_negative:
                yield "division", node, node.base
            elif node.is_Pow and node.exp.is_Rational and not node.exp.is_Integer:
                yield "root", node, node.base


def _offending_rows(argument, derivation, params, data, kind):
    """True when the argument is bad with no row involved; the first bad row's index; or None."""
    loss = derivation.loss
    plain = argument.xreplace({data_column(n): sympy.Symbol(n, real=True) for n in loss.data})
    columns = [sympy.Symbol(n, real=True) for n in loss.data]
    function = sympy.lambdify([*loss.symbols, *columns], plain, modules=[ARRAY_FUNCTIONS, "numpy"])
    arrays = [np.asarray(data[n], dtype=float) for n in loss.data]
    with np.errstate(all="ignore"):
        value = np.asarray(function(*params, *arrays), dtype=float)
    bad = ~np.isfinite(value) | (
        value <= 0 if kind == "log" else value < 0 if kind == "root" else value == 0
    )
    if not bad.any():
        return None
    if value.ndim == 0 or not argument.has(sympy.Indexed):
        return True
    return int(np.argmax(bad))


def abs_at_zero(derivation: Derivation, trace_params: np.ndarray) -> Hazard | None:
    """|u| is not differentiable where u = 0; derive uses the subgradient 0 there: say so."""
    loss = derivation.loss
    if loss.data:
        return None
    for node in sympy.preorder_traversal(loss.expr):
        if isinstance(node, sympy.Abs):
            function = sympy.lambdify(
                loss.symbols, node.args[0], modules=[ARRAY_FUNCTIONS, "numpy"]
            )
            for point in trace_params:
                with np.errstate(all="ignore"):
                    if float(function(*point)) == 0.0:
                        values = dict(zip(loss.params, map(float, point), strict=True))
                        return Hazard("abs", node, values)
    return None
