"""Shared helpers: run the CLI in-process and as a real subprocess; courses built once for
every test that reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from derive.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "seeds"

# The lessons the seeds course lacks: |u|, a saddle, Rosenbrock's valley, and a backpropagation
# lesson (every notebook made). One language each: the seeds course has every page in both, and
# what these add (bars in tables, two parameters, a long run, the graph's tables and code) is the
# same in either; the saddle and the backpropagation lesson are the Chinese ones.
EXTRA_COURSE = """title = "Three more"
languages = ["zh", "en"]

[[lessons]]
title = "|w − 3| + w²/2"
slug = "abs"
loss = "abs(w-3) + 0.5*w**2"
languages = ["en"]
formats = ["ipynb"]

[[lessons]]
title = "A saddle"
slug = "saddle"
loss = "x**2 - y**2"
init = { x = 1, y = 0.5 }
languages = ["zh"]
formats = ["ipynb"]

[[lessons]]
title = "Logistic regression, node by node"
slug = "backprop"
kind = "backprop"
loss = "mean(-(y*log(sigmoid(w*x + b)) + (1-y)*log(1 - sigmoid(w*x + b))))"
data = { x = [-2, -1, 1, 3], y = [0, 0, 1, 1] }
at = { w = 0.5, b = -0.25 }
rows = [1, 2]
languages = ["zh"]
formats = ["ipynb"]

[[lessons]]
title = "Rosenbrock"
slug = "rosenbrock"
loss = "(1-x)**2 + 100*(y-x**2)**2"
init = { x = -1.5, y = 2 }
lr = 0.0005
steps = 200
languages = ["en"]
formats = ["ipynb"]
"""


@pytest.fixture(scope="session")
def seeds_course(tmp_path_factory) -> Path:
    """examples/seeds/course.toml built once: read it, never write into it."""
    out = tmp_path_factory.mktemp("course") / "seeds"
    assert main(["course", str(SEEDS / "course.toml"), "--out", str(out), "--jobs", "2"]) == 0
    return out


@pytest.fixture(scope="session")
def extra_course(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("extra")
    (folder / "course.toml").write_text(EXTRA_COURSE, encoding="utf-8")
    out = folder / "out"
    assert main(["course", str(folder / "course.toml"), "--out", str(out), "--jobs", "2"]) == 0
    return out


# The layers of the suite: `invoke test` runs every test; `invoke test --fast` (pytest -m "not
# slow") runs the unit layer, leaving out these modules: a browser, lessons and courses built
# whole, corpora of losses and of hostile input, bounded-resource processes, large data, torch.
# A slow test in a fast module carries @pytest.mark.slow itself.
SLOW_MODULES = frozenset(
    {
        "test_against_torch",
        "test_api",
        "test_books",
        "test_course_spec",
        "test_notebooks",
        "test_pages",
        "test_backprop",
        "test_backprop_torch",
        "test_issue_12",
        "test_backprop_browser",
        "test_bombs",
        "test_browser",
        "test_course",
        "test_course_kinds",
        "test_grading_browser",
        "test_grading_class",
        "test_grading_losses",
        "test_grading_processes",
        "test_grading_properties",
        "test_hostile",
        "test_interactive",
        "test_large_data",
        "test_lesson",
        "test_lesson_numbers",
        "test_losses",
        "test_output",
        "test_properties",
        "test_truth",
    }
)


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def derive_cli(capsys):
    """Call `derive ARGS...` in this process; returns exit code, stdout, stderr."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def run_process(*args: str, timeout: float = 60) -> Run:
    """`python -m derive ARGS...` as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "derive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return Run(done.returncode, done.stdout, done.stderr)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's; Playwright's own fails here


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per module, for the browser tests (they skip without playwright)."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@dataclass(frozen=True)
class Visit:
    """What a page did while it loaded: script errors, requests that left the machine (cut
    off), and dialogs it opened (dismissed)."""

    page: object
    errors: list
    outside: list
    dialogs: list


def open_offline(browser, path: Path, width: int, height: int) -> Visit:
    """The page at `path`, loaded with every request but file: and data: refused, as a reader
    without a network opens it."""
    page = browser.new_page(viewport={"width": width, "height": height})
    visit = Visit(page, [], [], [])
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    page.on("dialog", lambda d: (visit.dialogs.append(d.message), d.dismiss()))

    def offline(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            visit.outside.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto(path.as_uri(), wait_until="load")
    return visit
