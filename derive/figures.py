"""Figures of a run: the loss with the steps drawn on it, and the loss along the steps.

One colour-blind-safe style (Okabe–Ito), a CJK font for Chinese labels, and fixed metadata so
that the same run gives byte-identical files.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
CJK_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
)
STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": False,
    "font.size": 11,
    "svg.hashsalt": "derive",
    "svg.fonttype": "path",
}


@dataclass(frozen=True)
class Labels:
    """The words on a figure, in the lesson's language (from its message catalog)."""

    start: str
    end: str
    iteration: str
    loss: str
    curve_title: str
    loss_title: str
    graph_title: str


def cjk_font() -> str | None:
    """Register the first installed CJK font and return its family name."""
    for path in CJK_FONTS:
        if path.exists():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    return None


def styled(language: str):
    """The house style, with a CJK font for Chinese labels."""
    rc = dict(STYLE)
    family = cjk_font() if language == "zh" else None
    rc["font.sans-serif"] = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
    return plt.style.context(rc)


def curve_with_steps(
    loss: Callable[[np.ndarray], np.ndarray],
    path: np.ndarray,
    name: str,
    labels: Labels,
    steps: bool = True,
) -> plt.Figure:
    """One parameter: the loss curve and, when `steps`, the iterates on it with arrows."""
    xs = path[:, 0]
    ys = loss(xs)
    low, high = _span(xs)
    grid = np.linspace(low, high, 400)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(grid, loss(grid), color=OKABE_ITO[0], lw=2, label=f"L({name})")
    ax.set_xlabel(name)
    ax.set_ylabel(labels.loss)
    if not steps:
        ax.set_title(labels.graph_title)
        return fig
    shown = _thinned(len(xs))
    for a, b in itertools.pairwise(shown):
        ax.annotate(
            "",
            xy=(xs[b], ys[b]),
            xytext=(xs[a], ys[a]),
            arrowprops={"arrowstyle": "->", "color": OKABE_ITO[1], "lw": 1.3},
        )
    ax.plot(xs[shown], ys[shown], "o", color=OKABE_ITO[1], ms=4, alpha=0.8)
    ax.plot(xs[0], ys[0], "s", color=OKABE_ITO[1], ms=9, label=labels.start)
    ax.plot(xs[-1], ys[-1], "*", color=OKABE_ITO[2], ms=15, label=labels.end)
    ax.set_title(labels.curve_title)
    ax.legend(loc="best")
    return fig


def contour_with_steps(
    loss: Callable[[np.ndarray, np.ndarray], np.ndarray],
    path: np.ndarray,
    names: tuple[str, str],
    labels: Labels,
) -> plt.Figure:
    """Two parameters: contour lines of the loss and the trajectory across them."""
    (x0, x1), (y0, y1) = _span(path[:, 0]), _span(path[:, 1])
    gx, gy = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    with np.errstate(all="ignore"):
        gz = np.broadcast_to(loss(gx, gy), gx.shape)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    finite = gz[np.isfinite(gz)]
    levels = _levels(finite) if finite.size else 10
    contour = ax.contour(gx, gy, gz, levels=levels, cmap="viridis", linewidths=1)
    ax.clabel(contour, fontsize=8, fmt="%.3g")
    shown = _thinned(len(path))
    ax.plot(path[shown, 0], path[shown, 1], "-o", color=OKABE_ITO[1], ms=3.5, lw=1.3)
    ax.plot(*path[0], "s", color=OKABE_ITO[1], ms=9, label=labels.start)
    ax.plot(*path[-1], "*", color=OKABE_ITO[2], ms=15, label=labels.end)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(labels.curve_title)
    ax.legend(loc="best")
    return fig


def loss_curve(losses: np.ndarray, labels: Labels) -> plt.Figure:
    """Loss against iteration; a log scale when it spans more than two decades."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    t = np.arange(len(losses))
    ax.plot(t, losses, "-o", ms=3, color=OKABE_ITO[0])
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size == len(losses) and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel(labels.iteration)
    ax.set_ylabel(labels.loss)
    ax.set_title(labels.loss_title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _span(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    low, high = float(finite.min()), float(finite.max())
    pad = max(0.25 * (high - low), 0.5 * max(abs(low), abs(high)) * 0.2, 1.0)
    return low - pad, high + pad


def _levels(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.array([low])
    return np.unique(np.quantile(values, np.linspace(0.02, 0.98, 14)))


def _thinned(count: int, most: int = 40) -> list[int]:
    """Indices of at most `most` iterates to draw, always the first and the last."""
    if count <= most:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, most).round().astype(int).tolist()))


def render(
    figures: Mapping[str, plt.Figure], folder: Path, formats: tuple[str, ...], language: str
) -> None:
    """Write each figure in each format, with no date or version in it (byte-identical rebuilds).

    Fonts are looked up when drawing, so this runs in the language's style, as creation did.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with styled(language):
        _render(figures, folder, formats)


def _render(figures: Mapping[str, plt.Figure], folder: Path, formats: tuple[str, ...]) -> None:
    for name, fig in figures.items():
        for extension in formats:
            metadata = {"Software": None} if extension == "png" else {"Date": None, "Creator": None}
            buffer = io.BytesIO()
            fig.savefig(buffer, format=extension, metadata=metadata, bbox_inches="tight")
            (folder / f"{name}.{extension}").write_bytes(buffer.getvalue())
        plt.close(fig)
