"""Work claims: concurrent writers of one store train each run about once.

Every trajectory falls in one of ``N_BUCKETS`` buckets, a function of the trajectory alone
(``grid.shard_of(cfg, N_BUCKETS)``), so writers with the same or overlapping grids, any sharding, on one
machine or several, agree on them. Before training runs of a bucket a writer creates
``claims/b<bucket>.claim`` with ``O_CREAT | O_EXCL``; only one writer can, the others skip the bucket and come
back to it later. After claiming, the writer re-reads the runs files committed meanwhile and drops what others
recorded; it releases the claim only after the chunk's runs file is committed, so the next claimant sees it.
(With ``num_shards`` a divisor of 256, each bucket lies inside one shard, so shards never contend.)

A claim names its session. A claim whose session is crashed (``store.session_state``: dead pid on this host,
or no heartbeat for ``store.HEARTBEAT_TIMEOUT`` s) is taken over: renamed aside atomically (one taker wins),
then created anew.

What the filesystem must guarantee: atomic ``O_EXCL`` create and atomic ``rename`` within a folder (local
filesystems, NFSv3+ and Lustre/GPFS do). Where it does not, two writers may both claim a bucket: both train it,
the store holds the run twice, and readers keep one record of each ``run_id`` (equal by determinism), so the
result is still correct, only the work is duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xorlab.store import provenance, signals
from xorlab.store.format import HEARTBEAT_TIMEOUT, SAFE, TEMP_PREFIX, StoreError
from xorlab.store.layout import oserror_text
from xorlab.store.liveness import Observer, silent_for
from xorlab.store.sessions import read_session, session_state

log = logging.getLogger(__name__)

N_BUCKETS = 256  # fine enough to spread writers, coarse enough that a 10,000-run grid is ~40 runs a claim
CLAIMS = "claims"


def claim_file(store: Path, bucket: int) -> Path:
    return Path(store) / CLAIMS / f"b{bucket:03d}.claim"


def read_claim(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written by a writer killed between create and write: judged by its age below
    return info if isinstance(info, dict) else {}


def claim_holder(store: Path, info: dict[str, Any], path: Path | None = None) -> dict[str, Any] | None:
    """The session record of a claim's writer; without one (lost, or an unreadable claim), a stand-in built from
    the claim itself (its pid, host and creation time, keyed by its token). None if the claim has vanished."""
    session = read_session(store, info["session"]) if isinstance(info.get("session"), str) else None
    if session is not None:
        return session
    created = info.get("created")
    if created is None and path is not None:
        try:
            created = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat()
        except OSError:
            return None
    return {
        "session": f"claim:{info.get('token')}",
        "status": "running",
        "pid": info.get("pid"),
        "host": info.get("host"),
        "heartbeat": created,
    }


def claim_alive(store: Path, info: dict[str, Any], path: Path | None = None, observer: Observer | None = None) -> bool:
    """Whether a claim's writer may still be working on it. False when it ended or is proven dead
    (``session_state``); with an ``observer`` (a writer waiting for the bucket) also when it has been silent for
    ``HEARTBEAT_TIMEOUT`` s by evidence the observer trusts (a paused or clock-skewed writer's work is taken over:
    if it resumes, the runs are recorded twice, identically, and readers keep one)."""
    session = claim_holder(store, info, path)
    if session is None:
        return False
    if session_state(session, observer=observer) not in ("running", "stalled"):
        return False
    return observer is None or silent_for(session, observer) <= HEARTBEAT_TIMEOUT


class Claims:
    """The claims of one writing session in one store.

    Parameters
    ----------
    store : the store folder.
    session : the writer's session id (its ``sessions/<session>.json`` carries the heartbeat others judge).
    """

    def __init__(
        self,
        store: str | Path,
        session: str,
        observer: Observer | None = None,
        notify: Callable[[str], Any] | None = None,
    ) -> None:
        self.store = Path(store)
        self.session = session
        self.observer = observer  # watches other writers' heartbeats while this one waits for their buckets
        self.notify = notify or log.warning
        self.held: dict[int, str] = {}  # bucket -> token of our claim
        self.taken_over = 0
        self._taken_from: set[str] = set()
        try:
            (self.store / CLAIMS).mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.store / CLAIMS}: cannot create ({oserror_text(exc)}); {SAFE}") from None

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: Any) -> None:
        with signals.shield():
            self.release_all()

    def _create(self, bucket: int) -> bool:
        """Create our claim file, complete or not at all: written to a temp file, then hard-linked into place
        (``link`` fails if the name exists, like ``O_EXCL``), so a writer killed mid-claim leaves no empty claim
        that would look alive until the heartbeat timeout. Falls back to ``O_EXCL`` where links are unsupported."""
        path = claim_file(self.store, bucket)
        token = uuid.uuid4().hex
        body = json.dumps(
            {
                "session": self.session,
                "token": token,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "created": provenance.now(),
            }
        )
        tmp = path.with_name(f"{TEMP_PREFIX}{self.session}-{token[:12]}.claim")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "w") as fh:
                fh.write(body)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some FUSE filesystems): exclusive create, then write
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "w") as fh:
                    fh.write(body)
        except OSError as exc:  # e.g. the disk filled up
            raise StoreError(f"{path}: cannot write a claim ({oserror_text(exc)}); {SAFE}") from None
        finally:
            tmp.unlink(missing_ok=True)
        self.held[bucket] = token
        return True

    def try_claim(self, bucket: int) -> bool:
        """Claim ``bucket``; False if a live writer holds it. A crashed writer's claim is taken over."""
        if bucket in self.held:
            return True
        if self._create(bucket):
            return True
        path = claim_file(self.store, bucket)
        info = read_claim(path)
        if info is None:  # released meanwhile
            return self._create(bucket)
        if info.get("session") == self.session:
            return False  # ours from an earlier release race; never expected
        if claim_alive(self.store, info, path, self.observer):
            return False
        # Stale: move it aside. rename is atomic, so of several takers exactly one moves *this* file …
        aside = path.with_name(f".stale-{self.session}-{bucket:03d}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return self._create(bucket)
        moved = read_claim(aside)
        if (moved or {}).get("token") != info.get("token"):
            # … but it may be a fresh claim another taker made after the stale one was moved: put it back.
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        holder = str(info.get("session"))
        if holder not in self._taken_from:  # one line per writer, not per bucket
            self._taken_from.add(holder)
            self.notify(
                f"taking over the work claimed by session {holder}: its writer ended, died or was silent for "
                f"{HEARTBEAT_TIMEOUT:.0f} s"
            )
        if self._create(bucket):
            self.taken_over += 1
            return True
        return False

    def release(self, buckets: Any) -> None:
        """Release our claims of ``buckets`` (only files that are still ours)."""
        for bucket in list(buckets):
            token = self.held.pop(bucket, None)
            if token is None:
                continue
            path = claim_file(self.store, bucket)
            info = read_claim(path)
            if info and info.get("token") == token:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as err:  # e.g. a read-only folder now: a dead claim is taken over later
                    log.warning("could not release %s: %s", path, err)

    def release_all(self) -> None:
        self.release(list(self.held))
