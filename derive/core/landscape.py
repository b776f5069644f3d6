"""The shape of a loss: where its gradient vanishes, what kind of point each is, and what is
proven about its minimum.

Every claim here is proven or it is not made:
- a point is stationary when SymPy solved ∇L = 0 exactly, or when Newton's method at 40 digits
  converges to it (an exponential that merely underflows is not a root); it lies in the loss's
  domain, where L is finite and real;
- "global" needs a proof: the complete set of critical points of a one-parameter loss with its
  limits at the ends of its domain, a convex quadratic, a separable sum of proven pieces, or a
  point where the loss reaches a proven lower bound (a sum of squares reaching 0);
- "no minimum" needs one too: a limit of −∞ (unbounded below) or an infimum approached at an end
  of the domain and reached nowhere.
Losses over data are solved exactly when they are quadratic in the parameters; otherwise their
minima are found from where the runs ended (`refine`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sympy
from sympy.calculus.util import continuous_domain

from derive.core.budget import attempt
from derive.core.derivation import Derivation
from derive.core.functions import as_sympy
from derive.core.limits import GRADIENT_OPERATIONS
from derive.core.stationary import MAX_POINTS, Kind, Landscape, Minimum, StationaryPoint

if TYPE_CHECKING:
    import numpy as np

# The numeric search (core/search.py) is imported where one runs: it brings NumPy, which a
# loss solved exactly (most one-parameter losses, every separable sum of them) never needs.
__all__ = ["Kind", "Landscape", "Minimum", "StationaryPoint", "landscape", "limit_along", "refine"]

# Wall-clock safety nets, set well above what real losses need (the slowest of the test corpus,
# relu and a 3-logit softmax, take 2-3 s in all on a loaded machine) so that a lesson does not
# depend on the machine's load; only pathological inputs reach them, and then nothing is
# claimed.
SYMBOLIC_BUDGET = 6.0  # seconds for one symbolic step (a domain, a solve, a limit)
LANDSCAPE_BUDGET = 15.0  # seconds for the whole search; past it, nothing is claimed
EXACT_DEGREE = 24  # polynomials up to this degree have their critical points solved exactly


# -- entry points ------------------------------------------------------------------------------


def landscape(
    derivation: Derivation,
    data: Mapping[str, np.ndarray] | None = None,
    start: Sequence[float] | None = None,
) -> Landscape:
    """Stationary points and what is proven about the minimum. `start` widens the numeric
    search box when it lies outside [−10, 10]. Past LANDSCAPE_BUDGET seconds, or for a
    gradient too large to differentiate again, nothing is claimed."""
    loss = derivation.loss
    if loss.data:
        # quadratic in the parameters (least squares): solved; otherwise nothing is claimed
        # until runs end somewhere (`refine`)
        if not _affine_gradient(derivation):
            return Landscape((), False, Minimum.NONE_FOUND)
        from derive.core.search import over_data

        return over_data(derivation, data or {})
    unknown = Landscape((), False, Minimum.NONE_FOUND)
    if sum(sympy.count_ops(g) for g in derivation.gradient) > GRADIENT_OPERATIONS:
        return unknown  # exp nested 60 deep: its second derivative alone takes a minute
    return attempt(lambda: _solved(derivation, start), LANDSCAPE_BUDGET, unknown)


def _solved(derivation: Derivation, start: Sequence[float] | None) -> Landscape:
    loss = derivation.loss
    symbols = loss.symbols
    expr = as_sympy(loss.expr)
    quadratic = _affine_gradient(derivation)
    pieces = _separable(expr, symbols)
    if pieces is not None and len(symbols) > 1:
        found = _product(
            [_one_parameter(piece, s) for piece, s in zip(pieces, symbols, strict=True)]
        )
    elif len(symbols) == 1:
        found = _one_parameter(expr, symbols[0])
    else:
        found = _exact_system(derivation) or _searched(derivation, start)
    found = _with_lower_bound(found, expr, symbols)
    if found.minimum in (Minimum.FOUND, Minimum.NONE_FOUND) and len(symbols) > 1:
        found = _unbounded(found, expr, symbols)
    return replace(found, quadratic=quadratic)


def limit_along(
    derivation: Derivation, point: Sequence[float], direction: Sequence[float]
) -> float | None:
    """lim L(point + t·direction) as t → ∞ (±inf included), or None when SymPy cannot tell in
    time. Used to prove that a run heading off to infinity follows the loss down forever."""
    loss = derivation.loss
    if loss.data:
        return None
    t = sympy.Dummy("t", positive=True)
    ray = {
        s: sympy.nsimplify(p) + t * sympy.nsimplify(d)
        for s, p, d in zip(loss.symbols, point, direction, strict=True)
    }
    ray_loss = as_sympy(loss.expr).xreplace(ray)
    limit = attempt(lambda: sympy.limit(ray_loss, t, sympy.oo), SYMBOLIC_BUDGET)
    if limit is None or not (limit.is_real or limit in (sympy.oo, -sympy.oo)):
        return None
    return _order_key(limit)


def _unbounded(found: Landscape, expr, symbols) -> Landscape:
    """No minimum, proven along a ray from the origin (an axis or a diagonal): L → −∞ there, or
    L tends to a value c below every minimum found while L > c everywhere (inf not attained)."""
    t = sympy.Dummy("t", positive=True)
    k = len(symbols)
    directions = [tuple(sign * (j == i) for j in range(k)) for i in range(k) for sign in (1, -1)]
    directions += [(sign,) * k for sign in (1, -1)]
    if k == 2:
        directions += [(1, -1), (-1, 1)]
    lowest = min((p.loss for p in found.minima), default=math.inf)
    for direction in directions:
        ray = expr.xreplace({s: d * t for s, d in zip(symbols, direction, strict=True)})
        limit = attempt(lambda ray=ray: sympy.limit(ray, t, sympy.oo), SYMBOLIC_BUDGET / 4)
        if limit is None or not (limit.is_real or limit == -sympy.oo):
            continue
        norm = math.sqrt(sum(d * d for d in direction))
        approached = tuple(d / norm for d in direction)
        if limit == -sympy.oo:
            return replace(
                found, minimum=Minimum.UNBOUNDED_BELOW, infimum=-math.inf, approached=approached
            )
        if _float(limit) < lowest and attempt(
            lambda c=limit: (expr - c).is_positive, SYMBOLIC_BUDGET / 4
        ):
            return replace(
                found, minimum=Minimum.NOT_ATTAINED, infimum=_float(limit), approached=approached
            )
    return found


# -- one parameter: domains, exact critical points, limits at the ends ----------------------


@dataclass(frozen=True)
class _Candidate:
    value: sympy.Expr
    kind: Kind
    kink: bool = False


def _one_parameter(expr: sympy.Expr, w: sympy.Symbol) -> Landscape:
    """Exactly, when SymPy can: the domain's intervals, the critical points and kinks in each,
    and the loss's limits at each interval's ends. Otherwise a numeric search, which proves
    nothing global."""
    analysed = attempt(lambda: _analysed(expr, w), 4 * SYMBOLIC_BUDGET)
    if analysed is None:
        from derive.core.search import one_parameter

        return one_parameter(expr, w)
    candidates, ends, closed_values = analysed
    points = []
    for candidate in candidates:
        loss = _real_value(expr.subs(w, candidate.value))
        if loss is None:
            continue
        curvature = (
            () if candidate.kink else (_float(sympy.diff(expr, w, 2).subs(w, candidate.value)),)
        )
        points.append(
            StationaryPoint(
                values=(_float(candidate.value),),
                kind=candidate.kind,
                loss=loss,
                exact=(candidate.value,) if _printable(candidate.value) else None,
                curvature=curvature,
                kink=candidate.kink,
            )
        )
    return _verdict(sorted(points, key=lambda p: p.values), ends, closed_values)


def _analysed(expr, w):
    """(candidates, [(end, limit of L)], [values at closed ends]) or None where SymPy is stuck."""
    if expr.is_polynomial(w):
        if sympy.degree(expr, w) > EXACT_DEGREE:
            return None  # exact real roots of (w+1)…(w+64)′ take minutes: search instead
        return _polynomial(expr, w)
    domain = continuous_domain(expr, w, sympy.S.Reals)
    intervals = _intervals(domain)
    if intervals is None:
        return None
    derivative = sympy.diff(expr, w)
    candidates, ends, closed = [], [], []
    for interval in intervals:
        critical = sympy.solveset(derivative, w, interval)
        if not _finite_set(critical):
            return None
        kinks = _kinks(expr, w, interval)
        if kinks is None:
            return None
        for value in sorted(set(critical) | set(kinks), key=_float):
            kind = _kink_kind(derivative, w, value) if value in kinks else _kind_1d(expr, w, value)
            if kind is not None:
                candidates.append(_Candidate(value, kind, kink=value in kinks))
        for end, inside, closed_end in (
            (interval.start, "+", not interval.left_open),
            (interval.end, "-", not interval.right_open),
        ):
            if closed_end:
                closed.append((end, expr.subs(w, end)))
            else:
                ends.append((end, sympy.limit(expr, w, end, inside)))
    return candidates, ends, closed


def _polynomial(expr, w):
    """A polynomial: every real root of L' exactly, and L → ±∞ at both ends by its degree."""
    derivative = sympy.Poly(sympy.diff(expr, w), w)
    if derivative.is_zero:
        return [], [], []  # a constant: nothing to list, nothing to claim
    roots = derivative.real_roots() if derivative.degree() > 0 else []
    candidates = [
        _Candidate(r, kind) for r in dict.fromkeys(roots) if (kind := _kind_1d(expr, w, r))
    ]
    leading = sympy.Poly(expr, w)
    sign, degree = sympy.sign(leading.LC()), leading.degree()
    at_plus = sympy.oo * sign
    at_minus = sympy.oo * sign * (1 if degree % 2 == 0 else -1)
    return candidates, [(-sympy.oo, at_minus), (sympy.oo, at_plus)], []


def _intervals(domain) -> list[sympy.Interval] | None:
    """The domain as a few intervals, or None when it is not (a periodic union, say)."""
    parts = domain.args if isinstance(domain, sympy.Union) else (domain,)
    if domain is sympy.S.Reals:
        return [sympy.Interval(-sympy.oo, sympy.oo)]
    if not all(isinstance(p, sympy.Interval) for p in parts) or len(parts) > 8:
        return None
    return list(parts)


def _kinks(expr, w, interval) -> list[sympy.Expr] | None:
    """Where the loss has a corner: the zeros of what |·|, max, min or a switch compare."""
    switches = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Abs | sympy.sign | sympy.Heaviside):
            switches.append(node.args[0])
        elif isinstance(node, sympy.Max | sympy.Min):
            switches += [a - b for a, b in itertools.combinations(node.args, 2)]
        elif isinstance(node, sympy.Piecewise):
            for _, condition in node.args:
                if isinstance(condition, sympy.core.relational.Relational):
                    switches.append(condition.lhs - condition.rhs)
    zeros = []
    for switch in switches:
        if not switch.has(w):
            continue
        found = sympy.solveset(switch, w, interval)
        if not _finite_set(found):
            return None
        zeros += list(found)
    return list(dict.fromkeys(zeros))


def _finite_set(found) -> bool:
    return found is sympy.S.EmptySet or isinstance(found, sympy.FiniteSet)


def _kink_kind(derivative, w, value) -> Kind | None:
    """A corner is stationary when 0 lies between the one-sided slopes."""
    left = sympy.limit(derivative, w, value, "-")
    right = sympy.limit(derivative, w, value, "+")
    if left.is_negative and right.is_positive:
        return Kind.MINIMUM
    if left.is_positive and right.is_negative:
        return Kind.MAXIMUM
    if left.is_zero or right.is_zero:
        return Kind.DEGENERATE
    return None  # the same sign on both sides: the loss just bends there


def _kind_1d(expr, w, value) -> Kind | None:
    """By the first derivative beyond the first that does not vanish there: even order decides
    minimum or maximum by its sign, odd order is an inflection."""
    for order in range(2, 9):
        derivative = sympy.diff(expr, w, order).subs(w, value)
        sign = _sign(derivative)
        if sign is None:
            return Kind.DEGENERATE
        if sign != 0:
            if order % 2:
                return Kind.INFLECTION
            return Kind.MINIMUM if sign > 0 else Kind.MAXIMUM
    return Kind.DEGENERATE


def _verdict(points, ends, closed_values) -> Landscape:
    """Compare the minima with the ends of the domain: global, unbounded, or not attained."""
    limits = [(end, limit) for end, limit in ends]
    lowest_end = min((limit for _, limit in limits), key=_order_key, default=None)
    edges = [
        (end, v) for end, v in ((e, _real_value(c)) for e, c in closed_values) if v is not None
    ]
    attained = [p.loss for p in points if p.kind is Kind.MINIMUM] + [v for _, v in edges]
    best = min(attained, default=math.inf)
    if lowest_end is not None and lowest_end == -sympy.oo:
        end = next(e for e, limit in limits if limit == -sympy.oo)
        return Landscape(tuple(points), True, Minimum.UNBOUNDED_BELOW, -math.inf, (_float(end),))
    if (
        lowest_end is not None
        and lowest_end.is_real
        and _float(lowest_end) < best - 1e-12 * (1 + abs(_float(lowest_end)))
    ):
        end = next(e for e, limit in limits if limit == lowest_end)
        return Landscape(
            tuple(points), True, Minimum.NOT_ATTAINED, _float(lowest_end), (_float(end),)
        )
    minima = [p.loss for p in points if p.kind is Kind.MINIMUM]
    if edges and min(v for _, v in edges) < min(minima, default=math.inf):
        end, value = min(edges, key=lambda edge: edge[1])
        return Landscape(tuple(points), True, Minimum.AT_EDGE, value, (_float(end),))
    if not minima:
        return Landscape(tuple(points), True, Minimum.NONE_FOUND)
    marked = tuple(
        replace(p, global_minimum=True)
        if p.kind is Kind.MINIMUM and p.loss <= best + 1e-12 * (1 + abs(best))
        else p
        for p in points
    )
    return Landscape(marked, True, Minimum.GLOBAL, best)


# -- several parameters -----------------------------------------------------------------------


def _separable(expr, symbols) -> list[sympy.Expr] | None:
    """L = f₁(p₁) + f₂(p₂) + …: each term depends on one parameter at most."""
    pieces = [sympy.Integer(0)] * len(symbols)
    for term in sympy.Add.make_args(expr):
        used = [k for k, s in enumerate(symbols) if term.has(s)]
        if len(used) > 1:
            return None
        if used:
            pieces[used[0]] += term
    return pieces


def _product(parts: list[Landscape]) -> Landscape:
    """A separable loss: stationary points are the combinations of each piece's."""
    combos = list(itertools.islice(itertools.product(*(p.points for p in parts)), MAX_POINTS))
    points = []
    for combo in combos:
        kinds = {p.kind for p in combo}
        if kinds == {Kind.MINIMUM}:
            kind = Kind.MINIMUM
        elif kinds == {Kind.MAXIMUM}:
            kind = Kind.MAXIMUM
        elif kinds <= {Kind.MINIMUM, Kind.MAXIMUM}:
            kind = Kind.SADDLE
        else:
            kind = Kind.DEGENERATE
        exact = tuple(v for p in combo for v in p.exact) if all(p.exact for p in combo) else None
        points.append(
            StationaryPoint(
                values=tuple(v for p in combo for v in p.values),
                kind=kind,
                loss=sum(p.loss for p in combo),  # constant terms are in some piece already
                exact=exact,
                curvature=tuple(sorted(c for p in combo for c in p.curvature)),
                kink=any(p.kink for p in combo),
                global_minimum=all(p.global_minimum for p in combo),
            )
        )
    complete = all(p.complete for p in parts) and len(combos) < MAX_POINTS
    statuses = {p.minimum for p in parts}
    if Minimum.UNBOUNDED_BELOW in statuses:
        return Landscape(tuple(points), complete, Minimum.UNBOUNDED_BELOW, -math.inf)
    if statuses == {Minimum.GLOBAL}:
        return Landscape(tuple(points), complete, Minimum.GLOBAL, sum(p.infimum for p in parts))
    if Minimum.NOT_ATTAINED in statuses and statuses <= {Minimum.GLOBAL, Minimum.NOT_ATTAINED}:
        return Landscape(
            tuple(points), complete, Minimum.NOT_ATTAINED, sum(p.infimum for p in parts)
        )
    found = any(p.kind is Kind.MINIMUM for p in points)
    return Landscape(tuple(points), complete, Minimum.FOUND if found else Minimum.NONE_FOUND)


def _exact_system(derivation: Derivation) -> Landscape | None:
    """∇L = 0 solved by SymPy when it is a small polynomial system; None otherwise."""
    symbols = derivation.loss.symbols
    gradient = [sympy.together(g) for g in derivation.gradient]
    numerators = [sympy.fraction(g)[0] for g in gradient]
    if not all(n.is_polynomial(*symbols) for n in numerators):
        return None
    degrees = [sympy.Poly(n, *symbols).total_degree() if n != 0 else 0 for n in numerators]
    if math.prod(max(d, 1) for d in degrees) > 8:
        return None  # Bézout: more than 8 solutions is beyond a quick exact solve
    solutions = attempt(lambda: sympy.solve(numerators, list(symbols), dict=True), SYMBOLIC_BUDGET)
    if solutions is None:
        return None
    from derive.core.search import Functions

    points = []
    functions = Functions(derivation, {})
    for solution in solutions:
        values = tuple(solution.get(s, s) for s in symbols)
        if any(v.free_symbols for v in values):
            return None  # a line or plane of solutions: not a list of points
        if not all(v.is_real for v in values):
            continue
        if any(
            sympy.fraction(g)[1].subs(dict(zip(symbols, values, strict=True))) == 0
            for g in gradient
        ):
            continue  # a zero of the numerator where the gradient is undefined
        point = functions.classify([_float(v) for v in values])
        if point is not None:
            points.append(replace(point, exact=values))
    points.sort(key=lambda p: p.values)
    minimum = Minimum.FOUND if any(p.kind is Kind.MINIMUM for p in points) else Minimum.NONE_FOUND
    return Landscape(tuple(points), True, minimum)


def _with_lower_bound(found: Landscape, expr, symbols) -> Landscape:
    """A proven lower bound reached at a minimum makes it global: L ≥ 0 (a sum of squares, say)
    with L = 0 there. A quadratic's Hessian decides at once: positive definite, one global
    minimum; a negative eigenvalue, unbounded below."""
    if found.minimum in (Minimum.GLOBAL, Minimum.UNBOUNDED_BELOW, Minimum.NOT_ATTAINED):
        return found
    if _is_quadratic(expr, symbols):
        from derive.core.search import curvatures

        eigenvalues, vectors = curvatures(sympy.hessian(expr, symbols))
        if eigenvalues.min() < 0:
            falling = tuple(float(v) for v in vectors[:, 0])
            return replace(
                found, minimum=Minimum.UNBOUNDED_BELOW, infimum=-math.inf, approached=falling
            )
        if eigenvalues.min() > 0 and found.minima:
            return _mark_global(found, found.minima[0].loss)
    nonnegative = attempt(lambda: expr.is_nonnegative, SYMBOLIC_BUDGET)
    if nonnegative:
        zeros = [
            p
            for p in found.minima
            if p.exact and expr.subs(dict(zip(symbols, p.exact, strict=True))) == 0
        ]
        if zeros:
            return _mark_global(found, 0.0)
    return found


def _mark_global(found: Landscape, best: float) -> Landscape:
    points = tuple(
        replace(p, global_minimum=True)
        if p.kind is Kind.MINIMUM and abs(p.loss - best) <= 1e-12 * (1 + abs(best))
        else p
        for p in found.points
    )
    return replace(found, points=points, minimum=Minimum.GLOBAL, infimum=best)


def _is_quadratic(expr, symbols) -> bool:
    return expr.is_polynomial(*symbols) and sympy.Poly(expr, *symbols).total_degree() <= 2


def _affine_gradient(derivation: Derivation) -> bool:
    """Every partial is of degree ≤ 1 in the parameters (looking inside Σ over data)."""
    symbols = derivation.loss.symbols
    for component in derivation.gradient:
        body = component.replace(sympy.Sum, lambda summand, *limits: summand)
        if not body.is_polynomial(*symbols):
            return False
        if body != 0 and sympy.Poly(body, *symbols).total_degree() > 1:
            return False
    return True


def _searched(derivation: Derivation, start) -> Landscape:
    from derive.core.search import several_parameters

    return several_parameters(derivation, start)


def refine(
    derivation: Derivation, data: Mapping[str, np.ndarray], point: Sequence[float]
) -> StationaryPoint | None:
    """The stationary point Newton's method reaches from `point` (where a run ended), checked to
    converge; None when it does not."""
    from derive.core.search import refine as refined

    return refined(derivation, data, point)


# -- numbers ----------------------------------------------------------------------------------


def _printable(value: sympy.Expr) -> bool:
    """An exact value worth printing: a rational or a short radical, not a CRootOf."""
    return not value.has(sympy.CRootOf) and sympy.count_ops(value) <= 12


def _float(value) -> float:
    return float(sympy.N(value, 30))


def _real_value(value) -> float | None:
    """A real, finite number, or None (undefined, complex or infinite there)."""
    number = sympy.N(value, 30)
    if number.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or not number.is_real:
        return None
    result = float(number)
    return result if math.isfinite(result) else None


def _sign(value) -> int | None:
    """The sign of an exact number: SymPy's assumptions first, then 30 digits."""
    value = sympy.simplify(value) if value.has(sympy.Function) else value
    if value.is_zero:
        return 0
    if value.is_positive:
        return 1
    if value.is_negative:
        return -1
    number = sympy.N(value, 30)
    if not number.is_real:
        return None
    if abs(number) < sympy.Float("1e-25"):
        return 0
    return 1 if number > 0 else -1


def _order_key(limit) -> float:
    if limit == -sympy.oo:
        return -math.inf
    if limit == sympy.oo:
        return math.inf
    return _float(limit) if limit.is_real else math.inf
