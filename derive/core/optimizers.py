"""torch.optim's optimizers as update rules in NumPy.

Each optimizer is its update rule with torch's option names and defaults, written line by line
as torch 2.13 writes it in `_single_tensor_<name>` (torch/optim/<name>.py, the `foreach=False`
path), in the same arithmetic order. torch's CPU kernels fuse some multiply-adds (`add_` with
`alpha`, `addcmul_`, `lerp_`), which NumPy cannot: a run agrees with torch to about 1e-15 per
step, not always to the last bit.

A rule takes (params, grad, state, step, options) and returns an `Update`: the new parameters
and the step's intermediate values by the names torch's code gives them. `state` is torch's
`optimizer.state[p]`, under torch's keys, without "step": the rule replaces its arrays, never
changes them in place, so a copy of the dict is a snapshot. `step` counts from 1, as torch's
`state["step"]` does after its increment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from derive.core.errors import DeriveError

# torch.optim's defaults in torch's order, except sgd's lr: torch requires one; the seeds use 0.1.
DEFAULTS: dict[str, dict[str, object]] = {
    "sgd": {
        "lr": 0.1,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "maximize": False,
    },
    "adagrad": {
        "lr": 0.01,
        "lr_decay": 0.0,
        "weight_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
        "maximize": False,
    },
    "rmsprop": {
        "lr": 0.01,
        "alpha": 0.99,
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "centered": False,
        "maximize": False,
    },
    "adam": {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "maximize": False,
        "decoupled_weight_decay": False,
    },
    "adamw": {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.01,
        "amsgrad": False,
        "maximize": False,
    },
    "adadelta": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0, "maximize": False},
    "adamax": {
        "lr": 0.002,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "maximize": False,
    },
    "nadam": {
        "lr": 0.002,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "momentum_decay": 0.004,
        "decoupled_weight_decay": False,
        "maximize": False,
    },
    "radam": {
        "lr": 0.001,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "decoupled_weight_decay": False,
        "maximize": False,
    },
    "rprop": {"lr": 0.01, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0), "maximize": False},
    "asgd": {
        "lr": 0.01,
        "lambd": 1e-4,
        "alpha": 0.75,
        "t0": 1e6,
        "weight_decay": 0.0,
        "maximize": False,
    },
}

# The class each name stands for: torch.optim.<class>.
TORCH_CLASSES = {
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
    "rprop": "Rprop",
    "asgd": "ASGD",
}


@dataclass(frozen=True)
class Optimizer:
    name: str
    options: Mapping[str, object]

    @classmethod
    def make(cls, name: str = "sgd", **given: object) -> Optimizer:
        if name not in DEFAULTS:
            raise DeriveError(f"unknown optimizer {name!r} (known: {', '.join(DEFAULTS)})")
        options = dict(DEFAULTS[name])
        for key, value in given.items():
            if value is None:
                continue
            if key not in options:
                raise DeriveError(f"optimizer {name} has no option {key!r}")
            options[key] = value
        _validate(name, options)
        return cls(name, MappingProxyType(options))

    @property
    def momentum_option(self) -> str | None:
        """The option a one-cycle schedule cycles: "momentum", "betas" (its β₁), or None.

        torch's OneCycleLR looks for these two keys in the optimizer's defaults."""
        return next((key for key in ("momentum", "betas") if key in self.options), None)


def _validate(name: str, options: dict[str, object]) -> None:
    """torch's ValueErrors, as one-line errors (and a positive learning rate)."""
    if not options["lr"] > 0:
        raise DeriveError(f"the learning rate must be positive, not {options['lr']}")
    if (
        name == "sgd"
        and options["nesterov"]
        and (options["momentum"] <= 0 or options["dampening"] != 0)
    ):
        raise DeriveError("nesterov needs a positive momentum and zero dampening (as in torch)")
    for beta in options.get("betas", ()):
        if not 0 <= beta < 1:
            raise DeriveError(f"betas must lie in [0, 1), not {beta}")
    if "rho" in options and not 0 <= options["rho"] <= 1:
        raise DeriveError(f"rho must lie in [0, 1], not {options['rho']}")
    if "etas" in options:
        etaminus, etaplus = options["etas"]
        if not 0 < etaminus < 1 < etaplus:
            raise DeriveError(
                f"etas must satisfy 0 < etaminus < 1 < etaplus, not {options['etas']}"
            )
    if "step_sizes" in options:
        smallest, largest = options["step_sizes"]
        if not 0 <= smallest <= largest:
            raise DeriveError(f"step_sizes must be 0 ≤ min ≤ max, not {options['step_sizes']}")


# -- what the worked steps show ---------------------------------------------------------------


class Where(StrEnum):
    """Where torch holds a quantity of a step."""

    STATE = "state"  # optimizer.state[p][name], kept from one step to the next
    LOCAL = "local"  # a variable of this step in torch.optim.<module>._single_tensor_<name>
    GROUP = "group"  # optimizer.param_groups[0][name]: the rate, a cycled momentum
    DOCUMENTED = "documented"  # only in torch's documented pseudocode (e.g. Adam's m̂, v̂)


@dataclass(frozen=True)
class Quantity:
    """One value of a step: torch's name for it, where torch holds it, and its symbol in the
    pseudocode of torch's documentation (LaTeX)."""

    name: str
    where: Where
    symbol: str


def _quantities(*rows: tuple[str, Where, str]) -> tuple[Quantity, ...]:
    return tuple(Quantity(*row) for row in rows)


STATE, LOCAL, GROUP, DOCUMENTED = Where
_RATE = ("lr", GROUP, r"\gamma")
_GRAD = ("grad", LOCAL, "g_t")  # after maximize and weight decay: the gradient the rule uses

# Per optimizer, in the order torch computes them; a worked step shows those present (a
# momentum buffer only with momentum, max_exp_avg_sq only with amsgrad, ...).
QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    "sgd": _quantities(_RATE, _GRAD, ("momentum_buffer", STATE, "b_t")),
    "adagrad": _quantities(
        _RATE,
        _GRAD,
        ("clr", LOCAL, r"\tilde{\gamma}"),
        ("sum", STATE, r"state\_sum_t"),
        ("std", LOCAL, r"\sqrt{state\_sum_t} + \epsilon"),
    ),
    "rmsprop": _quantities(
        _RATE,
        _GRAD,
        ("square_avg", STATE, "v_t"),
        ("grad_avg", STATE, r"g^{ave}_t"),
        ("avg", LOCAL, r"\sqrt{\tilde{v}_t} + \epsilon"),
        ("momentum_buffer", STATE, "b_t"),
    ),
    "adam": _quantities(
        _RATE,
        _GRAD,
        ("exp_avg", STATE, "m_t"),
        ("exp_avg_sq", STATE, "v_t"),
        ("bias_correction1", LOCAL, r"1 - \beta_1^t"),
        ("bias_correction2", LOCAL, r"1 - \beta_2^t"),
        ("m_hat", DOCUMENTED, r"\widehat{m_t}"),
        ("v_hat", DOCUMENTED, r"\widehat{v_t}"),
        ("max_exp_avg_sq", STATE, r"v_t^{max}"),
        ("step_size", LOCAL, r"\gamma / (1 - \beta_1^t)"),
        ("denom", LOCAL, r"\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon"),
    ),
    "adadelta": _quantities(
        _RATE,
        _GRAD,
        ("square_avg", STATE, "v_t"),
        ("std", LOCAL, r"\sqrt{v_t + \epsilon}"),
        ("delta", LOCAL, r"\Delta x_t"),
        ("acc_delta", STATE, "u_t"),
    ),
    "adamax": _quantities(
        _RATE,
        _GRAD,
        ("exp_avg", STATE, "m_t"),
        ("exp_inf", STATE, "u_t"),
        ("bias_correction", LOCAL, r"1 - \beta_1^t"),
        ("clr", LOCAL, r"\gamma / (1 - \beta_1^t)"),
    ),
    "nadam": _quantities(
        _RATE,
        _GRAD,
        ("mu", LOCAL, r"\mu_t"),
        ("mu_next", LOCAL, r"\mu_{t+1}"),
        ("mu_product", STATE, r"\prod_{i=1}^{t} \mu_i"),
        ("exp_avg", STATE, "m_t"),
        ("exp_avg_sq", STATE, "v_t"),
        ("bias_correction2", LOCAL, r"1 - \beta_2^t"),
        ("denom", LOCAL, r"\sqrt{\widehat{v_t}} + \epsilon"),
    ),
    "radam": _quantities(
        _RATE,
        _GRAD,
        ("exp_avg", STATE, "m_t"),
        ("exp_avg_sq", STATE, "v_t"),
        ("bias_correction1", LOCAL, r"1 - \beta_1^t"),
        ("bias_correction2", LOCAL, r"1 - \beta_2^t"),
        ("bias_corrected_exp_avg", LOCAL, r"\widehat{m_t}"),
        ("rho_inf", LOCAL, r"\rho_{\infty}"),
        ("rho_t", LOCAL, r"\rho_t"),
        ("adaptive_lr", LOCAL, "l_t"),
        ("rect", LOCAL, "r_t"),
    ),
    "rprop": _quantities(
        _RATE,
        _GRAD,
        ("sign", LOCAL, r"\eta_{+}, \eta_{-} \text{ or } 1"),
        ("step_size", STATE, r"\eta_t"),
        ("prev", STATE, r"g_{prev}"),
    ),
    "asgd": _quantities(
        _RATE,
        _GRAD,
        ("eta_value", LOCAL, r"\eta_t"),
        ("ax", STATE, r"\bar{\theta}_t"),
        ("eta", STATE, r"\eta_{t+1}"),
        ("mu", STATE, r"\mu_{t+1}"),
    ),
}
QUANTITIES["adamw"] = QUANTITIES["adam"]


def documented(name: str, values: Mapping[str, object]) -> dict[str, np.ndarray]:
    """The documentation's quantities that torch's code folds away: Adam's m̂ = m/(1 − β₁ᵗ)
    and v̂ = v/(1 − β₂ᵗ) (torch divides by √(1 − β₂ᵗ) inside `denom` instead)."""
    if name not in ("adam", "adamw"):
        return {}
    return {
        "m_hat": values["exp_avg"] / values["bias_correction1"],
        "v_hat": values["exp_avg_sq"] / values["bias_correction2"],
    }


# -- the update rules --------------------------------------------------------------------------


class Update(NamedTuple):
    params: np.ndarray
    intermediates: dict[str, object]  # this step's values, by torch's local names


UpdateRule = Callable[[np.ndarray, np.ndarray, dict, int, Mapping[str, object]], Update]


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp: two formulas, chosen by the weight, each exact at its own end."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _sgd(params, grad, state, step, options):
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    momentum = options["momentum"]
    if momentum != 0:
        buf = state.get("momentum_buffer")
        buf = grad if buf is None else buf * momentum + (1 - options["dampening"]) * grad
        state["momentum_buffer"] = buf
        step_direction = grad + momentum * buf if options["nesterov"] else buf
    else:
        step_direction = grad
    return Update(params - options["lr"] * step_direction, {"grad": grad})


def _adagrad(params, grad, state, step, options):
    if step == 1:
        state["sum"] = np.full_like(params, options["initial_accumulator_value"])
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    clr = options["lr"] / (1 + (step - 1) * options["lr_decay"])
    state["sum"] = state["sum"] + grad * grad
    std = np.sqrt(state["sum"]) + options["eps"]
    return Update(params - clr * grad / std, {"grad": grad, "clr": clr, "std": std})


def _rmsprop(params, grad, state, step, options):
    momentum, alpha = options["momentum"], options["alpha"]
    if step == 1:
        state["square_avg"] = np.zeros_like(params)
        if options["centered"]:
            state["grad_avg"] = np.zeros_like(params)
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    state["square_avg"] = state["square_avg"] * alpha + (1 - alpha) * grad * grad
    if options["centered"]:
        state["grad_avg"] = _lerp(state["grad_avg"], grad, 1 - alpha)
        avg = np.sqrt(state["square_avg"] - state["grad_avg"] * state["grad_avg"])
    else:
        avg = np.sqrt(state["square_avg"])
    avg = avg + options["eps"]
    shown = {"grad": grad, "avg": avg}
    if momentum > 0:
        buf = state.get("momentum_buffer", np.zeros_like(params))
        state["momentum_buffer"] = buf * momentum + grad / avg
        return Update(params - options["lr"] * state["momentum_buffer"], shown)
    return Update(params - options["lr"] * grad / avg, shown)


def _adam(params, grad, state, step, options, decoupled=False):
    if step == 1:
        state["exp_avg"] = np.zeros_like(params)
        state["exp_avg_sq"] = np.zeros_like(params)
        if options["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(params)
    lr, weight_decay = options["lr"], options["weight_decay"]
    beta1, beta2 = options["betas"]
    grad = -grad if options["maximize"] else grad
    if weight_decay != 0:
        if decoupled or options.get("decoupled_weight_decay"):
            params = params * (1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * params
    state["exp_avg"] = _lerp(state["exp_avg"], grad, 1 - beta1)
    state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if options["amsgrad"]:
        state["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], state["exp_avg_sq"])
        denom = np.sqrt(state["max_exp_avg_sq"]) / bias_correction2_sqrt + options["eps"]
    else:
        denom = np.sqrt(state["exp_avg_sq"]) / bias_correction2_sqrt + options["eps"]
    shown = {
        "grad": grad,
        "bias_correction1": bias_correction1,
        "bias_correction2": bias_correction2,
        "step_size": step_size,
        "denom": denom,
    }
    return Update(params - step_size * state["exp_avg"] / denom, shown)


def _adamw(params, grad, state, step, options):
    return _adam(params, grad, state, step, options, decoupled=True)


def _adadelta(params, grad, state, step, options):
    if step == 1:
        state["square_avg"] = np.zeros_like(params)
        state["acc_delta"] = np.zeros_like(params)
    rho, eps = options["rho"], options["eps"]
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    state["square_avg"] = state["square_avg"] * rho + (1 - rho) * grad * grad
    std = np.sqrt(state["square_avg"] + eps)
    delta = np.sqrt(state["acc_delta"] + eps) / std * grad
    state["acc_delta"] = state["acc_delta"] * rho + (1 - rho) * delta * delta
    shown = {"grad": grad, "std": std, "delta": delta}
    return Update(params - options["lr"] * delta, shown)


def _adamax(params, grad, state, step, options):
    if step == 1:
        state["exp_avg"] = np.zeros_like(params)
        state["exp_inf"] = np.zeros_like(params)
    beta1, beta2 = options["betas"]
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    state["exp_avg"] = _lerp(state["exp_avg"], grad, 1 - beta1)
    state["exp_inf"] = np.maximum(state["exp_inf"] * beta2, np.abs(grad) + options["eps"])
    bias_correction = 1 - beta1**step
    clr = options["lr"] / bias_correction
    shown = {"grad": grad, "bias_correction": bias_correction, "clr": clr}
    return Update(params - clr * state["exp_avg"] / state["exp_inf"], shown)


def _nadam(params, grad, state, step, options):
    if step == 1:
        state["mu_product"] = 1.0
        state["exp_avg"] = np.zeros_like(params)
        state["exp_avg_sq"] = np.zeros_like(params)
    lr, weight_decay, momentum_decay = (
        options["lr"],
        options["weight_decay"],
        options["momentum_decay"],
    )
    beta1, beta2 = options["betas"]
    grad = -grad if options["maximize"] else grad
    bias_correction2 = 1 - beta2**step
    if weight_decay != 0:
        if options["decoupled_weight_decay"]:
            params = params * (1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * params
    # the momentum cache μ_t and μ_{t+1}
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    state["mu_product"] = state["mu_product"] * mu
    state["exp_avg"] = _lerp(state["exp_avg"], grad, 1 - beta1)
    state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + (1 - beta2) * grad * grad
    denom = np.sqrt(state["exp_avg_sq"] / bias_correction2)
    mu_product_next = state["mu_product"] * mu_next
    denom = denom + options["eps"]
    params = params + (-lr * (1.0 - mu) / (1.0 - state["mu_product"])) * grad / denom
    params = params + ((-lr * mu_next) / (1.0 - mu_product_next)) * state["exp_avg"] / denom
    shown = {
        "grad": grad,
        "mu": mu,
        "mu_next": mu_next,
        "bias_correction2": bias_correction2,
        "denom": denom,
    }
    return Update(params, shown)


def _radam(params, grad, state, step, options):
    if step == 1:
        state["exp_avg"] = np.zeros_like(params)
        state["exp_avg_sq"] = np.zeros_like(params)
    lr, weight_decay = options["lr"], options["weight_decay"]
    beta1, beta2 = options["betas"]
    grad = -grad if options["maximize"] else grad
    if weight_decay != 0:
        if options["decoupled_weight_decay"]:
            params = params * (1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * params
    state["exp_avg"] = _lerp(state["exp_avg"], grad, 1 - beta1)
    state["exp_avg_sq"] = state["exp_avg_sq"] * beta2 + (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = state["exp_avg"] / bias_correction1
    # the maximum length of the approximated simple moving average, and its length now
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    shown = {
        "grad": grad,
        "bias_correction1": bias_correction1,
        "bias_correction2": bias_correction2,
        "bias_corrected_exp_avg": bias_corrected_exp_avg,
        "rho_inf": rho_inf,
        "rho_t": rho_t,
    }
    if rho_t > 5.0:  # the variance is tractable: rectify the adaptive rate
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
        adaptive_lr = (bias_correction2**0.5) / (np.sqrt(state["exp_avg_sq"]) + options["eps"])
        shown |= {"adaptive_lr": adaptive_lr, "rect": rect}
        return Update(params - bias_corrected_exp_avg * lr * adaptive_lr * rect, shown)
    return Update(params - bias_corrected_exp_avg * lr, shown)


def _rprop(params, grad, state, step, options):
    if step == 1:
        state["prev"] = np.zeros_like(params)
        state["step_size"] = np.full_like(params, options["lr"])
    etaminus, etaplus = options["etas"]
    step_size_min, step_size_max = options["step_sizes"]
    grad = -grad if options["maximize"] else grad
    agreement = np.sign(grad * state["prev"])
    sign = np.where(agreement > 0, etaplus, np.where(agreement < 0, etaminus, 1.0))
    state["step_size"] = np.clip(state["step_size"] * sign, step_size_min, step_size_max)
    # where the gradient changed sign, no step this time, and no sign to compare with next time
    grad = np.where(sign == etaminus, 0.0, grad)
    state["prev"] = grad
    return Update(params - np.sign(grad) * state["step_size"], {"grad": grad, "sign": sign})


def _asgd(params, grad, state, step, options):
    if step == 1:
        state["eta"] = options["lr"]
        state["mu"] = 1.0
        state["ax"] = np.zeros_like(params)
    lr, lambd = options["lr"], options["lambd"]
    grad = -grad if options["maximize"] else grad
    if options["weight_decay"] != 0:
        grad = grad + options["weight_decay"] * params
    eta_value = state["eta"]
    params = params * (1 - lambd * eta_value)  # the decay term
    params = params - eta_value * grad
    # the average of the parameters since step t0
    if state["mu"] != 1:
        state["ax"] = state["ax"] + (params - state["ax"]) * state["mu"]
    else:
        state["ax"] = params
    state["eta"] = lr / ((1 + lambd * lr * step) ** options["alpha"])
    state["mu"] = 1 / max(1, step - options["t0"])
    return Update(params, {"grad": grad, "eta_value": eta_value})


UPDATE_RULES: dict[str, UpdateRule] = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
    "adadelta": _adadelta,
    "adamax": _adamax,
    "nadam": _nadam,
    "radam": _radam,
    "rprop": _rprop,
    "asgd": _asgd,
}
