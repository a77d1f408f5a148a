"""Tests for ``xorlab.report.figures``: every figure builds from real (small) data, headless and byte-reproducibly."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from xorlab.analysis import stats
from xorlab.analysis.surface import decision_surface, mode_labels, sample_runs, typical_runs
from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.report import figures, mode_figures
from xorlab.store.records import curves_frame, runs_frame


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
    runs = runs.assign(mode=mode_labels(runs))
    summary = stats.summarize(runs, ["init_label", "lr"])
    samples = curves.merge(sample_runs(runs, 3)[["run_id", "mode"]], on="run_id")
    return {
        "convergence": figures.convergence(stats.curve_bands(curves, runs), reference="notebook", log_steps=True),
        "failure_heatmap": figures.failure_heatmap(summary, " after 300 steps"),
        "failure_modes": mode_figures.failure_modes(summary, " after 300 steps", reference="notebook"),
        "km_curves": figures.km_curves(stats.km_curves(runs, ["init_label", "lr"]), reference="notebook"),
        "final_loss": figures.final_loss(runs, threshold=0.05, reference="notebook"),
        "decision_surfaces": mode_figures.decision_surfaces(ex := typical_runs(runs), decision_surface(ex, n=41)),
        "mode_curves": mode_figures.mode_curves(stats.curve_bands(curves, runs, by=["mode"]), samples),
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


def lab(colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour, from the formulas (independent of matplotlib/seaborn)."""
    rgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    rgb = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ rgb / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("reference", [None, "notebook"])
def test_palette_is_distinct_for_12_inits_and_stable(reference):
    """Guards a bug found in review: 11 inits reused colours (he_normal and zeros both blue)."""
    labels = [
        "notebook",
        "zeros",
        "he_normal",
        "he_uniform",
        "xavier_normal",
        "xavier_uniform",
        "lecun_normal",
        "lecun_uniform",
        "orthogonal",
        "normal",
        "uniform",
        "normal(std=0.1)",
    ]
    pal = figures.init_palette(labels, reference)
    assert set(pal) == set(labels) and len(set(pal.values())) == 12
    colours = [lab(c) for c in pal.values()]
    dist = min(np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[:i])
    assert dist > 15  # ΔE*ab: clearly different colours, not two shades of one
    assert pal == figures.init_palette(labels[::-1] + labels[:2], reference)  # order- and duplicate-free
    if reference:
        assert pal[reference] == figures.REFERENCE_COLOUR


def test_reference_is_drawn_on_top_and_thicker(data):
    runs, curves = data
    fig = figures.convergence(stats.curve_bands(curves, runs), reference="notebook")
    lines = [ln for ln in fig.axes[0].get_lines() if not ln.get_label().startswith("_")]
    assert lines[-1].get_label() == "notebook"  # drawn last
    assert lines[-1].get_linewidth() > max(ln.get_linewidth() for ln in lines[:-1])
    assert lines[-1].get_zorder() > max(ln.get_zorder() for ln in lines[:-1])


def test_step_axis_is_chosen_by_the_data():
    assert figures.early_steps([28.0, 2400.0], 3000)  # one panel solves in the first 5 %: symlog for all
    assert not figures.early_steps([900.0, np.nan], 3000)
    assert not figures.early_steps([np.nan], 3000)  # nothing solved: keep linear


def test_convergence_y_limits_hold_every_value():
    """Guards a bug found in review: curves left the frame at lr = 10 (a fixed ceiling of 10 nats)."""
    bands = pd.DataFrame(
        {
            "init_label": "a",
            "lr": 10.0,
            "step": [0, 10],
            "n": 5,
            "loss_median": [0.7, 40.0],
            "loss_lo": [0.6, 35.0],
            "loss_hi": [0.8, 45.0],
        }
    )
    lo, hi = figures.convergence(bands).axes[0].get_ylim()
    assert lo < 0.6 and hi > 45.0


def test_heatmap_names_its_budget(data):
    fig = figures.failure_heatmap(stats.summarize(data[0], ["init_label", "lr"]), " after 300 steps")
    assert "after 300 steps" in fig.axes[0].get_title()


def test_final_loss_counts_stacked_runs():
    """Guards a bug found in review: 100 identical losses were one invisible stack; now the bin shows its count."""
    runs = pd.DataFrame({"init_label": "a", "lr": 0.1, "final_loss": [np.log(2)] * 100 + [0.01] * 3})
    counts, edges = figures.loss_histogram(runs)
    assert sorted(counts["count"]) == [3, 100]
    texts = [t.get_text() for t in figures.final_loss(runs).axes[0].texts]
    assert "100" in texts and "3" not in texts  # bins under 10 % of the row are not labelled
