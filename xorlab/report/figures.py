"""Figures of a sweep: one small function per figure, each taking a tidy (mostly pre-aggregated) frame.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing needs a display and no
global figure state leaks; ``save`` writes it as PNG and SVG with no timestamps, byte-identical across runs.
Colours: one fixed colour per init (``init_palette``), distinct for up to 12 inits, the reference init drawn
last, near-black and thicker. Step axes become symlog when the first solves happen early (``early_steps``);
y-limits come from the data, so no curve leaves the frame.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from xorlab.core.order import label_parts, ordered
from xorlab.core.outcome import PLATEAUS
from xorlab.report.panels import LR, Panels

PLATEAU_NOTE = "dotted lines: plateau losses ln 2 / 2 ≈ 0.347, 0.477, ln 2 ≈ 0.693"
STEP_LABEL = "step (gradient updates)"
LOSS_LABEL = "mean BCE loss (nats, log scale)"
DPI = 110
SVG_SALT = "xorlab"


def _styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure inside one seaborn style, so every figure looks the same whatever the caller's rc."""

    @wraps(fn)
    def inner(*args, **kwargs) -> Figure:
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
            return fn(*args, **kwargs)

    return inner


#: 12 colours, pairwise ΔE*ab ≥ 20 (checked in tests): near-black for the reference init, then seaborn's
#: colour-blind palette and two of Paul Tol's (wine, indigo) so that 12 inits never share a colour.
REFERENCE_COLOUR = "#1a1a1a"
COLOURS = [
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
    "#882255",
    "#332288",
]
#: 24 more for studies with more categories: picked greedily from the sRGB cube (9 levels a channel, CIELAB
#: lightness 30–85) as the colour farthest from all chosen so far, the 12 above, near-black and white, so all 36
#: stay pairwise ΔE*ab ≥ 20 (checked in tests). Past 36 colours repeat and lines are dashed.
MORE_COLOURS = [
    "#0000ff",
    "#00df00",
    "#ff20ff",
    "#ff0060",
    "#608000",
    "#df009f",
    "#9f60ff",
    "#0080ff",
    "#9fdf80",
    "#ff0000",
    "#9f2020",
    "#60dfdf",
    "#006060",
    "#ff8080",
    "#009f20",
    "#ff80ff",
    "#9fdf00",
    "#9f6060",
    "#806000",
    "#ff609f",
    "#00df80",
    "#606040",
    "#006020",
    "#bfbf80",
]
PALETTE = COLOURS + MORE_COLOURS
REF_LW, LW = 2.6, 1.4
SEQUENTIAL_MIN = 6  # a numeric init parameter with this many values or more is coloured by a colour map
SEQUENTIAL_CMAP = "viridis"


@dataclass(frozen=True)
class NumericHue:
    """Init labels that are one scheme scanned over one numeric parameter (``normal(std=…)``): coloured by
    value on a sequential colour map, explained by a colour bar instead of a legend."""

    scheme: str
    param: str
    values: dict[str, float]  # label -> parameter value
    norm: Normalize

    def colour(self, label: str) -> str:
        return mpl.colors.to_hex(mpl.colormaps[SEQUENTIAL_CMAP](self.norm(self.values[label])))


def numeric_hue(labels: Sequence[str]) -> NumericHue | None:
    """``NumericHue`` when ``labels`` are ≥ ``SEQUENTIAL_MIN`` values of one numeric parameter of one scheme;
    else None (a categorical palette). A log colour scale when the values are positive and span ≥ 10×."""
    labels = ordered(labels)
    if len(labels) < SEQUENTIAL_MIN:
        return None
    parts = [label_parts(lab) for lab in labels]
    if len({p[0] for p in parts}) != 1 or len({tuple(p[1]) for p in parts}) != 1 or any(p[2] for p in parts):
        return None
    varying = [k for k in parts[0][1] if len({p[1][k] for p in parts}) > 1]
    if len(varying) != 1:
        return None
    try:
        values = {lab: float(p[1][varying[0]]) for lab, p in zip(labels, parts, strict=True)}
    except ValueError:  # a text parameter (a file name): categories
        return None
    v = np.array(list(values.values()))
    if not np.isfinite(v).all():
        return None
    log = v.min() > 0 and v.max() >= 10 * v.min()
    norm = LogNorm(v.min(), v.max()) if log else Normalize(v.min(), v.max())
    return NumericHue(parts[0][0], varying[0], values, norm)


def init_palette(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """One colour per init label, in ``order.ordered`` order: a numeric scan (``numeric_hue``) by value on a
    sequential map; otherwise the reference near-black and the others from ``PALETTE`` (distinct for up to 36
    labels; cycles beyond, where ``_dashes`` dashes)."""
    labels = ordered(labels)
    hue = numeric_hue(labels)
    if hue is not None:
        return {lab: hue.colour(lab) for lab in labels}
    others = [lab for lab in labels if lab != reference]
    out = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(others)}
    if reference in labels:
        out[reference] = REFERENCE_COLOUR
    return {lab: out[lab] for lab in labels}


def _dashes(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """Solid lines while colours are distinct; dashed past ``len(PALETTE)`` labels."""
    others = [lab for lab in ordered(labels) if lab != reference]
    out = {lab: ("-" if i < len(PALETTE) else "--") for i, lab in enumerate(others)}
    return out | ({reference: "-"} if reference in set(labels) else {})


def _draw_order(labels: Sequence[str], reference: str | None) -> list[str]:
    """Labels in meaning order with the reference last, so it is drawn on top of the others."""
    labels = ordered(labels)
    return [lab for lab in labels if lab != reference] + ([reference] if reference in labels else [])


def _line_style(label: str, reference: str | None, colours: dict, dashes: dict) -> dict:
    ref = label == reference
    return {"color": colours[label], "ls": dashes[label], "lw": REF_LW if ref else LW, "zorder": 4 if ref else 2}


def early_steps(medians: Sequence[float], max_step: float) -> bool:
    """Whether the interesting steps are early: some panel's median first-solve step (``medians``, one per lr;
    NaN = none solved) lies in the first 5 % of the step axis. A linear axis would squeeze those solves into
    one vertical jump, so ``step_axis`` then uses symlog (log spacing keeps late steps readable too)."""
    m = np.asarray(medians, dtype=float)
    m = m[np.isfinite(m)]
    return bool(m.size) and max_step > 0 and bool((m < 0.05 * max_step).any())


def step_axis(ax, max_step: float, log: bool) -> None:
    """Step axis from 0 to ``max_step``: symlog (linear below 10 steps, log above) when ``log``, else linear."""
    if log:
        ax.set_xscale("symlog", linthresh=10, linscale=0.4)
        ax.set_xlabel(STEP_LABEL.replace(")", ", symlog scale)"))
    else:
        ax.set_xlabel(STEP_LABEL)
    ax.set_xlim(0, max_step)


def _facets(values: Sequence, width: float, height: float, ncols: int = 3) -> tuple[Figure, list]:
    n = len(values)
    cols = min(n, ncols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols + 2.2, height * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _log_limits(values: np.ndarray, floor: float = 1e-300) -> tuple[float, float]:
    """Log-axis limits around the finite positive values (a margin of ×1.5 each side), so nothing leaves the
    frame; ``floor`` only guards a loss of exactly 0."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    v = np.maximum(v, floor) if v.size else np.array([1e-3, 1.0])
    return float(v.min()) / 1.5, float(v.max()) * 1.5


def _label_outer(axes: list, ncols: int = 3) -> None:
    """Tick labels only on the left column and on the lowest axes of each column (a ragged last row too)."""
    n, cols = len(axes), min(len(axes), ncols)
    for i, ax in enumerate(axes):
        below, inner = i + cols < n, i % cols > 0  # another facet below / to the left of this one
        ax.tick_params(labelbottom=not below, labelleft=not inner)
        if below:
            ax.set_xlabel("")
        if inner:
            ax.set_ylabel("")


def _no_data(title: str, message: str) -> Figure:
    fig = Figure(figsize=(6, 2), layout="constrained")
    ax = fig.subplots()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    suptitle(fig, title)
    return fig


def suptitle(fig: Figure, text: str) -> None:
    """The figure's title, each line wrapped to the figure's width (a one-panel figure is narrow)."""
    width = max(40, int(fig.get_figwidth() * 10.5))  # characters per line at the suptitle's font size
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


LEGEND_ROW = 0.24  # inches a legend entry needs at the legend's font size


def _legend(fig: Figure, ax_list: list, title: str = "init") -> None:
    """One legend right of the panels, in as many columns as it takes to fit the figure's height, so it never
    runs over the title or off the page."""
    handles, labels = {}, []
    for ax in ax_list:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles and not lab.startswith("_"):
                handles[lab] = h
                labels.append(lab)
    rows = max(3, int((fig.get_figheight() - 1.2) / LEGEND_ROW))
    fig.legend(
        [handles[lab] for lab in labels],
        labels,
        title=title,
        loc="outside right center",
        frameon=False,
        ncols=max(1, math.ceil(len(labels) / rows)),
    )


def _hue_key(fig: Figure, axes: list, labels: Sequence[str], reference: str | None, title: str = "init") -> None:
    """The key to the init colours: a colour bar for a numeric scan (``numeric_hue``), else a legend."""
    hue = numeric_hue(labels)
    if hue is None:
        _legend(fig, axes, title)
        return
    bar = fig.colorbar(
        mpl.cm.ScalarMappable(hue.norm, SEQUENTIAL_CMAP), ax=axes, location="right", shrink=0.9, aspect=30
    )
    ref = f"; thick: reference {reference}" if reference in hue.values else ""
    bar.set_label(f"{hue.param} of the {hue.scheme} init ({len(hue.values)} values{ref})")
    bar.ax.yaxis.set_minor_locator(mpl.ticker.FixedLocator(sorted(hue.values.values())))
    bar.ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    bar.ax.tick_params(which="minor", length=4, color="white", width=0.8, direction="in")


@_styled
def convergence(
    bands: pd.DataFrame,
    caption: str = "",
    reference: str | None = None,
    log_steps: bool = False,
    panels: Panels = LR,
) -> Figure:
    """Loss vs step per init (median line, 95 % interval of the median as a band), one facet per lr.

    ``bands`` is ``stats.curve_bands`` output: ``init_label, lr, step, n, loss_median, loss_lo, loss_hi``. The
    y-limits come from the data (every finite band value is inside the frame); ``log_steps`` gives a symlog
    step axis (``early_steps``). The reference init is drawn last, near-black and thicker.
    """
    if bands.empty:
        return _no_data("Training loss", "no loss curves recorded for these runs")
    lrs = sorted(bands[panels.column].unique())
    colours, dashes = init_palette(bands["init_label"], reference), _dashes(bands["init_label"], reference)
    fig, axes = _facets(lrs, 4.3, 3.2, panels.ncols)
    ylim = _log_limits(bands[["loss_median", "loss_lo", "loss_hi"]].to_numpy(dtype=float))
    for ax, lr in zip(axes, lrs, strict=True):
        facet = bands[bands[panels.column] == lr]
        for label in _draw_order(facet["init_label"], reference):
            g = facet[facet["init_label"] == label]
            y = g[["loss_median", "loss_lo", "loss_hi"]].replace(np.inf, np.nan)
            style = _line_style(label, reference, colours, dashes)
            ax.fill_between(g["step"], y["loss_lo"], y["loss_hi"], color=style["color"], alpha=0.15, lw=0)
            ax.plot(g["step"], y["loss_median"], label=label, **style)
        for level in PLATEAUS.values():
            ax.axhline(level, color="0.45", lw=0.8, ls=":", zorder=0)
        ax.set(yscale="log", ylim=ylim, title=panels.title(lr), ylabel=LOSS_LABEL)
        step_axis(ax, float(bands["step"].max()), log_steps)
    _label_outer(axes, panels.ncols)
    _hue_key(fig, axes, bands["init_label"], reference)
    suptitle(fig, f"Training loss: median over runs (line), 95 % CI of the median (band){caption}\n{PLATEAU_NOTE}")
    return fig


@_styled
def failure_heatmap(summary: pd.DataFrame, caption: str = "", panels: Panels = LR) -> Figure:
    """Failure rate (1 − solved fraction) per init × lr, each cell annotated with the rate and n.

    ``summary`` is ``stats.summarize(runs, by=["init_label", "lr"])``; ``caption`` names the budget shown.
    """
    rate = summary.pivot(index="init_label", columns=panels.column, values="success_rate")
    rate = rate.reindex(index=ordered(rate.index), columns=sorted(rate.columns))
    n = summary.pivot(index="init_label", columns=panels.column, values="n").reindex_like(rate)
    fail = 1 - rate
    annot = [  # "12.5 %" over "25/200": the rate, and failures out of n
        [f"{100 * a:.1f} %\n{round(a * b)}/{b:.0f}" if b == b else "" for a, b in zip(fr, nr, strict=True)]
        for fr, nr in zip(fail.to_numpy(), n.to_numpy(), strict=True)
    ]
    fig = Figure(figsize=(1.1 * fail.shape[1] + 3.6, max(3.4, 0.5 * fail.shape[0] + 1.6)), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        fail,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="cividis",
        annot=np.array(annot),
        fmt="",
        linewidths=0.5,
        annot_kws={"fontsize": 7.5},
        cbar_kws={"label": "failure rate (fraction of runs not solved)"},
    )
    ax.set_xticklabels([panels.tick(v) for v in fail.columns])
    ax.set(xlabel=panels.label, ylabel="init scheme")
    if panels is not LR:  # a condition's label is long: upright columns of text, one per cell
        ax.tick_params(axis="x", rotation=90, labelsize=7.5)
    ax.tick_params(axis="y", rotation=0)
    # A figure title, wrapped to the figure's width: an axes title is cut where the heatmap is narrow.
    what = "learning rate" if panels is LR else "condition"
    suptitle(fig, f"Failure rate by init and {what}{caption}\n(cell: % not solved, failed/n runs)")
    return fig


@_styled
def km_curves(
    km: pd.DataFrame, caption: str = "", reference: str | None = None, log_steps: bool = False, panels: Panels = LR
) -> Figure:
    """Kaplan–Meier fraction of runs solved by step t per init (95 % log-log band), one facet per lr.

    ``km`` is ``stats.km_curves(runs, ["init_label", "lr"])``; ``log_steps`` gives a symlog step axis.
    """
    lrs = sorted(km[panels.column].unique())
    colours, dashes = init_palette(km["init_label"], reference), _dashes(km["init_label"], reference)
    fig, axes = _facets(lrs, 4.3, 3.2, panels.ncols)
    end = float(km["step"].max())
    for ax, lr in zip(axes, lrs, strict=True):
        facet = km[km[panels.column] == lr]
        for label in _draw_order(facet["init_label"], reference):
            g = facet[facet["init_label"] == label]
            g = pd.concat([g, g.iloc[[-1]].assign(step=end)])  # carry the last value to the last step
            style = _line_style(label, reference, colours, dashes)
            ax.fill_between(
                g["step"], g["solved_lo"], g["solved_hi"], step="post", color=style["color"], alpha=0.15, lw=0
            )
            ax.step(g["step"], g["solved"], where="post", label=label, **style)
        ax.set(ylim=(-0.02, 1.02), title=panels.title(lr), ylabel="fraction of runs solved")
        step_axis(ax, end, log_steps)
    _label_outer(axes, panels.ncols)
    _hue_key(fig, axes, km["init_label"], reference)
    suptitle(fig, f"Steps to first solve (Kaplan–Meier, unsolved runs censored at max_steps; 95 % band){caption}")
    return fig


#: A final loss within this many nats of a plateau level is drawn exactly on it (the levels are ≥ 0.13 apart).
ON_PLATEAU = 0.01


def loss_histogram(runs: pd.DataFrame, per_decade: int = 10, facet: str = "lr") -> tuple[pd.DataFrame, np.ndarray]:
    """Final losses binned per (lr, init): ``lr, init_label, bin, x, count`` for non-empty bins, and the edges.

    A loss within ``ON_PLATEAU`` of a plateau level (``PLATEAUS``) counts in that plateau's own bin (``bin`` −1,
    −2, −3) drawn at the level itself (``x``), so runs stuck on ln 2, 0.477 and ln 2 / 2 sit on their lines.
    Other losses fall in a log grid spanning the data, ``per_decade`` bins a decade, drawn at the bin's
    geometric centre. Non-finite losses are not binned (the figure counts them)."""
    loss = runs["final_loss"].to_numpy(dtype=float)
    ok = np.isfinite(loss) & (loss > 0)
    lo, hi = _log_limits(loss[ok]) if ok.any() else (1e-3, 1.0)
    bins = max(1, int(np.ceil(per_decade * np.log10(hi / lo))))
    edges = np.geomspace(lo, hi, bins + 1)
    b = np.clip(np.searchsorted(edges, loss, side="right") - 1, 0, bins - 1)
    x = np.sqrt(edges[b] * edges[b + 1])
    levels = np.array(list(PLATEAUS.values()))
    with np.errstate(invalid="ignore"):
        dist = np.abs(loss[:, None] - levels[None, :])
    near = np.nan_to_num(dist, nan=np.inf).min(axis=1) <= ON_PLATEAU
    nearest = np.nan_to_num(dist, nan=np.inf).argmin(axis=1)
    b = np.where(near, -1 - nearest, b)
    x = np.where(near, levels[nearest], x)
    frame = runs.loc[ok, [facet, "init_label"]].assign(bin=b[ok], x=x[ok])
    counts = frame.groupby([facet, "init_label", "bin"], sort=True).agg(x=("x", "first"), count=("x", "size"))
    return counts.reset_index(), edges


@_styled
def final_loss(
    runs: pd.DataFrame,
    threshold: float | None = None,
    caption: str = "",
    reference: str | None = None,
    panels: Panels = LR,
) -> Figure:
    """Final loss per init as a dot histogram: one dot per non-empty log bin, its area ∝ the runs in it and the
    count printed beside bins holding ≥ 10 % of the row, so stacked runs are never invisible; runs on a plateau
    are drawn on its line (``loss_histogram``). Facets by lr.

    ``runs`` needs ``init_label, lr, final_loss``; non-finite losses (diverged runs) are counted per facet.
    """
    lrs = sorted(runs[panels.column].unique())
    order = ordered(runs["init_label"])
    colours = init_palette(order, reference)
    counts, edges = loss_histogram(runs, facet=panels.column)
    fig, axes = _facets(lrs, 4.6, 0.45 * len(order) + 1.3, panels.ncols)
    for ax, lr in zip(axes, lrs, strict=True):
        sub = runs[runs[panels.column] == lr]
        n_row = sub.groupby("init_label").size()
        for i, label in enumerate(order):
            c = counts[(counts[panels.column] == lr) & (counts["init_label"] == label)]
            if c.empty:
                continue
            share = c["count"].to_numpy() / n_row[label]
            x = c["x"].to_numpy()
            ax.scatter(x, np.full(len(c), i), s=8 + 160 * share, color=colours[label], alpha=0.75, lw=0, zorder=3)
            for xx, k, sh, b in zip(x, c["count"], share, c["bin"], strict=True):
                if sh >= 0.1:  # labels of neighbouring bins alternate above / below the row
                    ax.annotate(
                        f"{k}",
                        (xx, i),
                        xytext=(0, 6 if b % 2 else -12),
                        textcoords="offset points",
                        ha="center",
                        fontsize=6.5,
                        color="0.15",
                    )
        ax.set(xscale="log", yticks=range(len(order)), yticklabels=order, ylim=(len(order) - 0.4, -0.7))
        for level in PLATEAUS.values():
            ax.axvline(level, color="0.3", lw=0.9, ls=":", zorder=1)
        if threshold is not None:
            ax.axvline(threshold, color="0.3", lw=0.9, ls="--")
        bad = int((~np.isfinite(sub["final_loss"].to_numpy(dtype=float))).sum())
        if bad:
            ax.text(0.02, 0.01, f"{bad} diverged runs (non-finite loss) not shown", transform=ax.transAxes, fontsize=7)
        ax.set(
            xlim=(edges[0], edges[-1]),
            title=panels.title(lr),
            xlabel="final loss (nats, log scale)",
            ylabel="init scheme",
        )
    _label_outer(axes, panels.ncols)
    note = "" if threshold is None else f"; dashed: solve threshold {threshold:g}"
    suptitle(
        fig,
        f"Final loss{caption}: dots are log bins (runs within {ON_PLATEAU:g} of a plateau: on its line), area ∝ "
        f"runs in the bin, number = runs (bins ≥ 10 % of a row)\n{PLATEAU_NOTE}{note}",
    )
    return fig


FORMATS = ("png", "svg")  # what ``save`` writes by default; PNG always (the pages embed it)
DENSE = 2_000  # an artist with more points than this is drawn as pixels inside the SVG


def rasterize_dense(fig: Figure, limit: int = DENSE) -> int:
    """Mark every line or collection with more than ``limit`` points as rasterized, so an SVG holds what a reader
    can see (pixels at the figure's resolution) instead of every vertex; returns how many were marked."""
    marked = 0
    for ax in fig.axes:
        artists: list[Any] = [*ax.lines, *ax.collections]
        for artist in artists:
            if isinstance(artist, mpl.lines.Line2D):
                n = int(np.size(artist.get_xdata(orig=False)))
            else:
                n = sum(len(p.vertices) for p in artist.get_paths()) + len(artist.get_offsets())
            if n > limit:
                artist.set_rasterized(True)
                marked += 1
    return marked


def save(fig: Figure, directory: str | Path, stem: str, formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write ``fig`` as ``stem.png`` (and ``stem.svg`` if in ``formats``) in ``directory``, with no timestamps or
    tool versions; dense artists are rasterized inside the SVG (``rasterize_dense``)."""
    directory = Path(directory)
    paths = {ext: directory / f"{stem}.{ext}" for ext in FORMATS if ext in formats}
    with mpl.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        fig.savefig(paths["png"], dpi=DPI, metadata={"Software": None})
        if "svg" in paths:
            fig.set_layout_engine("none")  # keep the layout just computed: the SVG needs no second pass
            dense = rasterize_dense(fig)  # rasterized parts at the PNG's resolution; none: the SVG as it always was
            extra: dict[str, Any] = {"dpi": DPI} if dense else {}
            fig.savefig(paths["svg"], metadata={"Date": None, "Creator": None}, **extra)
    return paths
