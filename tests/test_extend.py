"""Tests for ``xorlab.sweep.extend``: extending ``max_steps`` of a finished grid trains only the extra steps, and the
records equal training from scratch bit for bit (same engine)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from xorlab.store.reader import load_curves, load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.options import SweepOptions
from xorlab.sweep.runner import run_sweep

GRID = {"lr": [0.5, 2.0, 1e308], "seed": "range(0,12)", "init": ["notebook", "orthogonal"]}


def records(path, max_steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = load_runs(path).drop(columns="sweep")
    runs = runs[runs["max_steps"] == max_steps].sort_values("run_id", ignore_index=True)
    curves = load_curves(path, run_ids=runs["run_id"]).drop(columns="sweep").astype({"run_id": str})
    return runs, curves.sort_values(["run_id", "step"], ignore_index=True)


def sessions(path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((path / "sessions").glob("*.json"))]


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_extending_max_steps_continues_and_equals_training_from_scratch(tmp_path, engine):
    opts = {"engine": engine, "log_every": 10, "progress": False}
    grown, scratch = tmp_path / "grown", tmp_path / "scratch"
    run_sweep(Grid.from_mapping({**GRID, "max_steps": [200]}), SweepOptions(dir=grown, **opts))
    summary = run_sweep(Grid.from_mapping({**GRID, "max_steps": [200, 400]}), SweepOptions(dir=grown, **opts))
    run_sweep(Grid.from_mapping({**GRID, "max_steps": [400]}), SweepOptions(dir=scratch, **opts))
    assert summary.trained == 72 and summary.already_recorded == 72 and summary.continued == 48
    runs = load_runs(grown)
    diverged = int(runs[runs["max_steps"] == 200]["diverged_step"].notna().sum())
    assert diverged == 24 and summary.continued == 72 - diverged  # diverged runs start over
    assert sorted(s.get("continued") for s in sessions(grown)) == [0, 48]  # recorded in the session too
    got, want = records(grown, 400), records(scratch, 400)
    pd.testing.assert_frame_equal(got[0], want[0])
    pd.testing.assert_frame_equal(got[1], want[1])
    assert set(got[0]["status"]) >= {"solved", "stuck", "diverged"}


def test_a_shorter_record_logged_at_another_interval_is_not_continued(tmp_path):
    path = tmp_path / "s"
    run_sweep(
        Grid.from_mapping({**GRID, "lr": [0.5], "max_steps": [200]}),
        SweepOptions(dir=path, log_every=10, progress=False),
    )
    summary = run_sweep(
        Grid.from_mapping({**GRID, "lr": [0.5], "max_steps": [400]}),
        SweepOptions(dir=path, log_every=7, progress=False),
    )
    assert summary.trained == 24 and summary.continued == 0
    steps = load_curves(path, run_ids=load_runs(path).query("max_steps == 400")["run_id"])["step"]
    assert set(steps) == set(range(0, 400, 7)) | {400}


def test_resuming_without_anything_to_continue_does_not_load_the_store(tmp_path, monkeypatch):
    """Adding seeds at the same budget has nothing to continue: the records are not read (only their budgets)."""

    path = tmp_path / "s"
    run_sweep(Grid.from_mapping({"seed": "range(0,4)", "max_steps": [100]}), SweepOptions(dir=path, progress=False))
    from xorlab.store import reader

    monkeypatch.setattr(reader, "load_runs", lambda *a, **k: pytest.fail("the whole store was loaded"))
    grown = Grid.from_mapping({"seed": "range(0,8)", "max_steps": [100, 120]})  # 120 - 100 < 64 new steps
    summary = run_sweep(grown, SweepOptions(dir=path, progress=False))
    assert (summary.trained, summary.continued) == (12, 0)
