"""When torch is installed (it is not a dependency), derive must agree with torch.optim and
torch.optim.lr_scheduler themselves: every optimizer and option, every schedule, to 1e-12.

torch keeps some scalars of its state (NAdam's mu_product, ASGD's eta and mu) in the default
dtype, float32 unless told otherwise; derive computes them in float64, as torch does under
torch.set_default_dtype(torch.float64), which these tests set."""

from __future__ import annotations

import numpy as np
import pytest

from derive.core.descend import descend
from derive.core.numeric import numeric
from derive.core.optimizers import DEFAULTS, TORCH_CLASSES, UPDATE_RULES, Optimizer, Where
from derive.core.schedules import parse_schedule
from tests.test_optimizers import (
    CASES,
    PROBLEMS,
    SCHEDULED,
    SCHEDULES,
    SPECIAL,
    STEPS,
    XS,
    YS,
    combinations,
    derivation,
    rate,
)

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def mse(p, rows):
    x, y = torch.tensor(XS)[rows], torch.tensor(YS)[rows]
    return torch.mean((p[0] * x + p[1] - y) ** 2)


def set_gradient(problem, p):
    """p.grad from derive's own gradient function: any difference left is the optimizer's or
    the scheduler's (autograd's arithmetic differs from derive's formula in the last bits, which
    50 Rosenbrock steps can grow past 1e-12)."""
    data = [XS, YS, len(XS)] if problem == "mse" else []
    _, *gradient = numeric(derivation(problem))(*p.detach().numpy(), *data)
    p.grad = torch.tensor(gradient)


def torch_optimizer(name, p, lr, options):
    return getattr(torch.optim, TORCH_CLASSES[name])([p], lr=lr, **options, foreach=False)


def torch_scheduler(optimizer, text, lr, scheduler_steps):
    """The torch scheduler for `text`, with derive's documented defaults written out: T_max and
    total_steps the run's length, max_lr the optimizer's rate."""
    schedule = parse_schedule(text)
    arguments = schedule.arguments()
    scheduler = torch.optim.lr_scheduler
    if schedule.name == "inverse_time":
        k = arguments["k"]
        return scheduler.LambdaLR(optimizer, lambda t: 1 / (1 + k * t))
    if schedule.name == "cosine":
        arguments["T_max"] = arguments["T_max"] or scheduler_steps
    if schedule.name == "onecycle":
        arguments["max_lr"] = arguments["max_lr"] or lr
        arguments["total_steps"] = arguments["total_steps"] or scheduler_steps
    if schedule.name == "multistep":
        arguments["milestones"] = list(arguments["milestones"])
    return getattr(scheduler, schedule.torch_class)(optimizer, **arguments)


def group_momentum(optimizer):
    group = optimizer.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options"), CASES, ids=lambda c: str(c))
def test_every_optimizer_and_option_as_torch_optim(problem, name, options):
    _, _, start, data, _ = PROBLEMS[problem]
    lr = rate(name, problem, options)
    loss = derivation(problem).loss
    trace = descend(
        derivation(problem),
        dict(zip(loss.params, start, strict=True)),
        Optimizer.make(name, lr=lr, **options),
        STEPS,
        data=data,
        worked_steps=3,
    )
    p = torch.tensor(start, requires_grad=True)
    optimizer = torch_optimizer(name, p, lr, options)
    for t in range(1, STEPS + 1):
        set_gradient(problem, p)
        optimizer.step()
        np.testing.assert_allclose(trace.params[t], p.detach().numpy(), rtol=1e-12)
        if t <= 3:  # the worked steps hold torch's optimizer.state after each step
            state = {k: v for k, v in optimizer.state[p].items() if k != "step"}
            worked = trace.worked[t - 1]
            assert worked.step == t == int(optimizer.state[p].get("step", t))
            kept = {v.quantity.name for v in worked.values if v.quantity.where is Where.STATE}
            assert kept == set(state)
            for key, value in state.items():
                np.testing.assert_allclose(worked[key], value.numpy(), rtol=1e-12, err_msg=key)
            assert worked["lr"] == optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name", list(DEFAULTS))
def test_every_combination_of_options_as_torch_optim(problem, name):
    """Every subset of an optimizer's options at their other values, fed the same gradient."""
    _, grad, start, _, _ = PROBLEMS[problem]
    rule = UPDATE_RULES[name]
    for options in combinations(name):
        lr = rate(name, problem, options)
        optimizer = Optimizer.make(name, lr=lr, **options)
        theta, state = start.copy(), {}
        p = torch.tensor(start, requires_grad=True)
        reference = torch_optimizer(name, p, lr, options)
        for t in range(1, STEPS + 1):
            theta = rule(theta, grad(theta), state, t, optimizer.options).params
            p.grad = torch.tensor(grad(p.detach().numpy()))
            reference.step()
        np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12, err_msg=str(options))


def scheduled_cases():
    cases = [(name, options, text) for name, options in SCHEDULED for text in SCHEDULES]
    return cases + SPECIAL


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "options", "text"), scheduled_cases(), ids=lambda c: str(c))
def test_every_schedule_as_torch_lr_scheduler_stepped_after_each_update(
    problem, name, options, text
):
    _, _, start, data, _ = PROBLEMS[problem]
    lr = rate(name, problem, options)
    loss = derivation(problem).loss
    trace = descend(
        derivation(problem),
        dict(zip(loss.params, start, strict=True)),
        Optimizer.make(name, lr=lr, **options),
        STEPS,
        data=data,
        schedule=parse_schedule(text),
    )
    p = torch.tensor(start, requires_grad=True)
    optimizer = torch_optimizer(name, p, lr, options)
    scheduler = torch_scheduler(optimizer, text, lr, STEPS)
    for t in range(STEPS + 1):
        # the rate (and cycled momentum) the next update uses, to the bit
        assert trace.lr[t] == scheduler.get_last_lr()[0]
        if trace.momentum is not None:
            assert trace.momentum[t] == group_momentum(optimizer)
        if t == STEPS:
            break
        set_gradient(problem, p)
        optimizer.step()
        scheduler.step()
        np.testing.assert_allclose(trace.params[t + 1], p.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "text"),
    [("adam", "cosine"), ("sgd", "onecycle"), ("asgd", "exponential:gamma=0.7")],
)
def test_a_schedule_per_epoch_as_torch_stepped_after_each_epoch(name, text):
    """Mini-batches in derive's documented order (numpy.random.default_rng(seed), one
    permutation per epoch); scheduler.step() once each epoch. The gradient by autograd."""
    epochs, size, lr = 4, 16, 0.05
    trace = descend(
        derivation("mse"),
        {},
        Optimizer.make(name, lr=lr),
        epochs=epochs,
        data={"x": XS, "y": YS},
        batch_size=size,
        seed=3,
        schedule=parse_schedule(text),
    )
    assert trace.schedule_interval == "epoch"
    p = torch.zeros(2, requires_grad=True)
    optimizer = torch_optimizer(name, p, lr, {})
    scheduler = torch_scheduler(optimizer, text, lr, epochs)
    order, t = np.random.default_rng(3), 0
    for _ in range(epochs):
        permutation = order.permutation(len(XS))
        for k in range(0, len(XS), size):
            assert trace.lr[t] == scheduler.get_last_lr()[0]
            optimizer.zero_grad()
            mse(p, torch.tensor(permutation[k : k + size])).backward()
            optimizer.step()
            t += 1
            np.testing.assert_allclose(trace.params[t], p.detach().numpy(), rtol=1e-12)
        scheduler.step()
    assert t == trace.steps == 12
