"""The backpropagation lesson in headless Chromium, offline: no console error, no request leaves
the page, the math is typeset, the figure and every table are there. Screenshots are saved for
a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.app.cli import main
from tests.conftest import CHROMIUM, open_offline
from tests.test_backprop import NETWORK, NETWORK_AT, NETWORK_DATA, SOFTMAX, SOFTMAX_AT, SOFTMAX_DATA

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)


def _at(point: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


LESSONS = {
    "network": ["--loss", NETWORK, "--data", NETWORK_DATA, "--at", _at(NETWORK_AT), "--row", "2"],
    "softmax": ["--loss", SOFTMAX, "--data", SOFTMAX_DATA, "--at", _at(SOFTMAX_AT), "--row", "1"],
    "batch": ["--loss", "mean((w*x + b - y)**2)", "--data", "x=1,2,3; y=2,3,4"],
}


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", list(LESSONS))
def test_backprop_lesson_opens_offline_with_typeset_math(browser, tmp_path, name, language):
    out = tmp_path / name
    assert main(["backprop", *LESSONS[name], "--lang", language, "--out", str(out)]) == 0
    visit = open_offline(browser, out / f"backprop.{language}.html", 900, 1200)
    page, errors, outside = visit.page, visit.errors, visit.outside
    assert errors == []
    assert outside == []
    assert page.locator("math").count() > 50
    assert page.locator("math[display=block]").count() >= 2  # the loss, the partials
    assert page.evaluate("document.documentElement.scrollWidth") <= 900  # nothing runs off
    assert page.locator("img").count() == 1
    assert page.evaluate("document.images[0].complete && document.images[0].naturalWidth > 0")
    assert page.locator("table").count() >= 6  # graph, forward, backward, check, 2 exercises…
    assert page.locator("pre code").count() == 1  # the PyTorch code
    screenshots = Path(__file__).resolve().parent.parent / "output" / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / f"backprop-{name}.{language}.png"), full_page=True)
    page.close()
