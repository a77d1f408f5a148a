"""``RecordedIndex``: the run ids a store has recorded, refreshed incrementally as chunks land."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from xorlab.store.files import store_path
from xorlab.store.format import MANIFEST, read_manifest
from xorlab.store.reader import committed_chunks, read_runs_file


class RecordedIndex:
    """The ``run_id`` set of a store, refreshed incrementally: only runs files not seen before are read.

    Concurrent writers commit new chunks while a sweep runs; ``refresh`` returns the ids that appeared since the
    last call, so a writer can drop runs others recorded meanwhile without re-reading the whole store.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = store_path(path)
        self.ids: set[str] = set()
        self.files: set[str] = set()

    def refresh(self, skip: Iterable[str] = ()) -> set[str]:
        """Read new runs files (except those named in ``skip``: e.g. our own); return the new ids."""
        if not (self.path / MANIFEST).exists():
            return set()
        if not self.files:
            read_manifest(self.path)
        skip = set(skip)
        new: set[str] = set()
        for f in committed_chunks(self.path):
            if f.name in self.files:
                continue
            self.files.add(f.name)
            if f.name in skip:
                continue
            table = read_runs_file(f, columns=["run_id"])
            new.update(table.column("run_id").to_pylist())
        new -= self.ids
        self.ids |= new
        return new


def recorded_ids(path: str | Path) -> set[str]:
    """``run_id`` of every run already recorded in the store at ``path`` (empty if there is none yet)."""
    index = RecordedIndex(path)
    index.refresh()
    return index.ids
