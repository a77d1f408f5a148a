"""Clean stops: SIGINT and SIGTERM end a sweep between two records, never inside one.

``stop_on_signals()`` installs handlers that raise ``StopRequested`` (a ``KeyboardInterrupt``) in the main
thread, so the chunk in flight is abandoned at once, finished chunks stay, and the store writer marks its
session ``interrupted``. Inside ``Stopper.deferred()`` (committing a chunk and releasing its claims) a signal
is held until the block ends, so a stop never leaves a half-committed chunk or a stale claim.

SLURM sends SIGTERM at the time limit (then SIGKILL after ``KillWait``, 30 s by default): a sweep stops within
one numpy step and keeps everything it finished. A worker of a process pool (joblib's loky launcher) also stops
when its parent process dies (``watch_parent``), instead of training on unattended.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_POLL = 1.0  # seconds between checks that the parent process is alive


class StopRequested(KeyboardInterrupt):
    """A stop asked by a signal (or by the parent's death); ``signum`` is the signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The conventional exit status of a process ended by this signal: 128 + signum."""
        return 128 + self.signum


class Stopper:
    """State shared by the handlers and the code they protect."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._depth = 0

    def handle(self, signum: int, frame: Any) -> None:
        if self._depth:
            self.pending = self.pending or signum
            return
        raise StopRequested(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals until the block ends (then raise ``StopRequested`` if one came)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise StopRequested(signum)


def in_pool_worker() -> bool:
    """Whether this process is a worker of a multiprocessing or loky pool (joblib's launcher)."""
    proc = multiprocessing.current_process()
    return "Loky" in type(proc).__name__ or "Loky" in proc.name or multiprocessing.parent_process() is not None


def _watch_parent(parent: int, done: threading.Event) -> None:
    while not done.wait(PARENT_POLL):
        if os.getppid() != parent:  # re-parented: our parent is gone
            os.kill(os.getpid(), signal.SIGTERM)
            return


@contextmanager
def stop_on_signals(watch_parent: bool | None = None) -> Iterator[Stopper]:
    """Turn SIGINT and SIGTERM into ``StopRequested`` for the duration of the block.

    Outside the main thread (where Python cannot install handlers) this is a no-op stopper. ``watch_parent``
    (default: only in pool workers) sends ourselves SIGTERM when the parent process dies. A handler that was
    ``SIG_IGN`` (loky workers ignore SIGINT) is replaced too: Ctrl-C must stop the work, not wait for its end.
    """
    stopper = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stopper
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    done = threading.Event()
    for s in STOP_SIGNALS:
        signal.signal(s, stopper.handle)
    if watch_parent is None:
        watch_parent = in_pool_worker()
    if watch_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(), done), daemon=True).start()
    try:
        yield stopper
    finally:
        done.set()
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
