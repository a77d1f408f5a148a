"""Tests for ``xorlab.analysis.surface``: the decision-surface frame is the network's output, one run per outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xorlab.analysis import stats
from xorlab.analysis.surface import SURFACE_BOUNDS, decision_surface, medoid, mode_labels, sample_runs, typical_runs
from xorlab.core.config import TrainConfig
from xorlab.core.data import X, Y
from xorlab.core.net import forward
from xorlab.engine.batch import train_batch
from xorlab.engine.results import stack_params
from xorlab.store.records import params_of, runs_frame


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    cfgs = [
        TrainConfig(lr=lr, max_steps=300, seed=s, init=i)
        for lr in (0.05, 1.0)
        for i in ("notebook", "zeros")
        for s in range(12)
    ]
    return stats.with_init_label(runs_frame(train_batch(cfgs)))


def test_surface_is_the_network_output_on_a_tidy_grid(runs):
    rows = runs[runs.status == "solved"].iloc[:2]
    frame = decision_surface(rows, n=5, bounds=(0.0, 1.0))  # grid points include the four XOR inputs
    assert list(frame.columns) == ["run_id", "x1", "x2", "yhat"] and len(frame) == 2 * 25
    for _, row in rows.iterrows():
        sub = frame[frame.run_id == row.run_id].set_index(["x1", "x2"])["yhat"]
        direct = forward(stack_params([params_of(row)]), X, np.zeros(4)).yhat[:, 0]  # 00, 01, 10, 11
        got = [sub[(x1, x2)] for x1, x2 in X]
        np.testing.assert_allclose(got, direct, rtol=1e-12)
        assert ((direct > 0.5) == (Y > 0.5)).all()  # a solved run separates XOR


def test_surface_default_grid_spans_the_bounds(runs):
    frame = decision_surface(runs.iloc[:1])
    assert frame.x1.min() == SURFACE_BOUNDS[0] and frame.x2.max() == SURFACE_BOUNDS[1]
    assert 0.5 in set(frame.x1) and 0.0 in set(frame.x2)  # odd resolution: the XOR coordinates lie on it


def test_medoid_by_hand():
    # the middle of three collinear points; a far outlier does not move it; a NaN row is never chosen
    pts = np.array([[0.0, 0, 0, 0], [np.nan, 0, 0, 0], [1.0, 0, 0, 0], [2.0, 0, 0, 0], [100.0, 0, 0, 0]])
    assert medoid(pts) == 2
    brute = [np.nansum(np.linalg.norm(pts[[0, 2, 3, 4]] - p, axis=1)) for p in pts[[0, 2, 3, 4]]]
    assert [0, 2, 3, 4][int(np.argmin(brute))] == medoid(pts)
    assert medoid(np.full((3, 4), np.nan)) == 0


def test_medoid_of_a_large_mode_is_seeded():
    pts = np.random.default_rng(1).random((3000, 4))
    assert medoid(pts, max_n=500) == medoid(pts, max_n=500)
    assert np.isfinite(pts[medoid(pts, max_n=500)]).all()


def test_typical_run_per_mode_with_counts(runs):
    ex = typical_runs(runs)
    labels = mode_labels(runs)
    assert list(ex["example"]) == [m for m in stats.MODE_NAMES if m in set(labels)]  # precedence order
    for row in ex.itertuples():
        sub = runs[(labels == row.example).to_numpy()].sort_values("run_id")
        preds = sub[["pred_00", "pred_01", "pred_10", "pred_11"]].to_numpy()
        assert row.n_mode == len(sub) and row.n_runs == len(runs)
        assert row.run_id == sub["run_id"].iloc[medoid(preds)]  # the medoid of the mode's predictions
    assert "saddle_ln2" in set(ex["example"])  # zeros never leaves the symmetric saddle


def test_old_stores_fall_back_to_status_and_plateau(runs):
    old = runs.assign(mode=pd.array([None] * len(runs), dtype="string"))
    labels = set(mode_labels(old))
    assert "solved" in labels and "stuck (ln 2)" in labels and "unknown" not in labels


def test_sampled_runs_are_seeded_and_order_free(runs):
    a = sample_runs(runs, 3)
    b = sample_runs(runs.sample(frac=1, random_state=5), 3)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("mode").size().max() <= 3
    assert set(a["run_id"]) != set(sample_runs(runs, 3, seed=1)["run_id"]) or len(a) == len(runs)


def test_medoid_distances_are_the_broadcast_formula_bit_for_bit():
    """``medoid`` sums ``scipy.spatial.distance.cdist``; the sums are those of the explicit
    ``sqrt(((p_i - p_j) ** 2).sum())`` (so the same run is picked as before), ties and scales included."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(4)
    for n, scale, decimals in ((2, 1.0, None), (37, 1e-3, None), (500, 1e3, None), (800, 1.0, 2), (1200, 1.0, 1)):
        p = rng.random((n, 4)) * scale
        if decimals is not None:
            p = p.round(decimals)  # many equal rows and distances
        broadcast = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)).sum(axis=1)
        assert cdist(p, p).sum(axis=1).tobytes() == broadcast.tobytes()
        assert medoid(p) == int(np.argmin(broadcast))
