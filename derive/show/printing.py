"""How expressions are shown: Unicode text as a textbook prints it, and LaTeX.

One `_print_<Type>` method per expression type, as SymPy's own printers do; the math never
knows how it is printed.
"""

from __future__ import annotations

import re

import sympy
from sympy.core.relational import Relational
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from derive.core.functions import LEAKY_SLOPE
from derive.core.symbols import GREEK, N_ROWS

_GREEK_UNICODE = dict(zip(GREEK, "αβγδεζηθικλμνξοπρστυφχψω", strict=True))
# Names courses give λ when `lambda` is a keyword of their language (torch writes `lambd`).
_GREEK_ALIASES = {"lam": "lambda", "lambd": "lambda", "lmbda": "lambda"}
_RELATIONS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
# Names printed for functions whose SymPy name is not the one a textbook uses.
_UNICODE_NAMES = {
    "sigmoid": "σ",
    "Abs": "abs",
    "maximum": "max",
    "minimum": "min",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "asinh": "arsinh",
    "acosh": "arcosh",
    "atanh": "artanh",
    "log2": "log₂",
    "log10": "log₁₀",
    "erf": "erf",
}
_SUB = str.maketrans("0123456789in", "₀₁₂₃₄₅₆₇₈₉ᵢₙ")
_SUP = str.maketrans("0123456789-n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻ⁿ")
_NAME = re.compile(r"^([A-Za-z]+?)_?(\d*)$")


def unicode_name(name: str) -> str:
    """theta0 → θ₀, w1 → w₁, x_2 → x₂, eta → η."""
    match = _NAME.match(name)
    if match is None:
        return name
    letters, digits = match.groups()
    letters = _GREEK_ALIASES.get(letters, letters)
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
        if exponent == sympy.Rational(-1, 2):
            return f"1/{self._print(sympy.sqrt(base))}"
        if exponent.is_Integer and exponent < 0:
            return f"1/{self.parenthesize(base**-exponent, PRECEDENCE['Mul'] + 1)}"
        base_text = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if exponent.is_Integer:
            return base_text + str(exponent).translate(_SUP)
        if base == sympy.E:
            return f"exp({self._print(exponent)})"
        return f"{base_text}^{self.parenthesize(exponent, PRECEDENCE['Pow'], strict=True)}"

    def _print_Function(self, expr) -> str:
        name = type(expr).__name__
        return f"{_UNICODE_NAMES.get(name, name)}({self._arguments(expr.args)})"

    def _arguments(self, args) -> str:
        return ", ".join(self._print(a) for a in args)

    def _print_Abs(self, expr) -> str:
        return f"|{self._print(expr.args[0])}|"

    def _print_log1p(self, expr) -> str:
        return f"log(1 + {self._print(expr.args[0])})"

    def _print_expm1(self, expr) -> str:
        return f"(exp({self._print(expr.args[0])}) − 1)"

    def _print_cbrt(self, expr) -> str:
        argument = expr.args[0]
        return f"∛{self._print(argument)}" if argument.is_Atom else f"∛({self._print(argument)})"

    def _print_huber(self, expr) -> str:
        return f"huber({self._arguments(_without_default(expr.args, 1))})"

    def _print_leaky_relu(self, expr) -> str:
        return f"leaky_relu({self._arguments(_without_default(expr.args, LEAKY_SLOPE))})"

    def _print_softmax(self, expr) -> str:
        index = str(expr.args[0]).translate(_SUB)
        return f"softmax{index}({self._arguments(expr.args[1:])})"

    def _print_Heaviside(self, expr) -> str:
        """𝟙[u > 0] where the value at 0 is 0 (relu'), H(u) where it is ½ (a tie of max)."""
        argument, at_zero = expr.args
        if at_zero == 0:
            return f"𝟙[{self._print(argument)} > 0]"
        if at_zero == 1:
            return f"𝟙[{self._print(argument)} ≥ 0]"
        return f"H({self._print(argument)})"

    def _print_tie_share(self, expr) -> str:
        mine, *others = expr.args
        return f"H({self._print(mine)}; {self._arguments(others)})"

    def _print_Relational(self, expr) -> str:
        return f"{self._print(expr.lhs)} {_RELATIONS[expr.rel_op]} {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr) -> str:
        """where(condition, a, b), as typed."""
        *pieces, (last, _) = expr.args
        text = self._print(last)
        for value, condition in reversed(pieces):
            text = f"where({self._print(condition)}, {self._print(value)}, {text})"
        return text

    def _print_Sum(self, expr: sympy.Sum) -> str:
        body = expr.function
        return f"Σ {f'({self._print(body)})' if body.is_Add else self._print(body)}"

    # -- matrix notation (core/vector.py) ----------------------------------------------------

    def _print_MatrixSymbol(self, expr) -> str:
        return unicode_name(expr.name)

    def _print_OneMatrix(self, expr) -> str:
        return "1"

    def _print_Transpose(self, expr) -> str:
        inner = expr.arg
        text = self._print(inner)
        return f"({text})ᵀ" if isinstance(inner, sympy.MatAdd) else f"{text}ᵀ"

    def _print_MatMul(self, expr) -> str:
        coefficient, factors = _matrix_coefficient(expr)
        product = ""
        for factor in factors:
            text = self._print(factor)
            if isinstance(factor, sympy.MatAdd | sympy.MatMul):
                text = f"({text})"
            plain = isinstance(factor, sympy.MatrixSymbol | sympy.Transpose | sympy.MatAdd)
            product += text if plain or not product else f" {text}"
        if coefficient == 1:
            return product
        if coefficient == -1:
            return f"−{product}"
        sign = "−" if coefficient.could_extract_minus_sign() else ""
        return f"{sign}({self._print(abs(coefficient))}) {product}"

    def _print_MatAdd(self, expr) -> str:
        terms = sorted(expr.args, key=lambda t: self._print(t).startswith("−"))
        out = ""
        for index, term in enumerate(terms):
            text = self._print(term)
            if text.startswith("−"):
                out += (" − " if index else "−") + text[1:]
            else:
                out += (" + " if index else "") + text
        return out

    def _print_ElementwiseApplyFunction(self, expr) -> str:
        return _applied(self, expr)

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
    """SymPy's LaTeX with σ for sigmoid, xᵢ for data, Σ written with its limits, and the
    functions of machine learning named as courses name them."""

    _default_settings = {**LatexPrinter._default_settings, "params": ()}

    def __init__(self, params: tuple[str, ...] = ()):
        super().__init__({"inv_trig_style": "full", "params": params})

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        match = _NAME.match(expr.name)
        if match and match.group(1) in _GREEK_ALIASES:
            expr = sympy.Symbol(_GREEK_ALIASES[match.group(1)] + match.group(2))
        return super()._print_Symbol(expr, style)

    def _call(self, name: str, args, exp: str | None = None) -> str:
        """name(a, b) with stretchy brackets, and f(u)^{k} for a power of it."""
        text = rf"{name}\left({', '.join(self._print(a) for a in args)}\right)"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_sigmoid(self, expr, exp=None) -> str:
        return self._call(r"\sigma", expr.args, exp)

    def _print_softplus(self, expr, exp=None) -> str:
        return self._call(r"\operatorname{softplus}", expr.args, exp)

    def _print_relu(self, expr, exp=None) -> str:
        return self._call(r"\operatorname{relu}", expr.args, exp)

    def _print_leaky_relu(self, expr, exp=None) -> str:
        args = _without_default(expr.args, LEAKY_SLOPE)
        return self._call(r"\operatorname{leaky\_relu}", args, exp)

    def _print_huber(self, expr, exp=None) -> str:
        return self._call(r"\operatorname{huber}", _without_default(expr.args, 1), exp)

    def _print_maximum(self, expr, exp=None) -> str:
        return self._call(r"\max", expr.args, exp)

    def _print_minimum(self, expr, exp=None) -> str:
        return self._call(r"\min", expr.args, exp)

    def _print_logsumexp(self, expr, exp=None) -> str:
        return self._call(r"\operatorname{logsumexp}", expr.args, exp)

    def _print_softmax(self, expr, exp=None) -> str:
        return self._call(rf"\operatorname{{softmax}}_{{{expr.args[0]}}}", expr.args[1:], exp)

    def _print_log1p(self, expr, exp=None) -> str:
        return self._call(r"\log", [1 + expr.args[0]], exp)

    def _print_expm1(self, expr, exp=None) -> str:
        text = rf"\left(e^{{{self._print(expr.args[0])}}} - 1\right)"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_log2(self, expr, exp=None) -> str:
        return self._call(r"\log_{2}", expr.args, exp)

    def _print_log10(self, expr, exp=None) -> str:
        return self._call(r"\log_{10}", expr.args, exp)

    def _print_cbrt(self, expr, exp=None) -> str:
        text = rf"\sqrt[3]{{{self._print(expr.args[0])}}}"
        return rf"\left({text}\right)^{{{exp}}}" if exp else text

    def _print_Heaviside(self, expr, exp=None) -> str:
        argument, at_zero = expr.args
        if at_zero in (0, 1):
            relation = ">" if at_zero == 0 else r"\ge"
            text = rf"\mathbb{{1}}\left[{self._print(argument)} {relation} 0\right]"
        else:
            text = self._call("H", [argument])
        return f"{text}^{{{exp}}}" if exp else text

    def _print_tie_share(self, expr, exp=None) -> str:
        mine, *others = expr.args
        rest = ", ".join(self._print(a) for a in others)
        text = rf"H\left({self._print(mine)};\, {rest}\right)"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_Piecewise(self, expr) -> str:
        """cases, each with its condition and no words: the second's is the first's negation."""
        if len(expr.args) != 2 or not isinstance(
            expr.args[0].cond, sympy.core.relational.Relational
        ):
            return super()._print_Piecewise(expr)
        (first, condition), (second, _) = expr.args
        negation = Relational(condition.lhs, condition.rhs, _NEGATED[condition.rel_op])
        rows = [
            rf"{self._print(value)} & {self._print(cond)}"
            for value, cond in ((first, condition), (second, negation))
        ]
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"

    def _as_ordered_terms(self, expr, order=None):
        return textbook_order(expr, self._settings["params"])

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        base = self._print(sympy.Symbol(str(expr.base)))
        return f"{base}_{{i}}" if "_" not in base else f"{{{base}}}_{{i}}"

    def _print_ElementwiseApplyFunction(self, expr) -> str:
        return _applied(self, expr)

    def _print_OneMatrix(self, expr) -> str:
        return r"\mathbf{1}"

    def _print_MatMul(self, expr) -> str:
        """(2/n) Xᵀ(Xθ − y) as \\frac{2}{n} X^{T} (…): the number in front, unbracketed."""
        coefficient, factors = _matrix_coefficient(expr)
        parts = []
        for factor in factors:
            text = self._print(factor)
            if isinstance(factor, sympy.MatAdd | sympy.MatMul):
                text = rf"\left({text}\right)"
            parts.append(text)
        product = " ".join(parts)
        if coefficient == 1:
            return product
        if coefficient == -1:
            return f"- {product}"
        sign = "- " if coefficient.could_extract_minus_sign() else ""
        return f"{sign}{self._print(abs(coefficient))} {product}"

    def _print_MatAdd(self, expr) -> str:
        terms = sorted(expr.args, key=lambda t: self._print(t).startswith("-"))
        out = ""
        for index, term in enumerate(terms):
            text = self._print(term)
            if text.startswith("-"):
                out += (" - " if index else "-") + text[1:].lstrip()
            else:
                out += (" + " if index else "") + text
        return out

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


def _matrix_coefficient(expr) -> tuple[sympy.Expr, list]:
    """A product of matrices split into its scalar factor and its matrices, in order."""
    scalars = [f for f in expr.args if not getattr(f, "is_Matrix", False)]
    matrices = [f for f in expr.args if getattr(f, "is_Matrix", False)]
    return sympy.Mul(*scalars), matrices


def _applied(printer, expr) -> str:
    """f applied to each entry of a vector, printed as f(Xθ): σ(Xθ), log(1 − σ(Xθ))."""
    function, argument = expr.function, expr.expr
    if isinstance(function, sympy.Lambda):
        (variable,), body = function.args
    else:
        variable = sympy.Dummy("t")
        body = function(variable)
    marker = sympy.Symbol("MARKER")
    text = printer._print(body.xreplace({variable: marker}))
    return text.replace(printer._print(marker), printer._print(argument))


def _without_default(args, default) -> tuple:
    """huber(u) for huber(u, 1), leaky_relu(z) for leaky_relu(z, 0.01): as typed."""
    return args[:-1] if args[-1] == default else args


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
