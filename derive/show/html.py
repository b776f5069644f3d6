"""Markdown → a standalone HTML page: MathML for the math, figures embedded, a math font
subset embedded, no network needed."""

from __future__ import annotations

import base64
import functools
import io
import logging
import re
from pathlib import Path

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from derive.core.errors import DeriveError
from derive.show.catalog import environment, messages

MATH_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuMathTeXGyre.ttf")


def markdown_to_html(markdown: str, language: str, title: str, folder: Path) -> str:
    """A standalone page: MathML for the math, figures embedded, no network needed."""
    # raw HTML off: text from users (answers, student names) must never become markup
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.use(dollarmath_plugin, double_inline=True)
    for rule, display in (
        ("math_inline", False),
        ("math_block", True),
        ("math_inline_double", True),
    ):
        parser.add_render_rule(rule, _math_renderer(display))
    body = parser.render(markdown)
    body = re.sub(r'src="([^"]+\.png)"', lambda m: f'src="{_data_uri(folder / m.group(1))}"', body)
    page = environment.get_template("lesson.html.j2")
    words = messages(language)["html"]
    return page.render(
        language=language, title=title, body=body, words=words, math_font=_math_font(body)
    )


def _math_renderer(display: bool):
    def render(self, tokens, index, options, env) -> str:
        return _mathml(tokens[index].content, display)

    return render


def _mathml(latex: str, display: bool) -> str:
    try:
        mathml = latex_to_mathml(latex.strip(), display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises its own exception types for bad LaTeX
        raise DeriveError(f"cannot typeset {latex[:60]!r}: {error}") from None
    return mathml + ("\n" if display else "")


def _math_font(body: str) -> str | None:
    """The math font subset to the characters of this page's MathML, as a WOFF data URI.

    With a CJK page font, Chromium draws Σ small and brackets unstretched unless an OpenType
    math font is at hand; a subset keeps each page small (≈ 12 KB) and self-contained.
    """
    if not MATH_FONT.exists():
        return None
    text = "".join(sorted(set("".join(re.findall(r">([^<>]+)</m[ionsr]", body)) + "()[]{}|‖∑∏∫√")))
    return _subset_font(text)


@functools.cache
def _subset_font(text: str) -> str:
    from fontTools import subset  # a dependency of matplotlib; imported only here, when needed
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    font = TTFont(str(MATH_FONT), recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer, reorderTables=True)
    return "data:font/woff;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
