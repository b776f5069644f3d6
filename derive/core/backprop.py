"""Backpropagation: a loss as a graph of primitive operations, with its forward and backward
passes.

Each node type states its local facts side by side, as micrograd's engine does: the operation,
and for each input the rule and the local derivative ∂node/∂input (`LOCAL_FACTS`; every function
of the derivation's `OUTER_DERIVATIVES` is a node type too, named by its rule). The forward pass
computes every node from its inputs; the backward pass, in reverse order, gives each node the sum
over its consumers of upstream gradient × local derivative. A shared subexpression is one node
with several consumers. Over data, each row of the batch has its own nodes, the Σ over rows is a
node, and so is the mean's 1/n.

The passes run in 30-digit arithmetic and the records hold floats. At the end, each parameter's
gradient is compared with the derivation's symbolic partial evaluated at the same point: they
must agree, and a disagreement is a bug that raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sympy

from derive.core.derivation import OUTER_DERIVATIVES, SEVERAL_ARGUMENTS, Derivation
from derive.core.errors import DeriveError
from derive.core.symbols import INDEX, N_ROWS

PRECISION = 30  # digits of the passes
MAX_BATCH = 4  # rows a batch graph shows, each with its own nodes
AGREEMENT = 1e-12  # relative: backprop against the symbolic partial, both at PRECISION digits
_NODE_PREFIXES = ("z", "h", "a", "t", "q")

NodeKind = Literal["param", "data", "operation"]


@dataclass(frozen=True)
class Local:
    """One input of a node: the rule that gives ∂node/∂input, that derivative over the node's
    input symbols (σ(z₂)(1 − σ(z₂))), and its value at the point."""

    input: str
    rule: str  # a rule name of the derivation: "sum", "product", "power", "sigmoid", ...
    derivative: sympy.Expr
    value: float


@dataclass(frozen=True)
class Share:
    """What one consumer passes back to a node: upstream gradient × local derivative."""

    consumer: str
    upstream: float  # ∂L/∂consumer
    local: float  # ∂consumer/∂node
    product: float


@dataclass(frozen=True)
class Node:
    """A leaf (a parameter, or a data value of one row) or an operation on earlier nodes.

    `formula` is the operation over its inputs' symbols (z₁ + b), `expr` the same node written
    over the parameters and data (w x + b); data values of row k are `Indexed(x, k)`.
    `grad` is ∂L/∂node, the sum of `shares`; `requires_grad` says whether a parameter reaches it.
    """

    id: str
    kind: NodeKind
    op: str  # "param", "data", "add", "mul", "pow", "sum", "relu", "max", "min" or a function
    inputs: tuple[str, ...]
    symbol: sympy.Expr
    formula: sympy.Expr
    expr: sympy.Expr
    value: float
    locals: tuple[Local, ...]
    consumers: tuple[str, ...]
    shares: tuple[Share, ...]
    grad: float
    requires_grad: bool
    row: int | None = None  # a data leaf's row (1-based)
    column: str | None = None  # a data leaf's column


@dataclass(frozen=True)
class ParamGradient:
    """∂L/∂param from the backward pass, beside the symbolic partial at the same point."""

    name: str
    value: float
    grad: float
    symbolic: float


@dataclass(frozen=True)
class Graph:
    """The loss at one point, as nodes in forward order (leaves first; the last node is L).

    `rows` are the data rows of the batch (1-based; empty without data); `row` is set when one
    row was chosen. `mean` is the node that multiplies the Σ over rows by 1/n, in a batch.
    """

    derivation: Derivation
    point: Mapping[str, float]
    rows: tuple[int, ...]
    row: int | None
    nodes: tuple[Node, ...]
    params: tuple[ParamGradient, ...]
    mean: str | None

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    @property
    def leaves(self) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.kind != "operation")

    @property
    def operations(self) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.kind == "operation")

    def node(self, node_id: str) -> Node:
        return next(node for node in self.nodes if node.id == node_id)


# -- local facts, one row per node type ------------------------------------------------------

Facts = tuple[str, tuple[tuple[str, sympy.Expr], ...]]  # op, and (rule, ∂node/∂input) per input


def _add(formula: sympy.Expr, inputs: tuple[sympy.Expr, ...]) -> Facts:
    """c₀ + c₁u₁ + c₂u₂: ∂/∂uₖ = cₖ."""
    return "add", tuple(("sum", formula.diff(u)) for u in inputs)


def _mul(formula: sympy.Expr, inputs: tuple[sympy.Expr, ...]) -> Facts:
    """c·u₁·u₂: ∂/∂uₖ = c times the other factors."""
    rule = "product" if len(inputs) > 1 else "constant_multiple"
    return "mul", tuple((rule, formula.diff(u)) for u in inputs)


def _pow(formula: sympy.Expr, inputs: tuple[sympy.Expr, ...]) -> Facts:
    """uⁿ: n uⁿ⁻¹ (√u: 1/(2√u)); aᵘ: aᵘ ln a; uᵛ: both."""
    base, exponent = formula.args
    power = "sqrt" if exponent == sympy.Rational(1, 2) else "power"
    return "pow", tuple((power if u == base else "exponential", formula.diff(u)) for u in inputs)


def _extremum(op: str) -> Callable[..., Facts]:
    """max(u, v): 1 for the larger input, 0 for the other, ½ each at a tie (as PyTorch's
    maximum). relu(u) = max(0, u): 1 for u > 0, else 0 (as PyTorch's relu, 0 at u = 0)."""

    def facts(formula: sympy.Expr, inputs: tuple[sympy.Expr, ...]) -> Facts:
        if len(formula.args) != 2:
            raise DeriveError(f"{op} of more than two values has no node yet: nest {op}(u, v)")
        if op == "max" and 0 in formula.args:
            return "relu", (("relu", sympy.Heaviside(inputs[0], 0)),)
        sign = 1 if op == "max" else -1
        facts = []
        for u in inputs:
            (other,) = (a for a in formula.args if a != u)
            facts.append((op, sympy.Heaviside(sign * (u - other), sympy.Rational(1, 2))))
        return op, tuple(facts)

    return facts


LOCAL_FACTS: dict[type, Callable[..., Facts]] = {
    sympy.Add: _add,
    sympy.Mul: _mul,
    sympy.Pow: _pow,
    sympy.Max: _extremum("max"),
    sympy.Min: _extremum("min"),
}


def local_facts(formula: sympy.Expr, inputs: tuple[sympy.Expr, ...]) -> Facts:
    """The op of a node and (rule, local derivative) for each input, from the tables."""
    kind = type(formula)
    if kind in LOCAL_FACTS:
        return LOCAL_FACTS[kind](formula, inputs)
    if kind in OUTER_DERIVATIVES:  # f(u): the derivation's own fact f'(u), named by its rule
        name, outer = OUTER_DERIVATIVES[kind]
        return name, ((name, outer(inputs[0])),)
    if kind in SEVERAL_ARGUMENTS:  # huber(u, δ), logsumexp(u, v, …): the function's own partials
        name = SEVERAL_ARGUMENTS[kind]
        return name, tuple((name, formula.diff(u)) for u in inputs)
    raise DeriveError(f"backpropagation has no node for {kind.__name__} yet")


# -- building the graph ----------------------------------------------------------------------


@dataclass
class _Draft:
    """A node while the graph is built: keyed by its expression, its formula over placeholders
    (a leaf is its own placeholder), its inputs' keys in order."""

    kind: NodeKind
    op: str
    inputs: tuple[sympy.Expr, ...]
    placeholder: sympy.Expr
    formula: sympy.Expr


class _Builder:
    """Splits an expression into nodes, one per distinct subexpression (so sharing is found)."""

    def __init__(self, params: tuple[sympy.Symbol, ...], rows: tuple[int, ...]):
        self.params = set(params)
        self.rows = rows
        self.drafts: dict[sympy.Expr, _Draft] = {}
        self.mean: sympy.Expr | None = None

    def build(self, expr: sympy.Expr) -> sympy.Expr:
        """The key of the node computing `expr` (its expression, or one row's term of a Σ)."""
        if expr in self.drafts:
            return expr
        if expr in self.params:
            self.drafts[expr] = _Draft("param", "param", (), expr, expr)
        elif isinstance(expr, sympy.Indexed):
            self.drafts[expr] = _Draft("data", "data", (), expr, expr)
        elif isinstance(expr, sympy.Sum):
            bodies = [expr.function.xreplace({INDEX: row}) for row in self.rows]
            if len(bodies) == 1:  # a batch of one row: the Σ is that row's term
                return self.build(bodies[0])
            inputs = tuple(self.build(body) for body in bodies)
            formula = sympy.Add(*(self.drafts[k].placeholder for k in inputs))
            self.drafts[expr] = _Draft("operation", "sum", inputs, _placeholder(), formula)
        elif isinstance(expr, sympy.Piecewise):
            raise DeriveError("backpropagation has no node for where(…) yet")
        else:
            self._operation(expr)
        return expr

    def _operation(self, expr: sympy.Expr) -> None:
        # An Add keeps its numbers as coefficients: c₀ + c₁u₁ + …; other nodes keep them as
        # arguments. What a parameter is behind is built (and numbered) first, what comes from
        # data alone last, so that 1 − y is numbered just before the node that uses it.
        if expr.is_Add:
            parts = [_split_number(term) for term in expr.args]
        else:
            parts = [(None, arg) for arg in expr.args]
        ordered = sorted(
            (rest for _, rest in parts if not rest.is_number),
            key=lambda rest: not rest.free_symbols & self.params,
        )
        keys = {rest: self.build(rest) for rest in ordered}
        inputs = list(dict.fromkeys(keys.values()))
        placeholders = {rest: self.drafts[key].placeholder for rest, key in keys.items()}
        if expr.is_Add:
            formula = sympy.Add(
                *(n if rest.is_number else n * placeholders[rest] for n, rest in parts)
            )
        else:
            formula = expr.func(*(a if a.is_number else placeholders[a] for _, a in parts))
        self.drafts[expr] = _Draft("operation", "", tuple(inputs), _placeholder(), formula)
        of_sum = len(inputs) == 1 and isinstance(inputs[0], sympy.Sum)
        if expr.is_Mul and of_sum and _split_number(expr)[0] == sympy.Rational(1, len(self.rows)):
            self.mean = expr  # (1/n) Σ: the mean's 1/n, a node of its own


def _placeholder() -> sympy.Dummy:
    """An operation's stand-in inside its consumers' formulas, until its id is known."""
    return sympy.Dummy(real=True)


def _split_number(term: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr]:
    """2·w·x → (2, w·x): the numeric factors (2, −1, log 2, 1/n) of a product, and the rest."""
    factors = sympy.Mul.make_args(term)
    number = sympy.Mul(*(f for f in factors if f.is_number))
    return number, sympy.Mul(*(f for f in factors if not f.is_number))


def backprop(
    derivation: Derivation,
    point: Mapping[str, float],
    data: Mapping[str, np.ndarray] | None = None,
    rows: tuple[int, ...] | None = None,
    row: int | None = None,
) -> Graph:
    """The graph of the loss at `point`: on one `row` (1-based) of the data, on the batch of
    `rows`, or on all rows (at most MAX_BATCH); its forward and backward passes, checked."""
    loss = derivation.loss
    data = data or {}
    unknown = [name for name in point if name not in loss.params]
    if unknown:
        raise DeriveError(f"{', '.join(unknown)} is not a parameter ({', '.join(loss.params)})")
    point = {name: float(point.get(name, 0.0)) for name in loss.params}
    batch = _batch(loss.data, data, rows, row)
    expr = loss.expr.xreplace({N_ROWS: sympy.Integer(len(batch))}) if loss.data else loss.expr
    if not expr.free_symbols & set(loss.symbols):
        raise DeriveError("the loss does not depend on its parameters: nothing to propagate")
    if expr in loss.symbols:
        raise DeriveError(f"the loss is the parameter {expr} itself: there is no operation in it")
    builder = _Builder(loss.symbols, batch)
    for symbol in loss.symbols:  # every parameter is a leaf, used or not, in the loss's order
        builder.build(symbol)
    output = builder.build(expr)
    drafts = builder.drafts
    built = {key: k for k, key in enumerate(drafts)}

    def rank(key: sympy.Expr) -> tuple[int, int, int]:
        """Parameters, then data by row and column, then operations in the order built."""
        draft = drafts[key]
        if draft.kind == "data":
            return (1, int(key.indices[0]), loss.data.index(str(key.base)))
        return (0 if draft.kind == "param" else 2, built[key], 0)

    order = sorted(drafts, key=rank)
    ids = _ids(order, drafts, loss, len(batch) > 1)
    nodes = _passes(order, drafts, ids, _leaf_values(order, drafts, point, data), output)
    params = _checked(derivation, nodes, point, data, batch)
    mean = ids[builder.mean] if builder.mean is not None else None
    return Graph(derivation, point, batch, row, nodes, params, mean)


def _batch(
    columns: tuple[str, ...],
    data: Mapping[str, np.ndarray],
    rows: tuple[int, ...] | None,
    row: int | None,
) -> tuple[int, ...]:
    if not columns:
        if row is not None or rows:
            raise DeriveError("--row and --rows choose rows of the data, but the loss has no data")
        return ()
    count = len(data[columns[0]])
    chosen = (row,) if row is not None else rows or tuple(range(1, count + 1))
    for k in chosen:
        if not 1 <= k <= count:
            raise DeriveError(f"row {k} is not a row of the data (1 to {count})")
    if len(set(chosen)) != len(chosen):
        raise DeriveError("a row is chosen twice")
    if len(chosen) > MAX_BATCH:
        raise DeriveError(
            f"the batch has {len(chosen)} rows; a graph shows one row (--row k) "
            f"or a batch of at most {MAX_BATCH} rows (--rows 1-{min(MAX_BATCH, count)})"
        )
    return tuple(chosen)


def _ids(order, drafts: Mapping[sympy.Expr, _Draft], loss, batch: bool) -> dict:
    """Parameters keep their names; a data leaf is x (one row) or x[k] (row k of a batch);
    operations are z1, z2, … in forward order (another letter if the loss has a name z1)."""
    names = set(loss.params) | set(loss.data)
    prefix = next(
        (p for p in _NODE_PREFIXES if not any(re.fullmatch(rf"{p}\d+", n) for n in names)),
        "node",
    )
    ids, count = {}, 0
    for key in order:
        kind = drafts[key].kind
        if kind == "param":
            ids[key] = key.name
        elif kind == "data":
            ids[key] = f"{key.base}[{key.indices[0]}]" if batch else str(key.base)
        else:
            count += 1
            ids[key] = f"{prefix}{count}"
    return ids


def _leaf_values(order, drafts, point: Mapping[str, float], data) -> dict:
    """The parameters at the point and the batch's data, exactly as given (binary floats)."""
    values = {}
    for key in order:
        kind = drafts[key].kind
        if kind == "param":
            values[key] = sympy.Float(float(point.get(key.name, 0.0)), PRECISION)
        elif kind == "data":
            values[key] = sympy.Float(
                float(data[str(key.base)][int(key.indices[0]) - 1]), PRECISION
            )
    return values


def _passes(order, drafts, ids, values, output) -> tuple[Node, ...]:
    """The forward pass, then the backward pass, as nodes."""
    symbols = {
        key: key if drafts[key].kind != "operation" else sympy.Symbol(ids[key], real=True)
        for key in order
    }
    formulas, ops, locals_ = _forward(order, drafts, ids, symbols, values)
    consumers: dict[sympy.Expr, list[sympy.Expr]] = {key: [] for key in order}
    for key in order:
        for k in dict.fromkeys(drafts[key].inputs):  # Σ over rows may take one node n times
            consumers[k].append(key)
    grads, shares = _backward(order, consumers, locals_, ids, output)
    requires: dict[sympy.Expr, bool] = {}
    nodes = []
    for key in order:
        draft = drafts[key]
        requires[key] = draft.kind == "param" or any(requires[k] for k in draft.inputs)
        data = draft.kind == "data"
        nodes.append(
            Node(
                id=ids[key],
                kind=draft.kind,
                op=ops[key],
                inputs=tuple(ids[k] for k in draft.inputs),
                symbol=symbols[key],
                formula=formulas[key],
                expr=key,
                value=float(values[key]),
                locals=tuple(
                    Local(ids[k], rule, derivative, float(v))
                    for k, rule, derivative, v in locals_.get(key, ())
                ),
                consumers=tuple(ids[c] for c in consumers[key]),
                shares=shares[key],
                grad=float(grads[key]),
                requires_grad=requires[key],
                row=int(key.indices[0]) if data else None,
                column=str(key.base) if data else None,
            )
        )
    return tuple(nodes)


def _forward(order, drafts, ids, symbols, values):
    """Each operation's formula over its inputs' symbols, its value from theirs, and its local
    facts: (input, rule, ∂node/∂input, its value) for each input. Fills `values` in order."""
    formulas, ops, locals_ = {}, {}, {}
    for key in order:
        draft = drafts[key]
        ops[key] = draft.op
        if draft.kind != "operation":
            formulas[key] = key
            continue
        formula = draft.formula.xreplace({drafts[k].placeholder: symbols[k] for k in draft.inputs})
        inputs = tuple(symbols[k] for k in draft.inputs)
        if draft.op == "sum":
            facts = tuple(("sum_over_data", sympy.Integer(1)) for _ in inputs)
        else:
            ops[key], facts = local_facts(formula, inputs)
        formulas[key] = formula
        at = {symbols[k]: values[k] for k in draft.inputs}
        values[key] = _number(formula, at, ids[key])
        locals_[key] = tuple(
            (k, rule, derivative, _number(derivative, at, ids[key], local=True))
            for k, (rule, derivative) in zip(draft.inputs, facts, strict=True)
        )
    return formulas, ops, locals_


def _backward(order, consumers, locals_, ids, output):
    """∂L/∂L = 1; then, in reverse order, each node's gradient is the sum over its consumers of
    the consumer's gradient × the local derivative (summed when the node is several inputs)."""
    zero = sympy.Float(0, PRECISION)
    grads: dict[sympy.Expr, sympy.Float] = {output: sympy.Float(1, PRECISION)}
    shares: dict[sympy.Expr, tuple[Share, ...]] = {output: ()}
    for key in reversed(order):
        if key == output:
            continue
        parts = []
        for consumer in consumers[key]:
            local = sum((v for k, _, _, v in locals_[consumer] if k == key), zero)
            parts.append((consumer, grads[consumer], local, grads[consumer] * local))
        grads[key] = sum((product for *_, product in parts), zero)
        shares[key] = tuple(Share(ids[c], float(u), float(v), float(p)) for c, u, v, p in parts)
    return grads, shares


def _number(formula: sympy.Expr, at: Mapping, node_id: str, local: bool = False) -> sympy.Float:
    """A value of the passes, or a clear error where the operation is undefined."""
    number = formula.xreplace(at).evalf(PRECISION)
    if number.is_Number and number.is_finite and math.isfinite(float(number)):
        return sympy.Float(number, PRECISION)
    where = ", ".join(f"{s} = {float(v):g}" for s, v in at.items())
    if local:
        raise DeriveError(
            f"{node_id} is not differentiable there: its local derivative {formula} "
            f"is undefined at {where}; choose another point"
        )
    raise DeriveError(
        f"{node_id} = {formula} is not a finite real number at {where}; choose another point"
    )


def _checked(derivation: Derivation, nodes, point, data, batch) -> tuple[ParamGradient, ...]:
    """Each parameter's gradient beside the symbolic partial at the same point; they agree."""
    loss = derivation.loss
    leaves = {node.id: node for node in nodes if node.kind == "param"}
    params = []
    for partial in derivation.partials:
        symbolic = float(_evaluate(partial.raw, loss, point, data, batch))
        grad = leaves[partial.param].grad
        if abs(grad - symbolic) > AGREEMENT * max(1.0, abs(grad), abs(symbolic)):
            raise AssertionError(
                f"backpropagation gives ∂L/∂{partial.param} = {grad!r}, "
                f"the symbolic partial {symbolic!r}"
            )
        params.append(
            ParamGradient(partial.param, float(point.get(partial.param, 0.0)), grad, symbolic)
        )
    return tuple(params)


def _evaluate(
    expr: sympy.Expr,
    loss,
    point: Mapping[str, float],
    data: Mapping[str, np.ndarray],
    batch: tuple[int, ...],
) -> sympy.Float:
    """An expression of the loss's parameters and data, on the batch's rows (n = its size)."""
    expr = expr.xreplace(loss.values)  # named constants (λ) by their values
    if loss.data:
        expr = expr.xreplace({N_ROWS: sympy.Integer(len(batch))})
        expr = expr.replace(
            lambda e: isinstance(e, sympy.Sum),
            lambda e: sympy.Add(*(e.function.xreplace({INDEX: row}) for row in batch)),
        )
    values: dict[sympy.Expr, sympy.Expr] = {
        s: sympy.Float(float(point.get(s.name, 0.0)), PRECISION) for s in loss.symbols
    }
    for indexed in expr.atoms(sympy.Indexed):
        cell = data[str(indexed.base)][int(indexed.indices[0]) - 1]
        values[indexed] = sympy.Float(float(cell), PRECISION)
    return expr.xreplace(values).evalf(PRECISION)


def another_point(graph: Graph, data: Mapping[str, np.ndarray] | None = None) -> Graph | None:
    """The same graph (same rows) at a nearby point, for an exercise: every parameter moved by
    the first of ½, −½, 1, −1 at which every node is defined; None if there is none."""
    for shift in (0.5, -0.5, 1.0, -1.0):
        point = {name: value + shift for name, value in graph.point.items()}
        try:
            rows = graph.rows if graph.row is None and graph.rows else None
            return backprop(graph.derivation, point, data, rows=rows, row=graph.row)
        except DeriveError:
            continue
    return None
