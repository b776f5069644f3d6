"""Newton's method, the comparison run for a loss with a Hessian: θ ← θ − H⁻¹∇L.

On a quadratic loss one step lands on the stationary point, whatever the start: gradient
descent's learning rate is a single number standing in for H⁻¹, and its thresholds (1/λ, 2/λ)
are where that number is too large for the curvature λ of some direction.

Newton's step needs H to be invertible: a singular Hessian stops the run (status "singular").
It heads for the nearest stationary point of the quadratic model, a minimum only where H is
positive definite: each step records what H was, so a step towards a saddle or a maximum is
stated, not hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np

from derive.core.derivation import Derivation
from derive.core.numeric import hessian, numeric


class HessianKind(StrEnum):
    """The Hessian at a point, by the signs of its eigenvalues."""

    POSITIVE_DEFINITE = "positive_definite"  # a minimum of the quadratic model: a descent step
    NEGATIVE_DEFINITE = "negative_definite"  # a maximum: Newton climbs towards it
    INDEFINITE = "indefinite"  # a saddle: Newton heads for it
    SINGULAR = "singular"  # an eigenvalue 0 (to rounding): no Newton step


NewtonStatus = Literal["max_steps", "converged", "diverged", "singular"]


@dataclass(frozen=True)
class NewtonTrace:
    """params[t], loss[t], grad[t], hessian[t] after t Newton steps, t = 0..len-1, with the
    eigenvalues of each Hessian (ascending) and the kind of curvature they make."""

    param_names: tuple[str, ...]
    params: np.ndarray  # (T, k)
    loss: np.ndarray  # (T,)
    grad: np.ndarray  # (T, k)
    hessian: np.ndarray  # (T, k, k)
    eigenvalues: np.ndarray  # (T, k)
    kinds: tuple[HessianKind | None, ...]  # (T,): None where the Hessian is not finite
    status: NewtonStatus

    @property
    def steps(self) -> int:
        return len(self.loss) - 1


def newton(
    derivation: Derivation,
    start: Mapping[str, float],
    steps: int = 10,
    *,
    data: Mapping[str, np.ndarray] | None = None,
    tol: float | None = None,
) -> NewtonTrace:
    """Up to `steps` Newton steps from `start`, on the full data set.

    Stops with "converged" once ‖∇L‖ ≤ tol, "diverged" when a value is not finite, "singular"
    when the Hessian cannot be inverted there (the last entry is that point).
    """
    loss = derivation.loss
    function, second = numeric(derivation), hessian(derivation)
    columns = [np.asarray(data[name], dtype=float) for name in loss.data] if loss.data else []
    rows = [len(columns[0])] if columns else []
    point = np.array([float(start.get(name, 0.0)) for name in loss.params])
    params, losses, grads, hessians, eigenvalues, kinds = [], [], [], [], [], []
    status: NewtonStatus = "max_steps"
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            value, *gradient = function(*point, *columns, *rows)
            g = np.array(gradient, dtype=float)
            h = np.array(second(*point, *columns, *rows), dtype=float).reshape(len(g), len(g))
            finite = np.isfinite(value) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))
            eigen = np.linalg.eigvalsh(h) if finite else np.full(len(g), np.nan)
            kind = _curvature(eigen)
            params.append(point)
            losses.append(float(value))
            grads.append(g)
            hessians.append(h)
            eigenvalues.append(eigen)
            kinds.append(kind)
            if not (finite and np.all(np.isfinite(point))):
                status = "diverged"
                break
            if tol is not None and float(np.linalg.norm(g)) <= tol:
                status = "converged"
                break
            if kind is HessianKind.SINGULAR:
                status = "singular"
                break
            if t == steps:
                break
            point = point - np.linalg.solve(h, g)
    return NewtonTrace(
        param_names=loss.params,
        params=np.array(params),
        loss=np.array(losses),
        grad=np.array(grads),
        hessian=np.array(hessians),
        eigenvalues=np.array(eigenvalues),
        kinds=tuple(kinds),
        status=status,
    )


def _curvature(eigenvalues: np.ndarray) -> HessianKind | None:
    """Singular when the smallest |λ| is below rounding of the largest (numpy's matrix_rank
    tolerance: size · ε · max|λ|)."""
    if not np.all(np.isfinite(eigenvalues)):
        return None
    size = np.abs(eigenvalues)
    if size.min() <= len(size) * np.finfo(float).eps * size.max():
        return HessianKind.SINGULAR
    if eigenvalues.min() > 0:
        return HessianKind.POSITIVE_DEFINITE
    if eigenvalues.max() < 0:
        return HessianKind.NEGATIVE_DEFINITE
    return HessianKind.INDEFINITE
