"""Markdown → a standalone HTML page: MathML (with its TeX) for the math, derive's own figures
embedded, a math font subset embedded, a table of contents, no network needed.

The Markdown is derive's: raw HTML is off, so text from users (titles, names, answers) can
never become markup; images are inlined only when derive drew them, links kept only when derive
made them; anything else is shown as its text. Two comment lines, `<!-- derive:details -->` and
`<!-- derive:end -->`, which GitHub and MyST hide, fold what they enclose (a derivation's steps)
into a collapsible block here.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from derive.core.errors import DeriveError
from derive.show.catalog import messages, template

if TYPE_CHECKING:
    from derive.show.interactive import Panel

MATH_FAMILY = "DejaVu Math TeX Gyre"  # Debian's fonts-dejavu-extra; any install of it will do
MAX_NESTING = 100  # markdown-it's commonmark preset stops at 20 and drops content silently
_MARKER = re.compile(r"<!-- derive:(details|end) -->")


def markdown_to_html(
    markdown: str,
    language: str,
    title: str,
    figures: Mapping[str, Path] | None = None,
    links: frozenset[str] = frozenset(),
    contents: bool = True,
    interactive: Panel | None = None,
) -> str:
    """A standalone page. `figures` maps each image path the Markdown may use to the file
    derive wrote; `links` are the link targets derive made. `contents` adds a table of
    contents of the second-level headings. `interactive` is a lesson's panel
    (show/interactive.py), or None."""
    words = messages(language)["html"]
    parser = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    parser.enable("table")
    parser.use(front_matter_plugin)
    parser.use(dollarmath_plugin, double_inline=True)
    parser.use(anchors_plugin, min_level=2, max_level=3, slug_func=_slug)
    parser.block.ruler.before("paragraph", "derive_marker", _marker_rule)
    for rule, display in (
        ("math_inline", False),
        ("math_block", True),
        ("math_inline_double", True),
    ):
        parser.add_render_rule(rule, _math_renderer(display))
    parser.add_render_rule("derive_marker", _marker_renderer(words["steps"]))
    parser.add_render_rule("image", _image_renderer(dict(figures or {})))
    parser.add_render_rule("link_open", _link_renderer(links, opening=True))
    parser.add_render_rule("link_close", _link_renderer(links, opening=False))
    tokens = parser.parse(markdown)
    _check_complete(markdown, tokens)
    body = parser.renderer.render(tokens, parser.options, {})
    toc = _contents(tokens) if contents else []
    page = template("lesson.html.j2")
    return page.render(
        language=language,
        title=title,
        body=body,
        words=words,
        contents=toc,
        math_font=_math_font(body),
        interactive=interactive,
    )


# -- blocks derive adds ---------------------------------------------------------------------------


def _marker_rule(state, start_line: int, end_line: int, silent: bool) -> bool:
    begin = state.bMarks[start_line] + state.tShift[start_line]
    line = state.src[begin : state.eMarks[start_line]].strip()
    match = _MARKER.fullmatch(line)
    if match is None:
        return False
    if not silent:
        token = state.push("derive_marker", "", 0)
        token.meta = {"kind": match.group(1)}
        token.map = [start_line, start_line + 1]
    state.line = start_line + 1
    return True


def _marker_renderer(summary: str):
    def render(self, tokens, index, options, env) -> str:
        if tokens[index].meta["kind"] == "details":
            return f'<details class="steps" open>\n<summary>{html.escape(summary)}</summary>\n'
        return "</details>\n"

    return render


def _image_renderer(figures: Mapping[str, Path]):
    """derive's figures become data URIs; any other image is shown as its alt text."""

    def render(self, tokens, index, options, env) -> str:
        token = tokens[index]
        source = token.attrGet("src") or ""
        alt = self.renderInlineAsText(token.children or [], options, env)
        if source not in figures:
            return html.escape(alt)
        data = base64.b64encode(figures[source].read_bytes()).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'

    return render


def _link_renderer(links: frozenset[str], opening: bool):
    """Links derive made are kept; any other link is shown as its text only."""

    def render(self, tokens, index, options, env) -> str:
        token = tokens[index]
        if opening:
            kept = (token.attrGet("href") or "") in links
            env.setdefault("derive_links", []).append(kept)
            return self.renderToken(tokens, index, options, env) if kept else ""
        kept = env.get("derive_links", [True]).pop()
        return self.renderToken(tokens, index, options, env) if kept else ""

    return render


def _slug(text: str) -> str:
    """A heading's id: its words (any script) joined by '-'."""
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "section"


def _contents(tokens) -> list[tuple[str, str]]:
    """(id, text) of every second-level heading."""
    entries = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            inline = tokens[index + 1]
            text = "".join(
                child.content
                for child in inline.children or []
                if child.type in ("text", "code_inline", "math_inline")
            )
            entries.append((token.attrGet("id") or "", text))
    return entries


def _check_complete(markdown: str, tokens) -> None:
    """Every heading of the Markdown is in the page: a renderer limit never drops content
    silently."""
    written, fenced = 0, False
    for line in markdown.splitlines():
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            written += 1
    parsed = sum(1 for token in tokens if token.type == "heading_open")
    if parsed < written:
        raise RuntimeError(f"the page lost {written - parsed} of {written} headings in rendering")


# -- math -----------------------------------------------------------------------------------------


def _math_renderer(display: bool):
    def render(self, tokens, index, options, env) -> str:
        return _mathml(tokens[index].content, display)

    return render


def _mathml(latex: str, display: bool) -> str:
    """MathML with the TeX it came from as an annotation, so the formula can be copied."""
    source = latex.strip()
    try:
        mathml = latex_to_mathml(source, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises its own exception types for bad LaTeX
        raise DeriveError(f"cannot typeset {source[:60]!r}: {error}") from None
    opening, _, rest = mathml.partition(">")
    inner, _, _ = rest.rpartition("</math>")
    annotated = (
        f"{opening}><semantics>{inner}"
        f'<annotation encoding="application/x-tex">{html.escape(source)}</annotation>'
        "</semantics></math>"
    )
    return annotated + ("\n" if display else "")


def _math_font(body: str) -> str | None:
    """The math font subset to the characters of this page's MathML, as a WOFF data URI.

    With a CJK page font, Chromium draws Σ small and brackets unstretched unless an OpenType
    math font is at hand; a subset keeps each page small (≈ 12 KB) and self-contained.
    """
    if _math_font_file() is None:
        return None  # the page falls back on the reader's math fonts
    shown = re.sub(r"<annotation[^>]*>.*?</annotation>", "", body)
    glyphs = "".join(re.findall(r">([^<>]+)</m[ionsr]", shown)) + "()[]{}|‖∑∏∫√"
    return _subset_font("".join(sorted(set(html.unescape(glyphs)))))


@functools.cache
def _math_font_file() -> str | None:
    """The math font's file, found by matplotlib's font manager; None when not installed."""
    from matplotlib import font_manager  # only for this lookup

    try:
        properties = font_manager.FontProperties(family=MATH_FAMILY)
        path = font_manager.findfont(properties, fallback_to_default=False)
    except ValueError:
        return None
    return path


@functools.cache
def _subset_font(text: str) -> str:
    from fontTools import subset  # a dependency of matplotlib; imported only here, when needed
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    buffer = io.BytesIO()
    # lazy: the layout tables' parts are read as the subsetter reaches them (the same bytes,
    # a fifth less time); the file stays open for that until the font is closed
    with TTFont(_math_font_file(), recalcTimestamp=False, lazy=True) as font:
        subsetter.subset(font)
        font.save(buffer, reorderTables=True)
    return "data:font/woff;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
