"""Store maintenance: check that a store is whole, and clean what killed writers left behind.

``check_store`` reads every file and reports problems (unreadable, foreign or partial files, curves that do not
match their runs, null run ids, records that differ under one ``run_id``) without changing anything.
``clean_store`` removes only leftovers no live writer can still need: temp files older than a grace period,
curves files of chunks that were never committed by sessions that are no longer running, and claims of crashed
writers. Committed chunks and session files are never touched.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from xorlab.store.claims import CLAIMS, claim_alive, read_claim
from xorlab.store.files import store_path
from xorlab.store.format import TEMP_PREFIX, StoreError, read_manifest
from xorlab.store.reader import committed_chunks, read_curves_file, read_runs_file, runs_to_frame
from xorlab.store.sessions import read_session, read_sessions, session_state

TEMP_GRACE = 600.0  # s: a live writer holds a temp file for the seconds one write takes; 10 min is far beyond
MAX_GRID_CHECK = 500_000  # grids up to this size are expanded to tell complete from partial


@dataclass
class StoreReport:
    """What ``check_store`` found. ``ok`` is True when nothing is damaged (leftovers are not damage)."""

    path: Path
    chunks: int = 0
    rows: int = 0
    runs: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    sessions: dict[str, int] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)
    grids: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """A human summary, one fact a line; problems first."""
        out = [f"problem: {p}" for p in self.problems]
        twice = f" ({self.duplicates} recorded twice, identical; readers keep one)" if self.duplicates else ""
        out.append(f"{self.path}: {self.chunks} chunks, {self.runs} runs{twice}")
        if self.sessions:
            out.append("sessions: " + ", ".join(f"{n} {s}" for s, n in sorted(self.sessions.items())))
        for sess in self.crashed:
            out.append(f"crashed session (status running, writer gone): {sess}")
        for g in self.grids:
            state = "complete" if g["missing"] == 0 else f"partial, {g['missing']} of {g['planned']} runs missing"
            out.append(f"grid of session {g['session']}: {g['planned']} planned runs, {state}")
        if self.leftovers:
            out.append(f"{len(self.leftovers)} leftover files of killed writers (`xorlab-store clean` removes them)")
        out.append("ok" if self.ok else f"{len(self.problems)} problems")
        return out


def _curves_ids(runs_file: Path) -> set[str] | str:
    table = read_curves_file(runs_file, on_corrupt="raise")
    return set(table.column("run_id").to_pylist()) if len(table) else set()


def _grid_missing(info: dict[str, Any], ids: set[str]) -> dict[str, Any] | None:
    from xorlab.store.records import run_id
    from xorlab.sweep.grid import Grid  # only here: the rest of the check needs no grid machinery

    planned = info.get("planned_runs")
    if not isinstance(planned, int) or not isinstance(info.get("grid"), dict) or planned > MAX_GRID_CHECK:
        return None
    try:
        grid = Grid.from_mapping(info["grid"])
        wanted = {run_id(c) for runs in grid.trajectories() for c in runs}
    except (ValueError, OSError):
        return None  # e.g. a from_file init whose file is gone: completeness is then unknowable here
    return {"session": info.get("session"), "planned": planned, "missing": len(wanted - ids)}


def check_store(path: str | Path) -> StoreReport:
    """Check every record file of the store at ``path``; raises ``StoreError`` only if it is not a store.

    Checked: the manifest; every runs file readable, its own chunk, no null ``run_id``; every committed chunk's
    curves file present and the one it wrote (same run_id set, same content hash); run ids unique (a run
    recorded twice must have identical records); sessions' states; whether each recorded grid is complete.
    """
    path = store_path(path)
    if not path.is_dir():
        raise StoreError(f"{path}: no such directory")
    read_manifest(path)
    report = StoreReport(path)
    tables = []
    for runs_file in committed_chunks(path):
        report.chunks += 1
        try:
            table = read_runs_file(runs_file)
        except StoreError as exc:
            report.problems.append(str(exc))
            continue
        tables.append(table)
        try:
            curve_ids = _curves_ids(runs_file)
        except StoreError as exc:
            report.problems.append(str(exc))
            continue
        ids = set(table.column("run_id").to_pylist())
        if curve_ids != ids:
            report.problems.append(
                f"{runs_file}: its curves cover other runs ({len(curve_ids - ids)} foreign, "
                f"{len(ids - curve_ids)} missing)"
            )
    if tables:
        frame = runs_to_frame(pa.concat_tables(tables))
        report.rows = len(frame)
        report.runs = frame["run_id"].nunique()
        report.duplicates = report.rows - report.runs
        if report.duplicates:
            dups = frame[frame["run_id"].duplicated(keep=False)]
            differing = dups.astype(str).drop_duplicates()["run_id"].duplicated().sum()
            if differing:
                report.problems.append(f"{differing} run_ids have differing records (not one experiment per id)")
        ids = set(frame["run_id"])
    else:
        ids = set()
    states = Counter()
    grids_seen = set()
    report.problems += _unreadable_sessions(path)
    for info in reversed(read_sessions(path)):  # newest first: one completeness line per distinct grid
        state = session_state(info)
        states[state] += 1
        if state == "crashed":
            report.crashed.append(str(info.get("session")))
        key = json.dumps(info.get("grid"), sort_keys=True, default=str)
        if info.get("grid") is not None and key not in grids_seen:
            grids_seen.add(key)
            if (g := _grid_missing(info, ids)) is not None:
                report.grids.append(g)
    report.sessions = dict(states)
    report.leftovers = clean_store(path, dry_run=True)
    return report


def _unreadable_sessions(path: Path) -> list[str]:
    """One problem per session file that is not a readable JSON object (the records themselves are unaffected)."""
    out = []
    for f in sorted((path / "sessions").glob("[!.]*.json")):
        try:
            ok = isinstance(json.loads(f.read_text()), dict)
            reason = "not a JSON object"
        except (OSError, ValueError) as exc:
            ok, reason = False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not ok:
            out.append(
                f"{f}: unreadable session record ({reason}); the runs are unaffected, the session's "
                "provenance is lost (delete the file to silence this)"
            )
    return out


def _session_of_chunk(name: str) -> str:
    return name.rsplit("-", 1)[0]  # <session>-<seq>.parquet


def _older_than(p: Path, seconds: float, now: float) -> bool:
    try:
        return now - p.stat().st_mtime > seconds
    except OSError:
        return False


def clean_store(path: str | Path, grace: float = TEMP_GRACE, dry_run: bool = False) -> list[Path]:
    """Remove leftovers of killed writers from the store at ``path``; return the removed (or, with ``dry_run``,
    removable) files.

    Removed: temp files (``.tmp-*``, ``claims/.stale-*``) older than ``grace`` seconds; curves files without a
    runs file whose session is no longer running (or, without a session file, older than ``grace``); claims
    whose writer is gone. Never: committed chunks, session files, anything of a live writer.
    """
    path = store_path(path)
    read_manifest(path)
    now = time.time()
    gone: list[Path] = []
    for folder in (path, path / "runs", path / "curves", path / "sessions", path / CLAIMS):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.startswith((TEMP_PREFIX, ".stale-")) and _older_than(p, grace, now):
                    gone.append(p)
    committed = {p.name for p in committed_chunks(path)}
    states: dict[str, tuple[str | None, bool]] = {}
    host = socket.gethostname()
    for curves in sorted((path / "curves").glob("[!.]*.parquet")):
        if curves.name in committed:
            continue
        session = _session_of_chunk(curves.stem)
        if session not in states:
            info = read_session(path, session)
            states[session] = (None, False) if info is None else (session_state(info), info.get("host") == host)
        state, here = states[session]
        # Certain death (ended, or a dead pid on this host) frees the file at once; a writer only presumed dead
        # (no session file, or a stale heartbeat from another host) also needs the file to be older than grace.
        certain = state in ("finished", "interrupted", "failed") or (state == "crashed" and here)
        if certain or (state in (None, "crashed") and _older_than(curves, grace, now)):
            gone.append(curves)
    if (path / CLAIMS).is_dir():
        for claim in sorted((path / CLAIMS).glob("[!.]*.claim")):
            info = read_claim(claim)
            if info is not None and not claim_alive(path, info, claim):
                gone.append(claim)
    if not dry_run:
        for p in gone:
            p.unlink(missing_ok=True)
    return gone
