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


def test_compare_names_stores_under_non_utf8_paths(tmp_path, capsys):
    from xorlab.apps import runs as runs_app

    path = Path(os.fsdecode(bytes(tmp_path) + b"/r\xe9sultats"))
    run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=8, progress=False))
    assert runs_app.main(["compare", str(path), str(path), "--out", str(tmp_path / "cmp")]) == 0
    assert "r\\xe9sultats" in (tmp_path / "cmp" / "compare.md").read_text()
    assert "\\xe9" in capsys.readouterr().out


def test_an_init_file_under_a_non_utf8_path_is_one_honest_line(tmp_path):
    import numpy as np

    from xorlab.core.config import ConfigError

    f = os.fsdecode(bytes(tmp_path) + b"/w\xe9.npz")
    np.savez(f, w1=np.ones((2, 4)), b1=np.zeros((1, 4)), w2=np.ones((4, 1)), b2=np.zeros((1, 1)))
    grid = {"init": [{"name": "from_file", "path": f}], "seed": [0], "max_steps": [10]}
    with pytest.raises(ConfigError) as err:
        run_sweep(Grid.from_mapping(grid), SweepOptions(dir=tmp_path / "s", progress=False))
    assert "not valid UTF-8" in str(err.value) and "\\xe9" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "s").exists()


def test_a_non_utf8_path_on_the_command_line_is_one_honest_line(tmp_path):
    import subprocess
    import sys

    path = bytes(tmp_path) + b"/caf\xe9/store"
    cmd = [sys.executable.encode(), b"-m", b"xorlab.apps.sweep", b"grid.seed=[0,1]", b"sweep.dir=" + path]
    result = subprocess.run(cmd, capture_output=True, timeout=300)
    (line,) = result.stderr.decode().splitlines()
    assert result.returncode == 2 and line.startswith("xorlab-sweep: error: sweep.dir: sweep.dir=")
    assert "caf\\xe9" in line and "not UTF-8" in line and not os.path.exists(path)
