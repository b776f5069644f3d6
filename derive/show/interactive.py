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

import functools
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
from derive.core.limits import GRADIENT_OPERATIONS
from derive.core.numeric import _as_array_expression, stable_logs
from derive.core.optimizers import DEFAULTS, Optimizer
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


def check_panel(derivation: Derivation, trace: Trace, data: Mapping[str, np.ndarray]) -> None:
    """Raise DeriveError (one line) when the panel cannot re-run this lesson's descent in the
    browser exactly as derive runs it: too many rows, an optimizer or schedule it does not
    offer, a function JavaScript has no match for."""
    loss = derivation.loss
    rows = len(next(iter(data.values()))) if loss.data else 0
    if rows > MAX_ROWS:
        raise DeriveError(
            f"the interactive panel (--interactive) re-runs the descent in the reader's browser, "
            f"over at most {MAX_ROWS} rows of data; this data has {rows}"
        )
    offered = (
        "the interactive panel (--interactive) re-runs sgd (plain, momentum, Nesterov) and "
        "adam with betas=(β₁, 0.999), at a constant rate and torch's other defaults"
    )
    if trace.schedule is not None:
        raise DeriveError(f"{offered}; this lesson's rate follows a schedule")
    if panel_optimizer(trace.optimizer) is None:
        raise DeriveError(f"{offered}; this lesson uses {_described(trace.optimizer)}")
    try:
        functions_script(derivation)
    except UnprintableError as error:
        raise DeriveError(
            f"the interactive panel (--interactive) cannot compute {error.name} in the browser "
            f"with derive's digits: JavaScript has no {error.name} of its own"
        ) from None


def panel_optimizer(optimizer: Optimizer) -> str | None:
    """The panel's choice that runs exactly `optimizer` (sgd, momentum, nesterov, adam), or None
    when none does: the panel sets only η, the momentum or β₁, and Nesterov."""
    options = optimizer.options
    fixed = DEFAULTS[optimizer.name]
    if optimizer.name == "sgd":
        if any(options[key] != fixed[key] for key in ("dampening", "weight_decay", "maximize")):
            return None
        if options["nesterov"]:
            return "nesterov"
        return "momentum" if options["momentum"] else "sgd"
    if optimizer.name == "adam":
        others = ("eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")
        if any(options[key] != fixed[key] for key in others):
            return None
        return "adam" if options["betas"][1] == fixed["betas"][1] else None
    return None


def _described(optimizer: Optimizer) -> str:
    """ "rmsprop", or "sgd with weight_decay=0.01": the optimizer and its options that differ
    from torch's defaults."""
    changed = [
        f"{key}={value}"
        for key, value in optimizer.options.items()
        if key != "lr" and value != DEFAULTS[optimizer.name][key]
    ]
    return f"{optimizer.name} with {', '.join(changed)}" if changed else optimizer.name


def interactive_panel(
    derivation: Derivation,
    trace: Trace,
    experiments: Experiments,
    data: Mapping[str, np.ndarray],
    language: str,
) -> Panel:
    """The panel of one lesson page in one language (after `check_panel`)."""
    loss = derivation.loss
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
        # the panel opens on the lesson's run; the momentum and β₁ the reader has not set yet
        # start at 0.9, torch's β₁ and the usual momentum
        "optimizer": panel_optimizer(trace.optimizer),
        "momentum": float(trace.optimizer.options.get("momentum") or 0.9),
        "beta1": float(trace.optimizer.options.get("betas", (0.9,))[0]),
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
        "marked": _marked(experiments),
        "words": {
            **words,
            "gradient_header": words["gradient_one" if single else "gradient_many"],
            "low": words["low_one" if single else "low_many"],
            "high": words["high_one" if single else "high_many"],
        },
        "behaviour": dict(lesson_words["behaviour"]),
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


def _marked(experiments: Experiments) -> list[list[float]]:
    """The minima the plot marks: the landscape's, or else the one the lesson's run was measured
    against (over data, where Newton's method found it from the run's end)."""
    minima = [list(p.values) for p in experiments.landscape.minima]
    found = experiments.main.minimiser
    return minima or ([list(found)] if found is not None else [])


def _view(trace: Trace, experiments: Experiments) -> dict:
    """The plot's box: the start, the lesson's path and the stationary points near it, with a
    margin; and the round step a dragged start snaps to along each axis."""
    start = trace.params[0]
    points = [p.values for p in experiments.landscape.points] + _marked(experiments)
    stationary = np.array(points, dtype=float).reshape(-1, len(start))
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


@functools.cache
def functions_script(derivation: Derivation) -> str:
    """`window.deriveLessonFunctions = function (py, np) {...}`: the loss and gradient as
    `core/numeric.py` computes them on floats (`scalar`, plain descent without data) and on
    arrays (`array`), and the Hessian (`hessian`), as JavaScript functions of the parameters.

    Raises UnprintableError naming a function JavaScript cannot compute as derive does."""
    loss = derivation.loss
    columns = [sympy.Symbol(name, real=True) for name in loss.data]
    arguments = [*loss.symbols, *columns, N_ROWS] if loss.data else list(loss.symbols)
    names = [f"p{k}" for k in range(len(loss.symbols))]
    names += [f"c{k}" for k in range(len(columns))] + (["n"] if loss.data else [])
    rows = frozenset(columns)
    width = len(loss.symbols)
    array = [_as_array_expression(e) for e in (loss.expr, *derivation.gradient)]
    functions = {"array": _function(array, arguments, names, rows, _ARRAY)}
    if sum(sympy.count_ops(g) for g in derivation.gradient) > GRADIENT_OPERATIONS:
        # as core/numeric.py's hessian: central differences of the gradient past this size
        functions["hessian"] = f"np.differenced(array, {width})"
    else:
        # as core/numeric.py's hessian: from the gradient's end form, δ(u) taken as 0
        matrix = sympy.Matrix(
            [[sympy.diff(g, p) for p in loss.symbols] for g in derivation.gradient]
        )
        matrix = matrix.replace(sympy.DiracDelta, lambda *a: 0)
        entries = [_as_array_expression(e) for e in matrix]
        functions["hessian"] = _function(entries, arguments, names, rows, _ARRAY, width=width)
    if not loss.data:
        scalar = [stable_logs(e) for e in (loss.expr, *derivation.gradient)]
        functions["scalar"] = _function(scalar, arguments, names, rows, _PYTHON)
    body = "".join(f"\n  const {name} = {code};" for name, code in functions.items())
    returned = ", ".join(functions)
    return (
        f"window.deriveLessonFunctions = function (py, np) {{{body}\n"
        f"  return {{ {returned} }};\n}};\n"
    )


_PYTHON, _ARRAY = "python", "array"  # which of lambdify's printers to mirror (see _Script)


def _function(outputs, arguments, names, rows, printer, width=None) -> str:
    """One JavaScript function, its statements made as `sympy.lambdify(..., cse=True)` makes
    them: common subexpressions by `sympy.cse`, then the arguments replaced by dummies created
    in the order lambdify creates them (the order SymPy sorts terms in depends on it). A matrix
    (`width`) gets none: lambdify hands cse the nested list, which it leaves as it is."""
    pairs, outputs = sympy.cse(outputs, list=False) if width is None else ([], outputs)
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


class UnprintableError(ValueError):
    """A function of the loss that JavaScript cannot compute as derive does."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


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
        if name == "rowsum":
            inner = _Script(self.identifiers, self.row_valued_symbols, self.printer)
            return f"np.rowsum(n, (i) => {inner.in_rows(expr.args[0])})"
        if name == "Heaviside" and self.printer == _PYTHON:
            # Python's printer has no Heaviside: it prints the Piecewise SymPy rewrites it to
            return self._print(expr.rewrite(sympy.Piecewise))
        if name in _REWRITTEN:  # sec → 1/cos and the like, as SymPy's code printers rewrite
            return self._print(expr.rewrite(getattr(sympy, _REWRITTEN[name])))
        if name in _FUNCTIONS:
            arguments = ", ".join(self._print(a) for a in expr.args)
            return f"{self.module}.{_FUNCTIONS[name]}({arguments})"
        raise UnprintableError(name)

    def _print_Abs(self, expr):
        return f"Math.abs({self._print(expr.args[0])})"

    def _print_sign(self, expr):
        return f"{self.module}.sign({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        """(c₁ ? e₁ : c₂ ? e₂ : e₃): the branch of the first condition that holds, as Python's
        `e₁ if c₁ else …` and numpy.select pick it (NaN when none holds, select's default)."""
        text = "NaN"
        for branch, condition in reversed(expr.args):
            value = self._print(branch)
            if condition == sympy.true:
                text = value
            else:
                text = f"{self._print(condition)} ? {value} : {text}"
        return f"({text})"

    def _print_Relational(self, expr):
        operator = {"==": "===", "!=": "!=="}.get(expr.rel_op, expr.rel_op)
        return f"({self._print(expr.lhs)} {operator} {self._print(expr.rhs)})"

    def _print_BooleanTrue(self, expr):
        return "true"

    def _print_BooleanFalse(self, expr):
        return "false"


# SymPy's function → the name of its JavaScript in descent.js's `py` and `np` (which hold
# Python's math and NumPy's versions); those without a row here are refused (erf: JavaScript
# has none that gives Python's digits).
_FUNCTIONS = {
    **{name: name for name in "exp log sqrt sin cos tan sinh cosh tanh asin acos atan".split()},
    **{name: name for name in "asinh acosh atanh log1p expm1 log2 log10 cbrt".split()},
    **{name: name for name in "sigmoid softplus relu leaky_relu huber maximum minimum".split()},
    **{name: name for name in "tie_share logsumexp softmax exp_neg_abs sigmoid_given".split()},
    "Heaviside": "heaviside",
}
_REWRITTEN = {"sec": "cos", "csc": "sin", "cot": "tan"}
