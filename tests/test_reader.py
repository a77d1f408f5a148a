"""Tests for ``xorlab.store.reader.StoreReader``: one object reads a store, each file at most once per question,
only the columns asked for; ``xorlab-runs show`` of one run opens its runs file for the row once and its curves
file once, and no other curves file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from xorlab.apps import runs as runs_app
from xorlab.store.reader import StoreReader, load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reader") / "s"
    grid = Grid.from_mapping({"seed": "range(0,12)", "lr": [0.1, 1.0], "max_steps": [40]})
    run_sweep(grid, SweepOptions(dir=path, progress=False, chunk_size=5, engine="numpy"))
    assert len(list((path / "runs").glob("*.parquet"))) >= 4
    return path


@pytest.fixture
def opened(monkeypatch) -> Counter:
    """Counts, per file name and folder, every Parquet open (footer) and every whole-file byte read."""
    seen: Counter = Counter()
    real_pf, real_bytes = pq.ParquetFile, Path.read_bytes

    def parquet_file(source, *args, **kwargs):
        seen[("open", Path(source).parent.name, Path(source).name, tuple(kwargs.get("columns") or ()))] += 1
        return real_pf(source, *args, **kwargs)

    def read_bytes(self):
        seen[("bytes", self.parent.name, self.name, ())] += 1
        return real_bytes(self)

    monkeypatch.setattr(pq, "ParquetFile", parquet_file)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return seen


def test_the_reader_reads_what_the_loader_reads(store):
    reader = StoreReader(store)
    mine = reader.runs()
    theirs = load_runs(store)[list(mine.columns)]
    assert mine.sort_values("run_id").reset_index(drop=True).equals(theirs.sort_values("run_id").reset_index(drop=True))
    assert reader.all_ids() == set(theirs["run_id"])
    assert list(reader.runs(columns=["run_id", "lr"]).columns) == ["run_id", "lr"]


def test_show_of_one_run_reads_its_files_once(store, opened, tmp_path, capsys):
    run_id = sorted(load_runs(store)["run_id"])[7]
    chunk = StoreReader(store).locate(run_id).name
    opened.clear()
    assert runs_app.main(["show", str(store), run_id[:10], "--plot", str(tmp_path / "p.png")]) == 0
    curves = {k: n for k, n in opened.items() if k[1] == "curves"}
    assert curves == {("bytes", "curves", chunk, ()): 1}, curves  # its chunk's curves file, once; no other
    runs_opens = Counter({k[2]: n for k, n in opened.items() if k[1] == "runs" and k[0] == "open"})
    assert runs_opens, opened
    assert runs_opens[chunk] == 2 and set(runs_opens.values()) <= {1, 2}  # ids of every file; the row once
    assert run_id in capsys.readouterr().out
