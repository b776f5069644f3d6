"""The builds: a lesson or a class report computed, rendered and written into its folder
atomically (all files appear at once, or none change)."""

from __future__ import annotations

import functools
import gc
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from derive.app.output import MARKER, write_folder
from derive.app.parallel import in_parallel
from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.experiments import run_experiments
from derive.show import figures
from derive.show.backprop import graph_figure
from derive.show.book import notebook_name, portable
from derive.show.catalog import LANGUAGES, messages
from derive.show.html import markdown_to_html
from derive.show.interactive import check_panel, interactive_panel
from derive.show.lesson import (
    Claim,
    applicable_sections,
    figure_words,
    lesson_view,
    render_markdown,
)
from derive.show.notebook import notebook, write_notebook

if TYPE_CHECKING:
    from derive.show.report import ClassReport


def slug(text: str) -> str:
    """A folder name for a loss: readable, and distinct for distinct losses."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "loss"
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def _collecting_new_objects_only(build: Callable) -> Callable:
    """`build`, with the garbage collector looking only at the objects made while it runs.

    A lesson's full collections otherwise walk every object of SymPy, NumPy and matplotlib
    again to find none of them free: 0.3 of the 4 CPU-seconds of a one-language lesson. The
    objects made before come back under the collector when the build ends (a freeze made by
    the caller is left as it is).
    """

    @functools.wraps(build)
    def collecting(*args, **kwargs):
        if gc.get_freeze_count():
            return build(*args, **kwargs)
        gc.freeze()
        try:
            return build(*args, **kwargs)
        finally:
            gc.unfreeze()

    return collecting


@_collecting_new_objects_only
def build_lesson(
    derivation: Derivation,
    trace: Trace,
    out: Path,
    languages: tuple[str, ...] = LANGUAGES,
    figure_formats: tuple[str, ...] = ("png",),
    data: Mapping[str, np.ndarray] | None = None,
    start: Mapping[str, float] | None = None,
    sections: tuple[str, ...] | None = None,
    starts: tuple[tuple[float, ...], ...] | None = None,
    claims: tuple[Claim, ...] = (),
    parallel: bool = True,
    interactive: bool = False,
    name: str = "lesson",
    with_notebook: bool = False,
    position: int | None = None,
    force: bool = False,
) -> list[Path]:
    """Write the lesson into `out` atomically: all files appear at once, or none change.

    `starts` sets the landscape section's starting points; `claims` are a source's printed
    values, shown beside the true ones. `parallel` draws each language's figures in a forked
    process. `interactive` adds the HTML page's panel that re-runs the descent as the reader
    changes η, the momentum and the start. The pages are `<name>.<lang>.md|html`, the notebooks
    (`with_notebook`) `<name>-notebook.<lang>.ipynb`; `position` is the lesson's place in a
    course.
    """
    data = data or {}
    if interactive:
        check_panel(derivation, trace, data)
    start = start or dict(zip(trace.param_names, trace.params[0], strict=True))
    experiments = run_experiments(derivation, trace, start, data, starts)
    chosen = applicable_sections(experiments, bool(derivation.loss.data), sections, bool(claims))
    out = Path(out)

    def draw(staging: Path, language: str) -> tuple[str, ...]:
        """The language's figures, written; their names."""
        words = figure_words(language, experiments, trace)
        with figures.styled(language):
            made = figures.lesson_figures(derivation, trace, experiments, words, data, chosen)
            if "backprop" in chosen and experiments.graph is not None:
                drawing = messages(language)["backprop"]["figure"]
                made["backprop"] = graph_figure(experiments.graph, drawing)
        figures.render(made, staging / "figures" / language, figure_formats, language)
        return tuple(made)

    def write(staging: Path, language: str, drawn: tuple[str, ...]) -> None:
        relative = Path("figures") / language
        paths = {name: (relative / f"{name}.png").as_posix() for name in drawn}
        view = lesson_view(derivation, trace, experiments, language, paths, chosen, claims)
        markdown = portable(render_markdown(view), position)
        (staging / f"{name}.{language}.md").write_text(markdown, encoding="utf-8")
        files = {path: staging / path for path in paths.values()}
        panel = (
            interactive_panel(derivation, trace, experiments, data, language)
            if interactive
            else None
        )
        html = markdown_to_html(markdown, language, view.page_title, files, interactive=panel)
        (staging / f"{name}.{language}.html").write_text(html, encoding="utf-8")
        if with_notebook:
            book = notebook(derivation, trace, data, view)
            write_notebook(book, staging / notebook_name(name, language))

    def write_all(staging: Path) -> None:
        # Only the figures are drawn one process a language: the pages are written here after,
        # so the math font's subset (the same for every language), the templates and fontTools
        # are made once, not once a language.
        if parallel:
            drawn = in_parallel(lambda language: draw(staging, language), languages)
        else:
            drawn = {language: draw(staging, language) for language in languages}
        for language in languages:
            write(staging, language, drawn[language])

    write_folder(out, write_all, force)
    return sorted(
        p.relative_to(out.parent) for p in out.rglob("*") if p.is_file() and p.name != MARKER
    )


def write_report(
    report: ClassReport,
    derivation: Derivation,
    wrt: str,
    out: Path,
    languages: tuple[str, ...],
    force: bool = False,
) -> list[Path]:
    """grades.csv, gradebook.csv, report.<lang>.md/.html and feedback/<student>.<lang>.md,
    written atomically into `out`."""
    # the grader's words and numbers: a lesson does not import them
    from derive.show.report import (
        class_csv,
        class_markdown,
        feedback_files,
        feedback_names,
        gradebook_csv,
    )

    out = Path(out)
    names = feedback_names((s.line, s.student) for s in report.submissions if s.student)

    def write_all(staging: Path) -> None:
        (staging / "grades.csv").write_text(class_csv(report, names), encoding="utf-8")
        (staging / "gradebook.csv").write_text(gradebook_csv(report), encoding="utf-8")
        (staging / "feedback").mkdir()

        def write(language: str) -> None:
            markdown = class_markdown(report, derivation, wrt, language)
            (staging / f"report.{language}.md").write_text(markdown, encoding="utf-8")
            title = messages(language)["report"]["title"]
            html = markdown_to_html(markdown, language, title, contents=False)
            (staging / f"report.{language}.html").write_text(html, encoding="utf-8")
            folder = staging / "feedback"
            for name, text in feedback_files(report, derivation, wrt, language, names).items():
                _write_new(folder / name, text)

        in_parallel(write, languages)

    write_folder(out, write_all, force)
    return sorted(p for p in out.iterdir() if p.name != MARKER)


def _write_new(path: Path, text: str) -> None:
    """A new file in two system calls, never through an existing file or link: a class of 10⁵
    students has 2·10⁵ feedback files, and a Python file object per file was most of their cost."""
    data = memoryview(text.encode("utf-8"))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        while data:
            data = data[os.write(descriptor, data) :]
    finally:
        os.close(descriptor)
