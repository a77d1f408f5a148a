"""The run store: run records on disk, shared by ``xorlab-sweep`` and ``xorlab-train``.

Layout of a store directory::

    xorlab-store.json            format name and version (created once, never rewritten)
    sessions/<session>.json      one per writing process: composed config, provenance, shard, start/end time
    curves/<chunk>.parquet       tidy curves of one chunk: run_id, step, loss
    runs/<chunk>.parquet         one row per run of that chunk (``records.RUN_COLUMNS``)

Crash safety: every file is written to a hidden temp file in its folder, fsynced, then renamed into place, so
a reader sees a whole file or none. A chunk writes its curves first and its runs file last; **a chunk is
recorded iff its runs file exists**. A process killed at any point leaves at most an orphaned curves file or a
temp file, both ignored by every reader, and the runs it was training are simply trained again next time.
Chunk names are unique per process (session id + sequence), so concurrent writers never collide.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xorlab import provenance
from xorlab.records import CURVE_COLUMNS, OPTIONAL_COLUMNS, RUN_DTYPES

log = logging.getLogger(__name__)

FORMAT = "xorlab-store"
VERSION = 1
MANIFEST = "xorlab-store.json"

_ARROW = {"string": pa.string(), "int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64()}


def run_schema(dtypes: dict[str, str] = RUN_DTYPES) -> pa.Schema:
    """Arrow schema of a runs file from the run table's dtypes (``records.run_dtypes``, derived from TrainConfig)."""
    return pa.schema([(c, _ARROW[dtype]) for c, dtype in dtypes.items()])


RUN_SCHEMA = run_schema()
_PLAIN_STRINGS = {"run_id", "init", "rng", "status"}  # never null: kept as object columns, as always
CURVE_SCHEMA = pa.schema(
    [("run_id", pa.dictionary(pa.int32(), pa.string())), ("step", pa.int64()), ("loss", pa.float64())]
)


class StoreError(ValueError):
    """A store path that cannot be read or written; ``str`` is one line naming the path."""


# ----------------------------------------------------------------------------------------------- writing
def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` via a hidden temp file in the same folder, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=2, default=str).encode()))


def check_writable(path: str | Path, field: str = "dir") -> Path:
    """Raise ``StoreError`` unless ``path`` is (or can be created as) a writable, compatible store folder.

    Writes nothing: the check is done on the folder if it exists, else on its nearest existing parent.
    """
    path = Path(path).expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            raise StoreError(f"{field}: {path} exists and is not a directory")
        try:
            read_manifest(path, missing_ok=True)
        except StoreError as exc:
            raise StoreError(f"{field}: {exc}") from None
        probe = path
    else:
        probe = path.parent
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise StoreError(f"{field}: cannot create {path}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{field}: {path} is not writable (no write permission on {probe})")
    return path


class StoreWriter:
    """Appends chunks of records to a store; use as a context manager around one writing session."""

    def __init__(
        self,
        path: str | Path,
        config: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        schema: pa.Schema = RUN_SCHEMA,
    ) -> None:
        self.path = check_writable(path)
        self.schema = schema
        self.session = f"{provenance.now().replace(':', '').replace('-', '')[:15]}-{uuid.uuid4().hex[:8]}"
        self.info: dict[str, Any] = {"session": self.session, "config": config, **(meta or {})}
        self.chunks = 0
        self.runs_written = 0

    def __enter__(self) -> StoreWriter:
        # Manifest first: a concurrent shard checking this folder never sees runs/ without a manifest.
        self.path.mkdir(parents=True, exist_ok=True)
        self._create_manifest()
        for sub in ("sessions", "runs", "curves"):
            (self.path / sub).mkdir(exist_ok=True)
        self.info.update(provenance.collect(), status="running")
        self._save_session()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        status = "finished" if exc_type is None else "interrupted" if exc_type is KeyboardInterrupt else "failed"
        self.info.update(status=status, ended=provenance.now(), chunks=self.chunks, runs_written=self.runs_written)
        self._save_session()

    def _create_manifest(self) -> None:
        manifest = self.path / MANIFEST
        if manifest.exists():
            read_manifest(self.path)
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.path)
        with os.fdopen(fd, "w") as fh:
            json.dump({"format": FORMAT, "version": VERSION, "created": provenance.now()}, fh)
        try:
            os.link(tmp, manifest)  # atomic create-if-absent: concurrent writers agree on one manifest
        except FileExistsError:
            read_manifest(self.path)
        finally:
            os.unlink(tmp)

    def _save_session(self) -> None:
        _write_json(self.path / "sessions" / f"{self.session}.json", self.info)

    def write(self, runs: pd.DataFrame, curves: pd.DataFrame) -> None:
        """Record one chunk: curves first, then the runs file that commits it."""
        name = f"{self.session}-{self.chunks:05d}.parquet"
        run_table = pa.Table.from_pandas(runs[self.schema.names], schema=self.schema, preserve_index=False)
        curve_table = pa.Table.from_pandas(curves[CURVE_COLUMNS], schema=CURVE_SCHEMA, preserve_index=False)
        _atomic_write(self.path / "curves" / name, lambda fh: pq.write_table(curve_table, fh))
        _atomic_write(self.path / "runs" / name, lambda fh: pq.write_table(run_table, fh))
        self.chunks += 1
        self.runs_written += len(runs)


# ----------------------------------------------------------------------------------------------- reading
def read_manifest(path: Path, missing_ok: bool = False) -> dict[str, Any] | None:
    """The store's manifest; ``StoreError`` if unreadable or written by an incompatible format version."""
    manifest = path / MANIFEST
    if not manifest.exists():
        if missing_ok:
            if (path / "runs").is_dir():
                raise StoreError(f"{path}: has runs/ but no {MANIFEST}; not an xorlab store")
            return None
        raise StoreError(f"{path}: not an xorlab store (no {MANIFEST})")
    try:
        info = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{manifest}: unreadable store manifest ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise StoreError(f"{manifest}: not an xorlab store manifest")
    if info.get("version") != VERSION:
        raise StoreError(
            f"{path}: store format version {info.get('version')!r}, this xorlab reads version {VERSION}; "
            "use a new directory or the xorlab version that wrote it"
        )
    return info


def find_stores(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every store under the given paths (a store folder itself, or any folder containing stores)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    found: list[Path] = []
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise StoreError(f"{root}: no such file or directory")
        if not root.is_dir():
            raise StoreError(f"{root}: not a directory (expected a sweep or run directory)")
        here = sorted(
            Path(d) for d, subdirs, files in os.walk(root) if MANIFEST in files and not _hidden(Path(d), root)
        )
        if not here:
            raise StoreError(f"{root}: no xorlab records found (no {MANIFEST} in it or below it)")
        for store in here:
            read_manifest(store)
        found.extend(here)
    return found


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def committed_chunks(store: Path) -> list[Path]:
    """Runs files of the store's committed chunks, in name order (temp files excluded)."""
    return sorted(p for p in (store / "runs").glob("*.parquet") if not p.name.startswith("."))


def _read(file: Path, schema: pa.Schema, on_corrupt: str, filters: Any = None) -> pa.Table | None:
    try:
        table = pq.read_table(file, filters=filters)
        for f in schema:  # columns added to the format later: null in files written before them
            if f.name in OPTIONAL_COLUMNS and f.name not in table.column_names:
                table = table.append_column(f, pa.nulls(len(table), f.type))
        return table.select(schema.names).cast(schema)
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        msg = f"{file}: corrupt or truncated record file ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        if on_corrupt == "skip":
            log.warning("skipping %s", msg)
            return None
        raise StoreError(msg + "; pass on_corrupt='skip' to load the rest") from None


def _chunk_files(paths: Any) -> Iterator[tuple[Path, Path]]:
    for store in find_stores(paths):
        for runs_file in committed_chunks(store):
            yield runs_file, store / "curves" / runs_file.name


def _check_on_corrupt(on_corrupt: str) -> None:
    if on_corrupt not in ("raise", "skip"):
        raise ValueError(f"on_corrupt: must be 'raise' or 'skip', got {on_corrupt!r}")


def load_runs(paths: str | Path | Iterable[str | Path], on_corrupt: str = "raise") -> pd.DataFrame:
    """One row per recorded run (columns ``records.RUN_COLUMNS``) from sweep dirs, run dirs or their parents.

    A corrupt or truncated runs file raises ``StoreError`` naming it, unless ``on_corrupt="skip"``, which skips
    it with a logged warning. Runs recorded twice (same ``run_id``, hence the same config and, by determinism,
    the same result) are kept once.
    """
    _check_on_corrupt(on_corrupt)
    tables = [t for f, _ in _chunk_files(paths) if (t := _read(f, RUN_SCHEMA, on_corrupt)) is not None]
    table = pa.concat_tables(tables) if tables else RUN_SCHEMA.empty_table()
    frame = table.to_pandas()
    for col, dtype in RUN_DTYPES.items():  # nullable ints and strings with pd.NA, as records.runs_frame makes them
        if dtype == "Int64" or (dtype == "string" and col not in _PLAIN_STRINGS):
            frame[col] = frame[col].astype(dtype)
    dup = frame["run_id"].duplicated()
    if dup.any():
        log.warning("%d runs are recorded more than once; keeping one record of each", int(dup.sum()))
        frame = frame[~dup].reset_index(drop=True)
    return frame


def load_curves(
    paths: str | Path | Iterable[str | Path], run_ids: Iterable[str] | None = None, on_corrupt: str = "raise"
) -> pd.DataFrame:
    """Long-form curves (``run_id, step, loss``) of the recorded runs, optionally only of ``run_ids``."""
    _check_on_corrupt(on_corrupt)
    wanted = None if run_ids is None else sorted(set(run_ids))
    if wanted == []:
        return CURVE_SCHEMA.empty_table().to_pandas()
    filters = None if wanted is None else [("run_id", "in", wanted)]
    tables = []
    for runs_file, curves_file in _chunk_files(paths):
        if not curves_file.exists():
            msg = f"{curves_file}: missing curves file of committed chunk {runs_file}"
            if on_corrupt == "skip":
                log.warning("skipping %s", msg)
                continue
            raise StoreError(msg)
        table = _read(curves_file, CURVE_SCHEMA, on_corrupt, filters)
        if table is not None:
            tables.append(table)
    table = pa.concat_tables(tables) if tables else CURVE_SCHEMA.empty_table()
    frame = table.to_pandas()
    return frame.drop_duplicates(["run_id", "step"], ignore_index=True)


def recorded_ids(path: str | Path) -> set[str]:
    """``run_id`` of every run already recorded in the store at ``path`` (empty if there is none yet)."""
    path = Path(path)
    if not (path / MANIFEST).exists():
        return set()
    read_manifest(path)
    ids: set[str] = set()
    id_schema = pa.schema([RUN_SCHEMA.field("run_id")])
    for f in committed_chunks(path):
        ids.update(_read(f, id_schema, "raise").column("run_id").to_pylist())
    return ids
