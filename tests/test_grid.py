"""Tests for ``xorlab.sweep.grid``: axis forms, init expansion, trajectory indexing, validation and shards.

Expected grids are built independently with ``itertools.product`` over ``TrainConfig``s, not with ``Grid``.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import pytest

from xorlab.core.config import ConfigError, TrainConfig
from xorlab.store.records import run_id
from xorlab.sweep.grid import Grid, shard_of
from xorlab.sweep.runner import SweepOptions, plan


def ids(configs) -> list[str]:
    return [run_id(c) for c in configs]


def all_runs(grid: Grid) -> list[TrainConfig]:
    return [c for runs in grid.trajectories() for c in runs]


# ----------------------------------------------------------------------------------------------- axes
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3, [3]),
        ([4, 1, 2], [4, 1, 2]),
        ("range(1,5)", list(range(1, 5))),
        ("range(2, 11, 3)", list(range(2, 11, 3))),
        ("range(5,0,-2)", list(range(5, 0, -2))),
        ({"start": 1, "stop": 9, "step": 4}, list(range(1, 9, 4))),
        ({"start": 2, "stop": 4}, [2, 3]),
        ([1, 1, 2], [1, 2]),  # repeats count once
    ],
)
@pytest.mark.parametrize("field", ["seed", "rng_skip", "max_steps"])
def test_integer_axis_forms(field, raw, expected):
    grid = Grid.from_mapping({field: raw})
    runs = all_runs(grid)
    assert [getattr(c, field) for c in runs] == expected
    assert len(grid) == len(expected)
    if field == "max_steps":  # one trajectory, read out at every max_steps
        assert list(grid.max_steps) == expected and grid.n_trajectories == 1
    else:  # a range stays lazy (a million seeds are not listed)
        assert list(grid.axes[field]) == expected and grid.n_trajectories == len(expected)


def test_range_mapping_start_defaults_to_zero():
    assert list(Grid.from_mapping({"seed": {"stop": 3}}).axes["seed"]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("field", "value"), [("lr", 0.5), ("rng", "legacy"), ("loss_threshold", 0.01), ("rng_skip", 3)]
)
def test_scalar_is_a_one_value_axis(field, value):
    grid = Grid.from_mapping({field: value, "seed": 0})
    assert len(grid) == 1
    (cfg,) = grid.trajectory(0)
    assert getattr(cfg, field) == value


def test_defaults_are_trainconfig_defaults():
    (cfg,) = Grid.from_mapping({}).trajectory(0)
    assert cfg == TrainConfig()


def test_init_entries_names_and_param_expansion():
    inits = ["notebook", {"name": "normal", "std": [0.01, 0.1]}, {"name": "he_normal", "gain": 2}, "zeros"]
    grid = Grid.from_mapping({"seed": 0, "init": inits})
    got = [(c.init, dict(c.init_params)) for c in all_runs(grid)]
    assert got == [
        ("notebook", {}),
        ("normal", {"std": 0.01}),
        ("normal", {"std": 0.1}),
        ("he_normal", {"gain": 2}),
        ("zeros", {}),
    ]
    assert grid.n_trajectories == len(grid) == 5


def test_len_and_cartesian_product():
    raw = {
        "lr": [0.1, 1.0],
        "max_steps": [10, 30, 20],
        "seed": "range(0,3)",
        "init": ["zeros", {"name": "uniform", "a": [0.5, 2.0]}],
        "rng": ["default", "legacy"],
        "rng_skip": [0, 4],
        "loss_threshold": 0.1,
    }
    grid = Grid.from_mapping(raw)
    inits = [("zeros", {}), ("uniform", {"a": 0.5}), ("uniform", {"a": 2.0})]
    expected = [
        TrainConfig(lr=lr, max_steps=m, seed=s, init=i, init_params=p, rng=r, rng_skip=k, loss_threshold=0.1)
        for lr, s, (i, p), r, k, m in itertools.product(
            [0.1, 1.0], range(3), inits, ["default", "legacy"], [0, 4], [10, 30, 20]
        )
    ]
    assert grid.n_trajectories == 2 * 3 * 3 * 2 * 2
    assert len(grid) == grid.n_trajectories * 3 == len(expected)
    runs = all_runs(grid)
    assert sorted(ids(runs)) == sorted(ids(expected))
    assert len(set(ids(runs))) == len(runs)


def test_trajectory_i_is_ith_of_trajectories():
    inits = ["notebook", {"name": "normal", "std": [1, 3]}]
    grid = Grid.from_mapping({"lr": [0.1, 2.0], "max_steps": [5, 9], "seed": "range(0,4)", "init": inits})
    every = list(grid.trajectories())
    assert len(every) == grid.n_trajectories
    for i, runs in enumerate(every):
        assert grid.trajectory(i) == runs
        # a trajectory's runs differ only in max_steps, in grid order
        assert [c.max_steps for c in runs] == grid.max_steps
        assert len({(c.lr, c.seed, c.init, tuple(c.init_params.items())) for c in runs}) == 1


# ----------------------------------------------------------------------------------------------- errors
BAD_GRIDS = [
    ({"lr": []}, "grid.lr"),
    ({"seed": "range(3,3)"}, "grid.seed"),
    ({"init": []}, "grid.init"),
    ({"init": [{"name": "normal", "std": []}]}, "grid.init.std"),
    ({"lr": [0.1, 0]}, "grid.lr"),
    ({"lr": [0.1, "abc"]}, "grid.lr"),
    ({"lr": [0.1, math.nan]}, "grid.lr"),
    ({"lr": [0.1, True]}, "grid.lr"),
    ({"max_steps": [10, 0]}, "grid.max_steps"),
    ({"max_steps": [10, 1.5]}, "grid.max_steps"),
    ({"seed": [0, 1, -1]}, "grid.seed"),
    ({"seed": "range(-2,2)"}, "grid.seed"),
    ({"seed": "range(0,5,0)"}, "grid.seed"),
    ({"seed": {"start": 0, "stop": 5, "step": 0}}, "grid.seed"),
    ({"seed": {"start": 0, "stop": 5.0}}, "grid.seed"),
    ({"rng_skip": [0, -1]}, "grid.rng_skip"),
    ({"rng": ["default", "mt"]}, "grid.rng"),
    ({"loss_threshold": [0.05, -1]}, "grid.loss_threshold"),
    ({"lr": "range(0,5)"}, "grid.lr"),  # ranges are for integer axes only
    ({"init": ["notebook", "foo"]}, "grid.init"),
    ({"init": [{"std": 1}]}, "grid.init"),
    ({"init": [{"name": "normal", "std": [0.1, -1]}]}, "grid.init.std"),
    ({"init": [{"name": "normal", "bar": 1}]}, "grid.init.bar"),
    ({"init": [{"name": "he_normal", "std": 1}]}, "grid.init.std"),
    ({"init": ["from_file"]}, "grid.init.path"),
    ({"init": [{"name": "from_file", "path": "/nonexistent/start.npz"}]}, "grid.init.path"),
    ({"foo": [1]}, "grid.foo"),
    ({"init_params": {}}, "grid.init_params"),
]


def assert_grid_error(raw, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Grid.from_mapping(raw)
    text = str(info.value)
    assert "\n" not in text, text
    assert info.value.field == field
    assert text.startswith(f"{field}: "), text


@pytest.mark.parametrize(("raw", "field"), BAD_GRIDS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_GRIDS)])
def test_bad_grid_value_is_one_line_config_error(raw, field):
    assert_grid_error(raw, field)


def test_bad_value_is_found_in_any_position():
    """Validation covers every value of every axis, not just the first grid point."""
    good = {"lr": [0.1, 1.0], "seed": [0, 1], "init": ["notebook", "zeros"], "max_steps": [10, 20]}
    Grid.from_mapping(good)
    for field in good:
        assert_grid_error({**good, field: [*good[field], -1]}, f"grid.{field}")


@pytest.mark.parametrize("raw", [{"max_steps": [1000, 1000.0]}, {"seed": [1, True]}], ids=["max_steps", "seed"])
def test_invalid_value_equal_to_a_valid_one_is_rejected(raw):
    """Repeats are dropped only after validation: 1000.0 == 1000 and True == 1 must not hide a bad value."""
    assert_grid_error(raw, f"grid.{next(iter(raw))}")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"lr": [[0.1]]}, "grid.lr"),
        ({"seed": [{"a": 1}]}, "grid.seed"),
        ({"init": [{"name": "normal", "std": [[1]]}]}, "grid.init.std"),
    ],
    ids=["lr", "seed", "init.std"],
)
def test_unhashable_value_is_config_error(raw, field):
    """A nested list or mapping is an invalid value (ConfigError), not a TypeError from deduplication."""
    assert_grid_error(raw, field)


# ----------------------------------------------------------------------------------------------- shards
def test_shard_of_is_deterministic_across_processes():
    cfgs = [TrainConfig(seed=s, lr=lr, init="he_normal") for s in range(20) for lr in (0.1, 1.5)]
    here = [shard_of(c, 7) for c in cfgs]
    assert here == [shard_of(c, 7) for c in cfgs]
    code = (
        "from xorlab.core.config import TrainConfig; from xorlab.sweep.grid import shard_of; "
        "print([shard_of(TrainConfig(seed=s, lr=lr, init='he_normal'), 7) for s in range(20) for lr in (0.1, 1.5)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345"}
    )
    assert out.stdout.strip() == str(here)
    assert set(here) == set(range(7))


def test_shard_of_ignores_max_steps_only():
    for seed in range(30):
        a, b = TrainConfig(seed=seed, max_steps=10), TrainConfig(seed=seed, max_steps=5000)
        assert shard_of(a, 5) == shard_of(b, 5)
    # … but depends on the rest of the trajectory: 30 seeds do not all land in one of 5 shards
    assert len({shard_of(TrainConfig(seed=s), 5) for s in range(30)}) > 1
    assert {shard_of(TrainConfig(seed=s), 1) for s in range(30)} == {0}


def shard_ids(grid: Grid, k: int, n: int, tmp_path) -> set[str]:
    p = plan(grid, SweepOptions(dir=tmp_path / "none", shard=k, num_shards=n, progress=False))
    return {
        run_id(c)
        for i, todo in zip(p.trajectories, p.needed, strict=True)
        for c, t in zip(grid.trajectory(int(i)), todo, strict=True)
        if t
    }


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_partition_the_grid(n, tmp_path):
    grid = Grid.from_mapping(
        {"lr": [0.1, 1.0], "seed": "range(0,25)", "max_steps": [10, 20], "init": ["notebook", "zeros"]}
    )
    shards = [shard_ids(grid, k, n, tmp_path) for k in range(n)]
    assert sum(len(s) for s in shards) == len(grid)  # disjoint …
    assert set().union(*shards) == set(ids(all_runs(grid)))  # … and complete
    for s in shards:  # runs of one trajectory stay together
        assert len(s) % 2 == 0
    assert not (tmp_path / "none").exists()  # planning writes nothing


def test_shard_assignment_independent_of_grid_composition(tmp_path):
    small = Grid.from_mapping({"seed": "range(0,20)", "max_steps": [10]})
    big = Grid.from_mapping(
        {"seed": "range(0,60)", "max_steps": [10, 50], "lr": [0.1, 0.7], "init": ["zeros", "notebook"]}
    )
    for k in range(3):
        assert shard_ids(small, k, 3, tmp_path) <= shard_ids(big, k, 3, tmp_path)


def test_extreme_ranges_are_one_value_or_one_line():
    """A one-value range with a huge step is that value; a range longer than 2**63 is refused like any big grid."""
    from xorlab.sweep.keys import GridKeys

    grid = Grid.from_mapping({"seed": "range(5,6,18446744073709551616)"})
    assert [c.seed for c in all_runs(grid)] == [5] and grid.table([0]).columns["seed"].tolist() == [5]
    assert GridKeys(grid).run_ids([0])[0, 0] == run_id(TrainConfig(seed=5))
    with pytest.raises(ConfigError, match=r"^grid: 100,000,000,000,000,000,000 runs is more than"):
        Grid.from_mapping({"seed": "range(0,100000000000000000000)"})
