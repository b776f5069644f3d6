"""One Markdown that every reader renders whole (issue 13): over the 15 lessons of the seeds course
and three more (|u|, a saddle, Rosenbrock), and a backpropagation lesson, derive's HTML and MyST (as
Jupyter Book renders it, with myst-parser) see every section the Markdown has, leave no `$`
unrendered, and every table row keeps its cells under GitHub's rule for splitting rows. The
LaTeX of `derive diff` renders in KaTeX. (mystmd reads the same pages in test_books.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from derive.show.book import portable
from derive.show.html import markdown_to_html
from tests.conftest import ROOT, SEEDS

KATEX = ROOT / ".node" / "node_modules" / "katex"


@pytest.fixture(scope="module")
def pages(seeds_course, extra_course) -> list[Path]:
    """Every lesson's Markdown: the seeds' 12 lessons in both languages, 3 more and a
    backpropagation lesson in one."""
    found = sorted(
        path
        for course in (seeds_course, extra_course)
        for path in course.glob("*/*.md")
        if path.name.startswith(path.parent.name + ".")
    )
    assert len({p.parent for p in found}) == 16 and len(found) == 28
    assert {p.name.split(".")[-2] for p in found} == {"zh", "en"}
    return found


@dataclass(frozen=True)
class Reading:
    """A page as each reader sees it: its Markdown's `## ` sections, the HTML derive wrote, and
    the sections and text myst-parser finds."""

    path: Path
    written: list[str]
    html: PageText
    myst_sections: int
    myst_text: str


@pytest.fixture(scope="module")
def readings(pages) -> list[Reading]:
    """Each page parsed once by every reader: the tests below share the parses."""
    pytest.importorskip("myst_parser", reason="myst-parser comes with the dev extra")
    read = []
    for path in pages:
        markdown = path.read_text(encoding="utf-8")
        sections, text = myst_sections_and_text(markdown)
        html = html_page(path.with_suffix(".html"))
        read.append(Reading(path, markdown_sections(markdown), html, sections, text))
    return read


# -- the Markdown as each reader sees it, read by the test's own means ----------------------------


def markdown_sections(markdown: str) -> list[str]:
    """The `## ` headings outside code fences, as a CommonMark reader finds them."""
    headings, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            headings.append(line[3:].strip())
    return headings


class PageText(HTMLParser):
    """The text a person reads on the page (formulas, scripts and styles aside), and its <h2>s."""

    SKIP = {"math", "script", "style"}

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.h2 = 0
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self.h2 += tag == "h2"
        self.skipping += tag in self.SKIP

    def handle_endtag(self, tag):
        self.skipping -= tag in self.SKIP

    def handle_data(self, data):
        if not self.skipping:
            self.text.append(data)


def html_page(path: Path) -> PageText:
    reader = PageText()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader


def myst_tree(markdown: str):
    """The document myst-parser (Jupyter Book 1's parser) builds, with its math extension."""
    from docutils.core import publish_doctree
    from myst_parser.parsers.docutils_ import Parser

    settings = {"myst_enable_extensions": ["dollarmath"], "report_level": 4, "halt_level": 5}
    return publish_doctree(markdown, parser=Parser(), settings_overrides=settings)


def myst_sections_and_text(markdown: str) -> tuple[int, str]:
    """Sections one level under the title, and the text outside math and code."""
    from docutils import nodes

    tree = myst_tree(markdown)

    def depth(node) -> int:
        return sum(isinstance(a, nodes.section) for a in _ancestors(node))

    sections = sum(1 for s in tree.findall(nodes.section) if depth(s) == 2)
    kept = (nodes.math, nodes.math_block, nodes.literal, nodes.literal_block, nodes.comment)
    text = " ".join(
        t.astext()
        for t in tree.findall(nodes.Text)
        if not any(isinstance(a, kept) for a in _ancestors(t))
    )
    return sections, text


def _ancestors(node):
    while node is not None:
        yield node
        node = node.parent


def table_rows(markdown: str) -> list[list[list[str]]]:
    """Each table as its rows of cells, split as GitHub splits them: on every `|` that no
    backslash escapes, math or not."""
    tables, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())
            current.append([c.strip() for c in cells[1:-1]])
        elif current:
            tables.append(current)
            current = []
    return tables


# -- the tests ------------------------------------------------------------------------------------


def test_every_reader_sees_every_section(readings):
    for page in readings:
        sections = len(page.written)
        assert sections >= 8, page.path  # a lesson has 10 or more, backpropagation 8
        assert (sections, page.html.h2, page.myst_sections) == (sections,) * 3, page.path


def test_no_dollar_left_unrendered(readings):
    for page in readings:
        assert "$" not in "".join(page.html.text), page.path
        assert "$" not in page.myst_text, page.path


def test_every_table_row_has_the_header_s_cells(pages):
    tables = 0
    for path in pages:
        for rows in table_rows(path.read_text(encoding="utf-8")):
            tables += 1
            assert {len(row) for row in rows} == {len(rows[0])}, (path, rows[0])
            assert set(rows[1]) <= {":-:", ":--", "--:", "---"}, path  # the delimiter row
    assert tables >= 100


def test_the_abs_summary_keeps_its_formula_in_one_cell(extra_course):
    markdown = (extra_course / "abs" / "abs.en.md").read_text(encoding="utf-8")
    loss_row = next(line for line in markdown.splitlines() if line.startswith("| Loss |"))
    assert loss_row == r"| Loss | $\frac{w^{2}}{2} + \left\lvert w - 3\right\rvert$ |"
    # outside tables the bars are as the printer wrote them
    assert r"\left|w - 3\right|" in markdown
    html = (extra_course / "abs" / "abs.en.html").read_text(encoding="utf-8")
    cell = re.search(r"<td[^>]*>Loss</td>\s*<td[^>]*>(.*?)</td>", html, re.DOTALL).group(1)
    assert cell.startswith("<math") and r"\left\lvert w - 3\right\rvert" in cell


def test_portable_takes_bars_out_of_table_math_only():
    markdown = "\n".join(
        [
            "Outside: $\\left|u\\right|$ and $|x|$.",
            "",
            "| a | b |",
            "|:-:|:-:|",
            "| $\\left|w\\right|^{2}$ | $\\|v\\| + |x| + \\left\\|z\\right\\|$ |",
        ]
    )
    out = portable(markdown)
    assert out.splitlines()[0] == markdown.splitlines()[0]
    assert out.splitlines()[-1] == (
        r"| $\left\lvert w\right\rvert^{2}$ | "
        r"$\Vert v\Vert + \vert x\vert + \left\Vert z\right\Vert$ |"
    )
    assert [len(r) for r in table_rows(out)[0]] == [2, 2, 2]
    reader = PageText()
    reader.feed(markdown_to_html(out, "en", "t", contents=False))
    assert "$" not in "".join(reader.text)
    assert len(re.findall(r"<td[^>]*><math", markdown_to_html(out, "en", "t", contents=False))) == 2


def test_front_matter_is_docusaurus_style_with_the_course_order(seeds_course):
    spec = tomllib.loads((SEEDS / "course.toml").read_text(encoding="utf-8"))
    for position, entry in enumerate(spec["lessons"], start=1):
        slug = entry["slug"]
        for language in ("zh", "en"):
            markdown = (seeds_course / slug / f"{slug}.{language}.md").read_text(encoding="utf-8")
            head = re.match(r"---\n(.*?)\n---\n", markdown, re.DOTALL)
            matter = yaml.safe_load(head.group(1))
            assert set(matter) == {"title", "description", "keywords", "sidebar_position"}
            assert matter["sidebar_position"] == position
            assert all(isinstance(matter[k], str) and matter[k] for k in ("title", "description"))
            assert "$" not in matter["title"]  # plain text: a sidebar shows it as it is


def test_a_lesson_has_no_sidebar_position(tmp_path, derive_cli):
    out = tmp_path / "one"
    assert derive_cli("lesson", "--loss", "w**2", "--lang", "en", "--out", str(out)).code == 0
    markdown = (out / "lesson.en.md").read_text(encoding="utf-8")
    assert "sidebar_position" not in markdown and markdown.startswith("---\ntitle: ")


KATEX_SCRIPT = """
const katex = require(process.argv[2]);
const text = require("fs").readFileSync(0, "utf8");
const blocks = text.match(/\\\\begin\\{align\\*\\}[\\s\\S]*?\\\\end\\{align\\*\\}/g) || [];
for (const block of blocks) {
  katex.renderToString(block, { displayMode: true, throwOnError: true, strict: "error" });
}
console.log(blocks.length);
"""


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize(
    "loss",
    [
        ["--loss", "abs(w-3) + 0.5*w**2"],
        ["--loss", "x**4 - 4*x**2 + 0.5*x"],
        [
            "--loss",
            "mean(-(y*log(sigmoid(w*x + b)) + (1-y)*log(1 - sigmoid(w*x + b))))",
            "--data",
            "x=-1,0.5,2; y=0,1,1",
        ],
    ],
    ids=["abs", "quartic", "logistic"],
)
def test_diff_latex_renders_in_katex(derive_cli, tmp_path, loss, language):
    node = shutil.which("node")
    if node is None or not KATEX.is_dir():
        pytest.skip("node and KaTeX (./setup.sh --dev installs them into .node/) are not here")
    result = derive_cli("diff", *loss, "--format", "latex", "--lang", language)
    assert result.code == 0 and r"\intertext" not in result.out
    script = tmp_path / "katex.js"
    script.write_text(KATEX_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [node, str(script), str(KATEX)],
        input=result.out,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    blocks = result.out.count(r"\begin{align*}")
    assert int(done.stdout) == blocks >= 2
