"""Derivation + a hand-derived answer → Verdict: right, or wrong with a reason and a point.

Right means equal as functions where the loss is defined. The two are compared at points
inside the loss's domain: parameters over several scales (small, non-dyadic, decimal, large),
data sets of 1 to 9 rows that respect each column's domain, and the assignment's own data.
Values are exact (fractions) where both sides are rational, and otherwise rigorous intervals
(`mpmath.iv`, 60 digits), so two values "agree" only when no rounding can tell them apart and
"differ" only when provably different. Agreement everywhere is then confirmed: symbolically
when SymPy can show the difference is 0, else at a precision beyond every number written in the
answer and at more points (larger data sets, other scales), so no tolerance can be gamed.

Wrong is never said without a point inside the domain where they differ (or where the answer
is undefined while the derivative is not), the simplest one found: the assignment's data and
small parameter values first. An answer that cannot be computed within derive's limits at such
a point (a number beyond 10¹⁰⁰⁰) is beyond the limits: `BeyondLimitsError`, not a verdict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from fractions import Fraction

import mpmath
import sympy
from mpmath import iv

from derive.core.derivation import Derivation, Partial, Step, textbook_form
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
    tie_share,
)
from derive.core.parse import Loss, parse_expression
from derive.core.symbols import INDEX, N_ROWS, data_column

WORKING_DIGITS = 60  # of every interval; values agree when their intervals overlap
MAX_DIGITS = 1000  # |value| ≤ 10¹⁰⁰⁰, the parser's limit for numbers an expression computes
MAX_EXP_ARGUMENT = 10**6  # e^u beyond u = 10⁶ is not computed (it would exceed 10⁴³⁴²⁹⁴)
MAX_EXACT_DIGITS = 4000  # a power of a fraction larger than this is computed as an interval
TARGET_POINTS = 18  # points inside the domain an answer is compared at
MIN_POINTS = 4  # fewer than this inside the domain: the answer cannot be graded
MAX_CANDIDATES = 600  # random points tried to find TARGET_POINTS inside the domain
EXTRA_POINTS = 8  # further points when SymPy cannot show the difference is 0
SIMPLE_TRIES = 240  # simple points tried for a counterexample
DIAGNOSIS_POINTS = 6  # enough to fit a candidate (3 at least must agree), few enough to be quick
ASSIGNMENT_ROWS = 24  # rows of the assignment's data used as one data set
SIMPLE_VALUES = tuple(
    Fraction(v) for v in ("1", "2", "-1", "1/2", "0", "3", "-2", "3/2", "-1/2", "1/3", "5", "10")
)
# parameters far from 0, none a multiple of a simple fraction: |w − 1000| and sin(12πw) show
LADDER = tuple(Fraction(10**k * 1234567, 10**6) for k in range(1, 6))
SYMBOLIC_NODES = 400  # SymPy proves equality only for answers up to this size…
SYMBOLIC_DEGREE = 40  # …and with no power above this (expand would explode)
# between the places where branches switch: at the first simple and task points, by their rows
BOUNDARY_STEP = Fraction(1, 7)  # beyond the outer switches
BOUNDARY_BASES = 4  # of each
BOUNDARY_ROWS = 24
BOUNDARY_POINTS = 120


class Diagnosis(StrEnum):
    """The mistakes derive names; each is a key of the catalogs' [check] section."""

    WRONG_PARAMETER = "wrong_parameter"  # detail: the other parameter's name
    COLUMN_AS_PARAMETER = "column_as_parameter"  # detail: the data column's name
    SIGN = "sign"
    CHAIN = "chain"  # detail: (du/dx, u)
    SIGMOID_DERIVATIVE = "sigmoid_derivative"  # detail: (z,) of σ(z)
    MEAN_TOO_EARLY = "mean_too_early"  # detail: (the row factor left outside,)
    MEAN_DROPPED = "mean_dropped"  # detail: None, or (the factor beside it,)
    SUM_DROPPED = "sum_dropped"  # detail: None, or (the factor beside it,)
    FACTOR = "factor"  # detail: (c,) with answer = c · derivative; c may hold n
    TERM = "term"  # detail: (term, its derivative, c) with the answer holding c · derivative


@dataclass(frozen=True)
class Point:
    """Parameter values and, for losses over data, a data set (hashable: values are cached
    per point). Values are exact rationals."""

    param_values: tuple[tuple[str, sympy.Rational], ...]
    data_values: tuple[tuple[str, tuple[sympy.Rational, ...]], ...] = ()

    @property
    def params(self) -> dict[str, sympy.Rational]:
        return dict(self.param_values)

    @property
    def data(self) -> dict[str, tuple[sympy.Rational, ...]]:
        return dict(self.data_values)

    @property
    def rows(self) -> int:
        return len(self.data_values[0][1]) if self.data_values else 0

    @functools.cached_property
    def _fractions(self) -> tuple[dict[str, Fraction], dict[str, tuple[Fraction, ...]]]:
        params = {name: _fraction(v) for name, v in self.param_values}
        data = {name: tuple(map(_fraction, vs)) for name, vs in self.data_values}
        return params, data

    def only(self, columns: set[str]) -> Point:
        """The same point with only these data columns (the ones a reader needs)."""
        kept = tuple((name, vs) for name, vs in self.data_values if name in columns)
        return Point(self.param_values, kept)


def _point(params: Mapping[str, Fraction], data: Mapping[str, Sequence[Fraction]]) -> Point:
    return Point(
        tuple((name, sympy.Rational(v.numerator, v.denominator)) for name, v in params.items()),
        tuple(
            (name, tuple(sympy.Rational(v.numerator, v.denominator) for v in values))
            for name, values in data.items()
        ),
    )


def _fraction(value: sympy.Rational) -> Fraction:
    return Fraction(int(value.p), int(value.q))


@dataclass(frozen=True)
class Counterexample:
    point: Point
    expected: sympy.Expr  # the true derivative there: a Rational, or a Float when not rational
    answer: sympy.Expr | None  # None: the answer is not defined there


@dataclass(frozen=True)
class Verdict:
    correct: bool
    expected: sympy.Expr  # the true derivative, in textbook form
    answer: sympy.Expr  # the answer as parsed
    diagnosis: Diagnosis | None
    # what the diagnosis names (see Diagnosis): a name, or expressions
    detail: str | tuple[sympy.Expr, ...] | None
    counterexample: Counterexample | None
    symbolic: bool  # SymPy also showed the difference to be 0
    params: tuple[str, ...] = ()  # the loss's parameters, in order (for printing)
    points: int = 0  # points inside the domain where the two were compared


class BeyondLimitsError(DeriveError):
    """The answer cannot be computed within derive's limits at a point of the domain."""

    def __init__(self, point: Point):
        shown = ", ".join(f"{k} = {v}" for k, v in point.params.items())
        super().__init__(
            f"the answer's value at {shown} is beyond derive's limits "
            f"(numbers up to 10^{MAX_DIGITS})"
        )
        self.point = point


class UndecidedError(DeriveError):
    """The derivative is defined at too few of the points derive tries."""


def parse_answer(text: str, derivation: Derivation) -> sympy.Expr:
    """The answer through the same safe parser, with the loss's parameters and data names."""
    loss = derivation.loss
    expr = parse_expression(text, loss.data, per_row=True)
    constants = tuple(name for name, _ in loss.constants)
    known = {*loss.params, *constants} | ({*loss.data, "n"} if loss.data else set())
    # the row index i is bound inside Σ; an `i` the student typed is a name of its own
    unknown = sorted({s.name for s in expr.atoms(sympy.Symbol) if s != INDEX} - known)
    if unknown:
        given = ", ".join(loss.params + constants + loss.data)
        raise DeriveError(
            f"the answer uses {', '.join(unknown)}, which the loss does not ({given})", text, None
        )
    return expr


# -- values at a point: exact fractions, or rigorous intervals ----------------------------------


class Outcome(Enum):
    """Why a value is missing at a point."""

    UNDEFINED = "undefined"  # log of a number ≤ 0, division by 0, even root of a negative
    UNSURE = "unsure"  # an interval too wide to tell (e.g. a sine of 10⁵⁰⁰)
    TOO_LARGE = "too_large"  # beyond 10¹⁰⁰⁰, or e^u with u beyond 10⁶


class _NoValueError(Exception):
    def __init__(self, outcome: Outcome):
        self.outcome = outcome


class _InexactError(Exception):
    """Exact arithmetic cannot go on (a transcendental function, a huge power)."""


Value = Fraction | mpmath.ctx_iv.ivmpf


class _Env:
    """What an expression is evaluated with: the point's values, and the arithmetic."""

    def __init__(self, point: Point, exact: bool, digits: int = WORKING_DIGITS):
        self.point = point
        self.exact = exact
        self.params, self.columns = _values(point, digits if not exact else 0)
        self.rows = point.rows
        self.n = self.number(Fraction(point.rows))
        self.row = 0

    def number(self, value: Fraction) -> Value:
        if self.exact:
            return value
        return iv.mpf(value.numerator) / value.denominator

    def exact_twin(self) -> _Env:
        """The same point and row in exact arithmetic: a kink's side decided without rounding
        (w·x − y is 0 exactly at w = 0.1, x = 10, y = 1, but its interval holds both signs)."""
        twin = _Env(self.point, exact=True)
        twin.row = self.row
        return twin


@functools.lru_cache(maxsize=4096)
def _values(point: Point, digits: int) -> tuple[dict, dict]:
    """The point's values as fractions (digits 0) or as intervals at that precision."""
    params, data = point._fractions
    if not digits:
        return params, data
    with _precision(digits):
        convert = lambda v: iv.mpf(v.numerator) / v.denominator  # noqa: E731
        return (
            {name: convert(v) for name, v in params.items()},
            {name: tuple(map(convert, vs)) for name, vs in data.items()},
        )


@contextlib.contextmanager
def _precision(digits: int) -> Iterator[None]:
    """mpmath.iv's working precision, for a block (it has no workdps of its own)."""
    saved = iv.dps
    iv.dps = digits
    try:
        yield
    finally:
        iv.dps = saved


def _lo(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[0])


def _hi(x) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[1])


def _sign(x: Value) -> int | None:
    """−1, 0 or 1; None when an interval holds 0 and other numbers."""
    if isinstance(x, Fraction):
        return (x > 0) - (x < 0)
    lo, hi = _lo(x), _hi(x)
    if lo > 0:
        return 1
    if hi < 0:
        return -1
    return 0 if lo == 0 and hi == 0 else None


def _positive(x: Value) -> None:
    """The argument of a log: positive, or the value is undefined (or unsure)."""
    sign = _sign(x)
    if sign is None:
        raise _NoValueError(Outcome.UNSURE)
    if sign <= 0:
        raise _NoValueError(Outcome.UNDEFINED)


def _nonzero(x: Value) -> None:
    sign = _sign(x)
    if sign is None:
        raise _NoValueError(Outcome.UNSURE)
    if sign == 0:
        raise _NoValueError(Outcome.UNDEFINED)


def _interval_only(function: Callable[[Value], Value]) -> Callable[[Value], Value]:
    """A function whose values at rationals are irrational but for a few (e^u, sin u, atan u
    at u ≠ 0): computed on intervals; exact arithmetic stops at it."""

    def apply(u: Value) -> Value:
        if isinstance(u, Fraction):
            raise _InexactError
        return function(u)

    return apply


def _capped(u: Value) -> None:
    """e^u (and sinh, cosh) beyond u = 10⁶ is not computed: it would exceed 10⁴³⁴²⁹⁴."""
    if max(abs(_lo(u)), abs(_hi(u))) > MAX_EXP_ARGUMENT:
        raise _NoValueError(Outcome.TOO_LARGE)


def _within(u: Value, low: int | None, high: int | None, open_ends: bool = False) -> None:
    """The argument lies in the function's domain [low, high] (or (low, high)): outside it
    the value is undefined; across one of its ends, unsure."""
    for end, inside in ((low, 1), (high, -1)):
        if end is None:
            continue
        sign = _sign(inside * (u - end))
        if sign is None:
            raise _NoValueError(Outcome.UNSURE)
        if sign < 0 or (sign == 0 and open_ends):
            raise _NoValueError(Outcome.UNDEFINED)


def _monotone(function: Callable[[mpmath.mpf], mpmath.mpf], increasing: bool = True):
    """An interval's image under a monotone function mpmath.iv lacks: the ends computed 20
    bits beyond the working precision, then widened by 2⁻¹⁰ of the working precision's unit, far
    more than mpmath's error there (an ulp or two)."""

    def apply(u: Value) -> Value:
        with mpmath.workprec(iv.prec + 20):
            a, b = function(_lo(u)), function(_hi(u))
            if not increasing:
                a, b = b, a
            margin = mpmath.mpf(2) ** -(iv.prec + 10)
            return iv.mpf([a - abs(a) * margin, b + abs(b) * margin])

    return apply


def _exp(u: Value) -> Value:
    if _hi(u) > MAX_EXP_ARGUMENT:
        raise _NoValueError(Outcome.TOO_LARGE)
    return iv.exp(u)


def _expm1(u: Value) -> Value:
    if _hi(u) > MAX_EXP_ARGUMENT:
        raise _NoValueError(Outcome.TOO_LARGE)
    return iv.expm1(u)


def _log(u: Value) -> Value:
    _positive(u)
    return iv.log(u)


def _log1p(u: Value) -> Value:
    _positive(u + 1)
    return iv.log1p(u)


def _log_base(base: int) -> Callable[[Value], Value]:
    def apply(u: Value) -> Value:
        return _log(u) / iv.log(base)

    return apply


def _trig(name: str) -> Callable[[Value], Value]:
    """sin, cos, tan; sec, csc and cot as reciprocals, undefined where those are 0."""
    base, over = {
        "sin": ("sin", None),
        "cos": ("cos", None),
        "tan": ("tan", None),
        "sec": (None, "cos"),
        "csc": (None, "sin"),
        "cot": ("cos", "sin"),
    }[name]

    def apply(u: Value) -> Value:
        if mpmath.mag(max(abs(_lo(u)), abs(_hi(u)))) > 3.33 * MAX_DIGITS:
            # the argument's reduction would need more than 1000 digits of π
            raise _NoValueError(Outcome.TOO_LARGE)
        top = getattr(iv, base)(u) if base else iv.mpf(1)
        if over is None:
            return top
        bottom = getattr(iv, over)(u)
        _nonzero(bottom)
        return top / bottom

    return apply


def _tanh(u: Value) -> Value:
    sign = _sign(u)
    if sign is None:  # near 0: e^(2u) is small, the plain formula is exact enough
        e = iv.exp(2 * u)
        return (e - 1) / (e + 1)
    e = iv.exp(-2 * abs(u))  # e^(−2|u|) never overflows
    return sign * (1 - e) / (1 + e)


def _sigmoid(u: Value) -> Value:
    if _sign(u) == -1:
        e = iv.exp(u)
        return e / (1 + e)
    return 1 / (1 + iv.exp(-u))


def _softplus(u: Value) -> Value:
    if _sign(u) == 1:
        return u + iv.log(1 + iv.exp(-u))
    return iv.log(1 + iv.exp(u))


def _real_cbrt(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.sign(x) * mpmath.cbrt(abs(x))


def _asin(u: Value) -> Value:
    _within(u, -1, 1)
    return _monotone(mpmath.asin)(u)


def _acos(u: Value) -> Value:
    _within(u, -1, 1)
    return _monotone(mpmath.acos, increasing=False)(u)


def _sinh(u: Value) -> Value:
    _capped(u)
    return _monotone(mpmath.sinh)(u)


def _cosh(u: Value) -> Value:
    """Even, least at 0: the image of |u|'s range."""
    _capped(u)
    low, high = abs(_lo(u)), abs(_hi(u))
    nearest = 0 if _sign(u) is None else min(low, high)
    return _monotone(mpmath.cosh)(iv.mpf([nearest, max(low, high)]))


def _acosh(u: Value) -> Value:
    _within(u, 1, None)
    return _monotone(mpmath.acosh)(u)


def _atanh(u: Value) -> Value:
    _within(u, -1, 1, open_ends=True)
    return _monotone(mpmath.atanh)(u)


def _relu(u: Value) -> Value:
    """max(u, 0): continuous, so an interval across 0 has the image [0, max(hi, 0)]."""
    if isinstance(u, Fraction):
        return max(u, Fraction(0))
    return iv.mpf([max(_lo(u), 0), max(_hi(u), 0)])


FUNCTIONS: dict[type, Callable[[Value], Value]] = {
    sympy.Abs: abs,
    relu: _relu,
    **{
        kind: _interval_only(function)
        for kind, function in {
            sympy.exp: _exp,
            sympy.log: _log,
            log1p: _log1p,
            expm1: _expm1,
            log2: _log_base(2),
            log10: _log_base(10),
            cbrt: _monotone(_real_cbrt),
            sympy.sin: _trig("sin"),
            sympy.cos: _trig("cos"),
            sympy.tan: _trig("tan"),
            sympy.sec: _trig("sec"),
            sympy.csc: _trig("csc"),
            sympy.cot: _trig("cot"),
            sympy.asin: _asin,
            sympy.acos: _acos,
            sympy.atan: _monotone(mpmath.atan),
            sympy.sinh: _sinh,
            sympy.cosh: _cosh,
            sympy.tanh: _tanh,
            sympy.asinh: _monotone(mpmath.asinh),
            sympy.acosh: _acosh,
            sympy.atanh: _atanh,
            sympy.erf: _monotone(mpmath.erf),
            sigmoid: _sigmoid,
            softplus: _softplus,
        }.items()
    },
}


def _power(base: Value, exponent: sympy.Expr, exponent_value: Value | None) -> Value:
    """base ** exponent, with the real domain of a power: no 0⁻¹, no even root of a negative."""
    if exponent.is_Integer:
        k = int(exponent)
        if k < 0:
            _nonzero(base)
        if isinstance(base, Fraction) and abs(base) not in (0, 1):
            size = len(str(base.numerator)) + len(str(base.denominator))
            if abs(k) * size > MAX_EXACT_DIGITS:
                raise _InexactError
        return base**k
    if isinstance(base, Fraction):
        raise _InexactError  # a root, or a variable exponent
    sign = _sign(base)
    if sign is None:
        raise _NoValueError(Outcome.UNSURE)
    if exponent.is_Rational:
        if sign < 0:
            raise _NoValueError(Outcome.UNDEFINED)  # SymPy's principal root is not real
        if sign == 0:
            if exponent < 0:
                raise _NoValueError(Outcome.UNDEFINED)
            return base * 0
        if exponent.q == 2:
            return iv.sqrt(base) ** int(exponent.p)
        return iv.exp(iv.log(base) * int(exponent.p) / int(exponent.q))
    # a power with a variable exponent, aᵘ = e^(u ln a): defined for a > 0
    if sign <= 0:
        raise _NoValueError(Outcome.UNDEFINED)
    return _exp(exponent_value * _log(base))


Compiled = Callable[[_Env], Value]


@functools.lru_cache(maxsize=8192)
def _compiled(expr: sympy.Expr) -> Compiled:
    """The expression as nested closures over an _Env: walked once, evaluated many times."""
    if expr.is_Rational:
        return _constant(_fraction(expr))
    if expr is sympy.pi or expr is sympy.E:
        name = "pi" if expr is sympy.pi else "e"

        def constant(env: _Env) -> Value:
            if env.exact:
                raise _InexactError
            return getattr(iv, name)

        return constant
    if expr.is_Float:
        return _constant(Fraction(str(expr)))
    if expr == N_ROWS:
        return lambda env: env.n
    if isinstance(expr, sympy.Symbol):
        name = expr.name
        return lambda env: env.params[name]
    if isinstance(expr, sympy.Indexed):
        column = str(expr.base)
        return lambda env: env.columns[column][env.row]
    if isinstance(expr, sympy.Sum):
        body = _compiled(expr.function)

        def total(env: _Env) -> Value:
            values = []
            for row in range(env.rows):
                env.row = row
                values.append(body(env))
            env.row = 0  # a lone column outside Σ stands for the first row
            return sum(values[1:], values[0])

        return total
    if type(expr) in PIECEWISE:
        return _compiled(expr.rewrite(sympy.Piecewise))
    if type(expr) in DECIDED:
        return DECIDED[type(expr)](expr)
    args = [_compiled(a) for a in expr.args]
    if expr.is_Add:

        def add(env: _Env) -> Value:
            result = args[0](env)
            for arg in args[1:]:
                result = result + arg(env)
            return result

        return add
    if expr.is_Mul:

        def mul(env: _Env) -> Value:
            result = args[0](env)
            for arg in args[1:]:
                result = result * arg(env)
            return result

        return mul
    if expr.is_Pow:
        base, exponent = args
        literal = expr.exp

        def power(env: _Env) -> Value:
            constant = literal.is_Rational
            return _power(base(env), literal, None if constant else exponent(env))

        return power
    if type(expr) in FUNCTIONS:
        function, (argument,) = FUNCTIONS[type(expr)], args
        return lambda env: function(argument(env))
    if type(expr) in EXTREMA:
        pick = EXTREMA[type(expr)]
        return lambda env: _extremum(pick, [arg(env) for arg in args])
    if type(expr) in (logsumexp, softmax):
        return _exponential_mean(expr, args)
    raise DeriveError(f"derive cannot evaluate {type(expr).__name__}")


def _constant(value: Fraction) -> Compiled:
    """A number: itself, or its interval, converted once per precision (not once per row)."""
    intervals: dict[int, Value] = {}

    def constant(env: _Env) -> Value:
        if env.exact:
            return value
        if iv.prec not in intervals:
            intervals[iv.prec] = env.number(value)
        return intervals[iv.prec]

    return constant


# -- functions with kinks and branches ------------------------------------------------------------


def _sign_deciding(expr: sympy.Expr) -> Callable[[_Env], int]:
    """The sign of expr at the point, for a branch to be chosen: from its interval, or, when
    that holds 0 and others, from its exact value; unsure when neither tells."""
    compiled, exactable = _compiled(expr), _may_be_exact(expr)

    def sign(env: _Env) -> int:
        found = _sign(compiled(env))
        if found is None and exactable and not env.exact:
            with contextlib.suppress(_InexactError):
                found = _sign(compiled(env.exact_twin()))
        if found is None:
            raise _NoValueError(Outcome.UNSURE)
        return found

    return sign


def _number(env: _Env, value: Fraction) -> Value:
    return value if env.exact else env.number(value)


def _signum(expr: sympy.sign) -> Compiled:
    """sign(u): −1, 0 or 1 (torch.sign: 0 at 0)."""
    sign = _sign_deciding(expr.args[0])
    return lambda env: _number(env, Fraction(sign(env)))


def _heaviside(expr: sympy.Heaviside) -> Compiled:
    """H(u, h): 1 above 0, 0 below, h at 0 (½ when SymPy's default is kept)."""
    sign = _sign_deciding(expr.args[0])
    at_zero = _compiled(expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2))

    def step(env: _Env) -> Value:
        side = sign(env)
        return at_zero(env) if side == 0 else _number(env, Fraction(int(side > 0)))

    return step


def _tie_share(expr: tie_share) -> Compiled:
    """∂max/∂a: 0 when another argument is larger, else 1 / (1 + the arguments tied with a)."""
    mine, *others = expr.args
    signs = [_sign_deciding(other - mine) for other in others]

    def share(env: _Env) -> Value:
        above = [sign(env) for sign in signs]
        if any(s > 0 for s in above):
            return _number(env, Fraction(0))
        return _number(env, Fraction(1, 1 + above.count(0)))

    return share


def _piecewise(expr: sympy.Piecewise) -> Compiled:
    """where(c, a, b) and the like: the first branch whose condition holds, and only that
    branch computed (the other may be undefined there)."""
    pieces = [(_compiled(piece.expr), _condition(piece.cond)) for piece in expr.args]

    def branch(env: _Env) -> Value:
        for value, holds in pieces:
            if holds(env):
                return value(env)
        raise _NoValueError(Outcome.UNDEFINED)  # no branch holds: SymPy's value is nan

    return branch


COMPARE: dict[type, Callable[[int], bool]] = {
    sympy.StrictGreaterThan: lambda s: s > 0,
    sympy.GreaterThan: lambda s: s >= 0,
    sympy.StrictLessThan: lambda s: s < 0,
    sympy.LessThan: lambda s: s <= 0,
    sympy.Equality: lambda s: s == 0,
    sympy.Unequality: lambda s: s != 0,
}


def _condition(cond) -> Callable[[_Env], bool]:
    """A condition of a branch: a comparison, or And/Or/Not of them, decided at the point."""
    if cond in (sympy.true, sympy.false):
        return lambda env: bool(cond)
    if type(cond) in COMPARE:
        test, sign = COMPARE[type(cond)], _sign_deciding(cond.lhs - cond.rhs)
        return lambda env: test(sign(env))
    parts = [_condition(arg) for arg in cond.args]
    if isinstance(cond, sympy.And):
        return lambda env: all(part(env) for part in parts)
    if isinstance(cond, sympy.Or):
        return lambda env: any(part(env) for part in parts)
    if isinstance(cond, sympy.Not):
        return lambda env: not parts[0](env)
    raise DeriveError(f"derive cannot evaluate the condition {type(cond).__name__}")


def _extremum(pick: Callable, values: list[Value]) -> Value:
    """max or min, of numbers or of intervals (whose image is the interval of the picked ends)."""
    if all(isinstance(v, Fraction) for v in values):
        return pick(values)
    return iv.mpf([pick(_lo(v) for v in values), pick(_hi(v) for v in values)])


def _exponential_mean(expr: sympy.Expr, args: list[Compiled]) -> Compiled:
    """logsumexp(z₁…z_K) = m + log Σ e^(zⱼ − m) and softmax(k, z₁…z_K) = e^(zₖ − m) / Σ e^(zⱼ − m),
    with m the largest lower end: no e^zⱼ is computed that could be beyond the limits."""
    is_softmax = isinstance(expr, softmax)
    logits = args[1:] if is_softmax else args
    chosen = expr.index - 1 if is_softmax else None

    def value(env: _Env) -> Value:
        if env.exact:
            raise _InexactError
        z = [logit(env) for logit in logits]
        m = iv.mpf(max(_lo(v) for v in z))
        terms = []
        for v in z:
            shifted = v - m
            if _hi(shifted) < -MAX_EXP_ARGUMENT:  # only bounded: 0 < e^(zⱼ − m) < e^(−10⁶)
                terms.append(iv.mpf([0, _hi(iv.exp(iv.mpf(-MAX_EXP_ARGUMENT)))]))
            else:
                terms.append(iv.exp(shifted))
        total = sum(terms[1:], terms[0])
        return terms[chosen] / total if is_softmax else m + iv.log(total)

    return value


PIECEWISE = (leaky_relu, huber)  # computed as the branches they are defined by
DECIDED: dict[type, Callable[[sympy.Expr], Compiled]] = {
    sympy.sign: _signum,
    sympy.Heaviside: _heaviside,
    tie_share: _tie_share,
    sympy.Piecewise: _piecewise,
}
EXTREMA = {maximum: max, minimum: min, sympy.Max: max, sympy.Min: min}
EXACT_FUNCTIONS = (
    sympy.Abs,
    relu,
    *PIECEWISE,
    *DECIDED,
    *EXTREMA,
)


@functools.lru_cache(maxsize=8192)
def _may_be_exact(expr: sympy.Expr) -> bool:
    """Only + − × ÷, integer powers and piecewise-rational functions (|u|, relu, max, where…)
    of rationals: exact values are possible."""
    if expr.has(sympy.pi, sympy.E):
        return False
    if any(not isinstance(f, EXACT_FUNCTIONS) for f in expr.atoms(sympy.Function)):
        return False
    powers = (p for p in expr.atoms(sympy.Pow) if not p.exp.is_Integer)
    return next(powers, None) is None


@functools.lru_cache(maxsize=1 << 16)
def value_at(expr: sympy.Expr, point: Point, digits: int = WORKING_DIGITS) -> Value | Outcome:
    """expr at the point: a Fraction when exact, else an interval; or why there is none."""
    compiled = _compiled(expr)
    try:
        if _may_be_exact(expr):
            try:
                return compiled(_Env(point, exact=True))
            except _InexactError:
                pass
        with _precision(digits):
            value = compiled(_Env(point, exact=False, digits=digits))
    except _NoValueError as missing:
        return missing.outcome
    except (ZeroDivisionError, OverflowError):
        return Outcome.UNDEFINED
    return _checked(value)


def _checked(value: Value) -> Value | Outcome:
    if isinstance(value, Fraction):
        if value and abs(math.log10(abs(value.numerator)) - math.log10(value.denominator)) > (
            MAX_DIGITS
        ):
            return Outcome.TOO_LARGE
        return value
    lo, hi = _lo(value), _hi(value)
    if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)):
        return Outcome.UNSURE
    if mpmath.mag(max(abs(lo), abs(hi))) > 3.33 * MAX_DIGITS:
        return Outcome.TOO_LARGE
    # 30 digits at least must be known: an interval wider than that tells nothing
    if hi - lo > mpmath.mpf(10) ** -30 * (1 + max(abs(lo), abs(hi))):
        return Outcome.UNSURE
    return value


class Relation(Enum):
    EQUAL = "equal"  # exactly, or no rounding can tell them apart
    DIFFER = "differ"  # provably different
    UNDEFINED = "undefined"  # the answer is undefined where the derivative is not
    TOO_LARGE = "too_large"  # the answer is beyond the limits where the derivative is not
    UNSURE = "unsure"


def relation(expected: Value, answer: Value | Outcome, digits: int = WORKING_DIGITS) -> Relation:
    """How an answer's value compares with a (defined) derivative's value."""
    if answer is Outcome.UNDEFINED:
        return Relation.UNDEFINED
    if answer is Outcome.TOO_LARGE:
        return Relation.TOO_LARGE
    if answer is Outcome.UNSURE:
        return Relation.UNSURE
    if isinstance(expected, Fraction) and isinstance(answer, Fraction):
        return Relation.EQUAL if expected == answer else Relation.DIFFER
    a, b = (_interval(v, digits) for v in (expected, answer))
    if _hi(a) < _lo(b) or _hi(b) < _lo(a):
        return Relation.DIFFER
    return Relation.EQUAL


def _interval(value: Value, digits: int = WORKING_DIGITS) -> Value:
    if isinstance(value, Fraction):
        with _precision(digits):
            return iv.mpf(value.numerator) / value.denominator
    return value


def as_number(value: Value, digits: int = WORKING_DIGITS) -> sympy.Expr:
    """A value as SymPy shows it: the Rational, or the interval's midpoint as a Float with the
    digits the interval knows."""
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    lo, hi = _lo(value), _hi(value)
    if lo == hi:  # no rounding happened: the number is exactly this binary fraction
        mantissa, exponent = lo.man_exp
        exact = Fraction(mantissa) * Fraction(2) ** exponent
        if exact.denominator <= 10**6:
            return sympy.Rational(exact.numerator, exact.denominator)
    with mpmath.workdps(digits + 10):
        middle = (lo + hi) / 2
        known = digits
        if hi > lo:
            known = min(digits, int(mpmath.log10(abs(middle) / (hi - lo))) if middle else 0)
        known = max(known, 15)
        return sympy.Float(mpmath.nstr(middle, known, strip_zeros=False), known)


# -- the points: where the derivative is defined ------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One derivative to grade answers against: points inside its domain and its values there."""

    derivation: Derivation
    wrt: str
    partial: Partial
    derivative: sympy.Expr  # the partial as computed: named constants replaced by their values
    points: tuple[Point, ...]
    expected: tuple[Value, ...]
    # data sets for counterexamples: the assignment's, then invented ones
    simple_datasets: tuple[tuple[tuple[tuple[str, tuple[Fraction, ...]], ...], ...], ...]
    assignment: tuple[tuple[str, tuple[Fraction, ...]], ...]
    seed: int

    @property
    def loss_columns(self) -> set[str]:
        return {str(b) for b in self.derivation.loss.expr.atoms(sympy.IndexedBase)}

    def concrete(self, expr: sympy.Expr) -> sympy.Expr:
        return _concrete(expr, self.derivation.loss)


def _concrete(expr: sympy.Expr, loss: Loss) -> sympy.Expr:
    """expr as computed: the loss's named constants replaced by their values (λ = 1/10); an
    answer may write either."""
    values = loss.values
    return expr.xreplace(values) if values else expr


def _free(loss: Loss) -> tuple[str, ...]:
    """The names a point gives values to: the parameters, and the constants given no value
    (the answer must be right for every value of those)."""
    return (*loss.params, *loss.missing_values)


def prepare(
    derivation: Derivation,
    wrt: str,
    data: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
) -> Task:
    """The points an answer is compared at, and the derivative's values there (cached: a class
    of answers shares them; forked workers inherit them)."""
    return _prepare(derivation, wrt, _assignment(derivation, data), seed)


def _assignment(derivation: Derivation, data) -> tuple:
    """The assignment's data as exact decimals: its first rows, and rows spread through it."""
    if not data or not derivation.loss.data:
        return ()
    names = derivation.loss.data
    rows = len(data[names[0]])
    if rows <= ASSIGNMENT_ROWS:
        chosen = range(rows)
    else:
        half = ASSIGNMENT_ROWS // 2
        chosen = sorted({*range(half), *(int(k * rows / half) for k in range(half))})
    return tuple(
        (name, tuple(Fraction(repr(float(data[name][k]))) for k in chosen)) for name in names
    )


@functools.lru_cache(maxsize=32)
def _prepare(derivation: Derivation, wrt: str, assignment: tuple, seed: int) -> Task:
    partial = next(p for p in derivation.partials if p.param == wrt)
    loss = derivation.loss
    derivative = _concrete(partial.textbook, loss)
    rng = random.Random(seed)
    points, values = [], []
    for point in itertools.islice(_random_points(loss, assignment, rng), MAX_CANDIDATES):
        value = _inside(derivation, derivative, point)
        if value is not None:
            points.append(point)
            values.append(value)
            if len(points) == TARGET_POINTS:
                break
    if len(points) < MIN_POINTS:
        raise UndecidedError(
            f"∂L/∂{wrt} is defined at only {len(points)} of the {MAX_CANDIDATES} points derive "
            "tried: it cannot be checked"
        )
    return Task(
        derivation=derivation,
        wrt=wrt,
        partial=partial,
        derivative=derivative,
        points=tuple(points),
        expected=tuple(values),
        simple_datasets=(
            tuple(_assignment_datasets(loss, assignment)),
            tuple(_simple_datasets(loss)),
        ),
        assignment=assignment,
        seed=seed,
    )


def _inside(derivation: Derivation, expected: sympy.Expr, point: Point) -> Value | None:
    """The derivative's value where the loss is defined and differentiable and the derivative
    defined, else None."""
    value = value_at(expected, point)
    loss = derivation.loss.expr
    if isinstance(value, Outcome) or isinstance(value_at(loss, point), Outcome):
        return None
    return None if _on_a_kink(loss, point) else value


@functools.lru_cache(maxsize=1024)
def _switch_expressions(expr: sympy.Expr) -> tuple[sympy.Expr, ...]:
    """What decides a branch: |u|, relu(u), sign(u) and H(u) switch at u = 0, max and min
    where two arguments tie, where(a < b, …) at a = b."""
    found = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside, relu, leaky_relu)):
            found.append(node.args[0])
        elif isinstance(node, (*EXTREMA, tie_share)):
            found.extend(a - b for a, b in itertools.combinations(node.args, 2))
        elif isinstance(node, sympy.Piecewise):
            for piece in node.args:
                found.extend(
                    c.lhs - c.rhs for c in piece.cond.atoms(sympy.core.relational.Relational)
                )
    return tuple(dict.fromkeys(found))


@functools.lru_cache(maxsize=64)
def _switches(expr: sympy.Expr) -> tuple[Callable[[_Env], int], ...]:
    """The loss's switches, as signs: where one is 0 the loss has a kink (or a jump), and the
    derivative only a convention's value (torch's): an answer is not judged there."""
    return tuple(_sign_deciding(switch) for switch in _switch_expressions(expr))


@functools.lru_cache(maxsize=1 << 14)
def _on_a_kink(expr: sympy.Expr, point: Point) -> bool:
    """Whether a switch of the loss is at 0 in some row of the point (or cannot be told from
    0 there)."""
    switches = _switches(expr)
    if not switches:
        return False
    env = _Env(point, exact=False)
    with _precision(WORKING_DIGITS):
        for row in range(max(point.rows, 1)):
            for sign in switches:
                env.row = row
                try:
                    if sign(env) == 0:
                        return True
                except _NoValueError:
                    return True
    return False


def _positive_columns(loss) -> set[str]:
    """Columns the loss takes a log, a root or a reciprocal of: their random values are > 0."""
    positive = set()
    for node in sympy.preorder_traversal(loss.expr):
        if isinstance(node, sympy.log):
            inside = node.args[0]
        elif node.is_Pow and not (node.exp.is_Integer and node.exp > 0):
            inside = node.base
        else:
            continue
        positive |= {str(b) for b in inside.atoms(sympy.IndexedBase)}
    return positive


def _random_points(loss, assignment: tuple, rng: random.Random) -> Iterator[Point]:
    """Parameters over several scales; data sets of 1…9 rows (and the assignment's)."""
    positive = _positive_columns(loss)
    scales = (_small, _decimal, _small, _large, _decimal, _tiny, _ladder)
    for k in itertools.count():
        params = {
            name: scales[(k + 2 * j) % len(scales)](rng) for j, name in enumerate(_free(loss))
        }
        data: dict[str, tuple[Fraction, ...]] = {}
        if loss.data and assignment and k % 4 == 0:
            data = dict(assignment)
        elif loss.data:
            rows = 1 + k % 9
            for name in loss.data:
                data[name] = tuple(_datum(rng, name in positive, k) for _ in range(rows))
            data = _one_hot(loss, data, rng)
        yield _point(params, data)


def _one_hot(loss: Loss, data: dict, rng: random.Random | None, shift: int = 0) -> dict:
    """Target columns the derivation took to be one-hot (y₁ + … + y_K = 1, which the
    assignment's data showed) are one-hot in every data set too: row r of class r + shift
    (mod K), or of a random class."""
    rows = len(next(iter(data.values()), ()))
    for group in loss.one_hot:
        classes = [rng.randrange(len(group)) if rng else r + shift for r in range(rows)]
        for position, name in enumerate(group):
            data[name] = tuple(Fraction(int(c % len(group) == position)) for c in classes)
    return data


def _small(rng: random.Random) -> Fraction:
    return Fraction(rng.randint(-9, 9), rng.randint(1, 7))


def _decimal(rng: random.Random) -> Fraction:
    return Fraction(rng.randint(-9_999_999, 9_999_999), 10**6)


def _tiny(rng: random.Random) -> Fraction:
    return Fraction(rng.randint(-999, 999), 10**5)


def _large(rng: random.Random) -> Fraction:
    digits = rng.randint(2, 6)
    return Fraction(rng.choice((-1, 1)) * rng.randint(10 ** (digits - 1), 10**digits), 7)


def _ladder(rng: random.Random) -> Fraction:
    return rng.choice((-1, 1)) * rng.choice(LADDER)


def _datum(rng: random.Random, positive: bool, k: int) -> Fraction:
    if k % 3 == 2:  # decimals, some with many digits
        value = Fraction(rng.randint(-99_999, 99_999), 10 ** rng.randint(1, 4))
    else:
        value = Fraction(rng.randint(-9, 9), rng.choice((1, 1, 1, 2, 3)))
    if positive:
        value = abs(value) or Fraction(1, 3)
    return value


PATTERNS = {
    2: ((1, 2), (2, 1), (1, 3), (2, 3), (0, 1)),
    3: ((1, 2, 3), (2, 3, 5), (3, 1, 2)),
    1: ((1,), (2,)),
    4: ((1, 2, 3, 4), (2, 1, 4, 3)),
    5: ((1, 2, 3, 4, 5), (2, 1, 5, 3, 4)),
}


def _assignment_datasets(loss, assignment: tuple) -> Iterator[tuple]:
    """The assignment's data for a counterexample: whole, or its first rows when it is long."""
    if loss.data and assignment:
        rows = len(assignment[0][1])
        for shown in (rows,) if rows <= 12 else (3, 2, 5):
            yield tuple((name, values[:shown]) for name, values in assignment)


def _simple_datasets(loss) -> Iterator[tuple]:
    """Data sets a student can check by hand, simplest first: two or three rows of small
    integers (then one, four, five), one pattern per column in turn (never every combination:
    7ᵏ of them for k columns)."""
    if not loss.data:
        yield ()
        return
    positive = _positive_columns(loss)
    for patterns in PATTERNS.values():
        nonzero = [p for p in patterns if 0 not in p]
        for k in range(len(patterns)):
            data = {}
            for j, name in enumerate(loss.data):
                usable = nonzero if name in positive else patterns
                data[name] = tuple(map(Fraction, usable[(k + j) % len(usable)]))
            yield tuple(_one_hot(loss, data, None, shift=k).items())


def _by_total(count: int, limit: int) -> Iterator[tuple[int, ...]]:
    """Tuples of `count` indices below `limit`, in order of their sum (lazily)."""
    for total in range(count * (limit - 1) + 1):
        yield from _compositions(total, count, limit)


def _compositions(total: int, count: int, limit: int) -> Iterator[tuple[int, ...]]:
    if count == 0:
        if total == 0:
            yield ()
        return
    for first in range(min(total, limit - 1) + 1):
        for rest in _compositions(total - first, count - 1, limit):
            yield (first, *rest)


def _simple_points(task: Task) -> Iterator[tuple[Point, Value]]:
    """Points inside the domain in order of simplicity: small parameter values on the
    assignment's data first, then on small invented data sets."""
    free = _free(task.derivation.loss)
    for datasets in task.simple_datasets:
        tried = 0
        for chosen in _by_total(len(free), len(SIMPLE_VALUES)):
            params = {name: SIMPLE_VALUES[k] for name, k in zip(free, chosen, strict=True)}
            for data in datasets:
                if tried == SIMPLE_TRIES // 2:
                    break
                tried += 1
                point = _point(params, dict(data))
                value = _inside(task.derivation, task.derivative, point)
                if value is not None:
                    yield point, value
            if tried == SIMPLE_TRIES // 2 or not datasets:
                break


# -- the verdict ----------------------------------------------------------------------------------


def check(
    derivation: Derivation,
    wrt: str,
    answer: sympy.Expr,
    seed: int = 0,
    data: Mapping[str, Sequence[float]] | None = None,
) -> Verdict:
    """Grade `answer` as ∂L/∂wrt, with the assignment's `data` among the data sets. Deterministic
    for a given seed. BeyondLimitsError: the answer cannot be computed where it must be."""
    return grade(prepare(derivation, wrt, data, seed), answer)


def grade(task: Task, answer: sympy.Expr) -> Verdict:
    """The verdict on an answer as written; it is computed with the constants' values."""
    verdict = _grade(task, task.concrete(answer))
    return dataclasses.replace(verdict, answer=answer)


def _grade(task: Task, answer: sympy.Expr) -> Verdict:
    expected = task.derivative
    relations = []
    for point, value in zip(task.points, task.expected, strict=True):
        found = relation(value, value_at(answer, point))
        if found in (Relation.DIFFER, Relation.UNDEFINED, Relation.TOO_LARGE):
            return _wrong(task, answer)  # which searches the simplest point itself
        relations.append(found)
    agreeing = relations.count(Relation.EQUAL)
    if agreeing < MIN_POINTS:
        raise UndecidedError("the answer cannot be computed precisely enough at enough points")
    difference = _symbolic_difference(expected, answer)
    if difference is not None and difference == 0:
        return _right(task, answer, symbolic=True, points=agreeing)
    if difference is not None and _nonzero_number(difference):
        return _wrong(task, answer, offset=difference)
    # no proof: the same points at a precision beyond the answer's own numbers, then more points
    digits = _digits_needed(answer, expected)
    if digits > WORKING_DIGITS:
        for point, value in zip(task.points, task.expected, strict=True):
            if not isinstance(value, Fraction) or not isinstance(value_at(answer, point), Fraction):
                precise = value_at(expected, point, digits)
                got = value_at(answer, point, digits)
                if relation(precise, got, digits) is Relation.DIFFER:
                    return _wrong(task, answer, digits=digits)
    others = (*_extra_points(task), *_boundary_points(task, answer))
    for point in others:
        value = _inside(task.derivation, expected, point)
        if value is None:
            continue
        found = relation(value, value_at(answer, point))
        if found not in (Relation.EQUAL, Relation.UNSURE):
            return _wrong(task, answer, others=others)
    if _switch_expressions(answer) or _switch_expressions(expected):
        # branches can differ on a small set: the simple points too (3/2 lies in [1, 2))
        for point, value in _simple_points(task):
            if relation(value, value_at(answer, point)) not in (Relation.EQUAL, Relation.UNSURE):
                return _wrong(task, answer)
    return _right(task, answer, symbolic=False, points=agreeing)


def _right(task: Task, answer: sympy.Expr, symbolic: bool, points: int) -> Verdict:
    return Verdict(
        correct=True,
        expected=task.partial.textbook,
        answer=answer,
        diagnosis=None,
        detail=None,
        counterexample=None,
        symbolic=symbolic,
        params=task.derivation.loss.params,
        points=points,
    )


def _extra_points(task: Task) -> Iterator[Point]:
    """More data sets (10 to 30 rows) and other parameter values: an answer that agrees at the
    usual points but is not shown equal must agree here too."""
    loss = task.derivation.loss
    rng = random.Random(task.seed + 1)
    positive = _positive_columns(loss)
    for k in range(EXTRA_POINTS):
        params = {name: (_decimal, _large, _small)[k % 3](rng) for name in _free(loss)}
        rows = 10 + 3 * k
        data = {
            name: tuple(_datum(rng, name in positive, k) for _ in range(rows)) for name in loss.data
        }
        yield _point(params, _one_hot(loss, data, rng))


def _boundary_points(task: Task, answer: sympy.Expr) -> Iterator[Point]:
    """Points between the places where a branch of the answer or of the derivative switches,
    for switches linear in a parameter (where(w*x + b > y, …) switches at w = (y − b)/x, row
    by row). With the other values those of a simple or a task point, each stretch between two
    switches (and beyond the outer ones) gets a point: an answer wrong only on [1, 1.001) is
    found."""
    free = _free(task.derivation.loss)
    switches = dict.fromkeys(_switch_expressions(answer) + _switch_expressions(task.derivative))
    made = 0
    for name in free:
        lines = []  # (slope, rest): the switch is slope · name + rest
        for switch in switches:
            variable = next((s for s in switch.free_symbols if s.name == name), None)
            slope = None if variable is None else sympy.diff(switch, variable)
            if slope is not None and not slope.has(variable):
                lines.append((slope, switch.xreplace({variable: sympy.Integer(0)})))
        simple = (point for point, _ in _simple_points(task))
        bases = [*itertools.islice(simple, BOUNDARY_BASES), *task.points[:BOUNDARY_BASES]]
        for base in bases if lines else ():
            params, data = base._fractions
            crossings = set()
            for row in range(min(max(base.rows, 1), BOUNDARY_ROWS)):
                for slope, rest in lines:
                    a, b = _in_row(slope, base, row), _in_row(rest, base, row)
                    if a is not None and b is not None and a != 0:
                        crossings.add(-b / a)
            if not crossings:
                continue
            ends = sorted(crossings)
            between = [(x + y) / 2 for x, y in itertools.pairwise(ends)]
            stretches = [ends[0] - BOUNDARY_STEP, *between, ends[-1] + BOUNDARY_STEP]
            for value in stretches[: BOUNDARY_POINTS - made]:
                made += 1
                yield _point({**params, name: value}, data)


def _in_row(expr: sympy.Expr, point: Point, row: int) -> Fraction | None:
    """expr at the point, in one row of its data: exact, or its interval's middle to 15 digits
    (a place to look near, not a value to judge by); None where it has none."""
    env = _Env(point, exact=_may_be_exact(expr))
    env.row = row
    try:
        with _precision(WORKING_DIGITS):
            value = _compiled(expr)(env)
    except (_NoValueError, _InexactError, ZeroDivisionError, OverflowError):
        return None
    if isinstance(value, Fraction):
        return value
    if not (mpmath.isfinite(_lo(value)) and mpmath.isfinite(_hi(value))):
        return None
    return Fraction(mpmath.nstr((_lo(value) + _hi(value)) / 2, 15))


def _digits_needed(*exprs: sympy.Expr) -> int:
    """Working digits that see past every number written in the expressions."""
    sizes = [
        len(str(abs(r.p))) + len(str(r.q)) for expr in exprs for r in expr.atoms(sympy.Rational)
    ]
    return max(WORKING_DIGITS, max(sizes, default=0) + 30)


def _wrong(
    task: Task,
    answer: sympy.Expr,
    offset: sympy.Expr | None = None,
    digits: int = WORKING_DIGITS,
    others: tuple[Point, ...] = (),
) -> Verdict:
    # the simplest points may need more digits than the working ones to show the difference
    digits = max(digits, _digits_needed(answer, task.derivative))
    if offset is not None:
        digits = max(digits, _digits_for(offset))
    shown = _counterexample(task, answer, digits, others)
    if shown is None:
        raise UndecidedError("no point was found where the answer and the derivative differ")
    diagnosis, detail = diagnose(task, answer)
    used = task.loss_columns | {str(b) for b in answer.atoms(sympy.IndexedBase)}
    shown = Counterexample(shown.point.only(used), shown.expected, shown.answer)
    return Verdict(
        correct=False,
        expected=task.partial.textbook,
        answer=answer,
        diagnosis=diagnosis,
        detail=detail,
        counterexample=shown,
        symbolic=False,
        params=task.derivation.loss.params,
        points=len(task.points),
    )


def _digits_for(offset: sympy.Expr) -> int:
    """Digits to see a constant difference: its size below 1, plus a margin."""
    magnitude = value_at(abs(offset), Point(()), WORKING_DIGITS)
    if isinstance(magnitude, Outcome):
        return WORKING_DIGITS
    if isinstance(magnitude, Fraction):
        exponent = math.log10(magnitude.numerator) - math.log10(magnitude.denominator)
    else:
        exponent = float(mpmath.log10(_lo(magnitude)))
    return max(WORKING_DIGITS, int(-exponent) + 40)


def _counterexample(
    task: Task, answer: sympy.Expr, digits: int, others: tuple[Point, ...]
) -> Counterexample | None:
    """The simplest point inside the domain where the answer differs from the derivative (or is
    undefined there): among the simple points, then the task's (or `others`, when the answer
    agreed at the task's). Beyond the limits at a point first: BeyondLimitsError."""
    expected = task.derivative

    def event(point: Point, value: Value) -> Counterexample | None:
        if digits > WORKING_DIGITS:
            value = value_at(expected, point, digits)
        got = value_at(answer, point, digits)
        found = relation(value, got, digits)
        if found is Relation.TOO_LARGE:
            raise BeyondLimitsError(point)
        if found is Relation.DIFFER:
            return Counterexample(point, as_number(value, digits), as_number(got, digits))
        if found is Relation.UNDEFINED:
            return Counterexample(point, as_number(value, digits), None)
        return None

    for point, value in _simple_points(task):
        shown = event(point, value)
        if shown is not None:
            return shown
    candidates = zip(task.points, task.expected, strict=True)
    if others:
        candidates = (
            (p, v) for p in others if (v := _inside(task.derivation, expected, p)) is not None
        )
    for point, value in sorted(candidates, key=lambda pv: _complexity(pv[0])):
        shown = event(point, value)
        if shown is not None:
            return _simplified(task, answer, shown, digits, event)
    return None


def _complexity(point: Point) -> tuple:
    params, data = point._fractions
    values = [*params.values(), *(v for vs in data.values() for v in vs)]
    return (
        point.rows,
        max((len(str(v.numerator)) + len(str(v.denominator)) for v in values), default=0),
    )


def _simplified(task: Task, answer, shown: Counterexample, digits, event) -> Counterexample:
    """The same counterexample with each parameter as round as it can be (w = 2000 rather than
    w = 12345/7), keeping the data and the difference."""
    params, data = shown.point._fractions
    for name in list(params):
        for simpler in _rounder(params[name]):
            trial = _point({**params, name: simpler}, data)
            value = _inside(task.derivation, task.derivative, trial)
            if value is None:
                continue
            try:
                found = event(trial, value)
            except BeyondLimitsError:
                found = None
            if found is not None:
                params[name], shown = simpler, found
                break
    return shown


def _rounder(value: Fraction) -> Iterator[Fraction]:
    """Rounder numbers near `value`, roundest first: 2000, 1200, 1230, 1235, 1234.6…"""
    if value == 0:
        return
    exponent = math.floor(math.log10(abs(value)))
    for digits in range(1, 7):
        scale = Fraction(10) ** (exponent - digits + 1)
        for rounded in (math.floor(value / scale), math.ceil(value / scale)):
            candidate = rounded * scale
            if candidate != value and candidate != 0:
                yield candidate


# -- is the difference 0? -----------------------------------------------------------------------


def _small_enough(expr: sympy.Expr) -> bool:
    """Small enough for expand and cancel: few nodes, no high power."""
    for count, node in enumerate(sympy.preorder_traversal(expr)):
        if count > SYMBOLIC_NODES:
            return False
        if node.is_Pow and node.exp.is_Number and abs(node.exp) > SYMBOLIC_DEGREE:
            return False
    return True


def _symbolic_difference(expected: sympy.Expr, answer: sympy.Expr) -> sympy.Expr | None:
    """expected − answer, simplified as far as cheap rules go (Σ merged into one sum, σ written
    with exp, then cancelled); None when the expressions are too large to try."""
    difference = expected - answer
    if not _small_enough(difference):
        return None
    merged = _merge_sums(sympy.expand(difference))
    if merged is None:
        return difference
    outside, body = (_cancelled(part) for part in merged)
    return outside + sympy.Sum(body, (INDEX, 1, N_ROWS)) if body != 0 else outside


def _nonzero_number(expr: sympy.Expr) -> bool:
    return bool(expr.is_number and expr.is_zero is False)


def _merge_sums(expr: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr] | None:
    """expr = outside + Σ body, when every Σ appears linearly with a row-free coefficient."""
    outside, body = sympy.Integer(0), sympy.Integer(0)
    for term in sympy.Add.make_args(expr):
        sums = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.Sum)]
        if not sums:
            outside += term
            continue
        if len(sums) > 1:
            return None
        coefficient = term / sums[0]
        if coefficient.has(sympy.Indexed):
            return None
        body += coefficient * sums[0].function
    return outside, body


def _cancelled(expr: sympy.Expr) -> sympy.Expr:
    rewritten = expr.rewrite(sympy.exp) if expr.has(sigmoid, softplus) else expr
    return sympy.cancel(sympy.expand(rewritten))


# -- the diagnosis ----------------------------------------------------------------------------


def diagnose(
    task: Task, answer: sympy.Expr
) -> tuple[Diagnosis | None, str | tuple[sympy.Expr, ...] | None]:
    """The typical mistake this answer makes, if one fits, and the quantity it names: tried from
    the most specific."""
    derivation, partial = task.derivation, task.partial
    loss, expected = derivation.loss, task.derivative
    points = task.points[:DIAGNOSIS_POINTS]
    expected_values = list(task.expected[:DIAGNOSIS_POINTS])
    given = [value_at(answer, p) for p in points]

    def values(expr: sympy.Expr) -> list:
        return [value_at(expr, p) for p in points]

    def fits(candidate: sympy.Expr) -> bool:  # the answer is this candidate
        return _fits(given, values(candidate))

    def corrects(repaired: sympy.Expr) -> bool:  # the answer, repaired, is the derivative
        return _fits(values(repaired), expected_values)

    for other in derivation.partials:
        if other.param != partial.param and fits(task.concrete(other.textbook)):
            return Diagnosis.WRONG_PARAMETER, other.param
    for column in sorted(task.loss_columns):
        if any(fits(c) for c in _column_derivatives(loss.expr, column)):
            return Diagnosis.COLUMN_AS_PARAMETER, column
    if fits(-expected):
        return Diagnosis.SIGN, None
    for name, inner, derivative in _inner_derivatives(partial.steps):
        repaired = _into_sums(answer, task.concrete(derivative))
        if name == "sigmoid" and corrects(repaired):
            return Diagnosis.SIGMOID_DERIVATIVE, (inner,)
        if name == "chain" and derivative != 1 and corrects(repaired):
            return Diagnosis.CHAIN, (derivative, inner)
    closed, moved = _closed_late(answer)
    if moved is not None and corrects(closed):
        return Diagnosis.MEAN_TOO_EARLY, (moved,)
    if loss.data and answer.has(sympy.Indexed) and not answer.has(sympy.Sum):
        found = _dropped(answer, loss.expr.has(1 / N_ROWS), values, expected_values, points)
        if found is not None:
            return found
    # after the chain rule: a missing constant inner derivative is the more telling reason
    ratio = _ratio(given, expected_values, points, bool(loss.data))
    if ratio is not None:
        return Diagnosis.FACTOR, (ratio,)
    term = _one_term(partial.steps, given, expected_values, points, task.concrete)
    if term is not None:
        return Diagnosis.TERM, term
    return None, None


def _fits(given: list, candidate: list) -> bool:
    """Equal wherever both are defined, and defined together at three points at least."""
    agree = 0
    for a, b in zip(given, candidate, strict=True):
        if isinstance(a, Outcome) or isinstance(b, Outcome):
            continue
        if relation(b, a) is not Relation.EQUAL:
            return False
        agree += 1
    return agree >= 3


def _dropped_forms(expr: sympy.Expr) -> list[sympy.Expr]:
    """The expression, and its one-row forms: Σ and mean(…) replaced by one row's term."""
    one_row = expr.replace(sympy.Sum, lambda body, *limits: body)
    return [expr, one_row, one_row.xreplace({N_ROWS: 1})]


@functools.lru_cache(maxsize=64)
def _column_derivatives(loss_expr: sympy.Expr, column: str) -> list[sympy.Expr]:
    """∂L/∂x taken as if the data column x were the parameter, (1/n) Σ ∂ℓᵢ/∂xᵢ, and its
    one-row forms (computed once per loss, not once per answer)."""
    stand_in = sympy.Dummy(column, real=True)
    replaced = loss_expr.xreplace({data_column(column): stand_in})
    derivative = sympy.diff(replaced, stand_in).xreplace({stand_in: data_column(column)})
    return _dropped_forms(derivative)


def _dropped(answer, means: bool, values, expected: list, points) -> tuple | None:
    """One row's term, with the Σ (or the mean) missing: which one, and any factor beside it."""
    total = sympy.Sum(answer, (INDEX, 1, N_ROWS))
    reductions = ((total, Diagnosis.SUM_DROPPED), (total / N_ROWS, Diagnosis.MEAN_DROPPED))
    for reduction, code in reductions:
        if _fits(values(reduction), expected):
            return code, None
    # with a factor too: the reduction the loss itself uses
    reduction, code = reductions[1] if means else reductions[0]
    ratio = _ratio(values(reduction), expected, points, True)
    return None if ratio is None else (code, (ratio,))


def _closed_late(answer: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr | None]:
    """2 mean(w x + b − y) · x → 2 mean((w x + b − y) x): row factors outside Σ moved in."""
    moved = []

    def move(term: sympy.Expr) -> sympy.Expr:
        factors = sympy.Mul.make_args(term)
        sums = [f for f in factors if isinstance(f, sympy.Sum)]
        rows = [f for f in factors if f.has(sympy.Indexed) and not f.has(sympy.Sum)]
        if len(sums) != 1 or not rows:
            return term
        rest = [f for f in factors if f is not sums[0] and f not in rows]
        moved.extend(rows)
        inside = sympy.Sum(sums[0].function * sympy.Mul(*rows), *sums[0].limits)
        return sympy.Mul(*rest) * inside

    closed = sympy.Add(*(move(t) for t in sympy.Add.make_args(answer)))
    return closed, (sympy.Mul(*dict.fromkeys(moved)) if moved else None)


def _ratio(given: list, expected: list, points, over_data: bool) -> sympy.Expr | None:
    """The constant c, or c·nᵏ, with answer = c · expected at every point, named: 2, 1/2, n,
    1/ln 2…; None when there is none (or it is 1)."""
    pairs = [
        (Fraction(p.rows), a, e)
        for p, a, e in zip(points, given, expected, strict=True)
        if not isinstance(a, Outcome) and not isinstance(e, Outcome) and _sign(e) not in (0, None)
    ]
    if len(pairs) < 3:
        return None  # 0 = c · 0 for every c
    for power in (0, 1, -1, 2, -2) if over_data else (0,):
        ratios = [_divide(a, _times(e, rows**power)) for rows, a, e in pairs]
        if all(relation(ratios[0], r) is Relation.EQUAL for r in ratios[1:]):
            constant = _named(ratios[0])
            if constant is None or (constant == 1 and power == 0):
                return None
            return constant * N_ROWS**power
    return None


_CONSTANTS = (
    sympy.Integer(1),
    sympy.pi,
    sympy.E,
    sympy.log(2),
    sympy.log(10),
    sympy.sqrt(2),
    sympy.sqrt(3),
)


def _named(value: Value) -> sympy.Expr | None:
    """A number as a rational times a familiar constant or its reciprocal (2, 1/2, 1/ln 2, π/4),
    or None when it is none of these."""
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if _sign(value) == 0:
        return sympy.Integer(0)
    with mpmath.workdps(WORKING_DIGITS):
        middle = (_lo(value) + _hi(value)) / 2
        for constant in _CONSTANTS:
            for base in (constant, 1 / constant):
                quotient = middle / mpmath.mpf(sympy.N(base, WORKING_DIGITS + 5))
                guess = Fraction(mpmath.nstr(quotient, 40)).limit_denominator(1000)
                named = sympy.Rational(guess.numerator, guess.denominator) * base
                if guess and abs(guess.numerator) < 10**6:
                    check_value = value_at(named, Point(()))
                    if not isinstance(check_value, Outcome) and (
                        relation(value, check_value) is Relation.EQUAL
                    ):
                        return named
    return None


def _one_term(steps: Step, given: list, expected: list, points, concrete) -> tuple | None:
    """A loss of several terms whose answer is right but for one term: that term, its
    derivative, and c with the answer holding c times it (0: the term's derivative is missing)."""
    if steps.rule != "sum":
        return None
    for term_step in steps.substeps:
        derivative = term_step.result
        if derivative == 0:
            continue
        values = [value_at(concrete(derivative), p) for p in points]
        if any(isinstance(v, Outcome) for v in values):
            continue
        # the answer's version of this term: the answer less the other terms' derivatives
        theirs = [
            a if isinstance(a, Outcome) else _minus(_plus(a, v), e)
            for a, v, e in zip(given, values, expected, strict=True)
        ]
        if _fits(theirs, [Fraction(0)] * len(points)):
            return term_step.expr, textbook_form(derivative)[0], sympy.Integer(0)
        ratio = _ratio(theirs, values, points, False)
        if ratio is not None:
            return term_step.expr, textbook_form(derivative)[0], ratio
    return None


def _exact_or_interval(operation):
    def apply(a: Value, b: Value) -> Value:
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return operation(a, b)
        return operation(_interval(a), _interval(b))

    return apply


_plus = _exact_or_interval(lambda a, b: a + b)
_minus = _exact_or_interval(lambda a, b: a - b)
_times = _exact_or_interval(lambda a, b: a * b)
_divide = _exact_or_interval(lambda a, b: a / b)


def _inner_derivatives(step: Step) -> Iterator[tuple[str, sympy.Expr, sympy.Expr]]:
    """Each chain rule's inner function and the factor it contributes: du/dx, or σ(1−σ)."""
    if step.rule == "chain":
        outer, rest = step.substeps
        if outer.rule == "sigmoid":
            s = sigmoid(step.inner)
            yield "sigmoid", step.inner, s * (1 - s)
        yield "chain", step.inner, rest.result
    for sub in step.substeps:
        yield from _inner_derivatives(sub)


def _into_sums(answer: sympy.Expr, factor: sympy.Expr) -> sympy.Expr:
    """answer · factor, with the factor moved inside Σ when it depends on the row."""
    if factor.has(sympy.Indexed) and answer.has(sympy.Sum):
        return answer.replace(sympy.Sum, lambda body, *limits: sympy.Sum(body * factor, *limits))
    return answer * factor
