"""The seeds course (issue 8): a cold build with one and with two processes, and a rebuild
with nothing changed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.conftest import cold_command, report

SPEC = Path(__file__).resolve().parent.parent / "examples" / "seeds" / "course.toml"


def test_seeds_course(benchmark, tmp_path):
    def build(jobs: int, out: Path) -> float:
        return cold_command(
            "-m", "derive", "course", str(SPEC), "--jobs", str(jobs), "--out", str(out)
        )

    one = build(1, tmp_path / "one")
    two = build(2, tmp_path / "two")
    unchanged = benchmark.pedantic(lambda: build(2, tmp_path / "two"), rounds=3, iterations=1)
    report(
        "seeds course (12 lessons, zh + en)",
        jobs1_s=one,
        jobs2_s=two,
        speedup=one / two,
        unchanged_rebuild_s=unchanged,
    )
