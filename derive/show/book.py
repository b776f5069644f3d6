"""A lesson's Markdown made to read the same in every renderer, and a course as a book project:
Jupyter Book 1 (`_config.yml`, `_toc.yml`) and mystmd (`myst.yml`) from the same list of pages.

GitHub (cmark-gfm), markdown-it, MyST and Docusaurus all split a table row on `|` before they
look for math, so a bar inside `$…$` in a table ends the cell there. Outside tables the bar is
harmless and is left as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# The bars of LaTeX, longest first: each becomes a command with no `|` in it.
_BARS = {
    r"\left\|": r"\left\Vert",
    r"\right\|": r"\right\Vert",
    r"\left|": r"\left\lvert",
    r"\right|": r"\right\rvert",
    r"\|": r"\Vert",
    "|": r"\vert",
}
_BAR = re.compile("|".join(re.escape(bar) for bar in _BARS))
_TABLE_ROW = re.compile(r"^\|.*\|[ \t]*$")
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.DOTALL)


def front_matter(title: str, description: str, keywords) -> str:
    """YAML front matter (Docusaurus, MyST, Jupyter Book): JSON strings are valid YAML."""
    lines = [
        "---",
        f"title: {json.dumps(title, ensure_ascii=False)}",
        f"description: {json.dumps(description, ensure_ascii=False)}",
        f"keywords: {json.dumps(list(keywords), ensure_ascii=False)}",
        "---",
    ]
    return "\n".join(lines)


def portable(markdown: str, position: int | None = None) -> str:
    """The Markdown with no bar inside a table's math, and with Docusaurus's
    `sidebar_position` in the front matter when the lesson has a place in a course."""
    text = "\n".join(
        _bars_out_of_math(line) if _TABLE_ROW.match(line) else line for line in markdown.split("\n")
    )
    if position is not None:
        text = _FRONT_MATTER.sub(
            lambda m: f"---\n{m.group(1)}sidebar_position: {position}\n---\n", text, count=1
        )
    return text


def _bars_out_of_math(row: str) -> str:
    """`$…$` spans are the odd pieces between dollars (derive writes no other dollar)."""
    pieces = row.split("$")
    for k in range(1, len(pieces), 2):
        pieces[k] = _BAR.sub(_command, pieces[k])
    return "$".join(pieces)


def _command(match: re.Match) -> str:
    """The bar's command, with a space only where a letter follows (`\\lvert w`, `\\rvert^{2}`):
    some renderers refuse inline math that ends in a space."""
    following = match.string[match.end() : match.end() + 1]
    return _BARS[match.group(0)] + (" " if following.isalpha() else "")


# -- book projects --------------------------------------------------------------------------------


def notebook_name(name: str, language: str) -> str:
    """`<name>-notebook.<lang>.ipynb`: never the stem of the lesson's Markdown, which Jupyter
    Book and MyST would take for the same page."""
    return f"{name}-notebook.{language}.ipynb"


@dataclass(frozen=True)
class BookLesson:
    """A lesson's pages, as paths from the book's root without their suffix."""

    page: str  # "seed-000-parabola/seed-000-parabola.en"
    notebook: str | None  # "seed-000-parabola/seed-000-parabola-notebook.en", if written


@dataclass(frozen=True)
class BookPart:
    """One language of the course: its index page, then its lessons in the spec's order."""

    language: str
    caption: str  # the language's own name, from the catalog
    index: str  # "index.en"
    lessons: tuple[BookLesson, ...]


SPHINX_LANGUAGE = {"zh": "zh_CN", "en": "en"}


def book_files(title: str, parts: tuple[BookPart, ...]) -> dict[str, str]:
    """{file name: text} of the project files, for `jupyter-book build .` and `myst build`.

    The first language's index is the book's front page; with several languages each is a
    part of the book, its lessons as chapters and each notebook a section of its lesson."""
    return {
        "_config.yml": _jupyter_book_config(title, parts[0].language),
        "_toc.yml": _jupyter_book_toc(parts),
        "myst.yml": _myst_project(title, parts),
    }


def _quoted(text: str) -> str:
    """A YAML scalar: a JSON string is one, whatever the title holds."""
    return json.dumps(text, ensure_ascii=False)


def _jupyter_book_config(title: str, language: str) -> str:
    return "\n".join(
        [
            "# Jupyter Book 1: `jupyter-book build .` (written by derive course)",
            f"title: {_quoted(title)}",
            "only_build_toc_files: true",
            "execute:",
            '  execute_notebooks: "off"  # "auto" runs each notebook at build time',
            "parse:",
            "  myst_enable_extensions: [dollarmath]",
            "html:",
            "  use_repository_button: false",
            "sphinx:",
            "  config:",
            f"    language: {SPHINX_LANGUAGE[language]}",
            "",
        ]
    )


def _jupyter_book_toc(parts: tuple[BookPart, ...]) -> str:
    lines = [
        "# Jupyter Book 1's table of contents (written by derive course)",
        "format: jb-book",
        f"root: {parts[0].index}",
    ]

    def chapters(part: BookPart, indent: str, with_index: bool) -> None:
        lines.append(f"{indent}chapters:")
        if with_index:
            lines.append(f"{indent}  - file: {part.index}")
        for lesson in part.lessons:
            lines.append(f"{indent}  - file: {lesson.page}")
            if lesson.notebook:
                lines.append(f"{indent}    sections:")
                lines.append(f"{indent}      - file: {lesson.notebook}")

    if len(parts) == 1:
        chapters(parts[0], "", with_index=False)
    else:
        lines.append("parts:")
        for k, part in enumerate(parts):
            lines.append(f"  - caption: {_quoted(part.caption)}")
            chapters(part, "    ", with_index=k > 0)
    return "\n".join(lines) + "\n"


def _myst_project(title: str, parts: tuple[BookPart, ...]) -> str:
    lines = [
        "# mystmd: `myst build --html` or `myst start` (written by derive course)",
        "version: 1",
        "project:",
        f"  title: {_quoted(title)}",
        "  error_rules:",
        "    - id: encountered-legacy-toc  # _toc.yml is Jupyter Book 1's",
        "      severity: ignore",
        "    - id: valid-page-frontmatter  # sidebar_position is Docusaurus's",
        "      severity: ignore",
        "  toc:",
        f"    - file: {parts[0].index}.md",
    ]

    def entries(part: BookPart, indent: str, with_index: bool) -> None:
        if with_index:
            lines.append(f"{indent}- file: {part.index}.md")
        for lesson in part.lessons:
            lines.append(f"{indent}- file: {lesson.page}.md")
            if lesson.notebook:
                lines.append(f"{indent}  children:")
                lines.append(f"{indent}    - file: {lesson.notebook}.ipynb")

    if len(parts) == 1:
        entries(parts[0], "    ", with_index=False)
    else:
        for k, part in enumerate(parts):
            lines.append(f"    - title: {_quoted(part.caption)}")
            lines.append("      children:")
            entries(part, "        ", with_index=k > 0)
    lines += [
        "site:",
        "  template: book-theme",
        "  options:",
        "    hide_title_block: true  # each lesson's first heading is its title, with its math",
    ]
    return "\n".join(lines) + "\n"
