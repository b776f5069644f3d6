"""Stage 4: Derivation + runs → lesson files (Markdown and standalone HTML, zh and en).

Every number a lesson prints is computed here, from the runs, and arrives in the templates
already formatted; the templates hold the words and the layout. A section appears when it
applies to the loss (batch sizes only over data, minima and saddles only where they exist).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy

from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.errors import DeriveError
from derive.core.experiments import Experiments, Run
from derive.core.numeric import numeric
from derive.show import figures
from derive.show.catalog import environment, messages
from derive.show.explain import LATEX, operator, partial_lines
from derive.show.printing import hazard_text, number, number_text, to_latex

SECTIONS = (
    "intuition",
    "loss",
    "gradient",
    "update",
    "table",
    "claims",
    "descent",
    "rates",
    "batch",
    "optimizers",
    "landscape",
    "exercises",
    "summary",
)
TABLE_HEAD, TABLE_TAIL = 8, 3  # long runs show the first rows, an ellipsis, the last rows


@dataclass(frozen=True)
class DerivationLine:
    depth: int
    rule: str  # the rule's name in the lesson's language
    fact: str  # what the rule says, or ""
    latex: str  # the equation this step states


@dataclass(frozen=True)
class PartialView:
    symbol: str  # LaTeX of the parameter
    operator: str  # \frac{dL}{dw} or \frac{\partial L}{\partial w}
    textbook: str  # LaTeX of the end form
    lines: tuple[DerivationLine, ...]
    update_rule: str  # LaTeX: w := w - \eta (...)


@dataclass(frozen=True)
class Row:
    cells: tuple[str, ...]


@dataclass(frozen=True)
class LessonView:
    """What a template sees: words aside, everything is here, formatted."""

    language: str
    title: str
    sections: tuple[str, ...]
    numbers: Mapping[str, str]  # section → its number in this lesson
    loss_latex: str
    params: tuple[str, ...]
    single: bool
    over_data: bool
    rows: int
    partials: tuple[PartialView, ...]
    gradient_vector: str
    gradient_at_start: str
    learning_rate: str
    steps: int
    start: str
    table_header: tuple[str, ...]
    table_rows: tuple[tuple[str, ...], ...]
    final_params: str
    final_loss: str
    start_loss: str
    status: str
    diverged_at: int | None
    figures: Mapping[str, str]
    rates: Mapping[str, object] = field(default_factory=dict)
    optimizers: tuple[Row, ...] = ()
    batches: tuple[Row, ...] = ()
    points: tuple[Row, ...] = ()
    starts: tuple[Row, ...] = ()
    saddle: bool = False
    fit: Mapping[str, str] = field(default_factory=dict)
    exercises: Mapping[str, object] = field(default_factory=dict)
    hazard: Mapping[str, str] = field(default_factory=dict)  # kind, expression, where
    claims: tuple[Row, ...] = ()  # a source's printed values beside the true ones
    corrected: int = 0  # how many of them were not true


# -- the view --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A value a source prints for a parameter after `step` updates, with the digits it shows."""

    step: int
    param: str
    value: float
    text: str  # as printed: its decimals set how close the true value must be


def lesson_view(
    derivation: Derivation,
    trace: Trace,
    experiments: Experiments,
    language: str,
    figure_paths: Mapping[str, str],
    sections: tuple[str, ...],
    claims: tuple[Claim, ...] = (),
) -> LessonView:
    loss = derivation.loss
    catalog = messages(language)
    symbols = [to_latex(s) for s in loss.symbols]
    single = len(symbols) == 1
    partials = tuple(_partial_view(p, derivation, catalog) for p in derivation.partials)
    learning_rate = number(trace.optimizer.options["lr"])
    header, rows = _step_table(trace, symbols, learning_rate, catalog["table"])
    numerals = catalog["numerals"]
    return LessonView(
        language=language,
        title=loss.text,
        sections=sections,
        numbers={name: numerals[k] for k, name in enumerate(sections)},
        loss_latex=f"L({', '.join(symbols)}) = {to_latex(loss.expr, loss.params)}",
        params=tuple(symbols),
        single=single,
        over_data=bool(loss.data),
        rows=experiments.rows,
        partials=partials,
        gradient_vector=_vector(symbols, [p.textbook for p in partials]),
        gradient_at_start=_vector(symbols, [_tex(v) for v in trace.grad[0]], at=trace.params[0]),
        learning_rate=learning_rate,
        steps=trace.steps,
        start=_assignments(symbols, trace.params[0]),
        table_header=header,
        table_rows=rows,
        final_params=_assignments(symbols, trace.params[-1]),
        final_loss=_tex(trace.loss[-1]),
        start_loss=_tex(trace.loss[0]),
        status=trace.status,
        diverged_at=trace.steps if trace.status == "diverged" else None,
        figures=dict(figure_paths),
        rates=_rates_view(experiments, catalog),
        optimizers=tuple(_optimizer_row(run, catalog) for run in experiments.optimizers),
        batches=tuple(_batch_row(run, experiments.rows, catalog) for run in experiments.batches),
        points=tuple(
            _point_row(p, symbols, catalog, experiments.points) for p in experiments.points
        ),
        starts=tuple(
            _start_row(s, symbols, catalog, experiments.points) for s in experiments.starts
        ),
        saddle=any(p.kind == "saddle" for p in experiments.points),
        fit=_fit_view(experiments, trace),
        exercises=_exercises(derivation, trace, experiments, catalog),
        hazard=_hazard_view(trace, catalog),
        claims=tuple(_claim_row(c, trace, catalog) for c in claims),
        corrected=sum(not claim_holds(c, trace) for c in claims),
    )


def claim_holds(claim: Claim, trace: Trace) -> bool:
    """True when the printed value is the true one rounded to the digits it shows."""
    decimals = len(claim.text.split(".")[1]) if "." in claim.text else 0
    true = float(trace.params[claim.step][trace.param_names.index(claim.param)])
    return abs(true - claim.value) <= 0.5 * 10**-decimals * (1 + 1e-9)


def _claim_row(claim: Claim, trace: Trace, catalog: dict) -> Row:
    if claim.step >= len(trace.params):
        raise DeriveError(
            f"a claim is about step {claim.step}, but the run has {trace.steps} steps"
        )
    true = trace.params[claim.step][trace.param_names.index(claim.param)]
    verdict = catalog["claims"]["holds" if claim_holds(claim, trace) else "corrected"]
    symbol = to_latex(sympy.Symbol(claim.param))
    return Row(
        (str(claim.step), f"${symbol}$", claim.text.replace("-", "−"), number_text(true), verdict)
    )


def _hazard_view(trace: Trace, catalog: dict) -> dict:
    hazard = trace.hazard
    if hazard is None:
        return {"kind": None, "expression": "", "where": ""}
    operation, where = hazard_text(hazard, trace.param_names, catalog["words"]["row"])
    return {"kind": hazard.kind, "expression": operation, "where": where}


def _assignments(symbols, values) -> str:
    return ", ".join(f"{s} = {_tex(v)}" for s, v in zip(symbols, values, strict=True))


def _tex(value: float) -> str:
    """A number for LaTeX: 0.6, -4.8, 1.2 \times 10^{-5}."""
    text = number(float(value))
    if "×10^" in text:
        mantissa, exponent = text.split("×10^")
        return rf"{mantissa} \times 10^{{{exponent}}}"
    return text


def _vector(symbols, entries, at=None) -> str:
    where = f"({', '.join(_tex(v) for v in at)})" if at is not None else ""
    if len(symbols) == 1:
        return rf"L'{where} = {entries[0]}" if at is not None else str(entries[0])
    body = ", ".join(str(e) for e in entries)
    return rf"\nabla L{where} = \left({body}\right)"


def _partial_view(partial, derivation: Derivation, catalog: dict, name: str = "L") -> PartialView:
    params = derivation.loss.params
    symbol = to_latex(sympy.Symbol(partial.param))
    textbook = to_latex(partial.textbook, params)
    lines = tuple(
        DerivationLine(
            depth=line.depth,
            rule=catalog["rules"][line.rule].format(u=f"${line.inner}$"),
            fact=catalog["facts"].get(line.rule, ""),
            latex=line.equation,
        )
        for line in partial_lines(partial, derivation, LATEX)
    )
    bare = (partial.textbook.is_Atom or partial.textbook.is_Mul) and not (
        partial.textbook.could_extract_minus_sign()
    )
    body = textbook if bare else rf"\left({textbook}\right)"
    return PartialView(
        symbol=symbol,
        operator=operator(symbol, len(params) == 1, LATEX, name),
        textbook=textbook,
        lines=lines,
        update_rule=rf"{symbol} := {symbol} - \eta \cdot {body}",
    )


def _step_table(trace: Trace, symbols: list[str], lr: str, words: dict):
    """Rows of t, current params, loss, gradient, the update arithmetic, new params."""
    d = "d" if len(symbols) == 1 else r"\partial "
    header = [words["iteration"]]
    header += [words["current"].format(p=f"${s}$") for s in symbols]
    header += [words["loss"]]
    header += [words["gradient"].format(g=f"${d}L/{d}{s}$") for s in symbols]
    header += [words["update"].format(p=f"${s}$") for s in symbols]
    updates = trace.steps if trace.status != "diverged" else trace.steps - 1
    indices: list[int | None] = list(range(max(updates, 0)))
    if len(indices) > TABLE_HEAD + TABLE_TAIL + 1:
        indices = [*indices[:TABLE_HEAD], None, *indices[-TABLE_TAIL:]]
    rows = []
    for t in indices:
        if t is None:
            rows.append(tuple("…" for _ in header))
            continue
        p, g, new = trace.params[t], trace.grad[t], trace.params[t + 1]
        row = [str(t), *map(number_text, p), number_text(trace.loss[t]), *map(number_text, g)]
        row += [
            f"{number_text(a)} − {lr}×{_wrapped(gv)} = {number_text(b)}"
            for a, gv, b in zip(p, g, new, strict=True)
        ]
        rows.append(tuple(row))
    return tuple(header), tuple(rows)


def _wrapped(value: float) -> str:
    text = number_text(value)
    return f"({text})" if text.startswith("−") else text


def _rates_view(experiments: Experiments, catalog: dict) -> dict:
    curvature = experiments.curvature
    view: dict = {"kind": "none", "rows": ()}
    if curvature is not None:
        view = {
            "kind": "exact" if curvature.exact else "local",
            "largest": _tex(curvature.largest),
            "oscillate": _tex(1 / curvature.largest),
            "diverge": _tex(2 / curvature.largest),
        }
    view["rows"] = tuple(
        Row(
            (
                number_text(run.trace.optimizer.options["lr"]),
                catalog["roles"][run.label],
                catalog["behaviour"][run.behaviour],
                number_text(run.trace.loss[-1]),
            )
        )
        for run in experiments.rates
    )
    return view


def _optimizer_row(run: Run, catalog: dict) -> Row:
    options = run.trace.optimizer.options
    shown = {k: v for k, v in options.items() if k in ("lr", "momentum", "betas", "eps")}
    if run.label in ("momentum", "nesterov"):
        shown = {"lr": options["lr"], "momentum": options["momentum"]}
    elif run.label == "sgd":
        shown = {"lr": options["lr"]}
    settings = ", ".join(f"{k}={v!r}" for k, v in shown.items())  # as written in torch code
    return Row(
        (
            run.label,
            catalog["optimizers"][run.label],
            settings,
            catalog["behaviour"][run.behaviour],
            number_text(run.trace.loss[-1]),
        )
    )


def _batch_row(run: Run, rows: int, catalog: dict) -> Row:
    size = run.trace.batch_size or rows
    per_epoch = -(-rows // size)
    return Row(
        (
            catalog["batches"][run.label],
            str(size),
            str(per_epoch),
            str(run.trace.steps // per_epoch),
            str(run.trace.steps),
            number_text(run.trace.loss[-1]),
        )
    )


def _point_row(point, symbols, catalog, points) -> Row:
    values = point.exact or point.values
    shown = [to_latex(v) if point.exact else _tex(v) for v in values]
    where = ", ".join(f"{s} = {v}" for s, v in zip(symbols, shown, strict=True))
    return Row((f"${where}$", _kind_word(point, points, catalog), f"${_tex(point.loss)}$"))


def _kind_word(point, points, catalog) -> str:
    """Minimum, or, when there are several, the global one and the local ones."""
    minima = [p for p in points if p.kind == "minimum"]
    if point.kind != "minimum" or len(minima) < 2:
        return catalog["diff"][point.kind]
    lowest = min(p.loss for p in minima)
    return catalog["diff"]["global_minimum" if point.loss == lowest else "local_minimum"]


def _start_row(run, symbols, catalog, points) -> Row:
    start = ", ".join(f"{s} = {_tex(v)}" for s, v in zip(symbols, run.start, strict=True))
    end = run.trace.params[-1]
    finite = np.all(np.isfinite(end)) and np.all(np.abs(end) < 1e6)
    reached = (
        _kind_word(run.reached, points, catalog)
        if run.reached is not None
        else catalog["landscape"]["away"]
    )
    end_text = _assignments(symbols, end) if finite else catalog["landscape"]["infinity"]
    return Row((f"${start}$", f"${end_text}$" if finite else end_text, reached))


def _fit_view(experiments: Experiments, trace: Trace) -> dict:
    model = experiments.model
    if model is None:
        return {}
    params = dict(
        zip([sympy.Symbol(n, real=True) for n in trace.param_names], trace.params[-1], strict=True)
    )
    fitted = model.output.xreplace({s: sympy.Float(v, 6) for s, v in params.items()})
    return {"kind": model.kind, "model": to_latex(fitted), "target": model.target}


def _exercises(
    derivation: Derivation, trace: Trace, experiments: Experiments, catalog: dict
) -> dict:
    """Three exercises whose answers come from the runs: the next step, the same start with
    another learning rate, and the gradient of a variant of the loss."""
    symbols = [to_latex(s) for s in derivation.loss.symbols]
    lr = float(trace.optimizer.options["lr"])
    last = trace.params[-1]
    slope = trace.grad[-1]
    following = last - lr * slope
    small = next((r for r in experiments.rates if r.label == "small"), None)
    variant = experiments.variant
    return {
        "at": _assignments(symbols, last),
        "gradient": _vector(symbols, [_tex(v) for v in slope], at=last),
        "next": [
            f"{s} = {_tex(a)} - {number(lr)} \\times {_paren(g)} = {_tex(b)}"
            for s, a, g, b in zip(symbols, last, slope, following, strict=True)
        ],
        "next_step": trace.steps + 1,
        "other_rate": number(small.trace.optimizer.options["lr"]) if small else None,
        "other_steps": [
            _assignments(symbols, small.trace.params[t])
            for t in (1, 2)
            if t < len(small.trace.params)
        ]
        if small
        else [],
        "variant_loss": f"L'({', '.join(symbols)}) = "
        + to_latex(derivation.loss.expr, derivation.loss.params)
        + rf" + \frac{{1}}{{10}} {symbols[0]}^{{2}}",
        "variant": [_partial_view(p, variant, catalog, "L'") for p in variant.partials],
    }


def _paren(value: float) -> str:
    text = _tex(value)
    return f"({text})" if text.startswith("-") else text


# -- figures ---------------------------------------------------------------------------------


def lesson_figures(
    derivation: Derivation,
    trace: Trace,
    experiments: Experiments,
    language: str,
    data: Mapping[str, np.ndarray],
    sections: tuple[str, ...],
) -> dict:
    """The figures of this lesson, by name (not yet written)."""
    words = messages(language)["figures"]
    names = tuple(f"${to_latex(s)}$" for s in derivation.loss.symbols)  # matplotlib mathtext
    loss = loss_function(derivation, data)
    path = trace.params
    out = {}
    with figures.styled(language):
        if len(names) <= 2 and "loss" in sections:
            out["graph"] = figures.graph(loss, path, names, words)
        if "descent" in sections:
            if len(names) <= 2:
                out["descent"] = figures.descent(loss, path, names, words)
            out["loss"] = figures.loss_curve(trace.loss, words)
            out["params"] = figures.parameters(trace.params, names, words)
            if experiments.model is not None:
                out["fit"] = figures.fit(
                    experiments.model, data, _predictor(experiments.model, trace), words
                )
        if "rates" in sections and experiments.rates:
            out["rates"] = figures.rate_panels(loss, experiments.rates, names, words)
        if "batch" in sections and experiments.batches:
            labels = [messages(language)["batches"][r.label] for r in experiments.batches]
            rows = len(next(iter(data.values())))
            out["batch"] = figures.batches(experiments.batches, labels, rows, words)
        if "optimizers" in sections and experiments.optimizers:
            labels = [messages(language)["optimizers"][r.label] for r in experiments.optimizers]
            out["optimizers"] = figures.compare(loss, experiments.optimizers, names, labels, words)
        if "landscape" in sections and experiments.starts:
            labels = [
                ", ".join(f"{n} = {v:g}" for n, v in zip(names, s.start, strict=True))
                for s in experiments.starts
            ]
            out["starts"] = figures.starts(loss, experiments.starts, names, labels, words)
    return out


def loss_function(
    derivation: Derivation, data: Mapping[str, np.ndarray]
) -> Callable[..., np.ndarray]:
    """L at arrays of parameter values (a curve, a grid), on the full data set."""
    function = numeric(derivation)
    columns = [np.asarray(data[name], dtype=float) for name in derivation.loss.data]
    rows = [len(columns[0])] if columns else []

    def loss(*params):
        if columns:  # a trailing axis to broadcast against the rows
            params = [np.asarray(p, dtype=float)[..., None] for p in params]
        with np.errstate(all="ignore"):
            return np.asarray(function(*params, *columns, *rows)[0], dtype=float)

    return loss


def _predictor(model, trace: Trace) -> Callable[..., np.ndarray]:
    symbols = [sympy.Symbol(n, real=True) for n in trace.param_names]
    inputs = [sympy.Symbol(n, real=True) for n in model.inputs]
    output = model.output if model.kind == "regression" else 1 / (1 + sympy.exp(-model.output))
    fitted = output.xreplace(dict(zip(symbols, map(float, trace.params[-1]), strict=True)))
    function = sympy.lambdify(inputs, fitted, modules="numpy")

    def predict(*values):
        with np.errstate(all="ignore"):
            return np.broadcast_to(function(*values), np.shape(values[0]))

    return predict


# -- rendering -------------------------------------------------------------------------------


def render_markdown(view: LessonView) -> str:
    return environment.get_template(f"{view.language}/lesson.md.j2").render(lesson=view)


def applicable_sections(
    experiments: Experiments, over_data: bool, chosen: tuple[str, ...] | None, claims: bool = False
) -> tuple[str, ...]:
    """The sections that apply to this loss, in order, narrowed to `chosen` when given."""
    applies = {
        "batch": over_data and bool(experiments.batches),
        "landscape": bool(experiments.starts),
        "claims": claims,
    }
    wanted = chosen or SECTIONS
    return tuple(s for s in SECTIONS if s in wanted and applies.get(s, True))
