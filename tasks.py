"""Project tasks: `invoke --list`.

The tasks that run a derive command (build-lesson, check-gradient, build-course) take their
options from the command's own parser, so each accepts every option of its command, with the
same names, meanings and checks: `invoke build-lesson --loss ... --data ... --optimizer adam`.
"""

from __future__ import annotations

import argparse
import inspect
import sys

from invoke import Exit, task

from derive.app.cli import build_parser

FAST = "not slow"  # the unit layer: tests/conftest.py marks the slow modules


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one derive command, e.g. `derive lesson`'s."""
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    return commands.choices[command]


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.dest != "help"]


def _derive_task(command: str, name: str, doc: str, defaults: dict[str, str] | None = None):
    """An invoke task named `name` that runs `derive COMMAND`, with one task option for every
    option and argument of the command (flags for switches, repeatable for --const)."""
    defaults = defaults or {}
    actions = _options(command_parser(command))
    switches = {a.dest for a in actions if a.option_strings and a.nargs == 0}
    repeated = [a.dest for a in actions if isinstance(a, argparse._AppendAction)]

    def run(c, **values):
        from derive.app.cli import main

        argv = [command]
        for action in actions:
            value = values[action.dest]
            if not action.option_strings:
                argv.append(str(value))
            elif action.dest in switches:
                argv += [action.option_strings[0]] if value else []
            elif action.dest in repeated:
                argv += [f"{action.option_strings[0]}={item}" for item in value]
            elif value is not None:
                # attached with `=`, so a value that starts with a minus stays a value
                argv.append(f"{action.option_strings[0]}={value}")
        code = main(argv)
        if code:
            raise Exit(code=code)

    parameters = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for action in actions:
        default = False if action.dest in switches else defaults.get(action.dest)
        parameters.append(
            inspect.Parameter(action.dest, inspect.Parameter.KEYWORD_ONLY, default=default)
        )
    run.__signature__ = inspect.Signature(parameters)
    run.__name__ = run.__qualname__ = name.replace("-", "_")
    run.__doc__ = doc
    return task(
        run,
        name=name,
        help={a.dest: a.help or "" for a in actions},
        iterable=repeated,
        auto_shortflags=False,
    )


build_lesson = _derive_task(
    "lesson", "build-lesson", "Write a lesson: `derive lesson` with every one of its options."
)
check_gradient = _derive_task(
    "check", "check-gradient", "Check a hand-derived gradient: `derive check` with its options."
)
build_course = _derive_task(
    "course",
    "build-course",
    "Build every lesson of a course: `derive course SPEC` with its options.",
    defaults={"spec": "examples/seeds/course.toml"},
)


@task(help={"fast": "only the unit layer: the tests not marked slow (pytest -m 'not slow')"})
def test(c, fast=False):
    """Run the test suite (all of it, or --fast: the unit layer)."""
    marker = f" -m '{FAST}'" if fast else ""
    c.run(f"{sys.executable} -m pytest{marker}", pty=False)


@task
def lint(c):
    """ruff check and ruff format --check."""
    c.run(f"{sys.executable} -m ruff check .")
    c.run(f"{sys.executable} -m ruff format --check .")


@task
def bench(c):
    """Benchmarks (pytest-benchmark), reported as ratios to hand-written baselines."""
    c.run(
        f"{sys.executable} -m pytest benchmarks -p no:cacheprovider --benchmark-only "
        "--benchmark-columns=median,iqr,rounds --benchmark-sort=name -o testpaths=benchmarks -s",
        pty=False,
    )
