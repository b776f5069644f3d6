"""Every notebook a course makes runs in a real kernel (nbclient, ipykernel): it holds the lesson's
derivation and update rule, recomputes the step table (checked against gradient descent on
finite differences written here), draws its figures, and its exercise checks an answer. A
scheduled lesson's notebook descends at the schedule's rates; another optimizer's shows its rule
and says that its code, plain descent, is a comparison."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from derive.show.notebook import code_of
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


def code_lines(book) -> list[str]:
    """What the notebook runs: its code cells' lines, comments and blank lines aside."""
    lines = (
        line.split("  #")[0].rstrip()
        for c in book.cells
        if c.cell_type == "code"
        for line in c.source.splitlines()
    )
    return [line for line in lines if line and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def notebooks(seeds_course, extra_course) -> list[Path]:
    """Every gradient-descent notebook of both courses: the seeds' three lessons in zh and en,
    three more in one. (The backpropagation notebook's PyTorch code: test_backprop_torch.py.)"""
    paths = sorted([*seeds_course.glob("*/*.ipynb"), *extra_course.glob("*/*.ipynb")])
    paths = [p for p in paths if p.parent.name != "backprop"]
    assert {p.parent.name for p in paths} == set(LOSSES) and len(paths) == 9
    return paths


@pytest.fixture(scope="module")
def executed(notebooks):
    """One notebook per lesson, run two at a time, each in its own kernel: where a lesson has
    both languages, its notebooks run the same code (test_a_lesson_s_notebooks_run_the_same_code),
    so the English one runs for both."""
    paths = [p for p in notebooks if p.name.endswith(".en.ipynb") or _alone(p)]
    assert len(paths) == len(LOSSES)
    books = {path: nbformat.read(str(path), as_version=4) for path in paths}
    asyncio.run(_run_all(list(books.values())))
    return books


def _alone(path: Path) -> bool:
    """The lesson's only notebook."""
    return len(list(path.parent.glob("*.ipynb"))) == 1


async def _run_all(books, at_once: int = 2) -> None:
    gate = asyncio.Semaphore(at_once)

    async def run(book):
        async with gate:
            client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3")
            await client.async_execute()

    await asyncio.gather(*(run(book) for book in books))


def printed(book) -> str:
    """What the run printed, cell after cell."""
    return "".join(cell_printed(cell) for cell in book.cells)


def cell_printed(cell) -> str:
    if cell.cell_type != "code":
        return ""
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


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


def test_a_lesson_s_notebooks_run_the_same_code(notebooks):
    by_lesson: dict[str, list] = {}
    for path in notebooks:
        by_lesson.setdefault(path.parent.name, []).append(nbformat.read(str(path), as_version=4))
    pairs = [books for books in by_lesson.values() if len(books) == 2]
    assert len(pairs) == 3
    for zh, en in pairs:
        assert code_lines(zh) == code_lines(en) and len(code_lines(en)) > 40


def test_the_exercise_checks_the_first_step(seeds_course):
    path = seeds_course / "seed-000-parabola" / "seed-000-parabola-notebook.en.ipynb"
    answers = {"[0.6]": "True", "[0.5]": "False"}  # w₁ = 0 − 0.1 · 2(0 − 3) = 0.6
    book = nbformat.read(str(path), as_version=4)
    at = next(k for k, c in enumerate(book.cells) if c.source.startswith("my_next = None"))
    exercise = book.cells.pop(at)
    for k, answer in enumerate(answers):  # the cell twice, each answer in turn: one kernel
        cell = nbformat.v4.new_code_cell(exercise.source.replace("None", answer, 1), id=f"a{k}")
        book.cells.insert(at + k, cell)
    asyncio.run(_run_all([book]))
    verdicts = [cell_printed(book.cells[at + k]).strip() for k in range(len(answers))]
    assert verdicts == list(answers.values())


def test_notebooks_are_named_apart_from_the_lesson_s_pages(seeds_course):
    for path in Path(seeds_course).glob("*/*.ipynb"):
        slug, language = path.parent.name, path.name.split(".")[-2]
        assert path.name == f"{slug}-notebook.{language}.ipynb"
        assert (path.parent / f"{slug}.{language}.md").is_file()


def run_code(book) -> dict:
    """The notebook's code run in this process, figures drawn off screen."""
    matplotlib.use("Agg")
    namespace: dict = {}
    exec(compile(code_of(book), "notebook", "exec"), namespace)  # derive's generated code
    return namespace


def test_a_scheduled_lesson_s_notebook_descends_at_the_schedule_s_rates(tmp_path, derive_cli):
    out = tmp_path / "step"
    schedule = ["--lr", "0.4", "--steps", "6", "--schedule", "step:step_size=2,gamma=0.5"]
    args = ["--format", "ipynb", "--lang", "en", "--sections", "table", "--out", str(out)]
    assert derive_cli("lesson", "--loss", "(w-3)**2", *schedule, *args).code == 0
    w, expected = 0.0, [0.0]
    for t in range(6):  # StepLR: 0.4 halved every two steps
        w -= 0.4 * 0.5 ** (t // 2) * 2 * (w - 3)
        expected.append(w)
    namespace = run_code(nbformat.read(str(out / "lesson-notebook.en.ipynb"), as_version=4))
    assert namespace["history"][:, 0] == pytest.approx(expected, rel=1e-12)


def test_another_optimizer_s_notebook_shows_its_rule_and_compares_plain_descent(
    tmp_path, derive_cli
):
    out = tmp_path / "adam"
    args = ["--format", "ipynb", "--lang", "en", "--sections", "table", "--out", str(out)]
    run = ["--optimizer", "adam", "--lr", "0.1", "--steps", "5"]
    assert derive_cli("lesson", "--loss", "(w-3)**2", *run, *args).code == 0
    book = nbformat.read(str(out / "lesson-notebook.en.ipynb"), as_version=4)
    markdown = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    assert "torch.optim.Adam" in markdown and r"\widehat{m_t}" in markdown
    assert "plain gradient descent at the same learning rate, $\\eta = 0.1$" in markdown
    w, expected = 0.0, [0.0]
    for _ in range(5):  # what the code runs: plain descent, said to differ from the table
        w -= 0.1 * 2 * (w - 3)
        expected.append(w)
    assert run_code(book)["history"][:, 0] == pytest.approx(expected, rel=1e-12)
