"""The safe parser: what it accepts, what it builds, and how it refuses the rest."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sympy

from derive.core.errors import DeriveError
from derive.core.functions import sigmoid, softplus
from derive.core.limits import MAX_DEGREE, MAX_TERMS
from derive.core.parse import MAX_DEPTH, MAX_LENGTH, Flag, parse_expression, parse_loss

w, b, x, y, u, z = (sympy.Symbol(n, real=True) for n in "wbxyuz")
theta0 = sympy.Symbol("theta0", real=True)
sigma = sympy.Symbol("sigma", real=True)

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
    # typed as courses type them: σ, |u|, a number before a name or "(", ")(", sin²
    ("σ(w*x)", 1 / (1 + sympy.exp(-w * x))),
    ("|w - 1|", sympy.Abs(w - 1)),
    ("|w - |b||", sympy.Abs(w - sympy.Abs(b))),
    ("2|w|", 2 * sympy.Abs(w)),
    ("2w", 2 * w),
    ("x^3 - 2x", x**3 - 2 * x),
    ("100(y−x²)² + (1−x)²", 100 * (y - x**2) ** 2 + (1 - x) ** 2),
    ("(w-3)(w+3)", (w - 3) * (w + 3)),
    ("3x²", 3 * x**2),
    ("2.5e-1w", w / 4),
    ("2sin(w)", 2 * sympy.sin(w)),
    ("sin^2(w) + cos²(w)", sympy.Integer(1)),
    ("sin(w)^2", sympy.sin(w) ** 2),
    ("σ + sigma**2", sigma + sigma**2),  # σ alone is the name sigma: a Gaussian's scale
    # the functions of machine learning and calculus
    ("max(0, 1 - w)", sympy.Max(0, 1 - w)),
    ("min(w, b, 3)", sympy.Min(w, b, 3)),
    ("relu(w)", sympy.Max(w, 0)),
    ("leaky_relu(w)", sympy.Piecewise((w, w > 0), (w / 100, True))),
    ("leaky_relu(w, 0.2)", sympy.Piecewise((w, w > 0), (w / 5, True))),
    ("huber(u)", sympy.Piecewise((u**2 / 2, sympy.Abs(u) <= 1), (sympy.Abs(u) - 0.5, True))),
    (
        "huber(u, 2)",
        sympy.Piecewise((u**2 / 2, sympy.Abs(u) <= 2), (2 * (sympy.Abs(u) - 1), True)),
    ),
    (
        "where(abs(u) <= 1, 0.5*u**2, abs(u) - 0.5)",
        sympy.Piecewise((u**2 / 2, sympy.Abs(u) <= 1), (sympy.Abs(u) - 0.5, True)),
    ),
    ("where(w > 0, w, 0)", sympy.Max(w, 0)),
    ("log1p(w) + expm1(b)", sympy.log(1 + w) + sympy.exp(b) - 1),
    ("log2(w) + log10(b) + log(w, 3)", sympy.log(w, 2) + sympy.log(b, 10) + sympy.log(w, 3)),
    ("sinh(w) + cosh(b) + asinh(w) + atanh(w/9)", None),
    ("asin(w/9) + acos(w/9) + atan(w) + arcsin(b/9) + arccos(b/9) + arctan(b)", None),
    ("sec(w) + csc(w) + cot(w)", 1 / sympy.cos(w) + 1 / sympy.sin(w) + 1 / sympy.tan(w)),
    ("cbrt(w) + erf(b) + sign(w)", None),
    ("logsumexp(w, b, 0)", sympy.log(sympy.exp(w) + sympy.exp(b) + 1)),
    ("softmax(2, w, b, 0)", sympy.exp(b) / (sympy.exp(w) + sympy.exp(b) + 1)),
]


def value(expr, point):
    """expr at a point, 30 digits, with the piecewise functions decided at that point."""
    return complex(expr.xreplace(point).evalf(30))


@pytest.mark.parametrize(("text", "expected"), [(t, e) for t, e in ACCEPTED if e is not None])
def test_accepted_forms_build_the_expected_expression(text, expected):
    built = parse_expression(text)
    rng = np.random.default_rng(len(text))
    for _ in range(5):
        point = {
            s: sympy.Rational(int(rng.integers(-300, 300)), 97)
            for s in (w, b, x, y, u, z, theta0, sigma)
        }
        assert value(built, point) == pytest.approx(value(expected, point), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("text", [t for t, e in ACCEPTED if e is None])
def test_accepted_functions_are_real_where_defined(text):
    built = parse_expression(text)
    assert built.free_symbols and built.is_real is not False


def test_parameters_are_the_free_names_in_order_of_appearance():
    assert parse_loss("(w*x + b - y)**2").params == ("w", "x", "b", "y")
    assert parse_loss("theta1*x + theta0").params == ("theta1", "x", "theta0")
    assert parse_loss("θ0 + theta0").params == ("theta0",)


def test_with_params_every_other_free_name_is_a_constant():
    assert parse_loss("w*x", params=("w", "x")).params == ("w", "x")
    loss = parse_loss("(w - 1)**2 + lam*w**2", params=("w",))
    assert loss.params == ("w",)
    assert loss.constants == (("lam", None),) and loss.missing_values == ("lam",)
    assert loss.expr == loss.formula  # no value: the symbol stays


def test_named_constants_are_symbols_in_the_formula_and_numbers_in_expr():
    loss = parse_loss("(w - 1)**2 + lam*w**2", constants={"lam": sympy.Rational(1, 10)})
    assert loss.params == ("w",)
    lam = sympy.Symbol("lam", real=True)
    assert loss.formula == (w - 1) ** 2 + lam * w**2
    assert loss.expr == (w - 1) ** 2 + w**2 / 10
    with pytest.raises(DeriveError, match="does not use q"):
        parse_loss("w**2", constants={"q": sympy.Integer(1)})
    with pytest.raises(DeriveError, match="both a parameter and a constant"):
        parse_loss("w**2 + c*w", params=("w", "c"), constants={"c": sympy.Integer(1)})


@pytest.mark.parametrize(
    ("text", "data", "flagged"),
    [
        ("mean((w*x + b - y)**2) + lambda*w**2", ("x", "y"), (("lambda", Flag.HYPERPARAMETER),)),
        ("1/(2*m)*sum((w*x + b - y)**2)", ("x", "y"), (("m", Flag.ROW_COUNT),)),
        ("mean((m*x + b - y)**2)", ("x", "y"), ()),  # m the slope: a parameter indeed
        ("huber(w - 3, delta)", (), (("delta", Flag.HYPERPARAMETER),)),
        ("(w - 3)**2", (), ()),
    ],
)
def test_names_that_look_like_constants_are_flagged(text, data, flagged):
    assert parse_loss(text, data=data).flagged == flagged


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
    ("2 w", "missing operator between '2' and 'w' (write 2*w)", 3),
    ("2 (w-3)", "missing operator between '2' and '(' (write 2*(…))", 3),
    ("w x", "an operator is missing", 3),
    ("wx y", "an operator is missing", 4),
    ("x^2y", "'^2y' can be read two ways", 2),
    ("1/2w", "'/2w' can be read two ways", 2),
    ("sin^-1(w)", "can be read two ways", 4),
    ("sin⁻¹(w)", "can be read two ways", 4),
    ("sin^2 w", "sin is a function", 1),
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
    ("max(w)", "max takes 2 or more arguments", 1),
    ("exp(w, 2)", "exp takes one argument", 6),
    ("log(w, 2, 3)", "log takes 1 to 2 arguments", 9),
    ("log(w, -2)", "base of a logarithm must be positive", 1),
    ("huber(w, -1)", "delta must be positive", 1),
    ("softmax(4, w, b, 1)", "a whole number from 1 to 3", 1),
    ("softmax(w, b)", "softmax takes 3 or more arguments", 1),
    ("where(w, 1, 2)", "needs a comparison first", 8),
    ("where(w > 0, 1)", "where takes three arguments", 1),
    ("where(0 < w < 1, 1, 2)", "one comparison per condition", 13),
    ("w < 1", "can only be the condition of where", 3),
    ("|w", "never closed", 1),
    ("w|", "unmatched '|'", 2),
    ("Σ w", "sum is a function", 1),
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
        ("((w**999)**999)**999", f"the limit is {MAX_DEGREE}"),
        ("w**65", f"the limit is {MAX_DEGREE}"),
        ("(w**8)**9", f"the limit is {MAX_DEGREE}"),
        ("*".join(f"(w+{k})" for k in range(1, 120)), f"the limit is {MAX_DEGREE}"),
        ("(w+b+c)**200", f"the limit is {MAX_DEGREE}"),
        ("(a+b+c+d+e1+f+g+h)**10", f"the limit is {MAX_TERMS}"),
        ("1/(" + "+".join(f"w**{k}" for k in range(1, 200)) + ")", f"limit is {MAX_DEGREE}"),
        ("w**(2**100)", f"the limit is {MAX_DEGREE}"),
        ("sin(exp(exp(20)))*w", "1000 digits"),
        ("exp(exp(exp(exp(9))))*w", "1000 digits"),
        ("exp(10**999)*w", "1000 digits"),
        ("pi**(10**999)*w", "1000 digits"),
        ("cosh(5000)*w", "1000 digits"),
    ],
)
def test_bombs_are_refused_quickly_and_say_the_bound(text, bound):
    started = time.perf_counter()
    with pytest.raises(DeriveError, match=bound):
        parse_expression(text)
    assert time.perf_counter() - started < 1.0


def test_nesting_up_to_the_limit_is_accepted():
    text = "exp(" * (MAX_DEPTH - 1) + "w" + ")" * (MAX_DEPTH - 1)
    assert parse_expression(text).has(w)


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


@pytest.mark.slow  # differentiates every function at once: 9 s
def test_no_parameter_can_shadow_a_function_the_compiled_code_calls():
    """A parameter named like a function the NumPy or math code calls (`sign` in the derivative
    of |u|) would shadow it there: every such name is reserved."""
    import keyword
    import re

    from sympy.printing.numpy import NumPyPrinter
    from sympy.printing.pycode import PythonCodePrinter

    from derive.core.derivation import differentiate
    from derive.core.numeric import ARRAY_FUNCTIONS, SCALAR_FUNCTIONS, stable_logs
    from derive.core.parse import RESERVED

    every_function = (
        "exp(w) + log(w) + log1p(w) + expm1(w) + log2(w) + log10(w) + sqrt(w) + cbrt(w) + abs(w)"
        " + sign(w) + sin(w) + cos(w) + tan(w) + sec(w) + csc(w) + cot(w) + asin(w/9) + acos(w/9)"
        " + atan(w) + sinh(w) + cosh(w) + tanh(w) + asinh(w) + acosh(w + 2) + atanh(w/9) + erf(w)"
        " + sigmoid(w) + softplus(w) + relu(w) + leaky_relu(w, b) + huber(w, 2) + max(w, b)"
        " + min(w, b, 1) + logsumexp(w, b) + log(softmax(1, w, b)) + where(w > b, w, b**2)"
    )
    derivation = differentiate(parse_loss(every_function))
    expressions = [stable_logs(e) for e in (derivation.loss.expr, *derivation.gradient)]
    printers = [
        NumPyPrinter({"fully_qualified_modules": False, "allow_unknown_functions": True}),
        PythonCodePrinter({"fully_qualified_modules": False, "allow_unknown_functions": True}),
    ]
    called = set()
    for printer in printers:
        for expr in expressions:
            called |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\(", printer.doprint(expr)))
    provided = set(ARRAY_FUNCTIONS) | set(SCALAR_FUNCTIONS)
    unreserved = {
        name
        for name in called - RESERVED - provided
        if not keyword.iskeyword(name) and name not in {"w", "b"}
    }
    assert unreserved == set()
    assert {"sign", "select", "heaviside", "maximum"} <= RESERVED


def test_nested_functions_of_numbers_are_evaluated_argument_first():
    """huber(huber(…(2, 3)…)) of numbers only: each level is a number before the next is
    written as a Piecewise (rewriting first nested one Piecewise per level: it never ended)."""

    def huber(u, d):  # torch.nn.HuberLoss on one element
        return u * u / 2 if abs(u) <= d else d * (abs(u) - d / 2)

    text, value = "2", 2.0
    for delta in (3, 0.5, 3, 2, 0.25, 3, 1, 2, 0.5, 3):
        text, value = f"huber({text}, {delta})", huber(value, delta)
    expr = parse_expression(f"{text} * w")
    (w,) = expr.free_symbols
    assert float(expr.subs(w, 1)) == pytest.approx(value, rel=1e-12)
