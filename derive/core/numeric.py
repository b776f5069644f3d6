"""Derivation → compiled functions: vectorized NumPy (and plain floats) for the descent.

Σ and mean over data become array reductions; subexpressions are shared (CSE); and a few
rewrites keep the numbers finite and the arrays few: log σ(u) through softplus, σ and softplus
through one exp(−|u|), sums written so that NumPy can update temporaries in place.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from derive.core.derivation import Derivation
from derive.core.functions import sigmoid, softplus
from derive.core.symbols import N_ROWS

SCALAR_FUNCTIONS = {
    "sigmoid": lambda z: 0.5 * (1.0 + math.tanh(0.5 * z)),
    "softplus": lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
}


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(−z) = inf for z < −709 gives σ = 0, as it should
        return 1.0 / (1.0 + np.exp(-z))


NUMPY_FUNCTIONS = {"sigmoid": _sigmoid, "softplus": lambda z: np.logaddexp(0.0, z)}


def _exp_neg_abs(u):
    e = np.abs(u)
    if np.ndim(e) == 0:
        return np.exp(-e)
    np.negative(e, out=e)  # in place: one array for three operations
    return np.exp(e, out=e)


def _sigmoid_given(u, e):
    top = np.where(u >= 0, 1.0, e)
    return np.divide(top, 1.0 + e, out=top) if np.ndim(top) else top / (1.0 + e)


ARRAY_FUNCTIONS = {
    **NUMPY_FUNCTIONS,
    "rowsum": lambda values: np.sum(values, axis=-1),
    "exp_neg_abs": _exp_neg_abs,
    "relu": lambda u: np.maximum(u, 0.0),
    "log1p": np.log1p,
    "sigmoid_given": _sigmoid_given,
}


def stable_logs(expr: sympy.Expr) -> sympy.Expr:
    """log σ(u) = −softplus(−u), log(1 − σ(u)) = −softplus(u), softplus(−u) = softplus(u) − u.

    Equal as functions, but computed literally log(1 − σ(40)) is log(0): the cross-entropy of a
    confident right answer would be NaN. These forms stay finite for every u.
    """
    u = sympy.Wild("u")
    expr = expr.replace(sympy.log(sigmoid(u)), -softplus(-u))
    expr = expr.replace(sympy.log(1 - sigmoid(u)), -softplus(u))
    return expr.replace(
        lambda e: isinstance(e, softplus) and e.args[0].could_extract_minus_sign(),
        # −v kept as one product, so v = b + w xᵢ stays whole and is computed once
        lambda e: softplus(-e.args[0]) + sympy.Mul(-1, -e.args[0], evaluate=False),
    )


class exp_neg_abs(sympy.Function):  # noqa: N801 - printed into NumPy code as a name
    """e^(−|u|): the one exponential that σ(u) and softplus(u) both need."""


class relu(sympy.Function):  # noqa: N801
    """max(u, 0)."""


class log1p(sympy.Function):  # noqa: N801
    """log(1 + e) for small e, without losing its digits."""


class sigmoid_given(sympy.Function):  # noqa: N801
    """σ(u) from u and e = e^(−|u|): 1/(1 + e) for u ≥ 0, e/(1 + e) below."""


def _collapsed(expr: sympy.Expr) -> sympy.Expr:
    """y softplus(−z) + (1 − y) softplus(z) → softplus(z) − y z, with z kept whole."""
    inner = {call.args[0]: sympy.Dummy() for call in expr.atoms(softplus)}
    expanded = sympy.expand(expr.xreplace(inner))
    return expanded.xreplace({d: u for u, d in inner.items()})


def _shared_exponentials(expr: sympy.Expr) -> sympy.Expr:
    """σ(u) and softplus(u) through one e = e^(−|u|) per u, which CSE then computes once.

    A cross-entropy needs both; computed apart they cost two exponentials and a logarithm.
    """
    replacements = {}
    for call in expr.atoms(sigmoid, softplus):
        u = call.args[0]
        e = exp_neg_abs(u)
        replacements[softplus(u)] = relu(u) + log1p(e)
        replacements[sigmoid(u)] = sigmoid_given(u, e)
    return expr.xreplace(replacements)


class rowsum(sympy.Function):  # noqa: N801 - printed into NumPy code as a name
    """Σ over the rows of the data arrays: numpy.sum of a vectorized expression."""


@functools.cache
def numeric(derivation: Derivation) -> Callable[..., list]:
    """One vectorized function (params..., data columns..., n) → [loss, ∂L/∂p₁, ...].

    Σ over data becomes a reduction over the arrays' last axis (no Python loop over rows), so
    parameters shaped (..., 1) evaluate a whole grid at once; subexpressions are shared.
    """
    loss = derivation.loss
    outputs = [_as_array_expression(e) for e in (loss.expr, *derivation.gradient)]
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    modules = [ARRAY_FUNCTIONS, "numpy"]
    printer = _ArrayPrinter(
        {
            "fully_qualified_modules": False,
            "inline": True,
            "allow_unknown_functions": True,
            "user_functions": {},
        }
    )
    return sympy.lambdify(
        arguments, outputs, modules=modules, cse=True, dummify=True, printer=printer
    )


class _ArrayPrinter(NumPyPrinter):
    """NumPy code with the terms of a sum in an order that lets NumPy work in place.

    `x*w + b - y` makes one temporary and updates it; `-y + x*w + b`, SymPy's order, makes
    three. On 10⁵ rows that is the difference between 1.4× and 1.1× hand-written NumPy.
    """

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: (term.could_extract_minus_sign(), term.is_number))


@functools.cache
def scalar_numeric(derivation: Derivation) -> Callable[..., list]:
    """(params...) → [loss, ∂L/∂p₁, ...] on Python floats, for losses without data.

    Python's `math` raises OverflowError or ValueError where NumPy would give inf or nan.
    """
    loss = derivation.loss
    outputs = [stable_logs(e) for e in (loss.expr, *derivation.gradient)]
    modules = [SCALAR_FUNCTIONS, "math"]
    return sympy.lambdify(loss.symbols, outputs, modules=modules, cse=True, dummify=True)


def _as_array_expression(expr: sympy.Expr) -> sympy.Expr:
    """xᵢ → the array x; Σᵢ f → rowsum(f), or n·f when f does not depend on the row."""

    def reduce(body, *limits):
        stable = stable_logs(body)
        if stable != body:
            body = _collapsed(stable)
        if body.has(sympy.Indexed):
            return rowsum(body)
        return N_ROWS * body

    expr = _shared_exponentials(stable_logs(expr.replace(sympy.Sum, reduce)))
    return expr.replace(
        lambda e: isinstance(e, sympy.Indexed), lambda e: sympy.Symbol(str(e.base), real=True)
    )


@functools.cache
def hessian(derivation: Derivation) -> Callable[..., list]:
    """(params..., data columns..., n) → the Hessian of L as nested lists, vectorized like
    `numeric`: the curvature that sets how large a learning rate may be."""
    loss = derivation.loss
    # d²|u|/du² = 2δ(u): zero everywhere but at the corner, where no Hessian exists anyway
    matrix = sympy.hessian(loss.expr, loss.symbols).replace(sympy.DiracDelta, lambda *a: 0)
    matrix = matrix.tolist()
    entries = [[_as_array_expression(entry) for entry in row] for row in matrix]
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    return sympy.lambdify(arguments, entries, modules=[ARRAY_FUNCTIONS, "numpy"], dummify=True)
