"""Clean stops: SIGINT and SIGTERM end a sweep between two records, never inside one.

``stop_on_signals()`` installs handlers that raise ``StopRequested`` (a ``KeyboardInterrupt``) in the main
thread, so the chunk in flight is abandoned at once, finished chunks stay, and the store writer marks its
session ``interrupted``. Inside ``Stopper.deferred()`` (committing a chunk and releasing its claims) a signal
is held until the block ends, so a stop never leaves a half-committed chunk or a stale claim.

SLURM sends SIGTERM at the time limit (then SIGKILL after ``KillWait``, 30 s by default): a sweep stops within
one numpy step and keeps everything it finished. A worker of a process pool (joblib's loky launcher) also stops
when its parent process dies (``watch_parent``), instead of training on unattended, and then exits, instead of
lingering as an orphan waiting for tasks.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_POLL = 1.0  # seconds between checks that the parent process is alive
ORPHAN_GRACE = 60.0  # seconds an orphaned worker gets to stop cleanly before it exits regardless


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
        self.stopping = False  # a stop is under way: further signals (a second Ctrl-C, a pool's terminate) wait
        self.orphaned = False  # set when the parent process died: the process must end, not go back to a pool
        self._depth = 0

    def handle(self, signum: int, frame: Any) -> None:
        if self.stopping:
            return  # let the cleanup the first signal started finish: session marked, claims released
        if self._depth:
            self.pending = self.pending or signum
            return
        self.stopping = True
        raise StopRequested(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals until the block ends (then raise ``StopRequested`` if one came)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending is not None and not self.stopping:
            signum, self.pending = self.pending, None
            self.stopping = True
            raise StopRequested(signum)


@contextmanager
def shield() -> Iterator[None]:
    """Hold stop signals during the block if a sweep in this process handles them (else do nothing).

    For the store's own bookkeeping (marking a session, releasing claims), which a signal must not cut short.
    """
    if _active:
        with _active[-1].deferred():
            yield
    else:
        yield


def in_pool_worker() -> bool:
    """Whether this process is a worker of a multiprocessing or loky pool (joblib's launcher)."""
    proc = multiprocessing.current_process()
    return "Loky" in type(proc).__name__ or "Loky" in proc.name or multiprocessing.parent_process() is not None


_active: list[Stopper] = []  # the stopper of the sweep running in this process, if any
_watching = threading.Lock()
_watcher_started = False


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() == parent:
            continue
        # Re-parented: our parent is gone. A running sweep stops cleanly (session marked, claims released) and
        # the process then exits; an idle pool worker exits at once instead of waiting for tasks nobody sends.
        if not _active:
            os._exit(128 + signal.SIGTERM)
        _active[-1].orphaned = True
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE)  # the main thread could not stop in time: do not linger anyway
        os._exit(128 + signal.SIGTERM)


def watch_parent_process() -> None:
    """Start (once per process) the thread that ends this pool worker when its parent process dies.

    The parent is the pool's creator (``multiprocessing.parent_process()``), so a worker that starts a sweep
    after its parent already died notices too.
    """
    global _watcher_started
    with _watching:
        if _watcher_started:
            return
        origin = multiprocessing.parent_process()
        parent = origin.pid if origin is not None and origin.pid else os.getppid()
        threading.Thread(target=_watch_parent, args=(parent,), name="xorlab-parent-watch", daemon=True).start()
        _watcher_started = True


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
    for s in STOP_SIGNALS:
        signal.signal(s, stopper.handle)
    _active.append(stopper)
    if watch_parent is None:
        watch_parent = in_pool_worker()
    if watch_parent:
        watch_parent_process()
    try:
        yield stopper
    finally:
        _active.remove(stopper)
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if stopper.orphaned:
            # A pool worker whose parent died would go back to waiting for tasks nobody will send (loky workers
            # do not notice): end the process once the store is left consistent.
            os._exit(128 + signal.SIGTERM)


@contextmanager
def interrupt_guard(prog: str, what: str = "finished chunks are kept") -> Iterator[None]:
    """For an app's ``main()``: Ctrl-C or SIGTERM anywhere (imports, Hydra start-up, a sweep) ends with one line on
    stderr and exit status 128 + signal (130 for Ctrl-C, 143 for SIGTERM), never a traceback."""
    import sys

    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, Stopper().handle)  # before a sweep installs its own: start-up too
    try:
        yield
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, StopRequested) else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"\n{prog}: interrupted ({name}); {what}. Re-run the same command to do the rest.", file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
