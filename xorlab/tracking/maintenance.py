"""Store maintenance: check that a store is whole, and clean what killed writers left behind.

``check_store`` reads every file and reports problems (unreadable, foreign or partial files, curves that do not
match their runs, null run ids, records that differ under one ``run_id``) without changing anything.
``clean_store`` removes only what is provably this store's and provably dead (``xorlab.tracking.clean``): files
inside the store, named for one of its sessions, whose writer ended or is proven gone. Committed chunks and
session files are never touched.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from xorlab.store.files import store_path
from xorlab.store.format import StoreError, read_manifest
from xorlab.store.liveness import StoreObserver, clock_ahead
from xorlab.store.reader import committed_chunks, read_curves_file, read_runs_file, runs_to_frame
from xorlab.store.sessions import read_sessions, session_state
from xorlab.tracking.clean import clean, outside_links

TEMP_GRACE = 600.0  # kept for callers of clean_store(grace=...): files are now judged by their writer, not their age
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
    stalled: list[str] = field(default_factory=list)  # running, not heard from, not proven dead
    notes: list[str] = field(default_factory=list)  # facts that are not damage: clocks ahead, links out
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
        for sess in self.stalled:
            out.append(f"stalled session (writer alive or not proven dead, silent for over a minute): {sess}")
        out += [f"note: {n}" for n in self.notes]
        for g in self.grids:
            state = "complete" if g["missing"] == 0 else f"partial, {g['missing']} of {g['planned']} runs missing"
            out.append(f"grid of session {g['session']}: {g['planned']} planned runs, {state}")
        if self.leftovers:
            out.append(f"{len(self.leftovers)} leftover files of killed writers (`xorlab-store clean` removes them)")
        out.append("ok" if self.ok else f"{len(self.problems)} problems")
        return out


def _curves_ids(runs_file: Path) -> set[str]:
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
    states: Counter[str] = Counter()
    grids_seen = set()
    report.problems += _unreadable_sessions(path)
    observer = StoreObserver(path)
    for info in reversed(read_sessions(path)):  # newest first: one completeness line per distinct grid
        state = session_state(info, observer=observer)
        states[state] += 1
        if state in ("crashed", "stalled"):
            getattr(report, state).append(str(info.get("session")))
        if state in ("running", "stalled") and (ahead := clock_ahead(info)):
            who = f"session {info.get('session')} (host {info.get('host')})"
            report.notes.append(
                f"{who} has a heartbeat {ahead:,.0f} s ahead of this host's clock; it is judged by watching it change"
            )
        key = json.dumps(info.get("grid"), sort_keys=True, default=str)
        if info.get("grid") is not None and key not in grids_seen:
            grids_seen.add(key)
            if (g := _grid_missing(info, ids)) is not None:
                report.grids.append(g)
    observer.save()
    report.sessions = dict(states)
    for link, target in outside_links(path):
        report.notes.append(f"{link} is a symlink to {target}, outside the store: clean removes nothing there")
    report.leftovers = clean(path, dry_run=True).removed
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


def clean_store(path: str | Path, grace: float = TEMP_GRACE, dry_run: bool = False) -> list[Path]:
    """Remove what dead writers left in the store at ``path``; return the removed (or, with ``dry_run``,
    removable) files. See ``xorlab.tracking.clean``: only files inside the store, named for one of its
    sessions, whose writer ended or is proven dead. ``grace`` is accepted for older callers and no longer
    used: a file's age proves nothing about its writer (a paused sweep's files are old)."""
    del grace
    return clean(path, dry_run=dry_run).removed
