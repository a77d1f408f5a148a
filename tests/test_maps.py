"""Tests for ``xorlab.analysis.maps``: per-point maps against a plain pandas groupby over the same runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xorlab.analysis import maps, stats
from xorlab.core.modes import MODES


def grid_runs(nx=20, ny=17, seeds=3, seed=0, xs=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xs = np.logspace(-2, 1, nx) if xs is None else xs
    ys = np.linspace(0.1, 2.0, ny)
    x, y, s = (a.ravel() for a in np.meshgrid(xs, ys, np.arange(seeds), indexing="ij"))
    n = x.size
    mode = rng.choice(list(MODES), size=n)
    mode = np.where(rng.random(n) < 0.1, None, mode)  # some runs recorded before the taxonomy
    status = np.where(mode == "solved", "solved", rng.choice(["stuck", "diverged", "solved"], size=n))
    steps = np.where(rng.random(n) < 0.6, rng.integers(1, 1000, n).astype(float), np.nan)
    return pd.DataFrame(
        {
            "lr": x,
            "init_std": y,
            "seed": s,
            "init": "normal",
            "loss_threshold": 0.05,
            "max_steps": 1000,
            "rng": "default",
            "rng_skip": 0,
            "init_gain": np.nan,
            "init_a": np.nan,
            "init_path": None,
            "status": pd.array(status, dtype="string"),
            "mode": pd.array(mode, dtype="string"),
            "steps_to_solve": pd.array([None if v != v else int(v) for v in steps], dtype="Int64"),
        }
    )


def test_axes_need_two_float_axes_of_at_least_16_values():
    runs = grid_runs()
    ax, ay = maps.map_axes(runs)
    assert (ax.name, ax.scale, ax.values.size) == ("lr", "log", 20)
    assert (ay.name, ay.scale, ay.values.size) == ("init_std", "linear", 17)
    assert maps.map_axes(grid_runs(ny=15)) is None  # 15 values: a category axis, not a map axis
    assert maps.map_axes(grid_runs().assign(init_std=0.5)) is None


def test_point_maps_equal_a_groupby():
    runs = grid_runs()
    axes = maps.map_axes(runs)
    got = maps.point_maps(runs, axes)
    runs = runs.assign(_mode=stats.run_modes(runs), _ok=runs["status"] == "solved")
    for (x, y), sub in runs.groupby(["lr", "init_std"]):
        i, j = np.searchsorted(axes[1].values, y), np.searchsorted(axes[0].values, x)
        assert got["n"][i, j] == len(sub)
        assert got["solved_rate"][i, j] == sub["_ok"].mean()
        counts = sub["_mode"].value_counts()
        best = [m for m in stats.MODE_NAMES if counts.get(m, 0) == counts.max()][0]  # ties: precedence
        assert stats.MODE_NAMES[got["mode"][i, j]] == best
        km = stats.km_median(stats.kaplan_meier(*stats.survival_data(sub.assign(max_steps=1000))))[0]
        assert (np.isnan(km) and np.isnan(got["steps_median"][i, j])) or km == got["steps_median"][i, j]


def test_points_without_runs_are_empty():
    runs = grid_runs()
    drop = (runs["lr"] == runs["lr"].min()) & (runs["init_std"] == runs["init_std"].max())
    got = maps.point_maps(runs[~drop], maps.map_axes(runs))
    assert got["n"][-1, 0] == 0 and got["mode"][-1, 0] == -1 and np.isnan(got["solved_rate"][-1, 0])


def test_default_by_leaves_the_map_axes_out():
    runs = grid_runs().assign(init_label="normal")
    assert maps.default_by(runs) == []
    runs["loss_threshold"] = np.where(runs["seed"] == 0, 0.05, 0.01)
    assert maps.default_by(runs) == ["loss_threshold"]


def test_a_narrow_logspace_window_is_still_log():
    """At a 1,000x zoom both spacings are nearly even; the grid's own (log) one is the more even."""
    from xorlab.sweep.spaces import space

    narrow = np.array(space("logspace(0.12475,0.12725,1000)"))
    assert maps._scale(narrow) == "log"
    assert maps._scale(np.array(space("linspace(1.33,1.34,1000)"))) == "linear"
