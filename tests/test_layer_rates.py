"""Per-layer learning rates (``lr_hidden``, ``lr_output``: multipliers of ``lr``) through the grid, the store and
the reports: stores written before them read as multiplier 1 and resume without retraining a run; the reports
leave the default unsaid and name any other value."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from xorlab.analysis.findings import conditions
from xorlab.core.config import ConfigError, TrainConfig
from xorlab.store.reader import load_runs
from xorlab.store.records import DEFAULTED_COLUMNS, run_id
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

BASE = {"lr": [0.5, 2.0], "seed": "range(0,6)", "init": ["notebook", "xavier_normal"], "max_steps": [40]}


def sweep(path, grid, engine="numpy"):
    return run_sweep(Grid.from_mapping(grid), SweepOptions(dir=path, chunk_size=16, progress=False, engine=engine))


def as_written_before_the_fields(path):
    """Rewrite every runs file of the store at ``path`` without the later columns, as xorlab 0.1 wrote it."""
    for f in (path / "runs").glob("*.parquet"):
        table = pq.read_table(f)
        pq.write_table(table.drop_columns(list(DEFAULTED_COLUMNS)), f)


def test_a_store_from_before_the_fields_reads_as_multiplier_one_and_resumes_without_training(tmp_path):
    path = tmp_path / "s"
    first = sweep(path, BASE)
    assert first.trained == 24
    before = load_runs(path)
    as_written_before_the_fields(path)
    old = load_runs(path)
    assert (old["lr_hidden"] == 1.0).all() and (old["lr_output"] == 1.0).all()
    assert old["lr_hidden"].dtype == before["lr_hidden"].dtype
    # the same grid, and the same grid naming the default explicitly: nothing is trained again
    assert sweep(path, BASE).trained == 0
    assert sweep(path, {**BASE, "lr_hidden": 1.0, "lr_output": [1]}).trained == 0
    # a new rate is new runs, stored beside the old ones
    grown = sweep(path, {**BASE, "lr_output": [1.0, 4.0]})
    assert (grown.already_recorded, grown.trained) == (24, 24)
    runs = load_runs(path)
    assert len(runs) == 48 and sorted(runs["lr_output"].unique()) == [1.0, 4.0]
    filtered = load_runs(path, columns=["run_id", "lr_output"])
    assert (filtered["lr_output"] == 4.0).sum() == 24


def test_per_layer_rates_change_the_runs_and_their_ids(tmp_path):
    path = tmp_path / "s"
    sweep(path, {**BASE, "lr": 1.0, "lr_hidden": [1.0, 0.25], "lr_output": [1.0, 8.0]})
    runs = load_runs(path)
    assert len(runs) == 4 * 12 and runs["run_id"].is_unique
    plain = runs[(runs["lr_hidden"] == 1.0) & (runs["lr_output"] == 1.0)]
    assert set(plain["run_id"]) == {
        run_id(TrainConfig(lr=1.0, seed=s, init=i, max_steps=40))
        for s in range(6)
        for i in ("notebook", "xavier_normal")
    }
    finals = runs.groupby(["lr_hidden", "lr_output"])["final_loss"].apply(
        lambda s: tuple(np.round(s.sort_values(), 12))
    )
    assert finals.nunique() == 4  # every pair of rates trains differently


def test_conditions_leave_the_default_unsaid_and_name_any_other_value(tmp_path):
    sweep(tmp_path / "a", BASE)
    sweep(tmp_path / "b", {**BASE, "lr_output": 3.0})
    sweep(tmp_path / "c", {**BASE, "lr_hidden": [0.5, 1.0]})
    held = {name: conditions(load_runs(tmp_path / name))[0] for name in "abc"}
    swept = {name: conditions(load_runs(tmp_path / name))[1] for name in "abc"}
    assert "lr_hidden" not in held["a"] + swept["a"] and "lr_output" not in held["a"] + swept["a"]
    assert "`lr_output` = 3" in held["b"] and "lr_hidden" not in held["b"]
    assert "`lr_hidden` (2 values: 0.5, 1)" in swept["c"]


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "fast", True])
def test_a_bad_multiplier_names_the_field(value):
    with pytest.raises(ConfigError, match=r"^grid\.lr_output: must be a finite number > 0"):
        Grid.from_mapping({"lr_output": value})
    with pytest.raises(ConfigError, match=r"^lr_hidden: must be a finite number > 0"):
        TrainConfig(lr_hidden=value)


def test_the_grid_takes_continuous_multipliers():
    grid = Grid.from_mapping({"lr": 1.0, "lr_hidden": "logspace(-1,1,3)", "lr_output": "linspace(0.5,1.5,3)"})
    assert list(grid.axes["lr_hidden"]) == [0.1, 1.0, 10.0] and list(grid.axes["lr_output"]) == [0.5, 1.0, 1.5]


def test_compare_names_a_rate_that_differs_from_the_default_and_leaves_equal_defaults_unsaid(tmp_path):
    from xorlab.analysis.comparison import compare
    from xorlab.report.compare import differs_lines

    sweep(tmp_path / "a", BASE)
    sweep(tmp_path / "b", {**BASE, "lr_output": [1.0, 4.0]})
    sweep(tmp_path / "c", {**BASE, "loss_threshold": 0.01})
    a, b, c = (load_runs(tmp_path / n) for n in "abc")
    config = differs_lines(compare(a, b))[0]
    assert "lr_output 1 → 2 values" in config and "lr_hidden" not in config, config
    config = differs_lines(compare(a, c))[0]
    assert "loss_threshold 0.05 → 0.01" in config and "lr_output" not in config and "lr_hidden" not in config, config
