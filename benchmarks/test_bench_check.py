"""Grading a class (issues 7, 15): 200 distinct answers, 10⁵ rows with 300 distinct answers
(and 2·10⁵ feedback files), and 200 distinct cross-entropy answers (values as intervals)."""

from __future__ import annotations

import random

from benchmarks.conftest import cold_command, report

LOSS = "mean((w*x + b - y)**2)"
DATA = "x=1,2,3,4; y=2,4,5,8"
TEMPLATES = [
    "{k}*mean((w*x+b-y)*x)",  # right for k = 2, a factor otherwise
    "{k}/n*sum((w*x+b-y)*x)",
    "{k}*mean(w*x+b-y)",  # the other parameter's derivative
    "{k}*(w*x+b-y)*x",  # the mean dropped
    "{k}*mean((w*x+b-y)*x) + {k}*w",  # no common mistake
]


def distinct_answers(count: int, templates: list[str] = TEMPLATES) -> list[str]:
    answers = []
    k = 1
    while len(answers) < count:
        answers += [t.format(k=k) for t in templates]
        k += 1
    return answers[:count]


def write_class(path, rows: int, answers: list[str]) -> None:
    rng = random.Random(0)
    lines = ["student,answer"]
    for k in range(rows):
        lines.append(f"s{k:06d},{answers[k] if k < len(answers) else rng.choice(answers)}")
    path.write_text("\n".join(lines) + "\n")


LOGISTIC = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
LOGISTIC_DATA = "x=1,2,3,4; y=0,0,1,1"
LOGISTIC_TEMPLATES = [
    "{k}*mean((sigmoid(w*x+b)-y)*x)",  # right for k = 1, a factor otherwise
    "mean(({k}*sigmoid(w*x+b)-y)*x)",  # no common mistake (but k = 1)
    "{k}*mean(sigmoid(w*x+b)-y)",  # the other parameter's derivative
    "{k}*(sigmoid(w*x+b)-y)*x",  # the mean dropped
    "mean((1/(1+exp(-(w*x+b)))-y)*x)+{k}*w-w",  # σ written out: right for k = 1
]


def grade(path, out, loss: str = LOSS, data: str = DATA) -> float:
    return cold_command(
        "-m",
        "derive",
        "check",
        "--loss",
        loss,
        "--data",
        data,
        "--wrt",
        "w",
        "--answers",
        str(path),
        "--out",
        str(out),
    )


def test_200_distinct_answers(benchmark, tmp_path):
    path = tmp_path / "class.csv"
    write_class(path, 200, distinct_answers(200))
    seconds = benchmark.pedantic(lambda: grade(path, tmp_path / "r"), rounds=1, iterations=1)
    report("check 200 rows, 200 distinct answers", seconds=seconds, aim_seconds=10)


def test_100000_rows_300_distinct_answers(benchmark, tmp_path):
    path = tmp_path / "mooc.csv"
    write_class(path, 100_000, distinct_answers(300))
    seconds = benchmark.pedantic(lambda: grade(path, tmp_path / "r"), rounds=1, iterations=1)
    report("check 1e5 rows, 300 distinct answers", seconds=seconds, aim_seconds=30)


def test_200_distinct_cross_entropy_answers(benchmark, tmp_path):
    path = tmp_path / "logistic.csv"
    write_class(path, 200, distinct_answers(200, LOGISTIC_TEMPLATES))
    seconds = benchmark.pedantic(
        lambda: grade(path, tmp_path / "r", LOGISTIC, LOGISTIC_DATA), rounds=1, iterations=1
    )
    report("check 200 rows, 200 distinct cross-entropy answers", seconds=seconds, aim_seconds=20)
