"""How expressions are shown: Unicode text as a textbook prints it, and LaTeX.

One `_print_<Type>` method per expression type, as SymPy's own printers do; the math never
knows how it is printed.
"""

from __future__ import annotations

import re

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from derive.core.symbols import GREEK, N_ROWS

_GREEK_UNICODE = dict(zip(GREEK, "αβγδεζηθικλμνξοπρστυφχψω", strict=True))
_SUB = str.maketrans("0123456789in", "₀₁₂₃₄₅₆₇₈₉ᵢₙ")
_SUP = str.maketrans("0123456789-n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻ⁿ")
_NAME = re.compile(r"^([A-Za-z]+?)_?(\d*)$")


def unicode_name(name: str) -> str:
    """theta0 → θ₀, w1 → w₁, x_2 → x₂, eta → η."""
    match = _NAME.match(name)
    if match is None:
        return name
    letters, digits = match.groups()
    return _GREEK_UNICODE.get(letters, letters) + digits.translate(_SUB)


class UnicodePrinter(StrPrinter):
    """Prints `2(w − 3)`, `(2/n) Σ (w xᵢ + b − yᵢ) xᵢ`, `σ(z)`, `x²`."""

    printmethod = "_derive_unicode"  # not Indexed's own `_sympystr`
    _default_settings = {**StrPrinter._default_settings, "params": ()}

    def _as_ordered_terms(self, expr, order=None):
        return textbook_order(expr, self._settings["params"])

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return unicode_name(expr.name)

    def _print_Dummy(self, expr: sympy.Dummy) -> str:
        return unicode_name(expr.name)

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        return unicode_name(str(expr.base)) + "ᵢ"

    def _print_Exp1(self, expr) -> str:
        return "e"

    def _print_Pi(self, expr) -> str:
        return "π"

    def _print_Add(self, expr: sympy.Add, order=None) -> str:
        terms = self._as_ordered_terms(expr, order=order)
        out = ""
        for index, term in enumerate(terms):
            text = self._print(term)
            if text.startswith("−"):
                out += (" − " if index else "−") + text[1:]
            else:
                out += (" + " if index else "") + text
        return out

    def _print_Mul(self, expr: sympy.Mul) -> str:
        coeff, factors = expr.as_coeff_mul()
        sign = "−" if coeff < 0 else ""
        coeff = abs(coeff)
        numer = [f for f in factors if not _is_reciprocal(f)]
        denom = [1 / f for f in factors if _is_reciprocal(f)]
        p, q = coeff.as_numer_denom()
        if q != 1 or denom:
            top = [sympy.Integer(p)] if p != 1 or not numer else []
            bottom = ([sympy.Integer(q)] if q != 1 else []) + denom
            fraction = f"{self._product(top) or '1'}/{self._product(bottom, grouped=True)}"
            if not numer:
                return sign + fraction
            # (2/n) Σ …, (1/2)(8x³ − …): a factor in front of a sum or a bracket
            plain_bottom = all(f.is_Number or f == N_ROWS for f in bottom)
            if any(isinstance(f, sympy.Sum) for f in numer) or (plain_bottom and numer[0].is_Add):
                return f"{sign}({fraction}) {self._product(numer)}"
            return f"{sign}{self._product(top + numer)}/{self._product(bottom, grouped=True)}"
        top = [sympy.Integer(p)] if p != 1 else []
        return sign + self._product(top + numer)

    def _product(self, factors: list[sympy.Expr], grouped: bool = False) -> str:
        parts = [self.parenthesize(f, PRECEDENCE["Mul"], strict=False) for f in factors]
        out = ""
        for index, (factor, text) in enumerate(zip(factors, parts, strict=True)):
            if index == 0:
                out = text
            elif factors[index - 1].is_Number and not factor.is_Number:
                out += text
            else:
                out += " " + text
        if grouped and len(factors) > 1:
            return f"({out})"
        return out

    def _print_Rational(self, expr: sympy.Rational) -> str:
        text = f"{abs(expr.p)}/{expr.q}" if expr.q != 1 else str(abs(expr.p))
        return ("−" if expr.p < 0 else "") + text

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return self._print_Rational(expr)

    def _print_Pow(self, expr: sympy.Pow, rational=False) -> str:
        base, exponent = expr.as_base_exp()
        if exponent == sympy.Rational(1, 2):
            return f"√({self._print(base)})" if not base.is_Atom else f"√{self._print(base)}"
        if exponent.is_Integer and exponent < 0:
            return f"1/{self.parenthesize(base**-exponent, PRECEDENCE['Mul'] + 1)}"
        base_text = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if exponent.is_Integer:
            return base_text + str(exponent).translate(_SUP)
        if base == sympy.E:
            return f"exp({self._print(exponent)})"
        return f"{base_text}^{self.parenthesize(exponent, PRECEDENCE['Pow'], strict=True)}"

    def _print_Function(self, expr) -> str:
        name = {"sigmoid": "σ", "Abs": "abs"}.get(type(expr).__name__, type(expr).__name__)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_Sum(self, expr: sympy.Sum) -> str:
        body = self.parenthesize(expr.function, PRECEDENCE["Mul"], strict=False)
        if expr.function.is_Mul and any(f.is_Add for f in expr.function.args):
            body = self._print(expr.function)
        return f"Σ {body}"

    def _print_Derivative(self, expr: sympy.Derivative) -> str:
        (variable, _count), *_ = expr.variable_count
        body = self.parenthesize(expr.expr, PRECEDENCE["Mul"], strict=False)
        return f"∂/∂{self._print(variable)} {body}"


def textbook_order(expr: sympy.Add, params: tuple[str, ...]) -> list[sympy.Expr]:
    """Terms as a textbook orders them: by parameter (in the loss's order), higher powers
    first, then data terms, then constants: `w xᵢ + b − yᵢ`, `x⁴ − 4x² + x/2`, `w − 3`."""
    order = {name: index for index, name in enumerate(params)}

    def key(term: sympy.Expr):
        names = sorted(order[s.name] for s in term.free_symbols if s.name in order)
        first = names[0] if names else len(order)
        others = sorted(s.name for s in term.free_symbols if s.name not in order)
        degree = sum(
            power
            for base, power in term.as_powers_dict().items()
            if base.is_Symbol and base.name in order and power.is_Number
        )
        return (first, -degree, not term.free_symbols and not term.has(sympy.Indexed), others)

    terms = sorted(sympy.Add.make_args(expr), key=key)
    # 1 − yᵢ rather than −yᵢ + 1: a sum does not open with a minus when it need not.
    positive = [t for t in terms if not t.could_extract_minus_sign()]
    if terms[0].could_extract_minus_sign() and positive:
        terms.remove(positive[0])
        terms.insert(0, positive[0])
    return terms


def _is_reciprocal(factor: sympy.Expr) -> bool:
    return factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative


class TextbookLatexPrinter(LatexPrinter):
    """SymPy's LaTeX with σ for sigmoid, xᵢ for data, and Σ written with its limits."""

    _default_settings = {**LatexPrinter._default_settings, "params": ()}

    def __init__(self, params: tuple[str, ...] = ()):
        super().__init__({"inv_trig_style": "abbreviated", "params": params})

    def _as_ordered_terms(self, expr, order=None):
        return textbook_order(expr, self._settings["params"])

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        base = self._print(sympy.Symbol(str(expr.base)))
        return f"{base}_{{i}}" if "_" not in base else f"{{{base}}}_{{i}}"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        """(2/n) Σ …, not Σ … over n: the factor in front of the sum, as textbooks write it."""
        sums = [f for f in expr.args if isinstance(f, sympy.Sum)]
        if len(sums) != 1:
            return super()._print_Mul(expr)
        front = expr / sums[0]
        sign = "- " if front.could_extract_minus_sign() else ""
        front = -front if sign else front
        shown = "" if front == 1 else self._print(front) + " "
        return f"{sign}{shown}{self._print(sums[0])}"

    def _print_Abs(self, expr, exp=None) -> str:
        text = rf"\left|{self._print(expr.args[0])}\right|"
        return f"{text}^{{{exp}}}" if exp else text


def to_unicode(expr: sympy.Expr, params: tuple[str, ...] = ()) -> str:
    return UnicodePrinter({"params": params}).doprint(expr)


def to_latex(expr: sympy.Expr, params: tuple[str, ...] = ()) -> str:
    return TextbookLatexPrinter(params).doprint(expr)


def number(value: float, digits: int = 6) -> str:
    """A number as a lesson prints it: up to `digits` significant digits, no trailing zeros."""
    if value != value or value in (float("inf"), float("-inf")):
        return {True: "NaN"}.get(value != value, "∞" if value > 0 else "−∞")
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}×10^{int(exponent)}"
    return text


def number_text(value: float, digits: int = 6) -> str:
    """`number` typeset for text and tables: −4.8, 3.35761×10⁻⁵."""
    text = number(value, digits)
    if "×10^" in text:
        mantissa, exponent = text.split("×10^")
        text = f"{mantissa}×10{exponent.translate(_SUP)}"
    return text.replace("-", "−")


def hazard_text(hazard, params: tuple[str, ...], row_words: str) -> tuple[str, str]:
    """A hazard's operation and place as printed: ("log(w)", "w = −0.5 (row 3: x = 0)")."""
    operation = "" if hazard.operation is None else to_unicode(hazard.operation, params)
    where = ", ".join(f"{unicode_name(k)} = {number_text(v)}" for k, v in hazard.params.items())
    if hazard.row is not None:
        cells = ", ".join(
            f"{unicode_name(k)} = {number_text(v)}" for k, v in hazard.row_values.items()
        )
        where += f" ({row_words.format(row=hazard.row)}: {cells})"
    return operation, where
