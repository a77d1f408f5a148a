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
from functools import wraps
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from xorlab.core.outcome import PLATEAUS

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
REF_LW, LW = 2.6, 1.4


def init_palette(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """One colour per init label: the reference near-black, the others in sorted order from ``COLOURS``
    (distinct for up to 12 labels with a reference, 12 without; cycles beyond, where ``_dashes`` dashes)."""
    others = [lab for lab in sorted(set(labels)) if lab != reference]
    out = {lab: COLOURS[i % len(COLOURS)] for i, lab in enumerate(others)}
    if reference in set(labels):
        out[reference] = REFERENCE_COLOUR
    return dict(sorted(out.items()))


def _dashes(labels: Sequence[str], reference: str | None = None) -> dict[str, str]:
    """Solid lines while colours are distinct; dashed past ``len(COLOURS)`` labels."""
    others = [lab for lab in sorted(set(labels)) if lab != reference]
    out = {lab: ("-" if i < len(COLOURS) else "--") for i, lab in enumerate(others)}
    return out | ({reference: "-"} if reference in set(labels) else {})


def _draw_order(labels: Sequence[str], reference: str | None) -> list[str]:
    """Sorted labels with the reference last, so it is drawn on top of the others."""
    labels = sorted(set(labels))
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


def _lr_title(lr: float) -> str:
    return f"lr = {lr:g}"


def _legend(fig: Figure, ax_list: list, title: str = "init") -> None:
    handles, labels = {}, []
    for ax in ax_list:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in handles and not lab.startswith("_"):
                handles[lab] = h
                labels.append(lab)
    fig.legend([handles[lab] for lab in labels], labels, title=title, loc="outside right center", frameon=False)


@_styled
def convergence(
    bands: pd.DataFrame, caption: str = "", reference: str | None = None, log_steps: bool = False
) -> Figure:
    """Loss vs step per init (median line, 95 % interval of the median as a band), one facet per lr.

    ``bands`` is ``stats.curve_bands`` output: ``init_label, lr, step, n, loss_median, loss_lo, loss_hi``. The
    y-limits come from the data (every finite band value is inside the frame); ``log_steps`` gives a symlog
    step axis (``early_steps``). The reference init is drawn last, near-black and thicker.
    """
    if bands.empty:
        return _no_data("Training loss", "no loss curves recorded for these runs")
    lrs = sorted(bands["lr"].unique())
    colours, dashes = init_palette(bands["init_label"], reference), _dashes(bands["init_label"], reference)
    fig, axes = _facets(lrs, 4.3, 3.2)
    ylim = _log_limits(bands[["loss_median", "loss_lo", "loss_hi"]].to_numpy(dtype=float))
    for ax, lr in zip(axes, lrs, strict=True):
        facet = bands[bands["lr"] == lr]
        for label in _draw_order(facet["init_label"], reference):
            g = facet[facet["init_label"] == label]
            y = g[["loss_median", "loss_lo", "loss_hi"]].replace(np.inf, np.nan)
            style = _line_style(label, reference, colours, dashes)
            ax.fill_between(g["step"], y["loss_lo"], y["loss_hi"], color=style["color"], alpha=0.15, lw=0)
            ax.plot(g["step"], y["loss_median"], label=label, **style)
        for level in PLATEAUS.values():
            ax.axhline(level, color="0.45", lw=0.8, ls=":", zorder=0)
        ax.set(yscale="log", ylim=ylim, title=_lr_title(lr), ylabel=LOSS_LABEL)
        step_axis(ax, float(bands["step"].max()), log_steps)
    _label_outer(axes)
    _legend(fig, axes)
    suptitle(fig, f"Training loss: median over runs (line), 95 % CI of the median (band){caption}\n{PLATEAU_NOTE}")
    return fig


@_styled
def failure_heatmap(summary: pd.DataFrame, caption: str = "") -> Figure:
    """Failure rate (1 − solved fraction) per init × lr, each cell annotated with the rate and n.

    ``summary`` is ``stats.summarize(runs, by=["init_label", "lr"])``; ``caption`` names the budget shown.
    """
    rate = summary.pivot(index="init_label", columns="lr", values="success_rate").sort_index()
    n = summary.pivot(index="init_label", columns="lr", values="n").reindex_like(rate)
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
    ax.set_xticklabels([f"{v:g}" for v in fail.columns])
    ax.set(
        xlabel="learning rate lr",
        ylabel="init scheme",
        title=f"Failure rate by init and learning rate{caption}\n(cell: % not solved, failed/n runs)",
    )
    ax.tick_params(axis="y", rotation=0)
    return fig


@_styled
def km_curves(km: pd.DataFrame, caption: str = "", reference: str | None = None, log_steps: bool = False) -> Figure:
    """Kaplan–Meier fraction of runs solved by step t per init (95 % log-log band), one facet per lr.

    ``km`` is ``stats.km_curves(runs, ["init_label", "lr"])``; ``log_steps`` gives a symlog step axis.
    """
    lrs = sorted(km["lr"].unique())
    colours, dashes = init_palette(km["init_label"], reference), _dashes(km["init_label"], reference)
    fig, axes = _facets(lrs, 4.3, 3.2)
    end = float(km["step"].max())
    for ax, lr in zip(axes, lrs, strict=True):
        facet = km[km["lr"] == lr]
        for label in _draw_order(facet["init_label"], reference):
            g = facet[facet["init_label"] == label]
            g = pd.concat([g, g.iloc[[-1]].assign(step=end)])  # carry the last value to the last step
            style = _line_style(label, reference, colours, dashes)
            ax.fill_between(
                g["step"], g["solved_lo"], g["solved_hi"], step="post", color=style["color"], alpha=0.15, lw=0
            )
            ax.step(g["step"], g["solved"], where="post", label=label, **style)
        ax.set(ylim=(-0.02, 1.02), title=_lr_title(lr), ylabel="fraction of runs solved")
        step_axis(ax, end, log_steps)
    _label_outer(axes)
    _legend(fig, axes)
    suptitle(fig, f"Steps to first solve (Kaplan–Meier, unsolved runs censored at max_steps; 95 % band){caption}")
    return fig


def loss_histogram(runs: pd.DataFrame, per_decade: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Final losses binned per (lr, init) on a log grid spanning the data (``per_decade`` bins a decade):
    ``lr, init_label, bin, count`` for non-empty bins and the bin edges. Non-finite losses are not binned
    (the figure counts them)."""
    loss = runs["final_loss"].to_numpy(dtype=float)
    ok = np.isfinite(loss) & (loss > 0)
    lo, hi = _log_limits(loss[ok]) if ok.any() else (1e-3, 1.0)
    bins = max(1, int(np.ceil(per_decade * np.log10(hi / lo))))
    edges = np.geomspace(lo, hi, bins + 1)
    b = np.clip(np.searchsorted(edges, loss, side="right") - 1, 0, bins - 1)
    frame = runs.loc[ok, ["lr", "init_label"]].assign(bin=b[ok])
    counts = frame.groupby(["lr", "init_label", "bin"], sort=True).size().rename("count").reset_index()
    return counts, edges


@_styled
def final_loss(
    runs: pd.DataFrame, threshold: float | None = None, caption: str = "", reference: str | None = None
) -> Figure:
    """Final loss per init as a dot histogram: one dot per non-empty log bin, its area ∝ the runs in it and the
    count printed beside bins holding ≥ 10 % of the row, so stacked runs are never invisible. Facets by lr.

    ``runs`` needs ``init_label, lr, final_loss``; non-finite losses (diverged runs) are counted per facet.
    """
    lrs = sorted(runs["lr"].unique())
    order = sorted(runs["init_label"].unique())
    colours = init_palette(order, reference)
    counts, edges = loss_histogram(runs)
    centres = np.sqrt(edges[:-1] * edges[1:])
    fig, axes = _facets(lrs, 4.6, 0.45 * len(order) + 1.3)
    for ax, lr in zip(axes, lrs, strict=True):
        sub = runs[runs["lr"] == lr]
        n_row = sub.groupby("init_label").size()
        for i, label in enumerate(order):
            c = counts[(counts["lr"] == lr) & (counts["init_label"] == label)]
            if c.empty:
                continue
            share = c["count"].to_numpy() / n_row[label]
            x = centres[c["bin"].to_numpy()]
            ax.scatter(x, np.full(len(c), i), s=8 + 160 * share, color=colours[label], alpha=0.75, lw=0)
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
            ax.axvline(level, color="0.3", lw=0.9, ls=":")
        if threshold is not None:
            ax.axvline(threshold, color="0.3", lw=0.9, ls="--")
        bad = int((~np.isfinite(sub["final_loss"].to_numpy(dtype=float))).sum())
        if bad:
            ax.text(0.02, 0.01, f"{bad} diverged runs (non-finite loss) not shown", transform=ax.transAxes, fontsize=7)
        ax.set(
            xlim=(edges[0], edges[-1]), title=_lr_title(lr), xlabel="final loss (nats, log scale)", ylabel="init scheme"
        )
    _label_outer(axes)
    note = "" if threshold is None else f"; dashed: solve threshold {threshold:g}"
    suptitle(
        fig,
        f"Final loss{caption}: dots are log bins, area ∝ runs in the bin, number = runs (bins ≥ 10 % of a row)\n"
        f"{PLATEAU_NOTE}{note}",
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
