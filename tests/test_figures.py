"""Tests for ``xorlab.report.figures``: every figure builds from real (small) data, headless and byte-reproducibly."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
        panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>" and ax.has_data()]
        for ax in panels:  # a one-panel figure may be titled by the figure's title (it wraps; an axes title is cut)
            assert ax.get_title() or (len(panels) == 1 and fig.get_suptitle()), stem
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
    assert "after 300 steps" in fig.get_suptitle()


def test_final_loss_counts_stacked_runs():
    """Guards a bug found in review: 100 identical losses were one invisible stack; now the bin shows its count."""
    runs = pd.DataFrame({"init_label": "a", "lr": 0.1, "final_loss": [np.log(2)] * 100 + [0.01] * 3})
    counts, edges = figures.loss_histogram(runs)
    assert sorted(counts["count"]) == [3, 100]
    texts = [t.get_text() for t in figures.final_loss(runs).axes[0].texts]
    assert "100" in texts and "3" not in texts  # bins under 10 % of the row are not labelled


# ---------------------------------------------------------------------------------------- reading
STD_LABELS = [f"normal(std={v:g})" for v in np.geomspace(0.01, 10, 18).round(4)]


def _bands(labels, lrs=(0.5,)) -> pd.DataFrame:
    rows = [
        {
            "init_label": lab,
            "lr": lr,
            "step": st,
            "n": 5,
            "loss_median": 0.7 / (1 + st * (i + 1) / 50),
            "loss_lo": 0.6 / (1 + st * (i + 1) / 50),
            "loss_hi": 0.8 / (1 + st * (i + 1) / 50),
        }
        for i, lab in enumerate(labels)
        for lr in lrs
        for st in (0, 10, 100, 1000)
    ]
    return pd.DataFrame(rows)


def test_palette_stays_distinct_past_12_categories():
    """Guards a found bug: colours repeated past 12 groups."""
    labels = [f"scheme_{chr(97 + i)}" for i in range(36)]
    pal = figures.init_palette(labels)
    assert len(set(pal.values())) == 36
    colours = [lab(c) for c in pal.values()]
    assert min(np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[:i]) > 15


def test_a_numeric_scan_gets_a_sequential_map_in_value_order_and_a_colour_bar():
    labels = STD_LABELS[::-1]  # any input order
    hue = figures.numeric_hue(labels)
    assert hue is not None and hue.param == "std" and hue.scheme == "normal"
    pal = figures.init_palette(labels)
    lum = [lab(pal[x])[0] for x in STD_LABELS]
    assert lum == sorted(lum)  # viridis: lightness grows with the value, so the colour reads as the number
    fig = figures.convergence(_bands(labels))
    assert not fig.legends  # a colour bar, not an 18-entry legend
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "std" in bars[0].get_ylabel()
    assert figures.numeric_hue(["normal(std=1)", "normal(std=2)"]) is None  # a few values: a palette
    assert figures.numeric_hue([f"he_normal(gain={g})" for g in range(6)] + ["zeros"]) is None  # mixed schemes


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("n", [13, 20, 30])
def test_legends_never_overlap_titles_or_leave_the_figure(n):
    """Guards a found bug: with 18 groups the legend ran over the title and off the page."""
    labels = [f"scheme_{i}" for i in range(n)]
    for fig in (figures.convergence(_bands(labels, (0.1, 1.0))), figures.convergence(_bands(labels))):
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw_without_rendering()
        page = fig.bbox
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1
        titles = [fig._suptitle] + [ax.title for ax in fig.axes]
        for t in titles:
            if t is not None and t.get_text():
                assert not _overlaps(box, t.get_window_extent(renderer)), t.get_text()


def test_heatmap_rows_in_numeric_order_and_title_inside_the_figure():
    summary = pd.DataFrame({"init_label": STD_LABELS[::-1], "lr": 0.5, "success_rate": np.linspace(0, 1, 18), "n": 100})
    fig = figures.failure_heatmap(summary, " after 2,000 steps")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == STD_LABELS
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    box = fig._suptitle.get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1


def test_final_loss_draws_plateau_runs_on_their_lines():
    """Guards a found bug: 100 runs at exactly ln 2 were drawn between the 0.477 and 0.693 lines."""
    from xorlab.core.outcome import PLATEAUS

    losses = [PLATEAUS["ln2"]] * 100 + [PLATEAUS["0.477"] + 0.003] * 20 + [PLATEAUS["ln2/2"] - 0.002] * 10
    runs = pd.DataFrame({"init_label": "zeros", "lr": 0.1, "final_loss": losses + [1e-3] * 5})
    counts, _ = figures.loss_histogram(runs)
    at = dict(zip(counts["count"], counts["x"], strict=True))
    assert at[100] == PLATEAUS["ln2"] and at[20] == PLATEAUS["0.477"] and at[10] == PLATEAUS["ln2/2"]
    fig = figures.final_loss(runs)
    xs = np.concatenate([c.get_offsets()[:, 0] for c in fig.axes[0].collections])
    assert PLATEAUS["ln2"] in xs and PLATEAUS["0.477"] in xs


def test_failure_modes_show_a_rare_mode_as_a_share_of_the_failures():
    """Guards a found bug: a mode holding 0.7 % of the runs was invisible on a 0–1 axis of all runs."""
    summary = pd.DataFrame(
        {
            "init_label": ["a", "b"],
            "lr": 0.5,
            "n": 140,
            "mode_solved": [139, 140],
            "mode_solved_rate": [139 / 140, 1.0],
            "mode_one_wrong": [1, 0],
            "mode_one_wrong_rate": [1 / 140, 0.0],
        }
    )
    fig = mode_figures.failure_modes(summary)
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    heights = sorted(p.get_height() for p in hatched)
    assert heights[-1] == pytest.approx(1.0)  # the one failure is the whole of the failures of "a"
    texts = [t.get_text() for t in ax.texts]
    assert "no failure" in texts  # "b" has none: said, not an empty bar
