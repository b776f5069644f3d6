"""Shared helpers: run the CLI in-process and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from derive.app.cli import main

ROOT = Path(__file__).resolve().parent.parent

# The layers of the suite: `invoke test` runs every test; `invoke test --fast` (pytest -m "not
# slow") runs the unit layer, leaving out these modules: a browser, lessons and courses built
# whole, corpora of losses and of hostile input, bounded-resource processes, large data, torch.
# A slow test in a fast module carries @pytest.mark.slow itself.
SLOW_MODULES = frozenset(
    {
        "test_against_torch",
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
