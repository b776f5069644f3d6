"""Each HTML lesson in headless Chromium, offline: no console error, no request leaves the
page, the math is typeset; at 390 and 1280 pixels the page never scrolls sideways; printed on
A4 a three-parameter step table keeps every column. Screenshots are saved for a person to look
at (output/screenshots)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from derive.app.cli import main
from tests.conftest import CHROMIUM, open_offline
from tests.test_pages import table_rows

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no Chromium: ./setup.sh --dev installs Debian's chromium"
)

LESSONS = {
    "w3": ["--loss", "(w-3)**2"],
    "mse": ["--loss", "mean((theta0 + theta1*x - y)**2)", "--data", "x=1,2,3; y=2,3,4"],
    "saddle": ["--loss", "x**2 - y**2", "--init", "x=1,y=0.5"],
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_opens_offline_with_typeset_math(browser, tmp_path, name, language):
    out = tmp_path / name
    assert main(["lesson", *LESSONS[name], "--lang", language, "--out", str(out)]) == 0
    visit = open_offline(browser, out / f"lesson.{language}.html", 900, 1200)
    page, errors, outside = visit.page, visit.errors, visit.outside
    assert errors == []
    assert outside == []
    assert page.locator("math").count() > 20
    assert page.locator("math[display=block]").count() > 5
    assert page.locator("img").count() >= 5
    broken = page.evaluate(
        "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length"
    )
    assert broken == 0
    math_font = page.evaluate(
        """async () => { await document.fonts.ready;
            return [...document.fonts].filter(f => f.family.includes('derive math'))
                                      .map(f => f.status); }"""
    )
    assert math_font == ["loaded"]  # the embedded math font is used, not a system one
    screenshots = Path(__file__).resolve().parent.parent / "output" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / f"{name}.{language}.png"), full_page=True)
    page.close()


# -- phones, desktops and paper (issue 13) --------------------------------------------------------

# The widest pages: long formulas (logistic), many columns (three parameters, the backward pass),
# data, |u|, code.
WIDE = [
    ("seeds", "seed-004-quadratic"),
    ("seeds", "seed-000-logistic"),
    ("seeds", "seed-004-line"),
    ("seeds", "seed-001-regression"),
    ("extra", "abs"),
    ("extra", "rosenbrock"),
    ("extra", "backprop"),
]
OVERFLOWING = """() => [
    ...document.querySelectorAll('math[display="block"], h1 math, table, p, li')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .filter(e => !['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
    .map(e => e.tagName)"""


@pytest.mark.parametrize("width", [390, 1280])
def test_no_page_scrolls_sideways(browser, seeds_course, extra_course, width):
    """What is wider than the screen scrolls inside its own box: the page never does."""
    courses = {"seeds": seeds_course, "extra": extra_course}
    screenshots = Path(__file__).resolve().parent.parent / "output" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    files = [p for course, slug in WIDE for p in sorted((courses[course] / slug).glob("*.html"))]
    assert len(files) == 11  # the seeds' in zh and en, abs and Rosenbrock in English, one more
    page = browser.new_page(viewport={"width": width, "height": 900})
    for path in files:
        page.goto(path.as_uri())
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, (path.name, scroll_width)
        assert page.evaluate(OVERFLOWING) == [], path.name
        page.screenshot(path=str(screenshots / f"{path.stem}.{width}.png"))
    page.close()


def test_dark_mode_follows_the_system_and_keeps_figures_on_white(browser, extra_course):
    page = browser.new_page(viewport={"width": 390, "height": 900}, color_scheme="dark")
    page.goto((extra_course / "saddle" / "saddle.zh.html").as_uri())
    colors = page.evaluate(
        """() => [getComputedStyle(document.body).backgroundColor,
                  getComputedStyle(document.querySelector('img')).backgroundColor]"""
    )
    assert colors == ["rgb(20, 23, 31)", "rgb(255, 255, 255)"]
    page.close()


NUMBER = re.compile(r"[−-]?\d+(?:\.\d+)?")


def step_table(markdown: str) -> list[list[str]]:
    """The worked steps: the widest table of the lesson, which starts at step 0."""
    tables = [rows for rows in table_rows(markdown) if rows[2][0] == "0"]
    return max(tables, key=lambda rows: len(rows[0]))


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a4_print_keeps_every_column_of_a_three_parameter_table(browser, seeds_course, language):
    """mean((a x² + b x + c − y)²) on the seeds' quadratic.csv: 11 columns, each on the page."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf comes with the dev extra")
    folder = seeds_course / "seed-004-quadratic"
    markdown = (folder / f"seed-004-quadratic.{language}.md").read_text(encoding="utf-8")
    rows = step_table(markdown)
    assert len(rows[0]) == 11  # step, a, b, c, L, three partials, three updates
    page = browser.new_page()
    page.goto((folder / f"seed-004-quadratic.{language}.html").as_uri())
    reader = pypdf.PdfReader(io.BytesIO(page.pdf(format="A4")))
    page.close()
    placed: list[tuple[str, float]] = []  # each number printed, with where it starts on the page
    for sheet in reader.pages:
        size = (float(sheet.mediabox.width), float(sheet.mediabox.height))
        assert size == pytest.approx((595.3, 841.9), abs=2)  # A4: 210 × 297 mm
        right = float(sheet.mediabox.width) - 20  # inside the page, not cut at its edge

        def seen(text, cm, tm, font, size, right=right):
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            placed.extend((n, x) for n in NUMBER.findall(text) if 0 <= x < right)

        sheet.extract_text(visitor_text=seen)
    printed = {n.replace("−", "-") for n, _ in placed}
    for row in (rows[2], rows[-1]):  # the first step and the last
        for column, cell in enumerate(row):
            for number in NUMBER.findall(cell):
                assert number.replace("−", "-") in printed, (language, column, cell)
