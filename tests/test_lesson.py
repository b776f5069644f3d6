"""The first lesson: its files, its numbers, its figures, and how it is written."""

from __future__ import annotations

import re
import warnings

import pytest

from derive.app import build as build_module


def table_rows(markdown: str) -> list[list[str]]:
    """The step table's body rows (those starting with a step number or an ellipsis)."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and (cells[0].isdigit() or cells[0] == "…") and len(cells) >= 5:
            rows.append(cells)
    return rows


def value(text: str) -> float:
    return float(text.replace("−", "-").replace("×10^", "e"))


@pytest.fixture(scope="module")
def w3_lesson(tmp_path_factory):
    from derive.app.cli import main

    out = tmp_path_factory.mktemp("lessons") / "w3"
    assert main(["lesson", "--loss", "(w-3)**2", "--init", "w=0", "--out", str(out)]) == 0
    return out


def test_lesson_files_exist_in_both_languages(w3_lesson):
    for language in ("zh", "en"):
        assert (w3_lesson / f"lesson.{language}.md").stat().st_size > 1000
        assert (w3_lesson / f"lesson.{language}.html").stat().st_size > 1000
        for figure in ("graph", "descent", "loss"):
            assert (w3_lesson / "figures" / language / f"{figure}.png").exists()


def test_seed_000_table_in_the_lesson(w3_lesson):
    markdown = (w3_lesson / "lesson.zh.md").read_text()
    rows = table_rows(markdown)
    assert rows[0] == ["0", "0", "9", "−6", "0 − 0.1×(−6) = 0.6"]
    assert rows[1][4] == "0.6 − 0.1×(−4.8) = 1.08"
    assert rows[2][4] == "1.08 − 0.1×(−3.84) = 1.464"
    assert rows[3][4] == "1.464 − 0.1×(−3.072) = 1.7712"
    # every printed row against a loop written here
    w, reference = 0.0, {}
    for t in range(20):
        reference[t] = (w, (w - 3) ** 2, 2 * (w - 3), w - 0.1 * 2 * (w - 3))
        w = reference[t][3]
    for row in rows:
        if row[0] == "…":
            continue
        current, loss, gradient, new = reference[int(row[0])]
        assert value(row[1]) == pytest.approx(current, rel=1e-5, abs=1e-12)
        assert value(row[2]) == pytest.approx(loss, rel=1e-5)
        assert value(row[3]) == pytest.approx(gradient, rel=1e-5)
        assert value(row[4].split("=")[-1]) == pytest.approx(new, rel=1e-5)
    assert [r[0] for r in rows][-4:] == ["…", "17", "18", "19"]


def test_lesson_states_derivative_rules_and_update_rule(w3_lesson):
    zh = (w3_lesson / "lesson.zh.md").read_text()
    en = (w3_lesson / "lesson.en.md").read_text()
    assert "链式法则" in zh and "幂法则" in zh
    assert "Chain rule" in en and "Power rule" in en
    assert r"\frac{dL}{dw} = 2 \left(w - 3\right)" in en
    assert r"w \leftarrow w - \eta \cdot 2 \left(w - 3\right)" in en
    assert r"\eta = 0.1" in zh


def test_html_is_standalone_with_typeset_math(w3_lesson):
    html = (w3_lesson / "lesson.en.html").read_text()
    assert "<math" in html and "</math>" in html
    assert not re.search(r"(src|href)=\"https?:", html)
    images = re.findall(r'<img src="([^"]+)"', html)
    figures = list((w3_lesson / "figures" / "en").glob("*.png"))
    assert len(images) == len(figures) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_two_parameters_get_a_contour_and_their_own_table(tmp_path):
    from derive.app.cli import main

    out = tmp_path / "xy"
    assert main(["lesson", "--loss", "x**2 + 2*y**2", "--init", "x=4,y=3", "--out", str(out)]) == 0
    rows = table_rows((out / "lesson.en.md").read_text())
    x, y = 4.0, 3.0
    for row in rows[:5]:
        assert [value(row[1]), value(row[2])] == pytest.approx([x, y], rel=1e-5)
        assert value(row[3]) == pytest.approx(x**2 + 2 * y**2, rel=1e-5)
        assert [value(row[4]), value(row[5])] == pytest.approx([2 * x, 4 * y], rel=1e-5)
        x, y = x - 0.1 * 2 * x, y - 0.1 * 4 * y
        assert value(row[6].split("=")[-1]) == pytest.approx(x, rel=1e-5)
        assert value(row[7].split("=")[-1]) == pytest.approx(y, rel=1e-5)
    assert (out / "figures" / "zh" / "descent.png").exists()


def test_rebuilds_are_byte_identical(tmp_path):
    from derive.app.cli import main

    for name in ("a", "b"):
        args = ["lesson", "--loss", "x**2 + 2*y**2", "--svg", "--out", str(tmp_path / name)]
        assert main(args) == 0
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b
    for path in files_a:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path


def test_a_language_built_alone_is_byte_identical_to_it_built_with_the_other(w3_lesson, tmp_path):
    """Two languages draw their figures in forked processes and write their pages one after
    the other in this one, sharing its caches (the math font's subset, the templates): the
    English files must not depend on that, nor on the Chinese page written before them."""
    from derive.app.cli import main
    from derive.app.output import MARKER

    alone = tmp_path / "en"
    arguments = ["lesson", "--loss", "(w-3)**2", "--init", "w=0", "--lang", "en"]
    assert main([*arguments, "--out", str(alone)]) == 0
    files = sorted(
        p.relative_to(alone) for p in alone.rglob("*") if p.is_file() and p.name != MARKER
    )
    assert {p.as_posix() for p in files} >= {"lesson.en.md", "lesson.en.html"}
    for path in files:
        assert (alone / path).read_bytes() == (w3_lesson / path).read_bytes(), path


def test_chinese_figures_raise_no_missing_glyph_warning(tmp_path):
    from derive.app.cli import main

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (
            main(["lesson", "--loss", "(w-3)**2", "--lang", "zh", "--out", str(tmp_path / "a")])
            == 0
        )
        theta = ["--loss", "mean((theta0 + theta1*x - y)**2)", "--data", "x=1,2,3,4; y=2,3,4,5"]
        assert main(["lesson", *theta, "--lang", "zh", "--out", str(tmp_path / "b")]) == 0
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []


def test_a_failed_build_leaves_the_previous_lesson_untouched(tmp_path, monkeypatch):
    from derive.app.cli import main

    out = tmp_path / "lesson"
    assert main(["lesson", "--loss", "(w-3)**2", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full, say")

    monkeypatch.setattr(build_module, "markdown_to_html", broken)
    with pytest.raises(RuntimeError):
        main(["lesson", "--loss", "(w-3)**2", "--lr", "0.2", "--out", str(out)])
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["lesson"]
