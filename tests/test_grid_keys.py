"""Tests for ``xorlab.sweep.keys`` and ``Grid.table``: the bulk run ids, trajectory hashes, duplicate marks and
columns a sweep uses instead of config objects are those of the configs ``Grid.trajectories`` builds.

The references are computed one config at a time with ``records.run_id`` and ``grid.shard_of``.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tests.test_config import MomentumConfig
from xorlab.core.config import TrainConfig
from xorlab.store.records import config_frame, run_id
from xorlab.sweep.grid import Grid, shard_of
from xorlab.sweep.keys import GridKeys


def configs_of(grid: Grid) -> list:
    return [c for runs in grid.trajectories() for c in runs]


def reference(grid: Grid, num_shards: int = 7):
    """(run ids (T, B), shard per trajectory, duplicate marks (T, B)) one config at a time."""
    ids, shards, dups, seen = [], [], [], set()
    for runs in grid.trajectories():
        row = [run_id(c) for c in runs]
        ids.append(row)
        shards.append(shard_of(runs[0], num_shards))
        dups.append([i in seen for i in row])
        seen.update(row)
    return np.array(ids, dtype=object), np.array(shards), np.array(dups)


def random_grid(rng: random.Random, npz: str) -> dict:
    inits = rng.sample(
        [
            "notebook",
            "he_normal",
            "uniform",
            "orthogonal",
            "zeros",
            {"name": "normal", "std": [0.1, 1.0]},
            "normal",
            {"name": "xavier_uniform", "gain": 2.0},
            {"name": "from_file", "path": npz},
            {"name": "from_file", "path": npz.replace("/start.npz", "/./start.npz")},
        ],
        rng.randint(1, 4),
    )
    grid = {"init": inits, "lr": rng.sample([0.1, 1, 1.0, 0.5, 3e-7, 1e300], rng.randint(1, 3))}
    if rng.random() < 0.7:
        start = rng.choice([0, 5, 2**32 - 10])
        grid["seed"] = f"range({start},{start + rng.randint(1, 9)},{rng.randint(1, 3)})"
    if rng.random() < 0.5:
        grid["max_steps"] = rng.sample([5, 10, 100, 64], rng.randint(1, 3))
    if rng.random() < 0.3:
        grid["rng"] = ["default", "legacy"]
    if rng.random() < 0.3:
        grid["rng_skip"] = [0, 144]
    if rng.random() < 0.3:
        grid["loss_threshold"] = [0.05, 0.5]
    if rng.random() < 0.4:  # a later field: its default is in no text, any other value is
        grid["lr_hidden"] = rng.sample([1.0, 1, 0.5, 4.0], rng.randint(1, 3))
    if rng.random() < 0.4:
        grid["lr_output"] = rng.sample([1.0, 2.0, 0.25], rng.randint(1, 2))
    return grid


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "start.npz"
    np.savez(path, w1=np.ones((2, 4)), b1=np.zeros((1, 4)), w2=np.ones((4, 1)), b2=np.zeros((1, 1)))
    return str(path)


@pytest.mark.parametrize("seed", range(40))
def test_bulk_keys_equal_one_config_at_a_time(seed, npz):
    grid = Grid.from_mapping(random_grid(random.Random(seed), npz))
    keys = GridKeys(grid)
    traj = np.arange(grid.n_trajectories)
    ids, shards, dups = reference(grid)
    assert np.array_equal(keys.run_ids(traj), ids)
    assert np.array_equal(keys.hashes(traj) % 7, shards)
    assert np.array_equal(keys.duplicates(traj), dups)
    order = np.random.default_rng(seed).permutation(traj)  # any subset, in any order
    assert np.array_equal(keys.run_ids(order), ids[order])


@pytest.mark.parametrize("seed", range(10))
def test_ids_at_other_budgets_are_the_ids_of_those_configs(seed, npz):
    """What an extending sweep looks its sources up by: the run_id at a budget the grid does not have."""
    grid = Grid.from_mapping(random_grid(random.Random(seed), npz))
    traj = np.random.default_rng(seed).permutation(grid.n_trajectories)[:25]
    budgets = [7, 1000, 123456]
    got = GridKeys(grid).run_ids_at(traj, budgets)
    configs = grid.table(traj, np.ones((len(traj), len(grid.max_steps)), dtype=bool))
    first = [configs[i * len(grid.max_steps)] for i in range(len(traj))]  # one config per trajectory
    want = [[run_id(replace(c, max_steps=b)) for b in budgets] for c in first]
    assert got.tolist() == want


def test_equal_runs_written_two_ways_are_duplicates(npz):
    grid = Grid.from_mapping(
        {
            "init": [
                "normal",
                {"name": "normal", "std": 1.0},
                {"name": "from_file", "path": npz},
                {"name": "from_file", "path": npz.replace("/start.npz", "/./start.npz")},
            ],
            "seed": [0, 1],
        }
    )
    dups = GridKeys(grid).duplicates(np.arange(grid.n_trajectories))
    assert dups[:, 0].tolist() == [False, True, False, True] * 2  # seed-major, init-minor


def test_a_new_field_is_keyed_too():
    """A subclass field sorts between the others: its axis becomes a segment of its own."""
    grid = Grid.from_mapping(
        {"momentum": [0.0, 0.9], "seed": [0, 1], "max_steps": [5, 10], "lr": [0.1, 2.0]}, MomentumConfig
    )
    ids, shards, _ = reference(grid)
    keys = GridKeys(grid)
    assert np.array_equal(keys.run_ids(np.arange(grid.n_trajectories)), ids)
    assert np.array_equal(keys.hashes(np.arange(grid.n_trajectories)) % 7, shards)


def test_later_fields_at_their_default_keep_every_earlier_run_id():
    """lr_hidden/lr_output at 1.0 are left out of the id and trajectory texts: the runs of a grid that sets them
    to 1.0 have the ids and shards of the same grid without them (stores written before 0.2 resume as they are)."""
    base = {"lr": [0.1, 2.0], "seed": "range(0,5)", "init": ["notebook", "xavier_normal"], "max_steps": [5, 10]}
    plain, explicit = Grid.from_mapping(base), Grid.from_mapping({**base, "lr_hidden": 1.0, "lr_output": [1]})
    traj = np.arange(plain.n_trajectories)
    assert np.array_equal(GridKeys(plain).run_ids(traj), GridKeys(explicit).run_ids(traj))
    assert np.array_equal(GridKeys(plain).hashes(traj), GridKeys(explicit).hashes(traj))
    other = Grid.from_mapping({**base, "lr_output": 2.0})
    assert not set(GridKeys(other).run_ids(traj).ravel()) & set(GridKeys(plain).run_ids(traj).ravel())
    assert GridKeys(plain).run_ids(traj)[0, 0] == run_id(TrainConfig(lr=0.1, seed=0, max_steps=5))


def test_a_huge_seed_range_is_never_listed():
    grid = Grid.from_mapping({"seed": "range(0,2000000)", "max_steps": [5]})
    assert isinstance(grid.axes["seed"], range)
    last = np.array([grid.n_trajectories - 1, 17])
    expected = [run_id(grid.trajectory(int(t))[0]) for t in last]
    assert GridKeys(grid).run_ids(last)[:, 0].tolist() == expected


@pytest.mark.parametrize("seed", range(10))
def test_table_equals_the_configs(seed, npz):
    grid = Grid.from_mapping(random_grid(random.Random(seed), npz))
    configs = configs_of(grid)
    rng = np.random.default_rng(seed)
    traj = np.arange(grid.n_trajectories)
    needed = rng.random((traj.size, len(grid.max_steps))) < 0.7
    table = grid.table(traj, needed)
    chosen = [c for c, keep in zip(configs, needed.reshape(-1), strict=True) if keep]
    assert list(table) == chosen and [type(c) for c in table] == [type(c) for c in chosen]
    pd.testing.assert_frame_equal(config_frame(table), config_frame(chosen))
    # runs of one trajectory share a code; different trajectories share none, unless the grid lists one trajectory
    # twice (``normal`` and ``{name: normal, std: 1.0}``), which the sweep marks as duplicates and never trains
    keys = [c.trajectory_key() for c in chosen]
    dup = GridKeys(grid).duplicates(traj)[np.nonzero(needed)]
    for i in range(len(keys)):
        for j in range(len(keys)):
            same_code = table.trajectory[i] == table.trajectory[j]
            assert same_code <= (keys[i] == keys[j])
            assert same_code or keys[i] != keys[j] or dup[i] or dup[j]
