"""Commit a sweep's chunks in the background while the next chunk trains.

The compiled engine releases the GIL, so while it trains chunk k+1 a second thread can turn chunk k into its
run and curve tables and write them to the store (Parquet encoding, sha256, fsync). At most one chunk is
being committed at a time: ``submit`` first waits for the previous commit, re-raises its error if it failed,
and releases that chunk's claims. Leaving the ``with`` block — normally, on an error or on a stop signal —
waits for the commit in flight, so a chunk is never left half-committed and no claim stays held; a stop signal
that arrives meanwhile is held until then (``Stopper.deferred``). ``kill -9`` loses at most the chunk being
trained and the one being committed; re-running the sweep trains them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pandas as pd

from xorlab.store.claims import Claims
from xorlab.store.signals import Stopper
from xorlab.store.writer import StoreWriter

log = logging.getLogger(__name__)
Frames = Callable[[], tuple[pd.DataFrame, pd.DataFrame]]


class Committer:
    """One background thread that builds and writes chunks, one at a time, then releases their claims."""

    def __init__(self, store: StoreWriter, claims: Claims, stopper: Stopper, file_hashes: dict[str, str]) -> None:
        self.store, self.claims, self.stopper, self.file_hashes = store, claims, stopper, file_hashes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xorlab-commit")
        self._pending: tuple[Future, list[int]] | None = None

    def _commit(self, frames: Frames) -> None:
        runs, curves = frames()
        self.store.write(runs, curves, file_hashes=self.file_hashes)

    def submit(self, frames: Frames, done: list[int]) -> None:
        """Commit the chunk ``frames()`` builds, in the background; ``done`` claims are released after it."""
        self.wait()
        self._pending = (self._pool.submit(self._commit, frames), done)

    def wait(self) -> None:
        """Wait for the commit in flight (re-raising its error) and release its claims; signals wait too."""
        if self._pending is None:
            return
        future, done = self._pending
        with self.stopper.deferred():
            self._pending = None
            future.result()
            self.claims.release(done)

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:  # already failing or stopping: finish the commit, keep the first error
                try:
                    self.wait()
                except Exception as err:  # noqa: BLE001 - the error that stopped the sweep is the one to report
                    log.debug("commit after %s failed: %s", exc_type.__name__, err)
        finally:
            self._pool.shutdown(wait=True)
