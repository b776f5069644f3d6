"""The two functions of machine learning that SymPy lacks, with their derivatives as local facts."""

from __future__ import annotations

import sympy


class sigmoid(sympy.Function):  # noqa: N801 - printed as the user wrote it
    """σ(z) = 1 / (1 + e⁻ᶻ), whose derivative is σ(z)(1 − σ(z))."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return sympy.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sympy.exp(-z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)

    def _latex(self, printer) -> str:
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class softplus(sympy.Function):  # noqa: N801
    """softplus(z) = log(1 + eᶻ), whose derivative is σ(z)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sympy.log(1 + sympy.exp(z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)

    def _latex(self, printer) -> str:
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"
