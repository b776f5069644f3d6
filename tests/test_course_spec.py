"""A course spec's values are refused when TOML gives them the wrong type or range, each in
one line naming the lesson; the rest of the course still builds."""

from __future__ import annotations

import pytest

from derive.app.cli import main
from derive.app.course import read_course
from derive.core.errors import DeriveError

BAD = [
    ("slug = 5", "slug must be a string, not 5"),
    ('slug = "index.en.html"', "slug 'index.en.html' would clash with the course's index pages"),
    ("lr = inf", "lr must be a finite positive number, not inf"),
    ("lr = true", "lr must be a finite positive number, not true"),
    ('lr = "0.1"', 'not "0.1" (a string: write it without quotes)'),
    ("steps = true", "steps must be a whole number from 0 to 100000, not true"),
    ("claims = [{ step = -1, w = 0.6 }]", "a claim's step must be a whole number from 0 to 20"),
    ("claims = [{ step = 21, w = 0.6 }]", "from 0 to 20, not 21"),
    ('params = "wb"', 'params must be a list of names, e.g. ["w", "b"], not \'wb\''),
    ("interactive = 1", "interactive must be true or false, not 1"),
]


def test_every_bad_value_fails_its_lesson_alone(tmp_path, capsys):
    entries = ['[[lessons]]\ntitle = "fine"\nloss = "(w-3)**2"\nsections = ["table"]\n']
    entries += [
        f'[[lessons]]\ntitle = "bad {k}"\nloss = "(w-3)**2"\nsections = ["table"]\n{line}\n'
        for k, (line, _) in enumerate(BAD)
    ]
    spec = tmp_path / "course.toml"
    spec.write_text('title = "t"\nlanguages = ["en"]\n\n' + "\n".join(entries), encoding="utf-8")
    assert main(["course", str(spec), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for k, (_, message) in enumerate(BAD, start=1):
        lines = [line for line in err.splitlines() if f"lessons[{k}]" in line]
        assert len(lines) == 1 and message in lines[0], (k, message, lines)
    assert f"1 built, 0 skipped, {len(BAD)} failed" in err
    assert (tmp_path / "out" / "fine" / "fine.en.md").exists()


def test_arrays_nested_thousands_deep_are_one_line(tmp_path):
    spec = tmp_path / "course.toml"
    spec.write_text('title = "t"\nx = ' + "[" * 5000 + "1" + "]" * 5000 + "\n")
    with pytest.raises(DeriveError, match="nested too deeply"):
        read_course(spec)


def test_a_title_without_latin_letters_gets_a_numbered_folder(tmp_path):
    spec = tmp_path / "course.toml"
    spec.write_text(
        'title = "数学课"\n[[lessons]]\ntitle = "抛物线"\nloss = "(w-3)**2"\n'
        '[[lessons]]\ntitle = "Line fit"\nloss = "w**2"\n'
        '[[lessons]]\ntitle = "二次函数 (w − 3)²"\nloss = "w**2"\n',
        encoding="utf-8",
    )
    course = read_course(spec)
    assert not course.problems
    assert [lesson.slug for lesson in course.lessons] == ["lesson-1", "line-fit", "w-3"]


def _allocate(mib: int):
    try:
        return len(bytearray(mib * 2**20)) // 2**20
    except MemoryError:
        return "memory"


def test_a_course_worker_past_its_memory_cap_fails_that_item_alone():
    from derive.app.parallel import map_forked

    assert map_forked(_allocate, [10, 900, 10, 20], jobs=2, memory_mib=300) == [
        10,
        "memory",
        10,
        20,
    ]


# The budget's alarm can land inside a finaliser (a file's __del__), where Python can only report
# it as unraisable; the alarm repeats every 50 ms, and the next one ends the lesson.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_lesson_past_its_time_budget_fails_alone(tmp_path, capsys, monkeypatch):
    from derive.app import course

    monkeypatch.setattr(course, "LESSON_SECONDS", 0.3)  # far below a lesson's seconds
    spec = tmp_path / "course.toml"
    spec.write_text('title = "t"\nlanguages = ["en"]\n[[lessons]]\ntitle = "a"\nloss = "w**2"\n')
    out = tmp_path / "out"
    assert main(["course", str(spec), "--jobs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "the lesson took longer than its budget of 0.3 s" in err
    assert not (out / "a").exists()
    assert not [p for p in out.iterdir() if "staging" in p.name]
