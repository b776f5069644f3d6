"""Stationary points and what is proven about a loss's minimum, each against an independent
computation: roots of a polynomial by numpy, values by hand, limits written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.landscape import Kind, Minimum, landscape
from derive.core.parse import parse_loss


def shape(text: str):
    return landscape(differentiate(parse_loss(text)))


def quartic_stationary_points_by_hand():
    roots = sorted(r.real for r in np.roots([4, 0, -8, 0.5]) if abs(r.imag) < 1e-12)
    return [(r, "minimum" if 12 * r**2 - 8 > 0 else "maximum") for r in roots]


def test_stationary_points_of_seed_004_quartic():
    found = shape("x**4 - 4*x**2 + 0.5*x")
    expected = quartic_stationary_points_by_hand()
    assert [p.kind for p in found.points] == [kind for _, kind in expected]
    for point, (root, _) in zip(found.points, expected, strict=True):
        assert point.values[0] == pytest.approx(root, abs=1e-12)
        assert point.loss == pytest.approx(root**4 - 4 * root**2 + 0.5 * root, abs=1e-12)
    # the lowest minimum is global: a quartic with a positive leading coefficient has all its
    # critical points among the cubic's three real roots, and goes to +∞ at both ends
    f = [r**4 - 4 * r**2 + 0.5 * r for r, kind in expected if kind == "minimum"]
    lowest = min(f)
    assert found.minimum is Minimum.GLOBAL and found.complete
    assert [p.global_minimum for p in found.points] == [
        kind == "minimum" and math.isclose(r**4 - 4 * r**2 + 0.5 * r, lowest)
        for r, kind in expected
    ]


@pytest.mark.parametrize(
    ("text", "values", "kind"),
    [
        ("x**2 - y**2", (0.0, 0.0), "saddle"),
        ("(w-3)**2", (3.0,), "minimum"),
        ("x**2 + 2*y**2", (0.0, 0.0), "minimum"),
        ("-(x**2) - (y-1)**2", (0.0, 1.0), "maximum"),
        ("(1 - x)**2 + 100*(y - x**2)**2", (1.0, 1.0), "minimum"),
        ("x**3", (0.0,), "inflection"),
        ("x**4", (0.0,), "minimum"),  # L'' = 0 there: the fourth derivative decides
        ("-x**6", (0.0,), "maximum"),
    ],
)
def test_single_stationary_points_and_their_kind(text, values, kind):
    (point,) = shape(text).points
    assert point.values == pytest.approx(values, abs=1e-9)
    assert point.kind == kind


def test_w_minus_log_w_has_one_global_minimum_and_no_point_outside_its_domain():
    found = shape("w - log(w)")
    (point,) = found.points
    assert point.values == (1.0,) and point.kind is Kind.MINIMUM and point.global_minimum
    assert point.loss == 1.0  # 1 − log 1
    assert found.minimum is Minimum.GLOBAL
    # by hand: L'' = 1/w² > 0 on w > 0 and L → ∞ at 0⁺ and at ∞
    assert all(w - math.log(w) > 1 for w in (1e-9, 0.5, 2.0, 1e9))


def test_the_origin_is_the_global_minimum_of_a_separable_three_parameter_loss():
    found = shape("exp(x)+exp(-x)+y**2+z**2")
    (point,) = found.points
    assert point.values == pytest.approx((0.0, 0.0, 0.0), abs=1e-12)
    assert point.kind is Kind.MINIMUM and point.global_minimum and point.loss == 2.0


@pytest.mark.parametrize(
    ("text", "minimum", "infimum"),
    [
        ("log(x)", Minimum.UNBOUNDED_BELOW, -math.inf),  # log x → −∞ as x → 0⁺
        ("x**-2", Minimum.NOT_ATTAINED, 0.0),  # 1/x² > 0, → 0 as |x| → ∞
        ("exp(-w)", Minimum.NOT_ATTAINED, 0.0),
        ("x**2 - y**2", Minimum.UNBOUNDED_BELOW, -math.inf),
        ("x**3 + y**3 - 3*x*y", Minimum.UNBOUNDED_BELOW, -math.inf),  # x³ along the x axis
        ("exp(x*y)", Minimum.NOT_ATTAINED, 0.0),  # e^(−t²) along x = −y
        ("sqrt(w)", Minimum.AT_EDGE, 0.0),  # √0 = 0 at the edge of w ≥ 0
    ],
)
def test_no_minimum_only_when_proven(text, minimum, infimum):
    found = shape(text)
    assert found.minimum is minimum
    assert found.infimum == infimum
    assert not any(p.kind is Kind.MINIMUM and p.global_minimum for p in found.points)


def test_poles_and_underflow_are_not_stationary_points():
    assert shape("log(x)").points == ()  # no point where the loss is undefined (x ≤ 0)
    assert shape("x**-2").points == ()  # a pole is not a minimum
    (point,) = shape("exp(x*y)").points  # e^(xy) underflows far out; only (0, 0) is a root
    assert point.values == pytest.approx((0.0, 0.0), abs=1e-12)
    assert point.kind is Kind.SADDLE


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("(1 - x)**2/(1 + x)**2", 1.0),  # L = 0 there, L ≥ 0
        ("x*sqrt(1 - x**2)", -1 / math.sqrt(2)),  # L' = (1 − 2x²)/√(1 − x²)
        ("-log(p**7*(1 - p)**3)", 0.7),  # 7 successes in 10 trials
        ("-(0.7*log(p) + 0.3*log(1 - p))", 0.7),
    ],
)
def test_losses_that_crashed_the_search_now_have_their_global_minimum(text, at):
    found = shape(text)
    (minimum,) = [p for p in found.points if p.kind is Kind.MINIMUM]
    assert minimum.global_minimum
    assert minimum.values[0] == pytest.approx(at, abs=1e-12)


def test_a_corner_minimum_of_abs():
    (point,) = shape("abs(w-1)").points
    assert point.values == (1.0,) and point.kink and point.global_minimum


def test_himmelblau_minima_found_numerically_are_not_claimed_global():
    found = shape("(x**2+y-11)**2+(x+y**2-7)**2")
    minima = [p for p in found.points if p.kind is Kind.MINIMUM]
    assert len(minima) == 4  # the four zeros of this sum of squares
    for p in minima:
        x, y = p.values
        assert (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2 == pytest.approx(0, abs=1e-20)
    assert sum(p.kind is Kind.SADDLE for p in found.points) == 4
    assert sum(p.kind is Kind.MAXIMUM for p in found.points) == 1
