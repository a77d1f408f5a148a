"""Multi-process runs through Hydra's launcher plugins: concurrent shards of one sweep write one store, and a
``xorlab-train`` multirun leaves one record per job, each equal to ``xorlab.train``."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from xorlab import TrainConfig, train
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import run_id
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

pytestmark = pytest.mark.slow

LAUNCHERS = ["joblib", "submitit_local"]
GRID = {
    "lr": [0.5, 1e306],
    "seed": "range(0,20)",
    "max_steps": [30, 80],
    "init": ["notebook", {"name": "normal", "std": 1e3}],
}
GRID_ARGS = [
    "grid.lr=[0.5,1e306]",
    "grid.seed=range(0,20)",
    "grid.max_steps=[30,80]",
    "grid.init=[notebook,{name:normal,std:1000.0}]",
    "sweep.chunk_size=10",
    "sweep.progress=false",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference")
    run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, progress=False))
    return path


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_concurrent_shards_fill_one_store(tmp_path, cli, raw_run_ids, reference, launcher):
    store = tmp_path / "D"
    out = cli(
        "xorlab-sweep",
        "-m",
        "sweep.shard=range(0,3)",
        "sweep.num_shards=3",
        f"hydra/launcher={launcher}",
        f"sweep.dir={store}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        "sweep.engine=numpy",
        *GRID_ARGS,
        cwd=tmp_path,
        script=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert len(list((store / "sessions").glob("*.json"))) == 3  # three writers …
    ids = raw_run_ids(store)
    n = len(Grid.from_mapping(GRID))
    assert len(ids) == len(set(ids)) == n  # … one record per run
    for load, key in ((load_runs, ["run_id"]), (load_curves, ["run_id", "step"])):
        # run_id is categorical in curves: sort by its text, not by category order
        got, expected = (
            load(p).drop(columns="sweep").astype({"run_id": str}).sort_values(key, ignore_index=True)
            for p in (store, reference)
        )
        pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_train_multirun(tmp_path, cli, same_run, launcher):
    sweep_dir = tmp_path / "D"
    out = cli(
        "xorlab-train",
        "-m",
        "seed=0,1",
        "init=he_normal,zeros",
        "max_steps=120",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    runs = load_runs(sweep_dir).set_index("run_id")
    curves = load_curves(sweep_dir)
    configs = [TrainConfig(seed=s, init=i, max_steps=120) for s, i in itertools.product((0, 1), ("he_normal", "zeros"))]
    assert sorted(runs.index) == sorted(run_id(c) for c in configs)
    for cfg in configs:
        same_run(runs.loc[run_id(cfg)], train(cfg), curves[curves["run_id"] == run_id(cfg)], every=1)
