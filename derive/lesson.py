"""Stage 4: Derivation + Trace → lesson files (Markdown and standalone HTML, zh and en).

Every number a lesson prints is computed here, from the run, and arrives in the templates
already formatted; the templates hold the words and the layout.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from derive import figures
from derive.catalog import LANGUAGES, environment, messages
from derive.derivation import Derivation
from derive.descend import Trace
from derive.explain import LATEX, operator, partial_lines
from derive.numeric import numeric
from derive.printing import number, number_text, to_latex, unicode_name

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
class LessonView:
    """What a template sees: words aside, everything is here, formatted."""

    language: str
    title: str
    loss_latex: str
    params: tuple[str, ...]  # LaTeX of each parameter
    partials: tuple[PartialView, ...]
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
    figures: Mapping[str, str]  # figure key → relative path


# -- the view --------------------------------------------------------------------------------


def lesson_view(
    derivation: Derivation, trace: Trace, language: str, figure_paths: Mapping[str, str]
) -> LessonView:
    loss = derivation.loss
    catalog = messages(language)
    names = loss.params
    symbols = [to_latex(s) for s in loss.symbols]
    arguments = ", ".join(symbols)
    partials = tuple(_partial_view(p, derivation, catalog) for p in derivation.partials)
    learning_rate = number(trace.optimizer.options["lr"])
    header, rows = _step_table(trace, symbols, learning_rate, catalog["table"])
    final = trace.params[-1]
    return LessonView(
        language=language,
        title=loss.text,
        loss_latex=f"L({arguments}) = {to_latex(loss.expr, names)}",
        params=tuple(symbols),
        partials=partials,
        learning_rate=learning_rate,
        steps=trace.steps,
        start=_assignments(symbols, trace.params[0]),
        table_header=header,
        table_rows=rows,
        final_params=_assignments(symbols, final),
        final_loss=number(trace.loss[-1]),
        start_loss=number(trace.loss[0]),
        status=trace.status,
        diverged_at=trace.steps if trace.status == "diverged" else None,
        figures=dict(figure_paths),
    )


def _assignments(symbols: list[str], values: np.ndarray) -> str:
    return ", ".join(f"{s} = {_tex_number(v)}" for s, v in zip(symbols, values, strict=True))


def _tex_number(value: float) -> str:
    return number(float(value)).replace("×10^", r"\times 10^").replace("−", "-")


def _partial_view(partial, derivation: Derivation, catalog: dict) -> PartialView:
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
    grouped = partial.textbook.is_Atom or partial.textbook.is_Mul
    body = textbook if grouped else rf"\left({textbook}\right)"
    return PartialView(
        symbol=symbol,
        operator=operator(symbol, len(params) == 1, LATEX),
        textbook=textbook,
        lines=lines,
        update_rule=rf"{symbol} := {symbol} - \eta \cdot {body}",
    )


def _step_table(trace: Trace, symbols: list[str], lr: str, words: dict):
    """Rows of t, current params, loss, gradient, the update arithmetic, new params."""
    header = [words["iteration"]]
    header += [words["current"].format(p=f"${s}$") for s in symbols]
    header += [words["loss"]]
    d = "d" if len(symbols) == 1 else r"\partial "
    header += [words["gradient"].format(g=f"${d}L/{d}{s}$") for s in symbols]
    header += [words["update"].format(p=f"${s}$") for s in symbols]
    rows = []
    updates = trace.steps if trace.status != "diverged" else trace.steps - 1
    indices = list(range(max(updates, 0)))
    if len(indices) > TABLE_HEAD + TABLE_TAIL + 1:
        indices = [*indices[:TABLE_HEAD], None, *indices[-TABLE_TAIL:]]
    for t in indices:
        if t is None:
            rows.append(tuple("…" for _ in header))
            continue
        p, g, new = trace.params[t], trace.grad[t], trace.params[t + 1]
        row = [str(t)]
        row += [number_text(v) for v in p]
        row += [number_text(trace.loss[t])]
        row += [number_text(v) for v in g]
        row += [
            f"{number_text(a)} − {lr}×{_wrapped(gv)} = {number_text(b)}"
            for a, gv, b in zip(p, g, new, strict=True)
        ]
        rows.append(tuple(row))
    return tuple(header), tuple(rows)


def _wrapped(value: float) -> str:
    text = number_text(value)
    return f"({text})" if text.startswith("−") else text


# -- figures ---------------------------------------------------------------------------------


def lesson_figures(
    derivation: Derivation, trace: Trace, language: str, data: Mapping[str, np.ndarray]
) -> dict:
    """The figures of this lesson, by name (not yet written)."""
    catalog = messages(language)["figures"]
    labels = figures.Labels(**catalog)
    names = tuple(unicode_name(n) for n in derivation.loss.params)
    evaluate = _loss_function(derivation, data)
    path = trace.params[np.all(np.isfinite(trace.params), axis=1)]
    out = {}
    with figures.styled(language):
        if len(names) == 1:
            out["graph"] = figures.curve_with_steps(evaluate, path, names[0], labels, steps=False)
            out["descent"] = figures.curve_with_steps(evaluate, path, names[0], labels)
        elif len(names) == 2:
            out["descent"] = figures.contour_with_steps(evaluate, path, names, labels)
        out["loss"] = figures.loss_curve(trace.loss, labels)
    return out


def _loss_function(
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


# -- rendering -------------------------------------------------------------------------------


def render_markdown(view: LessonView) -> str:
    return environment.get_template(f"{view.language}/lesson.md.j2").render(lesson=view)


def markdown_to_html(markdown: str, language: str, title: str, folder: Path) -> str:
    """A standalone page: MathML for the math, figures embedded, no network needed."""
    parser = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, double_inline=True)
    parser.add_render_rule(
        "math_inline", lambda self, tokens, idx, options, env: _mathml(tokens[idx].content, False)
    )
    parser.add_render_rule(
        "math_block", lambda self, tokens, idx, options, env: _mathml(tokens[idx].content, True)
    )
    parser.add_render_rule(
        "math_inline_double",
        lambda self, tokens, idx, options, env: _mathml(tokens[idx].content, True),
    )
    body = parser.render(markdown)
    body = re.sub(r'src="([^"]+\.png)"', lambda m: f'src="{_data_uri(folder / m.group(1))}"', body)
    page = environment.get_template("lesson.html.j2")
    words = messages(language)["html"]
    return page.render(language=language, title=title, body=body, words=words)


def _mathml(latex: str, display: bool) -> str:
    return latex_to_mathml(latex.strip(), display="block" if display else "inline") + (
        "\n" if display else ""
    )


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def slug(text: str) -> str:
    """A folder name for a loss: readable, and distinct for distinct losses."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "loss"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def build_lesson(
    derivation: Derivation,
    trace: Trace,
    out: Path,
    languages: tuple[str, ...] = LANGUAGES,
    figure_formats: tuple[str, ...] = ("png",),
    data: Mapping[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write the lesson into `out` atomically: all files appear at once, or none change."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for language in languages:
            relative = Path("figures") / language
            made = lesson_figures(derivation, trace, language, data or {})
            figures.render(made, staging / relative, figure_formats, language)
            paths = {name: (relative / f"{name}.png").as_posix() for name in made}
            view = lesson_view(derivation, trace, language, paths)
            markdown = render_markdown(view)
            (staging / f"lesson.{language}.md").write_text(markdown, encoding="utf-8")
            html = markdown_to_html(markdown, language, view.title, staging)
            (staging / f"lesson.{language}.html").write_text(html, encoding="utf-8")
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p.relative_to(out.parent) for p in out.rglob("*") if p.is_file())


def _replace(staging: Path, out: Path) -> None:
    """Swap the finished folder in; the old lesson stays intact until the new one is whole."""
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        out.rename(retired / out.name)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)
