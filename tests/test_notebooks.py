"""Every notebook a course makes runs in a real kernel (nbclient, ipykernel): it holds the lesson's
derivation and update rule, recomputes the step table (checked against gradient descent on
finite differences written here), draws its figures, and its exercise checks an answer."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tests.conftest import SEEDS

nbclient = pytest.importorskip("nbclient", reason="nbclient comes with the dev extra")
pytest.importorskip("ipykernel", reason="ipykernel comes with the dev extra")

LINE = np.loadtxt(SEEDS / "line.csv", delimiter=",", skiprows=1)

# slug: (loss of the parameters, start, learning rate, steps), written here from the specs
LOSSES = {
    "seed-000-parabola": (lambda w: (w - 3) ** 2, [0.0], 0.1, 20),
    "seed-001-regression": (
        lambda t0, t1: np.mean((t0 + t1 * np.array([1, 2, 3]) - np.array([2, 3, 4])) ** 2),
        [0.0, 0.0],
        0.1,
        100,
    ),
    "seed-004-line": (
        lambda w, b: np.mean((w * LINE[:, 0] + b - LINE[:, 1]) ** 2),
        [0.0, 0.0],
        0.01,
        200,
    ),
    "abs": (lambda w: abs(w - 3) + 0.5 * w**2, [0.0], 0.1, 20),
    "saddle": (lambda x, y: x**2 - y**2, [1.0, 0.5], 0.1, 20),
    "rosenbrock": (lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2, [-1.5, 2.0], 0.0005, 200),
}


def descent_by_finite_differences(loss, start, lr, steps) -> list[list[float]]:
    """Rows (t, params..., L, gradient...) with central differences for the gradient."""

    def gradient(p):
        g = []
        for k in range(len(p)):
            h = 1e-6 * max(1.0, abs(p[k]))
            up, down = list(p), list(p)
            up[k] += h
            down[k] -= h
            g.append((loss(*up) - loss(*down)) / (2 * h))
        return g

    rows, p = [], list(start)
    for t in range(steps + 1):
        g = gradient(p)
        rows.append([t, *p, loss(*p), *g])
        p = [v - lr * d for v, d in zip(p, g, strict=True)]
    return rows


@pytest.fixture(scope="module")
def executed(seeds_course, extra_course):
    """Every notebook of both courses, run two at a time, each in its own kernel."""
    paths = sorted([*seeds_course.glob("*/*.ipynb"), *extra_course.glob("*/*.ipynb")])
    assert {p.parent.name for p in paths} == set(LOSSES) and len(paths) == 12
    books = {path: nbformat.read(str(path), as_version=4) for path in paths}
    asyncio.run(_run_all(list(books.values())))
    return books


async def _run_all(books, at_once: int = 2) -> None:
    gate = asyncio.Semaphore(at_once)

    async def run(book):
        async with gate:
            client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3")
            await client.async_execute()

    await asyncio.gather(*(run(book) for book in books))


def printed(book) -> str:
    return "".join(
        output.get("text", "")
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


def test_every_notebook_runs_and_recomputes_the_table(executed):
    for path, book in executed.items():
        loss, start, lr, steps = LOSSES[path.parent.name]
        expected = descent_by_finite_differences(loss, start, lr, steps)
        lines = printed(book).splitlines()
        header = lines.index(next(line for line in lines if line.startswith("t\t")))
        rows = [line.split("\t") for line in lines[header + 1 :] if "\t" in line]
        shown = [int(row[0]) for row in rows]
        assert shown == [*range(min(10, steps + 1)), *([steps] if steps >= 10 else [])], path
        for row in rows:
            truth = expected[int(row[0])]
            assert [float(v) for v in row[1:]] == pytest.approx(truth[1:], rel=2e-5, abs=1e-9)


def test_every_notebook_draws_its_figures(executed):
    for path, book in executed.items():
        images = [
            output
            for cell in book.cells
            if cell.cell_type == "code"
            for output in cell.outputs
            if "image/png" in output.get("data", {})
        ]
        assert len(images) >= 2, path


def test_every_notebook_holds_the_lesson_s_derivation_and_update_rule(executed):
    for path, book in executed.items():
        slug, language = path.parent.name, path.name.split(".")[-2]
        lesson = (path.parent / f"{slug}.{language}.md").read_text(encoding="utf-8")
        steps = re.findall(r"<!-- derive:details -->(.*?)<!-- derive:end -->", lesson, re.DOTALL)
        formulas = [f for block in steps for f in re.findall(r"\$\$\n(.*?)\n\$\$", block)]
        update = next(part for part in lesson.split("\n## ") if "\\leftarrow" in part)
        rules = re.findall(r"\$\$\n(.*\\leftarrow.*)\n\$\$", update)
        markdown = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
        assert formulas and rules
        missing = [f for f in [*formulas, *rules] if f"$$\n{f}\n$$" not in markdown]
        assert missing == [], path


def test_the_exercise_checks_the_first_step(seeds_course):
    path = seeds_course / "seed-000-parabola" / "seed-000-parabola-notebook.en.ipynb"
    answers = {"[0.6]": "True", "[0.5]": "False"}  # w₁ = 0 − 0.1 · 2(0 − 3) = 0.6
    books = []
    for answer in answers:
        book = nbformat.read(str(path), as_version=4)
        cell = next(c for c in book.cells if c.source.startswith("my_next = None"))
        cell.source = cell.source.replace("my_next = None", f"my_next = {answer}", 1)
        books.append(book)
    asyncio.run(_run_all(books))
    for book, verdict in zip(books, answers.values(), strict=True):
        assert printed(book).splitlines()[-1] == verdict


def test_notebooks_are_named_apart_from_the_lesson_s_pages(seeds_course):
    for path in Path(seeds_course).glob("*/*.ipynb"):
        slug, language = path.parent.name, path.name.split(".")[-2]
        assert path.name == f"{slug}-notebook.{language}.ipynb"
        assert (path.parent / f"{slug}.{language}.md").is_file()
