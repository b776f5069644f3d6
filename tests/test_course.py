"""Courses: the seeds course builds and its numbers are true; a broken lesson fails alone;
an unchanged rebuild skips everything; notebooks run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from derive.app.cli import main
from derive.show.notebook import code_of
from tests.test_lesson_numbers import table

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds"
# seeds_course (tests/conftest.py): the seeds course, built once per session


def page(course: Path, slug: str, language: str, kind: str = "md") -> Path:
    """A course names each lesson's files by its slug: <slug>/<slug>.<lang>.md."""
    return course / slug / f"{slug}.{language}.{kind}"


def table_values(markdown: str, column: int) -> list[float]:
    """A column of the worked step table."""
    return [
        float(row[column].replace("−", "-")) for row in table(markdown, "Step |") if row[0] != "…"
    ]


def test_every_seed_lesson_is_built_and_indexed(seeds_course):
    slugs = sorted(p.name for p in seeds_course.iterdir() if p.is_dir())
    assert len(slugs) == 12
    for slug in slugs:
        for language in ("zh", "en"):
            assert page(seeds_course, slug, language, "html").stat().st_size > 10_000
    index = (seeds_course / "index.en.md").read_text()
    assert all(f"({slug}/{slug}.en.md)" in index for slug in slugs)
    index_html = (seeds_course / "index.zh.html").read_text()
    assert "seed-001-regression/seed-001-regression.zh.html" in index_html


def test_seed_000_numbers(seeds_course):
    md = page(seeds_course, "seed-000-parabola", "en").read_text()
    w, expected = 0.0, []
    for _ in range(8):
        expected.append(w)
        w -= 0.1 * 2 * (w - 3)
    assert table_values(md, 1)[:8] == pytest.approx(expected, rel=1e-5)
    assert md.count("| true |") == 4  # 0.6, 1.08, 1.464, 1.7712 hold


def test_seed_001_wrong_epochs_are_corrected(seeds_course):
    md = page(seeds_course, "seed-001-regression", "zh").read_text()
    t0 = t1 = 0.0
    for _ in range(2):
        error = [t0 + t1 * x - y for x, y in ((1, 2), (2, 3), (3, 4))]
        g0 = 2 * sum(error) / 3
        g1 = 2 * sum(e * x for e, x in zip(error, (1, 2, 3), strict=True)) / 3
        t0, t1 = t0 - 0.1 * g0, t1 - 0.1 * g1
    assert f"| 2 | $\\theta_{{0}}$ | 0.94 | {t0:.6g} | 有误，已更正 |" in md
    assert f"| 2 | $\\theta_{{1}}$ | 0.87 | {t1:.6g} | 有误，已更正 |" in md
    assert "其中 4 个与计算结果不符" in md


@pytest.mark.parametrize(
    ("slug", "lr", "steps"),
    [
        ("seed-004-x2-lr-0.01", 0.01, 30),
        ("seed-004-x2-lr-0.3", 0.3, 20),
        ("seed-004-x2-lr-0.95", 0.95, 30),
    ],
)
def test_seed_004_learning_rates(seeds_course, slug, lr, steps):
    md = page(seeds_course, slug, "en").read_text()
    x = 4.0
    for _ in range(steps):
        x -= lr * 2 * x
    final = re.search(r"after \d+ steps it is \$L = ([^$]+)\$, at \$x = ([^$]+)\$", md)
    printed = float(final.group(2).replace(r" \times 10^{", "e").rstrip("}"))
    assert printed == pytest.approx(x, rel=1e-5)


def test_seed_004_divergence(seeds_course):
    md = page(seeds_course, "seed-004-x2-lr-1.1", "en").read_text()
    assert table_values(md, 1)[:5] == pytest.approx([4, -4.8, 5.76, -6.912, 8.2944])
    assert md.count("| true |") == 2


def test_seed_004_quartic_starts(seeds_course):
    md = page(seeds_course, "seed-004-quartic", "en").read_text()
    for start in (-2.0, 0.5, 2.0):
        x = start
        for _ in range(100):
            x -= 0.01 * (4 * x**3 - 8 * x + 0.5)
        assert re.search(rf"\| \$x = {start:g}\$ \| \$x = {x:.6g}\$ \|", md), (start, x)


def test_seed_004_line_fit_matches_the_seeds_own_loop(seeds_course):
    rng = np.random.RandomState(42)  # the seed's np.random.seed(42)
    x = rng.uniform(-5, 5, 100)
    y = 2 * x + 3 + rng.randn(100) * 1.5
    w = b = 0.0
    for _ in range(200):
        r = w * x + b - y
        w, b = w - 0.01 * 2 * np.mean(r * x), b - 0.01 * 2 * np.mean(r)
    md = page(seeds_course, "seed-004-line", "en").read_text()
    final = re.search(
        r"after 200 steps it is \$L = [^$]+\$, at \$w = ([-0-9.]+), b = ([-0-9.]+)\$", md
    )
    assert [float(final.group(1)), float(final.group(2))] == pytest.approx([w, b], rel=1e-5)


def test_notebooks_run_and_reproduce_the_table(seeds_course):
    matplotlib.use("Agg")
    path = seeds_course / "seed-001-regression" / "seed-001-regression-notebook.en.ipynb"
    book = nbformat.read(str(path), as_version=4)
    namespace: dict = {}
    exec(compile(code_of(book), path.name, "exec"), namespace)  # our generated code
    assert namespace["history"][2] == pytest.approx([0.546667, 1.182222], abs=1e-6)
    path = seeds_course / "seed-004-line" / "seed-004-line-notebook.zh.ipynb"
    line = nbformat.read(str(path), as_version=4)
    exec(compile(code_of(line), path.name, "exec"), namespace)
    assert len(namespace["history"]) == 201


def test_unchanged_rebuild_skips_everything(seeds_course, capsys):
    before = {p: p.read_bytes() for p in seeds_course.rglob("*") if p.is_file()}
    assert main(["course", str(SEEDS / "course.toml"), "--out", str(seeds_course)]) == 0
    err = capsys.readouterr().err
    assert "12 lessons: 0 built, 12 skipped, 0 failed" in err
    assert {p: p.read_bytes() for p in seeds_course.rglob("*") if p.is_file()} == before


def test_a_broken_lesson_fails_alone(tmp_path, capsys):
    spec = tmp_path / "course.toml"
    spec.write_text(
        'title = "Two lessons"\nlanguages = ["en"]\n\n'
        '[[lessons]]\ntitle = "fine"\nloss = "(w-3)**2"\nsections = ["table"]\n\n'
        '[[lessons]]\ntitle = "broken"\nloss = "(w-3"\n\n'
        '[[lessons]]\ntitle = "unknown key"\nloss = "w**2"\nspeed = 3\n'
    )
    assert main(["course", str(spec), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "course.toml: lessons[1], line 9: this '(' is never closed" in err
    assert "course.toml: lessons[2], line 13: unknown key 'speed'" in err
    assert "1 built, 0 skipped, 2 failed" in err
    assert (tmp_path / "out" / "fine" / "fine.en.md").exists()
    assert not (tmp_path / "out" / "broken").exists()


def test_one_edited_lesson_is_the_only_one_rebuilt(tmp_path, capsys):
    spec = tmp_path / "course.toml"
    lesson = (
        '[[lessons]]\ntitle = "{t}"\nloss = "{loss}"\nsections = ["table"]\nlanguages = ["en"]\n\n'
    )
    spec.write_text(lesson.format(t="a", loss="(w-3)**2") + lesson.format(t="b", loss="w**2"))
    assert main(["course", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    spec.write_text(lesson.format(t="a", loss="(w-3)**2") + lesson.format(t="b", loss="w**4"))
    capsys.readouterr()
    assert main(["course", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    assert "1 built, 1 skipped, 0 failed" in capsys.readouterr().err


def test_invoke_build_course(tmp_path):
    import subprocess
    import sys

    shutil.copy(SEEDS / "course.toml", tmp_path / "course.toml")
    spec = tmp_path / "mini.toml"
    spec.write_text('[[lessons]]\ntitle = "p"\nloss = "(w-3)**2"\nsections = ["table"]\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "build-course",
            "--spec",
            str(spec),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=SEEDS.parent.parent,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "p" / "p.zh.html").exists()


def test_lesson_format_ipynb(tmp_path, derive_cli):
    out = tmp_path / "nb"
    result = derive_cli(
        "lesson",
        "--loss",
        "(w-3)**2",
        "--format",
        "ipynb",
        "--lang",
        "en",
        "--sections",
        "table",
        "--out",
        str(out),
    )
    assert result.code == 0 and "lesson-notebook.en.ipynb" in result.out
    matplotlib.use("Agg")
    namespace: dict = {}
    book = nbformat.read(str(out / "lesson-notebook.en.ipynb"), as_version=4)
    exec(compile(code_of(book), "lesson-notebook.en.ipynb", "exec"), namespace)
    assert namespace["history"][1:5, 0] == pytest.approx([0.6, 1.08, 1.464, 1.7712])


def test_course_format_ipynb_adds_notebooks_to_every_lesson(tmp_path):
    spec = tmp_path / "course.toml"
    spec.write_text(
        'languages = ["en"]\n[[lessons]]\ntitle = "a"\nloss = "x**2"\nsections = ["table"]\n'
    )
    out = tmp_path / "out"
    assert main(["course", str(spec), "--out", str(out), "--format", "ipynb"]) == 0
    assert (out / "a" / "a-notebook.en.ipynb").exists()
