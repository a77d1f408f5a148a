"""Tests for ``xorlab.figures``: every figure builds from real (small) data, headless and byte-reproducibly."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from xorlab import figures, stats
from xorlab.config import TrainConfig
from xorlab.engine import train_batch
from xorlab.records import curves_frame, runs_frame
from xorlab.surface import decision_surface, example_runs


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    cfgs = [
        TrainConfig(lr=lr, max_steps=300, seed=s, init=i)
        for lr in (0.05, 1.0)
        for i in ("notebook", "xavier_uniform", "zeros")
        for s in range(12)
    ]
    batch = train_batch(cfgs, log_every=10)
    return stats.with_init_label(runs_frame(batch)), curves_frame(batch)


def all_figures(runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, Figure]:
    return {
        "convergence": figures.convergence(stats.curve_bands(curves, runs)),
        "failure_heatmap": figures.failure_heatmap(stats.summarize(runs, ["init_label", "lr"])),
        "km_curves": figures.km_curves(stats.km_curves(runs, ["init_label", "lr"])),
        "final_loss": figures.final_loss(runs, threshold=0.05),
        "decision_surfaces": figures.decision_surfaces(ex := example_runs(runs), decision_surface(ex, n=41)),
    }


def test_every_figure_saves_png_and_svg(data, tmp_path):
    """(Byte-identical rebuilds are checked end to end in ``test_report_cli``.)"""
    before = plt.get_fignums()
    for stem, fig in all_figures(*data).items():
        assert fig.get_suptitle() or fig.axes[0].get_title()
        paths = figures.save(fig, tmp_path, stem)
        assert paths["png"].read_bytes().startswith(b"\x89PNG"), stem
        assert b"<svg" in paths["svg"].read_bytes()[:2000], stem
        assert b"<dc:date>" not in paths["svg"].read_bytes(), stem  # no timestamp
    assert plt.get_fignums() == before  # built without pyplot: no figure manager, no display


def test_axes_are_labelled(data):
    for stem, fig in all_figures(*data).items():
        for ax in fig.axes:
            if ax.get_visible() and ax.get_label() != "<colorbar>" and ax.has_data():
                assert ax.get_title(), stem
        labelled = [ax for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel()]
        assert labelled, f"{stem} has no axes with both axis labels"


def test_headless_without_display(tmp_path):
    """A fresh interpreter with no DISPLAY and no MPLBACKEND draws and saves a figure."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND", "WAYLAND_DISPLAY")}
    code = (
        "import pandas as pd; from xorlab import figures;"
        "s = pd.DataFrame({'init_label': ['a', 'b'], 'lr': [0.1, 0.1], 'success_rate': [0.5, 1.0], 'n': [4, 4]});"
        f"figures.save(figures.failure_heatmap(s), r'{tmp_path}', 'h')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert (tmp_path / "h.png").stat().st_size > 0


def test_convergence_without_curves():
    empty = pd.DataFrame(columns=["init_label", "lr", "step", "n", "loss_median", "loss_lo", "loss_hi"])
    assert isinstance(figures.convergence(empty), Figure)


def test_palette_is_stable_and_colour_blind():
    import seaborn as sns

    a = figures.init_palette(["zeros", "notebook"])
    b = figures.init_palette(["notebook", "zeros", "notebook"])
    assert a == b and a["notebook"] == sns.color_palette("colorblind")[0]
