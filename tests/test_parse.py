"""The safe parser: what it accepts, what it builds, and how it refuses the rest."""

from __future__ import annotations

import time

import pytest
import sympy

from derive.core.errors import DeriveError
from derive.core.functions import sigmoid, softplus
from derive.core.parse import MAX_DEPTH, MAX_LENGTH, parse_expression, parse_loss

w, b, x, y = (sympy.Symbol(n, real=True) for n in "wbxy")
theta0 = sympy.Symbol("theta0", real=True)

ACCEPTED = [
    ("(w-3)**2", (w - 3) ** 2),
    ("(w-3)^2", (w - 3) ** 2),
    ("x**2 + 2*y**2", x**2 + 2 * y**2),
    ("x**4 - 4*x**2 + 0.5*x", x**4 - 4 * x**2 + sympy.Rational(1, 2) * x),
    ("1.5e-3*w", sympy.Rational(3, 2000) * w),
    ("2E2 + w", 200 + w),
    (".5*w", w / 2),
    ("-w**2", -(w**2)),
    ("--w", w),
    ("2^3^2*w", 512 * w),
    ("w/2/b", w / 2 / b),
    (
        "exp(w) + log(w) + ln(b) + sqrt(w)",
        sympy.exp(w) + 2 * 0 + sympy.log(w) + sympy.log(b) + sympy.sqrt(w),
    ),
    (
        "abs(w) + sin(w)*cos(w) + tan(w) + tanh(w)",
        sympy.Abs(w) + sympy.sin(w) * sympy.cos(w) + sympy.tan(w) + sympy.tanh(w),
    ),
    ("sigmoid(w*x) + softplus(b)", sigmoid(w * x) + softplus(b)),
    ("pi*w + e", sympy.pi * w + sympy.E),
    ("theta0**2", theta0**2),
    # typeset text pasted from notes is understood
    ("(w − 3)²", (w - 3) ** 2),
    ("2×w·b", 2 * w * b),
    ("w⁻¹", 1 / w),
    ("（w－3）＊＊2", (w - 3) ** 2),
    ("θ0²", theta0**2),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms_build_the_expected_expression(text, expected):
    assert sympy.simplify(parse_expression(text) - expected) == 0


def test_parameters_are_the_free_names_in_order_of_appearance():
    assert parse_loss("(w*x + b - y)**2").params == ("w", "x", "b", "y")
    assert parse_loss("theta1*x + theta0").params == ("theta1", "x", "theta0")
    assert parse_loss("θ0 + theta0").params == ("theta0",)


def test_params_option_must_cover_every_free_name():
    assert parse_loss("w*x", params=("w", "x")).params == ("w", "x")
    with pytest.raises(DeriveError, match="uses x"):
        parse_loss("w*x", params=("w",))


def test_mean_over_data_becomes_an_indexed_sum_over_symbolic_n():
    loss = parse_loss("mean((w*x + b - y)**2)", data=("x", "y"))
    assert loss.params == ("w", "b")
    assert loss.expr.has(sympy.Sum)
    (sum_,) = loss.expr.atoms(sympy.Sum)
    assert sum_.limits[0][2] == sympy.Symbol("n", integer=True, positive=True)


REJECTED = [
    ("w@2", "unexpected character '@'", 2),
    ("(w-3", "never closed", 1),
    ("w-3)", "unmatched ')'", 4),
    ("2w", "missing operator between '2' and 'w'", 2),
    ("w x", "an operator is missing", 3),
    ("foo(w)", "unknown function 'foo'", 1),
    ("exp", "exp is a function", 1),
    ("w.real", "unexpected character '.'", 2),
    ("w[0]", "unexpected character '['", 2),
    ("__import__('os')", 'unexpected character "\'"', 12),
    ("lambda: 1", "unexpected character ':'", 7),
    ("w +", "ends too early", 4),
    ("1/0", "division by zero", 2),
    ("log(0)", "undefined", 1),
    ("w**2 # comment", "unexpected character '#'", 6),
    ("w\x00", "U+0000", 2),
    ("w;1", "unexpected character ';'", 2),
    ("max(w, 1)", "unknown function 'max'", 1),
    ("log(w, 2)", "takes one argument", 1),
    ("mean(w)", "give the data with --data", 1),
    ("w + log(cos(2))", "not a real number", 5),
    ("sqrt(-4)*w", "not a real number", 1),
    ("(-8)**(1/3)*w", "not a real number", 5),
]


@pytest.mark.parametrize(("text", "message", "column"), REJECTED)
def test_rejected_forms_name_what_and_where(text, message, column):
    with pytest.raises(DeriveError) as raised:
        parse_expression(text)
    assert message in raised.value.message
    assert raised.value.column == column


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("10**10**10", "1000 digits"),
        ("9**9**9**9", "1000 digits"),
        ("2**-10**10", "1000 digits"),
        ("1e999999", "±1000"),
        ("1" * 1500, "1000 digits"),
        ("(" * (MAX_DEPTH + 5) + "w" + ")" * (MAX_DEPTH + 5), f"limit of {MAX_DEPTH}"),
        ("-" * 500 + "w", f"limit of {MAX_DEPTH}"),
        ("w+" * 1500 + "w", f"limit is {MAX_LENGTH}"),
    ],
)
def test_bombs_are_refused_quickly_and_say_the_bound(text, bound):
    started = time.perf_counter()
    with pytest.raises(DeriveError, match=bound):
        parse_expression(text)
    assert time.perf_counter() - started < 1.0


def test_error_shows_a_caret_under_the_offending_column():
    with pytest.raises(DeriveError) as raised:
        parse_expression("(w-3)@2")
    assert raised.value.caret_lines() == ["  (w-3)@2", "       ^"]


def test_the_parser_never_calls_eval_sympify_or_parse_expr(monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("user text reached an evaluator")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", forbidden)
    assert parse_expression("sigmoid(w*x) + (w-3)**2 + 0.5") is not None


def test_no_module_of_derive_names_an_evaluator():
    import re
    from pathlib import Path

    import derive

    source = "\n".join(p.read_text() for p in Path(derive.__file__).parent.rglob("*.py"))
    # `def eval(cls, ...)` is SymPy's Function API, not a call.
    calls = re.findall(r"(?<!def )\b(eval|exec|sympify|parse_expr|literal_eval|S)\(", source)
    assert calls == []
