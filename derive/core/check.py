"""Derivation + a hand-derived answer → Verdict: right, or wrong with a reason and a point.

Right means equal as functions: the two agree at several random points (exact rational
arithmetic where both are rational, 50 digits otherwise), with random small data sets for
losses over data; where SymPy can also show the difference is 0, it does. Wrong is never said
without a point where they differ, and that point is the simplest one found: small dyadic
parameter values and two or three rows of small integers.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import sympy

from derive.core.derivation import Derivation, Partial, Step
from derive.core.errors import DeriveError
from derive.core.functions import sigmoid, softplus
from derive.core.parse import parse_expression
from derive.core.symbols import INDEX, N_ROWS, data_column

PRECISION = 50  # digits, for answers with exp, log, σ...
TOLERANCE = sympy.Float("1e-30", PRECISION)
SAMPLES = 6  # random points that must agree for "right"
SIMPLE_VALUES = [sympy.Integer(v) for v in (1, 2, -1)] + [
    sympy.Rational(v) for v in ("1/2", "3/2", "-1/2")
]


@dataclass(frozen=True)
class Point:
    """Parameter values and, for losses over data, a small data set (hashable: values are
    cached per point)."""

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


@dataclass(frozen=True)
class Counterexample:
    point: Point
    expected: sympy.Expr  # the true derivative there
    answer: sympy.Expr


@dataclass(frozen=True)
class Verdict:
    correct: bool
    expected: sympy.Expr  # the true derivative, in textbook form
    answer: sympy.Expr  # the answer as parsed
    diagnosis: str | None  # a key of the catalog's [check] section
    # what the diagnosis names: a parameter (wrong_parameter), a constant factor (factor,
    # mean_dropped, sum_dropped), (du/dx, u) for a chain rule, (z,) for σ(z)
    detail: str | tuple[sympy.Expr, ...] | None
    counterexample: Counterexample | None
    symbolic: bool  # SymPy also showed the difference to be 0
    params: tuple[str, ...] = ()  # the loss's parameters, in order (for printing)


def parse_answer(text: str, derivation: Derivation) -> sympy.Expr:
    """The answer through the same safe parser, with the loss's parameters and data names."""
    loss = derivation.loss
    expr = parse_expression(text, loss.data, per_row=True)
    known = set(loss.params) | {name for name, _ in loss.constants}
    known |= set(loss.data) | {"n", "i"} if loss.data else set()
    unknown = sorted({s.name for s in expr.atoms(sympy.Symbol)} - known)
    if unknown:
        names = ", ".join(loss.params)
        raise DeriveError(
            f"the answer uses {', '.join(unknown)}, which the loss does not ({names})", text, None
        )
    return expr


def check(derivation: Derivation, wrt: str, answer: sympy.Expr, seed: int = 0) -> Verdict:
    """Grade `answer` as ∂L/∂wrt. Deterministic for a given seed."""
    partial = next(p for p in derivation.partials if p.param == wrt)
    expected = partial.textbook
    rng = random.Random(seed)
    if not same(expected, answer, _random_points(derivation, rng)):
        return _wrong(derivation, partial, answer, rng)
    return Verdict(
        correct=True,
        expected=expected,
        answer=answer,
        diagnosis=None,
        detail=None,
        counterexample=None,
        symbolic=_symbolically_zero(expected - answer),
        params=derivation.loss.params,
    )


# -- evaluation at a point --------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def at(expr: sympy.Expr, point: Point) -> sympy.Expr | None:
    """expr at the point: exact when it can be, else 50 digits; None where undefined."""
    rows = point.rows

    def total(body, *limits):
        return sympy.Add(*(_row(body, point, k) for k in range(rows)))

    concrete = expr.replace(sympy.Sum, total) if point.data else expr
    concrete = _row(concrete, point, 0) if point.data and concrete.has(sympy.Indexed) else concrete
    values = {sympy.Symbol(name, real=True): v for name, v in point.params.items()}
    if point.data:
        values[N_ROWS] = sympy.Integer(rows)
    result = concrete.xreplace(values)
    if not result.is_number:
        raise ValueError(f"not a number at {point}: {result}")  # a bug, not bad input
    if not result.is_Rational:
        result = result.evalf(PRECISION)
    if result.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    if result.has(sympy.I):
        real, imaginary = result.as_real_imag()
        if abs(imaginary) > TOLERANCE * (1 + abs(real)):
            return None  # log or root of a negative number: undefined here
        result = real
    return result


def _row(expr: sympy.Expr, point: Point, k: int) -> sympy.Expr:
    return expr.xreplace({data_column(name): values[k] for name, values in point.data.items()})


def _agree(a: sympy.Expr, b: sympy.Expr, point: Point) -> bool | None:
    """Equal at the point; None when either is undefined there."""
    x, y = at(a, point), at(b, point)
    if x is None or y is None:
        return None
    return _close(x, y)


def _close(x: sympy.Expr, y: sympy.Expr) -> bool:
    if x.is_Rational and y.is_Rational:
        return x == y
    return bool(abs(x - y) <= TOLERANCE * (1 + abs(x) + abs(y)))


def same(a: sympy.Expr, b: sympy.Expr, points: list[Point], enough: int = 3) -> bool:
    """Equal at every point where both are defined, and defined at `enough` of them."""
    results = [_agree(a, b, p) for p in points]
    return False not in results and results.count(True) >= min(enough, len(points))


def _random_points(derivation: Derivation, rng: random.Random) -> list[Point]:
    loss = derivation.loss

    def number():
        return sympy.Rational(rng.randint(-9, 9), rng.randint(1, 4))

    points = []
    for k in range(SAMPLES):
        rows = 2 + k % 3  # 2, 3 and 4 rows: a factor n shows
        data = tuple((name, tuple(number() for _ in range(rows))) for name in loss.data)
        data = _one_hot(loss, data, [rng.randrange(64) for _ in range(rows)])
        free = tuple((name, number()) for name in (*loss.params, *loss.missing_values))
        points.append(Point(free + _given_constants(loss), data))
    return points


def _one_hot(loss, data: tuple, classes: list[int]) -> tuple:
    """Target columns known to be one-hot (the derivation used y₁ + … + y_K = 1) get one-hot
    rows at every point too: row r is of class classes[r] mod K."""
    rows = {}
    for group in loss.one_hot:
        for position, name in enumerate(group):
            rows[name] = tuple(sympy.Integer(int(c % len(group) == position)) for c in classes)
    return tuple((name, rows.get(name, values)) for name, values in data)


def _given_constants(loss) -> tuple[tuple[str, sympy.Expr], ...]:
    """Named constants with a value (--const lam=0.1) keep it at every point; those without
    one vary like the parameters."""
    return tuple((name, value) for name, value in loss.constants if value is not None)


def _simple_points(derivation: Derivation) -> Iterator[Point]:
    """Points in order of simplicity: small dyadic parameters, then 2 or 3 rows of small ints."""
    loss = derivation.loss
    datasets: list[tuple] = [()]
    if loss.data:
        columns = [(1, 2), (2, 1), (1, 3), (0, 1), (1, 2, 3), (2, 3, 5), (3, 1, 2)]
        datasets = []
        for combo in itertools.product(columns, repeat=len(loss.data)):
            if len({len(c) for c in combo}) == 1:
                data = tuple(
                    (name, tuple(map(sympy.Integer, c)))
                    for name, c in zip(loss.data, combo, strict=True)
                )
                datasets.append(_one_hot(loss, data, list(range(len(combo[0])))))
    free = (*loss.params, *loss.missing_values)
    values = itertools.product(SIMPLE_VALUES, repeat=len(free))
    for params in itertools.islice(values, 200):
        for data in datasets[:12]:
            yield Point(tuple(zip(free, params, strict=True)) + _given_constants(loss), data)


# -- wrong: the point and the reason ----------------------------------------------------------


def _wrong(derivation: Derivation, partial: Partial, answer: sympy.Expr, rng) -> Verdict:
    expected = partial.textbook
    # the simplest point first; random ones when the simple ones all agree or are undefined
    # drawn only if needed (a generator's inner iterable is evaluated lazily), as before
    random_points = (p for _ in (0,) for p in _random_points(derivation, rng) * 3)
    candidates = itertools.chain(_simple_points(derivation), random_points)
    differing = (p for p in candidates if _agree(expected, answer, p) is False)
    point = next(differing, None)
    shown = None if point is None else Counterexample(point, at(expected, point), at(answer, point))
    diagnosis, detail = diagnose(derivation, partial, answer, rng)
    return Verdict(
        correct=False,
        expected=expected,
        answer=answer,
        diagnosis=diagnosis,
        detail=detail,
        counterexample=shown,
        symbolic=False,
        params=derivation.loss.params,
    )


def diagnose(
    derivation: Derivation, partial: Partial, answer: sympy.Expr, rng
) -> tuple[str | None, str | None]:
    """The typical mistake this answer makes, if one fits: tried from the most specific."""
    loss = derivation.loss
    expected = partial.textbook
    points = _random_points(derivation, rng)

    def fits(a, b) -> bool:
        return same(a, b, points)

    for other in derivation.partials:
        if other.param != partial.param and fits(answer, other.textbook):
            return "wrong_parameter", other.param
    if fits(answer, -expected):
        return "sign", None
    for name, inner, derivative in _inner_derivatives(partial.steps):
        if name == "sigmoid":
            if fits(_into_sums(answer, derivative), expected):
                return "sigmoid_derivative", (inner,)
        elif derivative != 1 and fits(_into_sums(answer, derivative), expected):
            return "chain", (derivative, inner)
    # after the chain rule: a missing constant inner derivative is the more telling reason
    factor = _constant_ratio(answer, expected, points, bool(loss.data))
    if factor is not None:
        return "factor", factor
    if loss.data and answer.has(sympy.Indexed) and not answer.has(sympy.Sum):
        total = sympy.Sum(answer, (INDEX, 1, N_ROWS))
        for reduction, code in ((total / N_ROWS, "mean_dropped"), (total, "sum_dropped")):
            ratio = _constant_ratio(reduction, expected, points, True)
            if ratio is not None or fits(reduction, expected):
                return code, ratio
    return None, None


def _constant_ratio(answer, expected, points, over_data: bool) -> tuple[sympy.Expr] | None:
    """The constant c with answer = c · expected, named: 2, 1/2, n, 1/n, 2/n…, or None."""
    candidates = [sympy.Integer(c) for c in (2, 3, 4)] + [sympy.Rational(1, c) for c in (2, 3, 4)]
    if over_data:
        candidates += [N_ROWS, 1 / N_ROWS, 2 * N_ROWS, N_ROWS / 2, 2 / N_ROWS, 1 / (2 * N_ROWS)]
    candidates += [-c for c in list(candidates)]
    pairs = [(p, at(answer, p), at(expected, p)) for p in points]
    pairs = [(p, a, e) for p, a, e in pairs if a is not None and e is not None]
    if len(pairs) < 3 or all(e == 0 for _, _, e in pairs):
        return None  # 0 = c · 0 for every c
    for c in candidates:
        scaled = [(a, c.xreplace({N_ROWS: p.rows}) * e) for p, a, e in pairs]
        if all(_close(a, b) for a, b in scaled):
            return (c,)
    return None


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


def _symbolically_zero(difference: sympy.Expr) -> bool:
    """Best effort: Σ merged into one sum, σ written with exp, then cancelled."""
    merged = _merge_sums(sympy.expand(difference))
    if merged is None:
        return False
    outside, body = merged
    return all(_cancels(part) for part in (outside, body))


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


def _cancels(expr: sympy.Expr) -> bool:
    rewritten = expr.rewrite(sympy.exp) if expr.has(sigmoid, softplus) else expr
    return sympy.cancel(sympy.expand(rewritten)) == 0


@dataclass(frozen=True)
class Graded:
    """One distinct answer text: its verdict, or why it could not be read."""

    verdict: Verdict | None
    error: str | None = None
