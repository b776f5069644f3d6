"""The worked steps: each optimizer's quantities in the first updates, with torch's names for
them, checked against values computed by hand here (and against torch's optimizer.state in
test_against_torch.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.descend import descend
from derive.core.optimizers import DEFAULTS, QUANTITIES, Optimizer, Where
from derive.core.parse import parse_loss
from derive.core.schedules import parse_schedule

W3 = differentiate(parse_loss("(w-3)**2"))


def test_adam_first_three_steps_by_hand():
    """(w − 3)² from w = 0, lr 0.1: g = 2(w − 3); m, v, m̂, v̂ as Adam's page defines them."""
    trace = descend(W3, {"w": 0}, Optimizer.make("adam", lr=0.1), 10, worked_steps=3)
    assert len(trace.worked) == 3
    w, m, v = 0.0, 0.0, 0.0
    for t, worked in enumerate(trace.worked, start=1):
        g = 2 * (w - 3)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        assert worked.step == t
        assert worked["grad"] == pytest.approx(g, rel=1e-15)
        assert worked["exp_avg"] == pytest.approx(m, rel=1e-14)
        assert worked["exp_avg_sq"] == pytest.approx(v, rel=1e-14)
        assert worked["m_hat"] == pytest.approx(m_hat, rel=1e-14)
        assert worked["v_hat"] == pytest.approx(v_hat, rel=1e-14)
        assert worked["bias_correction1"] == pytest.approx(1 - 0.9**t, rel=1e-15)
        assert worked["bias_correction2"] == pytest.approx(1 - 0.999**t, rel=1e-15)
        assert worked["lr"] == 0.1
        w = w - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
        assert trace.params[t, 0] == pytest.approx(w, rel=1e-14)
    # the first step: m = 0.1·(−6), v = 0.001·36, so m̂ = g and v̂ = g² exactly as on paper
    first = trace.worked[0]
    assert first["m_hat"] == pytest.approx(-6.0, rel=1e-15)
    assert first["v_hat"] == pytest.approx(36.0, rel=1e-15)


def test_adam_quantities_are_named_as_torch_and_its_documentation_name_them():
    trace = descend(W3, {}, Optimizer.make("adam", amsgrad=True), 2, worked_steps=1)
    worked = trace.worked[0]
    assert worked.names == (
        "lr",
        "grad",
        "exp_avg",
        "exp_avg_sq",
        "bias_correction1",
        "bias_correction2",
        "m_hat",
        "v_hat",
        "max_exp_avg_sq",
        "step_size",
        "denom",
    )
    where = {value.quantity.name: value.quantity.where for value in worked.values}
    assert where["exp_avg"] is Where.STATE and where["max_exp_avg_sq"] is Where.STATE
    assert where["bias_correction1"] is Where.LOCAL and where["denom"] is Where.LOCAL
    assert where["m_hat"] is Where.DOCUMENTED and where["lr"] is Where.GROUP
    symbols = {value.quantity.name: value.quantity.symbol for value in worked.values}
    assert symbols["exp_avg"] == "m_t" and symbols["m_hat"] == r"\widehat{m_t}"


def test_sgd_momentum_buffer_by_hand_and_only_with_momentum():
    trace = descend(W3, {}, Optimizer.make("sgd", lr=0.1, momentum=0.9), 5, worked_steps=3)
    w, b = 0.0, None
    for worked in trace.worked:
        g = 2 * (w - 3)
        b = g if b is None else 0.9 * b + g
        assert worked["momentum_buffer"] == pytest.approx(b, rel=1e-14)
        w = w - 0.1 * b
    plain = descend(W3, {}, Optimizer.make("sgd"), 5, worked_steps=2)
    assert plain.worked[0].names == ("lr", "grad")


def test_adagrad_rprop_and_asgd_state_by_hand():
    adagrad = descend(W3, {}, Optimizer.make("adagrad", lr=0.5, lr_decay=0.1), 3, worked_steps=3)
    w, total = 0.0, 0.0
    for t, worked in enumerate(adagrad.worked, start=1):
        g = 2 * (w - 3)
        total += g * g
        clr = 0.5 / (1 + (t - 1) * 0.1)
        assert worked["sum"] == pytest.approx(total, rel=1e-15)
        assert worked["clr"] == pytest.approx(clr, rel=1e-15)
        w = w - clr * g / (math.sqrt(total) + 1e-10)
    # rprop: the step grows by 1.2 while the gradient keeps its sign
    rprop = descend(W3, {}, Optimizer.make("rprop", lr=0.5), 4, worked_steps=4)
    assert [worked["step_size"][0] for worked in rprop.worked] == pytest.approx(
        [0.5, 0.6, 0.72, 0.864]
    )
    # asgd: η_{t+1} = lr / (1 + λ·lr·t)^α, the rate of step t + 1
    asgd = descend(W3, {}, Optimizer.make("asgd", lr=0.1, lambd=0.5), 3, worked_steps=3)
    for t, worked in enumerate(asgd.worked, start=1):
        assert worked["eta_value"] == pytest.approx(0.1 / (1 + 0.05 * (t - 1)) ** 0.75)
        assert worked["eta"] == pytest.approx(0.1 / (1 + 0.05 * t) ** 0.75)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_every_optimizer_names_each_quantity_once_in_torchs_order(name):
    trace = descend(W3, {"w": 1}, Optimizer.make(name), 4, worked_steps=2)
    assert [worked.step for worked in trace.worked] == [1, 2]
    table = [quantity.name for quantity in QUANTITIES[name]]
    for worked in trace.worked:
        assert worked.names[:2] == ("lr", "grad")
        assert list(worked.names) == [n for n in table if n in worked.names]
        assert all(np.all(np.isfinite(value.value)) for value in worked.values)
        assert worked["lr"] == DEFAULTS[name]["lr"]


def test_worked_steps_are_off_by_default_and_stop_with_the_run():
    assert descend(W3, {}, Optimizer.make("adam"), 20).worked == ()
    short = descend(W3, {}, Optimizer.make("sgd"), 2, worked_steps=10)
    assert len(short.worked) == 2  # two updates, two worked steps
    converged = descend(W3, {}, Optimizer.make("sgd", lr=0.5), 10, tol=1e-9, worked_steps=10)
    assert converged.status == "converged" and len(converged.worked) == converged.steps


def test_worked_steps_record_the_scheduled_rate():
    trace = descend(
        W3,
        {},
        Optimizer.make("adam", lr=0.1),
        4,
        schedule=parse_schedule("step:step_size=2,gamma=0.5"),
        worked_steps=4,
    )
    assert [float(worked["lr"]) for worked in trace.worked] == [0.1, 0.1, 0.05, 0.05]
    assert list(trace.lr[:4]) == [0.1, 0.1, 0.05, 0.05]
