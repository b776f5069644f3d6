"""How derive's records show themselves in Jupyter, and figures drawn on a reader's own axes.

The records are the math stages' (core); their display hooks are attached here, by `attach()`,
so that the records themselves stay free of words and pages. Figures are drawn on the axes
given, or on a new pyplot-free figure that is returned: the reader's matplotlib backend and
pyplot state are never touched.
"""

from __future__ import annotations

import numpy as np

from derive.core.backprop import Graph
from derive.core.check import Verdict
from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.facts import Behaviour
from derive.core.grid import loss_function
from derive.core.landscape import Landscape
from derive.show import figures
from derive.show.catalog import messages
from derive.show.explain import LATEX, operator, partial_lines
from derive.show.printing import number_text, to_latex, to_unicode, unicode_name

HEAD, TAIL = 8, 3
RULES = messages("en")["rules"]


def derivation_markdown(derivation: Derivation) -> str:
    loss = derivation.loss
    symbols = [to_latex(s) for s in loss.symbols]
    lines = [f"$$L({', '.join(symbols)}) = {to_latex(loss.expr, loss.params)}$$", ""]
    single = len(symbols) == 1
    for partial, symbol in zip(derivation.partials, symbols, strict=True):
        result = f"{operator(symbol, single, LATEX)} = {to_latex(partial.textbook, loss.params)}"
        lines += [f"**${result}$**", ""]
        for line in partial_lines(partial, derivation, LATEX):
            rule = RULES[line.rule].format(u=f"${line.inner}$")
            lines.append(f"{'    ' * line.depth}- {rule}: ${line.equation}$")
        lines.append("")
    return "\n".join(lines)


def trace_markdown(trace: Trace) -> str:
    names = [unicode_name(n) for n in trace.param_names]
    header = ["t", *names, "L", "‖∇L‖"]
    rows = list(range(len(trace.loss)))
    if len(rows) > HEAD + TAIL + 1:
        rows = [*rows[:HEAD], None, *rows[-TAIL:]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for t in rows:
        if t is None:
            lines.append("| " + " | ".join("…" for _ in header) + " |")
            continue
        cells = [
            str(t),
            *map(number_text, trace.params[t]),
            number_text(trace.loss[t]),
            number_text(float(np.linalg.norm(trace.grad[t]))),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    options = ", ".join(f"{k}={v!r}" for k, v in trace.optimizer.options.items())
    lines += ["", f"`{trace.optimizer.name}({options})`: {trace.status}, {trace.steps} steps"]
    return "\n".join(lines)


def behaviour_markdown(facts: Behaviour) -> str:
    rows = {
        "shape": facts.shape.value,
        "converged": "yes" if facts.converged else "no",
        "converged at step": facts.converged_at,
        "crossings of the minimiser": facts.crossings,
        "steps that raised the loss": facts.loss_increases,
        "final distance to the minimiser": facts.final_distance,
        "period": facts.period,
        "unbounded below": "yes" if facts.unbounded_below else None,
        "infimum not attained": "yes" if facts.infimum_not_attained else None,
    }
    lines = ["| fact | value |", "|:--|:--|"]
    lines += [f"| {k} | {v if not isinstance(v, float) else number_text(v)} |"
              for k, v in rows.items() if v is not None]  # fmt: skip
    return "\n".join(lines)


def verdict_markdown(verdict: Verdict) -> str:
    lines = [
        "**Right**" if verdict.correct else "**Wrong**",
        f"The derivative: {to_unicode(verdict.expected, verdict.params)}",
        f"The answer: {to_unicode(verdict.answer, verdict.params)}",
    ]
    if not verdict.correct:
        lines.append(f"Diagnosis: {verdict.diagnosis or 'no common mistake'}")
    return "\n\n".join(lines)


def landscape_markdown(shape: Landscape) -> str:
    lines = ["| point | kind | L |", "|:--|:--|--:|"]
    for point in shape.points:
        where = ", ".join(map(number_text, point.values))
        kind = "global minimum" if point.global_minimum else point.kind.value
        lines.append(f"| ({where}) | {kind} | {number_text(point.loss)} |")
    lines += ["", f"minimum: {shape.minimum.value}" + ("" if shape.complete else " (searched)")]
    return "\n".join(lines)


def graph_markdown(graph: Graph) -> str:
    from derive.show.backprop import backprop_text  # the graph's words; loaded when shown

    return "```\n" + backprop_text(graph, "en") + "\n```"


def attach() -> None:
    """Jupyter shows each record as Markdown (math typeset)."""
    for record, show in (
        (Derivation, derivation_markdown),
        (Trace, trace_markdown),
        (Behaviour, behaviour_markdown),
        (Verdict, verdict_markdown),
        (Landscape, landscape_markdown),
        (Graph, graph_markdown),
    ):
        record._repr_markdown_ = show


# -- figures on the reader's axes ---------------------------------------------------------------


def _axes(ax, figsize=(6.4, 3.6)):
    if ax is not None:
        return ax, None
    fig = figures._figure(figsize)
    return fig.add_subplot(1, 1, 1), fig


def plot_loss(trace: Trace, ax=None):
    ax, fig = _axes(ax)
    curve = [(np.arange(len(trace.loss)), trace.loss, figures.OKABE_ITO[0], None)]
    figures._loss_axes(ax, curve, "t", "L")
    return fig if fig is not None else ax


def plot_path(derivation: Derivation, trace: Trace, data, ax=None):
    names = [f"${to_latex(s)}$" for s in derivation.loss.symbols]
    if len(names) > 2:
        raise ValueError("a path is drawn for one or two parameters; use plot_loss")
    ax, fig = _axes(ax, (6.4, 4.4))
    loss = loss_function(derivation, data)
    figures._landscape(ax, loss, [trace.params], names)
    figures._path(ax, loss, trace.params, figures.OKABE_ITO[1], None, arrows=True)
    return fig if fig is not None else ax
