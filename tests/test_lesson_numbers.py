"""Every number a lesson's sections print, against an independent computation in the test."""

from __future__ import annotations

import re

import numpy as np
import pytest

from derive.app.cli import main

SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def value(text: str) -> float:
    """A printed number: −4.8, 3.35761×10⁻⁵, 1.2 \\times 10^{-5}."""
    text = text.strip().strip("$").replace("−", "-").translate(SUP)
    text = re.sub(r"\s*(×|\\times)\s*10\^?\{?(-?\d+)\}?", r"e\2", text)
    return float(text)


def table(markdown: str, header_word: str) -> list[list[str]]:
    """The body rows of the first table whose header contains `header_word`."""
    lines = markdown.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("|") and header_word in line)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def lesson(tmp_path, *args, language="en") -> str:
    out = tmp_path / "lesson"
    assert main(["lesson", *args, "--lang", language, "--out", str(out)]) == 0
    return (out / f"lesson.{language}.md").read_text()


def descend_by_hand(gradient, start, lr, steps):
    point = np.array(start, dtype=float)
    for _ in range(steps):
        point = point - lr * gradient(point)
    return point


def test_w3_thresholds_and_rate_table(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2")
    # L'' = 2 everywhere: overshooting above 1/2, divergence above 2/2
    assert "$L'' = 2$" in md
    assert r"$\eta < 1/L'' = 0.5$" in md
    assert r"$\eta > 2/L'' = 1$" in md
    rows = table(md, "Learning rate")
    # 0.1/λ, 1/λ (the best step of a one-parameter quadratic), 1.5/λ, 2.2/λ
    assert [r[0] for r in rows] == ["0.05", "0.5", "0.75", "1.1"]
    for row in rows:
        lr = value(row[0])
        w = descend_by_hand(lambda p: 2 * (p - 3), [0.0], lr, 20)[0]
        assert value(row[3]) == pytest.approx((w - 3) ** 2, rel=1e-5, abs=1e-300)
    assert [r[1] for r in rows] == ["too small", "fast", "large", "too large"]


def test_two_parameter_thresholds(tmp_path):
    md = lesson(tmp_path, "--loss", "x**2 + 2*y**2", "--init", "x=4,y=3", "--sections", "rates")
    # Hessian diag(2, 4): λ_max = 4
    assert r"\lambda_{\max} = 4" in md and r"$\eta < 1/\lambda_{\max} = 0.25$" in md
    assert r"$\eta > 2/\lambda_{\max} = 0.5$" in md
    assert (
        r"\lambda_{\min} = 2" in md
        and r"\eta^* = 2/(\lambda_{\min} + \lambda_{\max}) = 0.333333" in md
    )


def test_regression_thresholds_from_the_data(tmp_path):
    md = lesson(
        tmp_path,
        "--loss",
        "mean((theta0 + theta1*x - y)**2)",
        "--data",
        "x=1,2,3; y=2,3,4",
        "--sections",
        "rates",
    )
    x = np.array([1.0, 2.0, 3.0])
    hessian = 2 / 3 * np.array([[3, x.sum()], [x.sum(), (x**2).sum()]])
    largest = np.linalg.eigvalsh(hessian).max()
    printed = re.search(r"\\lambda_\{\\max\} = ([0-9.]+)", md).group(1)
    assert value(printed) == pytest.approx(largest, rel=1e-5)
    oscillate = re.search(r"\$\\eta < 1/\\lambda_\{\\max\} = ([0-9.]+)\$", md).group(1)
    assert value(oscillate) == pytest.approx(1 / largest, rel=1e-5)


def test_optimizer_table(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--sections", "optimizers")
    rows = {r[0]: r for r in table(md, "Optimizer")}

    def momentum(nesterov):
        w, buf = 0.0, None
        for t in range(20):
            g = 2 * (w - 3)
            buf = g if t == 0 else 0.9 * buf + g
            w -= 0.1 * (g + 0.9 * buf if nesterov else buf)
        return (w - 3) ** 2

    def adam():
        w, m, v = 0.0, 0.0, 0.0
        for t in range(1, 21):
            g = 2 * (w - 3)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            w -= 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        return (w - 3) ** 2

    w = descend_by_hand(lambda p: 2 * (p - 3), [0.0], 0.1, 20)[0]
    assert value(rows["plain gradient descent"][3]) == pytest.approx((w - 3) ** 2, rel=1e-5)
    assert value(rows["momentum"][3]) == pytest.approx(momentum(False), rel=1e-5)
    assert value(rows["Nesterov momentum"][3]) == pytest.approx(momentum(True), rel=1e-5)
    assert value(rows["Adam"][3]) == pytest.approx(adam(), rel=1e-5)
    assert rows["Adam"][1] == "`lr=0.1, betas=(0.9, 0.999), eps=1e-08`"
    assert rows["momentum"][1] == "`lr=0.1, momentum=0.9`"


def test_batch_table(tmp_path):
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    y = 2 * x + 1
    data = f"x={','.join(map(str, x))}; y={','.join(map(str, y))}"
    md = lesson(
        tmp_path,
        "--loss",
        "mean((w*x + b - y)**2)",
        "--data",
        data,
        "--lr",
        "0.01",
        "--sections",
        "batch",
    )
    rows = {r[0]: r for r in table(md, "Batch size")}
    epochs = 2000 // 8 if 2000 // 8 < 20 else 20
    for name, size in [
        ("batch gradient descent", 8),
        ("stochastic gradient descent", 1),
        ("mini-batch gradient descent", 2),
    ]:
        row = rows[name]
        assert [int(c) for c in row[1:5]] == [size, 8 // size, epochs, epochs * 8 // size]
        order, p = np.random.default_rng(0), np.zeros(2)
        for _ in range(epochs):
            permutation = order.permutation(8) if size < 8 else np.arange(8)
            for k in range(0, 8, size):
                rows_k = permutation[k : k + size]
                r = p[0] * x[rows_k] + p[1] - y[rows_k]
                p = p - 0.01 * np.array([2 * np.mean(r * x[rows_k]), 2 * np.mean(r)])
        loss = np.mean((p[0] * x + p[1] - y) ** 2)
        assert value(row[6]) == pytest.approx(loss, rel=1e-5)


def test_seed_004_quartic_starts(tmp_path):
    md = lesson(
        tmp_path,
        "--loss",
        "x**4 - 4*x**2 + 0.5*x",
        "--init",
        "x=-2",
        "--lr",
        "0.01",
        "--steps",
        "100",
        "--sections",
        "landscape",
    )
    rows = table(md, "Start")
    assert [value(r[0].split("=")[1]) for r in rows] == [-2.0, -0.4, 0.6, 2.0]
    for row in rows:
        start = value(row[0].split("=")[1])
        end = descend_by_hand(lambda p: 4 * p**3 - 8 * p + 0.5, [start], 0.01, 100)[0]
        assert value(row[1].split("=")[1]) == pytest.approx(end, rel=1e-5)
    assert [r[2].split(" at ")[0] for r in rows] == [
        "reached the global minimum",
        "reached the global minimum",
        "reached the local minimum",
        "reached the local minimum",
    ]


def test_saddle_starts(tmp_path):
    md = lesson(tmp_path, "--loss", "x**2 - y**2", "--sections", "landscape")
    rows = table(md, "Start")
    # on the stable direction (the x axis) y stays exactly 0: x shrinks by 0.8 a step to the
    # saddle; 0.01 off it, y grows by 1.2 a step and the run leaves
    assert rows[0][2] == "reached the saddle point at $x = 0, y = 0$"
    x, y = rows[1][1].strip("$").split(", ")
    assert value(x.split("=")[1]) == pytest.approx(2 * 0.8**100, rel=1e-5)
    assert value(y.split("=")[1]) == pytest.approx(0.01 * 1.2**100, rel=1e-5)
    assert "escapes the saddle point" in rows[1][2]


def test_exercise_answers(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--sections", "exercises")
    w20 = descend_by_hand(lambda p: 2 * (p - 3), [0.0], 0.1, 20)[0]
    w21 = descend_by_hand(lambda p: 2 * (p - 3), [0.0], 0.1, 21)[0]
    answer = re.search(r"\$\$\nw = ([0-9.]+) - 0\.1 \\times \((-[0-9.]+)\) = ([0-9.]+)\n\$\$", md)
    assert value(answer.group(1)) == pytest.approx(w20, rel=1e-5)
    assert value(answer.group(2)) == pytest.approx(2 * (w20 - 3), rel=1e-5)
    assert value(answer.group(3)) == pytest.approx(w21, rel=1e-5)
    assert "after step 1, $w = 0.3$; after step 2, $w = 0.57$" in md  # η = 0.05 by hand
    assert r"\frac{d\tilde{L}}{dw} = \frac{11 w}{5} - 6" in md  # 2(w − 3) + w/5


def test_sections_option_and_open(tmp_path, derive_cli):
    out = tmp_path / "only"
    result = derive_cli(
        "lesson",
        "--loss",
        "(w-3)**2",
        "--sections",
        "table,rates",
        "--open",
        "--out",
        str(out),
        "--svg",
    )
    assert result.code == 0
    assert result.out.split() == [str(out / "lesson.zh.html"), str(out / "lesson.en.html")]
    md = (out / "lesson.en.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("## ")] == [
        "## 1. Step by step",
        "## 2. What the learning rate does",
    ]
    assert (out / "figures" / "en" / "rates.svg").exists()
    bad = derive_cli("lesson", "--loss", "(w-3)**2", "--sections", "tables")
    assert bad.code == 2 and "unknown section tables" in bad.err
