"""Derivation → compiled functions: vectorized NumPy (and plain floats) for the descent.

Σ and mean over data become array reductions; subexpressions are shared (CSE); and a few
rewrites keep the numbers finite and the arrays few: log σ(u) through softplus, σ and softplus
through one exp(−|u|), log softmax through logsumexp, logsumexp and softmax shifted by their
largest argument, sums written so that NumPy can update temporaries in place. At a kink the
value is PyTorch's (see functions.py): relu'(0) = 0, ties of max split evenly, and so on.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import reduce

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from derive.core.derivation import Derivation
from derive.core.errors import DeriveError
from derive.core.functions import log1p, logsumexp, relu, sigmoid, softmax, softplus
from derive.core.limits import GRADIENT_OPERATIONS
from derive.core.symbols import N_ROWS


def _scalar_logsumexp(*z: float) -> float:
    top = max(z)
    if math.isinf(top):
        return top
    return top + math.log(math.fsum(math.exp(v - top) for v in z))


def _scalar_softmax(k: int, *z: float) -> float:
    top = max(z)
    shifted = [math.exp(v - top) for v in z]
    return shifted[k - 1] / math.fsum(shifted)


def _scalar_tie_share(mine: float, *others: float) -> float:
    top = max(others)
    if mine != top:
        return 1.0 if mine > top else 0.0
    return 1.0 / (1 + sum(o == mine for o in others))


SCALAR_FUNCTIONS = {
    "sigmoid": lambda z: 0.5 * (1.0 + math.tanh(0.5 * z)),
    "softplus": lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
    "relu": lambda u: max(u, 0.0),
    "leaky_relu": lambda z, a: z if z > 0 else a * z,
    "huber": lambda u, d: 0.5 * u * u if abs(u) <= d else d * (abs(u) - 0.5 * d),
    "maximum": max,
    "minimum": min,
    "tie_share": _scalar_tie_share,
    "logsumexp": _scalar_logsumexp,
    "softmax": _scalar_softmax,
    "cbrt": math.cbrt,
}


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(−z) = inf for z < −709 gives σ = 0, as it should
        return 1.0 / (1.0 + np.exp(-z))


def _logsumexp(*z):
    """log Σ exp(zⱼ) = m + log Σ exp(zⱼ − m), m the largest: no overflow for large zⱼ."""
    top = reduce(np.maximum, z)
    with np.errstate(invalid="ignore"):
        return top + np.log(sum(np.exp(v - top) for v in z))


def _softmax(k, *z):
    """exp(zₖ − m) / Σ exp(zⱼ − m): the same quotient, finite for any logits."""
    top = reduce(np.maximum, z)
    shifted = [np.exp(v - top) for v in z]
    return shifted[int(k) - 1] / sum(shifted)


def _tie_share(mine, *others):
    """1 above the others, 0 below one of them, 1/k when k arguments tie (torch.amax)."""
    top = reduce(np.maximum, others)
    ties = sum(np.equal(other, mine) for other in others)
    return np.where(mine > top, 1.0, np.where(mine < top, 0.0, 1.0 / (1.0 + ties)))


def _huber(u, delta):
    size = np.abs(u)
    return np.where(size <= delta, 0.5 * u * u, delta * (size - 0.5 * delta))


NUMPY_FUNCTIONS = {
    "sigmoid": _sigmoid,
    "softplus": lambda z: np.logaddexp(0.0, z),
    "relu": lambda u: np.maximum(u, 0.0),
    "leaky_relu": lambda z, a: np.where(z > 0, z, a * z),
    "huber": _huber,
    "maximum": lambda *args: reduce(np.maximum, args),
    "minimum": lambda *args: reduce(np.minimum, args),
    "tie_share": _tie_share,
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "cbrt": np.cbrt,
    "erf": np.vectorize(math.erf, otypes=[float]),
}


class _NumPyNamespace:
    """What lambdify's "numpy" gives the code it generates (`import numpy; from numpy import *;
    from numpy.linalg import *`, Heaviside → heaviside, Abs → abs), without the submodules that
    a star import makes NumPy load (f2py, testing, ma…: 0.2 s of every command's start-up).
    Named numpy, so that lambdify still prints with its NumPy printer."""

    __name__ = "numpy"

    def __init__(self) -> None:
        self.__dict__.update({"I": 1j, "numpy": np})
        self.__dict__.update({name: vars(np)[name] for name in np.__all__ if name in vars(np)})
        self.__dict__.update({name: getattr(np.linalg, name) for name in np.linalg.__all__})
        self.__dict__.update({"Heaviside": np.heaviside, "Abs": abs})


NUMPY = _NumPyNamespace()


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
    # the row axis kept (length 1), so that a term without data (λw²) lines up with a mean
    "rowsum": lambda values: np.sum(values, axis=-1, keepdims=True),
    "exp_neg_abs": _exp_neg_abs,
    "sigmoid_given": _sigmoid_given,
}


def stable_logs(expr: sympy.Expr) -> sympy.Expr:
    """log σ(u) = −softplus(−u), log(1 − σ(u)) = −softplus(u), softplus(−u) = softplus(u) − u,
    log softmax(k, z) = zₖ − logsumexp(z).

    Equal as functions, but computed literally log(1 − σ(40)) is log(0): the cross-entropy of a
    confident right answer would be NaN. These forms stay finite for every u.
    """
    u = sympy.Wild("u")
    expr = expr.replace(sympy.log(sigmoid(u)), -softplus(-u))
    expr = expr.replace(sympy.log(1 - sigmoid(u)), -softplus(u))
    expr = expr.replace(
        lambda e: isinstance(e, sympy.log) and isinstance(e.args[0], softmax),
        lambda e: e.args[0].logits[e.args[0].index - 1] - logsumexp(*e.args[0].logits),
    )
    return expr.replace(
        lambda e: isinstance(e, softplus) and e.args[0].could_extract_minus_sign(),
        # −v kept as one product, so v = b + w xᵢ stays whole and is computed once
        lambda e: softplus(-e.args[0]) + sympy.Mul(-1, -e.args[0], evaluate=False),
    )


class exp_neg_abs(sympy.Function):  # noqa: N801 - printed into NumPy code as a name
    """e^(−|u|): the one exponential that σ(u) and softplus(u) both need."""


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
    _require_values(derivation)
    outputs = [_as_array_expression(e) for e in (loss.expr, *derivation.gradient)]
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    modules = [ARRAY_FUNCTIONS, NUMPY]
    printer = _ArrayPrinter(
        {
            "fully_qualified_modules": False,
            "inline": True,
            "allow_unknown_functions": True,
            "user_functions": {},
        }
    )
    function = sympy.lambdify(
        arguments, outputs, modules=modules, cse=True, dummify=True, printer=printer
    )
    return _rows_reduced(function) if loss.data else function


def _rows_reduced(function: Callable[..., list]) -> Callable[..., list]:
    """Drop the row axis that every reduction keeps: parameters shaped (..., 1) give values
    shaped (...), scalars give scalars. Nested lists (a Hessian) are reduced entry by entry."""

    def reduced(value):
        if isinstance(value, list):
            return [reduced(v) for v in value]
        if np.ndim(value) and np.shape(value)[-1] == 1:
            return value[..., 0][()]  # [()]: a 0-d array as a NumPy float
        return value

    @functools.wraps(function)
    def on_arrays(*values):
        return reduced(function(*values))

    return on_arrays


class _ArrayPrinter(NumPyPrinter):
    """NumPy code with the terms of a sum in an order that lets NumPy work in place.

    `x*w + b - y` makes one temporary and updates it; `-y + x*w + b`, SymPy's order, makes
    three. On 10⁵ rows that is the difference between 1.4× and 1.1× hand-written NumPy.
    """

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: (term.could_extract_minus_sign(), term.is_number))

    def _print_Heaviside(self, expr) -> str:
        # numpy.heaviside(u, h0): h0 is the value at 0 (½ for a tie of max, 0 for relu')
        return f"heaviside({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_erf(self, expr) -> str:
        return f"erf({self._print(expr.args[0])})"


def _require_values(derivation: Derivation) -> None:
    missing = derivation.loss.missing_values
    if missing:
        name = missing[0]
        raise DeriveError(
            f"the loss's constant {name} has no value: give it with --const {name}=..."
        )


@functools.cache
def scalar_numeric(derivation: Derivation) -> Callable[..., list]:
    """(params...) → [loss, ∂L/∂p₁, ...] on Python floats, for losses without data.

    Python's `math` raises OverflowError or ValueError where NumPy would give inf or nan.
    """
    loss = derivation.loss
    _require_values(derivation)
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
    `numeric`: the curvature that sets how large a learning rate may be.

    Symbolic while the gradient is of a workable size; past GRADIENT_OPERATIONS operations
    (differentiating again multiplies the size: exp nested 60 deep has a gradient of 1,830
    operations and a second derivative of 115,000), central differences of the compiled
    gradient, whose error (~1e-10 relative) no learning-rate threshold or kind of point
    depends on.
    """
    loss = derivation.loss
    _require_values(derivation)
    if sum(sympy.count_ops(g) for g in derivation.gradient) > GRADIENT_OPERATIONS:
        return _differenced(numeric(derivation), len(loss.symbols))
    # from the gradient's end form, not the loss: (w+1)…(w+64) differentiated twice by the
    # product rule has 250,000 operations, its expanded gradient differentiated once 190
    matrix = sympy.Matrix([[sympy.diff(g, p) for p in loss.symbols] for g in derivation.gradient])
    # d²|u|/du² = 2δ(u): zero everywhere but at the corner, where no Hessian exists anyway
    matrix = matrix.replace(sympy.DiracDelta, lambda *a: 0)
    entries = [[_as_array_expression(entry) for entry in row] for row in matrix.tolist()]
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    printer = _ArrayPrinter({"fully_qualified_modules": False, "allow_unknown_functions": True})
    # CSE: second derivatives repeat their factors (exp(exp(w)) in every term of a nested one)
    function = sympy.lambdify(
        arguments,
        entries,
        modules=[ARRAY_FUNCTIONS, NUMPY],
        cse=True,
        dummify=True,
        printer=printer,
    )

    if loss.data:
        function = _rows_reduced(function)

    @functools.wraps(function)
    def on_arrays(*values):
        # NumPy floats: at a pole 1/0 is inf (a caller's errstate decides), not ZeroDivisionError
        return function(*(np.asarray(v, dtype=float) for v in values))

    return on_arrays


def _differenced(function: Callable[..., list], width: int) -> Callable[..., list]:
    """H[j][k] = (∂_k L(p + h eⱼ) − ∂_k L(p − h eⱼ)) / 2h, h = 1e-5 · max(1, |pⱼ|)."""

    def matrix(*values):
        params = [np.asarray(v, dtype=float) for v in values[:width]]
        rest = values[width:]
        rows = []
        for j in range(width):
            step = 1e-5 * np.maximum(1.0, np.abs(params[j]))
            up = [p + step if k == j else p for k, p in enumerate(params)]
            down = [p - step if k == j else p for k, p in enumerate(params)]
            above = function(*up, *rest)[1:]
            below = function(*down, *rest)[1:]
            rows.append([(a - b) / (2 * step) for a, b in zip(above, below, strict=True)])
        return rows

    return matrix
