"""Each false statement the audit found, with the true one now asserted; the behaviour field of
the JSON trace; the catalogs: one template for both languages, the same keys, every key used."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from derive.app.cli import main
from derive.show.catalog import messages

PACKAGE = Path(__file__).resolve().parent.parent / "derive"


def lesson(tmp_path, *args, language="en", sections=None) -> str:
    out = tmp_path / "lesson"
    extra = ["--sections", sections] if sections else []
    assert main(["lesson", *args, *extra, "--lang", language, "--out", str(out)]) == 0
    return (out / f"lesson.{language}.md").read_text(encoding="utf-8")


def trace(derive_cli, *args) -> dict:
    result = derive_cli("descend", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def row(markdown: str, first_cell: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


# -- behaviour words -------------------------------------------------------------------------------


def test_momentum_on_the_parabola_overshoots_and_says_so(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", sections="optimizers")
    # by hand: w = 0, 5.13-ish, ... the heavy ball passes w = 3 and comes back
    w, buf, sides = 0.0, None, []
    for t in range(20):
        g = 2 * (w - 3)
        buf = g if t == 0 else 0.9 * buf + g
        w -= 0.1 * buf
        sides.append(w > 3)
    crossings = sum(a != b for a, b in zip([False, *sides], sides, strict=False))
    momentum = row(md, "momentum")[2]
    assert momentum.startswith("overshoots")
    assert f"crosses the minimum {crossings} times" in momentum
    assert "converges steadily" not in md


def test_the_same_shape_at_20_and_at_400_steps(derive_cli):
    for steps in ("20", "400"):
        assert (
            trace(derive_cli, "--loss", "(w-3)**2", "--lr", "0.75", "--steps", steps)["behaviour"][
                "shape"
            ]
            == "overshoots"
        )


@pytest.mark.parametrize(
    ("args", "shape"),
    [
        (("--loss", "(w-3)**2", "--lr", "0.1"), "monotone"),
        (("--loss", "(w-3)**2", "--lr", "0.1", "--momentum", "0.9"), "overshoots"),
        (("--loss", "x**2", "--init", "x=4", "--lr", "1.0"), "cycle"),
        (("--loss", "x**2", "--init", "x=4", "--lr", "1.1"), "diverges"),
        (("--loss", "x**2 - y**2", "--init", "x=0,y=0"), "stationary_start"),
    ],
)
def test_behaviour_shape_in_the_json_trace(derive_cli, args, shape):
    document = trace(derive_cli, *args)
    facts = document["behaviour"]
    assert facts["shape"] == shape
    # the documented fields, each with its type
    assert set(facts) >= {
        "shape",
        "converged",
        "crossings",
        "loss_increases",
        "final_distance",
        "minimiser",
        "unbounded_below",
    }
    losses = [s["loss"] for s in document["steps"]]
    rises = sum(b > a for a, b in itertools.pairwise(losses))
    assert facts["loss_increases"] == rises
    if shape == "cycle":
        assert facts["period"] == 2 and not facts["converged"]
        params = [s["params"]["x"] for s in document["steps"]]
        assert params[-1] == params[-3] == -params[-2] == 4.0


def test_unbounded_below_in_the_json_trace(derive_cli):
    facts = trace(derive_cli, "--loss", "x**2 - y**2", "--init", "x=1,y=0.5")["behaviour"]
    assert facts["unbounded_below"] and facts["minimiser"] is None


def test_the_quadratic_fit_below_its_threshold_is_monotone(derive_cli):
    """The seed course's quadratic fit: η = 0.014 < 1/λ_max, so it never crosses the minimum;
    the old label "oscillates" counted moves of 1e-17."""
    data = str(Path(__file__).resolve().parent.parent / "examples" / "seeds" / "quadratic.csv")
    document = trace(
        derive_cli, "--loss", "mean((a*x**2 + b*x + c - y)**2)", "--data", data, "--lr", "0.014"
    )
    x = np.loadtxt(data, delimiter=",", skiprows=1)[:, 0]
    features = np.stack([x**2, x, np.ones_like(x)], axis=1)
    largest = np.linalg.eigvalsh(2 * features.T @ features / len(x)).max()
    assert 1 / largest > 0.014
    assert document["behaviour"]["shape"] == "monotone"
    assert document["behaviour"]["crossings"] == 0


def test_adam_at_a_huge_rate_is_not_called_steady(tmp_path):
    md = lesson(tmp_path, "--loss", "x**2", "--init", "x=4", "--lr", "10", sections="optimizers")
    adam = row(md, "Adam")[2]
    assert not adam.startswith("monotone")
    x, m, v, sides = 4.0, 0.0, 0.0, []
    for t in range(1, 21):
        g = 2 * x
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        x -= 10 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)) ** 0.5 + 1e-8)
        sides.append(x > 0)
    crossings = sum(a != b for a, b in zip([True, *sides], sides, strict=False))
    assert f"crosses the minimum {crossings} times" in adam


# -- fixed sentences now chosen from facts ---------------------------------------------------------


def test_a_diverging_run_gets_no_downhill_sentence_and_no_falling_title(tmp_path):
    md = lesson(tmp_path, "--loss", "x**2", "--init", "x=4", "--lr", "1.1", "--steps", "5")
    # by hand: x multiplies by 1 − 2.2 = −1.2 each step, so the loss grows by 1.44 each step
    assert "The loss rose at 5 of the 5 steps." in md
    assert "moved downhill" not in md and "fell at every step" not in md
    assert "The loss at each step" in md  # the figure's alt text, not "the loss falls"
    assert "With $\\eta = 1.1$, above $2/\\lambda_{\\max} = 1$" in md


def test_figure_titles_follow_the_run():
    from derive.core.derivation import differentiate
    from derive.core.descend import Optimizer, descend
    from derive.core.experiments import run_experiments
    from derive.core.parse import parse_loss
    from derive.show.lesson import figure_words

    derivation = differentiate(parse_loss("x**2"))
    for lr, falls in ((0.1, True), (1.1, False)):
        main_run = descend(derivation, {"x": 4.0}, Optimizer.make("sgd", lr=lr), 20)
        experiments = run_experiments(derivation, main_run, {"x": 4.0}, {})
        words = figure_words("en", experiments, main_run)
        expected = "The loss falls at every step" if falls else "The loss at each step"
        assert words["main_loss_title"] == expected


def test_nesterov_diverging_is_not_called_the_one_that_overshoots_less(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--lr", "0.75", sections="optimizers")
    # by hand: Nesterov's step is −η(g + μ·buf) = −1.425·g the first time: |1 − 2·1.425| > 1
    assert row(md, "Nesterov momentum")[2].startswith("diverges")
    assert "Nesterov momentum diverged with this learning rate." in md
    assert "overshot less" not in md


def test_fewer_steps_than_the_comparison_runs_is_said(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--steps", "5", sections="rates")
    assert "for 20 steps (the lesson's own run took 5 steps)" in md


def test_one_step_is_singular(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--steps", "1", sections="update,table")
    assert "for 1 step." in md and "for 1 steps" not in md


# -- minima ----------------------------------------------------------------------------------------


def test_w_minus_log_w_in_diff_and_in_the_lesson(derive_cli, tmp_path):
    out = derive_cli("diff", "--loss", "w - log(w)").out
    assert "w = 1  (global minimum, L = 1)" in out
    assert out.count("(") - out.count("d/dw") >= 1 and "NaN" not in out
    md = lesson(tmp_path, "--loss", "w - log(w)", "--init", "w=2")
    assert "at $w = 1$: the global minimum" in md and "local minimum" not in md
    assert "Minima and saddle points" not in md  # one minimum: no starts, none outside w > 0


def test_diff_finds_the_origin_of_a_three_parameter_loss(derive_cli):
    out = derive_cli("diff", "--loss", "exp(x)+exp(-x)+y**2+z**2").out
    assert "x = 0, y = 0, z = 0  (global minimum, L = 2)" in out


@pytest.mark.parametrize(
    "loss",
    ["(1 - x)**2/(1 + x)**2", "x*sqrt(1 - x**2)", "-log(p**7*(1 - p)**3)"],
)
def test_losses_that_crashed_diff_now_print_their_minimum(derive_cli, loss):
    result = derive_cli("diff", "--loss", loss)
    assert result.code == 0 and "Traceback" not in result.err
    assert "(global minimum" in result.out


def test_abs_and_rosenbrock_have_their_minimum(tmp_path):
    md = lesson(tmp_path, "--loss", "abs(w-1)", sections="loss,rates")
    assert "at $w = 1$: the global minimum" in md
    assert "the minimum is a corner of the loss" in md  # no thresholds, for that reason
    md = lesson(
        tmp_path,
        "--loss",
        "(1-x)**2 + 100*(y-x**2)**2",
        "--init",
        "x=-1.5,y=2",
        "--lr",
        "0.001",
        sections="loss,rates",
    )
    assert "at $x = 1, y = 1$: the global minimum" in md
    assert "Near its minimum at $x = 1, y = 1$" in md  # local thresholds from H(1, 1)
    # H(1, 1) = [[802, −400], [−400, 200]]: λ_max by hand
    largest = np.linalg.eigvalsh(np.array([[802.0, -400.0], [-400.0, 200.0]])).max()
    assert f"\\lambda_{{\\max}} = {largest:.6g}" in md


def test_exp_minus_w_has_no_threshold_and_no_minimum(tmp_path):
    md = lesson(tmp_path, "--loss", "exp(-w)", "--lr", "0.5", sections="loss,rates")
    assert "This loss has no minimum: it comes arbitrarily close to $L = 0$" in md
    assert "1/L''" not in md and "near the minimum" not in md.lower()


def test_separable_logistic_data_is_not_said_to_run_off_to_minus_infinity(tmp_path):
    loss = "mean(-(y*log(sigmoid(w*x+b)) + (1-y)*log(1-sigmoid(w*x+b))))"
    md = lesson(
        tmp_path,
        "--loss",
        loss,
        "--data",
        "x=-2,-1,1,3; y=0,0,1,1",
        "--lr",
        "0.5",
        sections="loss,table",
    )
    assert "−∞" not in md and "-\\infty" not in md
    assert "it comes arbitrarily close to $L = 0$" in md
    assert "approaching $L = 0$ without reaching it" in md


def test_the_saddle_from_its_own_point_and_from_beside(tmp_path):
    md = lesson(tmp_path, "--loss", "x**2 - y**2", "--init", "x=0,y=0", sections="table")
    assert "The gradient is exactly $0$ at the start, $x = 0, y = 0$ (a saddle point)" in md
    md = lesson(tmp_path, "--loss", "x**2 - y**2", "--init", "x=1,y=0.5", sections="table,loss")
    x, y = 1.0, 0.5
    for _ in range(20):
        x, y = x - 0.1 * 2 * x, y + 0.1 * 2 * y
    assert f"to $L = {x * x - y * y:.6g}$, while the parameters ran off" in md
    assert "converges slowly" not in md and "it falls without bound" in md


# -- notation ------------------------------------------------------------------------------------


def test_notation_is_unambiguous(tmp_path):
    md = lesson(tmp_path, "--loss", "(w-3)**2", "--steps", "5000")
    assert "L'(" in md and "L'(w) =" not in md  # L' is the derivative; the variant is L̃
    assert r"\tilde{L}(w) = " in md
    assert "Hessian" not in md  # one parameter: the second derivative
    assert ":=" not in md and r"w \leftarrow w - \eta" in md
    # after 5000 steps w is 3 to the last bit but one: the loss is rounding, printed 0
    w = 0.0
    for _ in range(5000):
        w -= 0.1 * 2 * (w - 3)
    assert (abs(w - 3) < 1e-15 and 0 < (w - 3) ** 2 < 1e-30) or w == 3
    assert "after 5000 steps: $w = 3$, $L = 0$" in md


def test_the_fitted_model_is_rounded_as_the_text(tmp_path):
    md = lesson(
        tmp_path,
        "--loss",
        "mean((w*x + b - y)**2)",
        "--data",
        "x=1,2,3,4,5; y=2.2,2.9,4.1,5.2,5.8",
        "--steps",
        "7",
        sections="descent",
    )
    point = re.search(r"at \$w = ([-0-9.]+), b = ([-0-9.]+)\$", md)
    model = re.search(r"the model is \$(.+?)\$", md).group(1)
    assert point.group(1) in model and point.group(2).lstrip("-") in model


def test_small_numbers_are_typeset_as_powers_of_ten():
    from derive.show.lesson import tex_number, text_number

    assert tex_number(1e-5) == "10^{-5}" and text_number(1e-5) == "10⁻⁵"
    assert tex_number(2.5e-7) == r"2.5 \times 10^{-7}" and text_number(-2.5e-7) == "−2.5×10⁻⁷"


# -- the catalogs ----------------------------------------------------------------------------------


def flat(table: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_both_catalogs_have_the_same_keys_and_placeholders():
    zh, en = flat(messages("zh")), flat(messages("en"))
    assert sorted(zh) == sorted(en)
    for key in en:
        if isinstance(en[key], str):
            # {name} fields, not LaTeX groups such as \text{node} or x_{i}
            names = lambda text: sorted(set(re.findall(r"(?<![A-Za-z0-9\\^_{])\{(\w+)\}", text)))  # noqa: E731
            assert names(en[key]) == names(zh[key]), key


def test_one_lesson_template_for_both_languages():
    templates = PACKAGE / "show" / "templates"
    assert (templates / "lesson.md.j2").exists()
    assert not list(templates.glob("*/lesson.md.j2"))


def test_every_lesson_key_is_used():
    """Each sentence of the lesson catalog is named in the code (whole, or as a family chosen
    by a value: `names.{...}`, `rates.yours_below_local`, `..._one`/`..._many`)."""
    # the show layer names the keys; labels and kinds that choose one come from the core
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    source += (PACKAGE / "show" / "templates" / "lesson.md.j2").read_text(encoding="utf-8")
    # keys chosen by a value: f"table.hazard_{kind}", f"names.{name}"
    families = set(re.findall(r"f[\"']([a-z_]+\.[a-z_.]*)\{", source))
    unused = []
    for key in flat(messages("en")["lesson"]):
        parent, _, leaf = key.rpartition(".")
        stem = re.sub(r"_(one|many|local)$", "", key)
        if parent == "figures":  # the whole table goes to the figures
            continue
        named = key in source or stem in source
        # f"table.hazard_{kind}": a family; f"rates.{k}" for k in ("rate", ...): the leaf is named
        family = any(key.startswith(f) for f in families if not f.endswith("."))
        listed = f"{parent}." in families and (
            f'"{leaf}"' in source or f'"{stem.rpartition(".")[2]}"' in source
        )
        if not (named or family or listed):
            unused.append(key)
    assert unused == []
