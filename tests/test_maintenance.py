"""Tests for ``xorlab.tracking.maintenance`` and ``xorlab-store``: check finds every kind of damage, clean removes only
what killed writers left and never a live writer's files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xorlab.apps import store as store_app
from xorlab.store import provenance
from xorlab.store.format import StoreError
from xorlab.store.reader import committed_chunks, load_runs, read_curves_file, read_runs_file, runs_to_frame
from xorlab.store.writer import StoreWriter
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep
from xorlab.tracking.maintenance import check_store, clean_store

GRID = {"lr": [0.5], "seed": "range(0,12)", "max_steps": [10, 20]}


@pytest.fixture
def swept(tmp_path):
    path = tmp_path / "s"
    run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=path, chunk_size=8, progress=False))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def age(path, seconds: float = 3600) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_whole_store_checks_ok_and_complete(swept):
    report = check_store(swept)
    assert report.ok and report.runs == report.rows == 24 and report.duplicates == 0 and report.chunks == 3
    assert report.sessions == {"finished": 1} and not report.leftovers
    assert [(g["planned"], g["missing"]) for g in report.grids] == [(24, 0)]
    assert report.lines()[-1] == "ok"


def test_partial_grid_is_reported(swept):
    first = committed_chunks(swept)[0]
    (swept / "curves" / first.name).unlink()
    first.unlink()
    report = check_store(swept)
    assert report.ok and report.grids[0]["missing"] == 8
    assert any("partial, 8 of 24 runs missing" in line for line in report.lines())
    assert report.leftovers == []  # nothing left over: the chunk is simply absent


@pytest.mark.parametrize("content", ["garbage{", "[1, 2]", ""])
def test_an_unreadable_session_record_is_a_problem(swept, content):
    (session,) = (swept / "sessions").glob("*.json")
    session.write_text(content)
    report = check_store(swept)
    assert not report.ok and report.runs == 24
    (problem,) = report.problems
    assert problem.startswith(f"{session}: unreadable session record") and "runs are unaffected" in problem


@pytest.mark.parametrize(
    "damage", ["garbage_runs", "truncated_curves", "foreign_curves", "missing_curves", "null_ids", "foreign_runs"]
)
def test_check_names_each_damaged_file(swept, tmp_path, damage):
    files = committed_chunks(swept)
    runs_file, curves_file = files[0], swept / "curves" / files[0].name
    if damage == "garbage_runs":
        runs_file.write_bytes(b"garbage")
        bad = runs_file
    elif damage == "truncated_curves":
        curves_file.write_bytes(curves_file.read_bytes()[:100])
        bad = curves_file
    elif damage == "foreign_curves":
        shutil.copy(swept / "curves" / files[1].name, curves_file)
        bad = curves_file
    elif damage == "missing_curves":
        curves_file.unlink()
        bad = curves_file
    elif damage == "null_ids":
        t = pq.read_table(runs_file)
        pq.write_table(t.set_column(0, "run_id", pa.nulls(len(t), pa.string())), runs_file)
        bad = runs_file
    else:
        shutil.copy(files[1], swept / "runs" / "foreign.parquet")
        shutil.copy(swept / "curves" / files[1].name, swept / "curves" / "foreign.parquet")
        bad = swept / "runs" / "foreign.parquet"
    report = check_store(swept)
    assert not report.ok and len(report.problems) == 1 and str(bad) in report.problems[0], report.problems
    assert "\n" not in report.problems[0]


def test_duplicates_are_counted_not_problems(swept):
    files = committed_chunks(swept)
    with StoreWriter(swept, heartbeat=False) as w:  # the same runs recorded again (a duplicated chunk)
        t = read_runs_file(files[0])
        w.write(runs_to_frame(t), read_curves_file(files[0]).to_pandas())
    report = check_store(swept)
    assert report.ok and report.duplicates == 8 and report.runs == 24


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError):
        check_store(tmp_path)
    with pytest.raises(StoreError):
        clean_store(tmp_path)


def test_clean_removes_only_dead_leftovers(swept):
    host = json.loads(next((swept / "sessions").glob("*.json")).read_text())["host"]
    # A killed session: running status, dead pid, one uncommitted curves file and a claim.
    dead = {
        "session": "dead",
        "status": "running",
        "pid": dead_pid(),
        "host": host,
        "heartbeat": provenance.now(),
        "started": provenance.now(),
    }
    (swept / "sessions" / "dead.json").write_text(json.dumps(dead))
    orphan = swept / "curves" / "dead-00003.parquet"
    shutil.copy(swept / "curves" / committed_chunks(swept)[0].name, orphan)
    dead_claim = swept / "claims" / "b009.claim"
    dead_claim.write_text(json.dumps({"session": "dead", "token": "x"}))
    old_tmp, new_tmp = swept / "runs" / ".tmp-old.parquet", swept / "runs" / ".tmp-new.parquet"
    old_tmp.write_bytes(b"PAR1 half")
    new_tmp.write_bytes(b"PAR1 half")
    age(old_tmp)
    # A live writer: its uncommitted curves file and its claim must stay.
    with StoreWriter(swept, heartbeat=False) as live:
        live_curves = swept / "curves" / f"{live.session}-00000.parquet"
        shutil.copy(orphan, live_curves)
        age(live_curves)
        live_claim = swept / "claims" / "b010.claim"
        live_claim.write_text(json.dumps({"session": live.session, "token": "y"}))
        report = check_store(swept)
        assert report.ok and report.crashed == ["dead"] and len(report.leftovers) == 3
        assert sorted(clean_store(swept, dry_run=True)) == sorted([orphan, dead_claim, old_tmp])
        assert orphan.exists()
        removed = clean_store(swept)
        assert sorted(removed) == sorted([orphan, dead_claim, old_tmp])
        assert live_curves.exists() and live_claim.exists() and new_tmp.exists()
    assert len(load_runs(swept)) == 24 and check_store(swept).ok


def test_cli_check_and_clean(swept, capsys):
    assert store_app.main(["check", str(swept)]) == 0
    assert capsys.readouterr().out.strip().endswith("ok")
    (swept / "runs" / ".tmp-x.parquet").write_bytes(b"x")
    age(swept / "runs" / ".tmp-x.parquet")
    assert store_app.main(["clean", str(swept)]) == 0
    out = capsys.readouterr().out
    assert ".tmp-x.parquet" in out and "removed 1 leftover files" in out
    first = committed_chunks(swept)[0]
    first.write_bytes(b"garbage")
    assert store_app.main(["check", str(swept)]) == 1
    assert f"problem: {first}" in capsys.readouterr().out
    assert store_app.main(["check", str(swept.parent)]) == 1  # a folder of stores: each is checked
    assert f"problem: {first}" in capsys.readouterr().out
    assert store_app.main(["check", str(swept.parent / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xorlab-store: error: ") and len(err.splitlines()) == 1
