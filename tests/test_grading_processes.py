"""Answers that once stalled or crashed a whole class, run as a user runs derive: separate
processes, exit codes, no traceback; and the per-answer time budget, which kills a stuck worker
and lets the class go on."""

from __future__ import annotations

import csv
import io
import time

import pytest

from derive.app import grading
from derive.app.grading import graded_within_budget
from derive.core.check import parse_answer, prepare
from derive.core.derivation import differentiate
from derive.core.parse import parse_loss
from tests.conftest import run_process

LOSS = ["--loss", "(w-3)**2", "--wrt", "w"]
MSE = ["--loss", "mean((w*x+b-y)**2)", "--data", "x=1,2,3; y=2,3,4", "--wrt", "w"]


def clean_exit(result, code: int) -> None:
    assert result.code == code, result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        ([*LOSS, "--answer", "exp(exp(exp(exp(w))))"], 2, "at w = 1 the answer's value is beyond"),
        ([*LOSS, "--answer", "sin(exp(exp(3*w)))"], 1, "Counterexample: at w = 1"),
        ([*LOSS, "--answer", "((w**999)**999)**999"], 2, "the limit is 64"),  # refused as read
        ([*LOSS, "--answer", "exp(w**64)*(w+1)**63"], 1, "Counterexample: at w = 1"),
        ([*MSE, "--answer", "i"], 2, "the answer uses i"),
        ([*LOSS, "--answer", "2*(w-3)", "--time-limit", "1e-9"], 2, "time limit of 1e-09 s"),
        ([*LOSS, "--answer", "2*(w-3)", "--time-limit", "-1"], 2, "positive"),
    ],
    ids=[
        "exp-tower",
        "sin-exp-exp",
        "power-tower",
        "huge-power",
        "row-index",
        "time-limit",
        "bad-limit",
    ],
)
def test_one_hostile_answer(args, code, says):
    started = time.perf_counter()
    result = run_process("check", *args)
    clean_exit(result, code)
    assert says in result.out + result.err
    lines = result.err.strip().splitlines()
    # one line, or one line with the expression and a caret under where it was refused
    assert len(lines) <= 1 or (len(lines) == 3 and lines[2].strip() == "^")
    assert time.perf_counter() - started < 30  # a cold process on a busy machine


def grades(out) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))


def test_a_two_row_class_with_an_exponential_tower_finishes(tmp_path):
    answers = tmp_path / "class.csv"
    answers.write_text("student,answer\nann,exp(exp(exp(exp(w))))\nbo,2*(w-3)\n")
    out = tmp_path / "out"
    result = run_process("check", *LOSS, "--answers", str(answers), "--out", str(out))
    clean_exit(result, 0)
    ann, bo = grades(out)
    assert (ann["verdict"], ann["problem_code"]) == ("invalid", "beyond_limits")
    assert "At w = 1 the answer's value is beyond what derive computes" in ann["problem"]
    assert bo["verdict"] == "right"
    assert "3 lines read, 2 rows reported: 1 right, 0 wrong, 1 invalid" in result.err


def test_a_hostile_class_over_twelve_columns(tmp_path):
    """Unused columns (once 7¹² data sets enumerated), the row index i (once a ValueError for
    everyone), huge answers: every row graded or invalid, quickly."""
    data = tmp_path / "data.csv"
    names = [f"c{k}" for k in range(10)] + ["x", "y"]
    rows = [",".join(str((k * j) % 5 + 1) for j in range(len(names))) for k in range(1, 6)]
    data.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    answers = tmp_path / "class.csv"
    answers.write_text(
        "student,answer\n"
        "a,mean(w*x+b-y)\n"  # wrong: ∂L/∂b
        "b,i\n"
        "c,sin(exp(exp(3*w)))\n"
        "d,((w**999)**999)**999\n"
        "e,exp(exp(exp(exp(w))))\n"
        "f,2*mean((w*x+b-y)*x)\n"
    )
    out = tmp_path / "out"
    loss = ["--loss", "mean((w*x+b-y)**2)", "--data", str(data), "--wrt", "w"]
    started = time.perf_counter()
    result = run_process("check", *loss, "--answers", str(answers), "--out", str(out))
    clean_exit(result, 0)
    assert time.perf_counter() - started < 60
    verdicts = [(r["student"], r["verdict"], r["problem_code"]) for r in grades(out)]
    assert verdicts == [
        ("a", "wrong", ""),
        ("b", "invalid", "unreadable"),
        ("c", "wrong", ""),
        ("d", "invalid", "unreadable"),  # the parser's limits: a power of degree 999³
        ("e", "invalid", "beyond_limits"),
        ("f", "right", ""),
    ]
    shown = grades(out)[0]["counterexample"]
    assert '"x":' in shown and '"c0"' not in shown  # only the columns the loss uses


def test_a_class_under_a_tiny_time_limit_finishes_with_every_row_reported(tmp_path):
    """A nanosecond: no worker can answer within it (a round trip through a pipe takes
    microseconds), whatever the machine's speed or load."""
    answers = tmp_path / "class.csv"
    answers.write_text("student,answer\nann,2*(w-3)\nbo,w-3\ncy,2*w\n")
    out = tmp_path / "out"
    result = run_process(
        "check", *LOSS, "--answers", str(answers), "--out", str(out), "--time-limit", "1e-9"
    )
    clean_exit(result, 0)
    assert [(r["verdict"], r["problem_code"]) for r in grades(out)] == [
        ("invalid", "time_limit")
    ] * 3
    assert (
        "Grading took longer than the time limit of 1e-09 s per answer."
        in grades(out)[0]["problem"]
    )


def test_a_stuck_answer_is_killed_and_the_others_graded(monkeypatch):
    """A worker stuck on one answer (here: sleeping, as a C routine would) is killed at its
    deadline; a fresh worker grades the answers after it."""
    derivation = differentiate(parse_loss("(w-3)**2"))
    answers = [parse_answer(text, derivation) for text in ("2*(w-3)", "w", "w-3", "2*w-6")]
    real = grading._graded

    def stuck_on_w(task, answer):
        if str(answer) == "w":
            time.sleep(600)
        return real(task, answer)

    monkeypatch.setattr(grading, "_graded", stuck_on_w)  # the forked workers inherit it
    started = time.perf_counter()
    results = graded_within_budget(prepare(derivation, "w"), answers, jobs=2, seconds=3)
    assert time.perf_counter() - started < 60
    assert [r.verdict.correct if r.verdict else r.problem.code for r in results] == [
        True,
        "time_limit",
        False,
        True,
    ]
