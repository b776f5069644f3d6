"""Every optimizer and option, alone and under every schedule, against reference loops written
here from torch.optim's documented pseudocode (https://pytorch.org/docs/stable/optim.html and
each optimizer's page), not from derive's code.

`maximize` is read as the pages of SGD, Adam, NAdam and RAdam write it, g_t ← −∇f(θ_{t−1}),
for every optimizer (the others' pages state it only in words). ASGD's page has no pseudocode:
its reference follows its arguments as documented (the rate's decay term λ and power α, the
average from step t0) and Polyak and Juditsky's averaging. Where the pseudocode leaves a
grouping open, γ·g/d is read left to right, (γ·g)/d, as torch's addcdiv computes it."""

from __future__ import annotations

import functools
import itertools
import math
import re

import numpy as np
import pytest

from derive.core.derivation import differentiate
from derive.core.descend import descend
from derive.core.errors import DeriveError
from derive.core.optimizers import DEFAULTS, UPDATE_RULES, Optimizer
from derive.core.parse import parse_loss
from derive.core.schedules import parse_schedule

STEPS = 50


# -- the references: one function per optimizer, in the documentation's notation ----------------
# Each takes the rates γ_t of steps t = 1..N (constant without a schedule) and, for a one-cycle
# schedule, the momentum μ_t (sgd, rmsprop) or β₁ (the Adam family) of each step.


def sgd(
    theta,
    grad,
    rates,
    momenta=None,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
):
    b = None
    for t, gamma in enumerate(rates, start=1):
        mu = momentum if momenta is None else momenta[t - 1]
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        if mu != 0:
            b = mu * b + (1 - dampening) * g if t > 1 else g
            g = g + mu * b if nesterov else b
        theta = theta - gamma * g
        yield theta


def adagrad(
    theta,
    grad,
    rates,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    maximize=False,
):
    state_sum = np.full_like(theta, initial_accumulator_value)
    for t, gamma in enumerate(rates, start=1):
        g = -grad(theta) if maximize else grad(theta)
        gamma_tilde = gamma / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g**2
        theta = theta - gamma_tilde * g / (np.sqrt(state_sum) + eps)
        yield theta


def rmsprop(
    theta,
    grad,
    rates,
    momenta=None,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    v = np.zeros_like(theta)
    g_ave = np.zeros_like(theta)
    b = np.zeros_like(theta)
    for t, gamma in enumerate(rates, start=1):
        mu = momentum if momenta is None else momenta[t - 1]
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if mu > 0:
            b = mu * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - gamma * b
        else:
            theta = theta - gamma * g / (np.sqrt(v_tilde) + eps)
        yield theta


def adam(
    theta,
    grad,
    rates,
    momenta=None,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled_weight_decay=False,
):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    for t, gamma in enumerate(rates, start=1):
        beta1 = betas[0] if momenta is None else momenta[t - 1]
        beta2 = betas[1]
        g = -grad(theta) if maximize else grad(theta)
        if decoupled_weight_decay:  # AdamW's page
            theta = theta - gamma * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            # The docs as corrected by pytorch/pytorch#142351 (the code never changed): the
            # maximum is over the raw v_t, bias-corrected afterwards.
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        theta = theta - gamma * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


def adamw(theta, grad, rates, momenta=None, weight_decay=0.01, **options):
    return adam(
        theta,
        grad,
        rates,
        momenta,
        weight_decay=weight_decay,
        decoupled_weight_decay=True,
        **options,
    )


def adadelta(theta, grad, rates, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    v = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for gamma in rates:
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = v * rho + g**2 * (1 - rho)
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = u * rho + delta**2 * (1 - rho)
        theta = theta - gamma * delta
        yield theta


def adamax(
    theta, grad, rates, momenta=None, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False
):
    m = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for t, gamma in enumerate(rates, start=1):
        beta1 = betas[0] if momenta is None else momenta[t - 1]
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        u = np.maximum(betas[1] * u, np.abs(g) + eps)
        theta = theta - gamma * m / ((1 - beta1**t) * u)
        yield theta


def nadam(
    theta,
    grad,
    rates,
    momenta=None,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    product = 1.0  # ∏ μ_i
    for t, gamma in enumerate(rates, start=1):
        beta1 = betas[0] if momenta is None else momenta[t - 1]
        beta2 = betas[1]
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            if decoupled_weight_decay:
                theta = theta - gamma * weight_decay * theta
            else:
                g = g + weight_decay * theta
        mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        product = product * mu
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = mu_next * m / (1 - product * mu_next) + (1 - mu) * g / (1 - product)
        v_hat = v / (1 - beta2**t)
        theta = theta - gamma * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


def radam(
    theta,
    grad,
    rates,
    momenta=None,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
):
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    beta2 = betas[1]
    rho_inf = 2 / (1 - beta2) - 1
    for t, gamma in enumerate(rates, start=1):
        beta1 = betas[0] if momenta is None else momenta[t - 1]
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            if decoupled_weight_decay:
                theta = theta - gamma * weight_decay * theta
            else:
                g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
        if rho_t > 5:
            l_t = math.sqrt(1 - beta2**t) / (np.sqrt(v) + eps)
            r_t = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            theta = theta - gamma * m_hat * r_t * l_t
        else:
            theta = theta - gamma * m_hat
        yield theta


def rprop(theta, grad, rates, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    eta_minus, eta_plus = etas
    gamma_min, gamma_max = step_sizes
    g_prev = np.zeros_like(theta)
    eta = np.full_like(theta, rates[0])  # η_0 ← lr: the rate when the first step is taken
    for _ in rates:
        g = -grad(theta) if maximize else grad(theta)
        for i in range(len(theta)):
            if g_prev[i] * g[i] > 0:
                eta[i] = min(eta[i] * eta_plus, gamma_max)
            elif g_prev[i] * g[i] < 0:
                eta[i] = max(eta[i] * eta_minus, gamma_min)
                g[i] = 0
        theta = theta - eta * np.sign(g)
        g_prev = g
        yield theta


def asgd(
    theta, grad, rates, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False, out=None
):
    """`out` collects the averaged parameters, the ā_t ASGD exists for."""
    eta, mu = rates[0], 1.0  # η starts at lr, the average at the parameters themselves
    average = np.zeros_like(theta)
    for t, gamma in enumerate(rates, start=1):
        g = -grad(theta) if maximize else grad(theta)
        if weight_decay != 0:
            g = g + weight_decay * theta
        theta = theta * (1 - lambd * eta) - eta * g
        average = theta if mu == 1 else average + mu * (theta - average)
        if out is not None:
            out.append(average)
        eta = gamma / (1 + lambd * gamma * t) ** alpha  # the rate of the next step
        mu = 1 / max(1, t - t0)
        yield theta


REFERENCES = {
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
    "adadelta": adadelta,
    "adamax": adamax,
    "nadam": nadam,
    "radam": radam,
    "rprop": rprop,
    "asgd": asgd,
}

# -- the problems, with gradients written by hand ----------------------------------------------

ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"


def rosenbrock_grad(theta):
    x, y = theta
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


rng = np.random.default_rng(7)
XS = np.linspace(-2, 2, 40)
YS = 1.5 * XS - 0.5 + 0.3 * rng.standard_normal(40)


def mse_grad(theta):
    w, b = theta
    residual = w * XS + b - YS
    return np.array([2 * np.mean(residual * XS), 2 * np.mean(residual)])


PROBLEMS = {
    # text, gradient, start, data, rate of the plain-gradient optimizers (sgd, asgd)
    "rosenbrock": (ROSENBROCK, rosenbrock_grad, np.array([-1.5, 2.0]), {}, 1e-4),
    "mse": ("mean((w*x + b - y)**2)", mse_grad, np.array([0.0, 0.0]), {"x": XS, "y": YS}, 0.05),
}
PLAIN_RATE = {"sgd", "asgd"}


@functools.cache
def derivation(problem):
    text, *_, data, _ = PROBLEMS[problem]
    return differentiate(parse_loss(text, data=tuple(data)))


CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.5, "weight_decay": 0.1, "nesterov": True, "maximize": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.05}),
    ("adagrad", {"weight_decay": 0.1, "maximize": True}),
    ("adagrad", {"initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-4}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "amsgrad": True}),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "maximize": True}),
    ("adam", {"betas": (0.3, 0.9)}),  # β₁ < 0.5: torch's lerp takes its other formula
    ("adamw", {}),
    ("adamw", {"amsgrad": True, "maximize": True}),
    ("adamw", {"weight_decay": 0.5, "betas": (0.5, 0.9), "eps": 1e-6}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.5, "eps": 1e-4}),
    ("adadelta", {"weight_decay": 0.1, "maximize": True}),
    ("adamax", {}),
    ("adamax", {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("adamax", {"weight_decay": 0.1, "maximize": True}),
    ("nadam", {}),
    ("nadam", {"momentum_decay": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("nadam", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("radam", {}),
    ("radam", {"betas": (0.8, 0.9)}),  # ρ_t passes 5 at step 6: both branches run
    ("radam", {"weight_decay": 0.1, "eps": 1e-6}),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("rprop", {}),
    ("rprop", {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)}),
    ("rprop", {"maximize": True}),
    ("asgd", {}),
    ("asgd", {"lambd": 0.5, "alpha": 0.5, "t0": 10}),  # the average starts at step 11
    ("asgd", {"weight_decay": 0.1, "t0": 0, "maximize": True}),
]


def rate(name, problem, options=None):
    if name not in PLAIN_RATE:
        return 0.01
    if problem == "rosenbrock" and (options or {}).get("maximize"):
        return 1e-5  # climbing Rosenbrock at 1e-4 overflows within 50 steps
    return PROBLEMS[problem][4]


def test_cases_cover_every_option_of_every_optimizer():
    for name, defaults in DEFAULTS.items():
        varied = {key for case, options in CASES if case == name for key in options}
        assert varied == set(defaults) - {"lr"}, name


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options"), CASES, ids=lambda c: str(c))
def test_update_rule_matches_the_documented_one_to_1e_12(problem, name, options):
    """The same gradient function drives both: any difference is the optimizer's."""
    _, grad, start, _, _ = PROBLEMS[problem]
    lr = rate(name, problem, options)
    optimizer = Optimizer.make(name, lr=lr, **options)
    rule, state, theta, ours = UPDATE_RULES[name], {}, start.copy(), []
    for t in range(1, STEPS + 1):
        theta = rule(theta, grad(theta), state, t, optimizer.options).params
        ours.append(theta)
    expected = list(REFERENCES[name](start.copy(), grad, [lr] * STEPS, **options))
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)


# Each option's other value, for the product of every option of an optimizer with every other.
ALTERNATIVES = {
    "momentum": 0.5,
    "dampening": 0.3,
    "weight_decay": 0.1,
    "nesterov": True,
    "maximize": True,
    "lr_decay": 0.05,
    "initial_accumulator_value": 0.5,
    "eps": 1e-4,
    "alpha": 0.9,
    "centered": True,
    "betas": (0.8, 0.9),
    "amsgrad": True,
    "decoupled_weight_decay": True,
    "rho": 0.5,
    "momentum_decay": 0.01,
    "etas": (0.3, 1.5),
    "step_sizes": (1e-3, 0.05),
    "lambd": 0.5,
    "t0": 10.0,
}


def combinations(name):
    """Every subset of the optimizer's options set to its other value (nesterov only where
    torch accepts it: with momentum and no dampening)."""
    keys = [key for key in DEFAULTS[name] if key != "lr"]
    for chosen in itertools.product((False, True), repeat=len(keys)):
        options = {key: ALTERNATIVES[key] for key, on in zip(keys, chosen, strict=True) if on}
        if options.get("nesterov") and ("momentum" not in options or "dampening" in options):
            continue
        yield options


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_every_combination_of_options_matches_the_documented_rule(problem, name):
    _, grad, start, _, _ = PROBLEMS[problem]
    rule, count = UPDATE_RULES[name], 0
    for options in combinations(name):
        lr = rate(name, problem, options)
        optimizer = Optimizer.make(name, lr=lr, **options)
        state, theta, ours = {}, start.copy(), []
        for t in range(1, STEPS + 1):
            theta = rule(theta, grad(theta), state, t, optimizer.options).params
            ours.append(theta)
        expected = list(REFERENCES[name](start.copy(), grad, [lr] * STEPS, **options))
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0, err_msg=str(options))
        count += 1
    assert count == {"sgd": 20, "rprop": 8, "adadelta": 16, "adamax": 16}.get(
        name, 2 ** (len(DEFAULTS[name]) - 1)
    )


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options"), CASES, ids=lambda c: str(c))
def test_descent_from_the_loss_text_matches_the_reference(problem, name, options):
    """End to end, derive's gradient is its own (expanded) formula: last-bit differences from
    the hand-written one grow over 50 Rosenbrock steps to ~1e-11, hence 1e-10 here."""
    _, grad, start, data, _ = PROBLEMS[problem]
    lr = rate(name, problem, options)
    loss = derivation(problem).loss
    optimizer = Optimizer.make(name, lr=lr, **options)
    trace = descend(
        derivation(problem), dict(zip(loss.params, start, strict=True)), optimizer, STEPS, data=data
    )
    expected = np.array([start, *REFERENCES[name](start.copy(), grad, [lr] * STEPS, **options)])
    assert trace.status == "max_steps"
    np.testing.assert_allclose(trace.params, expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(trace.grad, [grad(p) for p in trace.params], rtol=1e-9, atol=1e-9)
    assert np.all(trace.lr == lr)


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_maximize_climbs_minus_the_loss_exactly_as_minimizing_the_loss(name):
    """The gradient of −L is −∇L, and −(−∇L) is ∇L to the bit: the same floats."""
    _, grad, start, _, _ = PROBLEMS["rosenbrock"]
    rule, lr = UPDATE_RULES[name], rate(name, "rosenbrock")
    down, up = Optimizer.make(name, lr=lr), Optimizer.make(name, lr=lr, maximize=True)
    descended, climbed, down_state, up_state = start.copy(), start.copy(), {}, {}
    for t in range(1, STEPS + 1):
        descended = rule(descended, grad(descended), down_state, t, down.options).params
        climbed = rule(climbed, -grad(climbed), up_state, t, up.options).params
        assert np.array_equal(climbed, descended)


def test_asgd_average_starts_at_t0():
    """ASGD's point is the average ā_t: the parameters themselves until t0, their mean since."""
    _, grad, start, _, lr = PROBLEMS["mse"]
    averages = []
    thetas = list(asgd(start.copy(), grad, [lr] * 20, t0=5, out=averages))
    # μ of step t is 1/max(1, (t − 1) − t0): the average is θ_t up to t = 7, then their mean
    np.testing.assert_array_equal(averages[:7], thetas[:7])
    np.testing.assert_allclose(averages[-1], np.mean(thetas[6:], axis=0), rtol=1e-12)
    trace = descend(
        derivation("mse"),
        {},
        Optimizer.make("asgd", lr=lr, t0=5),
        20,
        data={"x": XS, "y": YS},
        worked_steps=20,
    )
    np.testing.assert_allclose([w["ax"] for w in trace.worked], averages, rtol=1e-12)


def test_defaults_are_torchs():
    assert DEFAULTS["adam"] == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "maximize": False,
        "decoupled_weight_decay": False,
    }
    assert DEFAULTS["adamw"]["weight_decay"] == 1e-2
    assert DEFAULTS["rmsprop"] == {
        "lr": 1e-2,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
        "maximize": False,
    }
    assert DEFAULTS["adagrad"] == {
        "lr": 1e-2,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
        "maximize": False,
    }
    assert DEFAULTS["adadelta"] == {
        "lr": 1.0,
        "rho": 0.9,
        "eps": 1e-6,
        "weight_decay": 0.0,
        "maximize": False,
    }
    assert DEFAULTS["adamax"] == {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "maximize": False,
    }
    assert DEFAULTS["nadam"] == {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum_decay": 4e-3,
        "decoupled_weight_decay": False,
        "maximize": False,
    }
    assert DEFAULTS["radam"] == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "decoupled_weight_decay": False,
        "maximize": False,
    }
    assert DEFAULTS["rprop"] == {
        "lr": 1e-2,
        "etas": (0.5, 1.2),
        "step_sizes": (1e-6, 50),
        "maximize": False,
    }
    assert DEFAULTS["asgd"] == {
        "lr": 1e-2,
        "lambd": 1e-4,
        "alpha": 0.75,
        "t0": 1e6,
        "weight_decay": 0.0,
        "maximize": False,
    }
    assert DEFAULTS["sgd"]["lr"] == 0.1  # the seeds' examples; torch requires lr for SGD


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("adadelta", {"rho": 1.5}, "rho must lie in [0, 1]"),
        ("rprop", {"etas": (1.2, 0.5)}, "etas must satisfy 0 < etaminus < 1 < etaplus"),
        ("rprop", {"step_sizes": (1.0, 0.1)}, "step_sizes must be 0 ≤ min ≤ max"),
        ("nadam", {"betas": (1.0, 0.9)}, "betas must lie in [0, 1)"),
        ("asgd", {"momentum": 0.9}, "optimizer asgd has no option 'momentum'"),
        ("lbfgs", {}, "unknown optimizer 'lbfgs'"),
    ],
)
def test_bad_options_are_refused_as_torch_refuses_them(name, options, message):
    with pytest.raises(DeriveError, match="^" + re.escape(message)):
        Optimizer.make(name, **options)


def test_minibatches_follow_a_seeded_permutation_per_epoch():
    loss = parse_loss("mean((w*x + b - y)**2)", data=("x", "y"))
    data = {"x": XS, "y": YS}
    trace = descend(
        differentiate(loss),
        {},
        Optimizer.make("sgd", lr=0.05),
        epochs=3,
        data=data,
        batch_size=16,
        seed=42,
    )
    # 40 rows in batches of 16: 16, 16, 8 per epoch
    assert trace.steps == 9 and trace.batch_size == 16 and trace.seed == 42
    order = np.random.default_rng(42)
    theta = np.zeros(2)
    expected = [theta]
    for _ in range(3):
        permutation = order.permutation(40)
        for k in range(0, 40, 16):
            rows = permutation[k : k + 16]
            residual = theta[0] * XS[rows] + theta[1] - YS[rows]
            g = np.array([2 * np.mean(residual * XS[rows]), 2 * np.mean(residual)])
            theta = theta - 0.05 * g
            expected.append(theta)
    np.testing.assert_allclose(trace.params, expected, rtol=1e-12)
    # loss and gradient are recorded on the full data set
    np.testing.assert_allclose(trace.grad, [mse_grad(p) for p in expected], rtol=1e-12)


def test_same_seed_same_trace_other_seed_other_trace():
    loss = derivation("mse")
    data = {"x": XS, "y": YS}

    def run(seed):
        return descend(
            loss, {}, Optimizer.make("adam", lr=0.1), 30, data=data, batch_size=1, seed=seed
        ).params

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_divergence_ends_the_run_with_status_and_no_warning():
    trace = descend(
        derivation("rosenbrock"), {"x": -1.5, "y": 2}, Optimizer.make("sgd", lr=0.1), 1000
    )
    assert trace.status == "diverged"
    assert trace.steps < 1000
    assert not math.isfinite(trace.loss[-1]) or not np.all(np.isfinite(trace.params[-1]))
    assert np.all(np.isfinite(trace.loss[:-1]))


# -- schedules: the rates from the formulas of torch.optim.lr_scheduler's pages -----------------


def documented_rates(text, lr, count):
    """η after e = 0..count−1 scheduler steps, by each page's closed form (torch computes most
    of them by updating the previous rate instead: the two agree to rounding)."""
    schedule = parse_schedule(text)
    a = schedule.arguments()
    epochs = range(count)
    if schedule.name == "step":
        return [lr * a["gamma"] ** (e // a["step_size"]) for e in epochs]
    if schedule.name == "multistep":
        return [lr * a["gamma"] ** sum(m <= e for m in a["milestones"]) for e in epochs]
    if schedule.name == "exponential":
        return [lr * a["gamma"] ** e for e in epochs]
    if schedule.name == "cosine":
        period = a["T_max"] or count - 1
        return [
            a["eta_min"] + (lr - a["eta_min"]) * (1 + math.cos(e * math.pi / period)) / 2
            for e in epochs
        ]
    if schedule.name == "linear":
        start, end, total = a["start_factor"], a["end_factor"], a["total_iters"]
        return [lr * (start + (end - start) * min(e, total) / total) for e in epochs]
    if schedule.name == "inverse_time":
        return [lr / (1 + a["k"] * e) for e in epochs]
    return one_cycle(a, lr, count)[0]


def one_cycle(a, lr, count):
    """OneCycleLR's page: from max_lr/div_factor up to max_lr over the first pct_start of
    total_steps, then down to the initial rate/final_div_factor, by half a cosine (or a line);
    the momentum the other way between max_momentum and base_momentum. With three_phase, down
    to the initial rate as symmetrically as it went up, then on to the lowest rate."""
    max_lr = a["max_lr"] or lr
    total = a["total_steps"] or count - 1
    initial = max_lr / a["div_factor"]
    low = initial / a["final_div_factor"]
    high, base = a["max_momentum"], a["base_momentum"]
    up = a["pct_start"] * total - 1  # the step at which the rate reaches max_lr
    if a["three_phase"]:
        phases = [
            (up, initial, max_lr, high, base),
            (2 * up, max_lr, initial, base, high),
            (total - 1, initial, low, high, high),
        ]
    else:
        phases = [(up, initial, max_lr, high, base), (total - 1, max_lr, low, base, high)]

    def anneal(start, end, fraction):
        if a["anneal_strategy"] == "linear":
            return start + (end - start) * fraction
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2

    rates, momenta = [], []
    for e in range(count):
        begin = 0.0
        for end, *values in phases:
            if e <= end or end == total - 1:
                fraction = (e - begin) / (end - begin)
                rates.append(anneal(values[0], values[1], fraction))
                momenta.append(anneal(values[2], values[3], fraction))
                break
            begin = end
    return rates, momenta


SCHEDULES = [
    "step:step_size=10,gamma=0.5",
    "multistep:milestones=5/20/35,gamma=0.3",
    "exponential:gamma=0.95",
    "cosine:T_max=50",
    "cosine:T_max=20,eta_min=0.001",  # past T_max the rate climbs back
    "linear",
    "linear:start_factor=0.1,end_factor=0.5,total_iters=30",
    "inverse_time",
    "inverse_time:k=0.2",
    "onecycle",
    "onecycle:pct_start=0.4,anneal_strategy=linear,div_factor=10,final_div_factor=100",
    "onecycle:total_steps=60,cycle_momentum=false,base_momentum=0.8,max_momentum=0.9",
    "onecycle:three_phase=true,pct_start=0.25",
]


@pytest.mark.parametrize("text", [*SCHEDULES, "onecycle:max_lr=0.05"])
def test_every_schedule_gives_its_documented_rates(text):
    schedule = parse_schedule(text).resolved(0.01, STEPS)
    np.testing.assert_allclose(
        schedule.rates(0.01, STEPS + 1), documented_rates(text, 0.01, STEPS + 1), rtol=1e-12
    )


SCHEDULED = [
    ("sgd", {"momentum": 0.9}),
    ("adam", {}),
]
SPECIAL = [  # optimizers that use the rate in their own way, under one schedule each
    ("rprop", {}, "linear"),  # only the first rate counts: η_0 ← lr
    ("asgd", {"t0": 10}, "exponential:gamma=0.95"),  # η_{t+1} is made from step t's rate
    ("nadam", {}, "onecycle"),  # β₁ cycles, and μ_t with it
    ("rmsprop", {"momentum": 0.5}, "onecycle:three_phase=true,max_momentum=0.9"),
    ("adagrad", {"lr_decay": 0.05}, "cosine"),
]


def scheduled_cases():
    cases = [(name, options, text) for name, options in SCHEDULED for text in SCHEDULES]
    return cases + SPECIAL


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options", "text"), scheduled_cases(), ids=lambda c: str(c))
def test_scheduled_descent_matches_the_reference_with_the_documented_rates(
    problem, name, options, text
):
    _, grad, start, data, _ = PROBLEMS[problem]
    lr = rate(name, problem)
    loss = derivation(problem).loss
    trace = descend(
        derivation(problem),
        dict(zip(loss.params, start, strict=True)),
        Optimizer.make(name, lr=lr, **options),
        STEPS,
        data=data,
        schedule=parse_schedule(text),
    )
    rates = documented_rates(text, lr, STEPS + 1)
    schedule = parse_schedule(text)
    momenta = None
    if schedule.name == "onecycle" and schedule.cycle_momentum:
        momenta = one_cycle(schedule.arguments(), lr, STEPS + 1)[1]
        np.testing.assert_allclose(trace.momentum, momenta, rtol=1e-12)
    if momenta is not None:
        options = {**options, "momenta": momenta[:STEPS]}
    expected = REFERENCES[name](start.copy(), grad, rates[:STEPS], **options)
    assert trace.status == "max_steps"
    np.testing.assert_allclose(trace.lr, rates, rtol=1e-12)
    np.testing.assert_allclose(trace.params, [start, *expected], rtol=1e-10, atol=1e-14)


def test_a_schedule_per_epoch_steps_once_per_pass_over_the_data():
    """--epochs: scheduler.step() after the last batch of each epoch, so the rate is the same
    for every batch of an epoch."""
    data = {"x": XS, "y": YS}
    trace = descend(
        derivation("mse"),
        {},
        Optimizer.make("sgd", lr=0.05),
        epochs=4,
        data=data,
        batch_size=16,
        schedule=parse_schedule("step:step_size=1,gamma=0.5"),
    )
    assert trace.schedule_interval == "epoch"
    assert list(trace.lr) == [0.05] * 3 + [0.025] * 3 + [0.0125] * 3 + [0.00625] * 3 + [0.003125]
    order = np.random.default_rng(0)
    theta, expected = np.zeros(2), [np.zeros(2)]
    for epoch in range(4):
        permutation = order.permutation(40)
        for k in range(0, 40, 16):
            rows = permutation[k : k + 16]
            residual = theta[0] * XS[rows] + theta[1] - YS[rows]
            g = np.array([2 * np.mean(residual * XS[rows]), 2 * np.mean(residual)])
            theta = theta - 0.05 * 0.5**epoch * g
            expected.append(theta)
    np.testing.assert_allclose(trace.params, expected, rtol=1e-12)


def test_a_schedule_per_step_with_steps_even_with_batches():
    trace = descend(
        derivation("mse"),
        {},
        Optimizer.make("sgd", lr=0.05),
        6,
        data={"x": XS, "y": YS},
        batch_size=16,
        schedule=parse_schedule("exponential:gamma=0.5"),
    )
    assert trace.schedule_interval == "step"
    assert list(trace.lr) == [0.05 * 0.5**t for t in range(7)]


def test_decaying_rate_ends_the_two_cycle_of_a_constant_one():
    """|w − 1| from 0 with η = 0.3: a constant step overshoots forever (0.9, 1.2, 0.9, ...);
    η_t = 0.3/(1 + t) shrinks the swing to the size of the last steps."""
    loss = differentiate(parse_loss("abs(w - 1)"))
    constant = descend(loss, {}, Optimizer.make("sgd", lr=0.3), 200)
    decaying = descend(
        loss, {}, Optimizer.make("sgd", lr=0.3), 200, schedule=parse_schedule("inverse_time")
    )
    w = 0.0
    for t in range(200):  # by hand: sign steps of 0.3/(1 + t)
        w = w - 0.3 / (1 + t) * (1 if w > 1 else -1 if w < 1 else 0)
    assert decaying.params[-1, 0] == pytest.approx(w, rel=1e-12)
    np.testing.assert_allclose(constant.params[-4:, 0], [0.9, 1.2, 0.9, 1.2], rtol=1e-12)
    assert abs(decaying.params[-1, 0] - 1) <= 0.3 / 150
