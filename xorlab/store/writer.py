"""``StoreWriter``: one writing session, its heartbeat thread, and the chunk commit protocol (curves first, runs
file last, both atomic).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xorlab.store import files, provenance, signals
from xorlab.store.files import (
    check_writable,
    create_exclusive,
    oserror_text,
    temp_name,
    with_file_hashes,
)
from xorlab.store.format import (
    CURVE_SCHEMA,
    FILE_HASH,
    FORMAT,
    HEARTBEAT_EVERY,
    MANIFEST,
    META_CHUNK,
    META_CURVES_SHA,
    RUN_SCHEMA,
    SAFE,
    VERSION,
    StoreError,
    log,
    read_manifest,
)
from xorlab.store.records import CURVE_COLUMNS


class StoreWriter:
    """Appends chunks of records to a store; use as a context manager around one writing session.

    Parameters
    ----------
    path : store folder (created if needed).
    config : composed config recorded in the session json.
    meta : more session fields (app, shard, ``planned_runs``, ``grid`` …).
    heartbeat : run the background thread that refreshes ``heartbeat`` while the session is open.
    """

    def __init__(
        self,
        path: str | Path,
        config: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        schema: pa.Schema = RUN_SCHEMA,
        heartbeat: bool = True,
    ) -> None:
        self.path = check_writable(path)
        self.schema = schema
        self.session = f"{provenance.now().replace(':', '').replace('-', '')[:15]}-{uuid.uuid4().hex[:8]}"
        self.info: dict[str, Any] = {"session": self.session, "config": config, **(meta or {})}
        self.chunks = 0
        self.runs_written = 0
        self.written_files: set[str] = set()
        self._lock = threading.Lock()  # the heartbeat thread and the main thread both save the session json
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = heartbeat

    @property
    def session_file(self) -> Path:
        return self.path / "sessions" / f"{self.session}.json"

    def __enter__(self) -> StoreWriter:
        try:
            # Manifest first: a concurrent shard checking this folder never sees runs/ without a manifest.
            self.path.mkdir(parents=True, exist_ok=True)
            self._create_manifest()
            for sub in ("sessions", "runs", "curves"):
                (self.path / sub).mkdir(exist_ok=True)
            self.info.update(provenance.collect(), pid=os.getpid(), host=socket.gethostname(), status="running")
            self.info["heartbeat"] = self.info["started"]
            self._save_session()
        except OSError as exc:
            reason = oserror_text(exc)
            raise StoreError(f"{self.path}: cannot create the store ({reason}); nothing was recorded") from None
        if self._heartbeat:
            self._thread = threading.Thread(target=self._beat, name="xorlab-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        with signals.shield():  # a stop signal now must not leave the session marked running
            self._close(exc_type)

    def _close(self, exc_type: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            status = "finished"
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, and SIGTERM via xorlab.store.signals.StopRequested
            status = "interrupted"
        else:
            status = "failed"
        self.info.update(status=status, ended=provenance.now(), chunks=self.chunks, runs_written=self.runs_written)
        self.info["heartbeat"] = self.info["ended"]
        try:
            self._save_session()
        except OSError as err:
            if exc_type is not None:  # already failing (e.g. the disk is full): the first error is the one to report;
                # the session then reads as crashed (old heartbeat), which is what it is
                log.debug("could not mark session %s %s: %s", self.session, status, err)
                return
            raise StoreError(
                f"{self.session_file}: cannot record the end of the session ({oserror_text(err)}); {SAFE}"
            ) from None

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                with self._lock:
                    self.info["heartbeat"] = provenance.now()
                    files.write_json(self.session_file, self.info)
            except OSError as err:  # a full disk must not kill the thread; readers then see an old heartbeat
                log.debug("heartbeat of session %s not written: %s", self.session, err)

    def _create_manifest(self) -> None:
        manifest = self.path / MANIFEST
        if manifest.exists():
            read_manifest(self.path)
            return
        tmp = temp_name(self.path)
        with os.fdopen(create_exclusive(tmp), "w") as fh:
            json.dump({"format": FORMAT, "version": VERSION, "created": provenance.now()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, manifest)  # atomic create-if-absent: concurrent writers agree on one manifest
        except FileExistsError:
            read_manifest(self.path)
        finally:
            os.unlink(tmp)

    def _save_session(self) -> None:
        with self._lock:
            files.write_json(self.session_file, self.info)

    def update(self, **fields: Any) -> None:
        """Add fields to the session json (written at the next heartbeat or at the end)."""
        with self._lock:
            self.info.update(fields)

    def write(self, runs: pd.DataFrame, curves: pd.DataFrame, file_hashes: dict[str, str] | None = None) -> str:
        """Record one chunk: curves first, then the runs file that commits it; returns the chunk's file name.

        ``file_hashes`` (init_path -> sha256) are the init files' hashes the runs were trained with; missing
        from_file hashes are computed now. An ``OSError`` (disk full, read-only folder …) becomes a one-line
        ``StoreError`` saying the store stayed consistent.
        """
        name = f"{self.session}-{self.chunks:05d}.parquet"
        if FILE_HASH not in runs or file_hashes:
            runs = with_file_hashes(runs, file_hashes)
        run_table = pa.Table.from_pandas(runs[self.schema.names], schema=self.schema, preserve_index=False)
        curve_table = pa.Table.from_pandas(curves[CURVE_COLUMNS], schema=CURVE_SCHEMA, preserve_index=False)
        sink = io.BytesIO()
        # A dictionary and min/max statistics only for run_id (what readers filter on); steps and losses gain
        # nothing from either, and skipping them makes the write ~1.5x faster.
        pq.write_table(curve_table, sink, use_dictionary=["run_id"], write_statistics=["run_id"])
        curve_bytes = sink.getvalue()
        meta = {
            **(run_table.schema.metadata or {}),
            META_CHUNK: name.encode(),
            META_CURVES_SHA: hashlib.sha256(curve_bytes).hexdigest().encode(),
        }
        run_table = run_table.replace_schema_metadata(meta)
        self.written_files.add(name)  # before the commit: a concurrent reader of the folder knows it is ours
        try:
            files.atomic_write(self.path / "curves" / name, lambda fh: fh.write(curve_bytes))
            files.atomic_write(self.path / "runs" / name, lambda fh: pq.write_table(run_table, fh))
        except OSError as exc:
            self.written_files.discard(name)
            (self.path / "curves" / name).unlink(missing_ok=True)  # an orphan either way; tidy it if we can
            raise StoreError(
                f"{self.path}: cannot write chunk {name} ({oserror_text(exc)}); {SAFE}: "
                f"{self.chunks} chunks ({self.runs_written} runs) of this session are recorded; "
                "fix the cause and re-run the same command to train the rest"
            ) from None
        self.chunks += 1
        self.runs_written += len(runs)
        return name
