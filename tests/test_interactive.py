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
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.app.cli import main
from derive.core import facts
from derive.show.catalog import messages
from derive.show.interactive import functions_script
from tests.conftest import CHROMIUM

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


def outlier_rows() -> tuple[np.ndarray, np.ndarray]:
    """The noisy line with five outliers: what Huber's loss is for."""
    x, y = mse_rows()
    return x, y + np.where(np.arange(len(x)) < 5, 4.0, 0.0)


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
        """Keyboard only: focus the slider, then Page Up or Down while they do not pass the
        position (Chromium moves a tenth of the range), then → or ← as many times as needed."""
        slider = self.page.locator(selector)
        slider.focus()
        now, page = int(slider.input_value()), 10
        while abs(position - now) >= page:
            self.page.keyboard.press("PageUp" if position > now else "PageDown")
            now, before = int(slider.input_value()), now
            page = max(page, abs(now - before))
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


# -- the printed functions on a blank page: every function of the grammar ---------------------
#
# No lesson is built here (a lesson over data takes ten seconds): the loss's JavaScript is
# printed from its derivation and run beside descent.js on an empty page of the same browser.


@pytest.fixture(scope="module")
def sandbox(browser):
    """An empty page holding descent.js, offline: the panel's numerics without a lesson."""
    page = browser.new_page()
    page.route("**/*", lambda route: route.abort())
    page.set_content("<!doctype html><title>derive</title>")
    page.add_script_tag(content=(PACKAGE / "show" / "static" / "descent.js").read_text("utf-8"))
    yield page
    page.close()


def load_functions(sandbox, derivation) -> None:
    """The loss, gradient and Hessian as the page would embed them."""
    sandbox.add_script_tag(content=functions_script(derivation))


EVALUATE = """([points, columns]) => {
  const { py, np } = window.deriveDescent.runtime;
  const f = window.deriveLessonFunctions(py, np);
  const extra = columns.length
    ? [...columns.map((c) => Float64Array.from(c)), columns[0].length] : [];
  return points.map((p) => ({
    array: f.array(...p, ...extra).map(Number),
    hessian: f.hessian(...p, ...extra).map((row) => row.map(Number)),
    scalar: f.scalar ? f.scalar(...p) : null,
  }));
}"""


def sech2(u: float) -> float:
    return 1 / math.cosh(u) ** 2


def sigma(u: float) -> float:
    return 1 / (1 + math.exp(-u))


def huber(u: float, delta: float) -> float:
    return 0.5 * u * u if abs(u) <= delta else delta * (abs(u) - 0.5 * delta)


def max_shares(*values: float) -> list[float]:
    """∂max/∂each argument as torch's amax takes it: ties share the gradient evenly."""
    top = max(values)
    ties = sum(v == top for v in values)
    return [1 / ties if v == top else 0.0 for v in values]


def softmax_loss(w: float, b: float) -> tuple[float, list[float], list[list[float]]]:
    """−log softmax₁(w, b, 0) + 0.1(w² + b²): L = logsumexp − w, ∇ = s − e₁, H = diag(s) − ssᵀ."""
    top = max(w, b, 0.0)
    total = math.exp(w - top) + math.exp(b - top) + math.exp(-top)
    lse = top + math.log(total)
    s1, s2 = math.exp(w - lse), math.exp(b - lse)
    loss = lse - w + 0.1 * (w * w + b * b)
    hessian = [[s1 * (1 - s1) + 0.2, -s1 * s2], [-s1 * s2, s2 * (1 - s2) + 0.2]]
    return loss, [s1 - 1 + 0.2 * w, s2 + 0.2 * b], hessian


def max_of_three(w: float, b: float):
    """max(w, 2w − 1, b)² + (b − 1)²; the Hessian with δ taken as 0 (away from ties)."""
    m = max(w, 2 * w - 1, b)
    s = max_shares(w, 2 * w - 1, b)
    dw, db = s[0] + 2 * s[1], s[2]
    hessian = [[2 * dw * dw, 2 * dw * db], [2 * dw * db, 2 * db * db + 2]]
    return m * m + (b - 1) ** 2, [2 * m * dw, 2 * m * db + 2 * (b - 1)], hessian


def min_of_two(w: float, b: float):
    """min(w, b)² + w²: ∂min/∂w is 1, ½ at a tie, 0."""
    m = min(w, b)
    dw, db = max_shares(-w, -b)
    hessian = [[2 * dw * dw + 2, 2 * dw * db], [2 * dw * db, 2 * db * db]]
    return m * m + w * w, [2 * m * dw + 2 * w, 2 * m * db], hessian


def trigonometric(w: float, b: float):
    """sec w + csc b + cot(w + b)."""
    u = w + b
    csc2u = 1 / math.sin(u) ** 2
    both = 2 * csc2u * math.cos(u) / math.sin(u)
    sec, csc = 1 / math.cos(w), 1 / math.sin(b)
    loss = sec + csc + math.cos(u) / math.sin(u)
    gradient = [sec * math.tan(w) - csc2u, -csc * math.cos(b) / math.sin(b) - csc2u]
    hessian = [
        [sec * (math.tan(w) ** 2 + sec**2) + both, both],
        [both, csc * (1 / math.tan(b) ** 2 + csc**2) + both],
    ]
    return loss, gradient, hessian


def inverse(w: float, b: float):
    """asin(w/2) + acos(b/3) + acosh(w² + 2) + atanh(b/4)."""
    loss = math.asin(w / 2) + math.acos(b / 3) + math.acosh(w * w + 2) + math.atanh(b / 4)
    gradient = [
        0.5 / math.sqrt(1 - w * w / 4) + 2 * w / math.sqrt((w * w + 2) ** 2 - 1),
        -1 / (3 * math.sqrt(1 - b * b / 9)) + 0.25 / (1 - b * b / 16),
    ]
    return loss, gradient, None


def logarithms(w: float, b: float):
    """asinh w + atan b + ∛(w² + 1) + log₂(b² + 1) + expm1(w/4) + log1p(b²) + log₁₀(w² + 2)."""
    loss = (
        math.asinh(w)
        + math.atan(b)
        + math.cbrt(w * w + 1)
        + math.log2(b * b + 1)
        + math.expm1(w / 4)
        + math.log1p(b * b)
        + math.log10(w * w + 2)
    )
    gradient = [
        1 / math.sqrt(w * w + 1)
        + 2 * w / (3 * math.cbrt(w * w + 1) ** 2)
        + math.exp(w / 4) / 4
        + 2 * w / ((w * w + 2) * math.log(10)),
        1 / (1 + b * b) + 2 * b / ((b * b + 1) * math.log(2)) + 2 * b / (1 + b * b),
    ]
    return loss, gradient, None


def hyperbolic(w: float, b: float):
    """sinh w + cosh b + tanh(wb) + σ(w) + softplus(b)."""
    loss = math.sinh(w) + math.cosh(b) + math.tanh(w * b) + sigma(w) + math.log1p(math.exp(b))
    gradient = [
        math.cosh(w) + b * sech2(w * b) + sigma(w) * (1 - sigma(w)),
        math.sinh(b) + w * sech2(w * b) + sigma(b),
    ]
    return loss, gradient, None


# name: (the loss, the points, the closed form (loss, gradient, Hessian or None) at a point);
# kinks included: relu'(0) = 0, leaky_relu'(0) = the slope, |u|'(0) = 0, ties of max and min
# shared evenly, where(...) at its boundary takes the else branch, huber at |u| = δ
CLOSED_FORMS = {
    "relu": (
        "relu(w - 1) + 0.5*w**2",
        [(-1.5,), (1.0,), (2.25,)],
        lambda w: (max(w - 1, 0) + 0.5 * w * w, [(w > 1) + w], [[1.0]]),
    ),
    "leaky_relu": (
        "leaky_relu(w, 0.1) + w**2",
        [(-1.0,), (0.0,), (0.7,)],
        lambda w: ((w if w > 0 else 0.1 * w) + w * w, [(1 if w > 0 else 0.1) + 2 * w], [[2.0]]),
    ),
    "max": (
        "max(w, 2*w - 1, b)**2 + (b - 1)**2",
        [(2, 3), (1, 1), (0.5, -2), (3, 0.5)],
        max_of_three,
    ),
    "min": ("min(w, b)**2 + w**2", [(1, 2), (1.5, 1.5), (2, -1)], min_of_two),
    "where": (
        "where(w > 1, (w - 1)**2, 1 - w) + w**2/10",
        [(3.0,), (1.0,), (-0.5,)],
        lambda w: (
            ((w - 1) ** 2 if w > 1 else 1 - w) + w * w / 10,
            [(2 * (w - 1) if w > 1 else -1) + w / 5],
            [[(2 if w > 1 else 0) + 0.2]],
        ),
    ),
    "huber": (
        "huber(w - 1) + huber(b, 0.5)",
        [(1.5, 0.25), (2.0, 0.5), (-3.0, -2.0)],
        lambda w, b: (
            huber(w - 1, 1) + huber(b, 0.5),
            [min(max(w - 1, -1), 1), min(max(b, -0.5), 0.5)],
            [[float(abs(w - 1) <= 1), 0.0], [0.0, float(abs(b) <= 0.5)]],
        ),
    ),
    "softmax": (
        "-log(softmax(1, w, b, 0)) + 0.1*(w**2 + b**2)",
        [(-1, 2), (30, -40), (800, 0)],
        softmax_loss,
    ),
    "abs": (
        "abs(w - 1) + b**2",
        [(1, 0), (0.5, 1), (3, -2)],
        lambda w, b: (abs(w - 1) + b * b, [(w > 1) - (w < 1), 2 * b], [[0.0, 0.0], [0.0, 2.0]]),
    ),
    "trigonometric": ("sec(w) + csc(b) + cot(w + b)", [(0.3, 1.1), (-0.7, 2.0)], trigonometric),
    "inverse": (
        "asin(w/2) + acos(b/3) + acosh(w**2 + 2) + atanh(b/4)",
        [(0.5, -1.2), (-1.5, 2.5)],
        inverse,
    ),
    "logarithms": (
        "asinh(w) + atan(b) + cbrt(w**2 + 1) + log2(b**2 + 1) + expm1(w/4) + log1p(b**2)"
        " + log10(w**2 + 2)",
        [(0.5, -1.2), (-3.0, 2.0)],
        logarithms,
    ),
    "hyperbolic": (
        "sinh(w) + cosh(b) + tanh(w*b) + sigmoid(w) + softplus(b)",
        [(0.5, -1.2), (-2.0, 1.5)],
        hyperbolic,
    ),
}
AT_A_KINK = {("max", (1, 1)), ("min", (1.5, 1.5)), ("huber", (2.0, 0.5))}  # no Hessian there


@browser_only
@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_printed_functions_against_closed_forms(sandbox, name):
    """The loss and gradient on Python's floats (plain descent) and on NumPy's arrays, and the
    Hessian, as the page computes them, against the closed forms written above, at points on
    and off the kinks; softmax at logits of 800 stays finite."""
    text, points, closed = CLOSED_FORMS[name]
    load_functions(sandbox, derive.differentiate(text))
    values = sandbox.evaluate(EVALUATE, [[list(map(float, p)) for p in points], []])
    for point, got in zip(points, values, strict=True):
        loss, gradient, hessian = closed(*map(float, point))
        expected = [loss, *gradient]
        assert got["scalar"] == pytest.approx(expected, rel=1e-12, abs=1e-14), point
        assert got["array"] == pytest.approx(expected, rel=1e-12, abs=1e-14), point
        if hessian is not None and (name, point) not in AT_A_KINK:
            for row, want in zip(got["hessian"], hessian, strict=True):
                assert row == pytest.approx(want, rel=1e-12, abs=1e-14), point


@browser_only
def test_printed_functions_over_data(sandbox):
    """Huber's loss and a leaky relu over 100 rows: Σ over the rows as NumPy sums them,
    against NumPy here."""
    x, y = outlier_rows()
    for text, closed in (
        ("mean(huber(w*x + b - y, 1))", huber_over_rows),
        ("mean(leaky_relu(w*x + b - y, 0.2)**2)", leaky_over_rows),
    ):
        load_functions(sandbox, derive.differentiate(text, {"x": x, "y": y}))
        points = [[0.0, 0.0], [1.5, 0.7], [2.0, 1.0]]
        values = sandbox.evaluate(EVALUATE, [points, [x.tolist(), y.tolist()]])
        for (w, b), got in zip(points, values, strict=True):
            loss, gradient, hessian = closed(w, b, x, y)
            assert got["scalar"] is None  # over data the descent runs on arrays only
            assert got["array"] == pytest.approx([loss, *gradient], rel=1e-12, abs=1e-15)
            for row, want in zip(got["hessian"], hessian, strict=True):
                assert row == pytest.approx(want, rel=1e-12, abs=1e-15)


def huber_over_rows(w, b, x, y):
    """mean huber(r): its gradient the mean of r clipped to [−1, 1] (times x for w)."""
    r = w * x + b - y
    inside = np.abs(r) <= 1
    clipped = np.clip(r, -1, 1)
    loss = np.mean(np.where(inside, r * r / 2, np.abs(r) - 0.5))
    share = [np.mean(inside * x * x), np.mean(inside * x), np.mean(inside * 1.0)]
    hessian = [[share[0], share[1]], [share[1], share[2]]]
    return loss, [np.mean(clipped * x), np.mean(clipped)], hessian


def leaky_over_rows(w, b, x, y):
    """mean leaky(r)²: 2 leaky(r) leaky'(r), leaky'(r) = 1 or 0.2."""
    r = w * x + b - y
    slope = np.where(r > 0, 1.0, 0.2)
    value = slope * r
    g = 2 * value * slope
    h = 2 * slope * slope
    hessian = [[np.mean(h * x * x), np.mean(h * x)], [np.mean(h * x), np.mean(h)]]
    return np.mean(value**2), [np.mean(g * x), np.mean(g)], hessian


@browser_only
def test_hessian_by_differences_past_its_size(sandbox):
    """sin nested 18 deep: the gradient is past 300 operations, so the Hessian comes from
    central differences of the gradient, as derive's does; against the chain rule by hand."""
    depth = 18
    text = "sin(" * depth + "w + b/2" + ")" * depth + " + w*b"
    script = functions_script(derive.differentiate(text))
    assert "np.differenced(array, 2)" in script
    load_functions(sandbox, derive.differentiate(text))
    points = [[0.4, 0.6], [-1.1, 2.3]]
    for (w, b), got in zip(points, sandbox.evaluate(EVALUATE, [points, []]), strict=True):
        f, d1, d2 = w + b / 2, 1.0, 0.0  # f(u) = sin∘…∘sin(u) with f′ and f″, by the chain rule
        for _ in range(depth):
            f, d1, d2 = math.sin(f), math.cos(f) * d1, -math.sin(f) * d1 * d1 + math.cos(f) * d2
        assert got["array"] == pytest.approx([f + w * b, d1 + b, d1 / 2 + w], rel=1e-12)
        expected = [[d2, d2 / 2 + 1], [d2 / 2 + 1, d2 / 4]]
        for row, want in zip(got["hessian"], expected, strict=True):
            assert row == pytest.approx(want, rel=1e-7, abs=1e-9)


RUN = """([problem, settings]) => {
  const { py, np } = window.deriveDescent.runtime;
  problem.functions = window.deriveLessonFunctions(py, np);
  const entries = window.deriveDescent.run(problem, settings);
  const facts = window.deriveDescent.facts(problem, entries);
  return { entries: entries.map((e) => [...e.params, e.loss, ...e.grad]), shape: facts.shape };
}"""


def sandbox_run(sandbox, derivation, data, start, settings, shape=None) -> tuple[list, str]:
    """The page's run from `start` and its behaviour word, measured against `shape` (the
    landscape the page would embed)."""
    load_functions(sandbox, derivation)
    columns = [np.asarray(data[name], dtype=float).tolist() for name in derivation.loss.data]
    landscape = {"points": [], "minimum": "none_found", "quadratic": False}
    if shape is not None:
        points = [
            {
                "values": list(p.values),
                "kind": p.kind.value,
                "loss": p.loss,
                "curvature": list(p.curvature),
            }
            for p in shape.points
        ]
        landscape = {"points": points, "minimum": shape.minimum.value, "quadratic": shape.quadratic}
    problem = {
        "params": list(derivation.loss.params),
        "start": [start[name] for name in derivation.loss.params],
        "steps": settings["steps"],
        "scalar": not derivation.loss.data,
        "columns": columns,
        "landscape": landscape,
    }
    result = sandbox.evaluate(RUN, [problem, settings])
    return result["entries"], result["shape"]


# settings of the page's run, and the same as derive.descend's options
PLAIN_03 = ({"optimizer": "sgd", "lr": 0.3}, {"lr": 0.3})
MOMENTUM_06 = ({"optimizer": "sgd", "lr": 0.1, "momentum": 0.6}, {"lr": 0.1, "momentum": 0.6})
NESTEROV_09 = (
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"lr": 0.05, "momentum": 0.9, "nesterov": True},
)
ADAM_08 = (
    {"optimizer": "adam", "lr": 0.2, "betas": [0.8, 0.999]},
    {"optimizer": "adam", "lr": 0.2, "betas": (0.8, 0.999)},
)

# name: (the loss, its start, two settings each: every optimizer of the panel twice in all).
# Losses whose landscape takes well under a second: the search has a wall-clock budget, which
# relu's (2–3 s here) runs out of on a busy machine (relu is checked by hand below).
NEWER = {
    "leaky_relu": (
        "leaky_relu(w - 1, 0.1)**2 + b**2",
        {"w": -2.0, "b": 1.0},
        (PLAIN_03, MOMENTUM_06),
    ),
    "max": ("(max(w, b) - 1)**2 + (w - b)**2", {"w": 2.0, "b": -1.0}, (PLAIN_03, NESTEROV_09)),
    "where": ("where(w > 1, (w - 1)**2, 1 - w) + w**2/10", {"w": 3.0}, (MOMENTUM_06, ADAM_08)),
    "softmax": ("-log(softmax(1, w, 0)) + 0.1*w**2", {"w": -1.0}, (NESTEROV_09, ADAM_08)),
    "huber": ("mean(huber(w*x + b - y, 1))", {"w": 0.0, "b": 0.0}, (PLAIN_03, ADAM_08)),
}


@browser_only
@pytest.mark.parametrize("name", list(NEWER))
def test_newer_losses_run_as_derive_descends(sandbox, name):
    """A leaky relu, max, where, softmax, Huber's loss over data: the page's runs equal
    derive's to 1e-12, and its word is derive's facts stage's for the same landscape (the
    one the page would embed, computed once here)."""
    text, start, settings = NEWER[name]
    x, y = outlier_rows()
    data = {"x": x, "y": y} if "mean" in text else {}
    derivation = derive.differentiate(text, data)
    shape = derive.stationary_points(derivation, data)
    for page_settings, options in settings:
        trace = derive.descend(derivation, start, steps=25, data=data, **options)
        entries, word = sandbox_run(
            sandbox, derivation, data, start, {**page_settings, "steps": 25}, shape
        )
        expected = np.hstack([trace.params, trace.loss[:, None], trace.grad])
        assert len(entries) == len(expected) == 26
        for got, want in zip(entries, expected, strict=True):
            assert got == pytest.approx(want.tolist(), rel=RELATIVE, abs=1e-300)
        setting = facts.problem(
            derivation,
            shape,
            data,
            tuple(start.values()),
            float(trace.loss[0]),
            float(np.linalg.norm(trace.grad[0])),
        )
        assert word == facts.behaviour(trace, setting).shape.value, page_settings


@browser_only
def test_huber_and_relu_by_hand(sandbox):
    """Plain descent at η = 0.3 against loops written here: Huber's gradient is the residual
    clipped to [−1, 1]; relu's derivative is 0 at and below its kink (on Python's floats)."""
    x, y = outlier_rows()
    w = b = 0.0
    expected = []
    for _ in range(26):
        r = w * x + b - y
        loss = np.mean(np.where(np.abs(r) <= 1, r * r / 2, np.abs(r) - 0.5))
        clipped = np.clip(r, -1, 1)
        expected.append([w, b, loss, np.mean(clipped * x), np.mean(clipped)])
        w, b = w - 0.3 * expected[-1][3], b - 0.3 * expected[-1][4]
    derivation = derive.differentiate("mean(huber(w*x + b - y, 1))", {"x": x, "y": y})
    settings = {"optimizer": "sgd", "lr": 0.3, "steps": 25}
    entries, _ = sandbox_run(sandbox, derivation, {"x": x, "y": y}, {"w": 0, "b": 0}, settings)
    for got, want in zip(entries, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)

    w, expected = 4.0, []
    for _ in range(26):
        slope = 2 * max(w - 1, 0) - 2 * max(-w - 2, 0) + 0.5 * w
        expected.append([w, max(w - 1, 0) ** 2 + max(-w - 2, 0) ** 2 + 0.25 * w * w, slope])
        w = w - 0.3 * slope
    derivation = derive.differentiate("relu(w - 1)**2 + relu(-w - 2)**2 + 0.25*w**2")
    entries, _ = sandbox_run(sandbox, derivation, {}, {"w": 4}, settings)
    for got, want in zip(entries, expected, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


# -- the panel opens on the lesson's own optimizer ------------------------------------------


@browser_only
@pytest.mark.parametrize(
    "loss, flags, radio, slider",
    [
        (
            ["--loss", "leaky_relu(x - 1, 0.1)**2 + lam*y**2", "--const", "lam=2"],
            ["--optimizer", "adam", "--lr", "0.05", "--betas", "0.8,0.999"],
            "adam",
            80,
        ),
        (["--loss", "huber(x - 1) + 2*y**2"], ["--momentum", "0.5", "--nesterov"], "nesterov", 50),
    ],
)
def test_the_panel_starts_at_the_lessons_optimizer(
    tmp_path, browser, capsys, loss, flags, radio, slider
):
    """A lesson run with Adam (or Nesterov momentum): the panel opens on that optimizer with the
    lesson's β₁ (momentum) and η, and its table is the lesson's run; then η typed in its box."""
    out = tmp_path / "lesson"
    arguments = [*loss, "--init", "x=4,y=3"]
    options = ["--lang", "en", "--out", str(out), "--sections", "rates", "--interactive"]
    assert main(["lesson", *arguments, *flags, *options]) == 0
    page = Page(browser, out / "lesson.en.html")
    checked = page.page.locator('input[name="derive-try-optimizer"]:checked')
    assert checked.get_attribute("value") == radio
    assert int(page.page.locator("#derive-try-momentum").input_value()) == slider
    trace = descend_json(capsys, arguments, flags)
    assert_same(page.shown_steps(), trace)
    assert page.behaviour()[0] == trace["behaviour"]["shape"]
    page.type_into("#derive-try-lr-value", "0.3")
    trace = descend_json(capsys, arguments, [*flags, "--lr", "0.3"])
    assert_same(page.shown_steps(), trace)
    assert page.behaviour()[0] == trace["behaviour"]["shape"]
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


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    """One lesson over four rows with θ₀, θ₁ (subscripted names), in both languages."""
    out = tmp_path_factory.mktemp("bilingual") / "lesson"
    arguments = ["--loss", "mean((theta0 + theta1*x - y)**2)", "--data", "x=1,2,3,4; y=2,3,5,4"]
    options = ["--lang", "all", "--out", str(out), "--sections", "rates", "--interactive"]
    assert main(["lesson", *arguments, *options]) == 0
    return out


@browser_only
@pytest.mark.parametrize("language", ["zh", "en"])
def test_labels_phone_width_and_reduced_motion(bilingual, browser, language):
    """The controls are labelled in the page's language, the panel fits a 390 px screen, and
    with reduced motion the path is drawn at once."""
    path = bilingual / f"lesson.{language}.html"
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
    arguments = ["lesson", "--loss", "(w-3)**2", "--lang", "en", "--sections", "rates"]
    assert main([*arguments, "--out", str(out)]) == 0
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
        '[[lessons]]\ntitle = "rms"\nloss = "w**2"\noptimizer = "rmsprop"\ninteractive = true\n'
    )
    assert main(["course", str(spec), "--jobs", "1", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "interactive must be true or false" in err
    assert "this lesson uses rmsprop" in err
    page = (tmp_path / "out" / "bowl" / "bowl.en.html").read_text(encoding="utf-8")
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


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--loss", "erf(w - 1)**2"], "erf"),
        (["--loss", "(w-3)**2", "--optimizer", "rmsprop"], "uses rmsprop"),
        (["--loss", "(w-3)**2", "--schedule", "cosine:T_max=10"], "schedule"),
        (["--loss", "(w-3)**2", "--optimizer", "adam", "--betas", "0.9,0.99"], "betas=(0.9, 0.99)"),
        (["--loss", "(w-3)**2", "--weight-decay", "0.1"], "weight_decay=0.1"),
    ],
)
def test_what_the_panel_cannot_run_is_refused(tmp_path, capsys, flags, named):
    """A function JavaScript lacks, an optimizer, schedule or option the panel does not offer:
    one line naming it, exit 2, nothing written (never a panel that runs something else)."""
    out = tmp_path / "lesson"
    capsys.readouterr()
    assert main(["lesson", *flags, "--lang", "en", "--out", str(out), "--interactive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--interactive" in err[0] and named in err[0]
    assert not out.exists()
