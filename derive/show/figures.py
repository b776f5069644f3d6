"""Figures of a lesson, all drawn from its runs: the loss, the steps on it, the loss falling,
learning rates, optimizers, batch sizes, starts, and the model fitted to the data.

One colour-blind-safe style (Okabe–Ito), a CJK font for Chinese words, and fixed metadata so
that the same run gives byte-identical files. Words come from the catalog (`words`).
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from derive.core.grid import loss_function, predictor
from derive.show.printing import to_latex

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": False,
    "font.size": 10.5,
    "legend.fontsize": 9,
    "svg.hashsalt": "derive",
    "svg.fonttype": "path",
}

Loss = Callable[..., np.ndarray]  # L at arrays of parameter values


# Families that draw Simplified Chinese, in order of preference, wherever they are installed
# (Debian's fonts-wqy-microhei is the default set-up; macOS, Windows and conda have others).
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
    "Heiti SC",
    "Arial Unicode MS",
)


class MissingFontWarning(UserWarning):
    """No font for Chinese is installed: Chinese figure labels would be empty boxes."""


@functools.cache
def cjk_font() -> str | None:
    """The family of an installed CJK font: the Debian files first, then matplotlib's font
    manager by family name. None (with one warning) when there is none."""
    for path in CJK_FONTS:
        if path.exists():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    installed = {font.name for font in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    warnings.warn(
        "no font for Chinese is installed, so Chinese words in figures will show as boxes; "
        "install one (Debian: fonts-wqy-microhei; or Noto Sans CJK SC), or use --lang en",
        MissingFontWarning,
        stacklevel=2,
    )
    return None


def styled(language: str):
    """The house style, with a CJK font for Chinese words."""
    rc = dict(STYLE)
    family = cjk_font() if language == "zh" else None
    rc["font.sans-serif"] = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
    return matplotlib.style.context(rc)


# -- drawing helpers --------------------------------------------------------------------------


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure of its own, drawn by Agg: pyplot's state and the user's backend untouched."""
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _subplots(rows: int = 1, columns: int = 1, *, figsize, squeeze: bool = True):
    fig = _figure(figsize)
    return fig, fig.subplots(rows, columns, squeeze=squeeze)


def _span(values: np.ndarray, pad_fraction: float = 0.25) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    pad = max(pad_fraction * (high - low), 0.1 * max(abs(low), abs(high)), 1.0)
    return low - pad, high + pad


def _landscape(ax, loss: Loss, paths: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """The loss as a curve (one parameter) or as contour lines (two), framing all paths."""
    every = np.concatenate(
        [p[np.all(np.isfinite(p), axis=1) & np.all(np.abs(p) < 1e6, axis=1)] for p in paths]
    )
    if len(names) == 1:
        grid = np.linspace(*_span(every[:, 0]), 400)
        with np.errstate(all="ignore"):
            ax.plot(
                grid, np.broadcast_to(loss(grid), grid.shape), color=OKABE_ITO[0], lw=2, zorder=1
            )
        ax.set_xlabel(names[0])
        ax.set_ylabel(f"L({names[0]})")
        return
    (x0, x1), (y0, y1) = _span(every[:, 0]), _span(every[:, 1])
    gx, gy = np.meshgrid(np.linspace(x0, x1, 240), np.linspace(y0, y1, 240))
    with np.errstate(all="ignore"):
        gz = np.broadcast_to(loss(gx, gy), gx.shape)
    finite = gz[np.isfinite(gz)]
    if finite.size:
        levels = np.unique(np.quantile(finite, np.linspace(0.02, 0.98, 14)))
        if len(levels) > 1:
            lines = ax.contour(gx, gy, gz, levels=levels, cmap="viridis", linewidths=0.9, zorder=1)
            ax.clabel(lines, fontsize=7, fmt="%.3g")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])


def _path(ax, loss: Loss, path: np.ndarray, color: str, label: str | None, arrows: bool) -> None:
    """A run drawn on the landscape: points joined (with arrows when few), start and end marked."""
    path = path[np.all(np.isfinite(path), axis=1) & np.all(np.abs(path) < 1e6, axis=1)]
    if not len(path):
        return
    shown = _thinned(len(path))
    if path.shape[1] == 1:
        with np.errstate(all="ignore"):
            xs, ys = path[shown, 0], np.broadcast_to(loss(path[shown, 0]), (len(shown),))
    else:
        xs, ys = path[shown, 0], path[shown, 1]
    if arrows and len(shown) <= 25:
        # one collection of arrows: an annotation per step costs a tenth of a second a figure
        ax.quiver(
            xs[:-1],
            ys[:-1],
            np.diff(xs),
            np.diff(ys),
            angles="xy",
            scale_units="xy",
            scale=1,
            color=color,
            width=0.006,
            headwidth=4,
            headlength=5,
            headaxislength=4.5,
            zorder=3,
        )
        ax.plot(xs, ys, "o", color=color, ms=3.5, zorder=3, label=label)
    else:
        ax.plot(xs, ys, "-o", color=color, ms=2.5, lw=1.2, zorder=3, label=label)
    ax.plot(xs[0], ys[0], "s", color=color, ms=8, zorder=4)
    ax.plot(
        xs[-1],
        ys[-1],
        "*",
        color=color,
        ms=13,
        zorder=4,
        markeredgecolor="white",
        markeredgewidth=0.5,
    )


def _thinned(count: int, most: int = 60) -> list[int]:
    """Indices of at most `most` iterates to draw, always the first and the last."""
    if count <= most:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, most).round().astype(int).tolist()))


def _margins(fig: Figure, **adjust: float) -> Figure:
    """Fixed margins: one draw per figure (automatic layouts draw twice, and cost half the
    lesson's build time)."""
    fig.subplots_adjust(**({"left": 0.12, "right": 0.97, "bottom": 0.15, "top": 0.9} | adjust))
    return fig


def _loss_axes(
    ax, curves: Sequence[tuple[np.ndarray, np.ndarray, str, str]], xlabel: str, ylabel: str
) -> None:
    """Loss curves (x, L, colour, label); a log scale when they span more than two decades."""
    positive = np.concatenate([c[1][np.isfinite(c[1])] for c in curves])
    for x, values, color, label in curves:
        ax.plot(x[: len(values)], values, "-", color=color, lw=1.6, label=label)
    if positive.size and positive.min() > 0 and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


# -- the figures ----------------------------------------------------------------------------


def graph(loss: Loss, path: np.ndarray, names: Sequence[str], words: Mapping[str, str]) -> Figure:
    """The loss itself: a curve, or contour lines beside a 3-D surface."""
    if len(names) == 1:
        fig, ax = _subplots(figsize=(6.4, 3.8))
        _landscape(ax, loss, [path], names)
        ax.set_title(words["graph_title"])
        return _margins(fig)
    fig = _figure(figsize=(10, 4.2))
    ax = fig.add_subplot(1, 2, 1)
    _landscape(ax, loss, [path], names)
    ax.set_title(words["contour_title"])
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    (x0, x1), (y0, y1) = _span(path[:, 0]), _span(path[:, 1])
    gx, gy = np.meshgrid(np.linspace(x0, x1, 60), np.linspace(y0, y1, 60))
    with np.errstate(all="ignore"):
        gz = np.broadcast_to(loss(gx, gy), gx.shape)
    ax3.plot_surface(gx, gy, gz, cmap="viridis", alpha=0.85, linewidth=0, antialiased=True)
    with np.errstate(all="ignore"):
        heights = np.broadcast_to(loss(path[:, 0], path[:, 1]), (len(path),))
    ax3.plot(path[:, 0], path[:, 1], heights, "-o", color=OKABE_ITO[1], ms=2.5, lw=1.4, zorder=5)
    ax3.set_xlabel(names[0])
    ax3.set_ylabel(names[1])
    ax3.set_zlabel("L")
    ax3.set_title(words["surface_title"])
    ax3.view_init(elev=32, azim=-58)
    return _margins(fig, left=0.06, right=0.96, bottom=0.13, top=0.9, wspace=0.15)


def descent(loss: Loss, path: np.ndarray, names: Sequence[str], words: Mapping[str, str]) -> Figure:
    """The steps of the main run on the loss: arrows from the start (■) to the end (★)."""
    fig, ax = _subplots(figsize=(6.4, 4.4 if len(names) == 2 else 3.8))
    _landscape(ax, loss, [path], names)
    _path(ax, loss, path, OKABE_ITO[1], None, arrows=True)
    ax.plot([], [], "s", color="0.3", label=words["start"])
    ax.plot([], [], "*", color="0.3", ms=11, label=words["end"])
    ax.legend(loc="best")
    ax.set_title(words["descent_title"])
    return _margins(fig)


def loss_curve(losses: np.ndarray, words: Mapping[str, str]) -> Figure:
    fig, ax = _subplots(figsize=(6.4, 3.2))
    _loss_axes(
        ax,
        [(np.arange(len(losses)), losses, OKABE_ITO[0], None)],
        words["iteration"],
        words["loss"],
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(words["main_loss_title"])
    return _margins(fig)


def parameters(params: np.ndarray, names: Sequence[str], words: Mapping[str, str]) -> Figure:
    """Each parameter against the iteration: how they settle."""
    fig, ax = _subplots(figsize=(6.4, 3.2))
    t = np.arange(len(params))
    for k, name in enumerate(names):
        ax.plot(t, params[:, k], "-", lw=1.8, color=OKABE_ITO[k % len(OKABE_ITO)], label=name)
    ax.set_xlabel(words["iteration"])
    ax.set_ylabel(words["value"])
    ax.legend(loc="best")
    ax.set_title(words["main_params_title"])
    return _margins(fig)


def rate_panels(
    loss: Loss, runs, names: Sequence[str], labels: Sequence[str], words: Mapping[str, str]
) -> Figure:
    """One panel a learning rate, side by side: the same start, the same number of steps."""
    fig, axes = _subplots(1, len(runs), figsize=(3.2 * len(runs), 3.3), squeeze=False)
    panels = zip(runs, OKABE_ITO[1:], labels, strict=False)
    for ax, (run, color, label) in zip(axes[0], panels, strict=True):
        if len(names) <= 2:
            _landscape(ax, loss, [run.trace.params], names)
            _path(ax, loss, run.trace.params, color, None, arrows=True)
        else:
            _loss_axes(
                ax,
                [(np.arange(len(run.trace.loss)), run.trace.loss, color, None)],
                words["iteration"],
                words["loss"],
            )
        eta = run.trace.optimizer.options["lr"]
        ax.set_title(f"η = {eta:g}\n{label}", fontsize=10)
    return _margins(fig, left=0.06, right=0.99, bottom=0.16, top=0.8, wspace=0.32)


def compare(
    loss: Loss, runs, names: Sequence[str], labels: Sequence[str], words: Mapping[str, str]
) -> Figure:
    """Several runs from one start: their paths (one or two parameters) and their loss curves."""
    paths = len(names) <= 2
    fig, axes = _subplots(
        1,
        2 if paths else 1,
        figsize=(11 if paths else 6.4, 3.9),
        squeeze=False,
    )
    colors = OKABE_ITO[1:]
    if paths:
        ax = axes[0][0]
        _landscape(
            ax,
            loss,
            [r.trace.params for r in runs if r.behaviour.shape != "diverges"]
            or [runs[0].trace.params[:1]],
            names,
        )
        for run, color, label in zip(runs, colors, labels, strict=False):
            _path(ax, loss, run.trace.params, color, label, arrows=False)
        ax.legend(loc="best")
        ax.set_title(words["paths_title"])
    ax = axes[0][-1]
    curves = [
        (np.arange(len(r.trace.loss)), r.trace.loss, c, lab)
        for r, c, lab in zip(runs, colors, labels, strict=False)
    ]
    _loss_axes(ax, curves, words["iteration"], words["loss"])
    ax.legend(loc="best")
    ax.set_title(words["loss_title"])
    return _margins(fig, left=0.07, right=0.98, bottom=0.13, top=0.91, wspace=0.2)


def batches(runs, labels: Sequence[str], rows: int, words: Mapping[str, str]) -> Figure:
    """The full-data loss against epochs for full-batch, stochastic and mini-batch descent."""
    fig, ax = _subplots(figsize=(6.4, 3.6))
    curves = []
    for run, color, label in zip(runs, OKABE_ITO[1:], labels, strict=False):
        per_epoch = -(-rows // run.trace.batch_size) if run.trace.batch_size else 1
        curves.append((np.arange(len(run.trace.loss)) / per_epoch, run.trace.loss, color, label))
    _loss_axes(ax, curves, words["epoch"], words["loss"])
    ax.legend(loc="best")
    ax.set_title(words["batch_title"])
    return _margins(fig)


def fit(
    model,
    data: Mapping[str, np.ndarray],
    predict: Callable[..., np.ndarray],
    words: Mapping[str, str],
) -> Figure:
    """The data and what the final parameters make of it: a line (or curve), or a boundary."""
    fig, ax = _subplots(figsize=(6.4, 3.9))
    target = data[model.target]
    if len(model.inputs) == 1:
        x = data[model.inputs[0]]
        grid = np.linspace(*_span(x, 0.05), 300)
        ax.scatter(x, target, s=18, color=OKABE_ITO[0], alpha=0.7, label=words["data"])
        ax.plot(grid, predict(grid), color=OKABE_ITO[1], lw=2, label=words["model_" + model.kind])
        ax.set_xlabel(model.inputs[0])
        ax.set_ylabel(model.target)
    else:
        x1, x2 = (data[name] for name in model.inputs)
        for value, color in ((0, OKABE_ITO[0]), (1, OKABE_ITO[1])):
            chosen = target == value
            ax.scatter(x1[chosen], x2[chosen], s=18, color=color, label=f"{model.target} = {value}")
        gx, gy = np.meshgrid(np.linspace(*_span(x1, 0.05), 200), np.linspace(*_span(x2, 0.05), 200))
        ax.contour(gx, gy, predict(gx, gy), levels=[0.5], colors=[OKABE_ITO[2]], linewidths=2)
        ax.plot([], [], color=OKABE_ITO[2], lw=2, label=words["boundary"])
        ax.set_xlabel(model.inputs[0])
        ax.set_ylabel(model.inputs[1])
    ax.legend(loc="best")
    ax.set_title(words["fit_title"])
    return _margins(fig)


def starts(
    loss: Loss, runs, names: Sequence[str], labels: Sequence[str], words: Mapping[str, str]
) -> Figure:
    """Runs from different starts: which minimum each reaches, or how it leaves a saddle.

    Framed on the starts and the points reached: a run that escapes leaves the frame.
    """
    fig, ax = _subplots(figsize=(6.4, 4.2))
    ends = [r.trace.params[-1:] for r in runs if r.reached is not None]
    frame = [r.trace.params[:1] for r in runs] + ends
    _landscape(ax, loss, frame, names)
    limits = ax.get_xlim(), ax.get_ylim()
    for run, color, label in zip(runs, OKABE_ITO[1:], labels, strict=False):
        _path(ax, loss, run.trace.params, color, label, arrows=False)
    if len(names) == 1:
        inside = [
            p[(p[:, 0] >= limits[0][0]) & (p[:, 0] <= limits[0][1]), 0]
            for p in (r.trace.params for r in runs)
        ]
        with np.errstate(all="ignore"):
            heights = np.concatenate([np.broadcast_to(loss(x), x.shape) for x in inside])
        ax.set_xlim(*limits[0])
        ax.set_ylim(*_span(heights, 0.1))
    else:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    ax.legend(loc="best")
    ax.set_title(words["starts_title"])
    return _margins(fig)


def schedule(trace, constant, words: Mapping[str, str]) -> Figure:
    """The rate of each update, and the loss of the scheduled run beside the constant one."""
    fig, axes = _subplots(1, 2, figsize=(11, 3.6), squeeze=False)
    left, right = axes[0]
    steps = np.arange(len(trace.lr))
    left.step(steps, trace.lr, where="post", color=OKABE_ITO[1], lw=1.8)
    left.set_xlabel(words["iteration"])
    left.set_ylabel("η")
    left.set_title(words["schedule_rate_title"])
    curves = [
        (np.arange(len(trace.loss)), trace.loss, OKABE_ITO[1], words["scheduled"]),
        (np.arange(len(constant.loss)), constant.loss, OKABE_ITO[0], words["constant"]),
    ]
    _loss_axes(right, curves, words["iteration"], words["loss"])
    right.legend(loc="best")
    right.set_title(words["schedule_loss_title"])
    return _margins(fig, left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.25)


def render(
    figures: Mapping[str, Figure], folder: Path, formats: tuple[str, ...], language: str
) -> None:
    """Write each figure in each format, with no date or version in it (byte-identical rebuilds).

    Fonts are looked up when drawing, so this runs in the language's style, as creation did.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with styled(language):
        for name, fig in figures.items():
            for extension in formats:
                metadata = (
                    {"Software": None} if extension == "png" else {"Date": None, "Creator": None}
                )
                buffer = io.BytesIO()
                fig.savefig(buffer, format=extension, metadata=metadata)
                (folder / f"{name}.{extension}").write_bytes(buffer.getvalue())


def lesson_figures(derivation, trace, experiments, words, data, sections) -> dict:
    """The figures of a lesson, by name (not yet written). `words` holds the figure words of
    the lesson's language, titles already chosen from the runs' facts, and labels."""
    names = tuple(f"${to_latex(s)}$" for s in derivation.loss.symbols)  # matplotlib mathtext
    loss = loss_function(derivation, data)
    path = trace.params
    out = {}
    if len(names) <= 2 and "loss" in sections:
        out["graph"] = graph(loss, path, names, words)
    if "descent" in sections:
        if len(names) <= 2:
            out["descent"] = descent(loss, path, names, words)
        out["loss"] = loss_curve(trace.loss, words)
        out["params"] = parameters(trace.params, names, words)
        model = experiments.model
        if model is not None:
            predict = predictor(model, trace.param_names, trace.params[-1])
            if np.all(np.isfinite(trace.params[-1])):
                out["fit"] = fit(model, data, predict, words)
    if "schedule" in sections and experiments.constant is not None:
        out["schedule"] = schedule(trace, experiments.constant.trace, words)
    if "rates" in sections and experiments.rates:
        out["rates"] = rate_panels(loss, experiments.rates, names, words["rate_labels"], words)
    if "batch" in sections and experiments.batches:
        out["batch"] = batches(experiments.batches, words["batch_labels"], experiments.rows, words)
    if "optimizers" in sections and experiments.optimizers:
        out["optimizers"] = compare(
            loss, experiments.optimizers, names, words["optimizer_labels"], words
        )
    if "landscape" in sections and experiments.starts:
        labels = [
            ", ".join(f"{n} = {v:g}" for n, v in zip(names, s.start, strict=True))
            for s in experiments.starts
        ]
        out["starts"] = starts(loss, experiments.starts, names, labels, words)
    return out
