"""Stage 2: Loss → Derivation: every partial derivative, as a tree of named rule applications.

Each rule is a small local fact (the derivative of uⁿ, of eᵘ, of σ(u)...); one recursive
function, `derivative_steps`, combines them, and the chain rule is visible where it applies.
SymPy computes and verifies; the steps are derive's own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from derive.functions import sigmoid, softplus
from derive.parse import N_ROWS, Loss

# Local facts: d/du f(u), for the functions the grammar allows.
OUTER_DERIVATIVES: dict[type, tuple[str, Callable[[sympy.Expr], sympy.Expr]]] = {
    sympy.exp: ("exp", sympy.exp),
    sympy.log: ("log", lambda u: 1 / u),
    sympy.sin: ("sin", sympy.cos),
    sympy.cos: ("cos", lambda u: -sympy.sin(u)),
    sympy.tan: ("tan", lambda u: 1 + sympy.tan(u) ** 2),
    sympy.tanh: ("tanh", lambda u: 1 - sympy.tanh(u) ** 2),
    sigmoid: ("sigmoid", lambda u: sigmoid(u) * (1 - sigmoid(u))),
    softplus: ("softplus", sigmoid),
    sympy.Abs: ("abs", sympy.sign),
}

_INNER_NAMES = ("u", "v", "s", "r", "q", "p")


@dataclass(frozen=True)
class Step:
    """One rule application: d/d`variable` of `expr` is `result`, by `rule`.

    `inner` is the inner function u of a chain rule; `substeps` are the derivatives the rule
    needed (for the chain rule: the outer one in u, then du/dvariable).
    """

    rule: str
    expr: sympy.Expr
    variable: sympy.Symbol
    result: sympy.Expr
    substeps: tuple[Step, ...] = ()
    inner: sympy.Expr | None = None
    inner_symbol: sympy.Symbol | None = None


@dataclass(frozen=True)
class Partial:
    """∂L/∂param: the rule tree, the raw result and the textbook form it simplifies to."""

    param: str
    steps: Step
    raw: sympy.Expr
    textbook: sympy.Expr
    simplification: str | None  # "factor", "factor_sum" or "expand", when textbook ≠ raw


@dataclass(frozen=True)
class Derivation:
    loss: Loss
    partials: tuple[Partial, ...]

    @property
    def gradient(self) -> tuple[sympy.Expr, ...]:
        return tuple(partial.textbook for partial in self.partials)


def derive(loss: Loss) -> Derivation:
    partials = []
    for param in loss.symbols:
        steps = derivative_steps(loss.expr, param, _inner_names(loss.expr))
        raw = steps.result
        textbook, simplification = textbook_form(raw)
        partials.append(Partial(param.name, steps, raw, textbook, simplification))
    return Derivation(loss, tuple(partials))


def _inner_names(expr: sympy.Expr) -> list[sympy.Symbol]:
    taken = {str(s) for s in expr.free_symbols} | {str(b) for b in expr.atoms(sympy.IndexedBase)}
    names = [n for n in _INNER_NAMES if n not in taken] + [f"u{k}" for k in range(1, 50)]
    return [sympy.Dummy(name, real=True) for name in names]


def derivative_steps(expr: sympy.Expr, variable: sympy.Symbol, fresh: list[sympy.Symbol]) -> Step:
    """The rule tree of d(expr)/d(variable); `fresh` names the chain rule's inner functions."""
    if not expr.has(variable):
        return Step("constant", expr, variable, sympy.Integer(0))
    if expr == variable:
        return Step("identity", expr, variable, sympy.Integer(1))
    if isinstance(expr, sympy.Sum):
        body = derivative_steps(expr.function, variable, fresh)
        return Step("sum_over_data", expr, variable, sympy.Sum(body.result, *expr.limits), (body,))
    if expr.is_Add:
        parts = tuple(derivative_steps(term, variable, fresh) for term in expr.args)
        return Step("sum", expr, variable, sympy.Add(*(p.result for p in parts)), parts)
    if expr.is_Mul:
        return _product_steps(expr, variable, fresh)
    if expr.is_Pow:
        return _power_steps(expr, variable, fresh)
    if type(expr) in OUTER_DERIVATIVES:
        rule, outer = OUTER_DERIVATIVES[type(expr)]
        return _chain(rule, expr, expr.args[0], variable, fresh, lambda u: type(expr)(u), outer)
    raise NotImplementedError(f"no derivative rule for {type(expr).__name__}")


def _product_steps(expr: sympy.Mul, variable: sympy.Symbol, fresh) -> Step:
    constant, varying = expr.as_independent(variable, as_Add=False)
    if constant != 1:
        body = derivative_steps(varying, variable, fresh)
        return Step("constant_multiple", expr, variable, constant * body.result, (body,))
    numer, denom = varying.as_numer_denom()
    if denom.has(variable) and numer.has(variable) and denom != 1:
        top = derivative_steps(numer, variable, fresh)
        bottom = derivative_steps(denom, variable, fresh)
        result = (top.result * denom - numer * bottom.result) / denom**2
        return Step("quotient", expr, variable, result, (top, bottom))
    factors = varying.args
    parts = tuple(derivative_steps(f, variable, fresh) for f in factors)
    result = sympy.Add(
        *(
            part.result * sympy.Mul(*(f for j, f in enumerate(factors) if j != k))
            for k, part in enumerate(parts)
        )
    )
    return Step("product", expr, variable, result, parts)


def _power_steps(expr: sympy.Pow, variable: sympy.Symbol, fresh) -> Step:
    base, exponent = expr.args
    if not exponent.has(variable):
        rule = "sqrt" if exponent == sympy.Rational(1, 2) else "power"
        return _chain(
            rule, expr, base, variable, fresh, lambda u: u**exponent,
            lambda u: exponent * u ** (exponent - 1),
        )  # fmt: skip
    if not base.has(variable):
        return _chain(
            "exponential", expr, exponent, variable, fresh, lambda u: base**u,
            lambda u: base**u * sympy.log(base),
        )  # fmt: skip
    rewritten = sympy.exp(exponent * sympy.log(base), evaluate=False)
    inner = derivative_steps(rewritten, variable, fresh)
    return Step("log_differentiation", expr, variable, inner.result.subs(rewritten, expr), (inner,))


def _chain(rule, expr, inner, variable, fresh, outer_of, outer_derivative) -> Step:
    """d f(u)/dx = f'(u) · du/dx; without a chain when u is the variable itself."""
    if inner == variable:
        return Step(rule, expr, variable, outer_derivative(variable))
    u = fresh[0]
    outer = Step(rule, outer_of(u), u, outer_derivative(u))
    rest = derivative_steps(inner, variable, fresh[1:])
    result = outer_derivative(inner) * rest.result
    return Step("chain", expr, variable, result, (outer, rest), inner=inner, inner_symbol=u)


def textbook_form(raw: sympy.Expr) -> tuple[sympy.Expr, str | None]:
    """The printed end form: factored, as 2(w − 3), when that is no longer than the expanded
    form and keeps whole coefficients; otherwise expanded, as 4x³ − 8x + 1/2. Over data, each
    summand is expanded and factored and its number pulled out: (2/n) Σ (w xᵢ + b − yᵢ) xᵢ."""
    if raw.has(sympy.Sum):
        best = raw.replace(sympy.Sum, _textbook_sum)
        return best, ("factor_sum" if best != raw else None)
    expanded = sympy.expand(raw)
    factored = sympy.factor(raw)
    whole = factored.as_coeff_Mul()[0].is_Integer
    if whole and sympy.count_ops(factored) <= sympy.count_ops(expanded):
        best, name = factored, "factor"
    else:
        best, name = expanded, "expand"
    return best, (name if best != raw else None)


def _textbook_sum(body: sympy.Expr, *limits) -> sympy.Expr:
    """Σ c·f(i) = c Σ f(i) for a number c, with f factored: linearity of the sum, made visible."""
    factored = sympy.factor(sympy.expand(body))
    coefficient, rest = factored.as_coeff_Mul()
    return coefficient * sympy.Sum(_sums_first(rest), *limits)


def _sums_first(product: sympy.Expr) -> sympy.Expr:
    """(w xᵢ + b − yᵢ) xᵢ rather than xᵢ (w xᵢ + b − yᵢ): the bracket first, as textbooks do."""
    if not product.is_Mul:
        return product
    brackets = [f for f in product.args if f.is_Add]
    others = [f for f in product.args if not f.is_Add]
    return sympy.Mul(*brackets, *others, evaluate=False)


# -- stationary points ------------------------------------------------------------------------

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
    hessian = sympy.lambdify(
        symbols, sympy.hessian(loss.expr, symbols), modules=[NUMPY_FUNCTIONS, "numpy"]
    )
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


# -- numbers -----------------------------------------------------------------------------------

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
    printer = _ArrayPrinter({"fully_qualified_modules": False, "inline": True,
                             "allow_unknown_functions": True, "user_functions": {}})  # fmt: skip
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
