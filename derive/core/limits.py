"""Bounds that keep every symbolic step fast, checked before the step that could blow up.

A 2,000-character loss can still describe a polynomial of degree 10⁹ (`((w**999)**999)**999`),
a product whose expansion has 2¹¹⁹ terms, or a number with 10⁸ digits (`exp(exp(20))`).
`expand`, `factor`, `Poly`, `solve` and evaluation would then run for minutes or exhaust
memory. These bounds are computed from the expression tree alone (never by expanding it), so
checking them costs a walk over the tree:

- degree: the polynomial degree an expansion could reach, counting every function call as one
  new variable (so `(sin(w) + 1)**99` has degree 99);
- terms: how many terms an expansion could have, at most;
- magnitude: a number that would need more than MAX_DIGITS digits to write.
"""

from __future__ import annotations

import math

import mpmath
import sympy

from derive.core.errors import DeriveError

MAX_DEGREE = 64
MAX_TERMS = 2000
MAX_DIGITS = 1000
MAX_OPERATIONS = 20_000  # operations in a derivative, before it is simplified
GRADIENT_OPERATIONS = 300  # beyond this, the Hessian comes from differences of the gradient
_CAP = 10**12  # term counts beyond this are all "too many": keeps the integers small

# Functions that grow like exp: f(x) has about x / ln(10) digits.
_EXPONENTIAL = ("exp", "sinh", "cosh", "expm1")
_LOG10_E = 1 / math.log(10)


class LimitError(DeriveError):
    """A bound is exceeded: the message names the bound (a caller may add where)."""


def degree(expr: sympy.Expr, cache: dict | None = None) -> int:
    """The highest degree an expansion of expr (or of any part of it) could reach."""
    return _measure(expr, {} if cache is None else cache, strict=False)[0]


def expansion_terms(expr: sympy.Expr) -> int:
    """How many terms expanding expr could give, from its structure alone (capped)."""
    return _measure(expr, {}, strict=False)[1]


def check_expression(expr: sympy.Expr, cache: dict | None = None) -> None:
    """Raise LimitError when expr, or any part of it, is beyond the degree or term bounds."""
    _measure(expr, {} if cache is None else cache, strict=True)


def check_power(base: sympy.Expr, exponent: sympy.Expr, cache: dict) -> None:
    """Before base**exponent is built: its degree would be exponent × degree(base)."""
    if not exponent.is_Rational or base.is_number:
        return
    reach = min(_CAP, math.floor(abs(exponent))) * _measure(base, cache, strict=True)[0]
    if reach > MAX_DEGREE:
        raise LimitError(f"this power has degree {_shown(reach)}; the limit is {MAX_DEGREE}")


def check_derivative(expr: sympy.Expr) -> None:
    """A derivative is simplified (expanded, factored) only when it is of a workable size."""
    operations = sympy.count_ops(expr)
    if operations > MAX_OPERATIONS:
        raise LimitError(
            f"the derivative has {operations} operations; the limit is {MAX_OPERATIONS}"
        )


def check_number(value: sympy.Expr) -> None:
    """A number (no variables in it) of at most MAX_DIGITS digits, found without computing
    more digits than that: exp(10**999) is refused from its argument, not evaluated."""
    if not value.is_number or value.is_Rational:
        if value.is_Rational and _rational_digits(value) > MAX_DIGITS:
            raise LimitError(f"a number of more than {MAX_DIGITS} digits")
        return
    name = type(value).__name__
    if name in _EXPONENTIAL:
        argument = _approximate(value.args[0])
        if abs(argument) * _LOG10_E > MAX_DIGITS + 1:
            raise LimitError(f"a number of more than {MAX_DIGITS} digits")
    elif value.is_Pow:
        base, exponent = (_approximate(part) for part in value.args)
        if base != 0 and abs(exponent) * mpmath.log10(abs(base)) > MAX_DIGITS + 1:
            raise LimitError(f"a number of more than {MAX_DIGITS} digits")
    approximate = _approximate(value)
    if approximate != 0 and abs(mpmath.log10(abs(approximate))) > MAX_DIGITS:
        raise LimitError(f"a number of more than {MAX_DIGITS} digits")


def _approximate(value: sympy.Expr) -> mpmath.mpf:
    """15 digits of a number whose parts were all checked already; its real part."""
    evaluated = value.evalf(15)
    real = evaluated.as_real_imag()[0] if not evaluated.is_real else evaluated
    if not real.is_Number:
        raise LimitError("a number that cannot be evaluated")
    return mpmath.mpf(real._to_mpmath(53)) if real.is_Float else mpmath.mpf(str(real))


def _rational_digits(number: sympy.Rational) -> float:
    """Digits needed to write numerator and denominator, without writing them."""
    p, q = (abs(int(part)) for part in sympy.Rational(number).as_numer_denom())
    return (math.log10(p) if p else 0.0) + math.log10(q)


def _shown(count: int) -> str:
    return f"more than {_CAP:.0e}" if count >= _CAP else str(count)


def _measure(expr: sympy.Expr, cache: dict, strict: bool) -> tuple[int, int]:
    """(degree, terms) of expr's expansion, at most, from its structure; `strict` raises
    LimitError at the first part beyond a bound (a part within them is remembered in `cache`)."""
    known = cache.get(expr)
    if known is not None:
        return known
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol) or not expr.args:
        result = (0 if expr.is_number else 1, 1)
    elif isinstance(expr, sympy.Indexed):
        result = (1, 1)
    elif expr.is_Add or isinstance(expr, sympy.Sum):
        parts = [_measure(a, cache, strict) for a in _operands(expr)]
        result = (max(d for d, _ in parts), min(_CAP, sum(t for _, t in parts)))
    elif expr.is_Mul:
        parts = [_measure(a, cache, strict) for a in expr.args]
        terms = 1
        for _, t in parts:
            terms = min(_CAP, terms * t)
        result = (min(_CAP, sum(d for d, _ in parts)), terms)
    elif expr.is_Pow and expr.exp.is_Rational:
        base_degree, base_terms = _measure(expr.base, cache, strict)
        whole = min(_CAP, math.floor(abs(expr.exp)))
        fraction = 0 if expr.exp.is_Integer else 1
        result = (min(_CAP, whole * base_degree + fraction), _multinomial(whole, base_terms))
    else:  # a function call, a symbolic power: one new variable once expanded around
        for part in expr.args:
            if isinstance(part, sympy.Basic):
                _measure(part, cache, strict)
        result = (0 if expr.is_number else 1, 1)
    if strict:
        _check(expr, *result)
    cache[expr] = result
    return result


def _check(expr: sympy.Expr, degree_: int, terms: int) -> None:
    if degree_ > MAX_DEGREE:
        raise LimitError(f"the expression has degree {_shown(degree_)}; the limit is {MAX_DEGREE}")
    if terms > MAX_TERMS and dense_terms(expr, degree_) > MAX_TERMS:
        shown = _shown(min(terms, dense_terms(expr, degree_)))
        raise LimitError(
            f"expanded, the expression would have {shown} terms; the limit is {MAX_TERMS}"
        )


def _operands(expr: sympy.Expr):
    return (expr.function,) if isinstance(expr, sympy.Sum) else expr.args


def _multinomial(power: int, terms: int) -> int:
    """Terms of (t₁ + … + t_k)ⁿ: C(n + k − 1, k − 1), capped."""
    if terms == 1 or power == 0:
        return 1
    count = 1
    for j in range(1, min(power, terms - 1) + 1):
        count = count * (power + terms - 1 - (min(power, terms - 1) - j)) // j
        if count >= _CAP:
            return _CAP
    return count


def dense_terms(expr: sympy.Expr, degree_: int) -> int:
    """Monomials of degree ≤ d in g variables: C(d + g, g) bounds any expansion's terms."""
    variables = len(expr.atoms(sympy.Symbol, sympy.Indexed, sympy.Function))
    count = 1
    for j in range(1, variables + 1):
        count = count * (degree_ + j) // j
        if count >= _CAP:
            return _CAP
    return count
