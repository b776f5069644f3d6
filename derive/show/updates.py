"""Each torch.optim update rule as the lines of LaTeX a lesson prints, in the symbols of torch's
documented pseudocode (the same symbols core/optimizers.py names each worked quantity with).
The lines follow the options a run used: momentum, Nesterov, weight decay, maximize, AMSGrad."""

from __future__ import annotations

from collections.abc import Mapping

from derive.core.optimizers import Optimizer

_ADAM_MOMENTS = (
    r"m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t",
    r"v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2",
)


def update_lines(optimizer: Optimizer) -> tuple[str, ...]:
    """The rule, line by line; θ is the parameters, γ the learning rate, g_t the gradient."""
    options = optimizer.options
    lines = [*_gradient_lines(optimizer.name, options)]
    lines += _RULES[optimizer.name](options)
    return tuple(lines)


def _gradient_lines(name: str, options: Mapping[str, object]) -> list[str]:
    lines = []
    if options.get("maximize"):
        lines.append(r"g_t \leftarrow -g_t")
    decoupled = name == "adamw" or options.get("decoupled_weight_decay")
    if options.get("weight_decay") and not decoupled:
        lines.append(r"g_t \leftarrow g_t + \lambda\, \theta_{t-1}")
    if options.get("weight_decay") and decoupled:
        lines.append(r"\theta_{t-1} \leftarrow \theta_{t-1}\,(1 - \gamma \lambda)")
    return lines


def _sgd(options) -> list[str]:
    if not options["momentum"]:
        return [r"\theta_t = \theta_{t-1} - \gamma\, g_t"]
    buffer = (
        r"b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \quad (b_1 = g_1)"
        if options["dampening"]
        else r"b_t = \mu\, b_{t-1} + g_t \quad (b_1 = g_1)"
    )
    step = r"g_t + \mu\, b_t" if options["nesterov"] else "b_t"
    return [buffer, rf"\theta_t = \theta_{{t-1}} - \gamma\, \left({step}\right)"]


def _adagrad(options) -> list[str]:
    return [
        r"\tilde{\gamma} = \frac{\gamma}{1 + (t - 1)\, \eta_{decay}}",
        r"state\_sum_t = state\_sum_{t-1} + g_t^2",
        r"\theta_t = \theta_{t-1} - \tilde{\gamma}\, \frac{g_t}{\sqrt{state\_sum_t} + \epsilon}",
    ]


def _rmsprop(options) -> list[str]:
    lines = [r"v_t = \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2"]
    if options["centered"]:
        lines += [
            r"g^{ave}_t = \alpha\, g^{ave}_{t-1} + (1 - \alpha)\, g_t",
            r"\tilde{v}_t = v_t - \left(g^{ave}_t\right)^2",
        ]
    else:
        lines.append(r"\tilde{v}_t = v_t")
    if options["momentum"]:
        lines += [
            r"b_t = \mu\, b_{t-1} + \frac{g_t}{\sqrt{\tilde{v}_t} + \epsilon}",
            r"\theta_t = \theta_{t-1} - \gamma\, b_t",
        ]
    else:
        lines.append(
            r"\theta_t = \theta_{t-1} - \gamma\, \frac{g_t}{\sqrt{\tilde{v}_t} + \epsilon}"
        )
    return lines


def _adam(options) -> list[str]:
    lines = [
        *_ADAM_MOMENTS,
        r"\widehat{m_t} = \frac{m_t}{1 - \beta_1^t}",
    ]
    if options["amsgrad"]:
        lines += [
            r"v_t^{max} = \max\left(v_{t-1}^{max}, v_t\right)",
            r"\widehat{v_t} = \frac{v_t^{max}}{1 - \beta_2^t}",
        ]
    else:
        lines.append(r"\widehat{v_t} = \frac{v_t}{1 - \beta_2^t}")
    lines.append(
        r"\theta_t = \theta_{t-1} - \gamma\, \frac{\widehat{m_t}}{\sqrt{\widehat{v_t}} + \epsilon}"
    )
    return lines


def _adadelta(options) -> list[str]:
    return [
        r"v_t = \rho\, v_{t-1} + (1 - \rho)\, g_t^2",
        r"\Delta x_t = \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t",
        r"u_t = \rho\, u_{t-1} + (1 - \rho)\, \Delta x_t^2",
        r"\theta_t = \theta_{t-1} - \gamma\, \Delta x_t",
    ]


def _adamax(options) -> list[str]:
    return [
        _ADAM_MOMENTS[0],
        r"u_t = \max\left(\beta_2\, u_{t-1}, |g_t| + \epsilon\right)",
        r"\theta_t = \theta_{t-1} - \frac{\gamma\, m_t}{(1 - \beta_1^t)\, u_t}",
    ]


def _nadam(options) -> list[str]:
    return [
        r"\mu_t = \beta_1 \left(1 - \tfrac{1}{2}\, 0.96^{t \psi}\right), \quad "
        r"\mu_{t+1} = \beta_1 \left(1 - \tfrac{1}{2}\, 0.96^{(t+1) \psi}\right)",
        *_ADAM_MOMENTS,
        r"\widehat{v_t} = \frac{v_t}{1 - \beta_2^t}",
        r"\theta_t = \theta_{t-1} - \gamma\, \frac{1 - \mu_t}{1 - \prod_{i=1}^{t} \mu_i}"
        r"\, \frac{g_t}{\sqrt{\widehat{v_t}} + \epsilon} - \gamma\, "
        r"\frac{\mu_{t+1}}{1 - \prod_{i=1}^{t+1} \mu_i}\, "
        r"\frac{m_t}{\sqrt{\widehat{v_t}} + \epsilon}",
    ]


def _radam(options) -> list[str]:
    return [
        *_ADAM_MOMENTS,
        r"\widehat{m_t} = \frac{m_t}{1 - \beta_1^t}",
        r"\rho_{\infty} = \frac{2}{1 - \beta_2} - 1, \quad "
        r"\rho_t = \rho_{\infty} - \frac{2 t\, \beta_2^t}{1 - \beta_2^t}",
        r"\rho_t > 5: \quad l_t = \frac{\sqrt{1 - \beta_2^t}}{\sqrt{v_t} + \epsilon}, \quad "
        r"r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\, \rho_{\infty}}"
        r"{(\rho_{\infty} - 4)(\rho_{\infty} - 2)\, \rho_t}}, \quad "
        r"\theta_t = \theta_{t-1} - \gamma\, \widehat{m_t}\, r_t\, l_t",
        r"\rho_t \le 5: \quad \theta_t = \theta_{t-1} - \gamma\, \widehat{m_t}",
    ]


def _rprop(options) -> list[str]:
    return [
        r"g_t\, g_{prev} > 0: \quad \eta_t = \min\left(\eta_{t-1}\, \eta_{+}, \Gamma_{max}\right)",
        r"g_t\, g_{prev} < 0: \quad \eta_t = \max\left(\eta_{t-1}\, \eta_{-}, \Gamma_{min}\right),"
        r" \quad g_t \leftarrow 0",
        r"g_t\, g_{prev} = 0: \quad \eta_t = \eta_{t-1}",
        r"\theta_t = \theta_{t-1} - \eta_t\, \operatorname{sign}(g_t), \quad "
        r"g_{prev} \leftarrow g_t",
    ]


def _asgd(options) -> list[str]:
    return [
        r"\theta_t = \theta_{t-1}\, (1 - \lambda\, \eta_t) - \eta_t\, g_t",
        r"\bar{\theta}_t = \bar{\theta}_{t-1} + \mu_t \left(\theta_t - \bar{\theta}_{t-1}\right)",
        r"\eta_{t+1} = \frac{\gamma}{(1 + \lambda \gamma t)^{\alpha}}, \quad "
        r"\mu_{t+1} = \frac{1}{\max(1, t - t_0)}",
    ]


_RULES = {
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adam,
    "adadelta": _adadelta,
    "adamax": _adamax,
    "nadam": _nadam,
    "radam": _radam,
    "rprop": _rprop,
    "asgd": _asgd,
}
