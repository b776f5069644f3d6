"""A course is a book project (issue 13): `jupyter-book build` makes a site of it with no manual
step and no warning, each lesson's page whole to its last section, each notebook a page of its
own; mystmd reads the same project (its `myst.yml`) page by page, every section and formula in
place. Built on copies: the courses themselves are shared by other tests.

Jupyter Book builds the four-lesson course (two parts, notebooks, a backpropagation
lesson): its Sphinx build of the seeds' 30 pages took 20-40 s here, and every seeds page is read
whole by myst-parser, Jupyter Book's parser (test_pages.py), and by mystmd below."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from derive.app.cli import main
from tests.conftest import ROOT
from tests.test_pages import markdown_sections

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
MYST = ROOT / ".node" / "node_modules" / ".bin" / "myst"


def lessons(course: Path) -> list[tuple[str, str]]:
    """(slug, language) of every lesson page of a built course."""
    return sorted(
        (path.parent.name, path.name.split(".")[-2])
        for path in course.glob("*/*.md")
        if path.name.startswith(path.parent.name + ".")
    )


def last_section(markdown: str) -> tuple[str, str]:
    """The last `## ` heading and the last display formula after it."""
    heading = markdown_sections(markdown)[-1]
    tail = markdown[markdown.rindex(f"## {heading}") :]
    formulas = re.findall(r"\$\$\n(.*?)\n\$\$", tail, re.DOTALL)
    return heading, formulas[-1] if formulas else ""


def test_the_project_files_list_every_page(seeds_course):
    toc = yaml.safe_load((seeds_course / "_toc.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load((seeds_course / "_config.yml").read_text(encoding="utf-8"))
    myst = yaml.safe_load((seeds_course / "myst.yml").read_text(encoding="utf-8"))
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "off"
    assert toc["format"] == "jb-book" and toc["root"] == "index.zh"
    assert [part["caption"] for part in toc["parts"]] == ["中文", "English"]

    def files(entries):
        for entry in entries:
            if "file" in entry:
                yield entry["file"]
            for key in ("chapters", "sections", "children"):
                yield from files(entry.get(key, []))

    jb = [toc["root"], *files(toc["parts"])]
    ms = list(files(myst["project"]["toc"]))
    pages = [f"{slug}/{slug}.{language}" for slug, language in lessons(seeds_course)]
    notebooks = [p.relative_to(seeds_course).as_posix() for p in seeds_course.glob("*/*.ipynb")]
    assert len(pages) == 24 and len(notebooks) == 6
    assert sorted(jb) == sorted(["index.zh", "index.en", *pages, *(n[:-6] for n in notebooks)])
    assert sorted(ms) == sorted(
        [*(f"{f}.md" for f in ["index.zh", "index.en", *pages]), *notebooks]
    )
    # the spec's order, zh first: the book reads as the course does
    order = [f.split("/")[0] for f in jb if f.endswith(".zh") and "/" in f]
    assert order[0] == "seed-000-parabola" and order[-1] == "seed-000-logistic"


def test_one_language_course_has_chapters_without_parts(tmp_path):
    spec = tmp_path / "course.toml"
    spec.write_text(
        'title = "Two"\nlanguages = ["en"]\n\n'
        '[[lessons]]\ntitle = "a"\nloss = "w**2"\nsections = ["table"]\nformats = ["ipynb"]\n\n'
        '[[lessons]]\ntitle = "b"\nloss = "(w-1)**2"\nsections = ["table"]\n',
        encoding="utf-8",
    )
    assert main(["course", str(spec), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    toc = yaml.safe_load((tmp_path / "out" / "_toc.yml").read_text(encoding="utf-8"))
    assert toc == {
        "format": "jb-book",
        "root": "index.en",
        "chapters": [
            {"file": "a/a.en", "sections": [{"file": "a/a-notebook.en"}]},
            {"file": "b/b.en"},
        ],
    }


def test_each_language_lists_only_its_own_lessons(extra_course):
    """abs and Rosenbrock are in English only, the saddle and backpropagation in Chinese only: no
    index or part of the book points at a page that is not there."""
    links = {
        language: re.findall(r"\]\(([^)]+)\)", (extra_course / f"index.{language}.md").read_text())
        for language in ("zh", "en")
    }
    assert links == {
        "zh": ["saddle/saddle.zh.md", "backprop/backprop.zh.md"],
        "en": ["abs/abs.en.md", "rosenbrock/rosenbrock.en.md"],
    }
    toc = yaml.safe_load((extra_course / "_toc.yml").read_text(encoding="utf-8"))
    chapters = [[c["file"] for c in part["chapters"]] for part in toc["parts"]]
    # index.zh is the book's root; index.en opens the English part
    assert chapters == [
        ["saddle/saddle.zh", "backprop/backprop.zh"],
        ["index.en", "abs/abs.en", "rosenbrock/rosenbrock.en"],
    ]


def test_jupyter_book_builds_the_course_with_no_warning(extra_course, tmp_path):
    if not JUPYTER_BOOK.exists():
        pytest.skip("jupyter-book comes with the dev extra")
    book = tmp_path / "book"
    shutil.copytree(extra_course, book)
    done = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), "--path-output", str(tmp_path), "-W", "-q"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = tmp_path / "_build" / "html"
    for slug, language in lessons(extra_course):
        markdown = (extra_course / slug / f"{slug}.{language}.md").read_text(encoding="utf-8")
        page = (site / slug / f"{slug}.{language}.html").read_text(encoding="utf-8")
        heading, formula = last_section(markdown)
        assert f">{html.escape(heading, quote=False)}<" in page, (slug, language)
        assert html.escape(formula, quote=False) in page, (slug, language)
        article = page[page.index('<article class="bd-article">') : page.index("</article>")]
        assert len(re.findall(r"<h2[ >]", article)) == len(markdown_sections(markdown))
    notebooks = list(extra_course.glob("*/*.ipynb"))
    assert len(notebooks) == 4
    for notebook in notebooks:
        assert (site / notebook.parent.name / notebook.with_suffix(".html").name).is_file()


def test_mystmd_reads_every_page_of_both_courses(seeds_course, extra_course, tmp_path):
    """`myst build --site` turns each page into its AST here; the site's theme is then
    downloaded, which needs a network this machine may not have, so the pages are checked."""
    if shutil.which("node") is None or not MYST.exists():
        pytest.skip("node and mystmd (./setup.sh --dev installs them into .node/) are not here")
    builds = {}
    for course in (seeds_course, extra_course):  # both at once: node starts slowly
        project = tmp_path / course.name
        shutil.copytree(course, project)
        builds[course] = subprocess.Popen(
            [str(MYST), "build", "--site"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
    try:
        for course, build in builds.items():
            log = build.communicate(timeout=600)[0]
            assert re.search(r"Built \d+ pages", log), log[-3000:]
            assert "⚠️" not in log and "⛔" not in log, log[-3000:]
            _check_pages(course, tmp_path / course.name / "_build" / "site" / "content")
    finally:  # a failed check leaves no build running
        for build in builds.values():
            if build.poll() is None:
                build.kill()
                build.wait()


def _check_pages(course: Path, content: Path) -> None:
    """Each lesson's page as mystmd parsed it: every section, no `$` in the text, the last
    section with its last formula; each notebook a page of its own."""
    for slug, language in lessons(course):
        markdown = (course / slug / f"{slug}.{language}.md").read_text(encoding="utf-8")
        url = f"{slug}-{language}".replace(".", "-")  # mystmd's page names
        tree = json.loads((content / f"{url}.json").read_text(encoding="utf-8"))
        nodes = list(_walk(tree["mdast"]))
        # mystmd keeps a title H1 that differs from the front matter's (shifting every heading
        # one down) and lifts one that repeats it: the sections are the level under a lone top
        headings = [n for n in nodes if n["type"] == "heading"]
        top = min(n["depth"] for n in headings)
        lone = sum(n["depth"] == top for n in headings) == 1 and headings[0]["depth"] == top
        sections = [n for n in headings if n["depth"] == top + lone]
        assert len(sections) == len(markdown_sections(markdown)), (slug, language)
        texts = [n["value"] for n in nodes if n["type"] == "text"]
        assert not any("$" in t for t in texts), (slug, language)
        heading, formula = last_section(markdown)
        assert heading in "".join(_text(sections[-1])), (slug, language)
        math = [n["value"] for n in nodes if n["type"] == "math"]
        assert formula == "" or formula in math, (slug, language)
        if (course / slug / f"{slug}-notebook.{language}.ipynb").is_file():
            notebook = f"{slug}-notebook-{language}".replace(".", "-")
            assert (content / f"{notebook}.json").is_file()


def _walk(node):
    yield node
    for child in node.get("children", []) or []:
        yield from _walk(child)


def _text(node):
    for n in _walk(node):
        if n["type"] in ("text", "inlineMath"):
            yield n["value"]
