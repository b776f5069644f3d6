"""Every sentence of a lesson is true: each behaviour word, each sentence about what a run did,
each figure title chosen from a run and each claim about minima, in 28 lessons, re-checked here
by plain loops and closed forms written in this file (the gradients by SymPy's own `diff`, the
optimizers from torch.optim's documented update rules), never by derive's code.

A sentence this module cannot match to a check fails the test: nothing is printed unchecked.
Counts are checked between two noise tolerances (a claim must lie between what a strict and a
loose tolerance count), so rounding policy never decides a verdict, behaviour does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import sympy

from derive.app.cli import main

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds"
SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
TOL = 1e-6  # converged: within this fraction of the starting distance


@dataclass(frozen=True)
class Case:
    name: str
    loss: str  # SymPy text written here (trusted), the same function as derive's loss
    params: tuple[str, ...]
    args: tuple[str, ...]
    start: tuple[float, ...]
    lr: float
    steps: int
    minimum: str  # the truth about its minimum: global, unbounded, not_attained, found
    minimiser: tuple[float, ...] | None = None
    data: dict = field(default_factory=dict)
    mean: bool = True  # the data loss is a mean (else a sum)


def read_csv(name: str) -> dict:
    table = np.loadtxt(SEEDS / name, delimiter=",", skiprows=1)
    return {"x": table[:, 0], "y": table[:, 1]}


SEPARABLE = {"x": np.array([-2.0, -1.0, 1.0, 3.0]), "y": np.array([0.0, 0.0, 1.0, 1.0])}
# Neither data set is symmetric: where a gradient component is exactly 0 in exact arithmetic,
# Adam's first step divides float noise by its own size, and two correct programs part ways.
OVERLAPPING = {
    "x": np.array([-2.0, -1.0, 0.5, 1.0, 2.0, -0.5, 1.5]),
    "y": np.array([0, 0, 0, 1, 1, 1, 0.0]),
}
THREE = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([2.0, 3.0, 4.0])}
# y·softplus(−z) + (1 − y)·softplus(z) = −[y log σ(z) + (1 − y) log(1 − σ(z))], written so that
# NumPy's logaddexp evaluates it without the cancellation in 1 − σ(z)
CROSS_ENTROPY = "y*log(1+exp(-(w*x+b))) + (1-y)*log(1+exp(w*x+b))"
LOGISTIC_LOSS = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"


def inline(data: dict) -> str:
    return "; ".join(f"{k}={','.join(repr(float(v)) for v in vs)}" for k, vs in data.items())


def case(name, loss, params, start, lr, steps, minimum, minimiser=None, text=None, **extra):
    args = ["--loss", text or loss, "--lr", repr(lr), "--steps", str(steps)]
    args += ["--init", ",".join(f"{p}={v!r}" for p, v in zip(params, start, strict=True))]
    if "data" in extra:
        args += ["--data", extra.get("data_arg") or inline(extra["data"])]
    extra.pop("data_arg", None)
    return Case(name, loss, params, tuple(args), start, lr, steps, minimum, minimiser, **extra)


CASES = [
    case("w3", "(w-3)**2", ("w",), (0.0,), 0.1, 20, "global", (3.0,)),
    case("w3-below-1-over-lambda", "(w-3)**2", ("w",), (0.0,), 0.49, 20, "global", (3.0,)),
    case("w3-at-1-over-lambda", "(w-3)**2", ("w",), (0.0,), 0.5, 20, "global", (3.0,)),
    case("w3-above-1-over-lambda", "(w-3)**2", ("w",), (0.0,), 0.51, 20, "global", (3.0,)),
    case("w3-overshoot-20", "(w-3)**2", ("w",), (0.0,), 0.75, 20, "global", (3.0,)),
    case("w3-overshoot-400", "(w-3)**2", ("w",), (0.0,), 0.75, 400, "global", (3.0,)),
    case("w3-below-2-over-lambda", "(w-3)**2", ("w",), (0.0,), 0.99, 20, "global", (3.0,)),
    case("w3-at-2-over-lambda", "(w-3)**2", ("w",), (0.0,), 1.0, 20, "global", (3.0,)),
    case("w3-above-2-over-lambda", "(w-3)**2", ("w",), (0.0,), 1.01, 20, "global", (3.0,)),
    case("w3-one-step", "(w-3)**2", ("w",), (0.0,), 0.1, 1, "global", (3.0,)),
    case("w3-5000-steps", "(w-3)**2", ("w",), (0.0,), 0.1, 5000, "global", (3.0,)),
    case("w3-huge-rate", "(w-3)**2", ("w",), (0.0,), 50.0, 20, "global", (3.0,)),
    case("x2-0.95", "x**2", ("x",), (4.0,), 0.95, 30, "global", (0.0,)),
    case("x2-1.1", "x**2", ("x",), (4.0,), 1.1, 5, "global", (0.0,)),
    case("x2-0.3-five-steps", "x**2", ("x",), (4.0,), 0.3, 5, "global", (0.0,)),
    case("x2-adam-10", "x**2", ("x",), (4.0,), 10.0, 20, "global", (0.0,)),
    case("bowl-x2-2y2", "x**2 + 2*y**2", ("x", "y"), (4.0, 3.0), 0.1, 30, "global", (0, 0)),
    case("ill-conditioned", "x**2 + 100*y**2", ("x", "y"), (1.0, 1.0), 0.005, 20, "global", (0, 0)),
    case(
        "rosenbrock",
        "(1-x)**2 + 100*(y-x**2)**2",
        ("x", "y"),
        (-1.5, 2.0),
        0.001,
        200,
        "global",
        (1.0, 1.0),
    ),
    case("abs", "Abs(w-1)", ("w",), (0.0,), 0.1, 30, "global", (1.0,), text="abs(w-1)"),
    case("exp-minus-w", "exp(-w)", ("w",), (0.0,), 0.5, 20, "not_attained"),
    case("w-minus-log-w", "w - log(w)", ("w",), (2.0,), 0.1, 20, "global", (1.0,)),
    case("saddle-at-saddle", "x**2 - y**2", ("x", "y"), (0.0, 0.0), 0.1, 20, "unbounded"),
    case("saddle-beside", "x**2 - y**2", ("x", "y"), (1.0, 0.5), 0.1, 20, "unbounded"),
    case("quartic-left", "x**4 - 4*x**2 + 0.5*x", ("x",), (-2.0,), 0.01, 100, "global"),
    case("quartic-right", "x**4 - 4*x**2 + 0.5*x", ("x",), (2.0,), 0.01, 100, "global"),
    case(
        "seed-001",
        "mean((theta0 + theta1*x - y)**2)",
        ("theta0", "theta1"),
        (0.0, 0.0),
        0.1,
        100,
        "global",
        (1.0, 1.0),
        data=THREE,
    ),
    case(
        "seed-004-line",
        "mean((w*x + b - y)**2)",
        ("w", "b"),
        (0.0, 0.0),
        0.01,
        200,
        "global",
        data=read_csv("line.csv"),
        data_arg=str(SEEDS / "line.csv"),
    ),
    case(
        "separable-logistic",
        f"mean({CROSS_ENTROPY})",
        ("w", "b"),
        (0.0, 0.0),
        0.5,
        100,
        "not_attained",
        text=LOGISTIC_LOSS,
        data=SEPARABLE,
    ),
    case(
        "overlapping-logistic",
        f"mean({CROSS_ENTROPY})",
        ("w", "b"),
        (0.0, 0.0),
        0.5,
        100,
        "found",
        text=LOGISTIC_LOSS,
        data=OVERLAPPING,
    ),
]


# -- the independent lab: the loss, its derivatives, the optimizers -----------------------------


class Lab:
    """The case's loss, gradient and Hessian from SymPy's diff, evaluated with NumPy."""

    def __init__(self, c: Case):
        self.case = c
        symbols = sympy.symbols(c.params, real=True)
        self.symbols = symbols
        local = {name: s for name, s in zip(c.params, symbols, strict=True)}
        if c.data:
            mean = re.fullmatch(r"mean\((.*)\)", c.loss, re.S)
            body = mean.group(1) if mean else c.loss
            columns = {k: sympy.Symbol(k, real=True) for k in c.data}
            expr = sympy.sympify(body, locals={**local, **columns})
            self.rows = len(next(iter(c.data.values())))
            args = [*symbols, *columns.values()]
            self._f = sympy.lambdify(args, _softplus_form(expr), [{"softplus": _softplus}, "numpy"])
            self._g = sympy.lambdify(args, [sympy.diff(expr, s) for s in symbols], "numpy")
            self._h = sympy.lambdify(args, sympy.hessian(expr, symbols).tolist(), "numpy")
            self.columns = [np.asarray(c.data[k], dtype=float) for k in c.data]
            self.expr = None
        else:
            expr = sympy.sympify(c.loss, locals=local)
            self.expr = expr
            self._f = sympy.lambdify(symbols, expr, "numpy")
            self._g = sympy.lambdify(symbols, [sympy.diff(expr, s) for s in symbols], "numpy")
            second = sympy.hessian(expr, symbols).replace(sympy.DiracDelta, lambda *a: 0)
            self._h = sympy.lambdify(symbols, second.tolist(), "numpy")
            self.columns = []

    def _reduce(self, values, rows=None):
        values = np.asarray(values, dtype=float)
        return values.mean() if self.case.mean else values.sum()

    def loss(self, p, rows=None) -> float:
        with np.errstate(all="ignore"):
            if self.columns:
                cols = [c if rows is None else c[rows] for c in self.columns]
                return float(self._reduce(self._f(*p, *cols)))
            return float(self._f(*p))

    def grad(self, p, rows=None) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.columns:
                cols = [c if rows is None else c[rows] for c in self.columns]
                return np.array(
                    [self._reduce(np.broadcast_to(g, cols[0].shape)) for g in self._g(*p, *cols)]
                )
            return np.array(self._g(*p), dtype=float)

    def hessian(self, p) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.columns:
                entries = self._h(*p, *self.columns)
                return np.array(
                    [
                        [self._reduce(np.broadcast_to(e, self.columns[0].shape)) for e in row]
                        for row in entries
                    ]
                )
            return np.array(self._h(*p), dtype=float)

    def minimiser(self) -> np.ndarray | None:
        """The true minimiser: given, a least-squares solve, or Newton from a good guess."""
        c = self.case
        if c.minimiser is not None:
            return np.array(c.minimiser, dtype=float)
        if c.minimum == "global" and c.name.startswith("quartic"):
            roots = [r.real for r in np.roots([4, 0, -8, 0.5]) if abs(r.imag) < 1e-12]
            minima = [r for r in roots if 12 * r * r - 8 > 0]
            return np.array([min(minima, key=lambda r: abs(r - c.start[0]))])
        if c.data and c.minimum in ("global", "found"):
            p = np.zeros(len(c.params))
            for _ in range(100):
                p = p - np.linalg.solve(self.hessian(p), self.grad(p))
            return p
        return None


def _softplus(z):
    return np.logaddexp(0.0, z)


def _softplus_form(expr):
    """log(1 + exp(u)) → softplus(u): the same function, evaluated without overflow."""
    u = sympy.Wild("u")
    return expr.replace(sympy.log(1 + sympy.exp(u)), sympy.Function("softplus")(u))


def plain(lab: Lab, start, lr, steps):
    p = np.array(start, dtype=float)
    path = [p]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            g = lab.grad(p)
            if not np.all(np.isfinite(g)) or not np.isfinite(lab.loss(p)):
                break
            p = p - lr * g
            path.append(p)
    return np.array(path)


def momentum(lab: Lab, start, lr, steps, nesterov=False, mu=0.9):
    """torch.optim.SGD: buf = g the first time, then μ·buf + g; Nesterov steps by g + μ·buf."""
    p, buf = np.array(start, dtype=float), None
    path = [p]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            g = lab.grad(p)
            if not np.all(np.isfinite(g)):
                break
            buf = g.copy() if buf is None else mu * buf + g
            p = p - lr * (g + mu * buf if nesterov else buf)
            path.append(p)
    return np.array(path)


def adam(lab: Lab, start, lr, steps, b1=0.9, b2=0.999, eps=1e-8):
    """torch.optim.Adam: bias-corrected moments."""
    p = np.array(start, dtype=float)
    m = v = np.zeros_like(p)
    path = [p]
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            g = lab.grad(p)
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            path.append(p)
    return np.array(path)


def minibatches(lab: Lab, start, lr, epochs, size):
    """Each epoch a permutation from default_rng(0), batches in order, the last one kept."""
    rng, p = np.random.default_rng(0), np.array(start, dtype=float)
    n = lab.rows
    path = [p]
    for _ in range(epochs):
        order = rng.permutation(n) if size < n else np.arange(n)
        for k in range(0, n, size):
            p = p - lr * lab.grad(p, order[k : k + size])
            path.append(p)
    return np.array(path)


# -- facts, measured here -------------------------------------------------------------------------


def quiet(method):
    """Diverging runs overflow on the way: measure them without warnings."""

    def measured(*args, **kwargs):
        with np.errstate(all="ignore"):
            return method(*args, **kwargs)

    return measured


@dataclass
class Facts:
    path: np.ndarray
    losses: np.ndarray
    pstar: np.ndarray | None
    lab: Lab

    @property
    def steps(self) -> int:
        return len(self.path) - 1

    @property
    def finite(self) -> bool:
        return bool(np.all(np.isfinite(self.path)) and np.all(np.isfinite(self.losses)))

    @quiet
    def rises(self, strict: bool) -> int:
        tol = 1e-6 if strict else 1e-16
        d = np.diff(self.losses)
        scale = np.maximum(np.abs(self.losses[:-1]), np.abs(self.losses[1:]))
        return int(np.sum(d > tol * scale + (1e-15 if strict else 0.0) * abs(self.losses[0])))

    @quiet
    def all_fell(self) -> bool:
        return bool(np.all(np.diff(self.losses) < 0))

    @quiet
    def distances(self) -> np.ndarray:
        assert self.pstar is not None, "a distance to a minimiser the loss does not have"
        return np.linalg.norm(self.path - self.pstar, axis=1)

    def flips(self, strict: bool) -> int:
        """Steps where a coordinate along an eigenvector of the Hessian at p* changes sign."""
        return len(self._flip_steps(strict))

    @quiet
    def _flip_steps(self, strict: bool) -> np.ndarray:
        _, vectors = np.linalg.eigh(self.lab.hessian(self.pstar))
        path = self.path[np.all(np.isfinite(self.path), axis=1)]
        c = (path - self.pstar) @ vectors
        floor = (1e-6 if strict else 1e-14) * np.abs(c[0]).max()
        seen = np.abs(c) > floor
        flip = (np.sign(c[1:]) != np.sign(c[:-1])) & seen[1:] & seen[:-1]
        return np.nonzero(np.any(flip, axis=1))[0]

    @quiet
    def shrinking_swings(self) -> bool:
        """From the first crossing on (the approach before it is not a swing), the largest
        distance to the minimiser in the last third is below that in the first third."""
        d = self.distances()
        crossed = self._flip_steps(strict=False)
        if len(crossed) and len(d) - (crossed[0] + 1) >= 2:
            d = d[crossed[0] + 1 :]
        third = max(1, -(-len(d) // 3))
        return d[-third:].max() < d[:third].max()

    @quiet
    def cycles(self) -> bool:
        return any(self.period(k) for k in range(2, 9)) and self.distances()[-1] > 0

    @quiet
    def converged_at(self) -> int | None:
        d = self.distances()
        outside = np.nonzero(d > TOL * d[0])[0]
        first = 0 if not len(outside) else int(outside[-1]) + 1
        return first if first < len(d) else None

    @quiet
    def period(self, k: int) -> bool:
        if len(self.path) <= 3 * k:
            return False
        tail = self.path[-3 * k - k :]
        return bool(
            np.all(np.linalg.norm(tail[k:] - tail[:-k], axis=1) <= 1e-9 * np.abs(self.path).max())
        )


def facts(lab: Lab, path: np.ndarray) -> Facts:
    with np.errstate(all="ignore"):
        losses = np.array([lab.loss(p) for p in path])
    return Facts(path, losses, lab.minimiser(), lab)


# -- reading a lesson -----------------------------------------------------------------------------


def num(text: str) -> float:
    """−4.8, 3.2×10⁻⁵, 1.2 \\times 10^{-5}, 10^{-6}, NaN, \\infty."""
    text = text.strip().strip("$").strip().replace("−", "-").translate(SUP)
    if text in ("NaN", "nan"):
        return math.nan
    if text.endswith(r"\infty"):
        return -math.inf if text.startswith("-") else math.inf
    text = re.sub(r"^(-?)10\^\{?(-?\d+)\}?$", r"\g<1>1e\2", text)
    text = re.sub(r"\s*(×|\\times)\s*10\^?\{?(-?\d+)\}?", r"e\2", text)
    return float(text)


def point(text: str) -> tuple[float, ...]:
    """w = 3 / \\theta_{0} = 1, \\theta_{1} = 1 → (3.0,) / (1.0, 1.0)."""
    parts = [p.split("=")[1] for p in re.split(r",\s*(?=[^,]*=)", text.strip().strip("$"))]
    return tuple(num(p) for p in parts)


def sections(markdown: str) -> dict[str, str]:
    """Each section's body by its (English) title."""
    out, title = {}, None
    for line in markdown.splitlines():
        heading = re.match(r"## (?:\d+\. )?(.*)", line)
        if heading:
            title = heading.group(1)
            out[title] = ""
        elif title is not None:
            out[title] += line + "\n"
    return out


def tables(body: str) -> list[list[list[str]]]:
    found, rows = [], []
    for line in [*body.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            found.append(rows[2:])
            rows = []
    return found


def paragraphs(body: str) -> list[str]:
    """Prose paragraphs: not tables, figures, display math, headings or list items."""
    out = []
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block or block[0] in "|!$#-*<" or block.startswith("1.") or block.startswith("- "):
            continue
        out.append(block)
    return out


# -- the checks -----------------------------------------------------------------------------------


class Checker:
    def __init__(self, c: Case, markdown: str):
        self.case = c
        self.md = markdown
        self.lab = Lab(c)
        self.s = sections(markdown)
        self.main = facts(self.lab, plain(self.lab, c.start, c.lr, c.steps))
        self.checked: list[str] = []

    def ok(self, condition: bool, what: str) -> None:
        assert condition, f"{self.case.name}: false: {what}"
        self.checked.append(what)

    def pstar(self):
        return self.main.pstar

    # the shape words, against a run measured here
    def happened(self, text: str, run: Facts) -> None:
        parts = [p.strip() for p in text.split(";")]
        shape = parts[0]
        if shape == "monotone":
            self.ok(run.rises(strict=True) == 0, f"monotone but the loss rose: {text}")
            if run.pstar is not None and self.lab.expr is not None and _quadratic(self.lab):
                self.ok(run.flips(strict=True) == 0, f"monotone but crossed: {text}")
        elif shape.startswith("overshoots"):
            self.ok(run.finite and run.pstar is not None, text)
            self.ok(
                run.flips(strict=False) > 0 or run.rises(strict=False) > 0, f"no overshoot: {text}"
            )
            self.ok(run.shrinking_swings(), f"swings do not shrink: {text}")
        elif shape.startswith("oscillates"):
            self.ok(run.finite and not run.shrinking_swings(), f"swings shrink: {text}")
        elif shape.startswith("cycles with period"):
            k = int(shape.split()[-1])
            self.ok(run.period(k), f"no period-{k} cycle: {text}")
        elif shape == "diverges":
            grows = not run.finite or np.linalg.norm(
                run.path[-1] - (run.pstar if run.pstar is not None else run.path[0])
            ) > np.linalg.norm(run.path[0] - (run.pstar if run.pstar is not None else run.path[0]))
            self.ok(grows, f"does not diverge: {text}")
        elif shape.startswith("does not move"):
            self.ok(np.all(run.path == run.path[0]), f"moved: {text}")
        else:
            pytest.fail(f"{self.case.name}: unknown shape word {shape!r}")
        for part in parts[1:]:
            self.detail(part, run, text)

    def detail(self, part: str, run: Facts, text: str) -> None:
        if m := re.fullmatch(r"crosses the minimum (once|(\d+) times)", part):
            k = 1 if m.group(1) == "once" else int(m.group(2))
            self.ok(k <= run.flips(strict=False) or not _quadratic(self.lab), f"{part} ({text})")
            if _quadratic(self.lab):
                self.ok(run.flips(strict=True) <= k <= run.flips(strict=False), f"{part}: {text}")
        elif m := re.fullmatch(r"the loss rises at (\d+) steps?", part):
            k = int(m.group(1))
            self.ok(run.rises(strict=True) <= k <= run.rises(strict=False), f"{part}: {text}")
        elif m := re.fullmatch(r"within tolerance after step (\d+)", part):
            s = int(m.group(1))
            d = run.distances()
            self.ok(
                np.all(d[s:] <= TOL * d[0] * (1 + 1e-9) + 1e-12 * np.abs(run.pstar).max()), part
            )
            self.ok(s == 0 or d[s - 1] > TOL * d[0] * (1 - 1e-9), f"{part}: earlier")
        elif m := re.fullmatch(r"slow: not within tolerance after (\d+) steps?", part):
            d = run.distances()
            self.ok(int(m.group(1)) == run.steps and d[-1] > TOL * d[0], f"{part}: {text}")
        elif part == "the loss falls without bound":
            self.ok(self.case.minimum == "unbounded" and run.losses[-1] < run.losses[0], part)
        elif m := re.fullmatch(r"the loss approaches (\S+), never reaching it", part):
            self.ok(self.case.minimum == "not_attained" and num(m.group(1)) == 0, part)
            self.ok(np.all(run.losses > 0) and run.rises(strict=True) == 0, part)
        elif part == "escapes the saddle point":
            d = np.linalg.norm(run.path, axis=1)  # the saddle of x² − y² is the origin
            self.ok(d.min() < d[0] and d[-1] > 2 * d.min(), part)
        else:
            pytest.fail(f"{self.case.name}: unchecked detail {part!r} in {text!r}")

    def name(self, name: str, run: Facts, closest: bool) -> None:
        if name == "—":
            self.ok(
                self.case.minimum in ("unbounded", "not_attained")
                or np.all(run.path == run.path[0]),
                name,
            )
            return
        d = run.distances()
        converged = run.finite and d[-1] <= TOL * d[0]
        if name == "too small":
            self.ok(run.rises(strict=True) == 0 and not converged, name)
        elif name in ("good", "fast"):
            self.ok(converged and (name == "good" or closest), f"{name} at η")
        elif name == "large":
            self.ok(run.finite and run.shrinking_swings(), name)
        elif name == "too large":
            never_settles = not run.shrinking_swings() or run.cycles() or d[-1] >= d[0]
            self.ok(not run.finite or never_settles, name)
        else:
            pytest.fail(f"{self.case.name}: unknown name {name!r}")


def _quadratic(lab: Lab) -> bool:
    if lab.expr is None:
        return lab.case.name.startswith("seed")  # the least-squares lessons
    return (
        lab.expr.is_polynomial(*lab.symbols)
        and sympy.Poly(lab.expr, *lab.symbols).total_degree() <= 2
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truth")
    out = {}
    for c in CASES:
        languages = "all" if c.name in ("w3", "x2-1.1", "saddle-beside", "seed-001") else "en"
        target = folder / c.name
        assert main(["lesson", *c.args, "--lang", languages, "--out", str(target)]) == 0, c.name
        out[c.name] = target
    return out


def read(built, c: Case, language: str = "en") -> str:
    return (built[c.name] / f"lesson.{language}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_every_sentence_about_the_main_run_is_true(built, c):
    check = Checker(c, read(built, c))
    run = check.main
    body = check.s["Step by step"]
    rows = tables(body)[0]
    # the worked steps themselves, against the loop here
    for row in rows:
        if row[0] == "…":
            continue
        t = int(row[0])
        k = len(c.params)
        assert [num(v) for v in row[1 : 1 + k]] == pytest.approx(run.path[t], rel=1e-5, abs=1e-9)
        assert num(row[1 + k]) == pytest.approx(run.losses[t], rel=1e-5, abs=1e-9)
    for sentence in paragraphs(body):
        check_table_sentence(check, sentence)
    summary = {r[0]: r[1] for r in tables(check.s["Summary"])[0]}
    check.happened(summary["What the run did"], run)


def check_table_sentence(check: Checker, sentence: str) -> None:
    c, run = check.case, check.main
    if m := re.fullmatch(
        r"The loss fell at every step, from \$L = (.+?)\$ to \$L = (.+?)\$\.", sentence
    ):
        check.ok(run.all_fell(), sentence)
        check.ok(num(m.group(1)) == pytest.approx(run.losses[0], rel=1e-5, abs=1e-9), sentence)
    elif re.fullmatch(r"The loss never rose: it went from .*", sentence):
        check.ok(run.rises(strict=True) == 0, sentence)
    elif sentence.startswith("Each step was shorter than the one before"):
        moves = np.linalg.norm(np.diff(run.path, axis=0), axis=1)
        check.ok(bool(np.all(np.diff(moves) <= 1e-12 * moves[0])), sentence)
    elif m := re.fullmatch(r"The loss rose at (\d+) of the (\d+) steps?\.", sentence):
        check.ok(run.rises(strict=True) <= int(m.group(1)) <= run.rises(strict=False), sentence)
        check.ok(int(m.group(2)) == run.steps, sentence)
    elif m := re.fullmatch(
        r"The parameters jumped over the minimum \$(.+?)\$ (once|(\d+) times): .*", sentence
    ):
        check.ok(point(m.group(1)) == pytest.approx(tuple(run.pstar), abs=1e-5), sentence)
        k = 1 if m.group(2) == "once" else int(m.group(3))
        check.ok(
            run.flips(strict=True) <= k <= run.flips(strict=False) or not _quadratic(check.lab),
            sentence,
        )
    elif sentence.startswith("The swings shrank"):
        check.ok(run.shrinking_swings(), sentence)
    elif sentence.startswith("The swings did not shrink"):
        check.ok(not run.shrinking_swings(), sentence)
    elif m := re.fullmatch(
        r"From step (\d+) on, the parameters repeat every (\d+) steps: .*", sentence
    ):
        s, k = int(m.group(1)), int(m.group(2))
        check.ok(np.allclose(run.path[s:-k], run.path[s + k :], rtol=0, atol=1e-9), sentence)
        check.ok(not np.allclose(run.path[s - 1], run.path[s - 1 + k]) if s > 0 else True, sentence)
    elif m := re.fullmatch(
        r"After step (\d+), the parameters stayed within .* from the minimum \$(.+?)\$: "
        r"converged\.",
        sentence,
    ):
        check.ok(run.converged_at() == int(m.group(1)), sentence)
        check.ok(point(m.group(2)) == pytest.approx(tuple(run.pstar), abs=1e-5), sentence)
    elif m := re.fullmatch(
        r"After (\d+) steps? the parameters are still \$(.+?)\$ away from the minimum \$(.+?)\$ "
        r"\(they started \$(.+?)\$ away\): not converged yet\.",
        sentence,
    ):
        d = run.distances()
        check.ok(num(m.group(2)) == pytest.approx(d[-1], rel=1e-5) and d[-1] > TOL * d[0], sentence)
        check.ok(num(m.group(4)) == pytest.approx(d[0], rel=1e-5), sentence)
    elif m := re.fullmatch(
        r"The distance to the minimum grew from \$(.+?)\$ to \$(.+?)\$: the descent diverges\.",
        sentence,
    ):
        d = run.distances()
        check.ok(num(m.group(2)) == pytest.approx(d[-1], rel=1e-5) and d[-1] > d[0], sentence)
    elif m := re.fullmatch(
        r"With \$\\eta = (.+?)\$, above \$2/\\lambda_\{\\max\} = (.+?)\$, every step lands "
        r"farther from the minimum than the last\.",
        sentence,
    ):
        largest = np.linalg.eigvalsh(check.lab.hessian(run.pstar)).max()
        check.ok(
            num(m.group(2)) == pytest.approx(2 / largest, rel=1e-5) and c.lr > 2 / largest, sentence
        )
        check.ok(bool(np.all(np.diff(run.distances()) > 0)), sentence)
    elif m := re.fullmatch(
        r"At step (\d+) the numbers overflowed: the descent diverged\.", sentence
    ):
        check.ok(not run.finite, sentence)
    elif sentence.startswith("The gradient is exactly $0$ at the start"):
        check.ok(np.all(check.lab.grad(np.array(c.start)) == 0), sentence)
        if "(a saddle point)" in sentence:
            check.ok(np.linalg.eigvalsh(check.lab.hessian(np.array(c.start))).prod() < 0, sentence)
    elif sentence.startswith("The loss fell at every step, to $L = ") and "ran off" in sentence:
        check.ok(run.all_fell() and c.minimum == "unbounded", sentence)
        check.ok(np.linalg.norm(run.path[-1]) > np.linalg.norm(run.path[0]), sentence)
    elif (
        sentence.startswith("The loss fell at every step, to $L = ")
        and "approaching $L = 0$" in sentence
    ):
        check.ok(
            run.all_fell() and c.minimum == "not_attained" and np.all(run.losses > 0), sentence
        )
        check.ok(np.linalg.norm(run.path[-1]) > np.linalg.norm(run.path[0]), sentence)
    elif sentence.startswith("Note: ") and "not differentiable at" in sentence:
        check.ok(any(abs(p[0] - 1) == 0 for p in run.path), sentence)  # |w − 1| has its corner at 1
    else:
        pytest.fail(f"{c.name}: an unchecked sentence: {sentence!r}")


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_the_claim_about_the_minimum_is_true(built, c):
    check = Checker(c, read(built, c))
    body = check.s["The loss we minimise"]
    claims = [p for p in paragraphs(body) if p.startswith("Our goal")]
    (claim,) = claims
    if c.minimum == "global":
        m = re.search(
            r"Its smallest value is \$L = (.+?)\$, at \$(.+?)\$: the global minimum\.", claim
        )
        assert m, claim
        at = point(m.group(2))
        pstar = check.lab.minimiser()
        if c.name.startswith("quartic"):  # the global one is the left valley's: 0.5x < 0 there
            roots = [r.real for r in np.roots([4, 0, -8, 0.5]) if abs(r.imag) < 1e-12]
            pstar = np.array([min(roots, key=lambda r: r**4 - 4 * r * r + 0.5 * r)])
        if pstar is not None:
            assert at == pytest.approx(tuple(pstar), abs=1e-5)
        assert num(m.group(1)) == pytest.approx(check.lab.loss(np.array(at)), rel=1e-5, abs=1e-9)
        assert "global minimum" in claim and "no minimum" not in claim
    elif c.minimum == "unbounded":
        assert "This loss has no minimum: it falls without bound" in claim
        assert "global" not in claim
    elif c.minimum == "not_attained":
        assert "This loss has no minimum: it comes arbitrarily close to $L = 0$" in claim
    elif c.minimum == "found":
        m = re.search(
            r"It has a minimum at \$(.+?)\$, where \$L = (.+?)\$; derive cannot prove", claim
        )
        assert m, claim
        assert point(m.group(1)) == pytest.approx(tuple(check.lab.minimiser()), rel=1e-4, abs=1e-6)
        assert "global" not in claim


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_every_learning_rate_is_named_by_what_it_did(built, c):
    check = Checker(c, read(built, c))
    body = check.s["What the learning rate does"]
    m = re.search(
        r"Each rate below was run from the same start for (\d+) steps?( \(the lesson's own run "
        r"took (\d+) steps?\))?",
        body,
    )
    steps = int(m.group(1))
    assert steps == max(c.steps, 20)
    assert (m.group(2) is not None) == (steps != c.steps)  # "the same number of steps" only when so
    rows = tables(body)[0]
    runs = {num(r[0]): facts(check.lab, plain(check.lab, c.start, num(r[0]), steps)) for r in rows}
    finite = {r: f for r, f in runs.items() if f.finite and f.pstar is not None}
    closest = min(finite, key=lambda r: finite[r].distances()[-1], default=None)
    converged = {r: f.converged_at() for r, f in finite.items() if f.converged_at() is not None}
    first = min(converged, key=lambda r: (converged[r], r), default=None)
    for row in rows:
        rate, run = num(row[0]), runs[num(row[0])]
        check.happened(row[2], run)
        check.name(row[1], run, (first if first is not None else closest) == rate)
        if run.finite:
            assert num(row[3]) == pytest.approx(run.losses[-1], rel=1e-5, abs=1e-9)
    if m := re.search(r"Of these, \$\\eta = (.+?)\$ ended closest to the minimum\.", body):
        assert first is None and num(m.group(1)) == closest
    if m := re.search(
        r"Of these, \$\\eta = (.+?)\$ was the first within tolerance, after step (\d+)\.", body
    ):
        assert num(m.group(1)) == first and int(m.group(2)) == converged[first]
    pstar = check.lab.minimiser()
    thresholds = re.search(r"\\eta < 1/(?:L''|\\lambda_\{\\max\}) = ([^$]+)\$", body)
    if c.minimum in ("global", "found") and c.name != "abs":
        assert thresholds, f"{c.name}: a minimum with positive curvature has thresholds"
        largest = np.linalg.eigvalsh(check.lab.hessian(pstar)).max()
        assert num(thresholds.group(1)) == pytest.approx(1 / largest, rel=1e-5)
        position = re.search(
            r"the lesson's \$\\eta = (.+?)\$ (lies below|lies between|equals|is the step|lies "
            r"above)",
            body,
            re.IGNORECASE,
        )
        where = position.group(2)
        rate = c.lr
        expected = (
            "is the step"
            if math.isclose(rate * largest, 1) and len(c.params) == 1
            else "equals"
            if math.isclose(rate * largest, 2)
            else "lies below"
            if rate * largest <= 1
            else "lies between"
            if rate * largest < 2
            else "lies above"
        )
        assert where == expected, (c.name, where, expected)
    else:
        assert thresholds is None, f"{c.name}: no minimum with a second derivative, no thresholds"


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_every_optimizer_sentence_is_true(built, c):
    check = Checker(c, read(built, c))
    body = check.s["Other optimizers"]
    steps = max(c.steps, 20)
    runs = {
        "plain gradient descent": plain(check.lab, c.start, c.lr, steps),
        "momentum": momentum(check.lab, c.start, c.lr, steps),
        "Nesterov momentum": momentum(check.lab, c.start, c.lr, steps, nesterov=True),
        "Adam": adam(check.lab, c.start, c.lr, steps),
    }
    measured = {name: facts(check.lab, path) for name, path in runs.items()}
    for row in tables(body)[0]:
        run = measured[row[0]]
        check.happened(row[2], run)
        if run.finite:
            assert num(row[3]) == pytest.approx(run.losses[-1], rel=1e-4, abs=1e-8)
    m, k = measured["momentum"], measured["Nesterov momentum"]
    for sentence in paragraphs(body):
        if g := re.fullmatch(
            r"Momentum overshot here: .* crossing it (once|(\d+) times) and raising the loss at "
            r"(\d+) of the steps\.",
            sentence,
        ):
            crossings = 1 if g.group(1) == "once" else int(g.group(2))
            assert crossings <= m.flips(strict=False) and crossings > 0
            assert m.rises(strict=True) <= int(g.group(3)) <= m.rises(strict=False)
        elif g := re.fullmatch(
            r"Momentum's inertia raised the loss at (\d+) of the steps here, though it did not "
            r"cross the minimum\.",
            sentence,
        ):
            assert m.rises(strict=True) <= int(g.group(1)) <= m.rises(strict=False)
        elif sentence.startswith("Momentum did not overshoot here"):
            assert m.rises(strict=False) == 0
        elif g := re.fullmatch(
            r"Nesterov's look-ahead (overshot less|did not overshoot less) than plain momentum "
            r"here: the loss rose at (\d+) of the steps against (\d+)\.",
            sentence,
        ):
            ours, theirs = int(g.group(2)), int(g.group(3))
            assert k.rises(strict=True) <= ours <= k.rises(strict=False)
            assert m.rises(strict=True) <= theirs <= m.rises(strict=False)
            assert (g.group(1) == "overshot less") == (ours < theirs)
        elif g := re.fullmatch(r"(.+) diverged with this learning rate\.", sentence):
            run = {"Momentum": m, "Nesterov momentum": k}[g.group(1)]
            reference = run.pstar if run.pstar is not None else run.path[0]
            far = np.linalg.norm(run.path[-1] - reference) > np.linalg.norm(run.path[0] - reference)
            assert not run.finite or far
        elif g := re.fullmatch(
            r"Adam divides .* its first steps each moved about \$\\eta\$: (.+)\.", sentence
        ):
            moves = np.linalg.norm(np.diff(runs["Adam"][:4], axis=0), axis=1)
            assert [num(v) for v in g.group(1).split(", ")] == pytest.approx(moves, rel=1e-5)
            assert np.all(np.abs(moves / c.lr - 1) <= 0.5)
        elif sentence.startswith(("Plain gradient descent looks only", "Here $g$")):
            assert f"for {steps} steps" in sentence or sentence.startswith("Here")
        else:
            pytest.fail(f"{c.name}: an unchecked sentence: {sentence!r}")


DATA_CASES = [c for c in CASES if c.data]


@pytest.mark.parametrize("c", DATA_CASES, ids=[c.name for c in DATA_CASES])
def test_every_batch_sentence_is_true(built, c):
    check = Checker(c, read(built, c))
    body = check.s["Batch, stochastic and mini-batch descent"]
    rows = {r[0]: r for r in tables(body)[0]}
    n = check.lab.rows
    measured = {}
    for name, row in rows.items():
        size, epochs = int(row[1]), int(row[3])
        path = minibatches(check.lab, c.start, c.lr, epochs, size)
        run = facts(check.lab, path)
        measured[name] = run
        assert int(row[4]) == run.steps == epochs * -(-n // size)
        assert run.rises(strict=True) <= int(row[5]) <= run.rises(strict=False)
        assert num(row[6]) == pytest.approx(run.losses[-1], rel=1e-5)
    for sentence in paragraphs(body):
        if sentence.startswith("Each stochastic update looks at a single example"):
            assert measured["stochastic gradient descent"].rises(strict=False) > 0
        elif sentence.startswith("Batch descent, which uses every example"):
            assert measured["batch gradient descent"].rises(strict=False) == 0
        elif sentence.startswith(("So far every step", "The shuffling uses seed 0")):
            pass
        else:
            pytest.fail(f"{c.name}: an unchecked sentence: {sentence!r}")


def test_minima_and_starts_of_the_quartic(tmp_path):
    """Starts that stay in their valley, and one (2.2, η = 0.1) that a step carries over the
    maximum into the other valley: the lesson must say which."""
    from derive.app.build import build_lesson
    from derive.core.derivation import differentiate
    from derive.core.descend import Optimizer, descend
    from derive.core.parse import parse_loss

    derivation = differentiate(parse_loss("x**4 - 4*x**2 + 0.5*x"))
    for lr, starts, strays in ((0.01, (-2.0, 0.5, 2.0), ()), (0.1, (-2.0, 2.2), (2.2,))):
        trace = descend(derivation, {"x": -2.0}, Optimizer.make("sgd", lr=lr), 100)
        out = tmp_path / f"quartic-{lr}"
        build_lesson(
            derivation, trace, out, ("en",), starts=tuple((s,) for s in starts), parallel=False
        )
        md = (out / "lesson.en.md").read_text()
        body = sections(md)["Minima and saddle points"]
        roots = sorted(r.real for r in np.roots([4, 0, -8, 0.5]) if abs(r.imag) < 1e-12)
        left, top, right = roots
        lab = Lab(case("q", "x**4 - 4*x**2 + 0.5*x", ("x",), (0.0,), lr, 100, "global"))
        for row in tables(body)[1]:
            start = point(row[0])[0]
            end = plain(lab, (start,), lr, 100)[-1][0]
            assert point(row[1])[0] == pytest.approx(end, rel=1e-5)
            reached = left if abs(end - left) < 1e-6 else right
            kind = "global" if reached == left else "local"
            assert row[2].startswith(f"reached the {kind} minimum at $x = ")
        said = paragraphs(body)
        if strays:
            (other,) = [s for s in said if "started in the valley" in s]
            assert "$x = 2.2$" in other  # 2.2 is right of the maximum, yet ends at the left one
            assert not any(s.startswith("Every run ended at the minimum") for s in said)
            assert top < 2.2 and plain(lab, (2.2,), lr, 100)[-1][0] < top
        else:
            assert any(s.startswith("Every run ended at the minimum of the valley") for s in said)


@pytest.mark.parametrize("name", ["w3", "x2-1.1", "saddle-beside", "seed-001"])
def test_chinese_lessons_state_the_same_facts(built, name):
    c = next(c for c in CASES if c.name == name)
    en, zh = read(built, c), read(built, c, "zh")
    numbers = lambda text: re.findall(r"(?<![\w.])[−-]?\d+(?:\.\d+)?(?:×10[⁻⁰-⁹]+)?", text)  # noqa: E731
    en_tables = [t for body in sections(en).values() for t in tables(body)]
    zh_tables = [t for body in sections(zh).values() for t in tables(body)]
    assert len(en_tables) == len(zh_tables)
    for a, b in zip(en_tables, zh_tables, strict=True):
        assert [numbers(" ".join(r)) for r in a] == [numbers(" ".join(r)) for r in b]
    en_notes = [len(paragraphs(body)) for body in sections(en).values()]
    zh_notes = [len(paragraphs(body)) for body in sections(zh).values()]
    assert en_notes == zh_notes  # the same sentences chosen, section by section
    assert "样本个数" in zh or not c.data
