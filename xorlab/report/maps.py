"""Maps over two continuous axes at full resolution: one image cell per grid point, no binning.

Each map is an image whose cells are the grid's points (``xorlab.analysis.maps.point_maps``); the axes carry the
grid's own scale (log10 positions for a ``logspace`` axis). The figure is sized so that every grid point gets at
least one pixel in the PNG, and the image is drawn with ``interpolation="nearest"`` so no point is blended with its
neighbours; in the SVG the image is embedded as one raster, never as a million vector cells.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from xorlab.analysis.maps import MapAxis
from xorlab.analysis.stats import MODE_NAMES
from xorlab.report.figures import DPI, _styled
from xorlab.report.mode_figures import MODE_COLOURS

AXIS_TEXT = {
    "lr": "learning rate",
    "init_std": "init std",
    "init_gain": "init gain",
    "init_a": "init a",
    "loss_threshold": "loss threshold",
    "lr_hidden": "hidden-layer learning rate",
    "lr_output": "output-layer learning rate",
}
MIN_INCHES = 5.0


def _extent(axis: MapAxis) -> tuple[float, float]:
    """Cell edges of the first and last point, in plot units (log10 of the value on a log axis)."""
    v = np.log10(axis.values) if axis.scale == "log" else axis.values
    half = (v[-1] - v[0]) / (2 * (v.size - 1))
    return float(v[0] - half), float(v[-1] + half)


def _label(axis: MapAxis) -> str:
    return f"{AXIS_TEXT.get(axis.name, axis.name)} ({'log scale' if axis.scale == 'log' else 'linear'})"


def _log_ticks(ax, which: str, lo: float, hi: float) -> None:
    """Ticks at values 1, 2, 5 x 10^k (or finer/coarser as the span needs) on a log10-position axis."""
    span = hi - lo
    if span >= 1:
        exps = np.arange(math.floor(lo), math.floor(hi) + 1)
        ticks = [e + math.log10(m) for e in exps for m in (1, 2, 5) if lo <= e + math.log10(m) <= hi]
    else:
        ticks = list(np.linspace(lo, hi, 5)[1:-1])
    labels = [f"{10**t:.4g}" for t in ticks]
    (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, labels)


def _frame(axes: tuple[MapAxis, MapAxis], title: str) -> tuple[Figure, Axes, tuple[float, float, float, float]]:
    ax_x, ax_y = axes
    nx, ny = ax_x.values.size, ax_y.values.size
    w = max(MIN_INCHES, nx / DPI)  # at least one pixel per grid point
    h = max(MIN_INCHES, ny / DPI)
    margin_l, margin_r, margin_b, margin_t = 1.1, 2.2, 0.8, 0.7
    fig = Figure(figsize=(w + margin_l + margin_r, h + margin_b + margin_t), dpi=DPI)
    ax = fig.add_axes(
        (
            margin_l / (w + margin_l + margin_r),
            margin_b / (h + margin_b + margin_t),
            w / (w + margin_l + margin_r),
            h / (h + margin_b + margin_t),
        )
    )
    x0, x1 = _extent(ax_x)
    y0, y1 = _extent(ax_y)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(_label(ax_x))
    ax.set_ylabel(_label(ax_y))
    for which, axis, lo, hi in (("x", ax_x, x0, x1), ("y", ax_y, y0, y1)):
        if axis.scale == "log":
            _log_ticks(ax, which, lo, hi)
    ax.grid(False)
    ax.set_title(title, fontsize=10, loc="left")
    return fig, ax, (x0, x1, y0, y1)


@_styled
def mode_map(modes: np.ndarray, axes: tuple[MapAxis, MapAxis], caption: str = "") -> Figure:
    """The most common failure mode per grid point (categorical colours, legend with the share of points)."""
    fig, ax, extent = _frame(axes, f"Failure mode per grid point (the most common over its runs){caption}")
    present = [m for i, m in enumerate(MODE_NAMES) if (modes == i).any()]
    colours = [MODE_COLOURS.get(m, "#949494") for m in MODE_NAMES] + ["#ffffff"]
    cmap = ListedColormap(colours)
    image = np.where(modes < 0, len(MODE_NAMES), modes)
    norm = BoundaryNorm(np.arange(len(colours) + 1) - 0.5, len(colours))
    ax.imshow(image, origin="lower", extent=extent, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    total = modes.size
    handles = [
        Patch(
            facecolor=MODE_COLOURS.get(m, "#949494"),
            edgecolor="0.4",
            lw=0.4,
            label=f"{m} ({(modes == MODE_NAMES.index(m)).sum() / total:.1%})",
        )
        for m in present
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return fig


@_styled
def solved_map(rate: np.ndarray, axes: tuple[MapAxis, MapAxis], caption: str = "") -> Figure:
    """Fraction of each grid point's runs solved at the end (0 = none, 1 = all)."""
    fig, ax, extent = _frame(axes, f"Fraction of runs solved per grid point{caption}")
    im = ax.imshow(
        rate, origin="lower", extent=extent, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
    )
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="fraction solved")
    return fig


@_styled
def steps_map(steps: np.ndarray, axes: tuple[MapAxis, MapAxis], caption: str = "") -> Figure:
    """Steps by which half a grid point's runs had first solved, log colour; grey where fewer than half did."""
    fig, ax, extent = _frame(
        axes, f"Steps to first solve per grid point (median over its runs; grey: not reached){caption}"
    )
    finite = steps[np.isfinite(steps)]
    lo = max(1.0, float(finite.min())) if finite.size else 1.0
    hi = max(lo * 10, float(finite.max())) if finite.size else 10.0
    cmap = mpl.colormaps["magma_r"].copy()
    cmap.set_bad("#bdbdbd")
    im = ax.imshow(
        np.ma.masked_invalid(np.maximum(steps, lo)),
        origin="lower",
        extent=extent,
        aspect="auto",
        cmap=cmap,
        norm=LogNorm(lo, hi),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="steps to first solve (log scale)")
    return fig


#: stem -> caption of the map figures, drawn instead of the per-group figures when two axes are continuous
MAP_FIGURES = {
    "map_modes": "The failure mode of each grid point (the most common over its runs){budget}; one image cell per "
    "grid point, axes on the grid's own scale.",
    "map_solved": "Fraction of each grid point's runs solved at the end{budget}.",
    "map_steps": "Steps to first solve per grid point (the step by which half its runs had solved; grey: fewer "
    "than half ever did){budget}, log colour scale.",
}


def draw_maps(runs, axes: tuple[MapAxis, MapAxis], figure_dir, budget: str, save, advance=None) -> None:  # noqa: ANN001
    """Compute the per-point maps of ``runs`` over ``axes`` and save the three ``MAP_FIGURES`` with ``save``."""
    from xorlab.analysis.maps import point_maps

    m = point_maps(runs, axes)
    for stem, make in (
        ("map_modes", lambda: mode_map(m["mode"], axes, budget)),
        ("map_solved", lambda: solved_map(m["solved_rate"], axes, budget)),
        ("map_steps", lambda: steps_map(m["steps_median"], axes, budget)),
    ):
        save(make(), figure_dir, stem)
        if advance is not None:
            advance()
