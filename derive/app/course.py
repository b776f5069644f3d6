"""Courses: many lessons from one TOML spec, built in parallel, rebuilt only when they changed.

    title = "Gradient descent"
    languages = ["zh", "en"]

    [[lessons]]
    title = "A parabola"
    loss = "(w-3)**2"
    init = { w = 0 }
    lr = 0.1
    steps = 20

A lesson is skipped when the hash of its spec entry, its data and derive itself (its source and
templates) matches the one stored beside its last build; a lesson that fails is reported with
its place in the spec, and the others still build.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from derive.app.build import build_lesson
from derive.app.data import load_data
from derive.app.files import read_text
from derive.app.parallel import map_forked
from derive.core.derivation import differentiate
from derive.core.descend import Optimizer, descend
from derive.core.errors import DeriveError
from derive.core.parse import parse_expression, parse_loss
from derive.show.book import BookLesson, BookPart, book_files
from derive.show.catalog import LANGUAGES, environment, messages
from derive.show.html import markdown_to_html
from derive.show.lesson import SECTIONS, Claim
from derive.show.notebook import notebook_name

HASH_FILE = ".derive-build"
KEYS = {
    "title",
    "loss",
    "params",
    "init",
    "lr",
    "steps",
    "data",
    "optimizer",
    "sections",
    "languages",
    "starts",
    "claims",
    "slug",
    "formats",
}
FORMATS = ("html", "ipynb")  # Markdown is always written


@dataclass(frozen=True)
class LessonSpec:
    """One lesson of a course, validated; `where` says where it stands in the spec file."""

    where: str
    title: str
    slug: str
    entry: Mapping[str, object]  # as written, for the hash
    data_path: Path | None = None
    position: int = 1  # its place in the spec, from 1 (Docusaurus's sidebar_position)


@dataclass(frozen=True)
class Course:
    title: str
    languages: tuple[str, ...]
    folder: Path  # relative data paths are read from here
    lessons: tuple[LessonSpec, ...]
    problems: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (where, message)


@dataclass(frozen=True)
class Outcome:
    slug: str
    title: str
    where: str
    status: str  # "built" | "skipped" | "failed"
    seconds: float
    message: str = ""


def read_course(path: Path, extra_formats: tuple[str, ...] = ()) -> Course:
    """The spec, with each lesson entry validated apart: a bad entry is a problem of its own.
    `extra_formats` (from the command line) are added to every lesson's."""
    text = read_text(path, "course spec")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeriveError(f"{path}: not valid TOML ({error})") from None
    unknown = set(spec) - {"title", "languages", "lessons"}
    if unknown:
        raise DeriveError(
            f"{path}: unknown key {sorted(unknown)[0]!r} (known: title, languages, lessons)"
        )
    languages = spec.get("languages", list(LANGUAGES))
    if (
        not isinstance(languages, list)
        or not languages
        or any(lang not in LANGUAGES for lang in languages)
    ):
        raise DeriveError(f"{path}: languages must be a list of {', '.join(LANGUAGES)}")
    entries = spec.get("lessons")
    if not isinstance(entries, list) or not entries:
        raise DeriveError(f"{path}: the spec has no [[lessons]]")
    lines = [
        k + 1 for k, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[lessons\]\]", line)
    ]
    lessons, problems, slugs = [], [], set()
    for index, entry in enumerate(entries):
        line = f", line {lines[index]}" if index < len(lines) else ""
        where = f"{path.name}: lessons[{index}]{line}"
        try:
            if isinstance(entry, dict) and extra_formats:
                formats = entry.get("formats", [])
                formats = formats if isinstance(formats, list) else [formats]
                entry = {**entry, "formats": sorted({*formats, *extra_formats})}
            lesson = replace(
                _validated(entry, where, path.parent, tuple(languages)), position=index + 1
            )
            if lesson.slug in slugs:
                raise DeriveError(f"the folder name {lesson.slug!r} is used twice")
            slugs.add(lesson.slug)
            lessons.append(lesson)
        except DeriveError as error:
            problems.append((where, str(error)))
    title = spec.get("title", path.stem)
    return Course(str(title), tuple(languages), path.parent, tuple(lessons), tuple(problems))


def _validated(entry, where: str, folder: Path, languages: tuple[str, ...]) -> LessonSpec:
    if not isinstance(entry, dict):
        raise DeriveError("a lesson must be a table")
    unknown = set(entry) - KEYS
    if unknown:
        raise DeriveError(f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(KEYS))})")
    for key in ("title", "loss"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise DeriveError(f"{key} must be a non-empty string")
    if entry.get("optimizer", "sgd") != "sgd":
        raise DeriveError(
            'a lesson\'s worked steps are plain gradient descent (optimizer = "sgd"); '
            "the optimizers section compares the others"
        )
    for key in ("sections", "languages", "formats"):
        allowed = {"sections": SECTIONS, "languages": LANGUAGES, "formats": FORMATS}[key]
        value = entry.get(key, [])
        if not isinstance(value, list) or any(v not in allowed for v in value):
            raise DeriveError(f"{key} must be a list of {', '.join(allowed)}")
    slug = entry.get("slug") or re.sub(r"[^a-z0-9]+", "-", entry["title"].lower()).strip("-")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,60}", slug or "") or ".." in slug:
        raise DeriveError("slug must be lower-case letters, digits, '-' and '.' (give one)")
    data_path = None
    if isinstance(entry.get("data"), str):
        data_path = (folder / entry["data"]).resolve()
        if not data_path.is_relative_to(folder.resolve()):
            raise DeriveError(f"data file {entry['data']!r} is outside the spec's folder")
        if not data_path.is_file():
            raise DeriveError(f"data file {entry['data']!r} not found beside the spec")
    return LessonSpec(where, entry["title"], slug, entry, data_path)


def fingerprint() -> str:
    """A hash of derive itself: its source and its templates."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".j2", ".toml"):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def lesson_hash(lesson: LessonSpec, languages: tuple[str, ...], derive_hash: str) -> str:
    digest = hashlib.sha256(json.dumps(lesson.entry, sort_keys=True, default=str).encode())
    digest.update(json.dumps([languages, lesson.position]).encode() + derive_hash.encode())
    if lesson.data_path is not None:
        digest.update(lesson.data_path.read_bytes())
    return digest.hexdigest()


def build_one(lesson: LessonSpec, course: Course, out: Path, derive_hash: str) -> Outcome:
    """Build one lesson (or skip it when unchanged); a failure is an outcome, not an exception."""
    started = time.perf_counter()
    folder = out / lesson.slug
    languages = tuple(lesson.entry.get("languages") or course.languages)
    try:
        digest = lesson_hash(lesson, languages, derive_hash)
        stamp = folder / HASH_FILE
        if stamp.is_file() and stamp.read_text() == digest:
            return Outcome(
                lesson.slug, lesson.title, lesson.where, "skipped", time.perf_counter() - started
            )
        _build(lesson, languages, folder)
        stamp.write_text(digest)
        return Outcome(
            lesson.slug, lesson.title, lesson.where, "built", time.perf_counter() - started
        )
    except DeriveError as error:
        message = str(error)
    except Exception as error:  # a bug, but one lesson's: the course goes on, and says which
        message = f"{type(error).__name__}: {error}"
    return Outcome(
        lesson.slug, lesson.title, lesson.where, "failed", time.perf_counter() - started, message
    )


def _build(lesson: LessonSpec, languages: tuple[str, ...], folder: Path) -> None:
    entry = lesson.entry
    data = _data(entry.get("data"), lesson.data_path)
    params = entry.get("params")
    loss = parse_loss(entry["loss"], params=tuple(params) if params else None, data=tuple(data))
    start = _start(entry.get("init", {}), loss.params)
    lr = entry.get("lr", 0.1)
    steps = entry.get("steps", 20)
    if not isinstance(lr, int | float) or not lr > 0:
        raise DeriveError(f"lr must be a positive number, not {lr!r}")
    if not isinstance(steps, int) or not 0 <= steps <= 100_000:
        raise DeriveError(f"steps must be a whole number from 0 to 100000, not {steps!r}")
    derivation = differentiate(loss)
    trace = descend(derivation, start, Optimizer.make("sgd", lr=float(lr)), steps, data=data)
    starts = _starts(entry.get("starts"), len(loss.params))
    claims = _claims(entry.get("claims", []), loss.params)
    sections = tuple(entry.get("sections", [])) or None
    used = {name: data[name] for name in loss.data}
    build_lesson(
        derivation,
        trace,
        folder,
        languages,
        ("png",),
        used,
        start,
        sections,
        starts,
        claims,
        parallel=False,
        name=lesson.slug,
        with_notebook="ipynb" in entry.get("formats", []),
        position=lesson.position,
    )


def _data(value, path: Path | None) -> dict[str, np.ndarray]:
    if value is None:
        return {}
    if path is not None:
        return load_data(str(path))
    if isinstance(value, dict):
        spec = "; ".join(
            f"{name}={','.join(map(str, column))}"
            for name, column in value.items()
            if isinstance(column, list)
        )
        return load_data(spec)
    raise DeriveError("data must be a file name or a table of columns")


def _start(init, params: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(init, dict):
        raise DeriveError("init must be a table, e.g. init = { w = 0 }")
    start = dict.fromkeys(params, 0.0)
    for name, value in init.items():
        if name not in start:
            raise DeriveError(f"init sets {name!r}, which is not a parameter ({', '.join(params)})")
        start[name] = _number(value, f"init.{name}")
    return start


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DeriveError(f"{what} must be a number")
    number = parse_expression(value) if isinstance(value, str) else value
    try:
        result = float(number)
    except TypeError:
        raise DeriveError(f"{what} must be a number, not {value!r}") from None
    if not np.isfinite(result):
        raise DeriveError(f"{what} must be finite")
    return result


def _starts(value, width: int) -> tuple[tuple[float, ...], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise DeriveError("starts must be a list, e.g. starts = [-2, 0.5, 2]")
    points = [item if isinstance(item, list) else [item] for item in value]
    if any(len(p) != width for p in points):
        raise DeriveError(f"each start needs {width} value(s), one per parameter")
    return tuple(tuple(_number(v, "starts") for v in p) for p in points)


def _claims(value, params: tuple[str, ...]) -> tuple[Claim, ...]:
    """claims = [{ step = 2, theta0 = 0.94 }]: what a source prints after a step."""
    claims = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("step"), int):
            raise DeriveError("each claim is a table with a step and parameter values")
        for name, number in item.items():
            if name == "step":
                continue
            if name not in params:
                raise DeriveError(f"a claim names {name!r}, which is not a parameter")
            claims.append(
                Claim(item["step"], name, _number(number, f"claim {name}"), repr(float(number)))
            )
    return tuple(claims)


def build_course(
    course: Course, out: Path, jobs: int, report: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Every lesson, in `jobs` processes; then the index of the course, per language."""
    out.mkdir(parents=True, exist_ok=True)
    derive_hash = fingerprint()
    outcomes = [
        Outcome("", "", where, "failed", 0.0, message) for where, message in course.problems
    ]
    for outcome in outcomes:
        if report:
            report(outcome)

    def work(lesson: LessonSpec) -> Outcome:
        return build_one(lesson, course, out, derive_hash)

    def arrived(done: int, total: int, outcome: Outcome) -> None:
        if report:
            report(outcome)

    outcomes += map_forked(work, list(course.lessons), jobs, arrived)
    _write_index(course, outcomes, out)
    _write_book(course, outcomes, out)
    return outcomes


def _write_index(course: Course, outcomes: list[Outcome], out: Path) -> None:
    for language in course.languages:
        words = messages(language)["course"]
        rows = [
            {
                "title": o.title,
                "slug": o.slug,
                "status": words["failed"] if o.status == "failed" else "",  # no run state
                "where": o.where,
                "message": o.message.replace("|", "\\|"),
            }
            for o in outcomes
        ]
        for kind in ("md", "html"):
            view = {"title": course.title, "rows": rows, "link": kind, "language": language}
            text = environment.get_template(f"{language}/index.md.j2").render(
                course=view, words=words
            )
            path = out / f"index.{language}.{kind}"
            if kind == "md":
                path.write_text(text, encoding="utf-8")
            else:
                links = frozenset(f"{o.slug}/{o.slug}.{language}.html" for o in outcomes if o.slug)
                path.write_text(
                    markdown_to_html(text, language, course.title, links=links, contents=False),
                    encoding="utf-8",
                )


# -- the course as a book -------------------------------------------------------------------------


def _write_book(course: Course, outcomes: list[Outcome], out: Path) -> None:
    """`_config.yml`, `_toc.yml` (Jupyter Book 1) and `myst.yml` (mystmd) beside the index:
    the lessons the index links, in the spec's order, each language a part of the book."""
    shown = [o.slug for o in outcomes if o.slug and o.status != "failed"]
    parts = []
    for language in course.languages:
        lessons = []
        for slug in shown:
            if not (out / slug / f"{slug}.{language}.md").is_file():
                continue  # the lesson is in other languages only
            notebook = notebook_name(slug, language)
            lessons.append(
                BookLesson(
                    f"{slug}/{slug}.{language}",
                    f"{slug}/{notebook.removesuffix('.ipynb')}"
                    if (out / slug / notebook).is_file()
                    else None,
                )
            )
        caption = messages(language)["course"]["book_part"]
        parts.append(BookPart(language, caption, f"index.{language}", tuple(lessons)))
    for name, text in book_files(course.title, tuple(parts)).items():
        (out / name).write_text(text, encoding="utf-8")
