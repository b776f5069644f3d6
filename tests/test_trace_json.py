"""`derive descend --json`: the trace format other tools rely on (documented in the README)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def trace_of(derive_cli, *args):
    result = derive_cli("descend", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_seed_000_as_json(derive_cli):
    trace = trace_of(derive_cli, "--loss", "(w-3)**2", "--steps", "4")
    assert trace["loss"] == "(w - 3)**2"
    assert trace["params"] == ["w"]
    assert trace["optimizer"] == {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "maximize": False,
    }
    assert trace["schedule"] is None
    assert trace["batch_size"] is None and trace["seed"] is None
    assert trace["status"] == "max_steps"
    assert [s["t"] for s in trace["steps"]] == [0, 1, 2, 3, 4]
    w = 0.0
    for step in trace["steps"]:
        assert step["params"] == {"w": w}  # full precision: the exact float, not a rounding
        assert step["loss"] == (w - 3) ** 2
        assert step["grad"] == {"w": 2 * (w - 3)}
        assert step["lr"] == 0.1  # the rate of the next update, here constant
        w = w - 0.1 * (2 * (w - 3))


def test_every_option_is_stated_with_its_value(derive_cli):
    trace = trace_of(
        derive_cli,
        "--loss",
        "(w-3)**2",
        "--optimizer",
        "adam",
        "--amsgrad",
        "--betas",
        "0.8,0.99",
        "--steps",
        "2",
    )
    assert trace["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "betas": [0.8, 0.99],
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": True,
        "maximize": False,
        "decoupled_weight_decay": False,
    }


def test_divergence_gives_fewer_entries_and_null_for_non_finite(derive_cli):
    trace = trace_of(
        derive_cli, "--loss", "x**2", "--init", "x=4", "--lr", "1.1", "--steps", "5000"
    )
    assert trace["status"] == "diverged"
    assert len(trace["steps"]) < 5001
    last = trace["steps"][-1]
    assert last["loss"] is None or last["params"]["x"] is None
    assert all(s["loss"] is not None for s in trace["steps"][:-1])


def test_minibatch_trace_states_batch_size_and_seed(derive_cli):
    args = [
        "--loss",
        "mean((w*x + b - y)**2)",
        "--data",
        "x=1,2,3,4,5; y=3,5,7,9,11",
        "--batch-size",
        "2",
        "--seed",
        "5",
        "--epochs",
        "2",
    ]
    first = trace_of(derive_cli, *args)
    assert first["batch_size"] == 2 and first["seed"] == 5
    assert len(first["steps"]) == 1 + 2 * 3  # 5 rows in batches of 2: three batches an epoch
    assert trace_of(derive_cli, *args) == first


def test_converged_status_with_tol(derive_cli):
    trace = trace_of(derive_cli, "--loss", "(w-3)**2", "--tol", "1e-6", "--steps", "1000")
    assert trace["status"] == "converged"
    assert abs(trace["steps"][-1]["grad"]["w"]) <= 1e-6


def test_human_readable_output_ends_with_the_status(derive_cli):
    result = derive_cli("descend", "--loss", "x**2", "--init", "x=4", "--lr", "1.1")
    assert result.code == 0
    assert result.out.strip().splitlines()[-1].endswith("ran 20 steps")
    assert "θ₀" in derive_cli("descend", "--loss", "theta0**2").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--optimizer", "lbfgs"], "invalid choice"),
        (["--betas", "0.9"], "two numbers"),
        (["--optimizer", "adam", "--betas", "0.9,1.5"], "betas must lie in [0, 1)"),
        (["--betas", "0.9,0.99"], "optimizer sgd has no option 'betas'"),
        (["--nesterov"], "nesterov needs a positive momentum"),
        (["--momentum", "-1"], "must not be negative"),
        (["--epochs", "3"], "--epochs counts passes over data"),
        (["--steps", "3", "--epochs", "3"], "not allowed with argument"),
        (["--batch-size", "0"], "positive whole number"),
        (["--seed", "-4"], "whole number"),
        (["--optimizer", "rprop", "--etas", "1.2,0.5"], "0 < etaminus < 1 < etaplus"),
        (["--optimizer", "rprop", "--step-sizes", "1"], "two numbers like 1e-6,50"),
        (["--optimizer", "adadelta", "--rho", "2"], "rho must lie in [0, 1]"),
        (["--optimizer", "asgd", "--betas", "0.9,0.99"], "optimizer asgd has no option 'betas'"),
        (["--decoupled-weight-decay"], "optimizer sgd has no option 'decoupled_weight_decay'"),
        (["--schedule", "cosin"], "unknown schedule 'cosin'"),
        (["--schedule", "step"], "step_size is required"),
        (["--schedule", "step:step_size=ten"], "step_size must be a whole number, not 'ten'"),
        (["--schedule", "onecycle:total_steps=5"], "total_steps=5 is fewer than the run's 20"),
        (["--optimizer", "adagrad", "--schedule", "onecycle"], "add cycle_momentum=false"),
    ],
)
def test_bad_descent_options_exit_2_with_one_line(derive_cli, args, message):
    result = derive_cli("descend", "--loss", "(w-3)**2", *args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_json_floats_round_trip_exactly(derive_cli):
    trace = trace_of(
        derive_cli, "--loss", "sigmoid(w) + w**2/3", "--optimizer", "rmsprop", "--steps", "10"
    )
    from derive.core.derivation import differentiate
    from derive.core.descend import Optimizer, descend
    from derive.core.parse import parse_loss

    direct = descend(
        differentiate(parse_loss("sigmoid(w) + w**2/3")), {}, Optimizer.make("rmsprop"), 10
    )
    assert np.array_equal([s["params"]["w"] for s in trace["steps"]], direct.params[:, 0])


def test_new_optimizers_state_every_option(derive_cli):
    trace = trace_of(
        derive_cli, "--loss", "(w-3)**2", "--optimizer", "rprop", "--etas", "0.4,1.5", "--maximize"
    )
    assert trace["optimizer"] == {
        "name": "rprop",
        "lr": 0.01,
        "etas": [0.4, 1.5],
        "step_sizes": [1e-6, 50],
        "maximize": True,
    }
    nadam = trace_of(
        derive_cli,
        "--loss",
        "(w-3)**2",
        "--optimizer",
        "nadam",
        "--momentum-decay",
        "0.01",
        "--weight-decay",
        "0.1",
        "--decoupled-weight-decay",
    )
    assert nadam["optimizer"]["momentum_decay"] == 0.01
    assert nadam["optimizer"]["decoupled_weight_decay"] is True
    asgd = trace_of(derive_cli, "--loss", "(w-3)**2", "--optimizer", "asgd", "--t0", "5")
    assert asgd["optimizer"] == {
        "name": "asgd",
        "lr": 0.01,
        "lambd": 1e-4,
        "alpha": 0.75,
        "t0": 5.0,
        "weight_decay": 0.0,
        "maximize": False,
    }


def test_a_schedule_is_stated_and_every_step_has_its_rate(derive_cli):
    trace = trace_of(
        derive_cli, "--loss", "(w-3)**2", "--steps", "6", "--schedule", "step:step_size=2,gamma=0.5"
    )
    assert trace["schedule"] == {
        "name": "step",
        "torch": "StepLR",
        "arguments": {"step_size": 2, "gamma": 0.5},
        "interval": "step",
    }
    rates = [step["lr"] for step in trace["steps"]]
    assert rates == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125]
    w = 0.0
    for step in trace["steps"]:  # the rate of a step multiplies that step's gradient
        assert step["params"]["w"] == pytest.approx(w, rel=1e-15)
        w = w - step["lr"] * 2 * (w - 3)


def test_defaults_derive_fills_in_are_stated(derive_cli):
    cosine = trace_of(derive_cli, "--loss", "(w-3)**2", "--steps", "8", "--schedule", "cosine")
    assert cosine["schedule"]["arguments"] == {"T_max": 8, "eta_min": 0.0}
    one = trace_of(
        derive_cli,
        "--loss",
        "(w-3)**2",
        "--optimizer",
        "adam",
        "--lr",
        "0.2",
        "--schedule",
        "onecycle:three_phase=true",
    )
    arguments = one["schedule"]["arguments"]
    assert arguments["max_lr"] == 0.2 and arguments["total_steps"] == 20
    assert arguments["three_phase"] is True and arguments["anneal_strategy"] == "cos"
    # Adam's β₁ cycles with the rate: each step says which it used
    assert all("beta1" in step and "momentum" not in step for step in one["steps"])
    assert one["steps"][0]["beta1"] == 0.95 and one["steps"][0]["lr"] == pytest.approx(0.2 / 25)
    sgd = trace_of(derive_cli, "--loss", "(w-3)**2", "--schedule", "onecycle")
    assert sgd["steps"][0]["momentum"] == 0.95


def test_a_schedule_steps_per_epoch_with_epochs(derive_cli):
    trace = trace_of(
        derive_cli,
        "--loss",
        "mean((w*x + b - y)**2)",
        "--data",
        "x=1,2,3,4,5; y=3,5,7,9,11",
        "--batch-size",
        "2",
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--schedule",
        "exponential:gamma=0.5",
    )
    assert trace["schedule"]["interval"] == "epoch"
    assert [step["lr"] for step in trace["steps"]] == [0.01] * 3 + [0.005] * 3 + [0.0025]


def test_the_table_shows_the_rate_only_with_a_schedule(derive_cli):
    plain = derive_cli("descend", "--loss", "(w-3)**2", "--steps", "3").out.splitlines()
    assert plain[0].split() == ["t", "w", "L", "|∇L|"]
    result = derive_cli(
        "descend", "--loss", "(w-3)**2", "--steps", "3", "--schedule", "exponential:gamma=0.5"
    )
    lines = result.out.splitlines()
    assert lines[0].split() == ["t", "w", "L", "|∇L|", "lr"]
    assert [line.split()[-1] for line in lines[1:5]] == ["0.1", "0.05", "0.025", "0.0125"]
    assert lines[-1].endswith("exponential(gamma=0.5) per step: ran 3 steps")
    cycled = derive_cli(
        "descend", "--loss", "(w-3)**2", "--optimizer", "adam", "--schedule", "onecycle"
    ).out.splitlines()
    assert cycled[0].split()[-2:] == ["lr", "β₁"]


def test_every_descend_flag_optimizer_and_schedule_is_documented():
    from derive.app.cli import OPTIMIZER_FLAGS, OPTIMIZER_SWITCHES
    from derive.core.optimizers import DEFAULTS
    from derive.core.schedules import SCHEDULES
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### `derive descend`") : readme.index("### Data")]
    for flag in [*OPTIMIZER_FLAGS, *OPTIMIZER_SWITCHES, "--schedule"]:
        assert f"`{flag}" in section or f" {flag}" in section, flag
    for name in [*DEFAULTS, *SCHEDULES]:
        assert f"| `{name}` |" in section, name
