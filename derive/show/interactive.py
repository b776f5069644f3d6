"""The interactive panel of a lesson page: what its script needs, from the lesson's own
derivation, data and runs.

The panel re-runs the descent in the browser, so its numbers must be derive's. The loss, its
gradient and its Hessian are printed as JavaScript by SymPy's JavaScript printer from the very
expressions `core/numeric.py` compiles for the descent, prepared the way `sympy.lambdify`
prepares them there (the same common subexpressions, the same argument dummies, so the same
order of terms and factors): the browser then does the same floating-point operations in the
same order. Python's and NumPy's numerics that JavaScript's differ from are written once in
`static/descent.js`: integer powers correctly rounded (as glibc's `pow` nearly always is, where
V8's `Math.pow` is not), NumPy's pairwise summation for Σ over rows, Python's `math` raising on
overflow where JavaScript gives ∞.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import sympy
from sympy.core.sorting import ordered
from sympy.printing.jscode import JavascriptCodePrinter
from sympy.printing.precedence import precedence

from derive.core.derivation import Derivation
from derive.core.descend import Trace
from derive.core.errors import DeriveError
from derive.core.experiments import Experiments
from derive.core.numeric import _as_array_expression, stable_logs
from derive.core.symbols import N_ROWS
from derive.show.catalog import messages
from derive.show.printing import unicode_name

STATIC = files("derive.show") / "static"
RATES_PER_DECADE = 24  # the η slider's positions: the E24 series, as for resistors
E24 = (1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 1.8, 2.0, 2.2, 2.4, 2.7, 3.0, 3.3, 3.6, 3.9, 4.3, 4.7, 5.1)
E24 += (5.6, 6.2, 6.8, 7.5, 8.2, 9.1)
MAX_STEPS = 1000  # the steps box stops here: the page stays quick on a phone
MAX_ROWS = 10_000  # rows of data the page embeds and sums at every step
SNAP_DIVISIONS = 100  # a dragged start snaps to a round step, about 1/100 of the plot


@dataclass(frozen=True)
class Panel:
    """What the panel template shows: its words, its data (JSON) and its scripts."""

    words: Mapping[str, str]
    data_json: str  # for <script type="application/json">: no "</" inside
    functions_js: str  # the loss, gradient and Hessian as JavaScript
    descent_js: str  # static/descent.js: the update rules and the facts stage
    panel_js: str  # static/panel.js: the sliders, the plots, the table
    symbols: tuple[str, ...]  # the parameters as the lesson prints them (θ₀)
    thresholds: bool  # markers at 1/λ and 2/λ on the η slider


def interactive_panel(
    derivation: Derivation,
    trace: Trace,
    experiments: Experiments,
    data: Mapping[str, np.ndarray],
    language: str,
) -> Panel:
    """The panel of one lesson page in one language."""
    loss = derivation.loss
    rows = len(next(iter(data.values()))) if loss.data else 0
    if rows > MAX_ROWS:
        raise DeriveError(
            f"--interactive re-runs the descent in the reader's browser, over at most "
            f"{MAX_ROWS} rows of data; this data has {rows}"
        )
    catalog = messages(language)
    words = dict(catalog["interactive"])
    lesson_words = catalog["lesson"]
    curvature = experiments.curvature
    exact = curvature is not None and curvature.exact
    learning_rate = float(trace.optimizer.options["lr"])
    thresholds = (1 / curvature.largest, 2 / curvature.largest) if exact else ()
    start = tuple(float(v) for v in trace.params[0])
    symbols = tuple(unicode_name(name) for name in loss.params)
    single = len(loss.params) == 1
    shape = experiments.landscape
    document = {
        "params": list(loss.params),
        "symbols": list(symbols),
        "columns": [[float(v) for v in data[name]] for name in loss.data],
        "start": list(start),
        "lr": learning_rate,
        "steps": min(int(trace.steps), MAX_STEPS),
        "maxSteps": MAX_STEPS,
        "scalar": not loss.data,
        "landscape": {
            "points": [
                {
                    "values": list(p.values),
                    "kind": p.kind.value,
                    "loss": p.loss,
                    "curvature": list(p.curvature),
                }
                for p in shape.points
            ],
            "minimum": shape.minimum.value,
            "quadratic": shape.quadratic,
        },
        "thresholds": list(thresholds),
        "rates": _rates(learning_rate, thresholds, curvature.largest if curvature else None),
        "view": _view(trace, experiments) if len(loss.params) <= 2 else None,
        "words": {
            **words,
            "gradient_header": words["gradient_one" if single else "gradient_many"],
            "low": words["low_one" if single else "low_many"],
            "high": words["high_one" if single else "high_many"],
        },
        "behaviour": dict(lesson_words["behaviour"]),
        "optimizers": {
            name: lesson_words["optimizer_names"][name]
            for name in ("sgd", "momentum", "nesterov", "adam")
        },
        "after": lesson_words["sections"]["rates"],
    }
    return Panel(
        words=words,
        data_json=_script_json(document),
        functions_js=functions_script(derivation),
        descent_js=(STATIC / "descent.js").read_text(encoding="utf-8"),
        panel_js=(STATIC / "panel.js").read_text(encoding="utf-8"),
        symbols=symbols,
        thresholds=bool(thresholds),
    )


def _script_json(document: dict) -> str:
    """JSON that can sit inside <script>: `<` escaped, so no text can close the element."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


# -- the η slider and the plot ------------------------------------------------------------------


def _rates(learning_rate: float, thresholds: Sequence[float], largest: float | None) -> list:
    """The η slider's positions: the E24 series over the decades around the lesson's rate and
    the thresholds, with the lesson's rate and the thresholds themselves as positions, so that
    the thumb can sit exactly on each."""
    centre = 1 / largest if largest else learning_rate
    low = min(centre / 1000, learning_rate / 10)
    high = max(centre * 10, learning_rate * 10)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    values = {float(f"{m:.1f}e{e}") for e in range(first, last) for m in E24} | {float(f"1e{last}")}
    values |= {learning_rate, *thresholds}
    return sorted(values)


def _view(trace: Trace, experiments: Experiments) -> dict:
    """The plot's box: the start, the lesson's path and the minima near it, with a margin;
    and the round step a dragged start snaps to along each axis."""
    start = trace.params[0]
    stationary = np.array([p.values for p in experiments.landscape.points]).reshape(-1, len(start))
    path = trace.params[np.all(np.isfinite(trace.params), axis=1)]
    # the scale of the problem: how far the nearest stationary point lies (at least 1); the
    # stationary points within 10 of it are shown (both wells of a quartic), and the path as far
    # as the farthest of them or 3 of it (a run heading off to infinity is cut there)
    apart = np.linalg.norm(stationary - start, axis=1)
    scale = max(1.0, float(apart.min())) if len(stationary) else 1.0
    shown = stationary[apart <= 10 * scale]
    reach = max(3 * scale, float(np.max(apart[apart <= 10 * scale], initial=0.0)))
    kept = np.vstack([start[None, :], shown, path[np.linalg.norm(path - start, axis=1) <= reach]])
    low, high = kept.min(axis=0), kept.max(axis=0)
    margin = np.maximum((high - low) * 0.2, 0.25 * scale)
    low, high = low - margin, high + margin
    snap = [_round_step((b - a) / SNAP_DIVISIONS) for a, b in zip(low, high, strict=True)]
    low = [math.floor(a / s) * s for a, s in zip(low, snap, strict=True)]
    high = [math.ceil(b / s) * s for b, s in zip(high, snap, strict=True)]
    return {
        "low": [_decimal(a, s) for a, s in zip(low, snap, strict=True)],
        "high": [_decimal(b, s) for b, s in zip(high, snap, strict=True)],
        "snap": snap,
    }


def _round_step(size: float) -> float:
    """1, 2 or 5 times a power of ten, at least `size`."""
    power = 10 ** math.floor(math.log10(size))
    return next(float(f"{m * power:.1g}") for m in (1, 2, 5, 10) if m * power >= size * 0.999)


def _decimal(value: float, step: float) -> float:
    """`value` as the decimal it stands for at the step's precision (0.30000000000000004 → 0.3)."""
    places = max(0, -math.floor(math.log10(step)))
    return float(f"{value:.{places}f}")


# -- the loss, its gradient and its Hessian as JavaScript ----------------------------------------


def functions_script(derivation: Derivation) -> str:
    """`window.deriveLessonFunctions = function (py, np) {...}`: the loss and gradient as
    `core/numeric.py` computes them on floats (`scalar`, plain descent without data) and on
    arrays (`array`), and the Hessian (`hessian`), as JavaScript functions of the parameters."""
    loss = derivation.loss
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    names = [f"p{k}" for k in range(len(loss.symbols))]
    names += [f"c{k}" for k in range(len(columns))] + (["n"] if loss.data else [])
    rows = frozenset(columns)
    matrix = sympy.hessian(loss.expr, loss.symbols).replace(sympy.DiracDelta, lambda *a: 0)
    entries = [_as_array_expression(e) for e in matrix]
    width = len(loss.symbols)
    functions = {
        "array": _function(
            [_as_array_expression(e) for e in (loss.expr, *derivation.gradient)],
            arguments,
            names,
            rows,
            _ARRAY,
            cse=True,
        ),
        "hessian": _function(entries, arguments, names, rows, _NUMPY, cse=False, width=width),
    }
    if not loss.data:
        functions["scalar"] = _function(
            [stable_logs(e) for e in (loss.expr, *derivation.gradient)],
            arguments,
            names,
            rows,
            _PYTHON,
            cse=True,
        )
    body = ",\n".join(f"  {name}: {code}" for name, code in functions.items())
    return f"window.deriveLessonFunctions = function (py, np) {{ return {{\n{body}\n}}; }};\n"


_PYTHON, _NUMPY, _ARRAY = "python", "numpy", "array"  # which of lambdify's printers to mirror


def _function(outputs, arguments, names, rows, printer, cse, width=None) -> str:
    """One JavaScript function, its statements made as `sympy.lambdify` makes them: common
    subexpressions by `sympy.cse`, then the arguments replaced by dummies created in the order
    lambdify creates them (the order SymPy sorts terms in depends on it)."""
    if cse:
        pairs, outputs = sympy.cse(outputs, list=False)
    else:
        pairs = []
    dummies = {}
    numbered = zip(arguments, range(len(arguments)), strict=True)
    for argument, _ in reversed(list(ordered(numbered))):
        # lambdify's dummies are named Dummy_<counter>: consecutive, so sorted by creation
        dummies[argument] = sympy.Dummy(f"Dummy_{1000 + len(dummies)}")
    identifiers = {dummies[a]: name for a, name in zip(arguments, names, strict=True)}
    row_valued = {dummies[c] for c in rows}
    statements = []
    for symbol, expression in pairs:
        expression = expression.xreplace(dummies)
        script = _Script(identifiers, frozenset(row_valued), printer)
        name = f"t{len(statements)}"
        identifiers[symbol] = name
        if script.row_valued(expression):
            row_valued.add(symbol)
            statements.append(f"const {name} = np.rows(n, (i) => {script.in_rows(expression)});")
        else:
            statements.append(f"const {name} = {script.doprint(expression)};")
    script = _Script(identifiers, frozenset(row_valued), printer)
    results = [script.doprint(e.xreplace(dummies)) for e in outputs]
    if width is not None:
        results = [f"[{', '.join(results[k : k + width])}]" for k in range(0, len(results), width)]
    lines = [*statements, f"return [{', '.join(results)}];"]
    body = "".join(f"\n    {line}" for line in lines)
    return f"function ({', '.join(names)}) {{{body}\n  }}"


class _Script(JavascriptCodePrinter):
    """SymPy's JavaScript printer, printing as lambdify's Python printers print: the same
    order of terms (NumPy's in-place order for the arrays, see `core/numeric.py`), powers and
    square roots written the same way, and each function from the module that computes it
    there (`py.` for Python's floats and `math`, `np.` for NumPy)."""

    def __init__(self, identifiers, row_valued, printer: str):
        super().__init__({"user_functions": {}})
        self.identifiers = identifiers
        self.row_valued_symbols = row_valued
        self.printer = printer
        self.module = "py" if printer == _PYTHON else "np"
        self.in_row = False

    def row_valued(self, expression: sympy.Expr) -> bool:
        """Whether the expression is an array over the rows (outside every Σ)."""
        if expression in self.row_valued_symbols:
            return True
        if isinstance(expression, sympy.Function) and type(expression).__name__ == "rowsum":
            return False
        return any(self.row_valued(a) for a in expression.args)

    def in_rows(self, expression: sympy.Expr) -> str:
        self.in_row = True
        try:
            return self.doprint(expression)
        finally:
            self.in_row = False

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        if self.printer == _ARRAY:
            return sorted(terms, key=lambda t: (t.could_extract_minus_sign(), t.is_number))
        return terms

    def _print_Symbol(self, expr):
        name = self.identifiers.get(expr)
        if name is None:
            raise ValueError(f"no JavaScript name for {expr}")
        return f"{name}[i]" if self.in_row and expr in self.row_valued_symbols else name

    def _print_Dummy(self, expr):
        return self._print_Symbol(expr)

    def _print_Pow(self, expr):
        base, exponent = expr.base, expr.exp
        if self.printer != _PYTHON and exponent.is_integer and exponent.is_negative:
            # NumPy's printer writes x**(-k) as x**(-k.0): a power, -1 included
            return f"{self.module}.pow({self._print(base)}, {int(exponent)})"
        if exponent == sympy.S.Half:
            return f"{self.module}.sqrt({self._print(base)})"
        if exponent == -sympy.S.Half:
            return f"1/{self.module}.sqrt({self._print(base)})"
        if exponent == -1:
            return f"1/{self.parenthesize(base, precedence(expr))}"
        return f"{self.module}.pow({self._print(base)}, {self._print(exponent)})"

    def _print_Rational(self, expr):
        return f"{int(expr.p)}/{int(expr.q)}"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Exp1(self, expr):
        return "Math.E"

    def _print_Pi(self, expr):
        return "Math.PI"

    def _print_Function(self, expr):
        name = type(expr).__name__
        arguments = ", ".join(self._print(a) for a in expr.args)
        if name == "rowsum":
            inner = _Script(self.identifiers, self.row_valued_symbols, self.printer)
            return f"np.rowsum(n, (i) => {inner.in_rows(expr.args[0])})"
        if name in _FUNCTIONS:
            return f"{self.module}.{name}({arguments})"
        raise ValueError(f"no JavaScript for the function {name}")

    def _print_Abs(self, expr):
        return f"Math.abs({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        return f"{self.module}.sign({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        raise ValueError("no JavaScript for a piecewise expression")


_FUNCTIONS = frozenset(
    "exp log sqrt sin cos tan tanh sigmoid softplus exp_neg_abs relu log1p sigmoid_given".split()
)
