"""One recorded run drawn side by side: its loss curve and its decision surface (``xorlab-runs show --plot``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xorlab.analysis.surface import SURFACE_BOUNDS, SURFACE_RESOLUTION, decision_surface
from xorlab.core.data import X, Y
from xorlab.core.outcome import PLATEAU_TEXT, PLATEAUS
from xorlab.report import figures
from xorlab.store.records import CONFIG_COLUMNS


def config_title(row: pd.Series) -> str:
    """``init=normal(std=0.01) lr=0.5 max_steps=2000 seed=3 …``: the run's config, for the figure's title."""
    label = row["init_label"] if "init_label" in row.index else row["init"]
    fields = [c for c in CONFIG_COLUMNS if c != "init" and not c.startswith("init_")]
    return " ".join(
        [f"init={label}", *(f"{c}={row[c]:g}" if isinstance(row[c], float) else f"{c}={row[c]}" for c in fields)]
    )


def run_figure(row: pd.Series, curve: pd.DataFrame) -> Figure:
    """One run side by side: its loss curve (log y, plateaus dotted, solve threshold dashed, solve step marked)
    and its decision surface over [−0.5, 1.5]² with the XOR points. Returns a ``matplotlib.figure.Figure``."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_loss, ax_surf = fig.subplots(1, 2, width_ratios=[1.5, 1])
    curve = curve.sort_values("step")
    loss = curve["loss"].to_numpy(dtype=float)
    ax_loss.plot(curve["step"], np.where(np.isfinite(loss), loss, np.nan), color="C0", lw=1.6, label="loss")
    for name, level in PLATEAUS.items():
        ax_loss.axhline(level, color="0.45", lw=0.8, ls=":", zorder=0)
        ax_loss.annotate(
            PLATEAU_TEXT[name],
            (1, level),
            xycoords=("axes fraction", "data"),
            fontsize=7,
            ha="right",
            va="bottom",
            color="0.35",
        )
    ax_loss.axhline(row["loss_threshold"], color="0.3", lw=0.9, ls="--", label=f"threshold {row['loss_threshold']:g}")
    if pd.notna(row["steps_to_solve"]):
        ax_loss.axvline(int(row["steps_to_solve"]), color="C2", lw=1, label=f"solved at step {row['steps_to_solve']}")
    ax_loss.set(
        yscale="log",
        xlabel=figures.STEP_LABEL,
        ylabel=figures.LOSS_LABEL,
        title=f"run {row['run_id']}: {row['status']}, final loss {row['final_loss']:.3g}\n{config_title(row)}",
    )
    ax_loss.legend(loc="best", fontsize=8, frameon=False)
    lim, n = SURFACE_BOUNDS, SURFACE_RESOLUTION
    z = decision_surface(pd.DataFrame([row]), n, lim)["yhat"].to_numpy().reshape(n, n)
    if np.isfinite(z).all():
        image = ax_surf.imshow(z, origin="lower", extent=(*lim, *lim), vmin=0, vmax=1, cmap="RdBu_r")
        if np.ptp(z) > 0.01:
            g = np.linspace(*lim, n)
            ax_surf.contour(g, g, z, levels=[0.5], colors="k", linewidths=1)
        fig.colorbar(image, ax=ax_surf, shrink=0.85, label="network output ŷ")
    else:
        ax_surf.text(
            0.5, 0.5, "parameters not finite:\nno surface", ha="center", va="center", transform=ax_surf.transAxes
        )
    for label, marker in ((0, "o"), (1, "^")):
        pts = X[Y == label]
        ax_surf.scatter(
            pts[:, 0],
            pts[:, 1],
            marker=marker,
            s=70,
            c="white" if label == 0 else "black",
            edgecolors="black",
            linewidths=1.2,
            zorder=3,
        )
    ax_surf.set(xlim=lim, ylim=lim, aspect="equal", xlabel="input x₁", ylabel="input x₂", title="decision surface")
    return fig
