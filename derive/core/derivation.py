"""Stage 2: Loss → Derivation: every partial derivative, as a tree of named rule applications.

Each rule is a small local fact (the derivative of uⁿ, of eᵘ, of σ(u)...); one recursive
function, `derivative_steps`, combines them, and the chain rule is visible where it applies.
SymPy computes and verifies; the steps are derive's own.

Where a function has a kink (|u|, relu, max, min, leaky_relu, where), its derivative there is
the one PyTorch uses (see functions.py); `kinks` lists them, with the expression that is 0
at each, so that a lesson can say which value was used when a run meets one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import sympy
from sympy.core.mul import _keep_coeff
from sympy.polys.rings import ring

from derive.core import limits
from derive.core.errors import DeriveError
from derive.core.functions import (
    cbrt,
    expm1,
    huber,
    leaky_relu,
    log1p,
    log2,
    log10,
    logsumexp,
    maximum,
    minimum,
    relu,
    sigmoid,
    softmax,
    softplus,
)
from derive.core.parse import Loss
from derive.core.symbols import INDEX, N_ROWS, data_column


def _root(u: sympy.Expr) -> sympy.Expr:
    return sympy.sqrt(u)


# Local facts: d/du f(u), for the functions of one argument the grammar allows.
OUTER_DERIVATIVES: dict[type, tuple[str, Callable[[sympy.Expr], sympy.Expr]]] = {
    sympy.exp: ("exp", sympy.exp),
    sympy.log: ("log", lambda u: 1 / u),
    log1p: ("log1p", lambda u: 1 / (1 + u)),
    expm1: ("expm1", sympy.exp),
    log2: ("log2", lambda u: 1 / (u * sympy.log(2))),
    log10: ("log10", lambda u: 1 / (u * sympy.log(10))),
    cbrt: ("cbrt", lambda u: 1 / (3 * cbrt(u) ** 2)),
    sympy.sin: ("sin", sympy.cos),
    sympy.cos: ("cos", lambda u: -sympy.sin(u)),
    sympy.tan: ("tan", lambda u: 1 + sympy.tan(u) ** 2),
    sympy.sec: ("sec", lambda u: sympy.sec(u) * sympy.tan(u)),
    sympy.csc: ("csc", lambda u: -sympy.csc(u) * sympy.cot(u)),
    sympy.cot: ("cot", lambda u: -(1 + sympy.cot(u) ** 2)),
    sympy.asin: ("asin", lambda u: 1 / _root(1 - u**2)),
    sympy.acos: ("acos", lambda u: -1 / _root(1 - u**2)),
    sympy.atan: ("atan", lambda u: 1 / (1 + u**2)),
    sympy.sinh: ("sinh", sympy.cosh),
    sympy.cosh: ("cosh", sympy.sinh),
    sympy.tanh: ("tanh", lambda u: 1 - sympy.tanh(u) ** 2),
    sympy.asinh: ("asinh", lambda u: 1 / _root(u**2 + 1)),
    sympy.acosh: ("acosh", lambda u: 1 / _root(u**2 - 1)),
    sympy.atanh: ("atanh", lambda u: 1 / (1 - u**2)),
    sympy.erf: ("erf", lambda u: 2 / sympy.sqrt(sympy.pi) * sympy.exp(-(u**2))),
    sigmoid: ("sigmoid", lambda u: sigmoid(u) * (1 - sigmoid(u))),
    softplus: ("softplus", sigmoid),
    relu: ("relu", lambda u: sympy.Heaviside(u, 0)),
    sympy.Abs: ("abs", sympy.sign),
    sympy.sign: ("sign", lambda u: sympy.Integer(0)),  # torch: sign's gradient is 0
}

# Functions of several arguments: their partials are the functions' own `fdiff` (functions.py).
SEVERAL_ARGUMENTS: dict[type, str] = {
    maximum: "max",
    minimum: "min",
    leaky_relu: "leaky_relu",
    huber: "huber",
    logsumexp: "logsumexp",
    softmax: "softmax",
}

_INNER_NAMES = ("u", "v", "s", "r", "q", "p")
EXPAND_TERMS = 400  # sympy.expand runs only where at most this many terms could come out
FACTOR_DEGREE = 8  # sympy.factor runs only on polynomials of at most this degree


class Convention(StrEnum):
    """Which derivative is used where a function has no derivative (as torch's autograd)."""

    ABS = "abs"  # |u|' = sign(u), 0 at u = 0
    SIGN = "sign"  # sign'(u) = 0
    RELU = "relu"  # relu'(0) = 0
    LEAKY_RELU = "leaky_relu"  # leaky_relu'(0) = a, the slope below 0
    MAX = "max"  # a tie splits the gradient evenly among the tied arguments
    MIN = "min"
    WHERE = "where"  # on the condition's boundary: the branch the condition picks


@dataclass(frozen=True)
class Kink:
    """Where the loss has no derivative: `node` is the call (relu(w x − 1)); `at` the
    expressions that decide whether a run sits on the kink: the argument, at 0 (|u|, sign,
    relu, leaky_relu); the arguments, two of them tied for the largest (max) or smallest
    (min); the condition's two sides subtracted, at 0 (where)."""

    convention: Convention
    node: sympy.Expr
    at: tuple[sympy.Expr, ...]


@dataclass(frozen=True)
class Step:
    """One rule application: d/d`variable` of `expr` is `result`, by `rule`.

    `inner` is the inner function u of a chain rule; `substeps` are the derivatives the rule
    needed (for the chain rule: the outer one in u, then du/dvariable). The chain rule in
    several arguments (`chain_several`) names its inner functions in `inners`, and its
    substeps are the pairs (∂f/∂uₖ, duₖ/dvariable) in order.
    """

    rule: str
    expr: sympy.Expr
    variable: sympy.Symbol
    result: sympy.Expr
    substeps: tuple[Step, ...] = ()
    inner: sympy.Expr | None = None
    inner_symbol: sympy.Symbol | None = None
    inners: tuple[tuple[sympy.Expr, sympy.Symbol], ...] = ()


@dataclass(frozen=True)
class Partial:
    """∂L/∂param: the rule tree, the raw result and the textbook form it simplifies to."""

    param: str
    steps: Step
    raw: sympy.Expr
    textbook: sympy.Expr
    simplification: str | None  # "factor", "factor_sum", "expand" or "one_hot", when ≠ raw


@dataclass(frozen=True)
class Derivation:
    loss: Loss
    partials: tuple[Partial, ...]
    kinks: tuple[Kink, ...] = ()

    @property
    def gradient(self) -> tuple[sympy.Expr, ...]:
        """The partials to compute with: named constants replaced by their values."""
        values = self.loss.values
        return tuple(
            partial.textbook.xreplace(values) if values else partial.textbook
            for partial in self.partials
        )


def differentiate(loss: Loss) -> Derivation:
    partials = []
    formula = loss.formula
    polynomial = _Polynomial.of(formula)
    for param in loss.symbols:
        steps = derivative_steps(formula, param, _inner_names(formula))
        raw = steps.result
        try:
            limits.check_derivative(raw)
        except limits.LimitError as limit:
            raise DeriveError(f"∂L/∂{param.name}: {limit}") from None
        expanded = polynomial.derivative(param) if polynomial else None
        textbook, simplification = textbook_form(raw, loss.one_hot, expanded)
        partials.append(Partial(param.name, steps, raw, textbook, simplification))
    return Derivation(loss, tuple(partials), kinks(formula))


def _inner_names(expr: sympy.Expr) -> list[sympy.Symbol]:
    """Names for the chain rule's inner functions: as many as the nesting can need."""
    taken = {str(s) for s in expr.free_symbols} | {str(b) for b in expr.atoms(sympy.IndexedBase)}
    depth = _depth(expr)
    names = [n for n in _INNER_NAMES if n not in taken]
    names += [f"u{k}" for k in range(1, depth + 2) if f"u{k}" not in taken]
    return [sympy.Dummy(name, real=True) for name in names]


def _depth(expr: sympy.Expr) -> int:
    """How deep the tree is, counting only nodes that take part in a derivative."""
    return 1 + max((_depth(a) for a in expr.args if isinstance(a, sympy.Basic)), default=0)


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
    if isinstance(expr, sympy.Piecewise):
        return _where_steps(expr, variable, fresh)
    if type(expr) in OUTER_DERIVATIVES:
        rule, outer = OUTER_DERIVATIVES[type(expr)]
        return _chain(rule, expr, expr.args[0], variable, fresh, lambda u: type(expr)(u), outer)
    if type(expr) in SEVERAL_ARGUMENTS:
        return _several_steps(expr, variable, fresh)
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


def _where_steps(expr: sympy.Piecewise, variable: sympy.Symbol, fresh) -> Step:
    """where(c, a, b)' = where(c, a', b'): each branch differentiated, the condition kept."""
    branches = tuple(derivative_steps(piece.expr, variable, fresh) for piece in expr.args)
    result = sympy.Piecewise(
        *((step.result, piece.cond) for step, piece in zip(branches, expr.args, strict=True))
    )
    return Step("where", expr, variable, result, branches)


def _chain(rule, expr, inner, variable, fresh, outer_of, outer_derivative) -> Step:
    """d f(u)/dx = f'(u) · du/dx; without a chain when u is the variable itself."""
    if inner == variable:
        return Step(rule, expr, variable, outer_derivative(variable))
    u = fresh[0]
    outer = Step(rule, outer_of(u), u, outer_derivative(u))
    rest = derivative_steps(inner, variable, fresh[1:])
    result = outer_derivative(inner) * rest.result
    return Step("chain", expr, variable, result, (outer, rest), inner=inner, inner_symbol=u)


def _several_steps(expr: sympy.Function, variable: sympy.Symbol, fresh) -> Step:
    """f(u₁, …, u_K): one chain rule when one argument varies, else the chain rule in
    several arguments, d f/dx = Σ ∂f/∂uₖ · duₖ/dx, over the arguments that vary."""
    rule = SEVERAL_ARGUMENTS[type(expr)]
    args = expr.args
    varying = [k for k, a in enumerate(args) if a.has(variable)]

    def with_at(k: int, value: sympy.Expr) -> sympy.Expr:
        return type(expr)(*args[:k], value, *args[k + 1 :])

    def partial(k: int, value: sympy.Expr) -> sympy.Expr:
        return with_at(k, value).fdiff(k + 1)

    if len(varying) == 1:
        (k,) = varying
        return _chain(
            rule,
            expr,
            args[k],
            variable,
            fresh,
            lambda u: with_at(k, u),
            lambda u: partial(k, u),
        )
    substeps: list[Step] = []
    inners = []
    terms = []
    for position, k in enumerate(varying):
        u = fresh[position]
        inners.append((args[k], u))
        substeps.append(Step(rule, with_at(k, u), u, partial(k, u)))
        rest = derivative_steps(args[k], variable, fresh[len(varying) :])
        substeps.append(rest)
        terms.append(partial(k, args[k]) * rest.result)
    return Step(
        "chain_several", expr, variable, sympy.Add(*terms), tuple(substeps), inners=tuple(inners)
    )


# -- kinks ------------------------------------------------------------------------------------


def kinks(expr: sympy.Expr) -> tuple[Kink, ...]:
    """Every point where the loss has no derivative, with the convention used there."""
    found: list[Kink] = []
    for node in sympy.preorder_traversal(expr):
        kink = _kink(node)
        if kink is not None and kink not in found:
            found.append(kink)
    return tuple(found)


def _kink(node: sympy.Expr) -> Kink | None:
    if isinstance(node, sympy.Abs):
        return Kink(Convention.ABS, node, (node.args[0],))
    if isinstance(node, sympy.sign):
        return Kink(Convention.SIGN, node, (node.args[0],))
    if isinstance(node, relu | leaky_relu):
        convention = Convention.RELU if isinstance(node, relu) else Convention.LEAKY_RELU
        return Kink(convention, node, (node.args[0],))
    if isinstance(node, maximum | minimum):
        convention = Convention.MAX if isinstance(node, maximum) else Convention.MIN
        return Kink(convention, node, node.args)
    if isinstance(node, sympy.Piecewise):
        sides = [
            piece.cond.lhs - piece.cond.rhs
            for piece in node.args
            if isinstance(piece.cond, sympy.core.relational.Relational)
        ]
        return Kink(Convention.WHERE, node, tuple(sides)) if sides else None
    return None


# -- the textbook form ------------------------------------------------------------------------


def textbook_form(
    raw: sympy.Expr,
    one_hot: tuple[tuple[str, ...], ...] = (),
    expanded: sympy.Expr | None = None,
) -> tuple[sympy.Expr, str | None]:
    """The printed end form: the shortest (fewest operations) of the raw derivative, its
    factored form (only with whole coefficients: 2(w − 3)) and its expanded form (4x³ − 8x +
    1/2); a tie goes to the factored form, then to the raw one, so that simplifying never makes
    a result longer. exp(a + b) stays one exponential. Over data, each summand is simplified
    so and its number pulled out: (2/n) Σ (w xᵢ + b − yᵢ) xᵢ; with one-hot targets
    (y₁ + … + y_K = 1 in every row) a softmax cross-entropy reaches Σ (pₖ − yₖ) xᵢ.
    `expanded` is the expanded form when it is known already (a polynomial loss's)."""
    if raw.has(sympy.Sum):
        best, name = raw.replace(sympy.Sum, _textbook_sum), "factor_sum"
        if sympy.count_ops(best) > sympy.count_ops(raw):
            best, name = raw, None
        if one_hot:
            reduced = best.replace(sympy.Sum, lambda body, *lim: _one_hot_sum(body, lim, one_hot))
            if sympy.count_ops(reduced) < sympy.count_ops(best):
                best, name = reduced, "one_hot"
        best = sympy.Add(*(_positive_sum(term) for term in sympy.Add.make_args(best)))
        return best, (name if best != raw else None)
    return _shortest(raw, expanded)


def _shortest(raw: sympy.Expr, expanded: sympy.Expr | None = None) -> tuple[sympy.Expr, str | None]:
    named = _named_quotients(raw)
    candidates = []
    factored = _factored(named)
    if factored is not None and factored.as_coeff_Mul()[0].is_Integer:
        candidates.append((factored, "factor"))
    candidates.append((raw, None))
    if named != raw:
        candidates.append((named, "factor"))
    candidates.append((_kept_whole(sympy.factor_terms, named), "factor"))
    expanded = expanded if expanded is not None else _expanded(named)
    if expanded is not None:
        candidates.append((expanded, "expand"))
    costs = [sympy.count_ops(expr) for expr, _ in candidates]
    best, name = candidates[costs.index(min(costs))]
    return best, (name if best != raw else None)


# sinh(u)/cosh(u) is tanh(u): the chain rule through log(cosh(u)) leaves the quotient behind.
_QUOTIENTS = ((sympy.sinh, sympy.cosh, sympy.tanh), (sympy.sin, sympy.cos, sympy.tan))


def _named_quotients(expr: sympy.Expr) -> sympy.Expr:
    def named(product: sympy.Mul) -> sympy.Expr:
        factors = list(product.args)
        for top, bottom, quotient in _QUOTIENTS:
            for factor in list(factors):
                if isinstance(factor, top) and bottom(factor.args[0]) ** -1 in factors:
                    factors.remove(factor)
                    factors.remove(bottom(factor.args[0]) ** -1)
                    factors.append(quotient(factor.args[0]))
        return sympy.Mul(*factors)

    return expr.replace(lambda e: e.is_Mul, named)


def _kept_whole(simplify, expr: sympy.Expr) -> sympy.Expr:
    """simplify(expr) with every function call kept as it is: exp(a + b) stays one exponential
    (factor and expand would write exp(a)·exp(b)), H(1 − y z) keeps its argument."""
    calls = {call: sympy.Dummy() for call in expr.atoms(sympy.Function)}
    simplified = simplify(expr.xreplace(calls))
    back = {dummy: call for call, dummy in calls.items()}
    coefficient, rest = simplified.as_coeff_Mul()
    # 2·(c + v tanh t) kept as a product, as factor returns it (rebuilt, SymPy would distribute)
    return _keep_coeff(coefficient, rest.xreplace(back))


def _expanded(expr: sympy.Expr) -> sympy.Expr | None:
    """expr expanded: products and whole powers multiplied out, function calls (exp(a + b),
    H(1 − y z)) kept whole; None when more than EXPAND_TERMS terms could come out."""
    if limits.expansion_terms(expr) > EXPAND_TERMS:
        return None
    return _kept_whole(lambda e: sympy.expand(e, power_base=False, log=False), expr)


@dataclass(frozen=True)
class _Polynomial:
    """A polynomial loss in a polynomial ring: expanded and differentiated by exact
    arithmetic, in milliseconds where sympy.expand of the product rule's result of
    (w+1)(w+2)…(w+64) takes minutes."""

    element: object  # a PolyElement
    generators: dict

    @classmethod
    def of(cls, expr: sympy.Expr) -> _Polynomial | None:
        variables = sorted(expr.atoms(sympy.Symbol), key=sympy.default_sort_key)
        if not variables or not expr.is_polynomial(*variables):
            return None
        if limits.expansion_terms(expr) <= EXPAND_TERMS:
            return None  # small enough for sympy.expand on the derivative itself
        space, *generators = ring(variables, sympy.QQ)
        index = dict(zip(variables, generators, strict=True))

        def convert(node):
            if node.is_Rational:
                return space(node)
            if node in index:
                return index[node]
            if node.is_Add:
                return sum((convert(a) for a in node.args), space.zero)
            if node.is_Mul:
                product = space.one
                for a in node.args:
                    product *= convert(a)
                return product
            if node.is_Pow and node.exp.is_Integer and node.exp >= 0:
                return convert(node.base) ** int(node.exp)
            raise ValueError  # an irrational coefficient (π): left to sympy

        try:
            return cls(convert(expr), index)
        except ValueError:
            return None

    def derivative(self, variable: sympy.Symbol) -> sympy.Expr | None:
        generator = self.generators.get(variable)
        if generator is None:
            return sympy.Integer(0)
        return self.element.diff(generator).as_expr()


def _factored(expr: sympy.Expr) -> sympy.Expr | None:
    """sympy.factor, on expressions of low degree and few terms only (its cost grows fast)."""
    if limits.degree(expr) > FACTOR_DEGREE or limits.expansion_terms(expr) > EXPAND_TERMS:
        return None
    return _kept_whole(sympy.factor, expr)


def _textbook_sum(body: sympy.Expr, *limits_) -> sympy.Expr:
    """Σ c·f(i) = c Σ f(i) for a number c, with f simplified: linearity of the sum, made
    visible. The summand is expanded first, so that terms that cancel do."""
    shortest, _ = _shortest(body)
    return _pulled_out(shortest, limits_)


def _one_hot_sum(body: sympy.Expr, limits_, groups: tuple[tuple[str, ...], ...]) -> sympy.Expr:
    """With y₁ + … + y_K = 1 in every row: each target in turn written as 1 minus the others,
    and the shortest summand kept. −y₁(1 − p₁) + y₂p₁ + y₃p₁ becomes p₁ − y₁."""
    best = body
    for group in groups:
        targets = [data_column(name) for name in group]
        if not any(body.has(t) for t in targets):
            continue
        for eliminated in targets:
            rest = sympy.Add(*(t for t in targets if t != eliminated))
            candidate = _expanded(body.xreplace({eliminated: 1 - rest}))
            if candidate is None:
                continue
            candidate = sympy.factor_terms(candidate)
            if sympy.count_ops(candidate) < sympy.count_ops(best):
                best = candidate
    return _pulled_out(best, limits_)


def _pulled_out(summand: sympy.Expr, limits_) -> sympy.Expr:
    """c Σ f: the number in front, and f not opening with a minus when −1 can go out too."""
    coefficient, rest = summand.as_coeff_Mul()
    factors = list(sympy.Mul.make_args(rest))
    for k, factor in enumerate(factors):
        if coefficient < 0 and factor.is_Add and _varying_terms_negative(factor):
            # −(y − p) x is (p − y) x: the terms with parameters in them positive
            coefficient, factors[k] = -coefficient, -factor
            break
    return coefficient * sympy.Sum(_sums_first(sympy.Mul(*factors)), *limits_)


def _positive_sum(term: sympy.Expr) -> sympy.Expr:
    """−(1/n) Σ (yᵢ − pᵢ) xᵢ is (1/n) Σ (pᵢ − yᵢ) xᵢ: the minus taken into the bracket whose
    terms with parameters in them are all negative."""
    coefficient, rest = term.as_coeff_Mul()
    sums = [f for f in sympy.Mul.make_args(rest) if isinstance(f, sympy.Sum)]
    if coefficient >= 0 or len(sums) != 1:
        return term
    (total,) = sums
    factors = list(sympy.Mul.make_args(total.function))
    for k, factor in enumerate(factors):
        if factor.is_Add and _varying_terms_negative(factor):
            factors[k] = -factor
            flipped = sympy.Sum(_sums_first(sympy.Mul(*factors)), *total.limits)
            return -coefficient * rest.xreplace({total: flipped})
    return term


def _varying_terms_negative(bracket: sympy.Add) -> bool:
    data = {f.base.label for f in bracket.atoms(sympy.Indexed)} | {INDEX, N_ROWS}
    varying = [
        term
        for term in bracket.args
        if any(isinstance(s, sympy.Symbol) and s not in data for s in term.free_symbols)
    ]
    return bool(varying) and all(term.could_extract_minus_sign() for term in varying)


def _sums_first(product: sympy.Expr) -> sympy.Expr:
    """(w xᵢ + b − yᵢ) xᵢ rather than xᵢ (w xᵢ + b − yᵢ): the bracket first, as textbooks do."""
    if not product.is_Mul:
        return product
    brackets = [f for f in product.args if f.is_Add]
    others = [f for f in product.args if not f.is_Add]
    return sympy.Mul(*brackets, *others, evaluate=False)
