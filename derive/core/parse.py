"""Stage 1: loss text → Loss, through a whitelist grammar (never eval, sympify or parse_expr).

Grammar (precedence low to high):

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("+" | "-") unary | power
    power   := atom [superscript] [("**" | "^") unary]
    atom    := number | name | name "(" expr ")" | "(" expr ")"

Typeset text pasted from notes is understood: − – as minus, × · ⋅ as times, ÷ as divide,
superscript digits (w², x⁻¹) as powers, full-width ASCII (（w－3）) and Greek letters (θ₀ is
not accepted; write theta0, or θ0). Everything else is rejected with its column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sympy

from derive.core.errors import DeriveError
from derive.core.functions import sigmoid, softplus
from derive.core.symbols import GREEK, INDEX, N_ROWS, data_column, symbol

MAX_LENGTH = 2000
MAX_DEPTH = 100
MAX_DIGITS = 1000
MAX_NAME = 40

FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "tanh": sympy.tanh,
    "sigmoid": sigmoid,
    "softplus": softplus,
}
DATA_REDUCTIONS = ("mean", "sum")
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
RESERVED = set(FUNCTIONS) | set(DATA_REDUCTIONS) | set(CONSTANTS)

_GREEK_LETTERS = dict(zip("αβγδεζηθικλμνξοπρστυφχψω", GREEK, strict=True))

# Typeset characters that mean an ASCII operator; one character for one, so columns stay true.
_TYPESET = str.maketrans(
    {"−": "-", "–": "-", "×": "*", "·": "*", "⋅": "*", "÷": "/", "∗": "*"}
    | {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
)
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-", strict=True))

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t]+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_α-ω][A-Za-z0-9_α-ω]*)
  | (?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)
  | (?P<op>\*\*|[-+*/^(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    column: int  # 1-based, in the user's text


@dataclass(frozen=True)
class Loss:
    """A parsed loss: its text, its SymPy expression, its parameters and its data columns."""

    text: str
    expr: sympy.Expr
    params: tuple[str, ...]
    data: tuple[str, ...] = ()

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        return tuple(symbol(name) for name in self.params)


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
            tokens.append(Token(kind, match.group(), position + 1))
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


def parse_loss(
    text: str, params: tuple[str, ...] | None = None, data: tuple[str, ...] = ()
) -> Loss:
    """Parse a loss; its parameters are its free names in order of first appearance."""
    expr = parse_expression(text, data)
    found = _names_in_order(text, data)
    if params is None:
        params = found
    else:
        for name in params:
            _check_param_name(name)
        unknown = [name for name in found if name not in params]
        if unknown:
            raise DeriveError(
                f"the loss uses {', '.join(unknown)}, which is neither a parameter "
                f"(--params {','.join(params)}) nor a data column"
            )
    if not params:
        raise DeriveError("the loss has no parameter to descend on (no free name in it)")
    return Loss(text=text, expr=expr, params=tuple(params), data=tuple(data))


def _check_param_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in RESERVED:
        raise DeriveError(f"{name!r} cannot be a parameter name")


def _names_in_order(text: str, data: tuple[str, ...]) -> tuple[str, ...]:
    tokens = tokenize(text)
    names: list[str] = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        name = _canonical_name(token.text) if token.kind == "name" else None
        if name is None or name in CONSTANTS or name in data or name in names:
            continue
        if name == "n" and data:
            continue
        if following is not None and following.text == "(":
            continue
        names.append(name)
    return tuple(names)


def _canonical_name(text: str) -> str:
    """θ0 → theta0: Greek letters become their names, which SymPy prints as Greek again."""
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

    # -- helpers ---------------------------------------------------------------
    def error(self, message: str, token: Token | None = None) -> DeriveError:
        column = token.column if token else len(self.text) + 1
        return DeriveError(message, self.text, column)

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

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
            raise self.error(f"unexpected {token.text!r}: an operator is missing before it", token)
        return expr

    def expr(self) -> sympy.Expr:
        value = self.term()
        while (op := self.accept("+", "-")) is not None:
            right = self.term()
            value = self.checked(value + right if op.text == "+" else value - right, op)
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while (op := self.accept("*", "/")) is not None:
            right = self.unary()
            if op.text == "/" and right.is_zero:
                raise self.error("division by zero", op)
            value = self.checked(value * right if op.text == "*" else value / right, op)
        return value

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
            return self.raise_to(base, exponent, op)
        if start is not None and start.kind == "number":
            token = self.peek()
            if token is not None and (token.kind in ("name", "number") or token.text == "("):
                raise self.error(
                    f"missing operator between {start.text!r} and {token.text!r} "
                    f"(write {start.text}*{token.text})",
                    token,
                )
        return base

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
        if token.text == ")":
            raise self.error("unexpected ')': an operand is missing before it", token)
        if token.kind == "sup":
            raise self.error("a superscript needs something before it", token)
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
        called = self.peek() is not None and self.peek().text == "("
        if name in FUNCTIONS or name in DATA_REDUCTIONS:
            if not called:
                raise self.error(f"{name} is a function: write {name}(...)", token)
            return self.call(name, token)
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
        opening = self.take()
        with self.nested(opening):
            if name in DATA_REDUCTIONS:
                if self.in_reduction:
                    raise self.error(f"{name}(...) inside mean/sum is not supported", token)
                self.in_reduction = True
                argument = self.expr()
                self.in_reduction = False
            else:
                argument = self.expr()
        if self.accept(",") is not None:
            raise self.error(f"{name} takes one argument", token)
        self.expect_close(opening)
        if name in DATA_REDUCTIONS:
            if not self.data:
                raise self.error(f"{name}(...) ranges over data: give the data with --data", token)
            total = sympy.Sum(argument, (INDEX, 1, N_ROWS))
            return total / N_ROWS if name == "mean" else total
        return self.checked(FUNCTIONS[name](argument), token)

    # -- arithmetic guards -------------------------------------------------------
    def raise_to(self, base: sympy.Expr, exponent: sympy.Expr, op: Token) -> sympy.Expr:
        if base.is_Number and exponent.is_Number:
            if base.is_zero and exponent.is_negative:
                raise self.error("division by zero (0 to a negative power)", op)
            size = abs(float(exponent)) * _log10_size(base)
            if size > MAX_DIGITS:
                raise self.error(f"the power is a number of more than {MAX_DIGITS} digits", op)
        return self.checked(base**exponent, op)

    def checked(self, value: sympy.Expr, op: Token) -> sympy.Expr:
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise self.error("the expression is undefined here (division by zero?)", op)
        # What this operation built is new; what it was built from was checked already.
        if value.has(sympy.I) or any(
            p.is_number and p.is_real is False for p in (value, *value.args)
        ):
            raise self.error("this is not a real number (a log or root of a negative number)", op)
        if value.is_Number and _log10_size(value) > MAX_DIGITS:
            raise self.error(f"a number of more than {MAX_DIGITS} digits", op)
        return value


def _log10_size(number: sympy.Rational) -> float:
    """Digits needed to write numerator and denominator, without writing them."""
    p, q = (abs(int(part)) for part in sympy.Rational(number).as_numer_denom())
    return (math.log10(p) if p else 0.0) + math.log10(q)
