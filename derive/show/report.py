"""Verdicts → words and files: one answer as text or JSON, a class as Markdown, HTML and CSV.

A class's file is read row by row: a malformed row is reported with its line number and every
other row is still graded; nothing is lost.
"""

from __future__ import annotations

import collections
import csv
import io
import json
from dataclasses import dataclass

from derive.core.check import Graded, Point, Verdict
from derive.core.derivation import Derivation
from derive.core.symbols import to_text
from derive.show.catalog import environment, messages
from derive.show.printing import to_unicode, unicode_name

PER_STUDENT_ROWS = 2000  # above this, the report lists distinct answers; the CSV has everyone


# -- one answer -------------------------------------------------------------------------------


def diagnosis_sentence(verdict: Verdict, language: str, wrt: str) -> str | None:
    if verdict.correct:
        return None
    words = messages(language)["check"]
    detail = detail_text(verdict)
    return words[verdict.diagnosis or "none"].format(detail=detail, wrt=unicode_name(wrt))


def detail_text(verdict: Verdict) -> str | None:
    """What a diagnosis names, as printed: `w`, `1/2`, `x (u = w x)`, `w xᵢ + b`."""
    detail, params = verdict.detail, verdict.params
    if detail is None:
        return None
    if isinstance(detail, str):
        return unicode_name(detail)
    if verdict.diagnosis == "chain":
        derivative, inner = detail
        return f"{to_unicode(derivative, params)} (u = {to_unicode(inner, params)})"
    return to_unicode(detail[0], params)


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
        "expected": to_unicode(verdict.expected, verdict.params),
        "answer": to_text(verdict.answer),
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
    expected = to_unicode(verdict.expected, verdict.params)
    lines.append(f"{words['expected']}: ∂L/∂{unicode_name(wrt)} = {expected}")
    if not verdict.correct:
        lines.append(f"{words['answer']}: {to_text(verdict.answer)}")
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


@dataclass(frozen=True)
class ClassReport:
    submissions: list[Submission]
    graded: dict[str, Graded]

    def status(self, submission: Submission) -> str:
        if submission.answer is None or self.graded[submission.answer].verdict is None:
            return "invalid"
        return "right" if self.graded[submission.answer].verdict.correct else "wrong"


def class_csv(report: ClassReport, wrt: str) -> str:
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


def class_markdown(report: ClassReport, derivation: Derivation, wrt: str, language: str) -> str:
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
