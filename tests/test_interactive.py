"""The interactive panel of a lesson page (issue 19), in headless Chromium, offline.

A reader's settings go in through the page's controls (the keyboard on the sliders, the mouse
on the start point, typing in the boxes); the numbers come out of the step table as the page
shows them, every digit; they must equal `derive descend --json` for the same settings to
1e-12 relative, and the behaviour word its `behaviour.shape`, for η below, between and above
the thresholds. The thresholds are computed here, from the Hessian written out by hand.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from derive.app.cli import main
from derive.show.catalog import messages

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
browser_only = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"
)
SCREENSHOTS = Path(__file__).resolve().parent.parent / "output" / "screenshots"
RELATIVE = 1e-12
PACKAGE = Path(__file__).resolve().parent.parent / "derive"


def mse_rows() -> tuple[np.ndarray, np.ndarray]:
    """100 rows of a noisy line, seeded."""
    rng = np.random.default_rng(19)
    x = rng.uniform(0, 2, 100)
    return x, 1.5 * x + 0.7 + rng.normal(0, 0.3, 100)


def mse_curvature() -> float:
    """λ_max of mean((w x + b − y)²): the Hessian is (2/n) [[Σx², Σx], [Σx, n]]."""
    x, _ = mse_rows()
    n = len(x)
    matrix = 2 / n * np.array([[np.sum(x * x), np.sum(x)], [np.sum(x), n]])
    return float(np.linalg.eigvalsh(matrix)[-1])


def quartic_curvature() -> float:
    """x⁴ − 4x² + x/2 from x = −2 ends in the left minimum, where L'' = 12x² − 8."""
    roots = np.roots([4, 0, -8, 0.5])
    left = min(r.real for r in roots if abs(r.imag) < 1e-12)
    return 12 * left**2 - 8


def rosenbrock_curvature() -> float:
    """At its minimum (1, 1), the Hessian of (1−x)² + 100(y−x²)² is [[802, −400], [−400, 200]]."""
    return float(np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]]))[-1])


# name: (the loss, the lesson's start and rate, λ_max at the minimum the runs reach, steps,
# quadratic)
LOSSES = {
    "w3": (["--loss", "(w-3)**2"], [], lambda: 2.0, 30, True),
    "bowl": (["--loss", "x**2 + 2*y**2"], ["--init", "x=4,y=3"], lambda: 4.0, 30, True),
    "quartic": (
        ["--loss", "x**4 - 4*x**2 + 0.5*x"],
        ["--init", "x=-2", "--lr", "0.01"],
        quartic_curvature,
        60,
        False,
    ),
    "rosenbrock": (
        ["--loss", "(1-x)**2 + 100*(y-x**2)**2"],
        ["--init", "x=-1.5,y=2", "--lr", "0.001"],
        rosenbrock_curvature,
        200,
        False,
    ),
    "mse": (["--loss", "mean((w*x + b - y)**2)", "--data", "DATA"], [], mse_curvature, 40, True),
}


# -- building the pages once -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Each lesson with its panel (the rates section only, to keep the build short)."""
    folder = tmp_path_factory.mktemp("interactive")
    x, y = mse_rows()
    data = folder / "points.csv"
    data.write_text(
        "x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True))
    )
    built = {}
    for name, (loss, lesson, *_) in LOSSES.items():
        loss = [str(data) if a == "DATA" else a for a in loss]
        out = folder / name
        command = ["lesson", *loss, *lesson, "--lang", "en", "--out", str(out)]
        assert main([*command, "--sections", "rates", "--interactive"]) == 0
        built[name] = (out / "lesson.en.html", loss)
    return built


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


class Page:
    """One lesson page, offline: every request that is not file: or data: is blocked and
    recorded, every console error kept."""

    def __init__(self, browser, path: Path, width: int = 1280, **options):
        self.page = browser.new_page(viewport={"width": width, "height": 900}, **options)
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else 0)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._offline)
        self.page.goto(path.as_uri(), wait_until="load")

    def _offline(self, route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def close(self) -> None:
        assert self.errors == []
        assert self.outside == []
        self.page.close()

    # the controls, as a reader uses them

    def rates(self) -> list[float]:
        return self.page.evaluate(
            "JSON.parse(document.getElementById('derive-try-data').textContent).rates"
        )

    def slide(self, selector: str, position: int) -> None:
        """Keyboard only: focus the slider, then → or ← as many times as needed."""
        slider = self.page.locator(selector)
        slider.focus()
        now = int(slider.input_value())
        key = "ArrowRight" if position > now else "ArrowLeft"
        for _ in range(abs(position - now)):
            self.page.keyboard.press(key)
        assert int(slider.input_value()) == position

    def choose(self, label: str) -> None:
        self.page.locator(".try-optimizer label", has_text=label).click()

    def type_into(self, selector: str, text: str) -> None:
        box = self.page.locator(selector)
        box.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(text)

    def start(self) -> list[str]:
        boxes = self.page.locator(".try-start input")
        return [boxes.nth(j).input_value() for j in range(boxes.count())]

    def shown_steps(self) -> dict[int, list[float]]:
        """The step table, every digit: t → [params..., L, gradient...]."""
        digits = self.page.locator("#derive-try-digits")
        if not digits.is_checked():
            digits.check()
        rows = self.page.evaluate(
            """[...document.querySelectorAll('#derive-try-table tbody tr')]
                 .map(r => [...r.cells].map(c => c.textContent))"""
        )
        return {int(row[0]): [shown_number(c) for c in row[1:]] for row in rows if row[0] != "…"}

    def behaviour(self) -> tuple[str, str]:
        word = self.page.locator("#derive-try-behaviour")
        return word.get_attribute("data-shape"), word.text_content()


def shown_number(text: str) -> float:
    """'−1.5', '1.25×10⁻⁵', '10⁻⁷', '∞' as the page typesets them, back to a float."""
    text = text.replace("−", "-")
    sup = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    if "∞" in text:
        return -math.inf if text.startswith("-") else math.inf
    match = re.fullmatch(r"(-?[\d.]+)×10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)|(-?)10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", text)
    if match and match.group(1):
        return float(f"{match.group(1)}e{match.group(2).translate(sup)}")
    if match:
        return float(f"{match.group(3)}1e{match.group(4).translate(sup)}")
    return float(text)


def descend_json(capsys, loss: list[str], settings: list[str]) -> dict:
    """`derive descend --json` for the lesson's loss and these settings."""
    capsys.readouterr()
    assert main(["descend", *loss, *settings, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def assert_same(shown: dict[int, list[float]], trace: dict) -> None:
    """Every row the page shows equals the JSON trace's step to 1e-12 relative."""
    names = trace["params"]
    assert max(shown) == len(trace["steps"]) - 1  # the last row is the last step
    for t, values in shown.items():
        step = trace["steps"][t]
        expected = [step["params"][n] for n in names] + [step["loss"]]
        expected += [step["grad"][n] for n in names]
        for got, want in zip(values, expected, strict=True):
            if want is None:  # not finite in the JSON
                assert not math.isfinite(got)
            else:
                assert abs(got - want) <= RELATIVE * abs(want), (t, got, want)


def bands(rates: list[float], largest: float) -> dict[str, float]:
    """Slider positions below 1/λ, between 1/λ and 2/λ, above 2/λ."""
    low, high = 1 / largest, 2 / largest
    pick = {
        "below": max(r for r in rates if r <= 0.6 * low),
        "between": min(rates, key=lambda r: abs(math.log(r / (1.5 * low)))),
        "above": min(rates, key=lambda r: abs(math.log(r / (2.4 * low)))),
    }
    assert pick["below"] < low < pick["between"] < high < pick["above"]
    return pick


EXPECTED_SHAPE = {"below": "monotone", "between": "overshoots", "above": "diverges"}


# -- the numbers the page shows are derive's ---------------------------------------------------


@browser_only
@pytest.mark.parametrize("name", list(LOSSES))
def test_slider_runs_equal_derive_descend(pages, browser, capsys, name):
    """η through the slider (keyboard) below, between and above the thresholds; the table's
    numbers equal the JSON trace's, and the behaviour word its shape."""
    path, arguments = pages[name]
    _, _, curvature, steps, quadratic = LOSSES[name]
    page = Page(browser, path)
    page.type_into("#derive-try-steps", str(steps))
    rates = page.rates()
    words = messages("en")["lesson"]["behaviour"]
    for band, rate in bands(rates, curvature()).items():
        page.slide("#derive-try-lr", rates.index(rate))
        assert page.page.locator("#derive-try-lr-value").input_value() == repr(rate)
        start = page.start()
        names = json.loads(
            page.page.evaluate("document.getElementById('derive-try-data').textContent")
        )["params"]
        init = ",".join(f"{n}={v}" for n, v in zip(names, start, strict=True))
        trace = descend_json(
            capsys, arguments, ["--init", init, "--lr", repr(rate), "--steps", str(steps)]
        )
        assert_same(page.shown_steps(), trace)
        shape, text = page.behaviour()
        assert shape == trace["behaviour"]["shape"], band
        assert text.startswith(words[shape] if shape != "cycle" else words["cycle"])
        if quadratic:  # for a quadratic loss the thresholds are exact
            assert shape == EXPECTED_SHAPE[band]
    page.close()


@browser_only
def test_momentum_and_a_dragged_start(pages, browser, capsys):
    """x² + 2y²: momentum 0.9 by the keyboard, the start dragged with the mouse."""
    path, arguments = pages["bowl"]
    page = Page(browser, path)
    page.choose("Momentum")
    page.slide("#derive-try-momentum", 90)
    rates = page.rates()
    page.slide("#derive-try-lr", rates.index(0.047))
    handle = page.page.locator("#derive-try-landscape .try-handle-dot").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.page.mouse.move(x, y)
    page.page.mouse.down()
    page.page.mouse.move(x - 80, y + 40, steps=5)
    page.page.mouse.up()
    start = page.start()
    assert start != ["4", "3"]  # it moved, to round values the plot snaps to
    trace = descend_json(
        capsys,
        arguments,
        ["--init", f"x={start[0]},y={start[1]}", "--lr", "0.047", "--momentum", "0.9"],
    )
    assert_same(page.shown_steps(), trace)
    assert page.behaviour()[0] == trace["behaviour"]["shape"]
    page.close()


NESTEROV = ["--momentum", "0.5", "--nesterov"]
ADAM = ["--optimizer", "adam", "--betas", "0.8,0.999"]


@browser_only
def test_nesterov_adam_and_a_typed_start(pages, browser, capsys):
    """Rosenbrock: Nesterov momentum 0.5 and Adam (β₁ 0.8) from a start typed in the boxes."""
    path, arguments = pages["rosenbrock"]
    page = Page(browser, path)
    page.type_into("#derive-try-start-0", "-1.2")
    page.type_into("#derive-try-start-1", "1.4")
    page.type_into("#derive-try-steps", "150")
    page.choose("Nesterov")
    page.slide("#derive-try-momentum", 50)
    rates = page.rates()
    page.slide("#derive-try-lr", rates.index(0.0001))
    trace = descend_json(
        capsys,
        arguments,
        ["--init", "x=-1.2,y=1.4", "--lr", "0.0001", "--steps", "150", *NESTEROV],
    )
    assert_same(page.shown_steps(), trace)
    assert page.behaviour()[0] == trace["behaviour"]["shape"]
    page.choose("Adam")
    page.slide("#derive-try-momentum", 80)
    page.type_into("#derive-try-lr-value", "0.05")
    trace = descend_json(
        capsys,
        arguments,
        ["--init", "x=-1.2,y=1.4", "--lr", "0.05", "--steps", "150", *ADAM],
    )
    assert_same(page.shown_steps(), trace)
    assert page.behaviour()[0] == trace["behaviour"]["shape"]
    page.close()


@browser_only
def test_the_run_api_returns_the_json_trace_steps(pages, browser, capsys):
    """window.deriveLesson.run(...) gives steps + 1 entries equal to the JSON trace's, and
    window.deriveLesson.behaviour(run) its shape, for each optimizer of the panel."""
    path, arguments = pages["mse"]
    page = Page(browser, path)
    settings = [
        ({"optimizer": "sgd", "lr": 0.3, "steps": 25}, ["--lr", "0.3", "--steps", "25"]),
        (
            {"optimizer": "sgd", "lr": 0.1, "momentum": 0.8, "nesterov": True, "steps": 30},
            ["--lr", "0.1", "--momentum", "0.8", "--nesterov", "--steps", "30"],
        ),
        (
            {"optimizer": "adam", "lr": 0.2, "betas": [0.7, 0.99], "steps": 30},
            ["--optimizer", "adam", "--lr", "0.2", "--betas", "0.7,0.99", "--steps", "30"],
        ),
    ]
    for options, flags in settings:
        options["start"] = {"w": 2.5, "b": -1}
        run = page.page.evaluate("(s) => window.deriveLesson.run(s)", options)
        word = page.page.evaluate("(r) => window.deriveLesson.behaviour(r)", run)
        trace = descend_json(capsys, arguments, ["--init", "w=2.5,b=-1", *flags])
        assert len(run) == options["steps"] + 1 == len(trace["steps"])
        for got, want in zip(run, trace["steps"], strict=True):
            assert got["t"] == want["t"]
            for name in ("w", "b"):
                assert got["params"][name] == pytest.approx(want["params"][name], rel=RELATIVE)
                assert got["grad"][name] == pytest.approx(want["grad"][name], rel=RELATIVE)
            assert got["loss"] == pytest.approx(want["loss"], rel=RELATIVE)
        assert word == trace["behaviour"]["shape"]
    page.close()


@browser_only
def test_plain_descent_by_hand(pages, browser):
    """(w−3)² at η = 0.3: the page's table against w ← w − η·2(w − 3), a loop written here."""
    path, _ = pages["w3"]
    page = Page(browser, path)
    page.slide("#derive-try-lr", page.rates().index(0.3))
    page.type_into("#derive-try-steps", "12")
    w, expected = 0.0, {}
    for t in range(13):
        expected[t] = [w, (w - 3) ** 2, 2 * (w - 3)]
        w = w - 0.3 * (2 * (w - 3))
    for t, values in page.shown_steps().items():
        assert values == pytest.approx(expected[t], rel=1e-15, abs=1e-15)
    page.close()


# -- the panel as a reader meets it ----------------------------------------------------------


@browser_only
def test_markers_at_one_and_two_over_lambda(pages, browser):
    """x² + 2y²: the Hessian is diag(2, 4), so the η slider is marked at 1/4 and 2/4, and the
    thumb can sit on each; 2/λ exactly makes the y-coordinate cycle."""
    path, _ = pages["bowl"]
    page = Page(browser, path)
    rates = page.rates()
    assert 0.25 in rates and 0.5 in rates
    marks = page.page.locator(".try-mark")
    assert marks.count() == 2
    assert [marks.nth(j).get_attribute("title") for j in range(2)] == [
        "1/λₘₐₓ = 0.25",
        "2/λₘₐₓ = 0.5",
    ]
    page.slide("#derive-try-lr", rates.index(0.5))
    assert page.behaviour()[0] == "cycle"
    assert "2/λₘₐₓ" in page.page.locator("#derive-try-where").text_content()
    page.close()


@browser_only
@pytest.mark.parametrize("language", ["zh", "en"])
def test_labels_phone_width_and_reduced_motion(tmp_path, browser, language):
    """The controls are labelled in the page's language, the panel fits a 390 px screen, and
    with reduced motion the path is drawn at once."""
    out = tmp_path / "lesson"
    arguments = ["--loss", "mean((theta0 + theta1*x - y)**2)", "--data", "x=1,2,3,4; y=2,3,5,4"]
    options = ["--lang", language, "--out", str(out), "--sections", "rates", "--interactive"]
    assert main(["lesson", *arguments, *options]) == 0
    path = out / f"lesson.{language}.html"
    words = messages(language)["interactive"]
    for width, motion in ((390, "reduce"), (1280, "no-preference")):
        page = Page(browser, path, width=width, reduced_motion=motion)
        labels = page.page.evaluate(
            """[...document.querySelectorAll('#derive-try input')]
                 .filter(i => i.type !== 'radio' && i.type !== 'checkbox')
                 .map(i => i.labels[0].textContent.trim())"""
        )
        expected = [words[k] for k in ("learning_rate", "learning_rate_value", "momentum")]
        assert labels[:3] == expected
        assert labels[3:5] == ["θ₀", "θ₁"] and labels[5] == words["steps"]
        # nothing of the panel reaches past the screen (its table scrolls inside its own box)
        wider = page.page.evaluate(
            """(width) => [...document.querySelectorAll('#derive-try *')]
                 .filter(e => !e.closest('.try-table') && e.getBoundingClientRect().right > width)
                 .map(e => e.tagName + '#' + e.id)""",
            width,
        )
        assert wider == []
        page.page.locator("#derive-try").scroll_into_view_if_needed()
        page.slide("#derive-try-lr", page.rates().index(0.1))
        page.page.locator("#derive-try-lr").dispatch_event("change")
        animation = page.page.evaluate(
            "getComputedStyle(document.querySelector('#derive-try-landscape .try-path'))"
            ".animationName"
        )
        assert animation == ("none" if motion == "reduce" else "try-draw")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.page.locator("#derive-try").screenshot(
            path=str(SCREENSHOTS / f"interactive.{language}.{width}.png")
        )
        page.close()


@browser_only
def test_page_size_with_the_panel(pages, capsys):
    """The panel of a 2-parameter lesson over 100 rows of data: its share of the page."""
    path, _ = pages["mse"]
    text = path.read_text(encoding="utf-8")
    start = text.index('<section id="derive-try"')
    panel = len(text[start : text.index("</section>", start)].encode())
    figures = sum(len(m) for m in re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", text))
    with capsys.disabled():
        print(f"\npage {len(text.encode())} bytes: panel {panel}, figures {figures}")
    assert panel < 100_000


# -- without a browser ---------------------------------------------------------------------------


def test_without_the_flag_there_is_no_panel(tmp_path):
    out = tmp_path / "plain"
    assert main(["lesson", "--loss", "(w-3)**2", "--lang", "en", "--out", str(out)]) == 0
    assert "derive-try" not in (out / "lesson.en.html").read_text(encoding="utf-8")


def test_two_builds_with_the_panel_are_byte_identical(tmp_path):
    arguments = ["lesson", "--loss", "x**2 + 2*y**2", "--lang", "zh", "--sections", "rates"]
    pages = []
    for name in ("a", "b"):
        assert main([*arguments, "--interactive", "--out", str(tmp_path / name)]) == 0
        pages.append((tmp_path / name / "lesson.zh.html").read_bytes())
    assert pages[0] == pages[1]
    assert b'id="derive-try"' in pages[0]


def test_the_page_data_cannot_close_its_script(tmp_path):
    """A title or name is never markup: `<` inside the JSON is written as \\u003c."""
    from derive.show.interactive import _script_json

    assert "</script>" not in _script_json({"after": "</script><script>alert(1)</script>"})


def test_every_panel_word_is_used():
    used = "".join(
        p.read_text(encoding="utf-8")
        for p in (
            PACKAGE / "show" / "interactive.py",
            PACKAGE / "show" / "static" / "panel.js",
            PACKAGE / "show" / "templates" / "_interactive.html.j2",
        )
    )
    unused = [key for key in messages("en")["interactive"] if key not in used]
    assert unused == []


def test_course_key_interactive(tmp_path, capsys):
    spec = tmp_path / "course.toml"
    spec.write_text(
        'title = "c"\nlanguages = ["en"]\n[[lessons]]\ntitle = "bowl"\nloss = "w**2"\n'
        'sections = ["rates"]\ninteractive = true\n'
        '[[lessons]]\ntitle = "bad"\nloss = "w**2"\ninteractive = "yes"\n'
    )
    assert main(["course", str(spec), "--jobs", "1", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "interactive must be true or false" in err
    page = (tmp_path / "out" / "bowl" / "lesson.en.html").read_text(encoding="utf-8")
    assert 'id="derive-try"' in page


def test_too_many_rows_for_the_browser(tmp_path, capsys):
    """Past 10,000 rows the page would sum too much at every step: one line, exit 2, no files."""
    rows = "".join(f"{k / 10_000!r},{2 * k / 10_000!r}\n" for k in range(10_001))
    (tmp_path / "big.csv").write_text("x,y\n" + rows)
    out = tmp_path / "big"
    arguments = ["--loss", "mean((w*x - y)**2)", "--data", str(tmp_path / "big.csv")]
    capsys.readouterr()
    code = main(["lesson", *arguments, "--lang", "en", "--sections", "rates", "--out", str(out)])
    assert code == 0  # without the panel the lesson is built
    code = main(
        ["lesson", *arguments, "--lang", "en", "--out", str(tmp_path / "b"), "--interactive"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "10000 rows" in err[0] and "10001" in err[0]
    assert not (tmp_path / "b").exists()


def test_the_steps_box_starts_at_most_at_its_limit(tmp_path):
    """A lesson of 1500 steps: the panel starts at 1000, its box's largest value."""
    out = tmp_path / "long"
    arguments = ["lesson", "--loss", "(w-3)**2", "--steps", "1500", "--lr", "0.001"]
    assert (
        main(
            [*arguments, "--lang", "en", "--sections", "rates", "--out", str(out), "--interactive"]
        )
        == 0
    )
    text = (out / "lesson.en.html").read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="derive-try-data">(.*?)</script>', text)
    document = json.loads(match.group(1))
    assert document["steps"] == document["maxSteps"] == 1000
