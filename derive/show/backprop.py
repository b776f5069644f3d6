"""How a backpropagation graph is shown: as terminal text, as JSON, as a figure, as a lesson
(Markdown and HTML, zh and en) and as PyTorch code that recomputes its numbers.

The graph (derive.core.backprop) holds the math; every number here arrives from it, already
computed and checked. A node's formula is printed once with placeholders for its inputs, and the
placeholders are then filled with the inputs' names (the definition) or their values (the
arithmetic), so both read in the same order.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sympy
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from derive.core.backprop import Graph, Node
from derive.core.symbols import GrammarPrinter, to_text
from derive.show import figures
from derive.show.book import front_matter, notebook_name, portable
from derive.show.catalog import messages, template
from derive.show.html import markdown_to_html
from derive.show.printing import (
    TextbookLatexPrinter,
    UnicodePrinter,
    number,
    number_text,
    to_latex,
    to_unicode,
)

if TYPE_CHECKING:
    import nbformat

_SUPERSCRIPT = str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾")
_SLOT = "XQ"  # placeholder names: XQaa, XQab, … (sorted as the inputs are)


# -- printing a node's formula ---------------------------------------------------------------


class _Latex(TextbookLatexPrinter):
    """The lesson's LaTeX, with a visible product (0.5 · (−0.25) needs it) and no `|` (a
    Markdown table would split on it)."""

    def __init__(self) -> None:
        LatexPrinter.__init__(
            self, {"inv_trig_style": "abbreviated", "params": (), "mul_symbol": "dot"}
        )

    def _print_Abs(self, expr, exp=None) -> str:
        text = rf"\left\lvert {self._print(expr.args[0])} \right\rvert"
        return f"{text}^{{{exp}}}" if exp else text

    def _print_Heaviside(self, expr, exp=None) -> str:
        return rf"[{self._print(expr.args[0])} > 0]"

    def _print_Max(self, expr, exp=None) -> str:
        if len(expr.args) == 2 and 0 in expr.args:
            (u,) = (a for a in expr.args if a != 0)
            return rf"\operatorname{{relu}}\left({self._print(u)}\right)"
        return rf"\max\left({', '.join(self._print(a) for a in expr.args)}\right)"

    def _print_Min(self, expr, exp=None) -> str:
        return rf"\min\left({', '.join(self._print(a) for a in expr.args)}\right)"


class _Unicode(UnicodePrinter):
    """The terminal's text, with a visible product: 0.5 · (−0.25)."""

    def _product(self, factors, grouped: bool = False) -> str:
        text = " · ".join(self.parenthesize(f, 50, strict=False) for f in factors)
        return f"({text})" if grouped and len(factors) > 1 else text

    def _print_Heaviside(self, expr) -> str:
        return f"[{self._print(expr.args[0])} > 0]"

    def _print_Max(self, expr) -> str:
        if len(expr.args) == 2 and 0 in expr.args:
            (u,) = (a for a in expr.args if a != 0)
            return f"relu({self._print(u)})"
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"


@dataclass(frozen=True)
class Notation:
    """How one output writes expressions, numbers and the name of a data value of row k."""

    expr: Callable[[sympy.Expr], str]
    number: Callable[[float], str]
    row: Callable[[str, int], str]  # (the column's printed name, k) → x⁽ᵏ⁾


def _tex_number(value: float) -> str:
    text = number(value)
    if "×10^" in text:
        mantissa, exponent = text.split("×10^")
        return rf"{mantissa} \times 10^{{{exponent}}}"
    return text


LATEX = Notation(
    expr=lambda e: _Latex().doprint(e),
    number=_tex_number,
    row=lambda name, k: f"{name}^{{({k})}}",
)
UNICODE = Notation(
    expr=lambda e: _Unicode({"params": ()}).doprint(e),
    number=number_text,
    row=lambda name, k: name + f"({k})".translate(_SUPERSCRIPT),
)


def node_name(node: Node, graph: Graph, notation: Notation) -> str:
    """z₃, w, θ₀, x (one row) or x⁽²⁾ (row 2 of a batch)."""
    if node.kind == "data":
        column = notation.expr(sympy.Symbol(node.column))
        return notation.row(column, node.row) if len(graph.rows) > 1 else column
    return notation.expr(node.symbol)


def _slots(count: int) -> list[sympy.Symbol]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        sympy.Symbol(_SLOT + letters[k // 26] + letters[k % 26], real=True) for k in range(count)
    ]


def _filled(
    formula: sympy.Expr, symbols: list[sympy.Expr], texts: list[str], notation: Notation
) -> str:
    """The formula printed with each input symbol written as the given text; a negative number
    gets brackets unless the formula already encloses it: σ(−0.15), 1 − (−0.46)."""
    slots = _slots(len(symbols))
    printed = notation.expr(formula.xreplace(dict(zip(symbols, slots, strict=True))))
    by_name = {slot.name: text for slot, text in zip(slots, texts, strict=True)}

    def fill(match: re.Match) -> str:
        text = by_name[match.group()]
        before, after = printed[: match.start()], printed[match.end() :]
        enclosed = before.rstrip().endswith(("(", "{", ",")) and after.lstrip().startswith(
            (")", r"\right)", "}", ",")
        )
        leading = not before.strip() and not after.startswith(("^", *"²³⁴⁵⁶⁷⁸⁹⁻¹⁰"))
        enclosed = enclosed or leading
        compound = text.startswith(("-", "−")) or "×" in text or r"\times" in text
        return f"({text})" if compound and not enclosed else text

    return re.sub(rf"{_SLOT}[a-z]{{2}}", fill, printed)


def definition(node: Node, graph: Graph, notation: Notation) -> str:
    """z₃ = σ(z₂)'s right side: the operation over its inputs' names."""
    return _over_inputs(node.formula, node, graph, notation, values=False)


def arithmetic(node: Node, graph: Graph, notation: Notation) -> str:
    """σ(−0.15): the operation over its inputs' values."""
    return _over_inputs(node.formula, node, graph, notation, values=True)


# How a textbook orders the inputs: z₁ + b − y in a sum, w · x and v₁ · z₄ in a product.
_READING_ORDER = {
    "add": {"operation": 0, "param": 1, "data": 2},
    "mul": {"param": 0, "operation": 1, "data": 2},
}


def _over_inputs(formula, node: Node, graph: Graph, notation: Notation, values: bool) -> str:
    order = _READING_ORDER.get(node.op, _READING_ORDER["add"])
    inputs = sorted((graph.node(i) for i in node.inputs), key=lambda n: order[n.kind])
    texts = [notation.number(n.value) if values else node_name(n, graph, notation) for n in inputs]
    return _filled(formula, [n.symbol for n in inputs], texts, notation)


def written(node: Node, graph: Graph, notation: Notation) -> str:
    """The node over the parameters and data: w x + b, or w x⁽²⁾ + b in a batch."""
    shown = {}
    for leaf in graph.leaves:
        if leaf.kind == "data":
            shown[leaf.symbol] = sympy.Symbol(node_name(leaf, graph, notation), real=True)
    expr = node.expr.xreplace(shown)
    params = graph.derivation.loss.params
    return to_latex(expr, params) if notation is LATEX else to_unicode(expr, params)


def rule_words(rule: str, catalog: dict) -> tuple[str, str]:
    """A local derivative's rule, named as `derive diff` names it, and what it says."""
    extra = catalog["backprop"]
    name = catalog["rules"].get(rule) or extra["rules"][rule]  # [backprop.rules]: graph-only
    fact = catalog["facts"].get(rule) or extra["facts"].get(rule, "")
    return name, fact


def op_words(op: str, catalog: dict) -> str:
    """An operation by its own word (addition…), a function by its rule's name (Sigmoid…)."""
    return catalog["backprop"]["ops"].get(op) or rule_words(op, catalog)[0]


def point_text(graph: Graph, notation: Notation) -> str:
    return ", ".join(
        f"{notation.expr(sympy.Symbol(p.name))} = {notation.number(p.value)}" for p in graph.params
    )


def row_values(graph: Graph, notation: Notation) -> str:
    """x = −0.5, y = 1: the data of the chosen row."""
    return ", ".join(
        f"{node_name(leaf, graph, notation)} = {notation.number(leaf.value)}"
        for leaf in graph.leaves
        if leaf.kind == "data"
    )


def gradient_needed(graph: Graph) -> tuple[Node, ...]:
    """The nodes the backward pass visits: the operations a parameter is behind, in reverse
    order, then the parameters, in the loss's order."""
    operations = [n for n in reversed(graph.operations) if n.requires_grad]
    return (*operations, *(n for n in graph.leaves if n.kind == "param"))


def _partial_symbol(node: Node, graph: Graph, notation: Notation) -> str:
    name = node_name(node, graph, notation)
    if notation is LATEX:
        return rf"\frac{{\partial L}}{{\partial {name}}}"
    return f"∂L/∂{name}"


# -- the terminal text and the JSON --------------------------------------------------------


def backprop_text(graph: Graph, language: str) -> str:
    """The forward pass, the backward pass and the check, for a terminal."""
    catalog = messages(language)
    words = catalog["backprop"]["text"]
    u = UNICODE
    loss = graph.derivation.loss
    point = point_text(graph, u)
    if graph.row is not None:
        where = words["where_row"].format(point=point, row=graph.row, values=row_values(graph, u))
    elif len(graph.rows) > 1:
        rows = ", ".join(map(str, graph.rows))
        where = words["where_batch"].format(point=point, rows=rows, count=len(graph.rows))
    else:
        where = words["where"].format(point=point)
    forward = [
        f"{node_name(n, graph, u)} = {definition(n, graph, u)} = {arithmetic(n, graph, u)}"
        f" = {u.number(n.value)}"
        for n in graph.operations
    ]
    backward = []
    for node in gradient_needed(graph):
        name = _partial_symbol(node, graph, u)
        if node is graph.output:
            backward.append({"head": f"{name} = 1", "paths": [], "total": None})
            continue
        paths = [
            _path_text(node, graph.node(share.consumer), share, graph, catalog)
            for share in node.shares
        ]
        total = (
            " + ".join(_signed(s.product, u) for s in node.shares) + f" = {u.number(node.grad)}"
            if len(node.shares) > 1
            else None
        )
        if len(paths) == 1:
            backward.append({"head": f"{name} = {paths[0]}", "paths": [], "total": None})
        else:
            backward.append({"head": f"{name} =", "paths": paths, "total": total})
    no_gradient = [node_name(n, graph, u) for n in graph.operations if not n.requires_grad]
    check = [
        {
            "name": f"∂L/∂{u.expr(sympy.Symbol(p.name))}",
            "grad": u.number(p.grad),
            "formula": to_unicode(partial.textbook, loss.params),
            "symbolic": u.number(p.symbolic),
        }
        for p, partial in zip(graph.params, graph.derivation.partials, strict=True)
    ]
    view = {
        "heading": words["heading"].format(loss=f"L = {to_unicode(loss.expr, loss.params)}"),
        "where": where,
        "forward": forward,
        "loss": f"L = {node_name(graph.output, graph, u)} = {u.number(graph.output.value)}",
        "backward": backward,
        "no_gradient": words["no_gradient"].format(nodes=", ".join(no_gradient))
        if no_gradient
        else None,
        "check": check,
    }
    return template("backprop.txt.j2").render(view=view, words=words).rstrip("\n")


def _path_text(node: Node, consumer: Node, share, graph: Graph, catalog: dict) -> str:
    """∂L/∂z₄ · ∂z₄/∂z₃ = (−2.16) · σ(z₃)(1 − σ(z₃)) = (−2.16) · 0.2486 = −0.537  [Sigmoid]"""
    u = UNICODE
    local = next(x for x in consumer.locals if x.input == node.id)
    formula = _over_inputs(local.derivative, consumer, graph, u, values=False)
    upstream, value = _signed(share.upstream, u), _signed(share.local, u)
    step = f"{upstream} × {value}"
    if not local.derivative.is_number:
        step = f"{upstream} × {formula} = {step}"
    rule = rule_words(local.rule, catalog)[0]
    name, of = node_name(consumer, graph, u), node_name(node, graph, u)
    return f"∂L/∂{name} · ∂{name}/∂{of} = {step} = {u.number(share.product)}   [{rule}]"


def _signed(value: float, notation: Notation) -> str:
    text = notation.number(value)
    return f"({text})" if text.startswith(("-", "−")) else text


class _GrammarOfNodes(GrammarPrinter):
    """A node's formula in derive's grammar over node ids (`sigmoid(z3)`, `w*x[2]`), with
    relu, max, min, and heaviside(u) for the unit step of their local derivatives."""

    def _print_Heaviside(self, expr) -> str:
        return f"heaviside({self._print(expr.args[0])})"

    def _print_Max(self, expr) -> str:
        if len(expr.args) == 2 and 0 in expr.args:
            (u,) = (a for a in expr.args if a != 0)
            return f"relu({self._print(u)})"
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"


def _grammar(expr: sympy.Expr, graph: Graph) -> str:
    """Data values named by their ids (x, or x[k] in a batch), everything else by the grammar."""
    ids = {leaf.symbol: sympy.Symbol(leaf.id) for leaf in graph.leaves if leaf.kind == "data"}
    return _GrammarOfNodes().doprint(expr.xreplace(ids))


def backprop_json(graph: Graph) -> dict:
    """The graph as the documented JSON object (a contract: fields are only ever added)."""
    loss = graph.derivation.loss

    def entry(node: Node) -> dict:
        return {
            "id": node.id,
            "op": node.op,
            "inputs": list(node.inputs),
            "expr": _grammar(node.formula, graph),
            "full": _grammar(node.expr, graph) if node.kind == "operation" else node.id,
            "value": node.value,
            "grad": node.grad,
            "requires_grad": node.requires_grad,
            "consumers": list(node.consumers),
            "local": [
                {
                    "input": local.input,
                    "rule": local.rule,
                    "derivative": _grammar(local.derivative, graph),
                    "value": local.value,
                }
                for local in node.locals
            ],
            "shares": [
                {
                    "consumer": s.consumer,
                    "upstream": s.upstream,
                    "local": s.local,
                    "product": s.product,
                }
                for s in node.shares
            ],
        }

    def leaf(node: Node) -> dict:
        fields = {k: v for k, v in entry(node).items() if k not in ("inputs", "local", "full")}
        fields["kind"] = node.kind
        if node.kind == "data":
            fields |= {"column": node.column, "row": node.row}
        return fields

    return {
        "loss": to_text(loss.expr),
        "point": {p.name: p.value for p in graph.params},
        "row": graph.row,
        "rows": list(graph.rows),
        "output": graph.output.id,
        "mean": graph.mean,
        "nodes": [entry(n) for n in graph.operations],
        "leaves": [leaf(n) for n in graph.leaves],
        "params": {
            p.name: {"value": p.value, "grad": p.grad, "symbolic": p.symbolic} for p in graph.params
        },
    }


# -- the figure ----------------------------------------------------------------------------

_OP_LABELS = {"add": "+", "mul": "×", "sum": "Σ", "relu": "relu", "max": "max", "min": "min"}
_FUNCTION_LABELS = {"sigmoid": "σ", "softplus": "softplus", "abs": "|·|"}


def _op_label(node: Node) -> str:
    """What a node does, in a few characters: +, ×, σ, (·)², ×1/3, −."""
    if node.op == "pow":
        exponent = node.formula.args[1]
        if exponent == sympy.Rational(1, 2):
            return "√"
        if exponent.is_number:
            return f"$(\\cdot)^{{{sympy.latex(exponent)}}}$"
        return "pow"
    if node.op == "mul" and len(node.inputs) == 1:
        coefficient = node.locals[0].derivative
        return "−" if coefficient == -1 else f"$\\times{sympy.latex(coefficient)}$"
    return _OP_LABELS.get(node.op) or _FUNCTION_LABELS.get(node.op) or node.op


def layers(graph: Graph) -> dict[str, int]:
    """Columns, left to right: an operation one column after its latest input; then, from the
    right, every leaf and every node computed from data alone moves up to just before its first
    consumer, so that arrows from parameters and data stay short."""
    layer: dict[str, int] = {}
    for node in graph.nodes:
        layer[node.id] = 1 + max((layer[i] for i in node.inputs), default=-1)
    for node in reversed(graph.nodes):
        movable = node.kind != "operation" or not node.requires_grad
        if movable and node.consumers:
            layer[node.id] = min(layer[c] for c in node.consumers) - 1
    return layer


@dataclass(frozen=True)
class Layout:
    """Where each node sits (column, height) and the bends of each arrow, in drawing units."""

    position: Mapping[str, tuple[float, float]]
    bends: Mapping[tuple[str, str], tuple[tuple[float, float], ...]]  # (node, consumer)
    columns: int
    rows: int


def layout(graph: Graph, sweeps: int = 6) -> Layout:
    """A layered drawing (Sugiyama's): an arrow longer than one column bends through one free
    place in each column it crosses; within a column, places are ordered by the mean height of
    their neighbours, sweeping right then left, so a batch's rows fall into bands; then each
    place is set level with its inputs (a leaf with its consumers), one apart at least."""
    layer = layers(graph)
    columns: dict[int, list] = {k: [] for k in range(max(layer.values()) + 1)}
    links: dict = {}  # place → places it connects to in the previous and the next column
    for node in graph.nodes:
        columns[layer[node.id]].append(node.id)
        links.setdefault(node.id, ([], []))
    for node in graph.nodes:
        for consumer in node.consumers:
            chain = [node.id]
            chain += [(node.id, consumer, k) for k in range(layer[node.id] + 1, layer[consumer])]
            chain.append(consumer)
            for bend in chain[1:-1]:
                columns[bend[2]].append(bend)
                links.setdefault(bend, ([], []))
            for left, right in itertools.pairwise(chain):
                links[left][1].append(right)
                links[right][0].append(left)
    height = max(len(places) for places in columns.values())

    def heights() -> dict:
        return {
            place: (height - len(places)) / 2 + k
            for places in columns.values()
            for k, place in enumerate(places)
        }

    y = heights()
    for sweep in range(sweeps):
        rightwards = sweep % 2 == 0
        for index in sorted(columns, reverse=not rightwards):
            side = 0 if rightwards else 1

            def mean(place, side=side, y=y) -> float:
                linked = links[place][side] or links[place][1 - side]
                return float(np.mean([y[p] for p in linked])) if linked else y[place]

            columns[index].sort(key=mean)
            y = heights()
    kinds = {node.id: node.kind for node in graph.nodes}
    for _ in range(sweeps):  # then heights: a place level with its inputs (a leaf: with its
        for index in sorted(columns):  # consumers), places of a column at least one apart
            places = columns[index]
            wanted = [
                float(np.mean([y[p] for p in links[place][0] or links[place][1]]))
                if links[place][0] or links[place][1]
                else y[place]
                for place in places
            ]
            weights = [_WEIGHTS[kinds.get(place, "bend")] for place in places]
            y |= dict(zip(places, _spaced(wanted, weights), strict=True))
    low = min(y.values())
    y = {place: value - low for place, value in y.items()}
    top = max(y.values())
    height = int(np.ceil(top)) + 1
    position = {
        place: (float(layer[place]), top - y[place]) for place in y if isinstance(place, str)
    }
    bends = {
        (node.id, consumer): tuple(
            (float(k), top - y[(node.id, consumer, k)])
            for k in range(layer[node.id] + 1, layer[consumer])
        )
        for node in graph.nodes
        for consumer in node.consumers
    }
    return Layout(position, bends, len(columns), height)


# How firmly a place keeps its wanted height when places of a column push apart: an operation
# stays level with its inputs, a leaf or an arrow's bend gives way.
_WEIGHTS = {"operation": 1.0, "bend": 0.3, "param": 0.1, "data": 0.1}


def _spaced(wanted: list[float], weights: list[float]) -> list[float]:
    """Heights as close as can be (weighted least squares) to the wanted ones, in the same
    order and at least 1 apart: with yₖ = uₖ + k, the uₖ are a weighted isotonic regression
    (pool adjacent violators) of wantedₖ − k."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for k, (value, weight) in enumerate(zip(wanted, weights, strict=True)):
        blocks.append([value - k, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1, c1), (m2, w2, c2) = blocks.pop(-2), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    shifted = [mean for mean, _, count in blocks for _ in range(count)]
    return [u + k for k, u in enumerate(shifted)]


COLUMN, ROW = 1.15, 0.8  # inches between columns, between places of a column
HALF_WIDTH, HALF_HEIGHT = 0.21, 0.3  # a node's box, in columns and rows


def graph_figure(graph: Graph, words: Mapping[str, str]) -> Figure:
    """The graph, layered left to right: values above each arrow, gradients below."""
    drawn = layout(graph)
    width = COLUMN * (drawn.columns + 0.9)
    height = ROW * drawn.rows + 0.55
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1 - 0.45 / height))
    ax.set_xlim(-0.45, drawn.columns - 1 + 1.2)
    ax.set_ylim(-0.5, drawn.rows - 0.5)
    ax.axis("off")
    blue, orange, grey = figures.OKABE_ITO[0], figures.OKABE_ITO[1], "0.45"
    for node in graph.nodes:
        x, y = drawn.position[node.id]
        name = f"${node_name(node, graph, LATEX)}$"
        face, edge = {
            "param": ("#e3eef8", blue),
            "data": ("#eeeeee", grey),
            "operation": ("white", "0.2"),
        }[node.kind]
        label = f"{name}\n{_op_label(node)}" if node.kind == "operation" else name
        ax.add_patch(
            FancyBboxPatch(
                (x - HALF_WIDTH, y - HALF_HEIGHT),
                2 * HALF_WIDTH,
                2 * HALF_HEIGHT,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=face,
                edgecolor=edge,
                linewidth=1.2,
                zorder=3,
            )
        )
        ax.text(x, y, label, ha="center", va="center", fontsize=10, zorder=4, linespacing=1.2)
    arrows = []  # (points, value, gradient): every arrow first, so labels can avoid them all
    for node in graph.nodes:
        x, y = drawn.position[node.id]
        for share in node.shares:
            target = drawn.position[share.consumer]
            points = [
                (x + HALF_WIDTH, y),
                *drawn.bends[(node.id, share.consumer)],
                (target[0] - HALF_WIDTH, target[1]),
            ]
            gradient = _short(share.product) if node.requires_grad else None
            arrows.append((points, _short(node.value), gradient))
    x, y = drawn.position[graph.output.id]
    arrows.append(([(x + HALF_WIDTH, y), (x + 0.8, y)], _short(graph.output.value), "1"))
    ax.text(x + 0.84, y, "$L$", ha="left", va="center", fontsize=11)
    labels = _Labels(ax, [drawn.position[n.id] for n in graph.nodes], [a[0] for a in arrows])
    for k, (points, value, gradient) in enumerate(arrows):
        _arrow(ax, points)
        labels.place(k, value, gradient, blue, orange)
    box = {"marker": "s", "ms": 8, "ls": ""}
    handles = [
        Line2D([], [], color=blue, lw=2, label=words["value"]),
        Line2D([], [], color=orange, lw=2, label=words["gradient"]),
        Line2D([], [], color=blue, mfc="#e3eef8", label=words["parameter"], **box),
        Line2D([], [], color=grey, mfc="#eeeeee", label=words["data"], **box),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        ncol=4,
        frameon=False,
        fontsize=8.5,
        bbox_to_anchor=(0.5, 1.0),
        handlelength=1.6,
        columnspacing=1.4,
    )
    return fig


def _short(value: float) -> str:
    """A number on an arrow: three significant digits, a true minus sign, 4.24×10⁻⁵."""
    return number_text(value, 3)


def _arrow(ax, points) -> None:
    """An arrow through its bends."""
    *line, end = points
    for a, b in itertools.pairwise(line):
        ax.plot(*zip(a, b, strict=True), color="0.4", lw=1.0, zorder=2, solid_capstyle="butt")
    ax.add_patch(
        FancyArrowPatch(
            line[-1],
            end,
            arrowstyle="-|>",
            mutation_scale=10,
            color="0.4",
            lw=1.0,
            zorder=2,
            shrinkA=0,
            shrinkB=0,
        )
    )


class _Labels:
    """Puts each arrow's pair of numbers where it overlaps nothing: no node, no other pair, no
    other arrow; the middle of the arrow if free, else the freest place along it (arrows fan
    out of a shared node and meet at a consumer). A pair is a strip along its arrow, `BAND`
    pixels each side of it; its digits carry a white halo where an arrow still crosses them."""

    PLACES = (0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.18, 0.82)
    BAND = 13.0  # pixels: one line of 8.5-point digits, above or below the arrow
    CHARACTER = 3.9  # pixels: half the width of a digit at 8.5 points (7.5 px at 100 dpi)

    def __init__(self, ax, nodes, arrows) -> None:
        self.ax = ax
        corners = ax.transData.transform([(HALF_WIDTH, HALF_HEIGHT), (0, 0)])
        self.half = np.abs(corners[0] - corners[1])
        self.boxes = ax.transData.transform(nodes)
        self.arrows = [ax.transData.transform(points) for points in arrows]
        self.lines = [self._samples(pixels) for pixels in self.arrows]
        self.strips: list[np.ndarray] = []  # sample points along each placed pair

    @staticmethod
    def _samples(pixels: np.ndarray, step: float = 6.0) -> np.ndarray:
        points = [pixels[0]]
        for a, b in itertools.pairwise(pixels):
            count = max(int(np.hypot(*(b - a)) / step), 1)
            points += [a + (b - a) * k / count for k in range(1, count + 1)]
        return np.array(points)

    def place(self, index: int, value: str, gradient: str | None, blue: str, orange: str) -> None:
        pixels = self.arrows[index]
        lengths = np.hypot(*np.diff(pixels, axis=0).T)
        half_length = self.CHARACTER * max(len(value), len(gradient or "")) + 2
        others = [line for k, line in enumerate(self.lines) if k != index]
        crossing = np.concatenate(others) if others else np.empty((0, 2))

        def at(fraction: float) -> tuple[np.ndarray, np.ndarray]:
            along, k = fraction * float(lengths.sum()), 0
            while k < len(lengths) - 1 and along > lengths[k]:
                along -= lengths[k]
                k += 1
            direction = (pixels[k + 1] - pixels[k]) / lengths[k]
            return pixels[k] + direction * along, direction

        def strip(fraction: float) -> np.ndarray:
            centre, direction = at(fraction)
            return centre + np.linspace(-half_length, half_length, 7)[:, None] * direction

        def gap(samples: np.ndarray, obstacles: np.ndarray) -> float:
            if not len(obstacles):
                return np.inf
            return float(
                np.hypot(*(samples[:, None, :] - obstacles[None]).transpose(2, 0, 1)).min()
            )

        def room(fraction: float) -> float:
            samples = strip(fraction)
            outside = np.maximum(np.abs(samples[:, None, :] - self.boxes[None]) - self.half, 0)
            nearest = float(np.hypot(*outside.transpose(2, 0, 1)).min()) / self.BAND
            for placed in self.strips:
                nearest = min(nearest, gap(samples, placed) / (2 * self.BAND))
            return min(nearest, 2 * gap(samples, crossing) / self.BAND)  # an arrow: half as bad

        free = [f for f in self.PLACES if room(f) >= 1]
        fraction = free[0] if free else max(self.PLACES, key=room)
        self.strips.append(strip(fraction))
        centre, direction = at(fraction)
        angle = float(np.degrees(np.arctan2(direction[1], direction[0])))
        where = self.ax.transData.inverted().transform(centre)
        common = {
            "ha": "center",
            "rotation": angle,
            "rotation_mode": "anchor",
            "fontsize": 8.5,
            "textcoords": "offset points",
            "zorder": 5,
            "path_effects": [patheffects.withStroke(linewidth=2.5, foreground="white")],
        }
        self.ax.annotate(
            value, where, xytext=_normal(angle, 2.5), va="bottom", color=blue, **common
        )
        if gradient is not None:
            self.ax.annotate(
                gradient, where, xytext=_normal(angle, -2.5), va="top", color=orange, **common
            )


def _normal(angle: float, distance: float) -> tuple[float, float]:
    """An offset of `distance` points perpendicular to an arrow at `angle` degrees (up is +)."""
    radians = np.radians(angle)
    return (-distance * float(np.sin(radians)), distance * float(np.cos(radians)))


# -- PyTorch ------------------------------------------------------------------------------------

TORCH_FUNCTIONS = {
    "exp": "torch.exp",
    "log": "torch.log",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "tan": "torch.tan",
    "tanh": "torch.tanh",
    "sigmoid": "torch.sigmoid",
    "softplus": "softplus",  # defined in the code: log(1 + eᵘ) through logaddexp, no overflow
    "abs": "torch.abs",
    "relu": "torch.relu",
}
_SOFTPLUS = (
    "def softplus(u):\n    return torch.logaddexp(torch.zeros_like(u), u)  # log(1 + exp(u))\n"
)
_TAKEN = {"torch", "L", "derive", "softplus", "node", "nodes", "name", "grad"}


class _TorchCode(StrPrinter):
    """A node's formula as PyTorch code over its inputs' variables (exact floats)."""

    def _print_Float(self, expr) -> str:
        return repr(float(expr))

    def _print_Pow(self, expr, rational=False) -> str:
        """√u as torch.sqrt(u); any other power as base**exponent (SymPy would write 1/√u)."""
        if expr.exp == sympy.Rational(1, 2):
            return f"torch.sqrt({self._print(expr.base)})"
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=True)
        exponent = expr.exp
        if exponent.is_Rational and not exponent.is_Integer:
            return f"{base}**({exponent.p}/{exponent.q})"
        return f"{base}**{self.parenthesize(exponent, PRECEDENCE['Pow'], strict=True)}"


def _code_names(graph: Graph) -> dict[str, str]:
    """Python variables: the parameters' and columns' names (with _ where Python or this code
    already uses the name), the node ids, and x[k] for row k of a batch."""
    taken = set(_TAKEN) | {n.id for n in graph.operations}
    names: dict[str, str] = {}

    def free(name: str) -> str:
        while keyword.iskeyword(name) or hasattr(builtins, name) or name in taken:
            name += "_"
        taken.add(name)
        return name

    columns: dict[str, str] = {}
    for node in graph.leaves:
        if node.kind == "param":
            names[node.id] = free(node.id)
        else:
            column = columns.setdefault(node.column, free(node.column))
            names[node.id] = f"{column}[{node.row}]" if len(graph.rows) > 1 else column
    names |= {n.id: n.id for n in graph.operations}
    return names


def _node_code(node: Node, graph: Graph, names: Mapping[str, str]) -> str:
    """One line of the forward pass: Python arithmetic on tensors for +, ×, powers and Σ;
    torch.maximum/minimum; a function by TORCH_FUNCTIONS or by its own name (torch.erf)."""
    inputs = [graph.node(i) for i in node.inputs]
    variables = [sympy.Symbol(names[n.id]) for n in inputs]
    formula = node.formula.xreplace(dict(zip([n.symbol for n in inputs], variables, strict=True)))
    if node.op in ("max", "min"):
        function = "torch.maximum" if node.op == "max" else "torch.minimum"
        parts = [
            str(a) if not a.is_number else f"torch.tensor({float(a)!r}, dtype=torch.float64)"
            for a in formula.args
        ]
        return f"{function}({', '.join(parts)})"
    if node.op in ("add", "mul", "pow", "sum"):
        numbers = formula.replace(
            lambda e: e.is_number and not e.is_Rational, lambda e: sympy.Float(float(e))
        )
        return _TorchCode().doprint(numbers)
    return f"{TORCH_FUNCTIONS.get(node.op, f'torch.{node.op}')}({variables[0]})"


def torch_code(graph: Graph, language: str) -> str:
    """Code that builds the graph with torch tensors, calls backward() and prints .grad beside
    derive's gradient for every parameter and every node a parameter is behind."""
    words = messages(language)["backprop"]["code"]
    names = _code_names(graph)
    lines = ["import torch", ""]
    if any(n.op == "softplus" for n in graph.operations):
        lines += [_SOFTPLUS]
    lines.append(f"# {words['params']}")
    for node in graph.leaves:
        if node.kind == "param":
            lines.append(
                f"{names[node.id]} = torch.tensor({node.value!r}, dtype=torch.float64, "
                "requires_grad=True)"
            )
    data = [n for n in graph.leaves if n.kind == "data"]
    if data:
        rows = ", ".join(map(str, graph.rows))
        lines += ["", f"# {words['data' if len(graph.rows) > 1 else 'data_row'].format(rows=rows)}"]
        columns = dict.fromkeys(n.column for n in data)
        for column in columns:
            cells = [n for n in data if n.column == column]
            variable = names[cells[0].id].split("[")[0]
            if len(graph.rows) > 1:
                lines.append(f"{variable} = {{  # row: value")
                lines += [
                    f"    {n.row}: torch.tensor({n.value!r}, dtype=torch.float64)," for n in cells
                ]
                lines.append("}")
            else:
                lines.append(f"{variable} = torch.tensor({cells[0].value!r}, dtype=torch.float64)")
    lines += ["", f"# {words['forward']}"]
    lines += [f"{n.id} = {_node_code(n, graph, names)}" for n in graph.operations]
    lines.append(f"L = {graph.output.id}")
    kept = [n.id for n in graph.operations if n.requires_grad]
    lines += ["", f"# {words['backward']}"]
    lines.append("for node in (")
    lines += textwrap.wrap(
        ", ".join(kept) + ",", 72, initial_indent="    ", subsequent_indent="    "
    )
    lines.append("):")
    lines.append("    node.retain_grad()")
    lines.append("L.backward()")
    lines += ["", f"# {words['compare']}"]
    lines.append("nodes = [")
    lines += [f"    ({n.id!r}, {names[n.id]}, {n.grad!r})," for n in graph.nodes if n.requires_grad]
    lines.append("]")
    columns = "{" + repr(words["node"]) + ":<8}{'derive':>24}{'PyTorch':>24}"
    lines.append(f'print(f"{columns}")')
    lines.append("for name, node, derive in nodes:")
    lines.append(f"    # {words['unused']}")
    lines.append("    grad = 0.0 if node.grad is None else node.grad.item()")
    lines.append('    print(f"{name:<8}{derive:>24.17g}{grad:>24.17g}")')
    return "\n".join(lines) + "\n"


def torch_cells(graph: Graph, language: str) -> list[tuple[str, str]]:
    """A notebook's cells, in notebook.py's (kind, text) form: what the code does, and the code."""
    words = messages(language)["backprop"]
    return [
        ("markdown", f"## {words['torch_heading']}\n\n{words['torch_intro']}"),
        ("code", torch_code(graph, language).rstrip("\n")),
    ]


# -- the lesson ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    """Rows of the backward table with blanks, and the same rows filled in, as the answer."""

    number: int
    statement: str
    rows: tuple[tuple[str, ...], ...]
    answer: str
    answer_rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class BackpropView:
    """What the lesson's template sees: every sentence chosen and every number formatted."""

    language: str
    title: str
    front_matter: str  # YAML: title, description, keywords (a page of its own only)
    words: Mapping[str, str]  # headings and column names
    loss_latex: str
    point: str
    batch_header: tuple[str, ...]
    batch_rows: tuple[tuple[str, ...], ...]
    figure: str
    graph_rows: tuple[tuple[str, ...], ...]
    shared: tuple[str, ...]
    forward_rows: tuple[tuple[str, ...], ...]
    forward_end: str
    mean_note: str | None
    backward_header: tuple[str, ...]
    backward_rows: tuple[tuple[str, ...], ...]
    no_gradient: str | None
    rules: tuple[str, ...]  # each rule used: its name and what it says
    check_rows: tuple[tuple[str, ...], ...]
    formulas: tuple[str, ...]  # LaTeX: each symbolic partial, as derive diff derives it
    check_note: str | None
    torch_code: str
    exercise_point: str | None
    exercise_values: str | None
    exercises: tuple[Exercise, ...]
    embedded: bool = False  # a section of a gradient-descent lesson: no title, no exercises
    level: str = "##"  # the Markdown heading of its parts


def _math(text: str) -> str:
    return f"${text}$"


def _math_list(assignments: str, words: Mapping[str, str]) -> str:
    """w = 0.5, b = 0 as $w = 0.5$, $b = 0$: a long point wraps between its parameters."""
    return words["separator"].join(_math(part) for part in assignments.split(", "))


def backprop_view(graph: Graph, exercise: Graph | None, language: str, figure: str) -> BackpropView:
    catalog = messages(language)
    words = catalog["backprop"]
    t = LATEX
    loss = graph.derivation.loss
    names = [t.expr(s) for s in loss.symbols]
    point = _math_list(point_text(graph, t), words)
    if graph.row is not None:
        point_sentence = words["point_row"].format(
            point=point, row=graph.row, values=_math_list(row_values(graph, t), words)
        )
    elif len(graph.rows) > 1:
        point_sentence = words["point_batch"].format(
            point=point, count=len(graph.rows), rows=", ".join(map(str, graph.rows))
        )
    else:
        point_sentence = words["point"].format(point=point)
    data = [leaf for leaf in graph.leaves if leaf.kind == "data"]
    batch_header, batch_rows = (), ()
    if len(graph.rows) > 1:
        batch_header = (words["row"], *(_math(t.expr(sympy.Symbol(c))) for c in loss.data))
        batch_rows = tuple(
            (str(row), *(_math(t.number(n.value)) for n in data if n.row == row))
            for row in graph.rows
        )
    operations = graph.operations
    graph_rows = tuple(
        (
            _math(node_name(n, graph, t)),
            op_words(n.op, catalog),
            _math(written(n, graph, t)),
            _math(", ".join(node_name(graph.node(c), graph, t) for c in n.consumers))
            if n.consumers
            else words["none"],
        )
        for n in operations
    )
    shared = tuple(
        words["shared"].format(
            node=node_name(n, graph, t),
            count=len(n.consumers),
            consumers=", ".join(node_name(graph.node(c), graph, t) for c in n.consumers),
        )
        for n in graph.nodes
        if len(n.consumers) > 1 and n.requires_grad
    )
    forward_rows = tuple(
        (
            _math(node_name(n, graph, t)),
            _math(f"{node_name(n, graph, t)} = {definition(n, graph, t)}"),
            _math(arithmetic(n, graph, t)),
            _math(t.number(n.value)),
        )
        for n in operations
    )
    mean_note = None
    if graph.mean is not None:
        mean = graph.node(graph.mean)
        mean_note = words["mean_note"].format(
            sum=node_name(graph.node(mean.inputs[0]), graph, t),
            mean=node_name(mean, graph, t),
            n=len(graph.rows),
        )
    needed = gradient_needed(graph)
    backward_rows = tuple(row for node in needed for row in _backward_rows(node, graph, catalog))
    rules = dict.fromkeys(
        local.rule
        for node in needed
        for consumer in node.consumers
        for local in graph.node(consumer).locals
        if local.input == node.id
    )
    no_gradient = [node_name(n, graph, t) for n in operations if not n.requires_grad]
    check_rows = tuple(
        (
            _math(name),
            _math(t.number(p.value)),
            _math(t.number(p.grad)),
            _math(t.number(p.symbolic)),
        )
        for name, p in zip(names, graph.params, strict=True)
    )
    formulas = tuple(
        rf"\frac{{\partial L}}{{\partial {name}}} = {to_latex(partial.textbook, loss.params)}"
        for name, partial in zip(names, graph.derivation.partials, strict=True)
    )
    check_note = None
    if graph.row is not None:
        check_note = words["check_row"]
    elif len(graph.rows) > 1:
        check_note = words["check_batch"].format(count=len(graph.rows))
    exercises = _exercises(exercise, catalog) if exercise is not None else ()
    loss_text = to_unicode(loss.expr, loss.params)
    title = words["title"].format(loss=f"L = {loss_text}")
    return BackpropView(
        language=language,
        title=title,
        front_matter=front_matter(
            title, words["description"].format(loss=loss_text), words["keywords"]
        ),
        words=words,
        loss_latex=f"L({', '.join(names)}) = {to_latex(loss.expr, loss.params)}",
        point=point_sentence,
        batch_header=batch_header,
        batch_rows=batch_rows,
        figure=figure,
        graph_rows=graph_rows,
        shared=shared,
        forward_rows=forward_rows,
        forward_end=words["forward_end"].format(
            output=node_name(graph.output, graph, t), value=t.number(graph.output.value)
        ),
        mean_note=mean_note,
        backward_header=_backward_header(words),
        backward_rows=backward_rows,
        no_gradient=words[
            "no_gradient_one" if len(no_gradient) == 1 else "no_gradient_many"
        ].format(nodes=", ".join(no_gradient))
        if no_gradient
        else None,
        rules=tuple(_rule_line(rule, catalog) for rule in rules),
        check_rows=check_rows,
        formulas=formulas,
        check_note=check_note,
        torch_code=torch_code(graph, language),
        exercise_point=words["exercise_point"].format(
            point=_math_list(point_text(exercise, t), words)
        )
        if exercises
        else None,
        exercise_values=words["separator"].join(
            _math(f"{node_name(n, exercise, t)} = {t.number(n.value)}") for n in exercise.operations
        )
        if exercises
        else None,
        exercises=exercises,
    )


def _rule_line(rule: str, catalog: dict) -> str:
    name, fact = rule_words(rule, catalog)
    return catalog["backprop"]["rule_fact"].format(name=name, fact=fact) if fact else f"**{name}**"


def _backward_header(words) -> tuple[str, ...]:
    keys = ("node", "consumer", "upstream", "local", "rule", "product", "gradient")
    return tuple(words[k] for k in keys)


def _backward_rows(
    node: Node, graph: Graph, catalog: dict, blank: bool = False
) -> list[tuple[str, ...]]:
    """One row per consumer of the node: upstream × local = product; the last row adds them up.
    With `blank`, the local derivative, the products and the sum are left for the student."""
    t = LATEX
    words = catalog["backprop"]
    name = _math(node_name(node, graph, t))
    if node is graph.output:
        dash = words["none"]
        return [(name, words["start"], dash, dash, dash, dash, "$1$")]
    rows = []
    for k, share in enumerate(node.shares):
        consumer = graph.node(share.consumer)
        local = next(x for x in consumer.locals if x.input == node.id)
        value = t.number(share.local)
        formula = _over_inputs(local.derivative, consumer, graph, t, values=False)
        shown = value if local.derivative.is_number else f"{formula} = {value}"
        last = k == len(node.shares) - 1
        if len(node.shares) > 1:
            total = " + ".join(_signed(s.product, t) for s in node.shares)
            total += f" = {t.number(node.grad)}"
        else:
            total = t.number(node.grad)
        blank_cell = words["blank"]
        rows.append(
            (
                name if k == 0 else "",
                _math(node_name(consumer, graph, t)),
                _math(t.number(share.upstream)),
                blank_cell if blank else _math(shown),
                rule_words(local.rule, catalog)[0],
                blank_cell if blank else _math(t.number(share.product)),
                (blank_cell if blank else _math(total)) if last else "",
            )
        )
    return rows


def _exercises(graph: Graph, catalog: dict) -> tuple[Exercise, ...]:
    """Fill in a blank node of the backward table (a shared one, or one whose consumer has an
    interesting local derivative), then a parameter's rows: at another point, so that the
    lesson above does not give the answers away, and with a node the parameter does not feed,
    so that the second exercise does not give the first one's answer away."""
    words = catalog["backprop"]
    t = LATEX
    params = [n for n in graph.leaves if n.kind == "param" and n.consumers]
    param = max(params, key=lambda n: len(n.consumers))
    candidates = [
        n
        for n in graph.operations
        if n.requires_grad and n is not graph.output and n.id not in param.consumers
    ]
    blanks = []
    if candidates:
        middle = (len(candidates) - 1) / 2

        def interest(indexed):
            k, node = indexed
            plain = all(graph.node(c).op in ("add", "sum") for c in node.consumers)
            return (len(node.consumers) > 1, not plain, -abs(k - middle))

        blanks.append(max(enumerate(candidates), key=interest)[1])
    blanks.append(param)
    out = []
    for k, node in enumerate(blanks, start=1):
        name = node_name(node, graph, t)
        if node is param:
            gradient = next(p for p in graph.params if p.name == param.id)
            statement = words["exercise_param"].format(param=name)
            answer = words["answer_param"].format(
                number=k,
                param=name,
                value=t.number(gradient.grad),
                symbolic=t.number(gradient.symbolic),
            )
        else:
            statement = words["exercise_node"].format(node=name)
            answer = words["answer_node"].format(number=k, node=name)
        out.append(
            Exercise(
                number=k,
                statement=statement,
                rows=tuple(_backward_rows(node, graph, catalog, blank=True)),
                answer=answer,
                answer_rows=tuple(_backward_rows(node, graph, catalog)),
            )
        )
    return tuple(out)


def render_markdown(view: BackpropView) -> str:
    return template("backprop.md.j2").render(view=view)


# -- the files ----------------------------------------------------------------------------------

FIGURE = "backprop"  # figures/<lang>/backprop.png: beside a lesson's figures, no name taken twice


def write_backprop(
    graph: Graph,
    exercise: Graph | None,
    folder: Path,
    languages: tuple[str, ...],
    formats: tuple[str, ...] = ("png",),
    notebook: bool = False,
    name: str = "backprop",
    position: int | None = None,
) -> None:
    """<name>.<lang>.md and .html, with the graph figure (and the notebook
    `<name>-notebook.<lang>.ipynb`, named apart from the page), written into `folder`.
    `position` is the lesson's place in a course (Docusaurus's sidebar_position)."""
    for language in languages:
        relative = Path("figures") / language
        with figures.styled(language):
            made = {FIGURE: graph_figure(graph, messages(language)["backprop"]["figure"])}
        figures.render(made, folder / relative, formats, language)
        figure = (relative / f"{FIGURE}.png").as_posix()
        view = backprop_view(graph, exercise, language, figure)
        markdown = portable(render_markdown(view), position)
        (folder / f"{name}.{language}.md").write_text(markdown, encoding="utf-8")
        html = markdown_to_html(markdown, language, view.title, {figure: folder / figure})
        (folder / f"{name}.{language}.html").write_text(html, encoding="utf-8")
        if notebook:
            import nbformat  # 0.1 s of imports (jsonschema): only when a notebook is written

            path = folder / notebook_name(name, language)
            nbformat.write(backprop_notebook(graph, language), str(path))


def backprop_notebook(graph: Graph, language: str) -> nbformat.NotebookNode:
    """A notebook of the PyTorch cells under the lesson's title: a page of its own in a book,
    whose readers (Jupyter Book, MyST) want a document to open with its H1."""
    import nbformat

    book = nbformat.v4.new_notebook()
    book.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    loss = graph.derivation.loss
    title = messages(language)["backprop"]["title"].format(
        loss=f"$L = {to_latex(loss.expr, loss.params)}$"
    )
    cells = [("markdown", f"# {title}"), *torch_cells(graph, language)]
    for index, (kind, text) in enumerate(cells):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        book.cells.append(make(text, id=f"backprop-{index}"))  # fixed ids: identical rebuilds
    return book
