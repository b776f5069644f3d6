"""Data for losses over data: CSV or inline, and every way it can be wrong, with its place."""

from __future__ import annotations

import numpy as np
import pytest

from derive.app.data import MAX_ROWS, load_data
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
        ("x,y\n1,\u0663\n", ":2, column y: '\u0663' is not a number"),  # Arabic-Indic 3
        ("x,y\n\uff12,1\n", ":2, column x: '\uff12' is not a number"),  # fullwidth 2
        ("x,y\n1_0,1\n", "'1_0' is not a number"),
        ("x,y\n1,2\n3,4,5\n", ":3: 3 cells"),
        ("x,n\n1,2\n", "clashes with the number of rows"),
        ("np,y\n1,2\n", "clashes with NumPy in the lesson's notebook"),
        ("x,plt\n1,2\n", "clashes with matplotlib"),
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


def test_the_plain_and_the_quoted_file_read_the_same_numbers(tmp_path):
    rng = np.random.default_rng(3)
    table = rng.normal(0, 1e3, (500, 3))
    lines = [",".join(f"{v:.9g}" for v in row) for row in table]
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_text("a,b,c\r\n" + "\r\n".join(lines) + "\r\n")
    quoted.write_text('"a","b","c"\n' + "\n".join(lines) + "\n\n")  # the csv module's path
    expected = np.array([[float(v) for v in line.split(",")] for line in lines])
    for path in (plain, quoted):
        data = load_data(str(path))
        assert np.array_equal(np.column_stack([data["a"], data["b"], data["c"]]), expected)


def test_a_file_with_too_many_rows_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("x\n" + "1\n" * (MAX_ROWS + 1))
    with pytest.raises(DeriveError, match=f"at most {MAX_ROWS} rows"):
        load_data(str(path))


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
