"""Newton's method: one step solves a quadratic; Rosenbrock against a loop with the Hessian
written by hand; singular and indefinite Hessians stated, not crashed on."""

from __future__ import annotations

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.newton import HessianKind, newton
from derive.core.parse import parse_loss


def run(text, start, steps=5, data=None):
    loss = parse_loss(text, data=tuple(data or ()))
    return newton(differentiate(loss), start, steps, data=data)


def test_one_step_lands_on_the_minimum_of_a_quadratic():
    # x² + 2y² + xy − 4x: ∇ = (2x + y − 4, 4y + x) = 0 at x = 16/7, y = −4/7
    trace = run("x**2 + 2*y**2 + x*y - 4*x", {"x": 4, "y": 3}, steps=3)
    np.testing.assert_allclose(trace.params[1], [16 / 7, -4 / 7], rtol=1e-14)
    np.testing.assert_allclose(trace.hessian[0], [[2, 1], [1, 4]])
    np.testing.assert_allclose(trace.eigenvalues[0], np.linalg.eigvalsh([[2, 1], [1, 4]]))
    assert trace.kinds == (HessianKind.POSITIVE_DEFINITE,) * 4
    assert np.linalg.norm(trace.grad[1]) < 1e-14
    assert trace.status == "max_steps" and trace.steps == 3


def test_one_step_fits_least_squares_as_the_normal_equations_do():
    rng = np.random.default_rng(2)
    x = rng.uniform(-3, 3, 30)
    y = 0.7 * x - 1.2 + 0.1 * rng.standard_normal(30)
    trace = run("mean((w*x + b - y)**2)", {"w": 5, "b": -5}, 1, {"x": x, "y": y})
    design = np.column_stack([x, np.ones_like(x)])
    fitted = np.linalg.solve(design.T @ design, design.T @ y)
    np.testing.assert_allclose(trace.params[1], fitted, rtol=1e-12)


def test_rosenbrock_from_minus_1_5_2_as_a_loop_with_the_hessian_by_hand():
    trace = run("(1 - x)**2 + 100*(y - x**2)**2", {"x": -1.5, "y": 2}, steps=8)
    point, expected = np.array([-1.5, 2.0]), [np.array([-1.5, 2.0])]
    for _ in range(8):
        x, y = point
        gradient = np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])
        hessian = np.array([[2 - 400 * y + 1200 * x**2, -400 * x], [-400 * x, 200]])
        point = point - np.linalg.solve(hessian, gradient)
        expected.append(point)
    np.testing.assert_allclose(trace.params, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(trace.params[-1], [1, 1], rtol=1e-12)


def test_a_singular_hessian_stops_the_run_and_says_so():
    # (w + b − 3)²: every point of the line w + b = 3 is a minimum; H = [[2, 2], [2, 2]]
    trace = run("(w + b - 3)**2", {}, steps=5)
    assert trace.status == "singular"
    assert trace.steps == 0 and trace.kinds == (HessianKind.SINGULAR,)
    # x⁴ at 0: H = 0, no step to take
    assert run("x**4", {"x": 0}).status == "singular"


def test_an_indefinite_hessian_is_stated_and_newton_heads_for_the_saddle():
    # x² − y²: the saddle at the origin, reached in one step from anywhere
    trace = run("x**2 - y**2", {"x": 1, "y": 2}, steps=1)
    assert trace.kinds == (HessianKind.INDEFINITE, HessianKind.INDEFINITE)
    np.testing.assert_allclose(trace.params[1], [0, 0], atol=1e-15)
    # −w²: Newton climbs to the maximum
    climb = run("-(w - 1)**2", {"w": 5}, steps=1)
    assert climb.kinds[0] is HessianKind.NEGATIVE_DEFINITE
    assert climb.params[1, 0] == pytest.approx(1.0)
    assert climb.loss[1] > climb.loss[0]


def test_convergence_and_divergence_end_the_run():
    converged = newton(differentiate(parse_loss("(w - 3)**2")), {}, 10, tol=1e-12)
    assert converged.status == "converged" and converged.steps == 1
    # exp(−w) at w = −800 overflows: the run stops at its start
    diverged = newton(differentiate(parse_loss("exp(-w) + w**3")), {"w": -800}, 3)
    assert diverged.status == "diverged" and diverged.kinds[-1] is None
