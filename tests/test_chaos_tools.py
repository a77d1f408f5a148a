"""Chaos suite, part two: the tools *around* the store under attack, with real processes. Marked ``slow`` and
``chaos`` (``make test-chaos``); each attack prints a ``CHAOS {...}`` line with its figures.

- a sweep paused (SIGSTOP) at random moments, made to look paused for an hour, ``xorlab-store clean`` run while
  it is stopped, then resumed: nothing of it removed, the store whole and equal to an unattacked sweep;
- symlinked folders (``curves/`` on another disk) and a user's ``.tmp-*`` files, a writer killed with ``kill -9``,
  then clean: nothing outside the store or not the store's is touched, and a re-run completes the store;
- a heartbeat three hours in the future holding every claim: a new sweep says whom it waits for, takes the work
  over after a minute of silence by its own clock, and finishes (before: it waited forever);
- hostile ``--where`` queries through both CLIs: one line, exit 2, nothing written, no command run;
- a store under a path that is not UTF-8, through the CLIs: swept, resumed, checked and listed as intact;
- a corrupt numba cache: the sweep recompiles with a one-line notice instead of failing, and the next one is silent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_chaos import (  # noqa: F401 - _remember_config: the autouse fixture emit() needs
    GRID,
    LOG_EVERY,
    _remember_config,
    assert_recovered,
    emit,
    env,
    run,
    sweep_cmd,
    wait_for_chunks,
)
from xorlab.store.claims import N_BUCKETS, claim_file
from xorlab.store.reader import load_runs
from xorlab.store.sessions import session_state
from xorlab.store.writer import StoreWriter
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep
from xorlab.tracking.maintenance import check_store, clean_store

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted sweep (per engine) every attacked store must equal (as in ``test_chaos``)."""
    made: dict[str, Path] = {}

    def get(engine: str = "numpy") -> Path:
        if engine not in made:
            path = tmp_path_factory.mktemp(f"reference-{engine}") / "store"
            opts = SweepOptions(dir=path, log_every=LOG_EVERY, progress=False, engine=engine)
            run_sweep(Grid.from_mapping(GRID), opts)
            made[engine] = path
        return made[engine]

    return get


@pytest.fixture
def reference(references) -> Path:
    return references("numpy")


def _session_file(path: Path, pid: int) -> Path | None:
    for f in sorted((path / "sessions").glob("[!.]*.json")):
        try:
            if json.loads(f.read_text()).get("pid") == pid:
                return f
        except (OSError, ValueError):
            continue
    return None


def _backdate(session_file: Path, seconds: float) -> None:
    """What a pause of ``seconds`` looks like from outside: the heartbeat stopped that long ago."""
    info = json.loads(session_file.read_text())
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    info["heartbeat"] = then.isoformat(timespec="seconds")
    session_file.write_text(json.dumps(info))


def test_paused_writer_survives_clean(tmp_path, references):
    """SIGSTOP a real sweep at random moments, make it look paused for an hour, clean, resume: nothing lost."""
    reference = references("numpy")
    rng = random.Random(17)
    path = tmp_path / "store"
    pauses = kept = 0
    proc = subprocess.Popen(
        sweep_cmd(path, chunk_size=8), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env()
    )
    try:
        wait_for_chunks(path, 1, proc)
        while pauses < 6 and proc.poll() is None:
            time.sleep(rng.uniform(0.0, 0.4))
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                session = _session_file(path, proc.pid)
                if session is None or proc.poll() is not None:
                    continue
                _backdate(session, 3600)
                name = session.stem
                planted = [path / "curves" / f"{name}-99999.parquet", path / "runs" / f".tmp-{name}-0123456789ab.x"]
                for p in planted:
                    p.write_bytes(b"in flight")
                before = set((path / "curves").iterdir()) | set((path / "runs").iterdir())
                assert session_state(json.loads(session.read_text())) == "stalled"
                removed = clean_store(path)
                assert not set(removed) & before, removed
                assert all(p.exists() for p in planted)
                kept += len(before)
                for p in planted:
                    p.unlink()
                pauses += 1
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert_recovered(path, reference, "paused writer + clean", pauses)
    emit(f"CHAOS {json.dumps({'attack': 'paused writer + clean', 'pauses': pauses, 'files_kept_at_pauses': kept})}")
    assert pauses >= 3


def test_symlinked_folders_and_user_files_survive_clean(tmp_path, references):
    """curves/ lives on "another disk" (a symlink), the store root is a user's folder with its own .tmp-* files;
    a writer is killed mid-sweep; clean removes nothing outside the store or not named for its sessions."""
    reference = references("numpy")
    path = tmp_path / "store"
    bigdisk = tmp_path / "bigdisk"
    path.mkdir()
    bigdisk.mkdir()
    (path / "curves").symlink_to(bigdisk)
    user = [path / ".tmp-draft.txt", path / ".tmp-x-y", bigdisk / ".tmp-notes", bigdisk / "old-00001.parquet"]
    for p in user:
        p.write_bytes(b"the user's own")
    proc = subprocess.Popen(sweep_cmd(path, chunk_size=8), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    wait_for_chunks(path, 2, proc)
    proc.kill()
    proc.wait()
    outside = {p: p.read_bytes() for p in bigdisk.iterdir()}
    removed = clean_store(path)
    assert all(p.exists() and p.read_bytes() == data for p, data in outside.items())
    assert all(p.exists() for p in user)
    assert all(p.resolve().is_relative_to(path.resolve()) for p in removed)
    notes = check_store(path).notes
    assert any("is a symlink to" in n and str(bigdisk) in n for n in notes), notes
    result = run(sweep_cmd(path, chunk_size=8))
    assert result.returncode == 0, result.stderr
    figures = assert_recovered(path, reference, "symlinked curves + kill -9 + clean", 1, max_dup=0.2)
    emit(f"CHAOS {json.dumps({'attack': 'symlinks', 'outside_files_kept': len(outside), 'removed': len(removed)})}")
    assert figures["lost"] == 0


def test_a_heartbeat_in_the_future_does_not_hang_a_sweep(tmp_path, references):
    """Every claim is held by a session of another host whose heartbeat is three hours ahead and never changes."""
    reference = references("numpy")
    path = tmp_path / "store"
    with StoreWriter(path, heartbeat=False):  # the store, with one finished session and no runs yet
        pass
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).isoformat(timespec="seconds")
    far = {
        "session": "20990101T000000-deadbeef",
        "status": "running",
        "host": "far-away",
        "pid": 77,
        "heartbeat": ahead,
    }
    (path / "sessions" / f"{far['session']}.json").write_text(json.dumps(far))
    (path / "claims").mkdir(exist_ok=True)
    for b in range(N_BUCKETS):
        claim_file(path, b).write_text(json.dumps({"session": far["session"], "token": f"t{b}"}))
    listed = subprocess.run(
        [sys.executable, "-m", "xorlab.apps.runs", "list", str(path)], capture_output=True, text=True, env=env()
    )
    assert "stalled" in listed.stdout and "ahead of this host's clock" in listed.stderr, listed
    start = time.monotonic()
    result = subprocess.run(sweep_cmd(path, chunk_size=8), capture_output=True, text=True, env=env(), timeout=600)
    took = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    waits = [ln for ln in result.stderr.splitlines() if "waiting since" in ln]
    assert len(waits) == 1 and "far-away" in waits[0] and "ahead of this clock" in waits[0], result.stderr
    assert sum("taking over" in ln for ln in result.stderr.splitlines()) == 1
    assert_recovered(path, reference, "future heartbeat", 1)
    emit(f"CHAOS {json.dumps({'attack': 'future heartbeat holding every claim', 'sweep_seconds': round(took, 1)})}")


HOSTILE = [
    "lr.to_csv('{out}') == 0",
    "status.str.cat(others=None, sep='') == ''",
    "__import__('subprocess').call(['touch', '{out}']) == 0",
    "(lr > 0) & lr.pipe(lambda s: open('{out}', 'w'))",
    "init_label @ init_label",
    "lr.__class__.__mro__[-1].__subclasses__() == 0",
    "lr in @__builtins__",
    "[open('{out}', 'w') for _ in 'x'] == []",
    "lr > 0 if open('{out}', 'w') else 1",
    "`lr` > 0",
    "lr\u202e.to_csv('{out}')",  # (a NUL cannot be passed in argv at all: the unit tests cover it)
]


def test_hostile_queries_through_both_clis(tmp_path, reference):
    out = tmp_path / "pwned"
    refused = 0
    for template in HOSTILE:
        text = template.format(out=out)
        for cmd in (
            [sys.executable, "-m", "xorlab.apps.runs", "show", str(reference), "--where", text],
            [sys.executable, "-m", "xorlab.apps.report", str(reference), "--out", str(tmp_path / "r"), "--where", text],
        ):
            result = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(lines) == 1 and ": error: --where: " in lines[0], (text, result)
            assert not out.exists() and not (tmp_path / "r").exists(), text
            refused += 1
    emit(f"CHAOS {json.dumps({'attack': 'hostile --where', 'queries': len(HOSTILE), 'refused': refused})}")


def test_a_non_utf8_path_through_the_clis(tmp_path, reference):
    path = os.fsencode(tmp_path) + b"/caf\xe9-\xff/store"
    cmd = [os.fsencode(a) for a in sweep_cmd(Path(os.fsdecode(path)), chunk_size=64)]
    first = subprocess.run(cmd, capture_output=True, env=env(), timeout=600)
    if first.returncode != 0:  # the honest alternative: one line saying the path cannot be used
        lines = first.stderr.decode(errors="replace").strip().splitlines()
        assert first.returncode == 2 and len(lines) == 1 and "error" in lines[0], first.stderr[-2000:]
        emit(f"CHAOS {json.dumps({'attack': 'non-UTF-8 path', 'outcome': 'refused in one line'})}")
        return
    again = subprocess.run(cmd, capture_output=True, env=env(), timeout=600)
    assert again.returncode == 0 and b"trained 0 runs" in again.stdout, again.stderr[-2000:]
    store = Path(os.fsdecode(path))
    assert len(load_runs(store)) == len(load_runs(reference))
    check = subprocess.run([sys.executable, "-m", "xorlab.apps.store", "check", path], capture_output=True, env=env())
    assert check.returncode == 0 and check.stdout.strip().endswith(b"ok"), check
    assert b"corrupt" not in check.stdout + check.stderr
    listed = subprocess.run([sys.executable, "-m", "xorlab.apps.runs", "list", path], capture_output=True, env=env())
    assert listed.returncode == 0 and b"complete" in listed.stdout and b"\\xe9" in listed.stdout, listed
    emit(f"CHAOS {json.dumps({'attack': 'non-UTF-8 path', 'outcome': 'swept, resumed, checked, listed intact'})}")


def test_a_corrupt_numba_cache_is_rebuilt(tmp_path, references):
    reference = references("compiled")
    cache = tmp_path / "numba-cache"
    environment = {**env(), "NUMBA_CACHE_DIR": str(cache)}

    def sweep(store: Path) -> subprocess.CompletedProcess:
        cmd = sweep_cmd(store, chunk_size=64, engine="compiled")
        return subprocess.run(cmd, capture_output=True, text=True, env=environment, timeout=900)

    first = sweep(tmp_path / "a")
    assert first.returncode == 0, first.stderr
    damaged = 0
    for f in cache.rglob("*.nb[ci]"):
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3] + os.urandom(64))
        damaged += 1
    assert damaged >= 2
    second = sweep(tmp_path / "b")
    assert second.returncode == 0, second.stderr
    notices = [ln for ln in second.stderr.splitlines() if "cache could not be read" in ln]
    assert len(notices) == 1 and "recompiling" in notices[0], second.stderr
    third = sweep(tmp_path / "c")
    assert third.returncode == 0 and "cache could not be read" not in third.stderr, third.stderr
    for store in ("b", "c"):
        assert_recovered(tmp_path / store, reference, "corrupt numba cache", damaged)
    emit(f"CHAOS {json.dumps({'attack': 'corrupt numba cache', 'files_damaged': damaged, 'recompiled': 1})}")
