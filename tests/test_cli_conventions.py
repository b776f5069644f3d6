"""First contact with the command (issue 14): --version, a bare `derive`, did-you-mean, stdin
for `-`, values that start with a minus, a closed pipe, a lesson's progress and --open."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import sys
import tomllib

import pytest

from derive.app.cli import _attach_signed_values
from tests.conftest import ROOT, run_process


def test_version_is_the_installed_distribution_s():
    result = run_process("--version")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.code == 0
    assert result.out == f"derive {importlib.metadata.version('derive')}\n"
    assert importlib.metadata.version("derive") == declared


def test_bare_derive_prints_the_help_and_succeeds():
    result = run_process()
    assert result.code == 0
    assert result.out.startswith("usage: derive")
    for command in ("lesson", "diff", "check", "course", "descend", "backprop"):
        assert f"\n    {command} " in result.out
    assert result.err == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("lesosn",), "unknown command 'lesosn'; did you mean lesson?"),
        (("chekc",), "did you mean check?"),
        (("--verison",), "unknown option --verison; did you mean --version? (see derive --help)"),
        (("diff", "--lsos", "w"), "unknown option --lsos; did you mean --loss?"),
        (("diff", "--loss", "w", "--wrtt", "w"), "did you mean --wrt? (see derive diff --help)"),
        (("check", "--loss", "w", "--wrt", "w", "--anwser", "1"), "did you mean --answer?"),
        (("descend", "--loss", "w", "--optimiser", "adam"), "did you mean --optimizer?"),
        (("diff", "--loss", "w", "--zzzzzz"), "unknown option --zzzzzz (see derive diff --help)"),
        (("diff",), "required: --loss (see derive diff --help)"),
        (("descend", "--loss", "w", "--optimizer", "adan"), "'adan'; did you mean adam?"),
        (("diff", "--loss", "w", "--lang", "eng"), "invalid choice: 'eng'; did you mean en?"),
        (("diff", "--loss", "w", "--format", "xml"), "invalid choice: 'xml' (choose from text,"),
    ],
)
def test_a_mistyped_word_is_refused_with_the_nearest_right_one(derive_cli, args, expected):
    result = derive_cli(*args)
    assert result.code == 2
    assert result.err.startswith("derive: error: ")
    assert expected in result.err
    assert "derive derive" not in result.err
    assert len(result.err.splitlines()) == 1


def test_loss_from_stdin_is_the_same_as_on_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "derive", "diff", "--loss", "-", "--format", "json"],
        input="(w-3)**3\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = run_process("diff", "--loss", "(w-3)**3", "--format", "json")
    assert done.stdout == written.out


def test_answer_from_stdin(derive_cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("3*(w-3)**2\n"))  # d/dw (w-3)³
    result = derive_cli("check", "--loss", "(w-3)**3", "--wrt", "w", "--answer", "-")
    assert (result.code, result.out.splitlines()[0]) == (0, "Right")


def test_class_answers_from_stdin(derive_cli, monkeypatch, tmp_path):
    csv = b"student,answer\nana,2*(w-3)\nbo,2*w\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(csv)))
    out = tmp_path / "report"
    result = derive_cli(
        "check", "--loss", "(w-3)**2", "--wrt", "w", "--answers", "-", "--out", str(out)
    )
    assert result.code == 0, result.err
    grades = (out / "grades.csv").read_text()
    assert "ana" in grades and "bo" in grades
    assert "1 right, 1 wrong, 0 invalid" in result.err


def test_only_one_option_reads_stdin(derive_cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("w"))
    result = derive_cli("check", "--loss", "-", "--wrt", "w", "--answer", "-")
    assert result.code == 2
    assert "--loss - and --answer -: only one option can read stdin" in result.err


@pytest.mark.parametrize(
    ("argv", "attached"),
    [
        (["check", "--answer", "-2*(3-w)"], ["check", "--answer=-2*(3-w)"]),
        (["diff", "--loss", "-w**2", "--wrt", "w"], ["diff", "--loss=-w**2", "--wrt", "w"]),
        (["descend", "--init", "-1"], ["descend", "--init=-1"]),
        (["backprop", "--at", "-w=1"], ["backprop", "--at=-w=1"]),
        (["diff", "--loss", "-"], ["diff", "--loss", "-"]),  # stdin stays `-`
        (["diff", "--loss", "--wrt", "w"], ["diff", "--loss", "--wrt", "w"]),  # no value given
        (["descend", "--lr", "-1"], ["descend", "--lr", "-1"]),  # not an expression option
        (["diff", "--", "--loss", "-w"], ["diff", "--", "--loss", "-w"]),
        (["diff", "--loss"], ["diff", "--loss"]),
    ],
)
def test_values_starting_with_a_minus_are_attached(argv, attached):
    assert _attach_signed_values(argv) == attached


def test_an_answer_written_with_a_leading_minus_is_checked(derive_cli):
    # -2*(3-w) is 2w - 6, the derivative of (w-3)²
    result = derive_cli("check", "--loss", "(w-3)**2", "--wrt", "w", "--answer", "-2*(3-w)")
    assert (result.code, result.out.splitlines()[0]) == (0, "Right")
    result = derive_cli("check", "--loss", "(w-3)**2", "--wrt", "w", "--answer", "-2*(w-3)")
    assert result.code == 1


def test_a_loss_with_a_leading_minus_and_a_start_below_zero(derive_cli):
    result = derive_cli(
        "descend", "--loss", "-w**2", "--maximize", "--init", "w=-1", "--steps", "1"
    )
    # one step of gradient ascent on -w² from w = -1: w + 0.1·(-2w) = -0.8
    assert result.code == 0, result.err
    assert result.out.splitlines()[2].split()[:2] == ["1", "-0.8"]
    result = derive_cli("descend", "--loss", "w**2", "--init", "-1")
    assert result.code == 2
    assert "--init expects name=value pairs" in result.err


def test_a_closed_pipe_ends_quietly():
    """`derive descend ... | head`: the reader closes the pipe before derive writes."""
    with subprocess.Popen(
        [sys.executable, "-m", "derive", "descend", "--loss", "(w-3)**2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    ) as process:
        process.stdout.close()
        error = process.stderr.read().decode()
        assert process.wait(timeout=120) == 141
    assert error == ""


def test_a_pipe_into_head_gets_its_lines():
    done = subprocess.run(
        f"{sys.executable} -m derive descend --loss '(w-3)**2' --steps 100000 | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.stdout.splitlines()[1].split()[:2] == ["0", "0"]
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# bash completes as it would at a prompt: the words typed, and what the shell then offers
COMPLETE = """
source <("$DERIVE" -m derive --print-completion bash) || exit 3
offered() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _shtab_derive
    echo "${COMPREPLY[*]}"
}
offered derive les
offered derive lesson --opt
offered derive lesson --optimizer ad
offered derive check --lang ''
offered derive ''
"""


def test_bash_completes_commands_options_and_choices():
    done = subprocess.run(
        ["bash", "-c", COMPLETE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"DERIVE": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "lesson",
        "--optimizer",
        "adagrad adam adamw adadelta adamax",
        "zh en all",
        "lesson diff check course descend backprop",
    ]


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_completion_scripts_for_other_shells_name_every_command(shell):
    done = run_process("--print-completion", shell)
    assert done.code == 0
    for command in ("lesson", "diff", "check", "course", "descend", "backprop"):
        assert command in done.out


def test_an_unknown_shell_is_refused_with_the_choices():
    done = run_process("--print-completion", "fish")
    assert done.code == 2 and "bash" in done.err and "Traceback" not in done.err


@pytest.mark.slow
def test_a_lesson_at_a_terminal_shows_its_phases_and_opens_the_page(
    derive_cli, monkeypatch, tmp_path
):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    out = tmp_path / "w3"
    result = derive_cli(
        "lesson", "--loss", "(w-3)**2", "--lang", "en", "--steps", "3", "--out", str(out), "--open"
    )
    assert result.code == 0, result.err
    page = (out / "lesson.en.html").resolve()
    assert page.is_file()
    assert opened == [page.as_uri()]
    assert result.out == f"{out / 'lesson.en.html'}\n"
    lines = result.err.splitlines()
    assert lines[:3] == [
        "derive: deriving the gradient…",
        "derive: descending (3 steps)…",
        "derive: writing the lesson in en: figures, Markdown, HTML…",
    ]
    assert lines[-1] == f"derive: lesson written: file://{page}"


@pytest.mark.slow
def test_a_lesson_in_a_log_is_quiet(derive_cli, tmp_path):
    out = tmp_path / "w3"
    result = derive_cli("lesson", "--loss", "(w-3)**2", "--steps", "3", "--out", str(out))
    assert result.code == 0, result.err
    assert result.err == ""
    assert f"{out / 'lesson.zh.html'}\n" in result.out
    assert f"{out / 'lesson.en.html'}\n" in result.out
