"""xorlab.tracking.catalog: finding stores, their state and grid, run lookup by prefix, runs of several stores."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from xorlab.store import provenance
from xorlab.store.reader import load_runs
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep
from xorlab.tracking import catalog

GRID = {"lr": [0.5, 3.0], "init": ["notebook", "zeros"], "seed": "range(0,5)", "max_steps": [40, 80]}  # 40 runs


def sweep(path: Path, grid: dict = GRID, **opts) -> Path:
    run_sweep(Grid.from_mapping(grid), SweepOptions(dir=path, progress=False, **opts), config={"grid": grid})
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stores")
    sweep(root / "a")
    sweep(root / "nested" / "b")  # the same grid: same run_ids in a second store
    return root


def _ago(**delta) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat(timespec="seconds")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def add_session(store: Path, name: str, **info) -> None:
    (store / "sessions" / f"{name}.json").write_text(json.dumps(info))


# ----------------------------------------------------------------------------------------------- sessions
@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"status": "finished"}, "finished"),
        ({"status": "interrupted"}, "interrupted"),
        ({"status": "failed"}, "failed"),
        ({"status": "running", "pid": "SELF", "host": "HERE", "heartbeat": 1}, "running"),
        ({"status": "running", "pid": "DEAD", "host": "HERE", "heartbeat": 1}, "crashed"),
        # another host, silent for 2 min by its timestamp: not proven dead until this reader watches it silent
        ({"status": "running", "pid": "SELF", "host": "elsewhere", "heartbeat": 120}, "stalled"),
        ({"status": "running", "pid": "SELF", "host": "HERE", "heartbeat": 120}, "stalled"),  # paused, pid alive
        ({"status": "running", "pid": 1, "host": "elsewhere", "heartbeat": 5}, "running"),
        ({"status": "running", "started": 2 * 3600}, "stalled"),  # no pid, no heartbeat: a writer of old
        ({"status": "running", "started": 2 * 86400}, "stalled"),
    ],
)
def test_session_state(info, expected):
    """Times are given as seconds ago and pids symbolically, resolved when the test runs."""
    info = dict(info)
    for key in ("heartbeat", "started"):
        if key in info:
            info[key] = _ago(seconds=info[key])
    info["pid"] = {"SELF": os.getpid(), "DEAD": dead_pid()}.get(info.get("pid"), info.get("pid"))
    info["host"] = socket.gethostname() if info.get("host") == "HERE" else info.get("host")
    assert catalog.session_state(info) == expected


@pytest.mark.parametrize(
    ("recorded", "planned", "states", "expected"),
    [
        (10, 40, [(0, "finished"), (1, "running")], "running"),
        (40, 40, [(0, "crashed"), (0, "finished")], "complete"),
        (50, 40, [(0, "finished")], "complete"),  # a grid that shrank later: still everything planned
        (10, 40, [(0, "crashed")], "crashed"),
        (10, 40, [(0, "failed")], "crashed"),
        (10, 40, [(0, "crashed"), (0, "interrupted")], "partial"),  # resumed, then stopped by the user
        (10, 40, [(0, "finished"), (1, "crashed")], "crashed"),  # shard 1's only writer died
        (20, 40, [(0, "finished")], "partial"),  # shard 1 never ran
        (1, None, [(0, "finished")], "complete"),  # no plan known (an xorlab-train record)
    ],
)
def test_store_state(recorded, planned, states, expected):
    assert catalog.store_state(recorded, planned, states) == expected


# ----------------------------------------------------------------------------------------------- describe
def test_find_and_describe_complete_stores(stores):
    found = catalog.find_stores(stores)
    assert found == [stores / "a", stores / "nested" / "b"]
    info = catalog.describe(found[0])
    assert (info.runs, info.planned, info.state) == (40, 40, "complete")
    assert info.grid == "init×2 lr×2 seed×5 max_steps×2"
    assert info.axes == {"init": 2, "lr": 2, "seed": 5, "max_steps": 2, "rng": 1, "rng_skip": 1, "loss_threshold": 1}
    assert info.commit == provenance.code_version()["git_commit"]
    assert info.created and info.last_written and info.created <= info.last_written
    record = info.to_json()
    assert {"path", "runs", "planned", "state", "created", "commit", "axes"} <= set(record)
    json.dumps(record)


def test_the_code_version_from_sessions_alone_is_what_list_shows(tmp_path):
    """``code_version`` (compare reads only this) equals ``describe(...).code``, for one commit, several, dirty."""
    store = sweep(tmp_path / "s")
    assert catalog.code_version(store) == catalog.describe(store).code != ""
    add_session(store, "20991231T000000-aaaaaaaa", git_commit="f" * 40, git_dirty=True, started="2099-12-31T00:00:00")
    assert catalog.code_version(store) == catalog.describe(store).code
    assert catalog.code_version(store).startswith("fffffff+dirty")


def test_find_stores_errors_are_one_line(tmp_path):
    with pytest.raises(catalog.CatalogError, match="no such file"):
        catalog.find_stores(tmp_path / "missing")
    with pytest.raises(catalog.CatalogError, match="no xorlab records"):
        catalog.find_stores(tmp_path)


def test_partial_running_and_crashed_states(tmp_path):
    store = sweep(tmp_path / "s", shard=0, num_shards=2)  # half the grid: partial
    info = catalog.describe(store)
    assert info.planned == 40 and 0 < info.runs < 40 and info.state == "partial"
    host = socket.gethostname()
    add_session(
        store,
        "z-live",
        status="running",
        pid=os.getpid(),
        host=host,
        heartbeat=_ago(seconds=2),
        started=_ago(seconds=3),
        shard=1,
        num_shards=2,
        planned_runs=40,
    )
    assert catalog.describe(store).state == "running"
    add_session(
        store,
        "z-live",
        status="running",
        pid=dead_pid(),
        host=host,
        heartbeat=_ago(seconds=2),
        started=_ago(seconds=3),
        shard=1,
        num_shards=2,
        planned_runs=40,
    )
    assert catalog.describe(store).state == "crashed"
    sweep(store, shard=1, num_shards=2)  # shard 1 finished by a later session: the crash no longer matters
    info = catalog.describe(store)
    assert (info.runs, info.state) == (40, "complete")


def test_a_damaged_store_is_listed_as_damaged_beside_the_others(tmp_path, capsys, caplog):
    from xorlab.apps import runs as runs_app
    from xorlab.store import reader as store_mod

    sweep(tmp_path / "good")
    bad = sweep(tmp_path / "bad", chunk_size=8)
    store_mod.committed_chunks(bad)[0].write_bytes(b"not parquet")
    info = catalog.describe(bad)
    assert (info.state, info.runs, info.planned) == ("damaged", 32, 40)  # the readable chunks' runs
    assert runs_app.main(["list", str(tmp_path)]) == 0  # once: one line, the whole listing refused
    out = capsys.readouterr()
    rows = out.out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == [str(bad), str(tmp_path / "good")]
    assert rows[0].split()[-1] == "damaged" and rows[1].split()[-1] == "complete"
    assert f"skipping {store_mod.committed_chunks(bad)[0]}" in caplog.text and "xorlab-store check" in caplog.text


def test_grid_from_session_field_and_from_runs(tmp_path):
    store = sweep(tmp_path / "s")
    for f in (store / "sessions").glob("*.json"):  # a session without any grid: summarise the recorded runs
        info = json.loads(f.read_text())
        info.pop("config")
        f.write_text(json.dumps(info))
    assert catalog.describe(store).grid == "init×2 lr×2 seed×5 max_steps×2"
    add_session(
        store,
        "z-grid",
        status="finished",
        started=_ago(seconds=-60),
        planned_runs=60,  # the latest
        grid={"lr": [0.5, 3.0, 1.0], "seed": list(range(5)), "init": ["notebook", "zeros"], "max_steps": [40, 80]},
    )
    info = catalog.describe(store)
    assert (info.planned, info.grid, info.state) == (60, "init×2 lr×3 seed×5 max_steps×2", "partial")


# ----------------------------------------------------------------------------------------------- runs
def test_resolve_run_by_prefix(stores):
    ids = sorted(load_runs(stores / "a")["run_id"])
    assert catalog.resolve_run(stores / "a", ids[0]) == ids[0]
    unique = next(i for i in ids if sum(j.startswith(i[:6]) for j in ids) == 1)
    assert catalog.resolve_run(stores / "a", unique[:6].upper()) == unique
    first = {i[0] for i in ids}
    shared = next(c for c in sorted(first) if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(catalog.CatalogError, match=f"'{shared}' is ambiguous; candidates: {shared}"):
        catalog.resolve_run(stores / "a", shared)
    with pytest.raises(catalog.CatalogError, match="no run in .* starts with it"):
        catalog.resolve_run(stores / "a", "zz")


def test_run_session_names_the_writer(stores):
    run_id = load_runs(stores / "a")["run_id"].iloc[0]
    session = catalog.run_session(stores / "a", run_id)
    assert session["app"] == "xorlab-sweep" and session["git_commit"] == provenance.code_version()["git_commit"]


def test_load_runs_by_store_never_merges(stores):
    a, b = stores / "a", stores / "nested" / "b"
    both = catalog.load_runs_by_store([a, b])
    assert len(both) == 80 and both.columns[0] == "sweep"
    assert both.groupby("sweep")["run_id"].nunique().to_dict() == {str(a): 40, str(b): 40}
    assert not both.duplicated(["sweep", "run_id"]).any()
    assert both["run_id"].duplicated().sum() == 40  # the same runs, kept once per store
    named = catalog.load_runs_by_store([a, b], names=["old", "new"])
    assert sorted(named["sweep"].unique()) == ["new", "old"]
    assert sorted(catalog.load_runs_by_store(stores)["sweep"].unique()) == [str(a), str(b)]  # a folder of stores
    with pytest.raises(ValueError, match="2 names for 1 paths"):
        catalog.load_runs_by_store([a], names=["x", "y"])
    with pytest.raises(catalog.CatalogError, match="holds 2 stores"):
        catalog.load_runs_by_store([stores], names=["x"])


def test_load_curves_by_store(stores):
    a, b = stores / "a", stores / "nested" / "b"
    ids = sorted(load_runs(a)["run_id"])[:3]
    curves = catalog.load_curves_by_store([a, b], names=["old", "new"], run_ids=ids)
    assert list(curves.columns) == ["sweep", "run_id", "step", "loss"]
    assert curves.groupby("sweep")["run_id"].nunique().to_dict() == {"new": 3, "old": 3}
    key = ["run_id", "step"]  # row order follows chunk order, which claims make writer-specific
    old = curves[curves["sweep"] == "old"].drop(columns="sweep").sort_values(key).reset_index(drop=True)
    new = curves[curves["sweep"] == "new"].drop(columns="sweep").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(old, new)  # the same runs in both stores, never merged into one


def test_uses_the_store_session_api(stores, monkeypatch):
    """``xorlab.store.session_state`` decides a store's liveness (one rule for every reader)."""
    seen = []

    def session_state(info, **kw):
        seen.append(info["session"])
        return "running"

    monkeypatch.setattr(catalog.sessions, "session_state", session_state)
    assert catalog.describe(stores / "a").state == "running"
    assert sorted(seen) == sorted(f.stem for f in (stores / "a" / "sessions").glob("[!.]*.json"))
