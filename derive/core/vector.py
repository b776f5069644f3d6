"""A linear model's gradient in matrix notation: ∇_θ L = (2/n) Xᵀ(Xθ − y) for least squares,
(1/n) Xᵀ(σ(Xθ) − y) for logistic regression.

X holds the feature columns (and a column of ones for the intercept), θ the parameters in the
same order, y the targets. The least-squares gradient comes from SymPy's matrix calculus
(MatrixSymbol) applied to L(θ) = c (Xθ − y)ᵀ(Xθ − y) as a whole. For the cross-entropy,
whose σ acts element by element, SymPy's matrix calculus differentiates the linear layer
z = Xθ (∂(vᵀXθ)/∂θ = Xᵀv) and the chain rule brings in the per-row derivative
∂ℓ/∂z = σ(z) − y, derived as every other derivative is.

Each matrix gradient is checked against the per-parameter partials on three rows written out
(X with entries of its own): they must agree exactly, or `vector_form` raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sympy
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from derive.core.derivation import Derivation
from derive.core.functions import sigmoid, softplus
from derive.core.symbols import INDEX, N_ROWS, data_column, symbol

CHECK_ROWS = 3  # rows written out when the matrix form is checked against the partials


class VectorKind(StrEnum):
    LEAST_SQUARES = "least_squares"
    LOGISTIC = "logistic"


@dataclass(frozen=True)
class VectorForm:
    """L and ∇_θ L of a linear model in matrix notation, ready for to_latex / to_unicode.

    `features[j]` is the data column in X's column j (None: the column of ones), and
    `weights[j]` the parameter θⱼ that multiplies it; `target` is y's column. `loss` and
    `gradient` are SymPy matrix expressions in X, θ, y and n.
    """

    kind: VectorKind
    features: tuple[str | None, ...]
    weights: tuple[str, ...]
    target: str
    design: sympy.MatrixSymbol  # X, n × d
    parameters: sympy.MatrixSymbol  # θ, d × 1
    targets: sympy.MatrixSymbol  # y, n × 1
    loss: sympy.MatrixExpr
    gradient: sympy.MatrixExpr


def vector_form(derivation: Derivation) -> VectorForm | None:
    """The matrix form of a least-squares or logistic loss over feature columns, or None."""
    loss = derivation.loss
    if not loss.data:
        return None
    factors = sympy.Mul.make_args(loss.formula)
    sums = [f for f in factors if isinstance(f, sympy.Sum)]
    if len(sums) != 1:
        return None
    total = sums[0]
    scale = sympy.Mul(*(f for f in factors if f is not total))
    if scale.free_symbols - {N_ROWS} or scale.has(*loss.symbols):
        return None
    found = _least_squares(total.function, loss) or _logistic(total.function, loss)
    if found is None:
        return None
    kind, linear, target = found
    layout = _layout(linear, loss)
    if layout is None or not any(column is not None for column, _ in layout):
        return None
    features = tuple(column for column, _ in layout)
    weights = tuple(param for _, param in layout)
    d = len(layout)
    design = sympy.MatrixSymbol("X", N_ROWS, d)
    theta = sympy.MatrixSymbol("theta", d, 1)
    y = sympy.MatrixSymbol(target, N_ROWS, 1)
    z = design * theta
    if kind is VectorKind.LEAST_SQUARES:
        residual = z - y
        # kept as written, (Xθ − y)ᵀ(Xθ − y), not multiplied out
        matrix_loss = sympy.MatMul(scale, sympy.Transpose(residual), residual, evaluate=False)
        gradient = matrix_loss.diff(theta)
    else:
        t = sympy.Dummy("t", real=True)
        ones = sympy.OneMatrix(N_ROWS, 1)
        log_p = ElementwiseApplyFunction(sympy.Lambda(t, sympy.log(sigmoid(t))), z)
        log_q = ElementwiseApplyFunction(sympy.Lambda(t, sympy.log(1 - sigmoid(t))), z)
        cross_entropy = sympy.MatAdd(
            sympy.MatMul(y.T, log_p), sympy.MatMul(sympy.Transpose(ones - y), log_q, evaluate=False)
        )
        matrix_loss = sympy.MatMul(-scale, cross_entropy, evaluate=False)
        slope = ElementwiseApplyFunction(sigmoid, z) - y  # ∂ℓ/∂z, row by row
        v = sympy.MatrixSymbol("v", N_ROWS, 1)
        # the linear layer by matrix calculus: ∂(vᵀXθ)/∂θ = Xᵀv; then v = σ(Xθ) − y
        gradient = (scale * (v.T * z)).diff(theta).xreplace({v: slope})
    form = VectorForm(kind, features, weights, target, design, theta, y, matrix_loss, gradient)
    _check(form, derivation)
    return form


def _least_squares(body: sympy.Expr, loss):
    """(lin − y)² or (y − lin)²: the linear part and y."""
    if not (body.is_Pow and body.exp == 2):
        return None
    residual = body.base
    for name in loss.data:
        y = data_column(name)
        for sign in (1, -1):
            linear = sympy.expand(residual * sign + y)
            if not linear.has(y) and _is_linear(linear, loss):
                return VectorKind.LEAST_SQUARES, linear, name
    return None


def _logistic(body: sympy.Expr, loss):
    """−(y log σ(lin) + (1 − y) log(1 − σ(lin))), or softplus(lin) − y lin: lin and y."""
    inside = {call.args[0] for call in body.atoms(sigmoid, softplus)}
    if len(inside) != 1:
        return None
    (linear,) = inside
    if not _is_linear(linear, loss):
        return None
    for name in loss.data:
        y = data_column(name)
        if linear.has(y):
            continue
        p = sigmoid(linear)
        forms = (
            -(y * sympy.log(p) + (1 - y) * sympy.log(1 - p)),
            softplus(linear) - y * linear,
        )
        if any(sympy.expand(body - form) == 0 for form in forms):
            return VectorKind.LOGISTIC, linear, name
    return None


def _is_linear(expr: sympy.Expr, loss) -> bool:
    return _layout(expr, loss) is not None


def _layout(linear: sympy.Expr, loss) -> list[tuple[str | None, str]] | None:
    """Σⱼ θⱼ·xⱼ (+ b): each parameter once, times one data column or alone; every parameter
    of the loss in it. The columns in the order of the parameters."""
    linear = sympy.expand(linear)
    layout = []
    used = set()
    rest = linear
    for name in loss.params:
        coefficient = linear.coeff(symbol(name))
        if coefficient == 1:
            column = None
        elif isinstance(coefficient, sympy.Indexed) and str(coefficient.base) in loss.data:
            column = str(coefficient.base)
        else:
            return None
        if column in used:
            return None
        used.add(column)
        layout.append((column, name))
        rest -= symbol(name) * coefficient
    if sympy.expand(rest) != 0:
        return None
    return layout


def _check(form: VectorForm, derivation: Derivation) -> None:
    """The matrix gradient, written out on CHECK_ROWS rows, equals the partials there."""
    rows = CHECK_ROWS
    entries = {
        column: [sympy.Symbol(f"{column}_{k}", real=True) for k in range(rows)]
        for column in {*(c for c in form.features if c is not None), form.target}
    }
    design = sympy.Matrix(
        rows,
        len(form.features),
        lambda k, j: 1 if form.features[j] is None else entries[form.features[j]][k],
    )
    theta = sympy.Matrix([symbol(name) for name in form.weights])
    targets = sympy.Matrix(entries[form.target])
    sized = form.gradient.xreplace({N_ROWS: rows})
    values = {}
    for matrix_symbol, explicit in (
        (form.design, design),
        (form.parameters, theta),
        (form.targets, targets),
    ):
        resized = matrix_symbol.xreplace({N_ROWS: rows})
        for k in range(explicit.rows):
            for j in range(explicit.cols):
                values[resized[k, j]] = explicit[k, j]
    matrix = sympy.Matrix(sized.as_explicit()).xreplace(values)
    for j, name in enumerate(form.weights):
        partial = next(p for p in derivation.partials if p.param == name)
        expected = _written_out(partial.textbook, entries, rows)
        if sympy.expand(matrix[j] - expected) != 0:
            raise AssertionError(f"matrix gradient ≠ ∂L/∂{name}: {matrix[j]} vs {expected}")


def _written_out(expr: sympy.Expr, entries: dict, rows: int) -> sympy.Expr:
    """Σ over rows written as rows terms, xᵢ as x_k, n as the number of rows."""

    def total(body, *limits):
        return sympy.Add(
            *(
                body.xreplace({data_column(c): values[k] for c, values in entries.items()})
                for k in range(rows)
            )
        )

    return expr.replace(sympy.Sum, total).xreplace({N_ROWS: rows, INDEX: 0})
