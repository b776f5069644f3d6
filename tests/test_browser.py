"""Each HTML lesson in headless Chromium, offline: no console error, no request leaves the
page, the math is typeset. Screenshots are saved for a person to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from derive.app.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)

LESSONS = {
    "w3": ["--loss", "(w-3)**2"],
    "mse": ["--loss", "mean((theta0 + theta1*x - y)**2)", "--data", "x=1,2,3; y=2,3,4"],
    "saddle": ["--loss", "x**2 - y**2", "--init", "x=1,y=0.5"],
}


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_opens_offline_with_typeset_math(browser, tmp_path, name, language):
    out = tmp_path / name
    assert main(["lesson", *LESSONS[name], "--lang", language, "--out", str(out)]) == 0
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def offline(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.goto((out / f"lesson.{language}.html").as_uri(), wait_until="load")
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
