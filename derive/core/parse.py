"""Stage 1: loss text → Loss, through a whitelist grammar (never eval, sympify or parse_expr).

Grammar (precedence low to high):

    expr      := term (("+" | "-") term)*
    term      := unary (("*" | "/" | juxtaposition) unary)*
    unary     := ("+" | "-") unary | power
    power     := atom [superscript] [("**" | "^") unary]
    atom      := number | name | call | "(" expr ")" | "|" expr "|"
    call      := function [power] "(" argument ("," argument)* ")"
    condition := expr ("<" | "<=" | ">" | ">=") expr       (only as where's first argument)

Juxtaposition is multiplication in two cases only: a number directly before a name or "("
(2w, 100(y − x²)²) and ")(" . A name before a name (`w x`) stays an error, and so does a
reading that could go two ways (`x^2y`, `1/2w`).

Typeset text pasted from notes is understood: − – as minus, × · ⋅ as times, ÷ as divide,
≤ ≥ as <= >=, superscript digits (w², x⁻¹, sin²(x)) as powers, |u| as abs(u), σ(z) as
sigmoid(z), Σ(…) and ∑(…) as sum(…), full-width ASCII (（w－3）) and Greek letters (θ0 is
theta0). Everything else is rejected with its column.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import sympy

from derive.core import limits
from derive.core.errors import DeriveError
from derive.core.functions import (
    LEAKY_SLOPE,
    cbrt,
    expm1,
    huber,
    leaky_relu,
    log1p,
    log2,
    log10,
    logsumexp,
    maximum,
    minimum,
    relu,
    sigmoid,
    softmax,
    softplus,
)
from derive.core.symbols import GREEK, INDEX, N_ROWS, data_column, symbol

if TYPE_CHECKING:
    import numpy as np

MAX_LENGTH = 2000
MAX_DEPTH = 100
MAX_DIGITS = limits.MAX_DIGITS
MAX_NAME = 40


def _log(x: sympy.Expr, base: sympy.Expr | None = None) -> sympy.Expr:
    """log(x) or log(x, base): base 2 and 10 keep their own functions (and rules)."""
    if base is None or base == sympy.E:
        return sympy.log(x)
    named = {2: log2, 10: log10}.get(base) if base.is_Integer else None
    return named(x) if named else sympy.log(x) / sympy.log(base)


@dataclass(frozen=True)
class Signature:
    """How a function is called: its argument counts, and defaults for the optional ones."""

    build: Callable[..., sympy.Expr]
    least: int = 1
    most: int | None = 1  # None: any number
    defaults: tuple[sympy.Expr, ...] = ()


FUNCTIONS: dict[str, Signature] = {
    "exp": Signature(sympy.exp),
    "log": Signature(_log, 1, 2),
    "ln": Signature(sympy.log),
    "log1p": Signature(log1p),
    "expm1": Signature(expm1),
    "log2": Signature(log2),
    "log10": Signature(log10),
    "sqrt": Signature(sympy.sqrt),
    "cbrt": Signature(cbrt),
    "abs": Signature(sympy.Abs),
    "sign": Signature(sympy.sign),
    "sin": Signature(sympy.sin),
    "cos": Signature(sympy.cos),
    "tan": Signature(sympy.tan),
    "sec": Signature(sympy.sec),
    "csc": Signature(sympy.csc),
    "cot": Signature(sympy.cot),
    "asin": Signature(sympy.asin),
    "acos": Signature(sympy.acos),
    "atan": Signature(sympy.atan),
    "arcsin": Signature(sympy.asin),
    "arccos": Signature(sympy.acos),
    "arctan": Signature(sympy.atan),
    "sinh": Signature(sympy.sinh),
    "cosh": Signature(sympy.cosh),
    "tanh": Signature(sympy.tanh),
    "asinh": Signature(sympy.asinh),
    "acosh": Signature(sympy.acosh),
    "atanh": Signature(sympy.atanh),
    "arcsinh": Signature(sympy.asinh),
    "arccosh": Signature(sympy.acosh),
    "arctanh": Signature(sympy.atanh),
    "erf": Signature(sympy.erf),
    "sigmoid": Signature(sigmoid),
    "softplus": Signature(softplus),
    "relu": Signature(relu),
    "leaky_relu": Signature(leaky_relu, 1, 2, (LEAKY_SLOPE,)),
    "huber": Signature(huber, 1, 2, (sympy.Integer(1),)),
    "max": Signature(maximum, 2, None),
    "min": Signature(minimum, 2, None),
    "logsumexp": Signature(logsumexp, 2, None),
    "softmax": Signature(softmax, 3, None),  # softmax(k, z1, ..., zK): checked in _softmax
    "where": Signature(sympy.Piecewise, 3, 3),  # where(condition, a, b): built in _where
}
ALIASES = {"sigma": "sigmoid", "Σ": "sum", "∑": "sum"}  # σ(z) is sigmoid(z); Σ(…) is sum(…)
DATA_REDUCTIONS = ("mean", "sum")
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
# Names NumPy code for a derivative calls (see numeric.py): a parameter of that name would
# shadow the function in the compiled code.
NUMERIC_NAMES = {
    "heaviside",
    "select",
    "maximum",
    "minimum",
    "logaddexp",
    "rowsum",
    "amax",
    "nan",
    "inf",
    "numpy",
    "math",
    "builtins",
    "range",
    "tie_share",
    "exp_neg_abs",
    "sigmoid_given",
    "logical_and",
    "logical_or",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "equal",
    "absolute",
    "power",
    "reduce",
    "copysign",
}
RESERVED = set(FUNCTIONS) | set(DATA_REDUCTIONS) | set(CONSTANTS) | NUMERIC_NAMES
COMPARISONS = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}

# Names that courses use for a constant (a penalty weight, a margin, a rate, a quantile…):
# descended on, they are said so.
HYPERPARAMETER_NAMES = re.compile(
    r"(lambda|lam|lmbda|alpha|gamma|delta|epsilon|eps|eta|tau|kappa|rho|C|reg|penalty|margin)"
    r"_?\d*"
)

_GREEK_LETTERS = dict(zip("αβγδεζηθικλμνξοπρστυφχψω", GREEK, strict=True))

# Typeset characters that mean an ASCII operator; one character for one, so columns stay true.
_TYPESET = str.maketrans(
    {"−": "-", "–": "-", "×": "*", "·": "*", "⋅": "*", "÷": "/", "∗": "*", "∣": "|"}
    | {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
)
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-", strict=True))

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t]+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_α-ω][A-Za-z0-9_α-ω]*|[Σ∑])
  | (?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)
  | (?P<op>\*\*|<=|>=|[-+*/^(),|<>≤≥])
    """,
    re.VERBOSE,
)


class Flag(StrEnum):
    """Why a parameter's name suggests it should not be descended on."""

    HYPERPARAMETER = "hyperparameter"  # λ, α, δ, C…: usually a constant the teacher chose
    ROW_COUNT = "row_count"  # m in 1/(2m) Σ …: usually the number of rows


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int  # 1-based, in the user's text

    @property
    def end(self) -> int:
        return self.column + len(self.text)


@dataclass(frozen=True)
class Loss:
    """A parsed loss: its text, its expression, its parameters, data columns and constants.

    `expr` is what is computed: named constants replaced by their values. `written` keeps
    them as symbols (λ), as the loss is shown and derived; None when there are none.
    `constants` maps each constant's name to its exact value (None: given no value, which
    `derive diff` and `derive check` accept and descent does not). `flagged` names the
    parameters whose names look like constants; `one_hot` the groups of data columns that sum
    to 1 in every row (one-hot targets), which a derivation may use.
    """

    text: str
    expr: sympy.Expr
    params: tuple[str, ...]
    data: tuple[str, ...] = ()
    constants: tuple[tuple[str, sympy.Expr | None], ...] = ()
    written: sympy.Expr | None = None
    flagged: tuple[tuple[str, Flag], ...] = ()
    one_hot: tuple[tuple[str, ...], ...] = ()

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(symbol(name) for name in self.params)

    @property
    def formula(self) -> sympy.Expr:
        """The loss as written: constants as symbols."""
        return self.expr if self.written is None else self.written

    @property
    def values(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The constants that have values, as a substitution."""
        return {symbol(name): value for name, value in self.constants if value is not None}

    @property
    def missing_values(self) -> tuple[str, ...]:
        return tuple(name for name, value in self.constants if value is None)


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise DeriveError(f"input is {len(text)} characters long; the limit is {MAX_LENGTH}")
    plain = text.translate(_TYPESET)
    tokens, position = [], 0
    while position < len(plain):
        match = _TOKEN.match(plain, position)
        if match is None:
            ch = text[position]
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise DeriveError(f"unexpected character {shown}", text, position + 1)
        kind = match.lastgroup
        if kind != "space":
            word = match.group()
            tokens.append(Token(kind, {"≤": "<=", "≥": ">="}.get(word, word), position + 1))
        position = match.end()
    return tokens


def parse_expression(text: str, data: tuple[str, ...] = (), per_row: bool = False) -> sympy.Expr:
    """Text → SymPy expression; names in `data` are data columns, usable inside mean()/sum(),
    and `n` is their number of rows. With `per_row`, a data name may also stand alone as one
    row's value xᵢ (as in an answer that forgot the Σ)."""
    tokens = tokenize(text)
    if not tokens:
        raise DeriveError("the expression is empty")
    return _Parser(text, tokens, frozenset(data), per_row).parse()


def parse_number(text: str, what: str) -> sympy.Expr:
    """A number written in the grammar (`0.1`, `1/3`, `exp(-2)`), exact, within the limits."""
    value = parse_expression(text.strip())
    if not value.is_number or value.is_real is False:
        raise DeriveError(f"{what}: {text.strip()!r} is not a real number")
    return value


def to_float(value: sympy.Expr, what: str) -> float:
    """A checked number as a float: refused when beyond the float range, never inf."""
    try:
        result = float(value)
    except (OverflowError, TypeError):
        result = math.inf
    if not math.isfinite(result):
        raise DeriveError(f"{what} is beyond the range of floating-point numbers (±1.8e308)")
    return result


def parse_loss(
    text: str,
    params: tuple[str, ...] | None = None,
    data: tuple[str, ...] = (),
    constants: Mapping[str, sympy.Expr | None] | None = None,
) -> Loss:
    """Parse a loss. Its parameters are its free names in order of first appearance, less the
    named constants; with `params` given, every other free name is a constant."""
    written = parse_expression(text, data)
    found = _names_in_order(text, data)
    given = dict(constants or {})
    for name in given:
        _check_name(name, "a constant")
        if name in data:
            raise DeriveError(f"{name} is both a data column and a constant")
        if name not in found:
            raise DeriveError(f"--const {name}: the loss does not use {name}")
    if params is None:
        params = tuple(name for name in found if name not in given)
    else:
        for name in params:
            _check_name(name, "a parameter")
        both = [name for name in params if name in given]
        if both:
            raise DeriveError(f"{', '.join(both)} is both a parameter and a constant")
        given |= {name: None for name in found if name not in params and name not in given}
    if not params:
        raise DeriveError("the loss has no parameter to descend on (no free name in it)")
    ordered = tuple((name, given[name]) for name in found if name in given)
    values = {symbol(name): value for name, value in ordered if value is not None}
    expr = written.xreplace(values) if values else written
    return Loss(
        text=text,
        expr=expr,
        params=tuple(params),
        data=tuple(data),
        constants=ordered,
        written=written if ordered else None,
        flagged=_flags(written, tuple(params), data),
    )


def one_hot_targets(loss: Loss, columns: Mapping[str, np.ndarray]) -> Loss:
    """The loss, told which groups of its data columns sum to 1 in every row.

    A softmax cross-entropy −Σₖ yₖ log softmax(k, z₁…z_K) simplifies to the textbook
    (pₖ − yₖ)·x only because y₁ + … + y_K = 1: the data must show it, row by row.
    """
    import numpy as np  # only with data: a refused loss does not wait for NumPy

    groups = []
    for call in loss.formula.atoms(softmax):
        width = len(call.logits)
        targets = _softmax_targets(loss.formula, call, loss.data)
        if len(targets) != width or targets in groups:
            continue
        total = np.sum([np.asarray(columns[name], dtype=float) for name in targets], axis=0)
        if np.all(total == 1.0):
            groups.append(targets)
    return dataclasses.replace(loss, one_hot=tuple(sorted(groups)))


def _softmax_targets(expr: sympy.Expr, call: softmax, data: tuple[str, ...]) -> tuple[str, ...]:
    """The data columns yₖ that multiply log softmax(k, same logits), one per class k."""
    found: dict[int, str] = {}
    for term in expr.atoms(sympy.Mul):
        factors = term.args
        logs = [f for f in factors if isinstance(f, sympy.log) and isinstance(f.args[0], softmax)]
        columns = [f for f in factors if isinstance(f, sympy.Indexed) and str(f.base) in data]
        if len(logs) == 1 and len(columns) == 1 and logs[0].args[0].logits == call.logits:
            found.setdefault(logs[0].args[0].index, str(columns[0].base))
    return (
        tuple(found[k] for k in sorted(found))
        if set(found) == set(range(1, len(call.logits) + 1))
        else ()
    )


def _flags(written: sympy.Expr, params: tuple[str, ...], data) -> tuple[tuple[str, Flag], ...]:
    """Parameters that look like constants: named like one, or m in 1/(2m) Σ …."""
    flagged = []
    for name in params:
        if HYPERPARAMETER_NAMES.fullmatch(name):
            flagged.append((name, Flag.HYPERPARAMETER))
        elif data and _divides_a_sum_only(written, symbol(name)):
            flagged.append((name, Flag.ROW_COUNT))
    return tuple(flagged)


def _divides_a_sum_only(expr: sympy.Expr, name: sympy.Symbol) -> bool:
    """Every appearance of `name` is in a factor 1/(c·name) in front of a Σ over data."""
    if not expr.has(name):
        return False
    for term in sympy.Add.make_args(expr):
        if not term.has(name):
            continue
        factors = sympy.Mul.make_args(term)
        outside = [f for f in factors if f.has(name)]
        if not any(isinstance(f, sympy.Sum) for f in factors):
            return False
        if any(not (f.is_Pow and f.base == name and f.exp.is_negative) for f in outside):
            return False
    return True


def _check_name(name: str, role: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in RESERVED:
        raise DeriveError(f"{name!r} cannot be {role} name")


def _names_in_order(text: str, data: tuple[str, ...]) -> tuple[str, ...]:
    tokens = tokenize(text)
    names: list[str] = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        name = _canonical_name(token.text) if token.kind == "name" else None
        if name is None or name in CONSTANTS or name in data or name in names:
            continue
        if name == "n" and data:
            continue
        called = following is not None and following.text in ("(", "^", "**")
        if called and (name in FUNCTIONS or name in DATA_REDUCTIONS or name in ALIASES):
            continue
        if following is not None and following.kind == "sup" and name in FUNCTIONS:
            continue
        names.append(name)
    return tuple(names)


def _canonical_name(text: str) -> str:
    """θ0 → theta0: Greek letters become their names, which SymPy prints as Greek again."""
    if text in ("Σ", "∑"):
        return text
    return "".join(_GREEK_LETTERS.get(ch, ch) for ch in text)


class _Parser:
    def __init__(self, text: str, tokens: list[Token], data: frozenset[str], per_row: bool):
        self.text = text
        self.tokens = tokens
        self.data = data
        self.per_row = per_row
        self.position = 0
        self.depth = 0
        self.in_reduction = False
        self.bars = 0  # open |…| bars: inside them a "|" in an operator's place closes one
        self.bounds: dict = {}  # degree and term bounds of the subexpressions built so far

    # -- helpers ---------------------------------------------------------------
    def error(self, message: str, token: Token | None = None) -> DeriveError:
        column = token.column if token else len(self.text) + 1
        return DeriveError(message, self.text, column)

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.position + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def previous(self) -> Token:
        return self.tokens[self.position - 1]

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the expression ends too early")
        self.position += 1
        return token

    def accept(self, *texts: str) -> Token | None:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in texts:
            self.position += 1
            return token
        return None

    def expect_close(self, opening: Token) -> None:
        if self.accept(")") is None:
            token = self.peek()
            if token is None:
                raise self.error("this '(' is never closed", opening)
            raise self.error(f"expected ')' but found {token.text!r}", token)

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting is deeper than the limit of {MAX_DEPTH} levels", token)
        yield
        self.depth -= 1

    # -- grammar ---------------------------------------------------------------
    def parse(self) -> sympy.Expr:
        expr = self.expr()
        token = self.peek()
        if token is not None:
            if token.text == ")":
                raise self.error("unmatched ')'", token)
            if token.text in COMPARISONS:
                raise self.error(
                    f"a comparison ({token.text}) can only be the condition of where(...)", token
                )
            if token.text == "|":
                raise self.error("unmatched '|'", token)
            raise self.error(f"unexpected {token.text!r}: an operator is missing before it", token)
        try:
            limits.check_expression(expr, self.bounds)
        except limits.LimitError as limit:
            raise self.error(str(limit), self.tokens[0]) from None
        return expr

    def expr(self) -> sympy.Expr:
        value = self.term()
        while (op := self.accept("+", "-")) is not None:
            right = self.term()
            value = self.checked(value + right if op.text == "+" else value - right, op)
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while True:
            op = self.accept("*", "/") or self.juxtaposed()
            if op is None:
                return value
            right = self.unary()
            if op.text == "/":
                self.refuse_ambiguous_division(op)
                if right.is_zero:
                    raise self.error("division by zero", op)
            value = self.checked(value / right if op.text == "/" else value * right, op)

    def juxtaposed(self) -> Token | None:
        """2w, 100(y − x²), (a)(b): a multiplication without its sign; `w x` stays an error."""
        token = self.peek()
        if token is None or self.position == 0:
            return None
        before = self.previous()
        if token.column != before.end:
            return None
        opening = token.text == "(" or (token.text == "|" and self.bars == 0)
        number_first = before.kind == "number" and (token.kind == "name" or opening)
        brackets = before.text == ")" and token.text == "("
        if number_first or brackets:
            return Token("op", "*", token.column)
        return None

    def refuse_ambiguous_division(self, op: Token) -> None:
        """1/2w: is it (1/2)w or 1/(2w)? Courses write both; derive asks."""
        token = self.peek()
        before = self.previous()
        if (
            token is not None
            and before.kind == "number"
            and token.column == before.end
            and (token.kind == "name" or token.text == "(")
        ):
            shown = token.text if token.kind == "name" else "(…)"
            raise self.error(
                f"'/{before.text}{token.text}' can be read two ways: write "
                f"/{before.text}*{shown} or /({before.text}*{shown})",
                op,
            )

    def unary(self) -> sympy.Expr:
        if (op := self.accept("-", "+")) is not None:
            with self.nested(op):
                operand = self.unary()
            return -operand if op.text == "-" else operand
        return self.power()

    def power(self) -> sympy.Expr:
        start = self.peek()
        base = self.atom()
        token = self.peek()
        if token is not None and token.kind == "sup":
            self.position += 1
            exponent = self.superscript(token)
            base = self.raise_to(base, exponent, token)
        if (op := self.accept("**", "^")) is not None:
            with self.nested(op):
                exponent = self.unary()
            self.refuse_ambiguous_exponent(op)
            return self.raise_to(base, exponent, op)
        if start is not None and start.kind == "number":
            token = self.peek()
            joined = token is not None and token.column == self.previous().end
            if (
                token is not None
                and not joined
                and (token.kind in ("name", "number") or (token.text == "("))
            ):
                shown = f"{start.text}*{token.text}" if token.text != "(" else f"{start.text}*(…)"
                raise self.error(
                    f"missing operator between {start.text!r} and {token.text!r} (write {shown})",
                    token,
                )
            if token is not None and joined and token.kind == "number":
                raise self.error(f"missing operator before {token.text!r}", token)
        return base

    def refuse_ambiguous_exponent(self, op: Token) -> None:
        """x^2y: is it x²·y or x^(2y)? Courses write both; derive asks."""
        token = self.peek()
        before = self.previous()
        if (
            token is not None
            and before.kind == "number"
            and token.column == before.end
            and (token.kind == "name" or token.text == "(")
        ):
            shown = token.text if token.kind == "name" else "(…)"
            raise self.error(
                f"'^{before.text}{token.text}' can be read two ways: write "
                f"^{before.text}*{shown} or ^({before.text}*{shown})",
                op,
            )

    def superscript(self, token: Token) -> sympy.Integer:
        digits = "".join(_SUPERSCRIPTS[ch] for ch in token.text)
        if not re.fullmatch(r"-?\d{1,6}", digits):
            raise self.error(f"cannot read the superscript {token.text!r} as an exponent", token)
        return sympy.Integer(int(digits))

    def atom(self) -> sympy.Expr:
        token = self.take()
        if token.kind == "number":
            return self.number(token)
        if token.kind == "name":
            return self.name(token)
        if token.text == "(":
            with self.nested(token):
                value = self.expr()
            self.expect_close(token)
            return value
        if token.text == "|":
            with self.nested(token):
                self.bars += 1
                value = self.expr()
                self.bars -= 1
            if self.accept("|") is None:
                raise self.error("this '|' is never closed", token)
            return self.checked(sympy.Abs(value), token)
        if token.text == ")":
            raise self.error("unexpected ')': an operand is missing before it", token)
        if token.kind == "sup":
            raise self.error("a superscript needs something before it", token)
        if token.text in COMPARISONS:
            raise self.error(
                f"a comparison ({token.text}) can only be the condition of where(...)", token
            )
        raise self.error(f"unexpected {token.text!r}: an operand is missing before it", token)

    def number(self, token: Token) -> sympy.Rational:
        mantissa, _, exponent = token.text.lower().partition("e")
        digits = mantissa.replace(".", "").lstrip("0")
        if len(digits) > MAX_DIGITS:
            raise self.error(f"the number has more than {MAX_DIGITS} digits", token)
        if exponent and abs(int(exponent)) > MAX_DIGITS:
            raise self.error(f"the exponent of {token.text!r} is beyond ±{MAX_DIGITS}", token)
        # Decimals are kept exact (0.1 is 1/10): derivations and checks stay exact.
        return sympy.Rational(mantissa) * sympy.Integer(10) ** int(exponent or 0)

    def name(self, token: Token) -> sympy.Expr:
        name = _canonical_name(token.text)
        if len(name) > MAX_NAME:
            raise self.error(f"the name is longer than {MAX_NAME} characters", token)
        following = self.peek()
        called = following is not None and following.text == "("
        function = ALIASES.get(name, name) if called or name in ("Σ", "∑") else name
        if function in FUNCTIONS or function in DATA_REDUCTIONS:
            return self.call(function, token)
        if called:
            known = ", ".join([*FUNCTIONS, *DATA_REDUCTIONS])
            raise self.error(f"unknown function {name!r} (known: {known})", token)
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.data:
            if not (self.in_reduction or self.per_row):
                raise self.error(
                    f"data column {name!r} is used outside mean(...) or sum(...)", token
                )
            return data_column(name)
        if name == "n" and self.data:
            return N_ROWS  # with data, n is the number of rows
        return symbol(name)

    def call(self, name: str, token: Token) -> sympy.Expr:
        """f(…), and sin²(x) or sin^2(x) as (sin(x))²."""
        power = self.function_power(name, token)
        opening = self.peek()
        if opening is None or opening.text != "(":
            raise self.error(f"{name} is a function: write {name}(...)", token)
        self.position += 1
        with self.nested(opening):
            if name in DATA_REDUCTIONS:
                value = self.reduction(name, token)
            elif name == "where":
                value = self.where(token)
            else:
                arguments = self.arguments(name, token)
                value = self.apply(name, arguments, token)
        self.expect_close(opening)
        if power is not None:
            value = self.raise_to(value, power, token)
        return value

    def function_power(self, name: str, token: Token) -> sympy.Integer | None:
        """The 2 of sin^2(x) or sin²(x): a whole positive power written before the '('."""
        following = self.peek()
        if following is None or name in DATA_REDUCTIONS or name == "where":
            return None
        if following.kind == "sup":
            self.position += 1
            power = self.superscript(following)
        elif following.text in ("^", "**"):
            exponent, after = self.peek(1), self.peek(2)
            if exponent is not None and exponent.text == "-":
                raise self.error(
                    f"{name}^-1(…) can be read two ways: write 1/{name}(…), "
                    "or the inverse function by its name (asin, atan…)",
                    following,
                )
            if exponent is None or exponent.kind != "number" or after is None or after.text != "(":
                raise self.error(f"{name} is a function: write {name}(...)", token)
            self.position += 2
            power = self.number(exponent)
        else:
            return None
        if not (power.is_Integer and power > 0):
            raise self.error(
                f"{name}^{power}(…) can be read two ways: write ({name}(…))^{power}, "
                f"or the inverse function by its name",
                following,
            )
        return power

    def reduction(self, name: str, token: Token) -> sympy.Expr:
        if self.in_reduction:
            raise self.error(f"{name}(...) inside mean/sum is not supported", token)
        self.in_reduction = True
        argument = self.expr()
        self.in_reduction = False
        if self.peek() is not None and self.peek().text == ",":
            raise self.error(f"{name} takes one argument", token)
        if not self.data:
            raise self.error(f"{name}(...) ranges over data: give the data with --data", token)
        total = sympy.Sum(argument, (INDEX, 1, N_ROWS))
        return total / N_ROWS if name == "mean" else total

    def arguments(self, name: str, token: Token) -> list[sympy.Expr]:
        signature = FUNCTIONS[name]
        arguments = [self.expr()]
        while (comma := self.accept(",")) is not None:
            if signature.most is not None and len(arguments) == signature.most:
                raise self.error(_arity(name, signature), comma)
            arguments.append(self.expr())
        if len(arguments) < signature.least:
            raise self.error(_arity(name, signature), token)
        missing = (signature.most or len(arguments)) - len(arguments)
        if missing and signature.defaults:
            arguments += signature.defaults[len(signature.defaults) - missing :]
        return arguments

    def apply(self, name: str, arguments: list[sympy.Expr], token: Token) -> sympy.Expr:
        if name == "softmax":
            index, *logits = arguments
            if not (index.is_Integer and 1 <= index <= len(logits)):
                raise self.error(
                    f"softmax(k, z1, ..., zK): k is the class, a whole number from 1 to "
                    f"{len(logits)}",
                    token,
                )
        if name == "log" and len(arguments) == 2:
            base = arguments[1]
            if base.is_number and (base.is_positive is False or base == 1):
                raise self.error("the base of a logarithm must be positive and not 1", token)
        if name == "huber" and arguments[1].is_number and not arguments[1].is_positive:
            raise self.error("huber(u, delta): delta must be positive", token)
        return self.checked(FUNCTIONS[name].build(*arguments), token)

    def where(self, token: Token) -> sympy.Expr:
        """where(condition, a, b): a where the condition holds, b elsewhere (torch.where)."""
        left = self.expr()
        comparison = self.peek()
        if comparison is None or comparison.text not in COMPARISONS:
            raise self.error(
                "where(condition, a, b) needs a comparison first, e.g. where(abs(u) <= 1, ...)",
                comparison or token,
            )
        self.position += 1
        right = self.expr()
        if self.peek() is not None and self.peek().text in COMPARISONS:
            raise self.error("one comparison per condition (a < b, not a < b < c)", self.peek())
        condition = COMPARISONS[comparison.text](left, right)
        branches = []
        for _ in range(2):
            if self.accept(",") is None:
                raise self.error("where takes three arguments: where(condition, a, b)", token)
            branches.append(self.expr())
        if condition in (sympy.true, sympy.false):
            return branches[0] if condition == sympy.true else branches[1]
        return self.checked(sympy.Piecewise((branches[0], condition), (branches[1], True)), token)

    # -- arithmetic guards -------------------------------------------------------
    def raise_to(self, base: sympy.Expr, exponent: sympy.Expr, op: Token) -> sympy.Expr:
        if base.is_Number and exponent.is_Number:
            if base.is_zero and exponent.is_negative:
                raise self.error("division by zero (0 to a negative power)", op)
            size = abs(float(exponent)) * limits._rational_digits(base)
            if size > MAX_DIGITS:
                raise self.error(f"the power is a number of more than {MAX_DIGITS} digits", op)
        try:
            limits.check_power(base, exponent, self.bounds)
        except limits.LimitError as limit:
            raise self.error(str(limit), op) from None
        return self.checked(base**exponent, op)

    def checked(self, value: sympy.Expr, op: Token) -> sympy.Expr:
        if _undefined(value):
            raise self.error("the expression is undefined here (division by zero?)", op)
        # What this operation built is new; what it was built from was checked already.
        if value.has(sympy.I) or any(
            p.is_number and p.is_real is False for p in (value, *value.args)
        ):
            raise self.error("this is not a real number (a log or root of a negative number)", op)
        try:
            for part in (value, *value.args):
                if isinstance(part, sympy.Expr) and part.is_number:
                    limits.check_number(part)
            # refused where the bound is crossed: (w+1)*…*(w+119) stops at its 65th factor
            limits.check_expression(value, self.bounds)
        except limits.LimitError as limit:
            raise self.error(str(limit), op) from None
        return value


def _undefined(value: sympy.Expr) -> bool:
    """zoo, nan or ±oo anywhere: only the new node and its arguments need a look."""
    bad = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)
    return any(part in bad or (part.is_number and part.has(*bad)) for part in (value, *value.args))


def _arity(name: str, signature: Signature) -> str:
    if signature.most is None:
        return f"{name} takes {signature.least} or more arguments"
    if signature.least == signature.most:
        count = "one argument" if signature.least == 1 else f"{signature.least} arguments"
        return f"{name} takes {count}"
    return f"{name} takes {signature.least} to {signature.most} arguments"
