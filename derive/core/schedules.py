"""torch.optim.lr_scheduler's schedules: the learning rate at each scheduler step.

Each schedule is a record with torch's argument names and defaults, and `rates` computes the
rate after 0, 1, 2, ... calls of `scheduler.step()` the way torch 2.13 does when step() is called
without an epoch: by its `get_lr`, which mostly updates the previous rate (the "chainable" form)
rather than evaluating the closed form, so the floats are torch's.

Text such as `cosine:T_max=50,eta_min=0.001` is parsed here into a record; list arguments
(milestones) are written with `/` between the numbers (`milestones=10/20`), which no shell
splits.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from derive.core.errors import DeriveError

AnnealStrategy = Literal["cos", "linear"]


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule; subclasses hold torch's arguments as fields."""

    name: ClassVar[str]
    torch_class: ClassVar[str]

    def resolved(self, lr: float, scheduler_steps: int) -> Schedule:
        """Arguments derive fills in from the run (a length, a peak rate), checked."""
        return self

    def rates(self, lr: float, count: int) -> list[float]:
        """The rate after 0, 1, ..., count − 1 calls of scheduler.step(), from base rate lr."""
        raise NotImplementedError

    def momenta(self, count: int) -> list[float] | None:
        """The momentum (or β₁) the schedule sets at those calls, if it cycles one."""
        return None

    def arguments(self) -> dict[str, object]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def _check(condition: bool, schedule: str, message: str) -> None:
    if not condition:
        raise DeriveError(f"schedule {schedule}: {message}")


@dataclass(frozen=True)
class StepLR(Schedule):
    """γ times the rate every step_size steps."""

    step_size: int
    gamma: float = 0.1
    name: ClassVar[str] = "step"
    torch_class: ClassVar[str] = "StepLR"

    def __post_init__(self) -> None:
        _check(self.step_size >= 1, self.name, f"step_size must be ≥ 1, not {self.step_size}")
        _check(self.gamma > 0, self.name, f"gamma must be positive, not {self.gamma}")

    def rates(self, lr: float, count: int) -> list[float]:
        rates = []
        for epoch in range(count):
            if epoch != 0 and epoch % self.step_size == 0:
                lr = lr * self.gamma
            rates.append(lr)
        return rates


@dataclass(frozen=True)
class MultiStepLR(Schedule):
    """γ times the rate at each milestone."""

    milestones: tuple[int, ...]
    gamma: float = 0.1
    name: ClassVar[str] = "multistep"
    torch_class: ClassVar[str] = "MultiStepLR"

    def __post_init__(self) -> None:
        steps = self.milestones
        _check(len(steps) > 0, self.name, "give at least one milestone, e.g. milestones=10/20")
        _check(
            steps[0] > 0 and all(a < b for a, b in itertools.pairwise(steps)),
            self.name,
            f"milestones must be increasing whole numbers ≥ 1, not {'/'.join(map(str, steps))}",
        )
        _check(self.gamma > 0, self.name, f"gamma must be positive, not {self.gamma}")

    def rates(self, lr: float, count: int) -> list[float]:
        rates = []
        for epoch in range(count):
            if epoch in self.milestones:
                lr = lr * self.gamma
            rates.append(lr)
        return rates


@dataclass(frozen=True)
class ExponentialLR(Schedule):
    """γ times the rate at every step."""

    gamma: float
    name: ClassVar[str] = "exponential"
    torch_class: ClassVar[str] = "ExponentialLR"

    def __post_init__(self) -> None:
        _check(self.gamma > 0, self.name, f"gamma must be positive, not {self.gamma}")

    def rates(self, lr: float, count: int) -> list[float]:
        rates = [lr]
        for _ in range(1, count):
            lr = lr * self.gamma
            rates.append(lr)
        return rates[:count]


@dataclass(frozen=True)
class CosineAnnealingLR(Schedule):
    """From the rate down to eta_min along half a cosine over T_max steps (then back up).

    T_max: the run's length when not given (torch requires it)."""

    T_max: int | None = None
    eta_min: float = 0.0
    name: ClassVar[str] = "cosine"
    torch_class: ClassVar[str] = "CosineAnnealingLR"

    def __post_init__(self) -> None:
        if self.T_max is not None:
            _check(self.T_max >= 1, self.name, f"T_max must be ≥ 1, not {self.T_max}")
        _check(self.eta_min >= 0, self.name, f"eta_min must not be negative, not {self.eta_min}")

    def resolved(self, lr: float, scheduler_steps: int) -> Schedule:
        if self.T_max is None:
            return dataclasses.replace(self, T_max=max(scheduler_steps, 1))
        return self

    def rates(self, lr: float, count: int) -> list[float]:
        base_lr, eta_min, period = lr, self.eta_min, self.T_max
        rates = [lr]
        for epoch in range(1, count):
            if (epoch - 1 - period) % (2 * period) == 0:
                lr = lr + (base_lr - eta_min) * (1 - math.cos(math.pi / period)) / 2
            else:
                lr = (1 + math.cos(math.pi * epoch / period)) / (
                    1 + math.cos(math.pi * (epoch - 1) / period)
                ) * (lr - eta_min) + eta_min
            rates.append(lr)
        return rates[:count]


@dataclass(frozen=True)
class LinearLR(Schedule):
    """The rate times a factor going linearly from start_factor to end_factor over
    total_iters steps: a warm-up."""

    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    total_iters: int = 5
    name: ClassVar[str] = "linear"
    torch_class: ClassVar[str] = "LinearLR"

    def __post_init__(self) -> None:
        _check(
            0 < self.start_factor <= 1,
            self.name,
            f"start_factor must lie in (0, 1], not {self.start_factor}",
        )
        _check(
            0 <= self.end_factor <= 1,
            self.name,
            f"end_factor must lie in [0, 1], not {self.end_factor}",
        )
        _check(self.total_iters >= 1, self.name, f"total_iters must be ≥ 1, not {self.total_iters}")

    def rates(self, lr: float, count: int) -> list[float]:
        start, end, total = self.start_factor, self.end_factor, self.total_iters
        lr = lr * start
        rates = [lr]
        for epoch in range(1, count):
            if epoch <= total:
                lr = lr * (1.0 + (end - start) / (total * start + (epoch - 1) * (end - start)))
            rates.append(lr)
        return rates[:count]


@dataclass(frozen=True)
class OneCycleLR(Schedule):
    """Up from max_lr/div_factor to max_lr over pct_start of total_steps, then down to
    max_lr/(div_factor·final_div_factor); the momentum (or β₁) cycles the other way.

    max_lr: the optimizer's rate when not given; total_steps: the run's length when not given
    (torch requires both). torch replaces the optimizer's rate by this schedule's."""

    max_lr: float | None = None
    total_steps: int | None = None
    pct_start: float = 0.3
    anneal_strategy: AnnealStrategy = "cos"
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    name: ClassVar[str] = "onecycle"
    torch_class: ClassVar[str] = "OneCycleLR"

    def __post_init__(self) -> None:
        name = self.name
        if self.max_lr is not None:
            _check(self.max_lr > 0, name, f"max_lr must be positive, not {self.max_lr}")
        if self.total_steps is not None:
            _check(self.total_steps >= 1, name, f"total_steps must be ≥ 1, not {self.total_steps}")
        _check(
            0 <= self.pct_start <= 1, name, f"pct_start must lie in [0, 1], not {self.pct_start}"
        )
        _check(
            self.anneal_strategy in ("cos", "linear"),
            name,
            f"anneal_strategy must be cos or linear, not {self.anneal_strategy!r}",
        )
        for key in ("base_momentum", "max_momentum"):
            value = getattr(self, key)
            _check(0 <= value < 1, name, f"{key} must lie in [0, 1), not {value}")
        for key in ("div_factor", "final_div_factor"):
            value = getattr(self, key)
            _check(value > 0, name, f"{key} must be positive, not {value}")

    def resolved(self, lr: float, scheduler_steps: int) -> Schedule:
        total = self.total_steps if self.total_steps is not None else max(scheduler_steps, 1)
        _check(
            scheduler_steps <= total,
            self.name,
            f"total_steps={total} is fewer than the run's {scheduler_steps} scheduler steps "
            "(torch raises past total_steps)",
        )
        max_lr = self.max_lr if self.max_lr is not None else lr
        return dataclasses.replace(self, max_lr=max_lr, total_steps=total)

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """(last step, rate from, rate to, momentum from, momentum to) of each phase."""
        total, pct = self.total_steps, self.pct_start
        if self.three_phase:
            return [
                (float(pct * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (
                    float(2 * pct * total) - 2,
                    "max_lr",
                    "initial_lr",
                    "base_momentum",
                    "max_momentum",
                ),
                (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        return [
            (float(pct * total) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            cos_out = math.cos(math.pi * pct) + 1
            return end + (start - end) / 2.0 * cos_out
        return (end - start) * pct + start

    def _cycle(self, count: int) -> list[tuple[float, float]]:
        """(rate, momentum) at scheduler steps 0..count−1: torch's get_lr, phase by phase."""
        initial_lr = self.max_lr / self.div_factor
        group = {
            "initial_lr": initial_lr,
            "max_lr": self.max_lr,
            "min_lr": initial_lr / self.final_div_factor,
            "max_momentum": self.max_momentum,
            "base_momentum": self.base_momentum,
        }
        phases = self._phases()
        values = []
        for step_num in range(count):
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, momentum_from, momentum_to) in enumerate(phases):
                if step_num <= end_step or i == len(phases) - 1:
                    if end_step == start_step:
                        raise DeriveError(
                            f"schedule {self.name}: pct_start={self.pct_start} with "
                            f"total_steps={self.total_steps} makes a phase of no steps "
                            "(torch divides by zero there)"
                        )
                    pct = (step_num - start_step) / (end_step - start_step)
                    rate = self._anneal(group[lr_from], group[lr_to], pct)
                    momentum = self._anneal(group[momentum_from], group[momentum_to], pct)
                    values.append((rate, momentum))
                    break
                start_step = end_step
        return values

    def rates(self, lr: float, count: int) -> list[float]:
        return [rate for rate, _ in self._cycle(count)]

    def momenta(self, count: int) -> list[float] | None:
        if not self.cycle_momentum:
            return None
        return [momentum for _, momentum in self._cycle(count)]


@dataclass(frozen=True)
class InverseTimeLR(Schedule):
    """The classical decay of stochastic approximation, η_t = η / (1 + k·t): torch's LambdaLR
    with lr_lambda = lambda t: 1 / (1 + k * t)."""

    k: float = 1.0
    name: ClassVar[str] = "inverse_time"
    torch_class: ClassVar[str] = "LambdaLR"

    def __post_init__(self) -> None:
        _check(self.k >= 0, self.name, f"k must not be negative, not {self.k}")

    def rates(self, lr: float, count: int) -> list[float]:
        return [lr * (1 / (1 + self.k * epoch)) for epoch in range(count)]


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (
        StepLR,
        MultiStepLR,
        ExponentialLR,
        CosineAnnealingLR,
        LinearLR,
        OneCycleLR,
        InverseTimeLR,
    )
}


# -- text → record -----------------------------------------------------------------------------


def _whole(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError("a whole number")
    return int(text)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def _switch(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("true or false")
    return text.lower() == "true"


def _milestones(text: str) -> tuple[int, ...]:
    parts = text.split("/")
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ValueError("whole numbers separated by '/', e.g. milestones=10/20")
    return tuple(int(part) for part in parts)


def _strategy(text: str) -> str:
    if text not in ("cos", "linear"):
        raise ValueError("cos or linear")
    return text


# Each field's annotation (as written, without "| None") → how to read its value.
_READERS: dict[str, Callable[[str], object]] = {
    "int": _whole,
    "float": _number,
    "bool": _switch,
    "tuple[int, ...]": _milestones,
    "AnnealStrategy": _strategy,
}


def parse_schedule(text: str) -> Schedule:
    """`NAME[:argument=value,...]`, e.g. `step:step_size=10,gamma=0.5`, into a Schedule."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if name not in SCHEDULES:
        raise DeriveError(f"schedule: unknown schedule {name!r} (known: {', '.join(SCHEDULES)})")
    cls = SCHEDULES[name]
    fields = {field.name: field for field in dataclasses.fields(cls)}
    given: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not key or not value:
            hint = " (milestones=10/20: '/' between milestones)" if "milestones" in fields else ""
            raise DeriveError(f"schedule {name}: expected argument=value, not {item!r}{hint}")
        if key not in fields:
            known = ", ".join(fields) or "no arguments"
            raise DeriveError(f"schedule {name}: no argument {key!r} (it takes {known})")
        if key in given:
            raise DeriveError(f"schedule {name}: {key} is given twice")
        kind = str(fields[key].type).removesuffix(" | None")
        try:
            given[key] = _READERS[kind](value)
        except ValueError as error:
            raise DeriveError(f"schedule {name}: {key} must be {error}, not {value!r}") from None
    missing = [
        key
        for key, field in fields.items()
        if key not in given
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        example = {"step": "step:step_size=10", "multistep": "multistep:milestones=10/20"}
        hint = example.get(name, f"{name}:{missing[0]}=...")
        raise DeriveError(f"schedule {name}: {', '.join(missing)} is required, e.g. {hint}")
    return cls(**given)
