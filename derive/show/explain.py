"""How a derivation is shown: its rule tree as lines (LaTeX or Unicode text) or as JSON.

The tree is built once, by `derivation.derivative_steps`; this module only prints it. The
words (rule names, in Chinese or English) come from the message catalogs in templates/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy

from derive.core.derivation import Derivation, Partial, Step
from derive.core.landscape import Kind, Landscape, Minimum, StationaryPoint
from derive.core.symbols import data_column, to_text
from derive.core.vector import VectorForm, vector_form
from derive.show.catalog import messages, template
from derive.show.printing import number, number_text, to_latex, to_unicode

HIDDEN_RULES = {"constant", "identity"}  # leaves too trivial to print as a step of their own


@dataclass(frozen=True)
class Notation:
    """How one output format writes the pieces of a step."""

    expr: Callable[[sympy.Expr, tuple[str, ...]], str]
    ordinary: Callable[[str], str]  # d/dw
    partial: Callable[[str], str]  # ∂/∂w
    of: Callable[[str], str]  # the bracket around what is differentiated
    group: Callable[[str], str]  # parentheses
    times: str
    so: str  # "therefore", between a fact and what follows from it


LATEX = Notation(
    expr=to_latex,
    ordinary=lambda v: rf"\frac{{d}}{{d{v}}}",
    partial=lambda v: rf"\frac{{\partial}}{{\partial {v}}}",
    of=lambda text: rf"\left[{text}\right]",
    group=lambda text: rf"\left({text}\right)",
    times=r" \cdot ",
    so=r" \;\Rightarrow\; ",
)
UNICODE = Notation(
    expr=to_unicode,
    ordinary=lambda v: f"d/d{v}",
    partial=lambda v: f"∂/∂{v}",
    of=lambda text: f"[{text}]",
    group=lambda text: f"({text})",
    times=" · ",
    so=" ⇒ ",
)


@dataclass(frozen=True)
class Line:
    """One printed step: `rule` names a catalog entry; `inner` is the chain rule's u = …."""

    depth: int
    rule: str
    equation: str
    inner: str | None = None


def operator(symbol: str, single: bool, notation: Notation, name: str = "L") -> str:
    """dL/dw for one parameter, ∂L/∂w for several, in the notation's form."""
    if notation is LATEX:
        d = "d" if single else r"\partial "
        return rf"\frac{{{d}{name}}}{{{d}{symbol}}}"
    return f"d{name}/d{symbol}" if single else f"∂{name}/∂{symbol}"


def partial_lines(partial: Partial, derivation: Derivation, notation: Notation) -> tuple[Line, ...]:
    """The steps of one partial derivative, outer rule first, ending in the textbook form."""
    loss = derivation.loss
    params = loss.params
    single = len(params) == 1
    lines = _lines(partial.steps, single, params, notation, 0)
    if partial.simplification:
        name = notation.expr(sympy.Symbol(partial.param), params)
        equation = f"{operator(name, single, notation)} = {notation.expr(partial.textbook, params)}"
        if partial.simplification == "one_hot":
            equation = f"{_one_hot_identity(loss, notation)}{notation.so}{equation}"
        lines.append(Line(0, partial.simplification, equation))
    return tuple(lines)


def _one_hot_identity(loss, notation: Notation) -> str:
    """y₁ᵢ + y₂ᵢ + y₃ᵢ = 1: the fact about the data the simplification used."""
    return ", ".join(
        f"{notation.expr(sympy.Add(*(data_column(n) for n in group)), ())} = 1"
        for group in loss.one_hot
    )


def _d(variable: sympy.Symbol, ordinary: bool, notation: Notation) -> str:
    name = notation.expr(variable, ())
    return notation.ordinary(name) if ordinary else notation.partial(name)


def _lines(step: Step, single: bool, params, notation: Notation, depth: int) -> list[Line]:
    if step.rule in HIDDEN_RULES and depth > 0:
        return []
    ordinary = single or step.variable.name not in params  # d/du for an inner function u
    before = (
        f"{_d(step.variable, ordinary, notation)} {notation.of(notation.expr(step.expr, params))}"
    )
    result = notation.expr(step.result, params)
    if step.rule == "chain_several":
        return _several_lines(step, before, result, single, params, notation, depth)
    if step.rule == "chain":
        outer, rest = step.substeps
        u = notation.expr(step.inner_symbol, ())
        kept = outer.result.xreplace({step.inner_symbol: sympy.UnevaluatedExpr(step.inner)})
        product = (
            _grouped(kept, params, notation)
            + notation.times
            + _grouped(rest.result, params, notation)
        )
        outer_d = f"{notation.ordinary(u)} {notation.of(notation.expr(outer.expr, ()))}"
        inner_d = f"{_d(step.variable, single, notation)} {u}"
        equation = f"{before} = {outer_d}{notation.times}{inner_d} = {product} = {result}"
        inner = f"{u} = {notation.expr(step.inner, params)}"
        lines = [Line(depth, "chain", equation, inner)]
        lines += _lines(outer, True, params, notation, depth + 1)
        lines += _lines(rest, single, params, notation, depth + 1)
        return lines
    lines = [Line(depth, step.rule, f"{before} = {result}")]
    for sub in step.substeps:
        lines += _lines(sub, single, params, notation, depth + 1)
    return lines


def _several_lines(step, before, result, single, params, notation, depth) -> list[Line]:
    """d f(u, v)/dx = ∂f/∂u · du/dx + ∂f/∂v · dv/dx = … = result, then each factor's steps."""
    pairs = list(zip(step.substeps[::2], step.substeps[1::2], strict=True))
    shown = []
    for (inner, u), (outer, rest) in zip(step.inners, pairs, strict=True):
        kept = outer.result.xreplace({u: sympy.UnevaluatedExpr(inner)})
        shown.append(
            _grouped(kept, params, notation)
            + notation.times
            + _grouped(rest.result, params, notation)
        )
    names = [notation.expr(u, ()) for _, u in step.inners]
    d = _d(step.variable, single, notation)
    terms = " + ".join(
        f"{_partial_of_f(name, notation)}{notation.times}{d} {name}" for name in names
    )
    equation = f"{before} = {terms} = {' + '.join(shown)} = {result}"
    inner = ", ".join(
        f"{notation.expr(u, ())} = {notation.expr(e, params)}" for e, u in step.inners
    )
    lines = [Line(depth, "chain_several", equation, inner)]
    for outer, rest in pairs:
        lines += _lines(outer, False, params, notation, depth + 1)
        lines += _lines(rest, single, params, notation, depth + 1)
    return lines


def _partial_of_f(name: str, notation: Notation) -> str:
    if notation is LATEX:
        return rf"\frac{{\partial f}}{{\partial {name}}}"
    return f"∂f/∂{name}"


def _grouped(expr: sympy.Expr, params, notation: Notation) -> str:
    text = notation.expr(expr, params)
    return notation.group(text) if expr.is_Add else text


def step_json(step: Step, params: tuple[str, ...]) -> dict:
    """The rule tree as plain data: every node with its rule, before, after, and substeps."""
    return {
        "rule": step.rule,
        "variable": str(step.variable),
        "inners": [
            {"inner": to_unicode(e, params), "inner_symbol": str(u)} for e, u in step.inners
        ],
        "expr": to_unicode(step.expr, params),
        "result": to_unicode(step.result, params),
        "expr_latex": to_latex(step.expr, params),
        "result_latex": to_latex(step.result, params),
        "inner": None if step.inner is None else to_unicode(step.inner, params),
        "inner_symbol": None if step.inner_symbol is None else str(step.inner_symbol),
        "substeps": [step_json(sub, params) for sub in step.substeps],
    }


# -- `derive diff` ---------------------------------------------------------------------------


def render_diff(
    derivation: Derivation,
    shape: Landscape | None,
    language: str,
    form: str,
    wrt: tuple[str, ...] | None = None,
) -> str:
    """Every partial (or those in `wrt`) with its steps, as text, LaTeX or JSON; and, for a
    loss without data, its stationary points and what is proven about its minimum."""
    loss = derivation.loss
    partials = [p for p in derivation.partials if wrt is None or p.param in wrt]
    points = None if shape is None else shape.points
    if form == "json":
        document = _diff_json(derivation, partials, points)
        if shape is not None:
            document["minimum"] = _minimum_json(shape)
        return json.dumps(document, ensure_ascii=False, indent=2)
    notation = LATEX if form == "latex" else UNICODE
    catalog = messages(language)
    single = len(loss.params) == 1
    views = [
        {
            "operator": operator(notation.expr(sympy.Symbol(p.param), ()), single, notation),
            "result": notation.expr(p.textbook, loss.params),
            "lines": [
                _worded(line, catalog, form) for line in partial_lines(p, derivation, notation)
            ],
        }
        for p in partials
    ]
    stationary = (
        None
        if points is None
        else [
            {
                "where": _where(loss.symbols, p, notation),
                "kind": catalog["diff"][_kind_key(p, points)],
                "loss": (number_text if notation is UNICODE else number)(_chopped(p.loss, points)),
            }
            for p in points
        ]
    )
    words = catalog["diff"]
    view = {
        "loss": notation.expr(loss.formula, loss.params),
        "loss_text": to_unicode(loss.formula, loss.params),
        "constants": [
            f"{notation.expr(sympy.Symbol(name), ())} = "
            + (words["no_value"] if value is None else notation.expr(value, ()))
            for name, value in loss.constants
        ],
        "notes": [words[f"flagged_{reason}"].format(name=name) for name, reason in loss.flagged],
        "partials": views,
        "vector": _vector_view(vector_form(derivation), notation),
        "conventions": [
            catalog["conventions"][convention]
            for convention in dict.fromkeys(kink.convention for kink in derivation.kinks)
        ],
        "stationary": stationary,
        # "none" only when the search was complete; otherwise nothing is claimed
        "no_points": words["no_stationary"] if shape and shape.complete else words["not_found"],
        "verdict": None if shape is None else _verdict(shape, catalog["diff"], notation),
    }
    page = template("diff.tex.j2" if form == "latex" else "diff.txt.j2")
    return page.render(view=view, words=words).rstrip("\n")


def _vector_view(form: VectorForm | None, notation: Notation) -> dict | None:
    """L and ∇_θ L in matrix notation, with what X and θ hold."""
    if form is None:
        return None
    theta = notation.expr(form.parameters, ())
    one = r"\mathbf{1}" if notation is LATEX else "1"
    columns = [one if c is None else notation.expr(sympy.Symbol(c), ()) for c in form.features]
    weights = [notation.expr(sympy.Symbol(w), ()) for w in form.weights]
    if notation is LATEX:
        design = rf"X = \begin{{bmatrix}} {' & '.join(columns)} \end{{bmatrix}}"
        vector = rf"{theta} = \left({', '.join(weights)}\right)^{{T}}"
        gradient = rf"\nabla_{{{theta}}} L"
    else:
        design = f"X = [{' '.join(columns)}]"
        vector = f"{theta} = ({', '.join(weights)})ᵀ"
        gradient = f"∇_{theta} L"
    return {
        "design": design,
        "vector": vector,
        "loss": notation.expr(form.loss, ()),
        "gradient_operator": gradient,
        "gradient": notation.expr(form.gradient, ()),
    }


def _worded(line: Line, catalog: dict, form: str) -> dict:
    inner = f"${line.inner}$" if form == "latex" and line.inner else line.inner
    return {
        "depth": line.depth,
        "rule": catalog["rules"][line.rule].format(u=inner),
        "equation": line.equation,
    }


def _where(symbols, point: StationaryPoint, notation: Notation) -> str:
    """x = −1.44449, y = 0: exact values when SymPy found them, else the number."""
    exact = point.exact or (None,) * len(point.values)
    written = number_text if notation is UNICODE else number
    shown = [
        notation.expr(e, ()) if e is not None else written(v)
        for v, e in zip(point.values, exact, strict=True)
    ]
    return ", ".join(
        f"{notation.expr(s, ())} = {text}" for s, text in zip(symbols, shown, strict=True)
    )


def _kind_key(point: StationaryPoint, points) -> str:
    """global minimum when proven; local when another minimum is lower; else the kind."""
    if point.global_minimum:
        return "global_minimum"
    if point.kind is Kind.MINIMUM and any(
        p.kind is Kind.MINIMUM and p.loss < point.loss for p in points
    ):
        return "local_minimum"
    return point.kind.value


def _chopped(value: float, points) -> float:
    """A stationary value that is rounding error next to the others prints as 0."""
    scale = max([1.0, *(abs(p.loss) for p in points)])
    return 0.0 if abs(value) <= 1e-12 * scale else value


def _verdict(shape: Landscape, words: Mapping[str, str], notation: Notation) -> str | None:
    """What is proven about the minimum, in a line; None when nothing is."""
    written = number_text if notation is UNICODE else number
    if shape.minimum is Minimum.UNBOUNDED_BELOW:
        return words["unbounded"]
    if shape.minimum is Minimum.NOT_ATTAINED:
        return words["not_attained"].format(infimum=written(shape.infimum))
    if shape.minimum is Minimum.AT_EDGE:
        return words["at_edge"].format(infimum=written(shape.infimum))
    if not shape.complete and shape.search_bound is not None:
        return words["searched"].format(bound=written(shape.search_bound))
    return None


def _minimum_json(shape: Landscape) -> dict:
    infimum = shape.infimum
    return {
        "status": shape.minimum.value,
        "infimum": None if infimum is None or not math.isfinite(infimum) else infimum,
        "complete": shape.complete,
        "search_bound": shape.search_bound,
    }


def _diff_json(derivation, partials, points) -> dict:
    loss = derivation.loss
    form = vector_form(derivation)
    return {
        "loss": to_text(loss.formula),
        "params": list(loss.params),
        "data": list(loss.data),
        "partials": [
            {
                "param": p.param,
                "result": to_unicode(p.textbook, loss.params),
                "latex": to_latex(p.textbook, loss.params),
                "text": to_text(p.textbook),
                "simplification": p.simplification,
                "steps": step_json(p.steps, loss.params),
            }
            for p in partials
        ],
        "stationary_points": None
        if points is None
        else [
            {
                "params": dict(zip(loss.params, p.values, strict=True)),
                "kind": p.kind,
                "loss": p.loss,
                "exact": None if p.exact is None else [to_text(v) for v in p.exact],
                "global_minimum": p.global_minimum,
            }
            for p in points
        ],
        "constants": {
            name: None if value is None else to_text(value) for name, value in loss.constants
        },
        "flagged": [{"param": name, "reason": str(reason)} for name, reason in loss.flagged],
        "kinks": [
            {"function": to_text(kink.node), "convention": str(kink.convention)}
            for kink in derivation.kinks
        ],
        "vector_form": None
        if form is None
        else {
            "kind": str(form.kind),
            "features": list(form.features),
            "weights": list(form.weights),
            "target": form.target,
            "loss": to_unicode(form.loss),
            "gradient": to_unicode(form.gradient),
            "loss_latex": to_latex(form.loss),
            "gradient_latex": to_latex(form.gradient),
        },
    }
