"""Tests for ``xorlab.core.runtable``: a ``RunTable`` holds exactly its configs, and the engine trains a table and the
equivalent list of configs to the same bits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xorlab.core.config import TrainConfig
from xorlab.core.runtable import RunTable
from xorlab.engine.batch import train_batch
from xorlab.store.records import config_frame, runs_frame

CONFIGS = [
    TrainConfig(seed=3, lr=0.5, max_steps=20),
    TrainConfig(seed=3, lr=0.5, max_steps=10),  # shares the trajectory of the first
    TrainConfig(seed=1, init="normal", init_params={"std": 0.3}, rng="legacy", rng_skip=2),
    TrainConfig(seed=2**63 - 1, init="uniform", loss_threshold=0.2, max_steps=7),
    TrainConfig(seed=0, init="zeros"),
]


def test_a_table_holds_its_configs():
    table = RunTable.from_configs(CONFIGS)
    assert len(table) == len(CONFIGS) and list(table) == CONFIGS
    assert table[2].init_params == {"std": 0.3} and table[3].seed == 2**63 - 1
    assert list(table[1:3]) == CONFIGS[1:3] and list(table.take(np.array([4, 0]))) == [CONFIGS[4], CONFIGS[0]]
    assert RunTable.from_configs(table) is table
    assert table.columns["init_std"][2] == 0.3 and np.isnan(table.columns["init_std"][0])
    assert table.columns["init_path"].tolist() == [None] * 5


def test_lanes_are_one_per_trajectory():
    first, lane_of = RunTable.from_configs(CONFIGS).lanes()
    assert lane_of[0] == lane_of[1] and len(set(lane_of.tolist())) == 4
    assert [CONFIGS[i].trajectory_key() for i in first] == [CONFIGS[i].trajectory_key() for i in (0, 2, 3, 4)]


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_training_a_table_equals_training_its_configs(engine):
    table = RunTable.from_configs(CONFIGS)
    a, b = train_batch(CONFIGS, engine=engine), train_batch(table, engine=engine)
    assert b.configs is table and a.configs == CONFIGS
    for name in ("losses", "final_loss", "predictions", "steps_to_solve", "diverged_step", "loss_tail"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    pd.testing.assert_frame_equal(runs_frame(a), runs_frame(b))
    pd.testing.assert_frame_equal(config_frame(CONFIGS), config_frame(table))
