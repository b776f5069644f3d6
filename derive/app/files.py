"""Users' files: read within limits and reported with their place; nothing guessed, nothing
lost."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from derive.core.errors import DeriveError
from derive.show.report import Problem, ProblemCode, Submission, clean

MAX_FILE_BYTES = 200 * 1024 * 1024


def read_text(path: Path, what: str) -> str:
    """A user's text file (data, answers, a course spec), within the size limit, as UTF-8."""
    return _decode(_read_bytes(path, what), path)


def _read_bytes(path: Path, what: str) -> bytes:
    if str(path) == "-":  # `--answers -`: the file arrives on stdin
        raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise DeriveError(f"stdin: more than {MAX_FILE_BYTES // 2**20} MiB")
        return raw
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DeriveError(f"{path}: the file is larger than {MAX_FILE_BYTES // 2**20} MiB")
        return path.read_bytes()
    except OSError as error:
        raise DeriveError(f"{path}: cannot read the {what} ({error.strerror})") from None


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DeriveError(f"{path}: not a UTF-8 text file") from None


def read_submissions(path: Path) -> tuple[int, list[Submission]]:
    """The lines of a class file (a header naming the columns student and answer, then one row
    per line) and one Submission for every line after the header, in order: graded later, or
    invalid with its reason. Each line is read on its own, so an unclosed quote or bytes that
    are not UTF-8 spoil that line only; quoted cells cannot span lines."""
    raw = _read_bytes(path, "answers file")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line does not start another
    if not lines:
        raise DeriveError(f"{path}: the file is empty (expected a header: student,answer)")
    try:
        header_text = lines[0].removesuffix(b"\r").decode("utf-8-sig")
        header = [h.strip().lower() for h in next(csv.reader([header_text], strict=True))]
    except (UnicodeDecodeError, csv.Error, StopIteration):
        header = []
    if "student" not in header or "answer" not in header:
        raise DeriveError(f"{path}:1: the header must name the columns student and answer")
    who, what = header.index("student"), header.index("answer")
    submissions = [
        _submission(number, line.removesuffix(b"\r"), len(header), who, what)
        for number, line in enumerate(lines[1:], start=2)
    ]
    return len(lines), submissions


def _submission(number: int, line: bytes, width: int, who: int, what: int) -> Submission:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        name = _name(line.decode("utf-8", errors="replace"), who)
        return Submission(number, name, None, Problem(ProblemCode.NOT_UTF8))
    if not text.strip():
        return Submission(number, "", None, Problem(ProblemCode.BLANK_LINE))
    try:
        cells = next(csv.reader([text], strict=True))
    except csv.Error as error:
        problem = Problem(ProblemCode.BAD_QUOTE, (("error", str(error)),))
        return Submission(number, _name(text, who), None, problem)
    student = clean(cells[who]).strip() if len(cells) > who else ""
    if not any(cell.strip() for cell in cells):
        return Submission(number, "", None, Problem(ProblemCode.NO_CELLS))
    if len(cells) != width:
        counts = (("cells", len(cells)), ("header", width))
        return Submission(number, student, None, Problem(ProblemCode.CELL_COUNT, counts))
    answer = clean(cells[what], keep_tabs=True).strip()
    if not student:
        return Submission(number, "", None, Problem(ProblemCode.NO_STUDENT))
    if not answer:
        return Submission(number, student, None, Problem(ProblemCode.NO_ANSWER))
    return Submission(number, student, answer)


def _name(text: str, who: int) -> str:
    """The student's name in a broken line, as well as it can be read (for the report)."""
    cells = next(csv.reader([text]), [])
    return clean(cells[who]).strip() if len(cells) > who else ""
