"""A lesson as a Jupyter notebook: the lesson's derivation and update rule as Markdown cells, then
code that recomputes the step table and draws the figures with plain NumPy and matplotlib, and
exercises whose cells run as written and check the student's answer once it is filled in."""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.experiments import is_plain
from derive.core.symbols import N_ROWS
from derive.show.catalog import messages, template
from derive.show.lesson import LessonView, tex_number
from derive.show.printing import to_latex

if TYPE_CHECKING:
    import nbformat


def python_name(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) else name


def numpy_code(expr: sympy.Expr, derivation: Derivation) -> str:
    """The expression as NumPy code over the data arrays: Σ becomes rowsum, xᵢ becomes x."""
    loss = derivation.loss
    renamed = {s: sympy.Symbol(python_name(s.name)) for s in loss.symbols}
    plain = expr.replace(sympy.Sum, lambda body, *limits: sympy.Function("rowsum")(body))
    plain = plain.replace(
        lambda e: isinstance(e, sympy.Indexed), lambda e: sympy.Symbol(str(e.base))
    )
    plain = plain.xreplace({**renamed, N_ROWS: sympy.Symbol("n")})
    printer = NumPyPrinter({"fully_qualified_modules": True, "allow_unknown_functions": True})
    return printer.doprint(plain).replace("numpy.", "np.")


def notebook(
    derivation: Derivation, trace: Trace, data: Mapping[str, np.ndarray], lesson: LessonView
) -> nbformat.NotebookNode:
    """The notebook: templates/notebook.py.j2 in the percent format, split into cells. The
    derivation and the update rule are the lesson's own (`lesson`), in its language."""
    loss = derivation.loss
    words = messages(lesson.language)["notebook"]
    lr = float(trace.optimizer.options["lr"])
    losses = trace.loss
    # the exercise's other rate: a larger one where the lesson's run went down, else a smaller
    went_down = bool(np.isfinite(losses[-1]) and losses[-1] <= losses[0])
    other_lr = 2 * lr if went_down else lr / 2
    start = [float(v) for v in trace.params[0]]
    start_tex = ", ".join(
        f"{to_latex(sympy.Symbol(name))} = {tex_number(value)}"
        for name, value in zip(loss.params, start, strict=True)
    )
    # the code recomputes the lesson's table when the lesson ran plain descent (its rate may be
    # scheduled: the rates are then written out); another optimizer's run is only compared
    plain = is_plain(trace)
    scheduled = plain and trace.schedule is not None
    source = template("notebook.py.j2").render(
        words=words,
        lesson=lesson,
        data={name: repr([float(v) for v in values]) for name, values in data.items()},
        arguments=", ".join(python_name(n) for n in loss.params),
        names=repr([python_name(n) for n in loss.params]),
        names_count=len(loss.params),
        loss_code=numpy_code(loss.expr, derivation),
        gradient_code=[numpy_code(g, derivation) for g in derivation.gradient],
        lr=repr(lr),
        other_lr=repr(other_lr),
        steps=trace.steps,
        rates=repr([float(v) for v in trace.lr[: trace.steps]]) if scheduled else None,
        other_optimizer="" if plain else words["other_optimizer"].format(lr=tex_number(lr)),
        start=repr(start),
        exercise_rate=words["exercise_rate"].format(lr=tex_number(lr), other=tex_number(other_lr)),
        exercise_step=words["exercise_step"].format(start=start_tex),
    )
    import nbformat  # 0.1 s of imports (jsonschema): only when a notebook is made

    book = nbformat.v4.new_notebook()
    book.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for index, (kind, text) in enumerate(_cells(source)):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        book.cells.append(make(text, id=f"cell-{index}"))  # fixed ids: byte-identical rebuilds
    return book


def _cells(source: str) -> list[tuple[str, str]]:
    """Percent format → cells: `# %%` starts code, `# %% [markdown]` markdown, whose lines
    lose their `# `."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            kind, lines = cells[-1]
            lines.append(re.sub(r"^# ?", "", line) if kind == "markdown" else line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def code_of(book: nbformat.NotebookNode) -> str:
    """All code cells, in order: what running the notebook runs."""
    return "\n\n".join(cell.source for cell in book.cells if cell.cell_type == "code")


def write_notebook(book: nbformat.NotebookNode, path: Path) -> None:
    import nbformat

    nbformat.write(book, str(path))
