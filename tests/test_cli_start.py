"""Quick start (issue 14): each command imports only the stages it needs. Checked by which
modules a fresh process has loaded, never by timing (the machine is shared); the times are
measured by `invoke bench` (benchmarks/test_bench_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = (
    "matplotlib",
    "jinja2",
    "nbformat",
    "torch",
    "derive.app.build",
    "derive.app.course",
    "derive.show.lesson",
    "derive.show.figures",
)


def loaded_after(*argv: str) -> tuple[int, set[str]]:
    """Run `derive ARGV` in a fresh interpreter; its exit code and the modules it loaded."""
    script = (
        "import json, sys\n"
        "from derive.app.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    code, modules = json.loads(done.stderr.splitlines()[-1])
    return code, set(modules)


def test_help_loads_no_stage():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom derive.app.cli import build_parser\nbuild_parser()\n"
            "print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    modules = set(done.stdout.split())
    assert "sympy" not in modules and "numpy" not in modules
    assert "importlib.metadata" not in modules  # the version is read when --version asks
    assert "shtab" not in modules  # nor the completion script made
    assert not modules & set(HEAVY)


@pytest.mark.parametrize(
    "argv",
    [("diff", "--loss", "w+"), ("check", "--loss", "(w-3", "--wrt", "w", "--answer", "1")],
    ids=["diff", "check"],
)
def test_a_refused_loss_loads_only_the_parser(argv):
    code, modules = loaded_after(*argv)
    assert code == 2
    assert "derive.core.parse" in modules
    assert not modules & {*HEAVY, "numpy", "derive.core.derivation", "derive.core.check"}


def test_checking_one_answer_loads_no_page_machinery():
    code, modules = loaded_after("check", "--loss", "(w-3)**2", "--wrt", "w", "--answer", "2*(w-3)")
    assert code == 0
    assert "derive.core.check" in modules
    # the verdict's words come from the catalog, no template
    assert not modules & set(HEAVY)


# what `from numpy import *` loads and no stage uses (0.2 s of start-up)
NUMPY_EXTRAS = ("numpy.f2py", "numpy.testing", "numpy.ma", "numpy.polynomial", "numpy.random")


def test_diff_loads_no_figures_and_numpy_only_for_a_numeric_search():
    code, modules = loaded_after("diff", "--loss", "(w-3)**2")
    assert code == 0
    assert not modules & {*HEAVY, "numpy"} - {"jinja2"}  # solved exactly: no search
    code, modules = loaded_after("diff", "--loss", "(x**2 + y - 11)**2 + (x + y**2 - 7)**2")
    assert code == 0
    assert "numpy" in modules  # Himmelblau's minima are found by Newton's method
    assert not modules & {*HEAVY, *NUMPY_EXTRAS} - {"jinja2"}


def test_the_parser_s_copies_of_constants_match_their_sources():
    from derive.app import cli, grading
    from derive.core import optimizers
    from derive.show import catalog, lesson

    assert cli.LANGUAGES == catalog.LANGUAGES
    assert tuple(optimizers.DEFAULTS) == cli.OPTIMIZERS
    assert cli.TIME_LIMIT == grading.TIME_LIMIT
    assert cli.SECTIONS is lesson.SECTIONS


def test_the_numpy_namespace_is_lambdify_s_without_the_lazy_submodules():
    """Generated code sees the same objects under every name as with modules="numpy"."""
    import sympy
    from sympy.utilities.lambdify import MODULES

    from derive.core.numeric import NUMPY

    sympy.lambdify([], sympy.Integer(0), modules="numpy")  # builds SymPy's own namespace
    theirs = {k: v for k, v in MODULES["numpy"][0].items() if k != "__builtins__"}
    ours = vars(NUMPY)
    assert {k: v for k, v in theirs.items() if k in ours} == ours
    left_out = {k for k in theirs if k not in ours}
    assert left_out and all(type(theirs[k]).__name__ == "module" for k in left_out)
