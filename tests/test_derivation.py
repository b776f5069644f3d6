"""Derivation: every rule tree ends where SymPy's diff does, and prints in textbook form."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from derive.core.derivation import differentiate
from derive.core.numeric import NUMPY_FUNCTIONS, numeric
from derive.core.parse import parse_loss
from derive.show.printing import to_latex, to_unicode

LOSSES = [
    "(w-3)**2",
    "x**2 + 2*y**2",
    "x**4 - 4*x**2 + 0.5*x",
    "x**2 - y**2",
    "a*x**2 + b*x + c",
    "log(1 + exp(w*x))",
    "sigmoid(w*x + b)",
    "softplus(w) + tanh(w*b) + sin(w)*cos(b) + tan(w/3)",
    "sqrt(w**2 + 1) + abs(w - 1)",
    "exp(-w)/w + 2**w + w**w",
]


def walk(step):
    yield step
    for sub in step.substeps:
        yield from walk(sub)


def agree(a, b, symbols, rng):
    fa, fb = (sympy.lambdify(symbols, e.rewrite(sympy.exp), modules="mpmath") for e in (a, b))
    for _ in range(5):
        point = [float(v) for v in rng.uniform(0.3, 1.7, len(symbols))]
        assert complex(fa(*point)) == pytest.approx(complex(fb(*point)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("text", LOSSES)
def test_every_partial_matches_sympy_diff_and_finite_differences(text):
    loss = parse_loss(text)
    derivation = differentiate(loss)
    rng = np.random.default_rng(0)
    for symbol, partial in zip(loss.symbols, derivation.partials, strict=True):
        reference = sympy.diff(loss.expr, symbol)
        agree(partial.raw, reference, loss.symbols, rng)
        agree(partial.textbook, reference, loss.symbols, rng)
        f = sympy.lambdify(loss.symbols, loss.expr, modules=[NUMPY_FUNCTIONS, "numpy"])
        g = sympy.lambdify(loss.symbols, partial.textbook, modules=[NUMPY_FUNCTIONS, "numpy"])
        point = rng.uniform(0.3, 1.7, len(loss.symbols))
        h = 1e-6
        up, down = point.copy(), point.copy()
        k = loss.symbols.index(symbol)
        up[k] += h
        down[k] -= h
        central = (f(*up) - f(*down)) / (2 * h)
        assert g(*point) == pytest.approx(central, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("text", LOSSES)
def test_every_step_states_a_true_equation(text):
    loss = parse_loss(text)
    rng = np.random.default_rng(1)
    for partial in differentiate(loss).partials:
        for step in walk(partial.steps):
            variables = sorted(step.expr.free_symbols | step.result.free_symbols, key=str)
            if not variables:
                assert step.result == 0
                continue
            agree(step.result, sympy.diff(step.expr, step.variable), variables, rng)


def test_chain_rule_names_its_inner_function():
    (partial,) = differentiate(parse_loss("(w-3)**2")).partials
    assert partial.steps.rule == "chain"
    assert to_unicode(partial.steps.inner) == "w − 3"
    assert [s.rule for s in partial.steps.substeps] == ["power", "sum"]


LOGISTIC = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
SUM_W = r"\sum_{i=1}^{n} \left(w x_{i} + b - y_{i}\right)"
SUM_THETA = r"\sum_{i=1}^{n} \left(\theta_{0} + \theta_{1} x_{i} - y_{i}\right)"
SUM_SIGMA = r"\sum_{i=1}^{n} \left(\sigma\left(w x_{i} + b\right) - y_{i}\right)"


@pytest.mark.parametrize(
    ("text", "unicode", "latex"),
    [
        (
            "mean((w*x + b - y)**2)",
            ["(2/n) Σ (w xᵢ + b − yᵢ) xᵢ", "(2/n) Σ (w xᵢ + b − yᵢ)"],
            [rf"\frac{{2}}{{n}} {SUM_W} x_{{i}}", rf"\frac{{2}}{{n}} {SUM_W}"],
        ),
        (
            "mean((theta0 + theta1*x - y)**2)",
            ["(2/n) Σ (θ₀ + θ₁ xᵢ − yᵢ)", "(2/n) Σ (θ₀ + θ₁ xᵢ − yᵢ) xᵢ"],
            [
                rf"\frac{{2}}{{n}} {SUM_THETA}",
                rf"\frac{{2}}{{n}} {SUM_THETA} x_{{i}}",
            ],
        ),
        (
            LOGISTIC,
            ["(1/n) Σ (σ(w xᵢ + b) − yᵢ) xᵢ", "(1/n) Σ (σ(w xᵢ + b) − yᵢ)"],
            [
                rf"\frac{{1}}{{n}} {SUM_SIGMA} x_{{i}}",
                rf"\frac{{1}}{{n}} {SUM_SIGMA}",
            ],
        ),
        (
            "mean((w1*x1 + w2*x2 + b - y)**2)",
            [
                "(2/n) Σ (w₁ x₁ᵢ + w₂ x₂ᵢ + b − yᵢ) x₁ᵢ",
                "(2/n) Σ (w₁ x₁ᵢ + w₂ x₂ᵢ + b − yᵢ) x₂ᵢ",
                "(2/n) Σ (w₁ x₁ᵢ + w₂ x₂ᵢ + b − yᵢ)",
            ],
            None,
        ),
        (
            "mean((a*x**2 + b*x + c - y)**2)",
            [
                "(2/n) Σ (a xᵢ² + b xᵢ + c − yᵢ) xᵢ²",
                "(2/n) Σ (a xᵢ² + b xᵢ + c − yᵢ) xᵢ",
                "(2/n) Σ (a xᵢ² + b xᵢ + c − yᵢ)",
            ],
            None,
        ),
        ("(w-3)**2", ["2(w − 3)"], [r"2 \left(w - 3\right)"]),
        ("x**2 + 2*y**2", ["2x", "4y"], ["2 x", "4 y"]),
        ("x**4 - 4*x**2 + 0.5*x", ["4x³ − 8x + 1/2"], [r"4 x^{3} - 8 x + \frac{1}{2}"]),
        ("a*x**2 + b*x + c", ["x²", "2a x + b", "x", "1"], ["x^{2}", "2 a x + b", "x", "1"]),
    ],
)
def test_textbook_end_forms(text, unicode, latex):
    loss = parse_loss(text, data=("x", "y", "x1", "x2") if "mean" in text else ())
    partials = differentiate(loss).partials
    assert [to_unicode(p.textbook, loss.params) for p in partials] == unicode
    if latex is not None:
        assert [to_latex(p.textbook, loss.params) for p in partials] == latex


def test_data_loss_prints_as_a_mean_with_limits():
    loss = parse_loss("mean((w*x + b - y)**2)", data=("x", "y"))
    assert to_unicode(loss.expr, loss.params) == "(1/n) Σ (w xᵢ + b − yᵢ)²"
    assert to_latex(loss.expr, loss.params) == rf"\frac{{1}}{{n}} {SUM_W}^{{2}}"


DATA = {"x": np.array([0.5, -1.0, 2.0, 3.5]), "y": np.array([1.0, 0.0, 1.0, 1.0])}


@pytest.mark.parametrize(
    ("text", "by_hand"),
    [
        (
            "mean((w*x + b - y)**2)",
            lambda w, b, x, y: [
                np.mean((w * x + b - y) ** 2),
                2 * np.mean((w * x + b - y) * x),
                2 * np.mean(w * x + b - y),
            ],
        ),
        (
            LOGISTIC,
            lambda w, b, x, y: [
                -np.mean(
                    y * np.log(1 / (1 + np.exp(-(w * x + b))))
                    + (1 - y) * np.log(1 - 1 / (1 + np.exp(-(w * x + b))))
                ),
                np.mean((1 / (1 + np.exp(-(w * x + b))) - y) * x),
                np.mean(1 / (1 + np.exp(-(w * x + b))) - y),
            ],
        ),
    ],
)
def test_vectorized_functions_match_hand_written_numpy(text, by_hand):
    derivation = differentiate(parse_loss(text, data=("x", "y")))
    function = numeric(derivation)
    for w, b in [(0.3, -0.2), (-1.5, 2.0), (0.0, 0.0)]:
        ours = function(w, b, DATA["x"], DATA["y"], 4)
        assert ours == pytest.approx(by_hand(w, b, DATA["x"], DATA["y"]), rel=1e-12)


def test_symbolic_work_never_sees_the_number_of_rows():
    loss = parse_loss("mean((w*x + b - y)**2)", data=("x", "y"))
    (total,) = loss.expr.atoms(sympy.Sum)
    assert total.limits[0][2].is_Symbol  # n stays a symbol: the cost is the same for any n
    for partial in differentiate(loss).partials:
        assert all(s.limits[0][2].is_Symbol for s in partial.textbook.atoms(sympy.Sum))


def test_cross_entropy_stays_finite_where_the_literal_formula_gives_nan():
    import mpmath

    function = numeric(differentiate(parse_loss(LOGISTIC, data=("x", "y"))))
    x, y = np.array([1.0, 2.0, -3.0]), np.array([1.0, 1.0, 0.0])
    with np.errstate(all="ignore"):  # the literal formula: log(1 − σ(100)) = log(0)
        z = 50.0 * x
        sigma = 1 / (1 + np.exp(-z))
        literal = -np.mean(y * np.log(sigma) + (1 - y) * np.log(1 - sigma))
    assert np.isnan(literal)
    loss, dw, db = function(50.0, 0.0, x, y, 3)
    mpmath.mp.dps = 50
    exact = (
        sum(
            mpmath.log(1 + mpmath.exp(-zi)) if yi else mpmath.log(1 + mpmath.exp(zi))
            for zi, yi in zip(z, y, strict=True)
        )
        / 3
    )
    assert loss == pytest.approx(float(exact), rel=1e-12)
    assert np.isfinite([dw, db]).all()


def test_scalar_path_uses_the_stable_forms_too():
    from derive.core.numeric import scalar_numeric

    loss, dw, db = scalar_numeric(
        differentiate(parse_loss("-log(sigmoid(w)) - log(1 - sigmoid(b))"))
    )(-1000.0, 1000.0)
    assert (loss, dw, db) == (2000.0, -1.0, 1.0)


# -- end forms a teacher would print (issue 16) -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "param", "printed"),
    [
        ("log(sigma) + (y - mu)**2/(2*sigma**2)", "sigma", "1/σ − (y − μ)²/σ³"),
        ("tanh(w*x)", "w", "x (1 − tanh(w x)²)"),
        ("tanh(w)", "w", "1 − tanh(w)²"),
        ("exp(w + b) + w**2", "w", "2w + exp(w + b)"),
        ("relu(w - 1)", "w", "𝟙[w − 1 > 0]"),
        ("max(0, 1 - w)", "w", "−H(1 − w)"),
        ("max(w, b, 1)", "w", "H(w; b, 1)"),
        ("huber(w - 3)", "w", "where(|w − 3| ≤ 1, w − 3, sign(w − 3))"),
        ("leaky_relu(w)", "w", "where(w > 0, 1, 1/100)"),
        ("sigmoid(w)**2", "w", "2σ(w)² (1 − σ(w))"),
        ("logsumexp(w, b)", "w", "softmax₁(w, b)"),
        ("-log(softmax(1, w, b, 0))", "w", "softmax₁(w, b, 0) − 1"),
        ("asin(w) + acosh(b)", "w", "1/√(1 − w²)"),
        ("lam*w**2 + (w - 1)**2", "w", "2(λ w + w − 1)"),
    ],
)
def test_end_forms_as_a_teacher_prints_them(text, param, printed):
    loss = parse_loss(text)
    (partial,) = [p for p in differentiate(loss).partials if p.param == param]
    assert to_unicode(partial.textbook, loss.params) == printed


def test_the_hinge_loss_over_data_ends_in_its_textbook_form():
    loss = parse_loss("mean(max(0, 1 - y*(w*x + b)))", data=("x", "y"))
    partials = differentiate(loss).partials
    assert [to_unicode(p.textbook, loss.params) for p in partials] == [
        "−(1/n) Σ H(1 − (w xᵢ + b) yᵢ) xᵢ yᵢ",
        "−(1/n) Σ H(1 − (w xᵢ + b) yᵢ) yᵢ",
    ]
    assert to_latex(partials[0].textbook, loss.params) == (
        r"- \frac{1}{n} \sum_{i=1}^{n} H\left(1 - \left(w x_{i} + b\right) y_{i}\right)"
        r" x_{i} y_{i}"
    )


def test_the_latex_of_kinks_and_powers_of_functions():
    w = sympy.Symbol("w", real=True)
    loss = parse_loss("relu(w)**2 + sigmoid(w)**3 + huber(w)")
    latex = to_latex(loss.expr, loss.params)
    assert r"\operatorname{relu}\left(w\right)^{2}" in latex
    assert r"\sigma\left(w\right)^{3}" in latex
    assert to_latex(sympy.Heaviside(w, 0)) == r"\mathbb{1}\left[w > 0\right]"
    (partial,) = differentiate(parse_loss("huber(w)")).partials
    assert to_latex(partial.textbook) == (
        r"\begin{cases} w & \left|w\right| \leq 1 \\ "
        r"\operatorname{sign}{\left(w \right)} & \left|w\right| > 1 \end{cases}"
    )


LINEAR_MODELS = [
    ("mean((w1*x1 + w2*x2 + b - y)**2)", lambda a, t, y: 2 / len(y) * a.T @ (a @ t - y)),
    (
        "mean(-(y*log(sigmoid(w1*x1 + w2*x2 + b)) + (1-y)*log(1 - sigmoid(w1*x1 + w2*x2 + b))))",
        lambda a, t, y: a.T @ (1 / (1 + np.exp(-(a @ t))) - y) / len(y),
    ),
    ("sum((w1*x1 + w2*x2 - y)**2)/2", lambda a, t, y: a.T @ (a @ t - y)),
]


@pytest.mark.parametrize(("text", "by_hand"), LINEAR_MODELS)
def test_the_matrix_gradient_is_the_partials_in_one_formula(text, by_hand):
    from derive.core.vector import vector_form

    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=7), rng.normal(size=7)
    y = (rng.uniform(size=7) > 0.5).astype(float)
    derivation = differentiate(parse_loss(text, data=("x1", "x2", "y")))
    form = vector_form(derivation)
    assert form is not None
    ones = [np.ones(7)] if form.features[-1] is None else []
    design = np.column_stack([x1, x2, *ones])
    theta = rng.normal(size=design.shape[1])
    expected = by_hand(design, theta, y)
    # the matrix expression itself, written out for these 7 rows and evaluated
    n = sympy.Symbol("n", integer=True, positive=True)
    sized = form.gradient.xreplace({n: 7})
    values = {}
    for symbol, array in (
        (form.design, design),
        (form.parameters, theta[:, None]),
        (form.targets, y[:, None]),
    ):
        resized = symbol.xreplace({n: 7})
        values |= {
            resized[i, j]: array[i, j] for i in range(array.shape[0]) for j in range(array.shape[1])
        }
    written = [
        complex(e.xreplace(values).evalf(30)).real for e in sympy.Matrix(sized.as_explicit())
    ]
    assert written == pytest.approx(expected.tolist(), rel=1e-12)
    # and derive's per-parameter partials, compiled
    _, *partials = numeric(derivation)(*theta, x1, x2, y, 7)
    assert [float(p) for p in partials] == pytest.approx(expected.tolist(), rel=1e-12)


def test_no_matrix_form_for_what_is_not_a_linear_model():
    from derive.core.vector import vector_form

    for text in [
        "mean((w*x**2 + b - y)**2)",
        "mean((w*x + b - y)**4)",
        "mean(max(0, 1 - y*(w*x+b)))",
    ]:
        assert vector_form(differentiate(parse_loss(text, data=("x", "y")))) is None
