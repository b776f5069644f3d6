"""Data for losses over data: CSV or inline, and every way it can be wrong, with its place."""

from __future__ import annotations

import numpy as np
import pytest

from derive.app.data import load_data
from derive.core.errors import DeriveError


def test_inline_columns():
    data = load_data("x=1,2,3; y=2,3,4")
    assert list(data) == ["x", "y"]
    assert np.array_equal(data["y"], [2.0, 3.0, 4.0])


def test_csv_with_header(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x,y\n1,2\n2,3.5\n\n3,-4e-1\n")
    data = load_data(str(path))
    assert np.array_equal(data["x"], [1.0, 2.0, 3.0])
    assert np.array_equal(data["y"], [2.0, 3.5, -0.4])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("x,y\n", "no data rows"),
        ("x,y\n1,2\n3\n", ":3: 1 cells, but the header has 2"),
        ("x,y\n1,2\n3,abc\n", ":3, column y: 'abc' is not a number"),
        ("x,y\n1,nan\n", ":2, column y: 'nan' is not a number"),
        ("x,y\n1,inf\n", "'inf' is not a number"),
        ("x,y\n1,1e400\n", "too large"),
        ("x,y\n1,\n", "an empty cell"),
        ("x,x\n1,2\n", "appears twice"),
        ("x,exp\n1,2\n", "clashes with the function"),
        ("x,my col\n1,2\n", "not a usable column name"),
    ],
)
def test_bad_csv_names_file_line_and_column(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DeriveError) as raised:
        load_data(str(path))
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x=1,2,3; y=1,2", "columns differ in length (x has 3, y has 2)"),
        ("x=1,a", "value 2: 'a' is not a number"),
        ("x=1; x=2", "given twice"),
        ("log=1,2", "clashes"),
    ],
)
def test_bad_inline_data(spec, message):
    with pytest.raises(DeriveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_data(spec)


def test_missing_file_is_a_clean_error():
    with pytest.raises(DeriveError, match="cannot read"):
        load_data("no/such/file.csv")


def test_a_data_column_cannot_also_be_a_parameter(derive_cli):
    result = derive_cli(
        "descend", "--loss", "mean((w*x - y)**2)", "--data", "x=1,2; y=1,2", "--params", "w,x"
    )
    assert result.code == 2
    assert "x is both a data column and a parameter" in result.err


def test_data_name_outside_mean_is_refused(derive_cli):
    result = derive_cli("descend", "--loss", "w*x", "--data", "x=1,2")
    assert result.code == 2
    assert "data column 'x' is used outside mean(...) or sum(...)" in result.err
