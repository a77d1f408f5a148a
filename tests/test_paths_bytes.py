"""Paths are the bytes the OS gave: a store under a folder whose name is not UTF-8 is written, resumed, read and
checked like any other (pyarrow cannot encode such a path; the store opens its files through Python)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xorlab.store.index import recorded_ids
from xorlab.store.reader import load_curves, load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep
from xorlab.tracking import catalog
from xorlab.tracking.maintenance import check_store, clean_store

GRID = {"lr": [0.5], "seed": "range(0,12)", "max_steps": [10, 20]}


@pytest.mark.parametrize("name", [b"caf\xe9", b"\xff\xfe-store", b"ok\x80\x81"], ids=["latin1", "bom", "c1"])
def test_a_store_under_a_non_utf8_path_is_intact(tmp_path, name):
    path = Path(os.fsdecode(bytes(tmp_path) + b"/" + name)) / "s"
    first = run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=8, progress=False))
    again = run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=8, progress=False))
    assert first.trained == 24 and again.trained == 0 and len(recorded_ids(path)) == 24  # resumed, not retrained
    runs, curves = load_runs(path), load_curves(path)
    assert len(runs) == 24 and set(curves["run_id"]) == set(runs["run_id"])
    report = check_store(path)
    assert report.ok and report.runs == 24 and [g["missing"] for g in report.grids] == [0], report.problems
    assert clean_store(path) == []
    assert catalog.describe(path).state == "complete"
