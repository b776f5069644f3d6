"""--out never deletes or overwrites what derive did not write; builds are whole or absent;
folders get the umask's permissions; builds into one folder wait for each other."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from derive.app.cli import main
from derive.app.output import MARKER

LESSON = ["lesson", "--loss", "w**2", "--lang", "en", "--sections", "table"]


def build(out, *extra) -> int:
    return main([*LESSON, "--out", str(out), *extra])


def files(folder) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("state", "force", "code"),
    [
        ("missing", False, 0),
        ("empty", False, 0),
        ("theirs", False, 2),
        ("theirs", True, 0),
        ("derive's, with their notes", False, 0),
        ("a file", False, 2),
    ],
)
def test_what_is_in_the_folder_decides(tmp_path, capsys, state, force, code):
    out = tmp_path / "out"
    if state == "empty":
        out.mkdir()
    elif state == "theirs":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        (out / "lesson.en.md").write_text("my own lesson")  # a name derive also writes
    elif state == "derive's, with their notes":
        assert build(out) == 0
        (out / "notes.txt").write_text("mine")
        (out / "figures").mkdir(exist_ok=True)
        (out / "figures" / "sketch.png").write_bytes(b"mine too")
    elif state == "a file":
        out.write_text("not a folder")
    before = files(out) if out.is_dir() else {}
    assert build(out, *(["--force"] if force else [])) == code
    err = capsys.readouterr().err
    if code == 2:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert (files(out) if out.is_dir() else {}) == before  # nothing touched
        return
    after = files(out)
    assert MARKER in after and "lesson.en.html" in after
    for name, content in before.items():
        if name in ("notes.txt", "figures/sketch.png"):
            assert after[name] == content  # the user's files are kept
    if state == "theirs":  # forced: derive's lesson replaces the file of the same name only
        assert after["notes.txt"] == b"mine" and after["lesson.en.md"] != b"my own lesson"


@pytest.mark.parametrize("where", ["here", "parent", "home", "repository"])
def test_folders_that_are_never_written(tmp_path, monkeypatch, capsys, where):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    target = {
        "here": ".",
        "parent": "..",
        "home": str(tmp_path / "home"),
        "repository": str(tmp_path / "repo"),
    }[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert build(target, "--force") == 2
    assert "refusing to write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_folders_and_files_get_the_umasks_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        assert build(tmp_path / "out") == 0
    finally:
        os.umask(previous)
    out = tmp_path / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "figures").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "lesson.en.md").stat().st_mode) == 0o644


def test_staging_left_by_a_killed_build_is_cleared(tmp_path):
    leftover = tmp_path / ".out.derive-staging-abc123"
    leftover.mkdir()
    (leftover / "lesson.en.md").write_text("half a lesson")
    assert build(tmp_path / "out") == 0
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_concurrent_builds_into_one_folder_wait_for_each_other(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "derive", *LESSON, "--out", str(out)]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "lesson.en.html").stat().st_size > 1000


def test_sigterm_during_a_build_removes_its_staging(tmp_path):
    """A build killed politely (SIGTERM: a CI timeout, `kill`) unwinds: its staging folder is
    removed and the target never appears half written."""
    import signal
    import subprocess
    import sys
    import time

    rows = 50_000
    x = [k / rows for k in range(rows)]
    (tmp_path / "d.csv").write_text("x,y\n" + "".join(f"{v},{2 * v + 1}\n" for v in x))
    out = tmp_path / "lesson"
    command = ["lesson", "--loss", "mean((w*x+b-y)**2)", "--data", str(tmp_path / "d.csv")]
    child = subprocess.Popen(
        [sys.executable, "-m", "derive", *command, "--lang", "en", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".lesson.derive-staging-*")) and child.poll() is None:
        assert time.monotonic() < deadline, "no staging folder appeared"
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".lesson.derive-*"))
    assert not out.exists()
