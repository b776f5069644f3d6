"""Verdicts → words and files: one answer as text or JSON; a class as a report (Markdown, then
HTML), grades.csv, a gradebook for an LMS and one feedback file per student.

Everything a student or a file wrote (names, answers, messages quoting them) is text here, never
markup: in Markdown each ASCII punctuation character is backslash-escaped (so no link, image,
HTML tag, emphasis, math or autolink can form, in derive's renderer, in GitHub's or in MyST's),
answers are code spans, control characters are replaced, and long answers are wrapped.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

import mpmath
import sympy

from derive.core.check import Counterexample, Diagnosis, Point, Verdict
from derive.core.derivation import Derivation
from derive.core.symbols import to_text
from derive.show.catalog import messages, template
from derive.show.printing import to_unicode, unicode_name

PER_STUDENT_ROWS = 2000  # above this, the report lists distinct answers; the CSV has everyone
TABLE_TEXT = 40  # characters of an answer or a name shown in a table cell (cells do not wrap)
WRAP = 60  # characters per piece of a long answer written out in full
GRADES_COLUMNS = [
    # the first seven are the original contract; columns are only ever added
    "line",
    "student",
    "answer",
    "verdict",
    "diagnosis",
    "counterexample",
    "problem",
    "diagnosis_detail",
    "problem_code",
    "answer_id",
    "score",
    "feedback",
]
SCORES = {"right": "100", "wrong": "0", "invalid": ""}


# -- text from users, made safe -------------------------------------------------------------------

_CONTROL = {"Cc", "Cf", "Zl", "Zp"}  # controls, bidi and other format characters, line breaks


def clean(text: str, keep_tabs: bool = False) -> str:
    """Text with every control or format character (NUL, ESC, U+202E…) replaced by U+FFFD."""
    if text.isprintable():  # the usual case, checked in C: nothing to replace
        return text
    return "".join(
        ch
        if unicodedata.category(ch) not in _CONTROL or (keep_tabs and ch == "\t")
        else "\N{REPLACEMENT CHARACTER}"
        for ch in text
    )


# Characters that can start markup anywhere: emphasis, code, links and images, HTML, math,
# entities, tables, strikethrough; and . : / which break a URL or a domain (GitHub's and MyST's
# linkify would otherwise link "evil.com" or "feedback.md") into pieces no renderer links.
_ESCAPED = str.maketrans({ch: "\\" + ch for ch in "\\`*_{}[]<>!|$&~:/^."})
_LINE_START = re.compile(r"^([-+#=>]|\d+[.)])")  # a list, heading or quote if it opened a line


def markdown_text(text: str) -> str:
    """Plain text in Markdown, on one line: no character of it can become markup."""
    text = " ".join(clean(text).split()).translate(_ESCAPED)
    return _LINE_START.sub(lambda m: "\\" + m.group(0), text)


def markdown_code(text: str, in_table: bool = False) -> str:
    """Text as one code span: literal in every renderer (its fence outlasts any backticks)."""
    text = " ".join(clean(text).split()) or "—"
    if in_table:
        text = text.replace("|", "\\|")  # a table splits cells first, even inside code
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def wrapped_code(text: str) -> str:
    """A long answer as code spans of at most WRAP characters, cut after an operator or a
    space where possible, so the page wraps it (a space between grammar tokens changes nothing)."""
    text = " ".join(clean(text).split())
    pieces = []
    while len(text) > WRAP:
        cut = max(text.rfind(ch, WRAP // 2, WRAP) for ch in " +-*/(),")
        cut = WRAP if cut < 0 else cut + 1
        pieces.append(text[:cut].strip())
        text = text[cut:]
    pieces.append(text.strip())
    return " ".join(markdown_code(piece) for piece in pieces if piece)


def shorten(text: str, limit: int = TABLE_TEXT) -> str:
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading = + − @ gets a quote first."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


_RESERVED_FILES = {"con", "prn", "aux", "nul"} | {
    f"{p}{k}" for p in ("com", "lpt") for k in range(10)
}


def file_stem(name: str) -> str:
    """A student's name as a file name on any system: letters and digits of any script kept,
    the rest collapsed to '-', at most 60 characters, never empty, hidden or reserved."""
    text = re.sub(r"[^\w.-]+", "-", unicodedata.normalize("NFKC", clean(name)))
    text = text.strip(".-_")[:60].strip(".-_") or "student"
    return text + "-" if text.casefold() in _RESERVED_FILES else text


def feedback_names(students: Iterable[tuple[int, str]]) -> dict[int, str]:
    """line → file stem for each (line, name), distinct even on a case-insensitive disk: a later
    student whose name collides gets their line number added (alice, alice-17)."""
    taken: set[str] = set()
    names = {}
    for line, student in students:
        stem = file_stem(student)
        candidate, k = stem, 1
        while candidate.casefold() in taken:
            candidate = f"{stem}-{line}" if k == 1 else f"{stem}-{line}-{k}"
            k += 1
        taken.add(candidate.casefold())
        names[line] = candidate
    return names


# -- one answer -------------------------------------------------------------------------------


def _key(verdict: Verdict) -> str:
    """The catalog key of a verdict's diagnosis, with its variant."""
    code = verdict.diagnosis
    if code in (Diagnosis.MEAN_DROPPED, Diagnosis.SUM_DROPPED) and verdict.detail:
        return f"{code}_factor"
    if code == Diagnosis.TERM and verdict.detail[2] == 0:
        return "term_missing"
    return code or "none"


def _detail_values(verdict: Verdict, wrt: str) -> dict[str, str]:
    """What a diagnosis sentence names, printed: {detail}, {wrt}, {term}, {derivative}…"""
    params, detail = verdict.params, verdict.detail
    values = {"wrt": unicode_name(wrt), "detail": ""}
    if isinstance(detail, str):
        values["detail"] = unicode_name(detail)
    elif verdict.diagnosis == Diagnosis.CHAIN:
        derivative, inner = detail
        values["detail"] = f"{to_unicode(derivative, params)} (u = {to_unicode(inner, params)})"
    elif verdict.diagnosis == Diagnosis.TERM:
        term, derivative, factor = detail
        values |= {
            "term": to_unicode(term, params),
            "derivative": to_unicode(derivative, params),
            "factor": to_unicode(factor, params),
        }
    elif detail:
        values["detail"] = to_unicode(detail[0], params)
    return values


def diagnosis_sentence(verdict: Verdict, language: str, wrt: str) -> str | None:
    if verdict.correct:
        return None
    return messages(language)["check"][_key(verdict)].format(**_detail_values(verdict, wrt))


def mistake_name(verdict: Verdict, language: str, wrt: str) -> str:
    """The short name of the mistake with its quantity, for tables: "1/2 times the derivative"."""
    return messages(language)["mistakes"][_key(verdict)].format(**_detail_values(verdict, wrt))


def detail_text(verdict: Verdict) -> str | None:
    """What a diagnosis names, as printed: `w`, `1/2`, `x (u = w x)`, `w³: 1/3 × 3w²`."""
    if verdict.detail is None:
        return None
    values = _detail_values(verdict, "")
    if verdict.diagnosis == Diagnosis.TERM:
        return f"{values['term']}: {values['factor']} × {values['derivative']}"
    return values["detail"]


def number_text(value: sympy.Expr) -> str:
    """An exact number as a student writes it: 3, −1/3, 0.25 (a finite decimal), else the
    fraction."""
    fraction = Fraction(int(value.p), int(value.q))
    denominator = fraction.denominator
    while denominator % 2 == 0:
        denominator //= 2
    while denominator % 5 == 0:
        denominator //= 5
    if denominator == 1 and fraction.denominator != 1:
        text = f"{float(fraction)!r}" if len(str(fraction)) < 16 else None
        if text is not None and Fraction(text) == fraction:
            return text.replace("-", "−")
    return to_unicode(value)


def point_text(point: Point) -> str:
    params = [f"{unicode_name(name)} = {number_text(v)}" for name, v in point.params.items()]
    data = [
        f"{unicode_name(name)} = ({', '.join(number_text(v) for v in values)})"
        for name, values in point.data.items()
    ]
    return ", ".join(params + data)


def value_texts(expected: sympy.Expr, answer: sympy.Expr | None) -> tuple[str, str | None]:
    """Both values of a counterexample, with as many digits as it takes to see them differ."""
    if answer is None:
        return _value_text(expected, 10), None
    digits = 10
    while True:
        shown = _value_text(expected, digits), _value_text(answer, digits)
        longest = max(getattr(v, "_prec", 0) for v in (expected, answer)) // 3.32
        if shown[0] != shown[1] or digits >= longest:
            return shown
        digits += 5


def _value_text(value: sympy.Expr, digits: int) -> str:
    if value.is_Rational:
        return number_text(value)
    with mpmath.workdps(digits + 10):
        text = mpmath.nstr(mpmath.mpf(value._mpf_), digits)
    mantissa, _, exponent = text.partition("e")
    if exponent:
        superscript = str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        mantissa = f"{mantissa}×10{superscript}"
    return mantissa.replace("-", "−")


def counterexample_sentence(shown: Counterexample, language: str) -> str:
    words = messages(language)["check"]
    expected, answer = value_texts(shown.expected, shown.answer)
    key = "counterexample" if answer is not None else "counterexample_undefined"
    return words[key].format(point=point_text(shown.point), expected=expected, answer=answer)


def _number(value) -> float | int:
    return int(value) if value.is_Integer else float(value)


def counterexample_json(shown: Counterexample) -> dict:
    return {
        "params": {k: _number(v) for k, v in shown.point.params.items()},
        "data": {k: [_number(v) for v in vs] for k, vs in shown.point.data.items()},
        "expected_value": _number(shown.expected),
        "answer_value": None if shown.answer is None else _number(shown.answer),
        "answer_defined": shown.answer is not None,
    }


def verdict_json(verdict: Verdict, language: str, wrt: str) -> dict:
    """The documented JSON verdict (see the README): fields are only ever added."""
    shown = verdict.counterexample
    return {
        "correct": verdict.correct,
        "expected": to_unicode(verdict.expected, verdict.params),
        "answer": to_text(verdict.answer),
        "diagnosis": diagnosis_sentence(verdict, language, wrt),
        "diagnosis_code": None if verdict.correct else verdict.diagnosis,
        "diagnosis_detail": None if verdict.correct else detail_text(verdict),
        "counterexample": None if shown is None else counterexample_json(shown),
        "symbolic": verdict.symbolic,
        "points": verdict.points,
    }


def verdict_text(verdict: Verdict, language: str, wrt: str) -> str:
    words = messages(language)["check"]
    lines = [words["right"] if verdict.correct else words["wrong"]]
    expected = to_unicode(verdict.expected, verdict.params)
    lines.append(f"{words['expected']}: ∂L/∂{unicode_name(wrt)} = {expected}")
    if not verdict.correct:
        lines.append(f"{words['answer']}: {to_text(verdict.answer)}")
        lines.append(f"{words['diagnosis']}: {diagnosis_sentence(verdict, language, wrt)}")
        lines.append(counterexample_sentence(verdict.counterexample, language))
    return "\n".join(lines)


# -- a class ----------------------------------------------------------------------------------


class ProblemCode(StrEnum):
    """Why a row could not be graded; each is a key of the catalogs' [problems] section."""

    BLANK_LINE = "blank_line"
    NO_CELLS = "no_cells"
    BAD_QUOTE = "bad_quote"  # values: error (csv's own words)
    NOT_UTF8 = "not_utf8"
    CELL_COUNT = "cell_count"  # values: cells, header
    NO_STUDENT = "no_student"
    NO_ANSWER = "no_answer"
    UNREADABLE = "unreadable"  # values: message (the parser's, with its column)
    BEYOND_LIMITS = "beyond_limits"  # values: point
    UNDECIDED = "undecided"
    TIME_LIMIT = "time_limit"  # values: seconds
    MEMORY_LIMIT = "memory_limit"  # values: mib
    FAILED = "failed"  # values: error


@dataclass(frozen=True)
class Problem:
    code: ProblemCode
    values: tuple[tuple[str, object], ...] = ()  # what its sentence names

    def sentence(self, language: str) -> str:
        values = {
            name: point_text(value) if isinstance(value, Point) else value
            for name, value in self.values
        }
        return messages(language)["problems"][self.code].format(**values)


@dataclass(frozen=True)
class Submission:
    line: int
    student: str  # control characters already replaced
    answer: str | None  # None when the row is malformed
    problem: Problem | None = None


@dataclass(frozen=True)
class Graded:
    """One distinct answer text: its verdict, or why it could not be graded."""

    verdict: Verdict | None
    problem: Problem | None = None


@dataclass(frozen=True)
class ClassReport:
    lines: int  # lines of the class file, the header included
    submissions: list[Submission]
    graded: dict[str, Graded]

    def status(self, submission: Submission) -> str:
        if submission.answer is None or self.graded[submission.answer].verdict is None:
            return "invalid"
        return "right" if self.graded[submission.answer].verdict.correct else "wrong"

    def problem(self, submission: Submission) -> Problem | None:
        if submission.problem or submission.answer is None:
            return submission.problem
        return self.graded[submission.answer].problem


def accounted(report: ClassReport) -> int:
    """Rows reported: every line after the header, once each, or an error (a bug, not input)."""
    lines = [s.line for s in report.submissions]
    if lines != list(range(2, report.lines + 1)):
        missing = sorted(set(range(2, report.lines + 1)) - set(lines))[:5]
        raise RuntimeError(f"rows lost or repeated in the class report (lines {missing}…)")
    return len(lines)


@dataclass
class _Answer:
    """One distinct answer (equal expressions are one answer) and the students who gave it."""

    label: str
    text: str  # as the first student wrote it
    graded: Graded
    lines: list[int] = field(default_factory=list)


def _answers(report: ClassReport) -> dict[str, _Answer]:
    """Distinct answers by the expression they parse to, most frequent first: A1, A2…"""
    groups: dict[object, _Answer] = {}
    keys: dict[str, object] = {}  # answer text → the expression it parses to, or the text
    for s in report.submissions:
        if s.answer is None:
            continue
        if s.answer not in keys:
            verdict = report.graded[s.answer].verdict
            keys[s.answer] = verdict.answer if verdict else s.answer
        key = keys[s.answer]
        if key not in groups:
            groups[key] = _Answer("", s.answer, report.graded[s.answer])
        groups[key].lines.append(s.line)
    ordered = sorted(groups.values(), key=lambda a: (-len(a.lines), a.lines[0]))
    for k, answer in enumerate(ordered, 1):
        answer.label = f"A{k}"
    by_text = {text: groups[key] for text, key in keys.items()}
    return {text: by_text[text] for text in by_text}


def class_csv(report: ClassReport, feedback: dict[int, str]) -> str:
    """grades.csv: one row per line of the class file (see GRADES_COLUMNS)."""
    answers = _answers(report)
    cached: dict[str, list[str]] = {}  # the columns an answer decides, printed once

    def columns(text: str) -> list[str]:
        if text not in cached:
            verdict = report.graded[text].verdict
            wrong = verdict is not None and not verdict.correct
            shown = counterexample_json(verdict.counterexample) if wrong else None
            cached[text] = [
                (verdict.diagnosis or "none") if wrong else "",
                json.dumps(shown, separators=(",", ":"), ensure_ascii=False) if shown else "",
                (detail_text(verdict) or "") if wrong else "",
            ]
        return cached[text]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GRADES_COLUMNS)
    for s in report.submissions:
        status = report.status(s)
        problem = report.problem(s)
        diagnosis, counterexample, detail = columns(s.answer) if s.answer else ("", "", "")
        writer.writerow(
            [
                s.line,
                spreadsheet_safe(s.student),
                _answer_cell(s.answer or "", status),
                status,
                diagnosis,
                counterexample,
                problem.sentence("en") if problem else "",
                detail,
                problem.code if problem else "",
                answers[s.answer].label if s.answer else "",
                SCORES[status],
                f"feedback/{feedback[s.line]}" if s.line in feedback else "",
            ]
        )
    return buffer.getvalue()


def _answer_cell(answer: str, status: str) -> str:
    """An answer cell: math as written, but an unreadable one cannot start a formula."""
    if answer[:1] in ("+", "-") and status != "invalid":
        return answer
    return spreadsheet_safe(answer)


def gradebook_csv(report: ClassReport) -> str:
    """gradebook.csv for Moodle's grade import (Grades → Import → CSV file): map Student to the
    user field the class file's names are (username, email or ID number), Score to the grade
    item. Right 100, wrong 0, invalid empty (Moodle skips an empty grade: check it by hand)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Student", "Score"])
    for s in report.submissions:
        if s.student:
            writer.writerow([spreadsheet_safe(s.student), SCORES[report.status(s)]])
    return buffer.getvalue()


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "—"


def _lines_text(lines: list[int]) -> str:
    """[2, 3, 4, 9] → "2–4, 9"."""
    runs: list[list[int]] = []
    for line in lines:
        if runs and line == runs[-1][-1] + 1:
            runs[-1].append(line)
        else:
            runs.append([line])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _task_sentences(derivation: Derivation, wrt: str, words: dict) -> tuple[str, str]:
    """ "The loss is L = …; the task: ∂L/∂w." and "The derivative is ∂L/∂w = …"."""
    params = derivation.loss.params
    partial = next(p for p in derivation.partials if p.param == wrt)
    task = words["task"].format(
        loss=to_unicode(derivation.loss.expr, params), wrt=unicode_name(wrt)
    )
    expected = words["expected"].format(
        wrt=unicode_name(wrt), expected=to_unicode(partial.textbook, params)
    )
    return task, expected


def class_markdown(report: ClassReport, derivation: Derivation, wrt: str, language: str) -> str:
    """The class report: summary and line count check, mistakes, distinct answers, invalid rows
    by reason, each student (up to PER_STUDENT_ROWS rows)."""
    words = {**messages(language)["check"], **messages(language)["report"]}
    answers = _answers(report)
    distinct = sorted({id(a): a for a in answers.values()}.values(), key=lambda a: int(a.label[1:]))
    statuses = collections.Counter(report.status(s) for s in report.submissions)
    rows = len(report.submissions)
    blank = sum(
        1 for s in report.submissions if report.problem(s) == Problem(ProblemCode.BLANK_LINE)
    )
    total = rows - blank  # the class, for shares: every row but empty lines
    task, expected = _task_sentences(derivation, wrt, words)
    lines = words["lines"].format(
        lines=f"{report.lines:,}", rows=f"{rows:,}", reported=f"{accounted(report):,}"
    )
    long_answers = [
        f"{a.label}: {wrapped_code(a.text)}"
        for a in distinct
        if len(" ".join(a.text.split())) > TABLE_TEXT
    ]
    per_student = rows <= PER_STUDENT_ROWS
    view = {
        "task": markdown_text(task),
        "expected": markdown_text(expected),
        "lines": markdown_text(lines),
        "summary": [
            (words["rows"], f"{rows:,}", ""),
            (words["distinct"], f"{len(distinct):,}", ""),
            *(
                (words[s], f"{statuses[s]:,}", _share(statuses[s], total))
                for s in ("right", "wrong", "invalid")
            ),
        ],
        "mistakes": _mistake_rows(distinct, total, wrt, language, words),
        "answers": [_answer_row(a, wrt, language, words) for a in distinct],
        "long_answers": long_answers,
        "invalid": _invalid_rows(report, language, words),
        "per_student": per_student,
        "per_student_note": markdown_text(words["per_student_in_csv"].format(count=f"{rows:,}")),
        "students": [_student_row(report, s, answers, words) for s in report.submissions]
        if per_student
        else [],
        "files": markdown_text(words["files"]),
    }
    words = {key: markdown_text(value) for key, value in words.items()}
    return template("report.md.j2").render(report=view, words=words)


def _mistake_rows(distinct: list[_Answer], total: int, wrt: str, language: str, words) -> list:
    """Wrong answers grouped by mistake and quantity, the most frequent first, each with an
    example answer, its sentence and its counterexample."""
    groups: dict[tuple, list[_Answer]] = collections.defaultdict(list)
    for answer in distinct:
        verdict = answer.graded.verdict
        if verdict is not None and not verdict.correct:
            groups[(_key(verdict), detail_text(verdict))].append(answer)
    ordered = sorted(groups.values(), key=lambda g: -sum(len(a.lines) for a in g))
    rows = []
    for k, group in enumerate(ordered, 1):
        example, count = group[0], sum(len(a.lines) for a in group)
        verdict = example.graded.verdict
        name = mistake_name(verdict, language, wrt)
        note = words["mistake_example"].format(
            label=f"M{k}",
            mistake=name,
            sentence=diagnosis_sentence(verdict, language, wrt),
            answer=example.label,
            counterexample=counterexample_sentence(verdict.counterexample, language),
        )
        rows.append(
            {
                "label": f"M{k}",
                "name": markdown_text(shorten(name)),
                "count": f"{count:,}",
                "share": _share(count, total),
                "example": f"{example.label} {markdown_code(shorten(example.text, 24), True)}",
                "note": markdown_text(note),
            }
        )
    return rows


def _answer_row(answer: _Answer, wrt: str, language: str, words) -> dict:
    verdict = answer.graded.verdict
    if verdict is None:
        status, mistake = "invalid", answer.graded.problem.sentence(language)
    elif verdict.correct:
        status, mistake = "right", ""
    else:
        status, mistake = "wrong", mistake_name(verdict, language, wrt)
    return {
        "label": answer.label,
        "answer": markdown_code(shorten(answer.text, 30), True),
        "count": f"{len(answer.lines):,}",
        "verdict": words[status],
        "mistake": markdown_text(shorten(mistake, 36)),
    }


def _invalid_rows(report: ClassReport, language: str, words) -> list[dict]:
    """Invalid rows grouped by reason, the largest group first, with their lines and one
    example's full reason."""
    groups: dict[str, list[Submission]] = collections.defaultdict(list)
    for s in report.submissions:
        if report.status(s) == "invalid":
            groups[report.problem(s).code].append(s)
    rows = []
    for group in sorted(groups.values(), key=lambda g: (-len(g), g[0].line)):
        problem = report.problem(group[0])
        summary = words["invalid_group"].format(
            reason=messages(language)["invalid"][problem.code],
            count=f"{len(group):,}",
            lines=_lines_text([s.line for s in group]),
        )
        example = words["invalid_example"].format(
            line=group[0].line, detail=problem.sentence(language)
        )
        rows.append({"summary": markdown_text(summary), "example": markdown_text(example)})
    return rows


def _student_row(report: ClassReport, s: Submission, answers: dict, words) -> dict:
    return {
        "line": s.line,
        "student": markdown_text(shorten(s.student)) if s.student else "—",
        "answer": answers[s.answer].label if s.answer else "—",
        "verdict": words[report.status(s)],
    }


def feedback_files(
    report: ClassReport, derivation: Derivation, wrt: str, language: str, names: dict[int, str]
) -> dict[str, str]:
    """feedback/<name>.<language>.md for every student: their answer, the verdict, the
    diagnosis and the counterexample. The part an answer decides is rendered once per answer."""
    words = {**messages(language)["check"], **messages(language)["report"]}
    feedback = template("feedback.md.j2")
    task, expected = _task_sentences(derivation, wrt, words)
    bodies: dict[tuple, str] = {}
    files = {}
    for s in report.submissions:
        if s.line not in names:
            continue
        problem = report.problem(s)
        key = (s.answer, problem)
        if key not in bodies:
            verdict = report.graded[s.answer].verdict if s.answer else None
            view = {
                "task": markdown_text(task),
                "answer": wrapped_code(s.answer) if s.answer else "—",
                "verdict": words[report.status(s)],
                "lines": [
                    markdown_text(text)
                    for text in (
                        diagnosis_sentence(verdict, language, wrt) if verdict else None,
                        counterexample_sentence(verdict.counterexample, language)
                        if verdict and not verdict.correct
                        else None,
                        words["feedback_invalid"].format(reason=problem.sentence(language))
                        if problem
                        else None,
                        expected,
                    )
                    if text
                ],
            }
            bodies[key] = feedback.render(
                view=view, words={k: markdown_text(v) for k, v in words.items()}
            )
        title = words["feedback_title"].format(student=shorten(s.student, 80))
        where = markdown_text(words["feedback_line"].format(line=s.line))
        header = f"# {markdown_text(title)}\n\n{where}\n\n"
        files[f"{names[s.line]}.{language}.md"] = header + bodies[key]
    return files
