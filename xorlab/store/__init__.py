"""The run store: run records on disk, shared by ``xorlab-sweep`` and ``xorlab-train``.

Layout of a store directory::

    xorlab-store.json            format name and version (created once, never rewritten)
    sessions/<session>.json      one per writing process: config, provenance, liveness, planned grid
    curves/<chunk>.parquet       tidy curves of one chunk: run_id, step, loss
    runs/<chunk>.parquet         one row per run of that chunk (``RUN_COLUMNS`` of this module)
    claims/b<bucket>.claim       work a live writer is training right now (``xorlab.store.claims``)

Crash safety: every file is written to a hidden temp file in its folder, fsynced, then renamed into place, so
a reader sees a whole file or none. A chunk writes its curves first and its runs file last; **a chunk is
recorded iff its runs file exists**. The runs file carries, in its Parquet metadata, its own chunk name and the
sha256 of its curves file, so a curves or runs file copied in from elsewhere, or a partial one, is detected
instead of being read as this store's records. A process killed at any point leaves at most an orphaned
curves file, a temp file or a claim, all ignored by every reader (``xorlab.tracking.maintenance.clean_store`` removes
them), and the runs it was training are trained again next time. Chunk names are unique per process (session
id + sequence), so concurrent writers never collide.

Liveness: a writing session's json records ``pid``, ``host``, ``status`` (running|finished|interrupted|failed)
and a ``heartbeat`` (ISO UTC) refreshed by a background thread every ``HEARTBEAT_EVERY`` seconds;
``session_state`` tells a running session from a crashed one.
"""

from typing import Any

# The store's public names, importable as ``xorlab.store.<name>`` (as in 0.1, when the store was one module);
# loaded on first use so that importing a light part of the store (signals, provenance) loads no pandas.
_PUBLIC = {
    "StoreError": "layout",
    "MANIFEST": "layout",
    "RUN_COLUMNS": "format",
    "read_manifest": "layout",
    "load_runs": "reader",
    "load_curves": "reader",
    "find_stores": "reader",
    "committed_chunks": "reader",
    "recorded_ids": "index",
    "recorded_values": "reader",
    "recorded_engines": "reader",
    "read_sessions": "sessions",
    "read_session": "sessions",
    "session_state": "sessions",
    "StoreWriter": "writer",
    "check_writable": "files",
    "store_path": "files",
    "RecordedIndex": "index",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"xorlab.store.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'xorlab.store' has no attribute {name!r}")
