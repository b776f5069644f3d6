"""The invoke tasks (issue 14): each accepts every option of its derive command; invoke is a
developer's tool only; `invoke test --fast` runs the unit layer."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from invoke import Collection

import tasks
from derive.app.cli import build_parser
from tests.conftest import ROOT, SLOW_MODULES

TASKS = {"build-lesson": "lesson", "check-gradient": "check", "build-course": "course"}


def _parser_options(command: str) -> dict[str, bool]:
    """`derive COMMAND`'s options as written on its command line (positionals by name), each
    with whether it is a switch, read from the parser's own help-independent actions."""
    subparsers = next(a for a in build_parser()._actions if a.choices and a.dest == "command")
    parser = subparsers.choices[command]
    options = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        name = longs[0] if longs else f"--{action.dest}"
        options[name] = action.nargs == 0
    return options


@pytest.mark.parametrize(("name", "command"), TASKS.items())
def test_a_task_takes_every_option_of_its_command(name, command):
    arguments = Collection.from_module(tasks)[name].get_arguments()
    flags = {f"--{argument.name.replace('_', '-')}": argument.kind for argument in arguments}
    options = _parser_options(command)
    assert set(flags) == set(options)
    for flag, switch in options.items():
        assert (flags[flag] is bool) == switch, flag


@pytest.mark.slow
def test_build_lesson_passes_data_optimizer_and_a_signed_start_through(tmp_path):
    out = tmp_path / "adam"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "build-lesson",
            "--loss=mean((w*x + b - y)**2)",
            "--data=x=1,2,3; y=3,5,7",
            "--optimizer=adam",
            "--lr=0.05",
            "--betas=0.8,0.99",
            "--init=w=-1,b=0.5",
            "--steps=2",
            "--lang=en",
            "--sections=table",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lesson = (out / "lesson.en.md").read_text()
    x, y, w, b = (1, 2, 3), (3, 5, 7), -1.0, 0.5
    residuals = [w * xi + b - yi for xi, yi in zip(x, y, strict=True)]
    grad = (2 * sum(r * xi for r, xi in zip(residuals, x, strict=True)) / 3, 2 * sum(residuals) / 3)
    assert grad == (-30.0, -13.0)
    # Adam's first moment after one step is (1 − β₁)·g with --betas 0.8,...: (−6, −2.6); its
    # first step moves each parameter by lr = 0.05 against the gradient's sign
    # (and v = (1 − β₂)·g² = (9, 1.69)); the loss there is mean(r²) = 48.25
    row = "| 0 | −1 | 0.5 | 48.25 | −30 | −13 | −6, −2.6 | 9, 1.69 | −30, −13 | 900, 169 |"
    assert f"{row} −0.95 | 0.55 |" in lesson


def test_invoke_is_a_developer_tool_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]]
    dev = [d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["dev"]]
    assert "invoke" not in names
    assert "invoke" in dev


class _Recorder:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str, **_) -> None:
        self.commands.append(command)


@pytest.mark.parametrize(("fast", "marker"), [(True, " -m 'not slow'"), (False, "")])
def test_invoke_test_fast_selects_the_unit_layer(fast, marker):
    context = _Recorder()
    tasks.test.body(context, fast=fast)
    assert context.commands == [f"{sys.executable} -m pytest{marker}"]


def test_every_slow_module_exists():
    """A renamed module would silently join the fast layer."""
    assert {path.stem for path in (ROOT / "tests").glob("test_*.py")} >= SLOW_MODULES


@pytest.mark.slow
def test_the_fast_layer_leaves_the_slow_modules_out():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-m", tasks.FAST],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    collected = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert "tests/test_parse.py" in collected
    assert not {Path(name).stem for name in collected} & SLOW_MODULES
