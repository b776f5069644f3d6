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
    }
    assert trace["batch_size"] is None and trace["seed"] is None
    assert trace["status"] == "max_steps"
    assert [s["t"] for s in trace["steps"]] == [0, 1, 2, 3, 4]
    w = 0.0
    for step in trace["steps"]:
        assert step["params"] == {"w": w}  # full precision: the exact float, not a rounding
        assert step["loss"] == (w - 3) ** 2
        assert step["grad"] == {"w": 2 * (w - 3)}
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
