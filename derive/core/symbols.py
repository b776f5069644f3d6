"""The symbols every stage shares (parameters, data columns, the row index and the row count)
and the one printer that belongs to the math itself: an expression written back in derive's
input grammar, so that parsing it again gives an equal expression."""

from __future__ import annotations

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
    "pi rho sigma tau upsilon phi chi psi omega"
).split()

INDEX = sympy.Symbol("i", integer=True, positive=True)
N_ROWS = sympy.Symbol("n", integer=True, positive=True)


def symbol(name: str) -> sympy.Symbol:
    """The one SymPy symbol derive uses for a parameter name."""
    return sympy.Symbol(name, real=True)


def data_column(name: str) -> sympy.Indexed:
    """A data column's i-th value, xᵢ, as it appears inside Σ."""
    return sympy.IndexedBase(name, real=True)[INDEX]


class GrammarPrinter(StrPrinter):
    """Prints an expression back in derive's input grammar: `mean((w*x + b - y)**2)`.

    Derivatives print in it too: H(u) (½ at 0) as where(u > 0, 1, where(u < 0, 0, 1/2)), so
    that the value at a kink survives the round trip."""

    printmethod = "_derive_grammar"

    def _print_Exp1(self, expr) -> str:
        return "e"

    def _print_Abs(self, expr) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_maximum(self, expr) -> str:
        return f"max({self._arguments(expr.args)})"

    def _print_minimum(self, expr) -> str:
        return f"min({self._arguments(expr.args)})"

    def _arguments(self, args) -> str:
        return ", ".join(self._print(a) for a in args)

    def _print_Relational(self, expr) -> str:
        return f"{self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr) -> str:
        *pieces, (last, _) = expr.args
        text = self._print(last)
        for value, condition in reversed(pieces):
            text = f"where({self._print(condition)}, {self._print(value)}, {text})"
        return text

    def _print_Heaviside(self, expr) -> str:
        u, at_zero = (self._print(a) for a in expr.args)
        return f"where({u} > 0, 1, where({u} < 0, 0, {at_zero}))"

    def _print_tie_share(self, expr) -> str:
        """1 above the others, 0 below one, 1/(1 + ties) at a tie for the largest."""
        mine, *others = (self._print(a) for a in expr.args)
        top = others[0] if len(others) == 1 else f"max({', '.join(others)})"
        ties = " + ".join(f"where({o} < {mine}, 0, where({o} > {mine}, 0, 1))" for o in others)
        share = f"1/(1 + {ties})"
        return f"where({mine} < {top}, 0, where({mine} > {top}, 1, {share}))"

    def _print_Indexed(self, expr: sympy.Indexed) -> str:
        return str(expr.base)

    def _print_Sum(self, expr: sympy.Sum) -> str:
        return f"sum({self._print(expr.function)})"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        sums = [f for f in expr.args if isinstance(f, sympy.Sum)]
        reciprocal = [f for f in expr.args if f == 1 / N_ROWS]
        if len(sums) == 1 and reciprocal:
            rest = [f for f in expr.args if f is not sums[0] and f is not reciprocal[0]]
            mean = f"mean({self._print(sums[0].function)})"
            return "*".join([*(self.parenthesize(f, PRECEDENCE["Mul"]) for f in rest), mean])
        return super()._print_Mul(expr)


def to_text(expr: sympy.Expr) -> str:
    """The expression in derive's grammar; parsing it again gives an equal expression."""
    return GrammarPrinter().doprint(expr)
