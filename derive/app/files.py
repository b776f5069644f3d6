"""Users' files: read within limits and reported with their place; nothing guessed, nothing
lost."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from derive.core.errors import DeriveError
from derive.show.report import Submission

MAX_FILE_BYTES = 200 * 1024 * 1024


def read_text(path: Path, what: str) -> str:
    """A user's text file (data, answers, a course spec), within the size limit, as UTF-8."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DeriveError(f"{path}: the file is larger than {MAX_FILE_BYTES // 2**20} MiB")
        return path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DeriveError(f"{path}: cannot read the {what} ({error.strerror})") from None
    except UnicodeDecodeError:
        raise DeriveError(f"{path}: not a UTF-8 text file") from None


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
