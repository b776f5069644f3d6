"""A class file as teachers really have them: 2,000 rows with a broken quote, empty rows, a row of
empty cells, bytes that are not UTF-8, hostile and colliding names. Every line is accounted for,
user text is text in every output, and each student gets a feedback file."""

from __future__ import annotations

import csv
import io
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from derive.show.report import GRADES_COLUMNS, feedback_names, file_stem, markdown_text

MSE = "mean((w*x+b-y)**2)"
DATA = "x=1,2,3; y=2,3,4"
RIGHT, HALF, OTHER = "2*mean((w*x+b-y)*x)", "mean((w*x+b-y)*x)", "2*mean(w*x+b-y)"
HOSTILE = [
    "![a](nope.png)",
    "![a](/etc/hostname.png)",
    "[x](http://127.0.0.1:9/phish)",
    "<img src=x onerror=alert(1)>",
    "<script>document.title='PWNED'</script>",
    "$\\style{color:red}{x}$",
    "evil.com",
    "*bold* _u_ `code`",
    "# heading",
    "- item",
    "a|b|c",
    "nul\x00byte\x1b[31mred\u202eevil",
]


def unescaped(markdown: str) -> list[str]:
    """Markup from the hostile names that is not backslash-escaped (it would render)."""
    marks = ("![", "[x]", "](", "<img", "<script", "$\\style", "`code`", "*bold*", "\n# ")
    return [m for m in marks if re.search(r"(?<!\\)" + re.escape(m), markdown)]


def grade(derive_cli, tmp_path, content: bytes | str, *extra: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "class.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "report"
    args = ["check", "--loss", MSE, "--data", DATA, "--wrt", "w", "--answers", str(path)]
    result = derive_cli(*args, "--out", str(out), "--jobs", "2", *extra)
    assert result.code == 0, result.err
    return out


def rows_of(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def big_class(tmp_path_factory):
    """2,000 rows: a broken quote on line 270, empty lines, a ',' row, a line of Latin-1."""
    lines = [b"student,answer"]
    for k in range(2, 2002):
        if k == 270:
            lines.append(b's0270,"2*mean((w*x+b-y)*x)')  # the quote never closes
        elif k in (500, 501, 1999):
            lines.append(b"")
        elif k == 777:
            lines.append(b",")
        elif k == 1234:
            lines.append("s1234,2*mean((w*x+b-y)*x) # é".encode("latin-1"))
        else:
            answer = (RIGHT, HALF, OTHER)[k % 3]
            lines.append(f"s{k:04d},{answer}".encode())
    return b"\r\n".join(lines) + b"\r\n"


def test_every_line_of_2000_is_accounted_for(derive_cli, tmp_path, big_class):
    out = grade(derive_cli, tmp_path, big_class)
    rows = rows_of(out)
    assert [int(r["line"]) for r in rows] == list(range(2, 2002))  # each line once, in order
    by_line = {int(r["line"]): r for r in rows}
    assert by_line[270]["verdict"] == "invalid" and by_line[270]["problem_code"] == "bad_quote"
    assert by_line[270]["student"] == "s0270"
    assert by_line[271]["verdict"] in ("right", "wrong")  # the lines after it are read
    assert all(by_line[k]["problem_code"] == "blank_line" for k in (500, 501, 1999))
    assert by_line[777]["problem_code"] == "no_cells"
    assert by_line[1234]["problem_code"] == "not_utf8" and by_line[1234]["student"] == "s1234"
    graded = [r for r in rows if r["verdict"] != "invalid"]
    assert len(graded) == 2000 - 6
    for r in graded:  # the verdicts, recomputed from the answer each row holds
        k = int(r["student"][1:])
        assert r["verdict"] == ("right" if (RIGHT, HALF, OTHER)[k % 3] == RIGHT else "wrong")
    report = (out / "report.en.md").read_text(encoding="utf-8")
    assert "2,001 lines read\\: the header and 2,000 rows\\. All 2,000 rows are reported" in report
    assert "Empty lines\\: 3 (lines 500, 501, 1999)\\." in report
    assert "Rows with broken quotes\\: 1 (lines 270)\\." in report
    zh = (out / "report.zh.md").read_text(encoding="utf-8")
    assert (
        "共读入 2,001 行：表头和 2,000 行答案。这 2,000 行全部列在本报告和 grades\\.csv 里。" in zh
    )
    # every student has a feedback file in each language, named as grades.csv says
    named = [r for r in rows if r["student"]]
    assert len(named) == 2000 - 4  # all but the empty lines and the ',' row
    for r in named[::97]:
        for language in ("en", "zh"):
            assert (out / f"{r['feedback']}.{language}.md").is_file()
    assert len(list((out / "feedback").iterdir())) == 2 * len(named)


def test_the_mistakes_table_counts_and_shares(derive_cli, tmp_path, big_class):
    out = grade(derive_cli, tmp_path, big_class, "--lang", "en")
    rows = rows_of(out)
    half = sum(1 for r in rows if r["answer"] == HALF)
    other = sum(1 for r in rows if r["answer"] == OTHER)
    total = sum(1 for r in rows if r["problem_code"] != "blank_line")
    report = (out / "report.en.md").read_text(encoding="utf-8")
    share = f"{100 * half / total:.1f}%"
    assert f"| 1\\/2 times the derivative | {half:,} | {share} |" in report
    assert f"| ∂L\\/∂b given instead | {other:,} | {100 * other / total:.1f}% |" in report
    assert rows[1]["diagnosis_detail"] in ("1/2", "b", "")


def test_grades_csv_keeps_its_columns_and_adds_some(derive_cli, tmp_path):
    out = grade(derive_cli, tmp_path, f"student,answer\nann,{HALF}\nbo,{RIGHT}\n")
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == [
        "line",
        "student",
        "answer",
        "verdict",
        "diagnosis",
        "counterexample",
        "problem",
    ]
    assert header == GRADES_COLUMNS
    ann, bo = rows_of(out)
    assert (ann["diagnosis"], ann["diagnosis_detail"], ann["score"]) == ("factor", "1/2", "0")
    shown = json.loads(ann["counterexample"])
    w, b, x, y = shown["params"]["w"], shown["params"]["b"], shown["data"]["x"], shown["data"]["y"]
    rows = list(zip(x, y, strict=True))
    true = Fraction(2, len(rows)) * sum((Fraction(w) * a + Fraction(b) - c) * a for a, c in rows)
    assert shown["expected_value"] == pytest.approx(float(true))
    assert shown["answer_value"] == pytest.approx(float(true) / 2)
    assert (bo["verdict"], bo["score"], bo["answer_id"]) == ("right", "100", "A2")


def test_gradebook_for_moodle(derive_cli, tmp_path):
    out = grade(derive_cli, tmp_path, f"student,answer\nann,{HALF}\nbo,{RIGHT}\ncy,2*(\n,{RIGHT}\n")
    book = list(csv.reader(io.StringIO((out / "gradebook.csv").read_text())))
    assert book == [["Student", "Score"], ["ann", "0"], ["bo", "100"], ["cy", ""]]


def test_hostile_names_are_text_everywhere(derive_cli, tmp_path):
    content = "student,answer\n" + "".join(
        f'"{name.replace(chr(34), chr(34) * 2)}",{RIGHT if k % 2 else HALF}\n'
        for k, name in enumerate(HOSTILE)
    )
    content += f'"=HYPERLINK(""http://x"")",{HALF}\n'
    out = grade(derive_cli, tmp_path, content)
    for language in ("en", "zh"):
        markdown = (out / f"report.{language}.md").read_text(encoding="utf-8")
        html = (out / f"report.{language}.html").read_text(encoding="utf-8")
        assert not unescaped(markdown)
        # what the report's Markdown became (the page's own copy-button script is derive's)
        body = html.split("<main>", 1)[1].split("</main>", 1)[0]
        assert not re.search(r"<(img|a|script|iframe|svg)\b", body)
        assert not re.search(r"<[a-z]+[^>]*\son\w+=", body)  # onerror= only as text
        assert "<math" not in body  # no user text reached the math renderer
        assert "\x00" not in markdown and "\x1b" not in markdown and "\u202e" not in markdown
    grades = (out / "grades.csv").read_text(encoding="utf-8")
    assert "\x00" not in grades and "\x1b" not in grades and "\u202e" not in grades
    assert "nul\ufffdbyte\ufffd[31mred\ufffdevil" in grades
    assert "'=HYPERLINK" in grades  # a spreadsheet shows it, never runs it
    for path in (out / "feedback").iterdir():
        assert re.fullmatch(r"[\w.-]+\.(en|zh)\.md", path.name) and not path.name.startswith(".")
        text = path.read_text(encoding="utf-8")
        assert not unescaped(text) and "\x00" not in text


def test_feedback_tells_each_student_their_verdict(derive_cli, tmp_path):
    out = grade(derive_cli, tmp_path, f"student,answer\nann,{HALF}\nbo,{RIGHT}\ncy,2*(\n")
    ann = (out / "feedback" / "ann.en.md").read_text(encoding="utf-8")
    assert "# Feedback for ann" in ann and "Line 2 of the class file\\." in ann
    assert f"`{HALF}`" in ann and "**Wrong**" in ann
    assert "Your answer is 1\\/2 times the derivative\\." in ann
    assert "x = (1, 2, 3), y = (2, 3, 4) the derivative is" in ann  # the assignment's data
    bo = (out / "feedback" / "bo.zh.md").read_text(encoding="utf-8")
    assert "# bo 的作业反馈" in bo and "**正确**" in bo
    cy = (out / "feedback" / "cy.en.md").read_text(encoding="utf-8")
    assert "**Invalid**" in cy and "ends too early (column 4)" in cy


def test_feedback_file_names_are_safe_and_distinct():
    students = [
        (2, "alice"),
        (3, "Alice"),
        (4, "ALICE"),
        (5, "alice-3"),
        (6, "../../etc/passwd"),
        (7, "CON"),
        (8, "张三"),
        (9, ""),
        (10, "." * 5),
        (11, "a" * 300),
    ]
    names = feedback_names(students)
    assert names == {
        2: "alice",
        3: "Alice-3",
        4: "ALICE-4",
        5: "alice-3-5",
        6: "etc-passwd",
        7: "CON-",
        8: "张三",
        9: "student",
        10: "student-10",
        11: "a" * 60,
    }
    assert len({n.casefold() for n in names.values()}) == len(names)
    assert names == feedback_names(students)  # deterministic
    assert file_stem("nul\x00byte") == "nul-byte"


@pytest.mark.parametrize("name", HOSTILE)
def test_markdown_text_renders_as_the_same_text(name):
    """The escaped name renders, in derive's own renderer, as exactly the text (cleaned)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.use(dollarmath_plugin, double_inline=True)
    tokens = parser.parseInline(markdown_text(name))[0].children
    assert [t.type for t in tokens if t.type not in ("text", "text_special")] == []
    shown = "".join(t.content for t in tokens)
    cleaned = re.sub("[\x00\x1b\u202e]", "\ufffd", name)
    assert shown == " ".join(cleaned.split())


def test_long_answers_are_wrapped_not_a_wide_table(derive_cli, tmp_path):
    term = "2*mean((w*x+b-y)*x)"
    right = "+".join([term] * 50) + "-" + "-".join([term] * 49)  # 1,979 characters, = the term
    too_long = "+".join([term] * 105)  # 2,099: past the parser's limit, still reported whole
    out = grade(derive_cli, tmp_path, f"student,answer\nann,{right}\nbo,{too_long}\ncy,{HALF}\n")
    report = (out / "report.en.md").read_text(encoding="utf-8")
    table_rows = [line for line in report.splitlines() if line.startswith("| A")]
    assert len(table_rows) == 3 and all(len(line) < 200 for line in table_rows)
    listed = report.split("Answers too long for the table")[1].split("## ")[0]
    written = []
    for item in (line for line in listed.splitlines() if line.startswith("- A")):
        spans = re.findall(r"`([^`]*)`", item)
        assert max(map(len, spans)) <= 60
        written.append("".join(spans).replace(" ", ""))
    assert sorted(written) == sorted([right, too_long])
    verdicts = [r["verdict"] for r in rows_of(out)]
    assert verdicts == ["right", "invalid", "wrong"]  # Σ of 50 less 49 copies is the derivative


def test_outputs_are_byte_identical_across_runs(derive_cli, tmp_path, big_class):
    first = grade(derive_cli, tmp_path / "a", big_class, "--lang", "en")
    second = grade(derive_cli, tmp_path / "b", big_class, "--lang", "en")
    for name in ("grades.csv", "gradebook.csv", "report.en.md", "report.en.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert sorted(p.name for p in (first / "feedback").iterdir()) == sorted(
        p.name for p in (second / "feedback").iterdir()
    )


def test_the_report_goes_only_where_derive_may_write(derive_cli, tmp_path):
    """As for lessons (write_folder): a folder of the user's is refused, untouched, unless
    --force, which adds the report beside their files; derive's own report folder is
    rewritten, with the notes the user put in it kept."""
    path = tmp_path / "class.csv"
    path.write_text(f"student,answer\nann,{HALF}\n", encoding="utf-8")
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "grades.csv").write_text("my own grades")
    args = ["check", "--loss", MSE, "--data", DATA, "--wrt", "w", "--answers", str(path)]
    args += ["--lang", "en", "--jobs", "1", "--out", str(out)]
    refused = derive_cli(*args)
    assert refused.code == 2 and "Traceback" not in refused.err
    assert "--force" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert "graded" not in refused.err  # refused before the class is graded, not after
    assert sorted(p.name for p in out.iterdir()) == ["grades.csv", "notes.txt"]
    assert (out / "grades.csv").read_text() == "my own grades"
    assert derive_cli(*args, "--force").code == 0
    assert (out / "notes.txt").read_text() == "mine"  # kept; grades.csv, derive's name, replaced
    assert [(r["student"], r["verdict"]) for r in rows_of(out)] == [("ann", "wrong")]
    assert (out / "report.en.md").is_file() and (out / "feedback" / "ann.en.md").is_file()
    ours = tmp_path / "ours"
    assert derive_cli(*args[:-1], str(ours)).code == 0
    (ours / "notes.txt").write_text("mine")
    path.write_text(f"student,answer\nbo,{RIGHT}\n", encoding="utf-8")
    assert derive_cli(*args[:-1], str(ours)).code == 0  # derive's folder: no --force needed
    assert (ours / "notes.txt").read_text() == "mine"
    assert [(r["student"], r["verdict"]) for r in rows_of(ours)] == [("bo", "right")]
    assert sorted(p.name for p in (ours / "feedback").iterdir()) == ["bo.en.md"]
