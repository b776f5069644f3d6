"""The command line as a user meets it: exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_process

BAD_INPUT = [
    ("--loss", "(w-3"),
    ("--loss", "w@2"),
    ("--loss", "10**10**10"),
    ("--loss", "9**9**9**9"),
    ("--loss", "__import__('os').system('echo pwned')"),
    ("--loss", "(lambda: 1)()"),
    ("--loss", ""),
    ("--loss", "3 + 4"),
    ("--loss", "w**2", "--lr", "-1"),
    ("--loss", "w**2", "--lr", "nan"),
    ("--loss", "w**2", "--steps", "many"),
    ("--loss", "w**2", "--init", "q=1"),
    ("--loss", "w**2", "--init", "w=__import__"),
    ("--loss", "w**2", "--lang", "fr"),
]


@pytest.mark.parametrize("args", BAD_INPUT, ids=lambda a: " ".join(a))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, derive_cli, args):
    out = tmp_path / "lesson"
    result = derive_cli("lesson", *args, "--out", str(out))
    assert result.code == 2
    lines = result.err.splitlines()
    assert lines[0].startswith("derive: error: ")
    assert len(lines) <= 3  # the message, and for text input the input and a caret under it
    assert "Traceback" not in result.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_real_process_prints_no_traceback_for_hostile_input(tmp_path):
    result = run_process("lesson", "--loss", "().__class__", "--out", str(tmp_path / "x"))
    assert result.code == 2
    assert result.err.splitlines()[0].startswith("derive: error: unexpected character '.'")
    assert "Traceback" not in result.err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # a whole lesson, in a process of its own
def test_invoke_build_lesson_writes_the_lesson(tmp_path):
    out = tmp_path / "w3"
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "build-lesson", "--loss", "(w-3)**2", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / "lesson.zh.html").exists() and (out / "lesson.en.md").exists()


def test_invoke_build_lesson_passes_bad_input_exit_code_through(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "build-lesson",
            "--loss",
            "w@2",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2
    assert "unexpected character '@'" in done.stderr
    assert "Traceback" not in done.stderr


def test_default_output_folder_is_a_readable_slug(tmp_path, derive_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = derive_cli("lesson", "--loss", "(w-3)**2", "--lang", "en")
    assert result.code == 0
    (folder,) = (tmp_path / "output").iterdir()
    assert folder.name.startswith("w-3-2-")
    assert "output/" + folder.name + "/lesson.en.html" in result.out


def test_invoke_check_gradient_passes_the_verdict_through():
    def run(answer: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "invoke",
                "check-gradient",
                "--loss",
                "(w-3)**2",
                "--wrt",
                "w",
                "--answer",
                answer,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )

    right, wrong = run("2*(w-3)"), run("w-3")
    assert right.returncode == 0 and right.stdout.startswith("Right")
    assert wrong.returncode == 1 and "1/2 times" in wrong.stdout
