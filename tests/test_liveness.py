"""Tests for ``xorlab.store.liveness``: a writer is dead only by evidence a pause or a wrong clock cannot fake."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys

import pytest

from xorlab.store import liveness
from xorlab.store.liveness import HEARTBEAT_TIMEOUT, Observer, StoreObserver, writer_state
from xorlab.store.sessions import session_state

NOW = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.UTC)


def iso(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).isoformat(timespec="seconds")


def me(**kw) -> dict:
    return {"session": "s", "status": "running", **liveness.identity(), "heartbeat": iso(0), **kw}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_live_local_pid_is_never_crashed_whatever_its_heartbeat():
    assert writer_state(me(), now=NOW) == "running"
    for age in (HEARTBEAT_TIMEOUT + 1, 86400 * 365):
        assert writer_state(me(heartbeat=iso(age)), now=NOW) == "stalled"
        assert session_state(me(heartbeat=iso(age)), now=NOW) == "stalled"


def test_a_paused_process_reads_stalled_then_running_again():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        info = {**me(), "pid": proc.pid, "pid_start": liveness.process_start(proc.pid), "heartbeat": iso(600)}
        assert writer_state(info, now=NOW) == "stalled"
        os.kill(proc.pid, signal.SIGCONT)
        assert writer_state({**info, "heartbeat": iso(1)}, now=NOW) == "running"
    finally:
        proc.kill()
        proc.wait()
    assert writer_state(info, now=NOW) == "crashed"  # gone now: proven dead


def test_local_death_is_proven_by_the_process_table():
    assert writer_state(me(pid=dead_pid()), now=NOW) == "crashed"
    assert writer_state(me(pid_start=(liveness.process_start(os.getpid()) or 0) + 1), now=NOW) == "crashed"  # reused
    if liveness.boot_id():
        assert writer_state(me(boot_id="another-boot"), now=NOW) == "crashed"  # rebooted since


@pytest.mark.parametrize("pid", [0, -1, 2**70, 1 << 23, "123", None, True, 1.5])
def test_absurd_pids_are_not_pids(pid):
    assert not liveness.pid_alive(pid)
    info = me(pid=pid, heartbeat=iso(5))
    assert not liveness.local(info) and not liveness.process_dead(info)  # never "proven" either way by the pid
    assert writer_state(info, now=NOW) == "running"


def test_another_pid_namespace_is_not_judged_by_this_process_table():
    info = me(pid=dead_pid(), pid_ns="pid:[1]")
    assert not liveness.local(info) and writer_state(info, now=NOW) == "running"


def test_another_host_is_dead_only_after_being_watched_silent():
    clock = Clock()
    obs = Observer(clock)
    other = {"session": "o", "status": "running", "host": "elsewhere", "pid": 1, "heartbeat": iso(3600)}
    assert writer_state(other, obs, now=NOW) == "stalled"  # old by our clock: proves nothing
    clock.t += HEARTBEAT_TIMEOUT / 2
    assert writer_state(other, obs, now=NOW) == "stalled"
    clock.t += HEARTBEAT_TIMEOUT / 2 + 1
    assert writer_state(other, obs, now=NOW) == "crashed"


def test_a_heartbeat_in_the_future_is_flagged_and_judged_by_watching():
    clock = Clock()
    obs = Observer(clock)
    ahead = {"session": "f", "status": "running", "host": "elsewhere", "pid": 1, "heartbeat": iso(-3 * 3600)}
    assert liveness.clock_ahead(ahead, NOW) == pytest.approx(3 * 3600)
    assert liveness.clock_ahead(me(), NOW) == 0.0
    assert writer_state(ahead, obs, now=NOW) == "stalled"
    for _ in range(5):  # it beats: alive, whatever its clock says
        clock.t += 5
        ahead = {**ahead, "heartbeat": (liveness.parse_time(ahead["heartbeat"]) + dt.timedelta(seconds=5)).isoformat()}
        assert writer_state(ahead, obs, now=NOW) == "running"
    clock.t += HEARTBEAT_TIMEOUT + 1  # then it stops: dead after a timeout of silence, by our clock
    assert writer_state(ahead, obs, now=NOW) == "crashed"


def test_observations_persist_for_one_shot_commands(tmp_path, monkeypatch):
    (tmp_path / "sessions").mkdir()
    other = {"session": "o", "status": "running", "host": "elsewhere", "pid": 1, "heartbeat": iso(0)}
    t = [1000.0]
    monkeypatch.setattr(liveness.time, "time", lambda: t[0])
    first = StoreObserver(tmp_path)
    first.look("o", other)
    first.save()
    t[0] += HEARTBEAT_TIMEOUT + 1
    assert writer_state(other, StoreObserver(tmp_path), now=NOW) == "crashed"
    (tmp_path / "sessions" / liveness.OBSERVED.format(host=socket.gethostname())).write_text("garbage{")
    assert writer_state(other, StoreObserver(tmp_path), now=NOW) == "running"  # unreadable: starts afresh
