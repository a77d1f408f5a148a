"""Tests for ``xorlab.store.claims`` and the runner's use of them: one writer per bucket, crashed writers' claims taken
over, concurrent writers of one store training each run once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xorlab.store import claims as claims_mod
from xorlab.store.claims import Claims, claim_file
from xorlab.store.reader import load_runs
from xorlab.store.records import run_id
from xorlab.store.sessions import read_sessions
from xorlab.store.writer import StoreWriter
from xorlab.sweep import runner
from xorlab.sweep.grid import Grid, shard_of
from xorlab.sweep.runner import SweepOptions, run_sweep

GRID = {"lr": [0.5], "seed": "range(0,40)", "max_steps": [20, 30]}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def writer(tmp_path):
    with StoreWriter(tmp_path / "s", heartbeat=False) as w:
        (w.path / "claims").mkdir()
        yield w


def test_one_claim_per_bucket(writer):
    a, b = Claims(writer.path, writer.session), Claims(writer.path, "other-session")
    assert a.try_claim(7) and a.try_claim(7)
    assert not b.try_claim(7)  # a's session is running (this process, fresh heartbeat)
    a.release([7])
    assert not claim_file(writer.path, 7).exists()
    assert b.try_claim(7)
    a.release([7])  # not a's claim any more: left alone
    assert claim_file(writer.path, 7).exists()


def test_a_full_disk_while_claiming_reads_like_every_other_full_disk(writer, monkeypatch):
    """The chaos suite's tmpfs filled up on a claim, not a chunk: the message must use the store's one wording."""
    import errno
    import os

    from xorlab.store.format import StoreError

    real_open = os.open

    def full(path, flags, *args):
        if str(path).endswith(".claim"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)

    monkeypatch.setattr(claims_mod.os, "open", full)
    with pytest.raises(StoreError) as err:
        Claims(writer.path, writer.session).try_claim(3)
    text = str(err.value)
    assert "cannot write a claim (no space left on the device)" in text and "consistent" in text, text
    assert "\n" not in text and not list((writer.path / "claims").iterdir())


def test_claim_of_a_crashed_writer_is_taken_over(writer):
    path = claim_file(writer.path, 3)
    path.write_text(
        json.dumps(
            {
                "session": "gone",
                "token": "t",
                "pid": dead_pid(),
                "host": writer.info["host"],
                "created": writer.info["started"],
            }
        )
    )
    c = Claims(writer.path, writer.session)
    assert c.try_claim(3) and c.taken_over == 1
    assert json.loads(path.read_text())["session"] == writer.session
    assert not list((writer.path / "claims").glob(".stale-*"))


def test_claim_of_a_silent_writer_on_another_host_is_taken_over_after_watching(writer):
    """Another host's heartbeat proves nothing by its value (clocks differ): its claim is taken over only once
    this writer has watched it stay unchanged for the timeout, by its own clock."""
    from xorlab.store.format import HEARTBEAT_TIMEOUT
    from xorlab.store.liveness import Observer

    (writer.path / "sessions" / "far.json").write_text(
        json.dumps(
            {
                "session": "far",
                "status": "running",
                "host": "another-host",
                "pid": 1,
                "heartbeat": "2020-01-01T00:00:00+00:00",
            }
        )
    )
    claim_file(writer.path, 4).write_text(json.dumps({"session": "far", "token": "t"}))
    clock = [0.0]
    claims = Claims(writer.path, writer.session, Observer(lambda: clock[0]))
    assert not claims.try_claim(4)
    clock[0] += HEARTBEAT_TIMEOUT / 2
    assert not claims.try_claim(4)
    clock[0] += HEARTBEAT_TIMEOUT / 2 + 1
    assert claims.try_claim(4) and claims.taken_over == 1
    assert not Claims(writer.path, "third").try_claim(4)  # no observer, no proof: a live claim to anyone else


def test_claim_of_a_live_writer_on_another_host_is_respected(writer):
    (writer.path / "sessions" / "far.json").write_text(
        json.dumps(
            {
                "session": "far",
                "status": "running",
                "host": "another-host",
                "pid": 1,
                "heartbeat": writer.info["started"],
            }
        )
    )
    claim_file(writer.path, 4).write_text(json.dumps({"session": "far", "token": "t"}))
    assert not Claims(writer.path, writer.session).try_claim(4)


def test_sweep_waits_for_a_live_writers_bucket_and_skips_what_it_recorded(tmp_path, monkeypatch):
    """Another live writer holds one bucket; when it finishes (records its runs, releases), the sweep skips them."""
    grid = Grid.from_mapping(GRID)
    path = tmp_path / "s"
    other_bucket_runs = {}

    with StoreWriter(path, heartbeat=False) as other:
        held = Claims(path, other.session)
        first = next(iter(grid.trajectories()))
        bucket = shard_of(first[0], claims_mod.N_BUCKETS)
        assert held.try_claim(bucket)
        waits = []

        def fake_sleep(seconds):  # the other writer finishes while we wait
            waits.append(seconds)
            if not other_bucket_runs:
                from xorlab.engine.batch import train_batch
                from xorlab.store.records import curves_frame, runs_frame

                mine = [c for runs in grid.trajectories() for c in runs if shard_of(c, claims_mod.N_BUCKETS) == bucket]
                b = train_batch(mine)
                other.write(runs_frame(b), curves_frame(b))
                other_bucket_runs.update({run_id(c): c for c in mine})
                held.release([bucket])

        monkeypatch.setattr(runner.time, "sleep", fake_sleep)
        summary = run_sweep(grid, SweepOptions(dir=path, chunk_size=8, progress=False))
    assert waits and summary.recorded_by_others == len(other_bucket_runs) > 0
    assert summary.trained == len(grid) - len(other_bucket_runs)
    assert sorted(load_runs(path)["run_id"]) == sorted(run_id(c) for runs in grid.trajectories() for c in runs)


def test_sweep_records_its_grid_and_leaves_no_claims(tmp_path):
    grid = Grid.from_mapping({**GRID, "init": ["notebook", {"name": "normal", "std": [0.5]}]})
    run_sweep(grid, SweepOptions(dir=tmp_path / "s", progress=False))
    (info,) = read_sessions(tmp_path / "s")
    assert info["planned_runs"] == len(grid) == 160
    assert info["grid"]["seed"] == list(range(40)) and info["grid"]["max_steps"] == [20, 30]
    assert info["grid"]["init"] == ["notebook", {"name": "normal", "std": 0.5}]
    assert Grid.from_mapping(info["grid"]).n_trajectories == grid.n_trajectories
    assert not list((tmp_path / "s" / "claims").iterdir())


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_two_writers_waiting_for_each_other_both_finish(tmp_path, monkeypatch, engine):
    """Each writer commits in the background; before it waits for the other's buckets it must release its own
    (committed) ones, or two writers of one grid can wait for each other forever."""
    import threading
    import time

    from xorlab.store import writer as store_mod

    real = store_mod.StoreWriter.write

    def slow_write(self, runs, curves, **kw):  # commits lag behind training
        time.sleep(0.15)
        return real(self, runs, curves, **kw)

    monkeypatch.setattr(store_mod.StoreWriter, "write", slow_write)
    grid = Grid.from_mapping({"seed": "range(0,64)", "max_steps": [5]})
    path, errors = tmp_path / "s", []

    def writer():
        try:
            run_sweep(grid, SweepOptions(dir=path, chunk_size=4, progress=False, engine=engine))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "the writers waited for each other"
    assert not errors
    assert sorted(set(load_runs(path)["run_id"])) == sorted(run_id(c) for runs in grid.trajectories() for c in runs)


def test_work_recorded_by_others_is_skipped_without_waiting(tmp_path, monkeypatch):
    """Runs another writer recorded after planning are dropped; the sweep waits only when every bucket left is
    held by a live writer, not each time the buckets it claimed turn out done (that cost 0.5 s a chunk)."""
    grid = Grid.from_mapping({"seed": "range(0,200)", "max_steps": [5]})
    path = tmp_path / "s"
    real_plan = runner.plan

    def plan_then_another_writer(g, o, done=None):
        p = real_plan(g, o, done)
        if len(g) == 200:  # ours: now another writer records every other seed and releases its claims
            half = Grid.from_mapping({"seed": "range(0,200,2)", "max_steps": [5]})
            run_sweep(half, SweepOptions(dir=path, progress=False))
        return p

    monkeypatch.setattr(runner, "plan", plan_then_another_writer)
    sleeps, real_sleep = [], runner.time.sleep
    monkeypatch.setattr(runner, "WAIT_POLL", 0.123)  # a sweep's wait, told apart from other sleeps (subprocess)
    monkeypatch.setattr(runner.time, "sleep", lambda t: sleeps.append(t) if t == 0.123 else real_sleep(t))
    summary = run_sweep(grid, SweepOptions(dir=path, chunk_size=8, progress=False))
    assert (summary.trained, summary.recorded_by_others, sleeps) == (100, 100, [])
    assert sorted(load_runs(path)["run_id"]) == sorted(run_id(c) for runs in grid.trajectories() for c in runs)


def test_a_sweep_waiting_on_a_silent_writer_says_whom_and_takes_over(tmp_path, monkeypatch, capsys):
    """Every bucket of the grid is claimed by a session of another host whose heartbeat is three hours ahead of
    this clock and never changes (its writer died): the sweep says whom it waits for, then takes the work over
    after a timeout of silence by its own clock, instead of waiting forever."""
    import datetime as dt

    from xorlab.store.format import HEARTBEAT_TIMEOUT
    from xorlab.store.liveness import Observer

    grid = Grid.from_mapping({"seed": "range(0,16)", "max_steps": [5]})
    path = tmp_path / "s"
    with StoreWriter(path, heartbeat=False):
        pass
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).isoformat(timespec="seconds")
    (path / "sessions" / "far.json").write_text(
        json.dumps({"session": "far", "status": "running", "host": "another-host", "pid": 4242, "heartbeat": ahead})
    )
    (path / "claims").mkdir()
    for b in range(claims_mod.N_BUCKETS):
        claim_file(path, b).write_text(json.dumps({"session": "far", "token": f"t{b}"}))
    clock, said = [0.0], []
    monkeypatch.setattr(runner, "Observer", lambda: Observer(lambda: clock[0]))
    monkeypatch.setattr(runner, "_notice", lambda line: said.append((clock[0], line)))

    def fake_sleep(seconds):
        clock[0] += seconds
        assert clock[0] < 10 * HEARTBEAT_TIMEOUT, "the sweep waits forever"

    monkeypatch.setattr(runner.time, "sleep", fake_sleep)
    summary = run_sweep(grid, SweepOptions(dir=path, progress=False))
    assert summary.trained == 16
    (wait,) = [(t, ln) for t, ln in said if "waiting since" in ln]
    assert "claimed by session far (host another-host, pid 4242, heard from 0 s ago, its heartbeat" in wait[1]
    assert f"silent for {HEARTBEAT_TIMEOUT:.0f} s is taken over" in wait[1]
    (took,) = [(t, ln) for t, ln in said if "taking over the work claimed by session far" in ln]
    assert HEARTBEAT_TIMEOUT < took[0] - wait[0] <= HEARTBEAT_TIMEOUT + 1  # a timeout of silence, by its own clock
    assert sorted(load_runs(path)["run_id"]) == sorted(run_id(c) for runs in grid.trajectories() for c in runs)
