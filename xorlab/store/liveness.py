"""Is a session's writer alive? Judged by evidence a pause cannot fool, never by comparing two hosts' clocks.

A writer's session record carries its ``host``, ``pid``, the process's start time (``pid_start``, clock ticks
since boot), the machine's ``boot_id`` and its pid namespace (``pid_ns``), and a ``heartbeat`` time plus a
``beats`` counter that its heartbeat thread refreshes every ``HEARTBEAT_EVERY`` seconds.

- **On the writer's own host** (same host name, boot and pid namespace) the process table decides: the writer is
  dead when its pid is gone, a zombie, or now another process (another start time), or the machine rebooted. A
  live pid is never dead, whatever its heartbeat: a writer paused by Ctrl-Z, a suspended VM or a starved
  heartbeat thread is *stalled* (its heartbeat is older than ``HEARTBEAT_TIMEOUT`` by this host's clock, which
  is the writer's own clock), and it resumes where it stopped.
- **On another host** nothing local can prove death, and the two clocks may disagree (a heartbeat can be hours
  "in the future"). The writer is dead only when this reader has *watched* its heartbeat stay unchanged for
  ``HEARTBEAT_TIMEOUT`` seconds of the reader's own clock (``Observer``); a heartbeat seen to change is alive,
  whatever its value. Until then a writer whose heartbeat time looks old (or ahead) is ``stalled``.

Observations live in memory in a long-lived process (a sweep waiting for claims) and, for one-shot commands
(``xorlab-store clean``, ``xorlab-runs list``), in a small hidden file per reading host in the store's
``sessions/`` folder, so that running the command again a minute later can judge.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xorlab.store.layout import HEARTBEAT_TIMEOUT

CLOCK_TOLERANCE = 5.0  # s a heartbeat may be ahead of this host's clock before it is flagged
PID_MAX = 1 << 22  # the largest pid Linux can hand out (pid_max's ceiling); anything outside is not a pid
OBSERVED = ".observed-{host}.json"  # in sessions/: what this host's readers saw, by their own clock


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def boot_id() -> str | None:
    return _read("/proc/sys/kernel/random/boot_id")


def pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    stat = _read(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19]) if stat else None
    except (IndexError, ValueError):
        return None


def identity() -> dict[str, Any]:
    """What a writer records about itself so readers can tell whether it is still the same live process."""
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "pid_start": process_start(pid),
        "boot_id": boot_id(),
        "pid_ns": pid_namespace(),
    }


def valid_pid(pid: Any) -> bool:
    """A pid a session could have had: an int in 1..PID_MAX (0 and -1 would signal whole process groups)."""
    return isinstance(pid, int) and not isinstance(pid, bool) and 1 <= pid <= PID_MAX


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie; False for anything that is not a pid."""
    if not valid_pid(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError):
        return False
    stat = _read(f"/proc/{pid}/stat")  # a killed but unreaped child still answers kill(0)
    try:
        return stat is None or stat.rsplit(")", 1)[1].split()[0] != "Z"
    except IndexError:
        return True


def local(info: dict[str, Any]) -> bool:
    """Whether the session ran in this machine's process table (same host, boot and pid namespace, real pid)."""
    if info.get("host") != socket.gethostname() or not valid_pid(info.get("pid")):
        return False
    ns = info.get("pid_ns")
    return not (ns and pid_namespace() and ns != pid_namespace())


def process_dead(info: dict[str, Any]) -> bool:
    """Proof that a local session's writer is gone: pid dead or reused, or the machine rebooted since."""
    if not local(info):
        return False
    boot = info.get("boot_id")
    if boot and boot_id() and boot != boot_id():
        return True
    pid = info["pid"]
    if not pid_alive(pid):
        return True
    start = info.get("pid_start")
    return isinstance(start, int) and (now := process_start(pid)) is not None and now != start


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


def heartbeat_age(info: dict[str, Any], now: dt.datetime | str | None = None) -> float | None:
    """Seconds since the session's heartbeat by this host's clock (negative: ahead of it); None if unknown."""
    beat = parse_time(info.get("heartbeat") or info.get("started"))
    if beat is None:
        return None
    at = parse_time(now) if now is not None else dt.datetime.now(dt.UTC)
    return None if at is None else (at - beat).total_seconds()


def clock_ahead(info: dict[str, Any], now: dt.datetime | str | None = None) -> float:
    """Seconds by which the session's heartbeat is ahead of this host's clock (0 when it is not)."""
    age = heartbeat_age(info, now)
    return -age if age is not None and age < -CLOCK_TOLERANCE else 0.0


# ----------------------------------------------------------------------------------------------- observing
@dataclass
class Seen:
    value: str  # the heartbeat as last read
    since: float  # the observer's clock when that value was first seen
    beat_seen: bool  # an earlier, different value was seen: the writer was seen to beat


class Observer:
    """Heartbeats watched over time by this reader's own clock (``clock``: seconds, monotonic in-process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, seen: dict[str, Seen] | None = None) -> None:
        self.clock = clock
        self.seen: dict[str, Seen] = dict(seen or {})

    def look(self, key: str, info: dict[str, Any]) -> Seen:
        """Record one look at a session's heartbeat; return what is known of it."""
        value = json.dumps([info.get("heartbeat"), info.get("beats")], default=str)
        now = self.clock()
        prev = self.seen.get(key)
        if prev is None:
            prev = self.seen[key] = Seen(value, now, False)
        elif prev.value != value:
            prev = self.seen[key] = Seen(value, now, True)
        return prev

    def silent_for(self, key: str, info: dict[str, Any]) -> float:
        """Seconds, by this reader's clock, that the heartbeat has been seen unchanged (0 at the first look)."""
        return self.clock() - self.look(key, info).since


class StoreObserver(Observer):
    """An ``Observer`` whose looks persist in ``<store>/sessions/.observed-<host>.json`` (wall clock of this
    host), so that one-shot commands run a minute apart can judge a silent writer of another host."""

    def __init__(self, store: Path) -> None:
        self.file = Path(store) / "sessions" / OBSERVED.format(host=socket.gethostname())
        seen: dict[str, Seen] = {}
        try:
            raw = json.loads(self.file.read_text())
            seen = {k: Seen(str(v[0]), float(v[1]), bool(v[2])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            pass  # none yet, or unreadable: start afresh (a later look judges)
        super().__init__(time.time, seen)

    def save(self) -> None:
        """Write the looks (best effort: a read-only store only means judging takes one more look later)."""
        body = json.dumps({k: [s.value, s.since, s.beat_seen] for k, s in self.seen.items()})
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}")
        try:
            tmp.write_text(body)
            os.replace(tmp, self.file)
        except OSError:
            tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------- judging
def writer_state(info: dict[str, Any], observer: Observer | None = None, now: dt.datetime | str | None = None) -> str:
    """``running``, ``stalled`` or ``crashed`` for a session whose status says it is running.

    crashed: proven dead (local: pid gone or reused, machine rebooted; other host: heartbeat watched unchanged for
    ``HEARTBEAT_TIMEOUT`` s by ``observer``'s clock). stalled: not heard from for ``HEARTBEAT_TIMEOUT`` s but not
    proven dead (a paused local process; another host not yet watched long enough, or whose clock is ahead).
    """
    if process_dead(info):
        return "crashed"
    key = str(info.get("session"))
    if local(info):  # alive (not proven dead); this host's clock wrote the heartbeat, so comparing is fair
        age = heartbeat_age(info, now)
        return "running" if age is not None and age <= HEARTBEAT_TIMEOUT else "stalled"
    if observer is not None:
        seen = observer.look(key, info)
        silent = observer.clock() - seen.since
        if silent > HEARTBEAT_TIMEOUT:
            return "crashed"
        if seen.beat_seen:
            return "running"
    age = heartbeat_age(info, now)
    return "running" if age is not None and -CLOCK_TOLERANCE <= age <= HEARTBEAT_TIMEOUT else "stalled"


def silent_for(info: dict[str, Any], observer: Observer, now: dt.datetime | str | None = None) -> float:
    """How long the writer has not been heard from, by evidence this reader trusts: a local writer's heartbeat
    age (same clock), else how long this observer has watched it unchanged. ``inf`` for a proven-dead writer."""
    if process_dead(info):
        return float("inf")
    watched = observer.silent_for(str(info.get("session")), info)
    if local(info):
        age = heartbeat_age(info, now)
        return max(watched, age if age is not None else 0.0)
    return watched
