"""Figures of failure modes (``xorlab.core.modes``): shares per lr and init, the typical run's decision surface, and
loss curves per mode with a few sampled runs. Frames in, ``Figure`` out, like ``xorlab.report.figures`` (whose style,
facets and helpers they share); they never run the network.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from xorlab.core.data import X, Y
from xorlab.core.outcome import PLATEAUS
from xorlab.report.figures import (
    LOSS_LABEL,
    PLATEAU_NOTE,
    _draw_order,
    _facets,
    _label_outer,
    _legend,
    _log_limits,
    _no_data,
    _styled,
    step_axis,
    suptitle,
)
from xorlab.report.panels import LR, Panels

#: One colour per failure mode (``xorlab.core.modes.MODES`` order); solved is light grey so failures stand out.
MODE_COLOURS = {
    "solved": "#dcdcdc",
    "slow": "#56b4e9",
    "one_undecided": "#029e73",
    "half_undecided": "#ece133",
    "three_tied": "#cc78bc",
    "saddle_ln2": "#0173b2",
    "one_wrong": "#d55e00",
    "oscillating": "#de8f05",
    "saturated": "#882255",
    "dead": "#661100",
    "diverged": "#1a1a1a",
    "other": "#949494",
    "unknown": "#ffffff",
}


def _mode_bars(ax, g: pd.DataFrame, modes: list[str], ticks: list[str]) -> None:
    """Two stacked bars per row of ``g``: the share of all runs in each mode (solved grey), and beside it, narrower
    and hatched, the share of the *failed* runs in each failure mode, so a rare mode is still visible."""
    x = np.arange(len(g))
    failed = (1 - g["mode_solved_rate"].fillna(0)).to_numpy(dtype=float) if "mode_solved_rate" in g else np.ones(len(g))
    bottom, fbottom = np.zeros(len(g)), np.zeros(len(g))
    for m in modes:
        share = g[f"mode_{m}_rate"].fillna(0).to_numpy(dtype=float)
        ax.bar(x - 0.2, share, bottom=bottom, color=MODE_COLOURS[m], width=0.42, lw=0.3, edgecolor="white", label=m)
        bottom += share
        if m != "solved":
            of_failed = np.divide(share, failed, out=np.zeros_like(share), where=failed > 0)
            ax.bar(
                x + 0.23,
                of_failed,
                bottom=fbottom,
                color=MODE_COLOURS[m],
                width=0.3,
                lw=0.3,
                edgecolor="0.25",
                hatch="///",
                label="_" + m,
            )
            fbottom += of_failed
    for i in np.flatnonzero(failed <= 0):
        ax.text(x[i] + 0.23, 0.02, "no failure", rotation=90, ha="center", va="bottom", fontsize=6.5, color="0.3")
    ax.set_xticks(x, ticks, rotation=90, fontsize=7.5)
    ax.set(ylim=(0, 1), ylabel="share of runs | of failures")
    ax.grid(False, axis="x")


@_styled
def failure_modes(
    summary: pd.DataFrame, caption: str = "", reference: str | None = None, panels: Panels = LR
) -> Figure:
    """Share of runs in each mode (stacked bars) and, beside each bar, the share of the failed runs in each
    failure mode (hatched); per lr, one facet per init (the reference first). With a single lr, one panel with
    one pair of bars per init instead.

    ``summary`` is ``stats.summarize(runs, ["init_label", "lr"])`` (``mode_<name>_rate`` columns).
    """
    modes = [m for m in MODE_COLOURS if f"mode_{m}_rate" in summary and summary[f"mode_{m}"].sum() > 0]
    inits = _draw_order(summary["init_label"], reference)
    inits = inits[-1:] + inits[:-1] if reference in inits else inits  # the reference first
    lrs = sorted(summary[panels.column].unique())
    if len(lrs) == 1:
        fig = Figure(figsize=(max(5.0, 0.42 * len(inits) + 2.6), 4.6), layout="constrained")
        ax = fig.subplots()
        g = summary.set_index("init_label").reindex(inits)
        ticks = [lab + (" (reference)" if lab == reference else "") for lab in inits]
        _mode_bars(ax, g, modes, ticks)
        ax.set(xlabel="init scheme", title=panels.title(lrs[0]))
        axes = [ax]
    else:
        fig, axes = _facets(inits, max(3.2, 0.4 * len(lrs) + 1.2), 2.8 if panels is LR else 4.2)
        for ax, label in zip(axes, inits, strict=True):
            g = summary[summary["init_label"] == label].set_index(panels.column).reindex(lrs)
            _mode_bars(ax, g, modes, [panels.tick(v) for v in lrs])
            ax.set(title=label + (" (reference)" if label == reference else ""), xlabel=panels.label)
        _label_outer(axes)
    _legend(fig, axes, title="mode")
    suptitle(
        fig,
        f"Failure modes per {'learning rate' if panels is LR else 'condition'} and init{caption}\n"
        "left bar: share of all runs (grey: solved); right, "
        "hatched: share of the failed runs",
    )
    return fig


@_styled
def decision_surfaces(examples: pd.DataFrame, grid: pd.DataFrame, caption: str = "") -> Figure:
    """What a network learned: ŷ over the input plane for the typical run of each mode
    (``surface.typical_runs``: rows with ``example``, ``n_mode``, ``n_runs``), from their
    ``surface.decision_surface`` frame; XOR points overlaid."""
    n_grid = int(np.sqrt((grid["run_id"] == examples["run_id"].iloc[0]).sum())) if len(examples) else 1
    lim = (float(grid["x1"].min()), float(grid["x1"].max())) if len(grid) else (0.0, 1.0)
    by_run = {rid: sub["yhat"].to_numpy() for rid, sub in grid.groupby("run_id", sort=False, observed=True)}
    z = [by_run[rid].reshape(n_grid, n_grid) for rid in examples["run_id"]]
    rows_ = [row for _, row in examples.iterrows()]
    cols = min(len(rows_), 3)
    rows = math.ceil(len(rows_) / cols)
    fig = Figure(figsize=(3.6 * cols + 1.2, 3.6 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    cmap = sns.color_palette("vlag", as_cmap=True)
    image = None
    for ax, row, zz in zip(axes, rows_, z, strict=False):
        if np.isfinite(zz).all():
            image = ax.imshow(
                zz, origin="lower", extent=(*lim, *lim), vmin=0, vmax=1, cmap=cmap, interpolation="nearest"
            )
            if np.ptp(zz) > 0.01:  # a flat surface has no meaningful ŷ = 0.5 line
                g = np.linspace(*lim, n_grid)
                ax.contour(g, g, zz, levels=[0.5], colors="k", linewidths=1)
            else:
                ax.text(0.5, 0.62, f"ŷ ≈ {zz.mean():.2f} everywhere", ha="center", transform=ax.transAxes, fontsize=9)
        else:
            ax.text(0.5, 0.5, "parameters not finite:\nno surface", ha="center", va="center", transform=ax.transAxes)
        for label, marker in ((0, "o"), (1, "^")):
            pts = X[Y == label]
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                marker=marker,
                s=70,
                c="white" if label == 0 else "black",
                edgecolors="black",
                linewidths=1.2,
                label=f"XOR target {label}",
                zorder=3,
            )
        ax.set(xlim=lim, ylim=lim, aspect="equal", xlabel="input x₁", ylabel="input x₂")
        runs = "run" if row["n_runs"] == 1 else "runs"
        share = f"{row['n_mode']:,} of {row['n_runs']:,} {runs} ({100 * row['n_mode'] / row['n_runs']:.1f} %)"
        ax.set_title(
            f"{row['example']}: {share}\ntypical run: {row['init_label']}, lr={row['lr']:g}, seed={row['seed']}, "
            f"loss {row['final_loss']:.3g}",
            fontsize=8.5,
        )
        ax.grid(False)
    for ax in axes[len(rows_) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(rows_)]), shrink=0.8, label="network output ŷ (black line: ŷ = 0.5)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    suptitle(fig, f"Decision surface of the typical run of each mode (medoid of its final predictions){caption}")
    return fig


@_styled
def mode_curves(
    bands: pd.DataFrame, samples: pd.DataFrame, caption: str = "", log_steps: bool = False, counts: dict | None = None
) -> Figure:
    """Loss curves per mode: the median over all runs of the mode (thick, with its 95 % band) and a few
    individual runs sampled with a fixed seed (thin), so a reader sees how typical the median is.

    ``bands``: ``stats.curve_bands(curves, runs, by=["mode"])``; ``samples``: curves (``run_id, step, loss``)
    of ``surface.sample_runs`` with a ``mode`` column; ``counts``: runs per mode, for the titles.
    """
    if bands.empty:
        return _no_data("Loss curves per mode", "no loss curves recorded for these runs")
    order = list(dict.fromkeys(bands["mode"]))
    fig, axes = _facets(order, 4.0, 3.0)
    values = np.concatenate(
        [
            bands[["loss_median", "loss_lo", "loss_hi"]].to_numpy(dtype=float).ravel(),
            samples["loss"].to_numpy(dtype=float),
        ]
    )
    ylim = _log_limits(values)
    end = float(bands["step"].max())
    for ax, mode in zip(axes, order, strict=True):
        colour = MODE_COLOURS.get(mode, "#0173b2")
        colour = "#029e73" if mode == "solved" else colour  # light grey is for stacks; a line needs contrast
        for _, g in samples[samples["mode"] == mode].groupby("run_id", sort=True, observed=True):
            ax.plot(g["step"], g["loss"].replace(np.inf, np.nan), color=colour, lw=0.7, alpha=0.6)
        b = bands[bands["mode"] == mode]
        y = b[["loss_median", "loss_lo", "loss_hi"]].replace(np.inf, np.nan)
        ax.fill_between(b["step"], y["loss_lo"], y["loss_hi"], color="0.2", alpha=0.12, lw=0)
        ax.plot(b["step"], y["loss_median"], color="0.1", lw=2.2)
        for level in PLATEAUS.values():
            ax.axhline(level, color="0.45", lw=0.8, ls=":", zorder=0)
        n = f" ({counts[mode]:,} run{'' if counts[mode] == 1 else 's'})" if counts and mode in counts else ""
        ax.set(yscale="log", ylim=ylim, title=f"{mode}{n}", ylabel=LOSS_LABEL)
        step_axis(ax, end, log_steps)
    _label_outer(axes)
    suptitle(
        fig,
        f"Loss curves per mode{caption}: median of all runs in the mode (black, 95 % CI band) and "
        f"runs sampled with a fixed seed (thin)\n{PLATEAU_NOTE}",
    )
    return fig
