"""Data columns for losses over data: from a CSV file with a header row, or inline text.

    --data points.csv            x,y / 1,2 / 2,3 / 3,4
    --data "x=1,2,3; y=2,3,4"    inline, columns separated by ';'

Every problem is reported with its place (file:line, column name) and nothing is guessed:
ragged rows, empty cells, non-numeric or non-finite values and clashing names are errors.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from derive.app.files import read_text
from derive.core.errors import DeriveError
from derive.core.parse import RESERVED

MAX_ROWS = 1_000_000  # lessons are built and measured up to 10⁶ rows (under 1 GB)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ASCII digits only: Python's float() also reads ٣ and ２, which a teacher's file never means.
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NOT_PLAIN = re.compile(r"[^0-9eE+\-., \t\r\n]")  # anything but what plain numbers use
# Names a lesson gives to something else: n is the number of rows in every formula, and the
# notebook imports NumPy as np and matplotlib's pyplot as plt.
TAKEN_NAMES = {
    "n": "the number of rows in every formula",
    "np": "NumPy in the lesson's notebook",
    "plt": "matplotlib in the lesson's notebook",
}


def load_data(spec: str) -> dict[str, np.ndarray]:
    """Columns by name, as float arrays of one length."""
    if "=" in spec and not Path(spec).exists():
        return _inline(spec)
    return _csv(Path(spec))


def _check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("__"):
        raise DeriveError(f"{where}: {name!r} is not a usable column name (letters, digits, _)")
    if name in RESERVED:
        raise DeriveError(f"{where}: column {name!r} clashes with the function or constant {name}")
    if name in TAKEN_NAMES:
        raise DeriveError(f"{where}: column {name!r} clashes with {TAKEN_NAMES[name]}; rename it")


def _number(text: str, where: str) -> float:
    cell = text.strip()
    if not re.fullmatch(_NUMBER, cell):
        shown = repr(cell) if cell else "an empty cell"
        raise DeriveError(f"{where}: {shown} is not a number")
    value = float(cell)
    if not math.isfinite(value):
        raise DeriveError(f"{where}: {cell!r} is too large to be a finite number")
    return value


def _inline(spec: str) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, equals, values = part.partition("=")
        name = name.strip()
        if not equals:
            raise DeriveError(f"--data: expected name=v1,v2,... in {part!r}")
        _check_name(name, "--data")
        if name in columns:
            raise DeriveError(f"--data: column {name!r} is given twice")
        cells = values.split(",")
        columns[name] = np.array(
            [_number(c, f"--data {name}, value {k}") for k, c in enumerate(cells, 1)]
        )
    return _checked(columns, "--data")


def _csv(path: Path) -> dict[str, np.ndarray]:
    text = read_text(path, "data file")
    lines = text.count("\n")
    if lines > MAX_ROWS + 1:  # refused before any parsing: a 10⁷-row file in about a second
        raise DeriveError(f"{path}: {lines} lines; derive reads at most {MAX_ROWS} rows")
    fast = _plain_table(text, str(path))
    if fast is not None:
        return fast
    try:
        return _read_csv(csv.reader(io.StringIO(text, newline="")), str(path))
    except csv.Error as error:
        raise DeriveError(f"{path}: not a readable CSV file ({error})") from None


def _plain_table(text: str, name: str) -> dict[str, np.ndarray] | None:
    """The common file (a header, then rows of plain ASCII numbers and commas) read in one
    pass; None for anything else (quotes, blank lines, a bad cell), which the careful reader
    below then reads or reports with its line and column."""
    head, newline, body = text.partition("\n")
    header = [h.strip() for h in head.rstrip("\r").split(",")]
    if not newline or not body.strip() or not all(_NAME.fullmatch(h) for h in header):
        return None
    lines = body.strip().split("\n")
    if _NOT_PLAIN.search(body) or any(line.count(",") != len(header) - 1 for line in lines):
        return None
    for h in header:
        _check_name(h, f"{name}:1")
    if len(set(header)) != len(header):
        return None
    try:  # float() of ASCII digits, signs, points and exponents: exactly the cells of _NUMBER
        values = np.array(",".join(lines).split(","), dtype=float)
    except ValueError:  # "", "1e", "1.2.3", "+-1": the careful reader says where
        return None
    if not np.all(np.isfinite(values)):
        return None
    table = values.reshape(-1, len(header))
    return {h: table[:, k].copy() for k, h in enumerate(header)}


def _read_csv(reader, name: str) -> dict[str, np.ndarray]:
    header = next(reader, None)
    if header is None:
        raise DeriveError(f"{name}: the file is empty (expected a header row, e.g. x,y)")
    header = [h.strip() for h in header]
    for h in header:
        _check_name(h, f"{name}:1")
    if len(set(header)) != len(header):
        raise DeriveError(f"{name}:1: a column name appears twice")
    rows: list[list[float]] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DeriveError(f"{name}:{line}: {len(row)} cells, but the header has {len(header)}")
        rows.append(
            [_number(c, f"{name}:{line}, column {h}") for c, h in zip(row, header, strict=True)]
        )
        if len(rows) > MAX_ROWS:
            raise DeriveError(f"{name}: more than {MAX_ROWS} rows")
    if not rows:
        raise DeriveError(f"{name}: the file has a header but no data rows")
    table = np.array(rows)
    return {h: table[:, k].copy() for k, h in enumerate(header)}


def _checked(columns: Mapping[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    if not columns:
        raise DeriveError(f"{where}: no columns given")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise DeriveError(f"{where}: columns differ in length ({shown})")
    return dict(columns)
