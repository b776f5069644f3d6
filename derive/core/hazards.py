"""Why a number is not finite: which log, division or root, at which parameters and data row.

A descent that meets a non-finite loss or gradient stops; this says why in words a student can
act on: overflow (the steps grew without bound), or an operation undefined at those values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sympy

from derive.core.derivation import Convention, Derivation, Kink
from derive.core.functions import maximum
from derive.core.numeric import ARRAY_FUNCTIONS, NUMPY
from derive.core.symbols import N_ROWS, data_column

KINK_STEPS = 100  # over data, a run is looked at on a kink in its first steps and its last


@dataclass(frozen=True)
class Hazard:
    kind: str  # "overflow" | "log" | "division" | "root" | "abs" | "kink"
    operation: sympy.Expr | None  # the operation: log(w), 1/(w - 1); None for an overflow
    params: Mapping[str, float]
    row: int | None = None  # 1-based row of the data, when one row is to blame
    row_values: Mapping[str, float] | None = None
    convention: Convention | None = None  # at a kink: which derivative was used there
    step: int | None = None  # at a kink: the first step that sat on it


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
    function = sympy.lambdify([*loss.symbols, *columns], plain, modules=[ARRAY_FUNCTIONS, NUMPY])
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


def kink_met(
    derivation: Derivation, trace_params: np.ndarray, data: Mapping[str, np.ndarray] | None = None
) -> Hazard | None:
    """The first step at which the run sits exactly on a kink: |u| or relu at u = 0, a tie of
    max or min, the boundary of where's condition. Its derivative there is PyTorch's (the
    `convention`); a lesson says so. `kind` is "abs" for |u| (as before), "kink" otherwise.
    Over data, the first KINK_STEPS steps and the last are looked at, every row."""
    loss = derivation.loss
    steps = range(len(trace_params))
    if loss.data:
        steps = sorted({*range(min(KINK_STEPS, len(trace_params))), len(trace_params) - 1})
    columns = [np.asarray((data or {})[n], dtype=float) for n in loss.data]
    for kink in derivation.kinks:
        watched = _watched(kink, derivation)
        for t in steps:
            point = trace_params[t]
            with np.errstate(all="ignore"):
                values = [np.asarray(f(*point, *columns), dtype=float) for f in watched]
            on = _on_kink(kink, values)
            if not np.any(on):
                continue
            names = dict(zip(loss.params, map(float, point), strict=True))
            kind = "abs" if kink.convention is Convention.ABS else "kink"
            row = int(np.argmax(on)) if np.ndim(on) else None
            cells = (
                None
                if row is None
                else {n: float(c[row]) for n, c in zip(loss.data, columns, strict=True)}
            )
            return Hazard(
                kind,
                kink.node.xreplace(loss.values),
                names,
                None if row is None else row + 1,
                cells,
                convention=kink.convention,
                step=t,
            )
    return None


def _watched(kink: Kink, derivation: Derivation):
    """The kink's deciding expressions, compiled over (params..., data columns...)."""
    loss = derivation.loss
    plain = {data_column(n): sympy.Symbol(n, real=True) for n in loss.data}
    columns = [sympy.Symbol(n, real=True) for n in loss.data]
    arguments = [*loss.symbols, *columns]
    return [
        sympy.lambdify(
            arguments,
            expr.xreplace(loss.values).xreplace(plain),
            modules=[ARRAY_FUNCTIONS, NUMPY],
            dummify=True,
        )
        for expr in kink.at
    ]


def _on_kink(kink: Kink, values: list[np.ndarray]):
    """Where the run is on the kink: an argument at 0, or the largest (smallest) tied."""
    if kink.convention in (Convention.MAX, Convention.MIN):
        stacked = np.broadcast_arrays(*values)
        top = np.max(stacked, axis=0) if isinstance(kink.node, maximum) else np.min(stacked, axis=0)
        return np.sum([v == top for v in stacked], axis=0) >= 2
    return np.logical_or.reduce([v == 0 for v in values])
