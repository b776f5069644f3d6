"""Project tasks: `invoke --list`."""

from __future__ import annotations

import sys

from invoke import Exit, task


@task(
    help={
        "loss": 'the loss, e.g. "(w-3)**2"',
        "params": "parameters, e.g. w,b (default: the loss's free names)",
        "init": 'start, e.g. "w=0,b=0" (default: all 0)',
        "lr": "learning rate (default 0.1)",
        "steps": "iterations (default 20)",
        "lang": "zh, en or all (default all)",
        "out": "folder to write (default output/<slug>)",
        "interactive": "add the panel that re-runs the descent as η, momentum and start change",
    }
)
def build_lesson(
    c, loss, params=None, init=None, lr=None, steps=None, lang=None, out=None, interactive=False
):
    """Write a lesson for LOSS: the same as `derive lesson --loss LOSS ...`."""
    from derive.app.cli import main

    options = {
        "--params": params,
        "--init": init,
        "--lr": lr,
        "--steps": steps,
        "--lang": lang,
        "--out": out,
    }
    argv = ["lesson", "--loss", loss]
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    if interactive:
        argv.append("--interactive")
    code = main(argv)
    if code:
        raise Exit(code=code)


@task
def test(c):
    """Run the test suite."""
    c.run(f"{sys.executable} -m pytest", pty=False)


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


@task(
    help={
        "loss": "the loss",
        "wrt": "the parameter the answer differentiates by",
        "answer": "one answer, e.g. 2*mean((w*x+b-y)*x)",
        "answers": "a CSV file with columns student,answer",
        "data": "data columns: a CSV file or inline x=1,2; y=3,4",
        "lang": "zh or en (one answer), zh, en or all (a report)",
        "json": "print the verdict as JSON",
        "jobs": "processes for --answers",
        "out": "report folder for --answers",
    }
)
def check_gradient(
    c, loss, wrt, answer=None, answers=None, data=None, lang=None, json=False, jobs=None, out=None
):
    """Check a hand-derived gradient: the same as `derive check ...`."""
    from derive.app.cli import main

    argv = ["check", "--loss", loss, "--wrt", wrt]
    options = {
        "--answer": answer,
        "--answers": answers,
        "--data": data,
        "--lang": lang,
        "--jobs": jobs,
        "--out": out,
    }
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    if json:
        argv.append("--json")
    code = main(argv)
    if code:
        raise Exit(code=code)


@task(help={"spec": "the course spec (TOML)", "jobs": "lessons built at once", "out": "folder"})
def build_course(c, spec="examples/seeds/course.toml", jobs=None, out=None):
    """Build every lesson of a course: the same as `derive course SPEC`."""
    from derive.app.cli import main

    argv = ["course", spec]
    for flag, value in {"--jobs": jobs, "--out": out}.items():
        if value is not None:
            argv += [flag, str(value)]
    code = main(argv)
    if code:
        raise Exit(code=code)
