"""The functions of machine learning that SymPy lacks (or writes differently), each with its
derivative as a local fact. Where a function has a kink, the derivative there is the one
PyTorch's autograd uses, so that derive's numbers are the numbers a student's torch code gives:

    relu'(0) = 0                        torch.relu
    |u|' at 0 = 0                       torch.abs (sign(0) = 0)
    max/min of tied arguments           split evenly among the tied ones (torch.maximum, torch.amax)
    leaky_relu'(0) = a                  torch.nn.functional.leaky_relu (slope a at and below 0)
    where(c, a, b)'                     the branch the condition picks (torch.where)

Huber's loss has no kink: its derivative clip(u, −δ, δ) is continuous at |u| = δ.
"""

from __future__ import annotations

import sympy
from sympy.codegen.cfunctions import expm1, log1p, log2, log10

__all__ = [
    "cbrt",
    "expm1",
    "huber",
    "leaky_relu",
    "log1p",
    "log2",
    "log10",
    "logsumexp",
    "maximum",
    "minimum",
    "relu",
    "sigmoid",
    "softmax",
    "softplus",
    "tie_share",
]

HALF = sympy.Rational(1, 2)
LEAKY_SLOPE = sympy.Rational(1, 100)  # torch.nn.functional.leaky_relu's negative_slope


class sigmoid(sympy.Function):  # noqa: N801 - printed as the user wrote it
    """σ(z) = 1 / (1 + e⁻ᶻ), whose derivative is σ(z)(1 − σ(z))."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return HALF
        return None

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sympy.exp(-z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class softplus(sympy.Function):  # noqa: N801
    """softplus(z) = log(1 + eᶻ), whose derivative is σ(z)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sympy.log(1 + sympy.exp(z))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class relu(sympy.Function):  # noqa: N801
    """relu(u) = max(u, 0); relu'(u) = 1 for u > 0, and 0 for u ≤ 0 (torch.relu: 0 at 0)."""

    nargs = 1

    @classmethod
    def eval(cls, u):
        if u.is_Number:
            return sympy.Max(u, 0)
        if u.is_nonnegative:
            return u
        if u.is_nonpositive:
            return sympy.Integer(0)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Piecewise(self, u, **kwargs):
        return sympy.Piecewise((u, u > 0), (0, True))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_nonnegative(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return sympy.Max(self.args[0], 0)._eval_evalf(prec)


class leaky_relu(sympy.Function):  # noqa: N801
    """leaky_relu(z, a) = z for z > 0, a·z otherwise; the slope at 0 is a, as in torch."""

    nargs = 2

    @classmethod
    def eval(cls, z, a):
        if z.is_Number and a.is_Number:
            return z if z > 0 else a * z
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        z, a = self.args
        if argindex == 1:
            return sympy.Piecewise((1, z > 0), (a, True))
        return sympy.Piecewise((0, z > 0), (z, True))

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):
        return sympy.Piecewise((z, z > 0), (a * z, True))

    def _eval_is_real(self):
        return self.args[0].is_real and self.args[1].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.Piecewise)._eval_evalf(prec)


class huber(sympy.Function):  # noqa: N801
    """huber(u, δ) = u²/2 for |u| ≤ δ, δ(|u| − δ/2) beyond (torch.nn.HuberLoss, one element).

    Its derivative clip(u, −δ, δ) is continuous: the joins at |u| = δ are not kinks.
    """

    nargs = 2

    @classmethod
    def eval(cls, u, delta):
        if u.is_Number and delta.is_Number:
            return u**2 / 2 if abs(u) <= delta else delta * (abs(u) - delta / 2)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        u, delta = self.args
        inside = sympy.Abs(u) <= delta
        if argindex == 1:
            return sympy.Piecewise((u, inside), (delta * sympy.sign(u), True))
        return sympy.Piecewise((0, inside), (sympy.Abs(u) - delta, True))

    def _eval_rewrite_as_Piecewise(self, u, delta, **kwargs):
        return sympy.Piecewise(
            (u**2 / 2, sympy.Abs(u) <= delta), (delta * (sympy.Abs(u) - delta / 2), True)
        )

    def _eval_is_real(self):
        return self.args[0].is_real and self.args[1].is_real

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.Piecewise)._eval_evalf(prec)


class _Extremum(sympy.Function):
    """max or min of any number of arguments, kept as written (SymPy's Max reorders and
    merges its arguments, and its derivative does not split ties as torch does)."""

    pick = max

    @classmethod
    def eval(cls, *args):
        if len(args) < 2:
            return None
        if all(a.is_Rational for a in args):
            return cls.pick(args)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        args = list(self.args)
        mine = args.pop(argindex - 1)
        sign = 1 if self.pick is max else -1
        if len(args) == 1:  # torch.maximum: 1 above, 0 below, ½ at a tie
            return sympy.Heaviside(sign * (mine - args[0]), HALF)
        return tie_share(sign * mine, *(sign * a for a in args))

    def _eval_is_real(self):
        return all(a.is_real for a in self.args) or None

    def _eval_evalf(self, prec):
        values = [a.evalf(prec) for a in self.args]
        if all(v.is_Number for v in values):
            return self.pick(values)
        return None


class maximum(_Extremum):  # noqa: N801
    """max(a, b, …): its derivative splits a tie evenly among the tied arguments."""

    pick = max


class minimum(_Extremum):  # noqa: N801
    """min(a, b, …): its derivative splits a tie evenly among the tied arguments."""

    pick = min


class tie_share(sympy.Function):  # noqa: N801
    """∂max(a, b, c, …)/∂a: 1 when a is the largest, 0 when another is larger, and 1/k when k
    arguments tie for the largest (torch.amax splits the gradient evenly among them)."""

    @classmethod
    def eval(cls, mine, *others):
        if not others:
            return sympy.Integer(1)
        if all(a.is_Rational for a in (mine, *others)):
            if any(o > mine for o in others):
                return sympy.Integer(0)
            return sympy.Rational(1, 1 + sum(o == mine for o in others))
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Integer(0)  # piecewise constant: its derivative is 0 wherever it exists

    def _eval_is_real(self):
        return True

    def _eval_is_nonnegative(self):
        return True


class cbrt(sympy.Function):  # noqa: N801
    """The real cube root ∛u (also of a negative u), whose derivative is 1/(3∛u²)."""

    nargs = 1

    @classmethod
    def eval(cls, u):
        if u.is_Number:
            return sympy.real_root(u, 3)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 1 / (3 * cbrt(self.args[0]) ** 2)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return sympy.real_root(self.args[0], 3)._eval_evalf(prec)


class logsumexp(sympy.Function):  # noqa: N801
    """logsumexp(z₁, …, z_K) = log Σ exp(zⱼ), whose partial in zₖ is softmax(k, z₁, …, z_K)."""

    @classmethod
    def eval(cls, *z):
        if len(z) == 1:
            return z[0]
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return softmax(argindex, *self.args)

    def _eval_rewrite_as_exp(self, *z, **kwargs):
        return sympy.log(sympy.Add(*(sympy.exp(v) for v in z)))

    def _eval_is_real(self):
        return all(v.is_real for v in self.args) or None

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


class softmax(sympy.Function):  # noqa: N801
    """softmax(k, z₁, …, z_K) = exp(zₖ) / Σ exp(zⱼ): the k-th probability, k counted from 1.

    ∂pₖ/∂zⱼ = pₖ(δₖⱼ − pⱼ); the index k is a whole number, never differentiated.
    """

    @classmethod
    def eval(cls, k, *z):
        if len(z) == 1:
            return sympy.Integer(1)
        return None

    @property
    def index(self) -> int:
        return int(self.args[0])

    @property
    def logits(self) -> tuple[sympy.Expr, ...]:
        return self.args[1:]

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex == 1:
            return sympy.Integer(0)  # the index is a whole number: never a variable
        j = argindex - 1
        k = self.index
        p_k = softmax(k, *self.logits)
        return p_k * ((1 if j == k else 0) - softmax(j, *self.logits))

    def _eval_rewrite_as_exp(self, k, *z, **kwargs):
        return sympy.exp(z[int(k) - 1]) / sympy.Add(*(sympy.exp(v) for v in z))

    def _eval_is_real(self):
        return all(v.is_real for v in self.logits) or None

    def _eval_is_positive(self):
        return all(v.is_real for v in self.logits) or None

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)


def as_sympy(expr: sympy.Expr) -> sympy.Expr:
    """The same function written with SymPy's own (Max, Piecewise, log, exp), which its
    solvers, limits and domain finders understand: for proving where a loss is stationary,
    never for its derivatives at a kink (those follow PyTorch, above). σ and softplus stay."""
    rewrites = {
        relu: lambda u: sympy.Max(u, 0),
        leaky_relu: lambda z, a: sympy.Piecewise((z, z > 0), (a * z, True)),
        huber: lambda u, d: sympy.Piecewise(
            (u**2 / 2, sympy.Abs(u) <= d), (d * (sympy.Abs(u) - d / 2), True)
        ),
        maximum: sympy.Max,
        minimum: sympy.Min,
        cbrt: lambda u: sympy.sign(u) * sympy.Abs(u) ** sympy.Rational(1, 3),
        logsumexp: lambda *z: sympy.log(sympy.Add(*(sympy.exp(t) for t in z))),
        softmax: lambda k, *z: sympy.exp(z[int(k) - 1]) / sympy.Add(*(sympy.exp(t) for t in z)),
        log1p: lambda u: sympy.log(1 + u),
        expm1: lambda u: sympy.exp(u) - 1,
        log2: lambda u: sympy.log(u) / sympy.log(2),
        log10: lambda u: sympy.log(u) / sympy.log(10),
    }
    for kind, rewrite in rewrites.items():
        expr = expr.replace(kind, rewrite)
    return expr
