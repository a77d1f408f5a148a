"""Sessions: each writing process's record (pid, host, status, heartbeat) and whether its writer is alive."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from xorlab.store.files import store_path
from xorlab.store.format import log
from xorlab.store.liveness import Observer, parse_time, pid_alive, writer_state

__all__ = ["STATES", "now_utc", "parse_time", "pid_alive", "read_session", "read_sessions", "session_state"]

STATES = ("running", "stalled", "crashed", "finished", "interrupted", "failed")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ----------------------------------------------------------------------------------------------- sessions
def session_state(info: dict[str, Any], now: dt.datetime | str | None = None, observer: Observer | None = None) -> str:
    """``running``, ``stalled``, ``crashed``, ``finished``, ``interrupted`` or ``failed`` for a session json.

    A session whose ``status`` is ``running`` is *crashed* only when its writer is proven gone
    (``xorlab.store.liveness``: its pid dead or reused on this host; on another host, its heartbeat watched
    unchanged by ``observer`` for ``HEARTBEAT_TIMEOUT`` s), and *stalled* when it has not been heard from for
    that long without proof of death (a paused process, another host not yet watched, a clock ahead). ``now``
    (default: this host's clock) only tells fresh heartbeats from old ones; it never proves death.
    """
    status = info.get("status")
    if status in ("finished", "interrupted", "failed"):
        return status
    if status != "running":
        return "failed"  # unknown status: nobody is writing under it
    return writer_state(info, observer, now)


def read_sessions(path: str | Path) -> list[dict[str, Any]]:
    """Every session json of the store at ``path`` (oldest first); unreadable ones are logged and skipped."""
    folder = store_path(path) / "sessions"
    out = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if f.name.startswith("."):
            continue
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable session file %s (%s)", f, exc)
            continue
        if isinstance(info, dict):
            out.append(info)
    return sorted(out, key=lambda i: (str(i.get("started", "")), str(i.get("session", ""))))


def read_session(path: str | Path, session: str) -> dict[str, Any] | None:
    """The json of one session, or None if it is missing or unreadable."""
    try:
        info = json.loads((store_path(path) / "sessions" / f"{session}.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


# ----------------------------------------------------------------------------------------------- reading
