"""What is in the run stores: find them, tell their state, summarise their grid, look runs up by id prefix.

    infos = [describe(p) for p in find_stores("runs")]     # one ``StoreInfo`` per store
    run_id = resolve_run("runs/ic", "3fa9")                  # a unique prefix, like git
    runs = load_runs_by_store(["runs/a", "runs/b"])          # a ``sweep`` column; stores never merged

A store's **state** is read from its session files (one per writing process):

- ``running``: some writer is alive (same host: its pid exists and its heartbeat is younger than 60 s; another
  host: its heartbeat is younger than 60 s, or was seen to change);
- ``stalled``: no writer running, but one that nothing proves dead: a paused process on this host (Ctrl-Z, a
  suspended VM), or another host's writer whose heartbeat is old or ahead of this clock and that has not yet been
  watched silent for 60 s (listing again a minute later can tell);
- ``complete``: no live writer and at least the planned number of runs recorded;
- ``crashed``: no live writer, runs missing, and the last writer of some shard died (killed, or its session
  says ``failed``) instead of finishing or being interrupted;
- ``partial``: anything else short of the plan (an interrupted sweep, a shard not run yet).

The session fields ``pid``, ``heartbeat``, ``planned_runs`` and ``grid`` came with heartbeats. Older
stores lack them, so every field has a fallback: the planned size from ``grid_runs``, the grid from the
composed config or else from the recorded runs, and liveness from the start time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xorlab.store import reader, sessions
from xorlab.store.format import StoreError, read_manifest
from xorlab.store.index import recorded_ids
from xorlab.store.liveness import StoreObserver, clock_ahead
from xorlab.store.reader import StoreReader, committed_chunks, load_curves, load_runs
from xorlab.store.records import CONFIG_COLUMNS, DEFAULTED_COLUMNS
from xorlab.store.sessions import parse_time

log = logging.getLogger(__name__)

STATES = ("complete", "partial", "running", "stalled", "crashed", "damaged")
AXIS_ORDER = ("init", "lr", "seed", "max_steps", "rng", "rng_skip", "loss_threshold")


class CatalogError(ValueError):
    """A store or run that cannot be found or named; ``str`` is one line."""


# ----------------------------------------------------------------------------------------------- sessions
def read_sessions(path: str | Path) -> list[dict[str, Any]]:
    """Session infos of the store at ``path``, oldest first (by ``started``); see ``read_sessions``."""
    found = [dict(info) for info in sessions.read_sessions(path)]
    return sorted(found, key=lambda s: (str(s.get("started") or ""), str(s.get("session") or "")))


def session_state(info: Mapping[str, Any], observer: Any = None) -> str:
    """``running | stalled | crashed | finished | interrupted | failed`` of one session (``session_state``)."""
    return sessions.session_state(dict(info), observer=observer)


def store_state(recorded: int, planned: int | None, session_states: Sequence[tuple[Any, str]]) -> str:
    """``complete | partial | running | crashed`` from the run count and ``(shard key, session state)`` pairs.

    ``session_states`` is in start order; the last session of each shard key speaks for that shard, so a
    crash that a later session of the same shard resumed from does not count.
    """
    states = [s for _, s in session_states]
    if "running" in states:
        return "running"
    if "stalled" in states:  # a writer not heard from that nothing proves dead (paused, another host's clock)
        return "stalled"
    if planned is not None and recorded >= planned:
        return "complete"
    last = {key: s for key, s in session_states}
    if any(s in ("crashed", "failed") for s in last.values()):
        return "crashed"
    return "partial" if planned is not None else "complete"  # no plan known: whatever finished is the plan


# ----------------------------------------------------------------------------------------------- stores
@dataclass(frozen=True)
class StoreInfo:
    """One store as ``xorlab-runs list`` shows it."""

    path: Path
    created: str | None
    last_written: str | None
    runs: int
    planned: int | None
    axes: dict[str, int]  # axis -> number of values, in ``AXIS_ORDER``
    commit: str | None
    dirty: bool | None
    state: str
    commits: list[str] = field(default_factory=list)  # every commit that wrote to the store, oldest first
    notes: list[str] = field(default_factory=list)  # e.g. a session whose heartbeat is ahead of this host's clock
    fixed: dict[str, str] = field(default_factory=dict)  # config field -> its one value (what the grid held fixed)
    engines: list[str] = field(default_factory=list)  # engines that trained the recorded runs

    @property
    def conditions(self) -> str:
        """``lr=0.5 max_steps=2000 … engine=compiled``: the values held fixed, and the engine(s)."""
        parts = [f"{k}={v}" for k, v in self.fixed.items()]
        if self.engines:
            parts.append("engine=" + ",".join(self.engines))
        return " ".join(parts) or "–"

    @property
    def grid(self) -> str:
        """``init×11 lr×7 seed×200 max_steps×2``: the axes with more than one value (``single config``)."""
        return grid_summary(self.axes)

    @property
    def code(self) -> str:
        """``0a89e7d``, ``0a89e7d+dirty``, ``0a89e7d (+1 other)``, or ``unknown``."""
        return code_text(self.commit, self.dirty, self.commits)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "runs": self.runs,
            "planned": self.planned,
            "state": self.state,
            "created": self.created,
            "last_written": self.last_written,
            "commit": self.commit,
            "dirty": self.dirty,
            "commits": self.commits,
            "notes": self.notes,
            "axes": self.axes,
            "fixed": self.fixed,
            "engines": self.engines,
        }


def grid_summary(axes: Mapping[str, int]) -> str:
    swept = [f"{a}×{n}" for a, n in axes.items() if n > 1]
    return " ".join(swept) if swept else "single config"


def find_stores(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every store under ``roots`` (each a store or a folder containing stores), in path order."""
    try:
        return reader.find_stores(roots)
    except StoreError as exc:
        raise CatalogError(str(exc)) from None


def _ordered(axes: Mapping[str, int]) -> dict[str, int]:
    known = [a for a in AXIS_ORDER if a in axes]
    return {a: int(axes[a]) for a in [*known, *sorted(set(axes) - set(known))]}


def _value_text(value: Any) -> str:
    """A grid value as a report names it: ``0.5``, ``2000``, ``normal(std=0.01)`` for an init entry."""
    if isinstance(value, Mapping):
        params = ", ".join(f"{k}={_value_text(v)}" for k, v in value.items() if k != "name")
        return f"{value.get('name')}({params})" if params else str(value.get("name"))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _grid_fixed(session: Mapping[str, Any]) -> dict[str, str] | None:
    """The axes of a session's planned grid with one value, and that value (None if it recorded no grid)."""
    grid = session.get("grid")
    if not (isinstance(grid, Mapping) and grid):
        return None
    out = {}
    for k, v in grid.items():
        if not isinstance(v, list | tuple):
            out[k] = _value_text(v)
        elif len(v) == 1:
            out[k] = _value_text(v[0])
    return {a: out[a] for a in _ordered(dict.fromkeys(out, 1))}


def _grid_axes(session: Mapping[str, Any]) -> dict[str, int] | None:
    """Values per axis of the grid a session planned: its ``grid`` field, else its composed config's grid."""
    grid = session.get("grid")
    if isinstance(grid, Mapping) and grid:
        return _ordered({k: len(v) if isinstance(v, list | tuple) else 1 for k, v in grid.items()})
    config = session.get("config")
    spec = config.get("grid") if isinstance(config, Mapping) else None
    if isinstance(spec, Mapping) and spec:
        from xorlab.core.config import ConfigError
        from xorlab.sweep.grid import Grid

        try:
            g = Grid.from_mapping(spec)
        except (ConfigError, TypeError, ValueError):  # a grid this version no longer reads: use the runs
            return None
        return _ordered({**{k: len(v) for k, v in g.axes.items()}, "max_steps": len(g.max_steps)})
    return None


def _recorded_axes(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Values per axis among the recorded runs (init: distinct scheme and parameters), and the value of each
    axis that has one."""
    import pyarrow as pa

    from xorlab.store.records import init_labels

    files = committed_chunks(path)
    if not files:
        return {}, {}
    tables = [t for f in files if (t := reader.read_runs_file(f, "skip", columns=CONFIG_COLUMNS)) is not None]
    if not tables:
        return {}, {}
    frame = pa.concat_tables(tables).to_pandas()
    init_cols = [c for c in CONFIG_COLUMNS if c == "init" or c.startswith("init_")]
    axes = {c: int(frame[c].nunique(dropna=False)) for c in CONFIG_COLUMNS if c not in init_cols}
    axes["init"] = len(frame[init_cols].drop_duplicates())
    fixed = {c: _value_text(frame[c].iloc[0]) for c, n in axes.items() if n == 1 and c != "init"}
    if axes["init"] == 1:
        fixed["init"] = str(init_labels(frame.head(1)).iloc[0])
    return _ordered(axes), {a: fixed[a] for a in _ordered(dict.fromkeys(fixed, 1))}


def _planned(session: Mapping[str, Any]) -> int | None:
    if session.get("app") == "xorlab-train":  # one run per store, also in stores older than planned_runs
        return 1
    for key in ("planned_runs", "grid_runs"):
        value = session.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return None


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat(timespec="seconds")


def code_text(commit: str | None, dirty: bool | None, commits: Sequence[str]) -> str:
    """The code version as ``list`` shows it, from the latest session's commit and every commit seen."""
    if not commit:
        return "unknown"
    others = len(commits) - 1
    return commit[:7] + ("+dirty" if dirty else "") + (f" (+{others} other)" if others > 0 else "")


def code_version(path: str | Path) -> str:
    """``describe(path).code`` from the session records alone (no record file is read)."""
    sessions = read_sessions(Path(path))
    latest = sessions[-1] if sessions else {}
    commits = list(dict.fromkeys(s["git_commit"] for s in sessions if s.get("git_commit")))
    return code_text(latest.get("git_commit"), latest.get("git_dirty"), commits)


def describe(path: str | Path) -> StoreInfo:
    """Everything ``xorlab-runs list`` shows about the store at ``path``.

    Planned size, grid and code version come from the most recently started session (a grown grid replaces
    the old one); the run count is of distinct recorded ``run_id``.
    """
    path = Path(path)
    try:
        manifest = read_manifest(path) or {}
    except StoreError as exc:
        raise CatalogError(str(exc)) from None
    try:
        recorded, damaged = len(recorded_ids(path)), False
    except StoreError:  # a damaged record file: count what is readable, and say so (state "damaged")
        recorded, damaged = load_runs(path, on_corrupt="skip", columns=["run_id"])["run_id"].nunique(), True
    sessions = read_sessions(path)
    latest = sessions[-1] if sessions else {}
    axes = _grid_axes(latest) if latest else None
    fixed = _grid_fixed(latest) if latest else None
    if axes is None or fixed is None:
        seen_axes, seen_fixed = ({}, {}) if damaged else _recorded_axes(path)
        axes = seen_axes if axes is None else axes
        fixed = seen_fixed if fixed is None else fixed
    # a later field held at its default (lr_hidden = 1) is what every store held: left unsaid
    quiet = {k for k, default in DEFAULTED_COLUMNS.items() if fixed.get(k) == _value_text(default)}
    axes = {k: n for k, n in axes.items() if k not in quiet}
    fixed = {k: v for k, v in fixed.items() if k not in quiet}
    engines = [] if damaged else sorted(reader.recorded_engines(path))
    observer = StoreObserver(path)
    states = [((s.get("shard", 0), s.get("num_shards", 1)), session_state(s, observer)) for s in sessions]
    observer.save()
    notes = [
        f"session {s.get('session')} (host {s.get('host')}) has a heartbeat {ahead:,.0f} s ahead of this host's "
        "clock; its liveness is judged by watching it change"
        for s, (_, state) in zip(sessions, states, strict=True)
        if state in ("running", "stalled") and (ahead := clock_ahead(s))
    ]
    planned = _planned(latest) if latest else None
    times = [_mtime(f) for f in committed_chunks(path)]
    times += [parse_time(s.get(k)) for s in sessions for k in ("ended", "heartbeat")]
    now = dt.datetime.now(dt.UTC)
    written = [t for t in times if t is not None and t <= now]  # a clock ahead does not make a future write
    commits = list(dict.fromkeys(s["git_commit"] for s in sessions if s.get("git_commit")))
    return StoreInfo(
        path=path,
        created=manifest.get("created"),
        last_written=_iso(max(written)) if written else None,
        runs=recorded,
        planned=planned,
        axes=axes,
        fixed=fixed,
        engines=engines,
        commit=latest.get("git_commit"),
        dirty=latest.get("git_dirty"),
        state="damaged" if damaged else store_state(recorded, planned, states),
        commits=commits,
        notes=notes,
    )


# ----------------------------------------------------------------------------------------------- runs
def _named_paths(paths: str | Path | Sequence[str | Path], names: Sequence[str] | None) -> list[str | Path]:
    """The paths as a list; with ``names``, one per path and each path a single store."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if names is not None:
        if len(names) != len(paths):
            raise ValueError(f"names: {len(names)} names for {len(paths)} paths")
        for raw in paths:
            if (n := len(find_stores(raw))) != 1:
                raise CatalogError(f"{raw}: holds {n} stores; give each its own path to name it")
    return paths


def load_runs_by_store(
    paths: str | Path | Sequence[str | Path], names: Sequence[str] | None = None, on_corrupt: str = "raise"
) -> pd.DataFrame:
    """Run tables of several stores with a ``sweep`` column (first) naming each row's store:
    ``xorlab.store.load_runs(paths, names=names)``, which never merges stores (the key is ``(sweep, run_id)``).
    A path that is a folder of stores contributes each store under its own path; ``names`` (one per path, each
    path a single store) replaces the paths as ``sweep`` values. Store errors become ``CatalogError``."""
    paths = _named_paths(paths, names)
    try:
        out = load_runs(paths, on_corrupt=on_corrupt, names=names)
    except StoreError as exc:
        raise CatalogError(str(exc)) from None
    out["sweep"] = out["sweep"].astype(str)
    return out[["sweep", *[c for c in out.columns if c != "sweep"]]]


def load_curves_by_store(
    paths: str | Path | Sequence[str | Path],
    names: Sequence[str] | None = None,
    run_ids: Iterable[str] | None = None,
    on_corrupt: str = "raise",
) -> pd.DataFrame:
    """Curves of several stores (``sweep, run_id, step, loss``), as ``load_runs_by_store`` (same ``names``
    rules; ``xorlab.store.load_curves``); ``run_ids`` limits every store to those runs."""
    paths = _named_paths(paths, names)
    try:
        out = load_curves(paths, run_ids=run_ids, on_corrupt=on_corrupt, names=names)
    except StoreError as exc:
        raise CatalogError(str(exc)) from None
    out = out.astype({"run_id": str, "sweep": str})  # categories differ per store: plain strings
    return out[["sweep", "run_id", "step", "loss"]]


def resolve_run(path: str | Path, prefix: str, ids: set[str] | None = None) -> str:
    """The full ``run_id`` of the one recorded run starting with ``prefix``; like git, one line otherwise
    (``ids``: the store's recorded ids, if already read)."""
    prefix = prefix.strip().lower()
    if not prefix:
        raise CatalogError("run id: empty")
    try:
        ids = recorded_ids(path) if ids is None else ids
    except StoreError as exc:
        raise CatalogError(str(exc)) from None
    hits = sorted(i for i in ids if i.startswith(prefix))
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise CatalogError(f"run id {prefix!r}: no run in {path} starts with it ({len(ids):,} runs recorded)")
    shown = ", ".join(hits[:8]) + (f", … ({len(hits)} in all)" if len(hits) > 8 else "")
    raise CatalogError(f"run id {prefix!r} is ambiguous; candidates: {shown}")


def run_session(path: str | Path, run_id: str) -> dict[str, Any] | None:
    """The session that recorded ``run_id`` (chunk files are named ``<session>-<seq>.parquet``), if known."""
    reader = StoreReader(path)
    try:
        return reader.session(reader.locate(run_id))
    except StoreError:
        return None
