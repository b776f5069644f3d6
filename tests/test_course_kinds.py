"""Courses with backpropagation lessons, lessons with other optimizers and schedules, and users'
titles that stay text in the index (no script, no link, no math of theirs)."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import yaml

from derive.app.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

SPEC = """title = "Kinds"
languages = ["en"]

[[lessons]]
title = "Logistic regression, node by node"
slug = "logistic-backprop"
kind = "backprop"
loss = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
data = { x = [-2, -1, 1, 3], y = [0, 0, 1, 1] }
at = { w = 0.5, b = -0.25 }
row = 2

[[lessons]]
title = "Adam on a parabola"
slug = "adam"
loss = "(w-3)**2"
optimizer = "adam"
lr = 0.5
options = { betas = [0.8, 0.99] }
sections = ["update", "table"]

[[lessons]]
title = "|w − 1| with a decaying rate"
slug = "decay"
loss = "abs(w-1)"
lr = 0.3
steps = 30
schedule = "inverse_time:k=0.5"
sections = ["schedule"]

[[lessons]]
title = "P $\\\\text{<script>document.title='PWNED'</script>}$"
slug = "script"
loss = "w**2"
sections = ["table"]

[[lessons]]
title = "L2](http://127.0.0.1:9/phish) [x"
slug = "phish"
loss = "w**2"
sections = ["table"]
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kinds")
    spec = folder / "course.toml"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["course", str(spec), "--out", str(folder / "out"), "--jobs", "1"]) == 0
    return folder / "out"


def test_a_backprop_entry_writes_the_backprop_lesson_and_the_index_links_it(course):
    md = (course / "logistic-backprop" / "logistic-backprop.en.md").read_text()
    # row 2: x = −1, y = 0 at w = 0.5, b = −0.25: z = −0.75, ∂L/∂w = σ(z)·x by hand
    sigma = 1 / (1 + math.exp(0.75))
    assert "row 2 of the data" in md
    assert f"{sigma * -1:.6g}" in md.replace("−", "-")
    # a page of the course like the others: Docusaurus's front matter, in the spec's order
    head, body = md.removeprefix("---\n").split("\n---\n", 1)
    matter = yaml.safe_load(head)
    assert set(matter) == {"title", "description", "keywords", "sidebar_position"}
    assert matter["sidebar_position"] == 1 and "backpropagation" in matter["keywords"]
    assert body.lstrip("\n").startswith(f"# {matter['title']}\n")
    index = (course / "index.en.md").read_text()
    assert "(logistic-backprop/logistic-backprop.en.md)" in index
    assert "logistic-backprop/logistic-backprop.en.html" in (course / "index.en.html").read_text()


def test_an_adam_entry_shows_adams_state_by_hand(course):
    md = (course / "adam" / "adam.en.md").read_text()
    assert "torch.optim.Adam" in md and "betas=(0.8, 0.99)" in md
    # the first step from w = 0: g = −6, m = 0.2·(−6), v = 0.01·36, m̂ = −6, v̂ = 36
    g = -6.0
    m, v = 0.2 * g, 0.01 * g * g
    m_hat, v_hat = m / 0.2, v / 0.01
    w1 = 0 - 0.5 * m_hat / (math.sqrt(v_hat) + 1e-8)
    row = next(line for line in md.splitlines() if line.startswith("| 0 |"))
    cells = [c.strip().replace("−", "-") for c in row.strip("|").split("|")]
    assert [float(c) for c in cells[4:9]] == pytest.approx([m, v, m_hat, v_hat, w1], rel=1e-6)


def test_a_scheduled_entry_compares_with_the_constant_rate(course):
    md = (course / "decay" / "decay.en.md").read_text()
    # by hand: a constant step of 0.3 on |w − 1| from 0 ends in a 2-cycle (0.9, 1.2)
    w, seen = 0.0, []
    for _ in range(30):
        w -= 0.3 * (1 if w > 1 else -1 if w < 1 else 0)
        seen.append(round(w, 12))
    assert seen[-1] == seen[-3] != seen[-2]
    assert "At the constant rate $\\eta = 0.3$, from the same start: cycles with period 2" in md
    # η_t = 0.3/(1 + 0.5 t): the rates of the first updates
    rates = re.findall(r"^\| (\d+) \| ([0-9.]+) \|$", md, re.M)
    for step, rate in rates:
        assert float(rate) == pytest.approx(0.3 / (1 + 0.5 * int(step)), rel=1e-5)


def test_titles_are_text_in_the_index(course):
    md = (course / "index.en.md").read_text()
    html = (course / "index.en.html").read_text()
    assert html.count("<script>") == 1  # derive's own copy handler; the title's is text
    assert all("127.0.0.1" not in h for h in re.findall(r'href="([^"]*)"', html))
    assert 'href="http' not in html and "<math" not in html.split("<main>")[1]
    assert "\\$" in md and "\\[" in md  # the title's marks escaped, not interpreted


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_no_script_runs_in_the_course_index(course):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto((course / "index.en.html").as_uri(), wait_until="load")
        assert page.title() == "Kinds"
        assert page.locator("script").count() == 1  # derive's own copy handler, nothing else
        links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        assert all(not h.startswith(("http", "//", "javascript")) for h in links)
        assert all(u.startswith(("file:", "data:")) for u in requests)
        browser.close()


def test_a_lesson_with_a_composed_loss_has_a_backprop_section(tmp_path):
    out = tmp_path / "bp"
    loss = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
    args = ["lesson", "--loss", loss, "--data", "x=-2,-1,1,3; y=0,0,1,1"]
    assert main([*args, "--lang", "en", "--sections", "backprop", "--out", str(out)]) == 0
    md = (out / "lesson.en.md").read_text()
    assert "## 1. Backpropagation: the gradient node by node" in md
    assert "### Each parameter's gradient, checked" in md
    plain = tmp_path / "plain"
    assert main(["lesson", "--loss", "(w-3)**2", "--lang", "en", "--out", str(plain)]) == 0
    assert "Backpropagation" not in (plain / "lesson.en.md").read_text()  # w − 3, squared: no chain
