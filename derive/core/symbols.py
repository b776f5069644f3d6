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
    """Prints an expression back in derive's input grammar: `mean((w*x + b - y)**2)`."""

    printmethod = "_derive_grammar"

    def _print_Exp1(self, expr) -> str:
        return "e"

    def _print_Abs(self, expr) -> str:
        return f"abs({self._print(expr.args[0])})"

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
