"""Stage 2: Loss → Derivation: every partial derivative, as a tree of named rule applications.

Each rule is a small local fact (the derivative of uⁿ, of eᵘ, of σ(u)...); one recursive
function, `derivative_steps`, combines them, and the chain rule is visible where it applies.
SymPy computes and verifies; the steps are derive's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy

from derive.core.functions import sigmoid, softplus
from derive.core.parse import Loss

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


def differentiate(loss: Loss) -> Derivation:
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
            rule,
            expr,
            base,
            variable,
            fresh,
            lambda u: u**exponent,
            lambda u: exponent * u ** (exponent - 1),
        )
    if not base.has(variable):
        return _chain(
            "exponential",
            expr,
            exponent,
            variable,
            fresh,
            lambda u: base**u,
            lambda u: base**u * sympy.log(base),
        )
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
