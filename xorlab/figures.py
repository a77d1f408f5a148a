"""Figures of a sweep: one small function per figure, each taking a tidy (mostly pre-aggregated) frame.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing needs a display and no
global figure state leaks; ``save`` writes it as PNG and SVG with no timestamps, byte-identical across runs.
Colours come from seaborn's colour-blind palette, one fixed colour per init (``init_palette``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from xorlab.data import X, Y
from xorlab.outcome import PLATEAUS

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


def init_palette(labels: Sequence[str]) -> dict[str, tuple]:
    """One colour per init label (sorted), from seaborn's colour-blind palette (cycles past 10)."""
    labels = sorted(set(labels))
    return dict(zip(labels, sns.color_palette("colorblind", len(labels)), strict=True))


def _dashes(labels: Sequence[str]) -> dict[str, str]:
    """Solid lines for the first 10 labels; dashed after, where the colour-blind palette repeats colours."""
    return {lab: ("-" if i < 10 else "--") for i, lab in enumerate(sorted(set(labels)))}


def _facets(values: Sequence, width: float, height: float, ncols: int = 3) -> tuple[Figure, list]:
    n = len(values)
    cols = min(n, ncols)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols + 2.2, height * rows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _log_limits(values: np.ndarray, floor: float = 1e-8, ceiling: float = 10.0) -> tuple[float, float]:
    """Log-axis limits around the finite values, kept within [floor, ceiling] (ceiling ≈ 14 x ln 2)."""
    v = values[np.isfinite(values)]
    v = np.clip(v, floor, ceiling) if v.size else np.array([floor, ceiling])
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
    fig.suptitle(title)
    return fig


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
def convergence(bands: pd.DataFrame, caption: str = "") -> Figure:
    """Loss vs step per init (median line, 95 % interval of the median as a band), one facet per lr.

    ``bands`` is ``stats.curve_bands`` output: ``init_label, lr, step, n, loss_median, loss_lo, loss_hi``.
    """
    if bands.empty:
        return _no_data("Training loss", "no loss curves recorded for these runs")
    lrs = sorted(bands["lr"].unique())
    colours, dashes = init_palette(bands["init_label"]), _dashes(bands["init_label"])
    fig, axes = _facets(lrs, 4.3, 3.2)
    ylim = _log_limits(bands[["loss_median", "loss_lo", "loss_hi"]].to_numpy(dtype=float))
    for ax, lr in zip(axes, lrs, strict=True):
        ax.set(yscale="log", ylim=ylim)
        ax.autoscale(False, axis="y")  # fixed limits: huge losses of unstable runs leave the top of the axes
        for label, g in bands[bands["lr"] == lr].groupby("init_label", sort=True):
            y = g[["loss_median", "loss_lo", "loss_hi"]].replace(np.inf, np.nan)
            ax.fill_between(g["step"], y["loss_lo"], y["loss_hi"], color=colours[label], alpha=0.2, lw=0)
            ax.plot(g["step"], y["loss_median"], color=colours[label], ls=dashes[label], lw=1.6, label=label)
        for level in PLATEAUS.values():
            ax.axhline(level, color="0.45", lw=0.8, ls=":", zorder=0)
        ax.set(title=_lr_title(lr), xlabel=STEP_LABEL, ylabel=LOSS_LABEL)
    _label_outer(axes)
    _legend(fig, axes)
    fig.suptitle(f"Training loss: median over runs (line), 95 % CI of the median (band)\n{PLATEAU_NOTE}{caption}")
    return fig


@_styled
def failure_heatmap(summary: pd.DataFrame, caption: str = "") -> Figure:
    """Failure rate (1 − solved fraction) per init × lr, each cell annotated with the rate and n.

    ``summary`` is ``stats.summarize(runs, by=["init_label", "lr"])``.
    """
    rate = summary.pivot(index="init_label", columns="lr", values="success_rate").sort_index()
    n = summary.pivot(index="init_label", columns="lr", values="n").reindex_like(rate)
    fail = 1 - rate
    annot = [  # "12.5 %" over "25/200": the rate, and failures out of n
        [f"{100 * a:.1f} %\n{round(a * b)}/{b:.0f}" if b == b else "" for a, b in zip(fr, nr, strict=True)]
        for fr, nr in zip(fail.to_numpy(), n.to_numpy(), strict=True)
    ]
    fig = Figure(figsize=(1.1 * fail.shape[1] + 3.6, 0.5 * fail.shape[0] + 1.6), layout="constrained")
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
        title="Failure rate by init and learning rate\n(cell: % not solved, failed/n runs)" + caption,
    )
    ax.tick_params(axis="y", rotation=0)
    return fig


@_styled
def km_curves(km: pd.DataFrame, caption: str = "") -> Figure:
    """Kaplan–Meier fraction of runs solved by step t per init (95 % log-log band), one facet per lr.

    ``km`` is ``stats.km_curves(runs, ["init_label", "lr"])``.
    """
    lrs = sorted(km["lr"].unique())
    colours, dashes = init_palette(km["init_label"]), _dashes(km["init_label"])
    fig, axes = _facets(lrs, 4.3, 3.2)
    for ax, lr in zip(axes, lrs, strict=True):
        facet = km[km["lr"] == lr]
        end = facet["step"].max()
        for label, g in facet.groupby("init_label", sort=True):
            g = pd.concat([g, g.iloc[[-1]].assign(step=end)])  # carry the last value to the facet's last step
            ax.fill_between(
                g["step"], g["solved_lo"], g["solved_hi"], step="post", color=colours[label], alpha=0.2, lw=0
            )
            ax.step(g["step"], g["solved"], where="post", color=colours[label], ls=dashes[label], lw=1.6, label=label)
        ax.set(ylim=(-0.02, 1.02), title=_lr_title(lr), xlabel=STEP_LABEL, ylabel="fraction of runs solved")
    _label_outer(axes)
    _legend(fig, axes)
    fig.suptitle("Steps to solve (Kaplan–Meier, unsolved runs censored at max_steps; 95 % band)" + caption)
    return fig


@_styled
def final_loss(
    runs: pd.DataFrame, threshold: float | None = None, caption: str = "", clip: tuple[float, float] = (1e-8, 10.0)
) -> Figure:
    """Final loss of every run per init (one dot per run, seeded jitter, log x), plateau levels marked, facets by lr.

    ``runs`` needs ``init_label, lr, final_loss``; non-finite losses (diverged runs) are counted, not drawn;
    losses outside ``clip`` are drawn at its edge.
    """
    lrs = sorted(runs["lr"].unique())
    order = sorted(runs["init_label"].unique())
    colours = init_palette(order)
    fig, axes = _facets(lrs, 4.3, 0.32 * len(order) + 1.2)
    runs = runs.sort_values("run_id", kind="stable")  # jitter is drawn in run_id order
    rng = np.random.default_rng(0)
    loss = runs["final_loss"].to_numpy(dtype=float)
    xlim = _log_limits(np.append(loss, [threshold or np.nan, *PLATEAUS.values()]), *clip)
    for ax, lr in zip(axes, lrs, strict=True):
        sub = runs[runs["lr"] == lr]
        finite = np.isfinite(sub["final_loss"].to_numpy(dtype=float))
        data = sub[finite].assign(final_loss=lambda d: d["final_loss"].clip(*clip))
        for i, label in enumerate(order):
            x = data.loc[data["init_label"] == label, "final_loss"].to_numpy(dtype=float)
            y = i + rng.uniform(-0.3, 0.3, x.size)  # seeded jitter: the same runs give the same picture
            ax.scatter(x, y, s=5, color=colours[label], alpha=0.45, lw=0, rasterized=True)
        ax.set(xscale="log", yticks=range(len(order)), yticklabels=order, ylim=(len(order) - 0.5, -0.5))
        for level in PLATEAUS.values():
            ax.axvline(level, color="0.3", lw=0.9, ls=":")
        if threshold is not None:
            ax.axvline(threshold, color="0.3", lw=0.9, ls="--")
        if (~finite).any():
            ax.text(0.02, 0.01, f"{(~finite).sum()} diverged runs not shown", transform=ax.transAxes, fontsize=7)
        kept = sub["final_loss"][finite]
        outside = int(((kept < clip[0]) | (kept > clip[1])).sum())
        if outside > 0:
            ax.text(
                0.02,
                0.06,
                f"{outside} runs outside [{clip[0]:g}, {clip[1]:g}] drawn at the edge",
                transform=ax.transAxes,
                fontsize=7,
            )
        ax.set(xlim=xlim, title=_lr_title(lr), xlabel="final loss (nats, log scale)", ylabel="init scheme")
    _label_outer(axes)
    note = "" if threshold is None else f"; dashed: solve threshold {threshold:g}"
    fig.suptitle(f"Final loss, one dot per run\n{PLATEAU_NOTE}{note}{caption}")
    return fig


@_styled
def decision_surfaces(examples: pd.DataFrame, grid: pd.DataFrame, caption: str = "") -> Figure:
    """What a network learned: ŷ over the input plane for example runs (``surface.example_runs``: rows with an
    ``example`` name), from their ``surface.decision_surface`` frame; XOR points overlaid."""
    n_grid = int(np.sqrt((grid["run_id"] == examples["run_id"].iloc[0]).sum())) if len(examples) else 1
    lim = (float(grid["x1"].min()), float(grid["x1"].max())) if len(grid) else (0.0, 1.0)
    by_run = {rid: sub["yhat"].to_numpy() for rid, sub in grid.groupby("run_id", sort=False, observed=True)}
    z = [by_run[rid].reshape(n_grid, n_grid) for rid in examples["run_id"]]
    examples = [(row["example"], row) for _, row in examples.iterrows()]
    cols = min(len(examples), 3)
    rows = math.ceil(len(examples) / cols)
    fig = Figure(figsize=(3.6 * cols + 1.2, 3.5 * rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    cmap = sns.color_palette("vlag", as_cmap=True)
    image = None
    for ax, (name, row), zz in zip(axes, examples, z, strict=False):
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
        ax.set_title(
            f"{name}, final loss {row['final_loss']:.3g}\n{row['init_label']}, lr={row['lr']:g}, seed={row['seed']}",
            fontsize=9,
        )
        ax.grid(False)
    for ax in axes[len(examples) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(examples)]), shrink=0.8, label="network output ŷ (black line: ŷ = 0.5)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle("Decision surfaces learned by one run of each outcome" + caption)
    return fig


def save(fig: Figure, directory: str | Path, stem: str) -> dict[str, Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` in ``directory``, with no timestamps or tool versions."""
    directory = Path(directory)
    paths = {"png": directory / f"{stem}.png", "svg": directory / f"{stem}.svg"}
    with mpl.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "path"}):
        fig.savefig(paths["png"], dpi=DPI, metadata={"Software": None})
        fig.set_layout_engine("none")  # keep the layout just computed: the SVG needs no second pass
        fig.savefig(paths["svg"], metadata={"Date": None, "Creator": None})
    return paths
