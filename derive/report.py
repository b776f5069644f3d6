"""Verdicts → words and files: one answer as text or JSON, a class as Markdown, HTML and CSV.

A class's file is read row by row: a malformed row is reported with its line number and every
other row is still graded; nothing is lost.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from derive.catalog import environment, messages
from derive.check import Graded, Point, Verdict
from derive.data import read_text
from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.lesson import markdown_to_html
from derive.parallel import in_parallel
from derive.printing import to_unicode, unicode_name

PER_STUDENT_ROWS = 2000  # above this, the report lists distinct answers; the CSV has everyone


# -- one answer -------------------------------------------------------------------------------


def diagnosis_sentence(verdict: Verdict, language: str, wrt: str) -> str | None:
    if verdict.correct:
        return None
    words = messages(language)["check"]
    detail = (
        unicode_name(verdict.detail) if verdict.diagnosis == "wrong_parameter" else verdict.detail
    )
    return words[verdict.diagnosis or "none"].format(detail=detail, wrt=unicode_name(wrt))


def point_text(point: Point) -> str:
    params = [f"{unicode_name(name)} = {to_unicode(value)}" for name, value in point.params.items()]
    data = [
        f"{unicode_name(name)} = ({', '.join(to_unicode(v) for v in values)})"
        for name, values in point.data.items()
    ]
    return ", ".join(params + data)


def _number(value) -> float | int:
    return int(value) if value.is_Integer else float(value)


def verdict_json(verdict: Verdict, language: str, wrt: str) -> dict:
    """The documented JSON verdict (see the README)."""
    shown = verdict.counterexample
    return {
        "correct": verdict.correct,
        "expected": verdict.expected,
        "answer": verdict.answer,
        "diagnosis": diagnosis_sentence(verdict, language, wrt),
        "diagnosis_code": None if verdict.correct else verdict.diagnosis,
        "counterexample": None
        if shown is None
        else {
            "params": {k: _number(v) for k, v in shown.point.params.items()},
            "data": {k: [_number(v) for v in vs] for k, vs in shown.point.data.items()},
            "expected_value": _number(shown.expected),
            "answer_value": _number(shown.answer),
        },
    }


def verdict_text(verdict: Verdict, language: str, wrt: str) -> str:
    words = messages(language)["check"]
    lines = [words["right"] if verdict.correct else words["wrong"]]
    lines.append(f"{words['expected']}: ∂L/∂{unicode_name(wrt)} = {verdict.expected}")
    if not verdict.correct:
        lines.append(f"{words['answer']}: {verdict.answer}")
        lines.append(f"{words['diagnosis']}: {diagnosis_sentence(verdict, language, wrt)}")
        lines.append(_counterexample_text(verdict, words))
    return "\n".join(lines)


def _counterexample_text(verdict: Verdict, words: dict) -> str:
    shown = verdict.counterexample
    if shown is None:
        return words["no_counterexample"]
    return words["counterexample"].format(
        point=point_text(shown.point),
        expected=_value_text(shown.expected),
        answer=_value_text(shown.answer),
    )


def _value_text(value) -> str:
    return to_unicode(value) if value.is_Rational else f"{float(value):.10g}".replace("-", "−")


# -- a class ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    line: int
    student: str
    answer: str | None  # None when the row is malformed
    problem: str | None = None


def read_submissions(path: Path) -> list[Submission]:
    """Rows of `student,answer` (a header row names the columns); malformed rows are kept, with
    what is wrong, so that they are reported rather than lost."""
    text = read_text(path, "answers file")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    if "student" not in header or "answer" not in header:
        raise DeriveError(f"{path}:1: the header must name the columns student and answer")
    who, what = header.index("student"), header.index("answer")
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problem = f"{len(row)} cells, but the header has {len(header)}"
                rows.append(
                    Submission(line, row[who].strip() if len(row) > who else "", None, problem)
                )
            elif not row[what].strip():
                rows.append(Submission(line, row[who].strip(), None, "the answer is empty"))
            else:
                rows.append(Submission(line, row[who].strip(), row[what].strip()))
    except csv.Error as error:
        raise DeriveError(f"{path}:{reader.line_num}: not a readable CSV row ({error})") from None
    return rows


@dataclass(frozen=True)
class ClassReport:
    submissions: list[Submission]
    graded: dict[str, Graded]

    def status(self, submission: Submission) -> str:
        if submission.answer is None or self.graded[submission.answer].verdict is None:
            return "invalid"
        return "right" if self.graded[submission.answer].verdict.correct else "wrong"


def write_report(
    report: ClassReport, derivation: Derivation, wrt: str, out: Path, languages: tuple[str, ...]
) -> list[Path]:
    """grades.csv and report.<lang>.md/.html, written atomically into `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "grades.csv").write_text(_csv(report, wrt), encoding="utf-8")

        def write(language: str) -> None:
            markdown = _markdown(report, derivation, wrt, language)
            (staging / f"report.{language}.md").write_text(markdown, encoding="utf-8")
            title = messages(language)["check"]["title"]
            html = markdown_to_html(markdown, language, title, staging)
            (staging / f"report.{language}.html").write_text(html, encoding="utf-8")

        in_parallel(write, languages)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p for p in out.iterdir())


def _csv(report: ClassReport, wrt: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["line", "student", "answer", "verdict", "diagnosis", "counterexample", "problem"]
    )
    for submission in report.submissions:
        status = report.status(submission)
        graded = report.graded.get(submission.answer) if submission.answer else None
        verdict = graded.verdict if graded else None
        problem = submission.problem or (graded.error if graded else None) or ""
        shown = verdict_json(verdict, "en", wrt)["counterexample"] if verdict else None
        writer.writerow(
            [
                submission.line,
                submission.student,
                submission.answer or "",
                status,
                (verdict.diagnosis or "none") if status == "wrong" else "",
                json.dumps(shown, separators=(",", ":")) if shown else "",
                problem,
            ]
        )
    return buffer.getvalue()


def _markdown(report: ClassReport, derivation: Derivation, wrt: str, language: str) -> str:
    words = messages(language)["check"]
    counts = collections.Counter(report.status(s) for s in report.submissions)
    mistakes = collections.Counter(
        report.graded[s.answer].verdict.diagnosis or "none"
        for s in report.submissions
        if report.status(s) == "wrong"
    )
    common = mistakes.most_common(1)
    most_common = "—"
    if common:
        (key, count), *_ = common
        most_common = f"{messages(language)['mistakes'][key]} ({count})"
    rows = []
    per_student = len(report.submissions) <= PER_STUDENT_ROWS
    if per_student:
        for s in report.submissions:
            rows.append(_row(report, s.answer, wrt, language, words, s.line, s.student, s.problem))
    else:
        by_answer = collections.Counter(s.answer for s in report.submissions if s.answer)
        for answer, count in by_answer.most_common():
            rows.append(_row(report, answer, wrt, language, words, None, str(count), None))
    partial = next(p for p in derivation.partials if p.param == wrt)
    view = {
        "loss": to_unicode(derivation.loss.expr, derivation.loss.params),
        "wrt": unicode_name(wrt),
        "expected": to_unicode(partial.textbook, derivation.loss.params),
        "students": len(report.submissions),
        "distinct": len({s.answer for s in report.submissions if s.answer}),
        "right": counts["right"],
        "wrong": counts["wrong"],
        "invalid": counts["invalid"],
        "most_common": most_common,
        "per_student": per_student,
        "rows": rows,
    }
    return environment.get_template(f"{language}/report.md.j2").render(report=view, words=words)


def _row(report, answer, wrt, language, words, line, student, problem) -> dict:
    graded = report.graded.get(answer) if answer else None
    verdict = graded.verdict if graded else None
    if verdict is None:
        reason = problem or (graded.error if graded else "")
        return {
            "line": line,
            "student": _cell(student),
            "answer": _code(answer or ""),
            "verdict": words["invalid"],
            "diagnosis": _cell(reason),
            "counterexample": "",
        }
    return {
        "line": line,
        "student": _cell(student),
        "answer": _code(answer),
        "verdict": words["right"] if verdict.correct else words["wrong"],
        "diagnosis": _cell(diagnosis_sentence(verdict, language, wrt) or ""),
        "counterexample": "" if verdict.correct else _cell(_counterexample_text(verdict, words)),
    }


def _code(text: str) -> str:
    """Text for a `code span` in a table cell: literal, so only pipes and backticks matter."""
    if not text.strip():
        return "—"
    quoted = text.replace("|", "\\|").replace("`", "'").replace("\n", " ").replace("\r", " ")
    return f"`{quoted}`"


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: no pipes, no line breaks, no HTML, no $ math."""
    # raw HTML is off in the renderer, so < and > stay text without help here
    for special in ("\\", "|", "$", "*", "_", "`"):
        text = text.replace(special, "\\" + special)
    return text.replace("\n", " ").replace("\r", " ")
