"""A class report in headless Chromium at 1280 px: nothing wider than the window (long answers
wrap), no script from a student's name runs, no request leaves the page, no image or link that
derive did not make."""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.app.cli import main
from tests.conftest import CHROMIUM, open_offline

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)

TERM = "2*mean((w*x+b-y)*x)"
NAMES = [
    "<img src=x onerror=\"document.title='PWNED'\">",
    "<script>document.title='PWNED'</script>",
    "![a](/etc/hostname.png)",
    "[x](http://127.0.0.1:9/phish)",
    "$\\text{<script>document.title='PWNED'</script>}$",
    "evil.com",
    "x" * 300,  # a long name
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    rows = [f'"{name.replace(chr(34), chr(34) * 2)}",mean((w*x+b-y)*x)' for name in NAMES]
    rows.append("long," + "+".join([TERM] * 110))  # 2,199 characters: invalid, shown whole
    rows.append("longright," + "+".join([TERM] * 50) + "-" + "-".join([TERM] * 49))
    rows += [f"s{k},{TERM if k % 3 else 'mean(w*x+b-y)'}" for k in range(40)]
    answers = folder / "class.csv"
    answers.write_text("student,answer\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = folder / "out"
    args = ["check", "--loss", "mean((w*x+b-y)**2)", "--data", "x=1,2,3; y=2,3,4", "--wrt", "w"]
    assert main([*args, "--answers", str(answers), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("language", ["zh", "en"])
def test_report_fits_1280_px_and_runs_nothing(browser, report, language):
    visit = open_offline(browser, report / f"report.{language}.html", 1280, 900)
    page, errors, outside, dialogs = visit.page, visit.errors, visit.outside, visit.dialogs
    assert errors == [] and outside == [] and dialogs == []
    assert "PWNED" not in page.title()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    overflow = page.evaluate(
        "[...document.querySelectorAll('table')].map(t => t.scrollWidth - t.clientWidth)"
    )
    assert len(overflow) == 4 and max(overflow) <= 1  # every table whole on screen: no scrolling
    counts = page.evaluate(
        "['img', 'a', 'script', 'iframe', 'svg', 'math']"
        ".map(t => document.querySelector('main').querySelectorAll(t).length)"
    )
    assert counts == [0, 0, 0, 0, 0, 0]  # derive's report has none; no name made one
    text = page.inner_text("main")
    for name in NAMES[:6]:
        assert name[:39] in text  # the very text the student's file holds (long ones cut)
    screenshots = Path(__file__).resolve().parent.parent / "output" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / f"class-report.{language}.png"), full_page=True)
    page.close()
