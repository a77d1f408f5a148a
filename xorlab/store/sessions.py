"""Sessions: each writing process's record (pid, host, status, heartbeat) and whether its writer is alive."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

from xorlab.store.files import store_path
from xorlab.store.format import HEARTBEAT_TIMEOUT, log


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ----------------------------------------------------------------------------------------------- sessions
def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time (or datetime) as an aware UTC datetime; None if it is not one."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    try:  # a killed but unreaped child still answers kill(0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def session_state(info: dict[str, Any], now: dt.datetime | str | None = None) -> str:
    """``"running"``, ``"crashed"``, ``"finished"``, ``"interrupted"`` or ``"failed"`` for a session json.

    A session whose ``status`` is ``running`` is *crashed* when its writer is gone: it ran on this host and its
    ``pid`` is dead, or its ``heartbeat`` is older than ``HEARTBEAT_TIMEOUT`` seconds (sessions written before
    heartbeats existed fall back to ``started``). ``now`` defaults to the current UTC time.
    """
    status = info.get("status")
    if status in ("finished", "interrupted", "failed"):
        return status
    if status != "running":
        return "failed"  # unknown status: nobody is writing under it
    pid = info.get("pid")
    if info.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return "crashed"
    now = parse_time(now) if now is not None else now_utc()
    beat = parse_time(info.get("heartbeat") or info.get("started"))
    if beat is None or now is None or (now - beat).total_seconds() > HEARTBEAT_TIMEOUT:
        return "crashed"
    return "running"


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
