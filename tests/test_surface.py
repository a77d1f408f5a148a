"""Tests for ``xorlab.surface``: the decision-surface frame is the network's output, one run per outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xorlab import stats
from xorlab.config import TrainConfig
from xorlab.data import X, Y
from xorlab.engine import stack_params, train_batch
from xorlab.net import forward
from xorlab.records import params_of, runs_frame
from xorlab.surface import SURFACE_BOUNDS, decision_surface, example_runs


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    cfgs = [TrainConfig(lr=lr, max_steps=300, seed=s, init=i) for lr in (0.05, 1.0)
            for i in ("notebook", "zeros") for s in range(12)]  # fmt: skip
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


def test_example_runs_one_per_outcome(runs):
    ex = example_runs(runs)
    names = list(ex["example"])
    assert names[0] == "solved" and len(names) == len(set(names))
    assert ("slow" in names) == (runs.status == "slow").any()
    assert any(n.startswith("stuck") for n in names)  # zeros never solves
