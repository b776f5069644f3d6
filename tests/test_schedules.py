"""`--schedule NAME[:argument=value,...]`: torch.optim.lr_scheduler's names and defaults, and a
one-line error naming what is wrong."""

from __future__ import annotations

import pytest

from derive.core.errors import DeriveError
from derive.core.schedules import (
    CosineAnnealingLR,
    InverseTimeLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    StepLR,
    parse_schedule,
)


def test_text_becomes_a_record_with_torchs_names_and_defaults():
    assert parse_schedule("step:step_size=10,gamma=0.5") == StepLR(step_size=10, gamma=0.5)
    assert parse_schedule("step:step_size=10").gamma == 0.1
    assert parse_schedule("multistep:milestones=10/20/30") == MultiStepLR(milestones=(10, 20, 30))
    assert parse_schedule(" cosine : T_max = 50 , eta_min = 1e-3 ") == CosineAnnealingLR(50, 1e-3)
    assert parse_schedule("linear") == LinearLR(start_factor=1 / 3, end_factor=1.0, total_iters=5)
    assert parse_schedule("inverse_time:k=0.5") == InverseTimeLR(k=0.5)
    one = parse_schedule("onecycle:max_lr=0.1,three_phase=true,anneal_strategy=linear")
    assert one == OneCycleLR(max_lr=0.1, three_phase=True, anneal_strategy="linear")
    assert (one.pct_start, one.div_factor, one.final_div_factor) == (0.3, 25.0, 1e4)
    assert (one.cycle_momentum, one.base_momentum, one.max_momentum) == (True, 0.85, 0.95)


def test_the_run_fills_in_lengths_and_the_peak_rate():
    cosine = parse_schedule("cosine").resolved(0.1, 40)
    assert cosine.T_max == 40
    one = parse_schedule("onecycle").resolved(0.1, 40)
    assert (one.max_lr, one.total_steps) == (0.1, 40)
    assert parse_schedule("onecycle:total_steps=60").resolved(0.1, 40).total_steps == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cosin", "schedule: unknown schedule 'cosin' (known: step, multistep, exponential, "),
        ("step", "schedule step: step_size is required, e.g. step:step_size=10"),
        ("exponential", "schedule exponential: gamma is required"),
        ("multistep:gamma=0.5", "schedule multistep: milestones is required, e.g. multistep:"),
        ("step:gama=0.5", "schedule step: no argument 'gama' (it takes step_size, gamma)"),
        ("step:step_size", "schedule step: expected argument=value, not 'step_size'"),
        ("step:step_size=2.5", "schedule step: step_size must be a whole number, not '2.5'"),
        ("step:step_size=0", "schedule step: step_size must be ≥ 1, not 0"),
        ("step:step_size=²", "schedule step: step_size must be a whole number, not '²'"),
        ("multistep:milestones=1/²", "milestones must be whole numbers separated by '/'"),
        ("step:step_size=5,step_size=6", "schedule step: step_size is given twice"),
        ("exponential:gamma=nan", "schedule exponential: gamma must be a finite number"),
        ("exponential:gamma=-1", "schedule exponential: gamma must be positive, not -1.0"),
        ("multistep:milestones=10,20", "not '20' (milestones=10/20: '/' between milestones)"),
        ("multistep:milestones=20/10", "milestones must be increasing whole numbers ≥ 1"),
        ("multistep:milestones=1;2", "milestones must be whole numbers separated by '/'"),
        ("cosine:T_max=0", "schedule cosine: T_max must be ≥ 1, not 0"),
        ("linear:start_factor=0", "schedule linear: start_factor must lie in (0, 1], not 0.0"),
        ("linear:end_factor=2", "schedule linear: end_factor must lie in [0, 1], not 2.0"),
        ("onecycle:three_phase=yes", "schedule onecycle: three_phase must be true or false"),
        ("onecycle:anneal_strategy=cosine", "anneal_strategy must be cos or linear"),
        ("onecycle:pct_start=1.5", "schedule onecycle: pct_start must lie in [0, 1], not 1.5"),
        ("onecycle:max_momentum=1", "schedule onecycle: max_momentum must lie in [0, 1)"),
        ("inverse_time:k=-1", "schedule inverse_time: k must not be negative, not -1.0"),
    ],
)
def test_bad_schedule_text_says_what_is_wrong(text, message):
    with pytest.raises(DeriveError) as error:
        parse_schedule(text)
    assert message in str(error.value)


def test_schedules_the_run_cannot_follow_are_refused():
    with pytest.raises(DeriveError, match="total_steps=30 is fewer than the run's 50"):
        parse_schedule("onecycle:total_steps=30").resolved(0.1, 50)
    with pytest.raises(DeriveError, match="makes a phase of no steps"):
        parse_schedule("onecycle:pct_start=0.1,total_steps=10").resolved(0.1, 10).rates(0.1, 11)
