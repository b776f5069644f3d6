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
import math
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
from derive.app.output import claim_folder, record, write_file, write_folder
from derive.app.parallel import map_forked
from derive.core.backprop import another_point, backprop
from derive.core.budget import OverBudgetError, time_limit
from derive.core.derivation import differentiate
from derive.core.descend import descend
from derive.core.errors import DeriveError
from derive.core.optimizers import DEFAULTS, Optimizer
from derive.core.parse import one_hot_targets, parse_loss, parse_number, to_float
from derive.core.schedules import Schedule, parse_schedule
from derive.show.backprop import write_backprop
from derive.show.book import BookLesson, BookPart, book_files, notebook_name
from derive.show.catalog import LANGUAGES, messages, template
from derive.show.escape import markdown_text
from derive.show.html import markdown_to_html
from derive.show.lesson import SECTIONS, WORKED_STEPS, Claim

HASH_FILE = ".derive-build"
LESSON_MIB = 2048  # memory one lesson may add to its worker with --jobs (10⁶ rows take ~400)
LESSON_SECONDS = 900.0  # wall time one lesson of a course may take (10⁶ rows take ~20 s)
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
    "interactive",
    "options",
    "schedule",
    "kind",
    "at",
    "row",
    "rows",
    "consts",
}
KINDS = ("lesson", "backprop")  # a gradient-descent lesson, or a backpropagation lesson
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
    document: str = "lesson"  # the pages' name, <document>.<lang>.md|html: the lesson's slug
    languages: tuple[str, ...] = ()  # the languages it is written in (none: a spec's problem)


def read_course(path: Path, extra_formats: tuple[str, ...] = ()) -> Course:
    """The spec, with each lesson entry validated apart: a bad entry is a problem of its own.
    `extra_formats` (from the command line) are added to every lesson's."""
    text = read_text(path, "course spec")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DeriveError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:  # [[[[…]]]] thousands deep: tomllib recurses once per level
        raise DeriveError(f"{path}: arrays or tables nested too deeply to read") from None
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
                _validated(entry, where, path.parent, tuple(languages), index),
                position=index + 1,
            )
            if lesson.slug in slugs:
                raise DeriveError(f"the folder name {lesson.slug!r} is used twice")
            slugs.add(lesson.slug)
            lessons.append(lesson)
        except DeriveError as error:
            problems.append((where, str(error)))
    title = spec.get("title", path.stem)
    return Course(str(title), tuple(languages), path.parent, tuple(lessons), tuple(problems))


def _shown(value) -> str:
    """A spec value as it is written in TOML: true, "0.1", inf."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}" (a string: write it without quotes)'
    return repr(value)


def _validated(
    entry, where: str, folder: Path, languages: tuple[str, ...], index: int
) -> LessonSpec:
    if not isinstance(entry, dict):
        raise DeriveError("a lesson must be a table")
    unknown = set(entry) - KEYS
    if unknown:
        raise DeriveError(f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(KEYS))})")
    for key in ("title", "loss"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise DeriveError(f"{key} must be a non-empty string")
    if entry.get("kind", "lesson") not in KINDS:
        raise DeriveError(f"kind must be one of {', '.join(KINDS)}, not {entry['kind']!r}")
    _optimizer_of(entry)  # checked here, so that a bad one fails this lesson alone
    for key in ("sections", "languages", "formats"):
        allowed = {"sections": SECTIONS, "languages": LANGUAGES, "formats": FORMATS}[key]
        value = entry.get(key, [])
        if not isinstance(value, list) or any(v not in allowed for v in value):
            raise DeriveError(f"{key} must be a list of {', '.join(allowed)}")
    params = entry.get("params")
    if params is not None and (
        not isinstance(params, list) or not params or not all(isinstance(p, str) for p in params)
    ):
        raise DeriveError(f'params must be a list of names, e.g. ["w", "b"], not {params!r}')
    slug = entry.get("slug")
    if slug is None:  # from the title; a title without Latin letters (中文) gives lesson-<n>
        slug = re.sub(r"[^a-z0-9]+", "-", entry["title"].lower()).strip("-")[:60].strip("-")
        slug = slug or f"lesson-{index + 1}"
    if not isinstance(slug, str):
        raise DeriveError(f"slug must be a string, not {_shown(slug)}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{0,60}", slug) or ".." in slug:
        raise DeriveError("slug must be lower-case letters, digits, '-' and '.'")
    if slug.startswith("index."):
        raise DeriveError(f"slug {slug!r} would clash with the course's index pages")
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
        if path.is_file() and path.suffix in (".py", ".j2", ".toml", ".js"):
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
    named = (lesson.slug, lesson.title, lesson.where)
    try:
        digest = lesson_hash(lesson, languages, derive_hash)
        stamp = folder / HASH_FILE
        if stamp.is_file() and stamp.read_text() == digest:
            seconds = time.perf_counter() - started
            return Outcome(*named, "skipped", seconds, "", lesson.slug, languages)
        with time_limit(LESSON_SECONDS):
            _build(lesson, languages, folder)
        write_file(stamp, digest)
        seconds = time.perf_counter() - started
        return Outcome(*named, "built", seconds, "", lesson.slug, languages)
    except DeriveError as error:
        message = str(error)
    except OverBudgetError:  # its staging is removed on the way out; the course goes on
        message = f"the lesson took longer than its budget of {LESSON_SECONDS:g} s"
    except MemoryError:
        message = f"the lesson needed more than its memory budget of {LESSON_MIB} MiB"
    except Exception as error:  # a bug, but one lesson's: the course goes on, and says which
        message = f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - started
    return Outcome(*named, "failed", seconds, message, lesson.slug, languages)


def _build(lesson: LessonSpec, languages: tuple[str, ...], folder: Path) -> None:
    """Build the entry into `folder`, its pages named by its slug (`<slug>.<lang>.md`), its
    notebooks apart (`<slug>-notebook.<lang>.ipynb`): one name per page in a book."""
    entry = lesson.entry
    data = _data(entry.get("data"), lesson.data_path)
    params = entry.get("params")
    loss = parse_loss(
        entry["loss"],
        params=tuple(params) if params else None,
        data=tuple(data),
        constants=_constants(entry.get("consts", {})),
    )
    if loss.missing_values:
        raise DeriveError(f"{loss.missing_values[0]} is a constant: give its value in consts")
    if data:
        loss = one_hot_targets(loss, data)
    if entry.get("kind", "lesson") == "backprop":
        _build_backprop(entry, loss, data, languages, folder, lesson)
        return
    start = _start(entry.get("init", {}), loss.params)
    steps = entry.get("steps", 20)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 100_000:
        raise DeriveError(f"steps must be a whole number from 0 to 100000, not {_shown(steps)}")
    interactive = entry.get("interactive", False)
    if not isinstance(interactive, bool):
        raise DeriveError(f"interactive must be true or false, not {_shown(interactive)}")
    derivation = differentiate(loss)
    optimizer, schedule = _optimizer_of(entry)
    trace = descend(
        derivation,
        start,
        optimizer,
        steps,
        data=data,
        schedule=schedule,
        worked_steps=WORKED_STEPS,
    )
    starts = _starts(entry.get("starts"), len(loss.params))
    claims = _claims(entry.get("claims", []), loss.params, steps)
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
        interactive=interactive,
        name=lesson.slug,
        with_notebook="ipynb" in entry.get("formats", []),
        position=lesson.position,
    )


def _build_backprop(
    entry, loss, data, languages: tuple[str, ...], folder: Path, lesson: LessonSpec
) -> None:
    """kind = "backprop": the graph at `at` (default 0), on `row` or `rows` of the data; its
    pages named by the lesson's slug, like every page of a course."""
    point = _start(entry.get("at", {}), loss.params)
    row, rows = entry.get("row"), entry.get("rows")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 1):
        raise DeriveError(f"row must be a row number from 1, not {row!r}")
    if rows is not None and (
        not isinstance(rows, list)
        or not rows
        or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rows)
    ):
        raise DeriveError(f"rows must be a list of row numbers from 1, not {rows!r}")
    used = {name: data[name] for name in loss.data}
    graph = backprop(differentiate(loss), point, used, rows=tuple(rows) if rows else None, row=row)
    exercise = another_point(graph, used)
    notebook = "ipynb" in entry.get("formats", [])
    write_folder(
        folder,
        lambda staging: write_backprop(
            graph,
            exercise,
            staging,
            languages,
            notebook=notebook,
            name=lesson.slug,
            position=lesson.position,
        ),
    )


def _optimizer_of(entry: Mapping[str, object]) -> tuple[Optimizer, Schedule | None]:
    """optimizer = "adam", options = { betas = [0.9, 0.99] }, schedule = "cosine:T_max=50":
    torch's names, as on the command line."""
    name = entry.get("optimizer", "sgd")
    if not isinstance(name, str) or name not in DEFAULTS:
        raise DeriveError(f"optimizer must be one of {', '.join(DEFAULTS)}, not {name!r}")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise DeriveError("options must be a table, e.g. options = { momentum = 0.9 }")
    given = {}
    for key, value in options.items():
        if isinstance(value, list):
            value = tuple(value)
        kinds = (bool,) if isinstance(DEFAULTS[name].get(key), bool) else (int, float, tuple)
        if key in DEFAULTS[name] and (
            not isinstance(value, kinds) or (isinstance(value, bool) and kinds != (bool,))
        ):
            raise DeriveError(f"options.{key} must be like {DEFAULTS[name][key]!r}, not {value!r}")
        given[key] = value
    lr = entry.get("lr")
    if lr is not None and (
        isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0
    ):
        raise DeriveError(f"lr must be a finite positive number, not {_shown(lr)}")
    optimizer = Optimizer.make(name, lr=None if lr is None else float(lr), **given)
    schedule = entry.get("schedule")
    if schedule is not None and not isinstance(schedule, str):
        raise DeriveError('schedule must be text, e.g. schedule = "cosine:T_max=50"')
    return optimizer, None if schedule is None else parse_schedule(schedule)


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


def _constants(consts) -> dict:
    """consts = { lam = 0.1 }: exact values, through the parser's limits like --const."""
    if not isinstance(consts, dict):
        raise DeriveError("consts must be a table, e.g. consts = { lam = 0.1 }")
    return {name: _exact(value, f"consts.{name}") for name, value in consts.items()}


def _exact(value, what: str):
    """A number from the spec, exact: 0.1 is 1/10 as in a loss."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DeriveError(f"{what} must be a number")
    text = repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, float) and not np.isfinite(value):
        raise DeriveError(f"{what} must be finite")
    number = parse_number(text, what)
    to_float(number, what)
    return number


def _number(value, what: str) -> float:
    """A number from the spec, through the same parser and limits as --init (exp(exp(20)) is
    refused, not evaluated)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DeriveError(f"{what} must be a number")
    if isinstance(value, float):
        if not np.isfinite(value):
            raise DeriveError(f"{what} must be finite")
        return value
    return to_float(parse_number(str(value), what), what)


def _starts(value, width: int) -> tuple[tuple[float, ...], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise DeriveError("starts must be a list, e.g. starts = [-2, 0.5, 2]")
    points = [item if isinstance(item, list) else [item] for item in value]
    if any(len(p) != width for p in points):
        raise DeriveError(f"each start needs {width} value(s), one per parameter")
    return tuple(tuple(_number(v, "starts") for v in p) for p in points)


def _claims(value, params: tuple[str, ...], steps: int) -> tuple[Claim, ...]:
    """claims = [{ step = 2, theta0 = 0.94 }]: what a source prints after a step."""
    claims = []
    if not isinstance(value, list):
        raise DeriveError("claims must be a list, e.g. claims = [{ step = 1, w = 0.6 }]")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("step"), int):
            raise DeriveError("each claim is a table with a step and parameter values")
        step = item["step"]
        if isinstance(step, bool) or not 0 <= step <= steps:
            raise DeriveError(
                f"a claim's step must be a whole number from 0 to {steps}, not {_shown(step)}"
            )
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
    course: Course,
    out: Path,
    jobs: int,
    report: Callable[[Outcome], None] | None = None,
    force: bool = False,
) -> list[Outcome]:
    """Every lesson, in `jobs` processes; then the index of the course, per language."""
    claim_folder(out, force)
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

    outcomes += map_forked(work, list(course.lessons), jobs, arrived, memory_mib=LESSON_MIB)
    _write_index(course, outcomes, out)
    written = _write_book(course, outcomes, out)
    indexes = [
        f"index.{language}.{kind}" for language in course.languages for kind in ("md", "html")
    ]
    record(out, [*indexes, *written, *(f"{o.slug}/" for o in outcomes if o.slug)])
    return outcomes


def _write_index(course: Course, outcomes: list[Outcome], out: Path) -> None:
    """index.<lang>.md|html: each language's index lists the lessons written in it (a problem of
    the spec as a whole, in every index)."""
    for language in course.languages:
        words = messages(language)["course"]
        listed = [o for o in outcomes if not o.languages or language in o.languages]
        rows = [
            {
                "title": markdown_text(o.title),
                "slug": o.slug,
                "document": o.document,
                "status": words["failed"] if o.status == "failed" else "",  # no run state
                "where": markdown_text(o.where),
                "message": markdown_text(o.message),
            }
            for o in listed
        ]
        for kind in ("md", "html"):
            view = {"title": course.title, "rows": rows, "link": kind, "language": language}
            text = template(f"{language}/index.md.j2").render(course=view, words=words)
            path = out / f"index.{language}.{kind}"
            if kind == "md":
                write_file(path, text)
            else:
                links = frozenset(
                    f"{o.slug}/{o.document}.{language}.html" for o in listed if o.slug
                )
                html = markdown_to_html(text, language, course.title, links=links, contents=False)
                write_file(path, html)


# -- the course as a book -------------------------------------------------------------------------


def _write_book(course: Course, outcomes: list[Outcome], out: Path) -> list[str]:
    """`_config.yml`, `_toc.yml` (Jupyter Book 1) and `myst.yml` (mystmd) beside the index:
    the lessons the index links, in the spec's order, each language a part of the book.
    Returns the names written."""
    shown = [o for o in outcomes if o.slug and o.status != "failed"]
    parts = []
    for language in course.languages:
        lessons = []
        for o in (o for o in shown if language in o.languages):
            notebook = notebook_name(o.document, language)
            lessons.append(
                BookLesson(
                    f"{o.slug}/{o.document}.{language}",
                    f"{o.slug}/{notebook.removesuffix('.ipynb')}"
                    if (out / o.slug / notebook).is_file()
                    else None,
                )
            )
        caption = messages(language)["course"]["book_part"]
        parts.append(BookPart(language, caption, f"index.{language}", tuple(lessons)))
    files = book_files(course.title, tuple(parts))
    for name, text in files.items():
        write_file(out / name, text)
    return sorted(files)
