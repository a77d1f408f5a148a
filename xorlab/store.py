"""The run store: run records on disk, shared by ``xorlab-sweep`` and ``xorlab-train``.

Layout of a store directory::

    xorlab-store.json            format name and version (created once, never rewritten)
    sessions/<session>.json      one per writing process: config, provenance, liveness, planned grid
    curves/<chunk>.parquet       tidy curves of one chunk: run_id, step, loss
    runs/<chunk>.parquet         one row per run of that chunk (``RUN_COLUMNS`` of this module)
    claims/b<bucket>.claim       work a live writer is training right now (``xorlab.claims``)

Crash safety: every file is written to a hidden temp file in its folder, fsynced, then renamed into place, so
a reader sees a whole file or none. A chunk writes its curves first and its runs file last; **a chunk is
recorded iff its runs file exists**. The runs file carries, in its Parquet metadata, its own chunk name and the
sha256 of its curves file, so a curves or runs file copied in from elsewhere, or a partial one, is detected
instead of being read as this store's records. A process killed at any point leaves at most an orphaned
curves file, a temp file or a claim, all ignored by every reader (``xorlab.maintenance.clean_store`` removes
them), and the runs it was training are trained again next time. Chunk names are unique per process (session
id + sequence), so concurrent writers never collide.

Liveness: a writing session's json records ``pid``, ``host``, ``status`` (running|finished|interrupted|failed)
and a ``heartbeat`` (ISO UTC) refreshed by a background thread every ``HEARTBEAT_EVERY`` seconds;
``session_state`` tells a running session from a crashed one.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xorlab import provenance, signals
from xorlab.records import CURVE_COLUMNS, OPTIONAL_COLUMNS, RUN_DTYPES

log = logging.getLogger(__name__)

FORMAT = "xorlab-store"
VERSION = 1
MANIFEST = "xorlab-store.json"
TEMP_PREFIX = ".tmp-"

# Which init file a from_file run started from is part of what determines its result (issue 8, item 1):
# ``records`` keeps it as the ``init_file_sha256`` column; stores written before it read it as null.
FILE_HASH = "init_file_sha256"
_ARROW = {"string": pa.string(), "int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64()}


def run_schema(dtypes: dict[str, str] = RUN_DTYPES) -> pa.Schema:
    """Arrow schema of a runs file from the run table's dtypes (``records.run_dtypes``, derived from TrainConfig)."""
    return pa.schema([(c, _ARROW[dtype]) for c, dtype in dtypes.items()])


RUN_COLUMNS = list(RUN_DTYPES)
RUN_SCHEMA = run_schema()
_PLAIN_STRINGS = {"run_id", "init", "rng", "status"}  # never null: kept as object columns, as always
CURVE_SCHEMA = pa.schema(
    [("run_id", pa.dictionary(pa.int32(), pa.string())), ("step", pa.int64()), ("loss", pa.float64())]
)

# Parquet key-value metadata of a runs file: what ties it to this store's chunk and curves file.
META_CHUNK = b"xorlab.chunk"
META_CURVES_SHA = b"xorlab.curves_sha256"

# Liveness. A writer refreshes its heartbeat every HEARTBEAT_EVERY s; a session whose heartbeat is older than
# HEARTBEAT_TIMEOUT is taken as crashed (on another host this is the only evidence; six missed beats leave room
# for a slow shared filesystem). On the writer's own host a dead pid tells at once.
HEARTBEAT_EVERY = 5.0
HEARTBEAT_TIMEOUT = 60.0
STATUSES = ("running", "finished", "interrupted", "failed")

SAFE = "finished chunks are kept and the store is consistent (nothing half-written)"


class StoreError(ValueError):
    """A store path that cannot be read or written; ``str`` is one line naming the path."""


# ----------------------------------------------------------------------------------------------- paths
def store_path(path: str | Path, base: str | Path | None = None) -> Path:
    """The absolute path a store is written to *and* checked at: ``~`` expanded, relative to ``base`` if given.

    Writing and the "what is recorded" check must agree on this, or a resumed sweep retrains everything.
    """
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base).expanduser() / p
    return p.absolute()


def oserror_text(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EDQUOT:
        reason = "disk quota exceeded"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = f"not writable ({exc.strerror})"
    elif exc.errno == errno.ENAMETOOLONG:
        reason = "file name too long"
    return reason


# ----------------------------------------------------------------------------------------------- writing
def _create_exclusive(path: Path) -> int:
    """``open(O_CREAT|O_EXCL)`` with mode 0666 so the umask decides the permissions (mkstemp forces 0600)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def _temp_name(folder: Path, suffix: str = "") -> Path:
    return folder / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}{suffix}"


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` via a hidden temp file in the same folder, fsync, rename."""
    tmp = _temp_name(path.parent, path.suffix)
    fd = _create_exclusive(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=2, default=str).encode()))


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_names(path: Path, field: str) -> None:
    """Names longer than the filesystem allows fail at mkdir time; say so before anything is written."""
    existing = path
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    limit = _name_max(existing)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise StoreError(
                f"{field}: cannot use {path}: the name {part[:24]!r}… is {len(os.fsencode(part))} bytes; "
                f"this filesystem allows at most {limit} bytes per path component"
            )


def check_writable(path: str | Path, field: str = "dir") -> Path:
    """Raise ``StoreError`` unless ``path`` is (or can be created as) a writable, compatible store folder.

    Writes nothing: the check is done on the folder if it exists, else on its nearest existing parent (where a
    uniquely named folder is created and removed, since permission bits do not tell everything).
    """
    path = store_path(path)
    _check_names(path, field)
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
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise StoreError(f"{field}: {path} is not writable ({probe} is on a read-only filesystem); nothing was written")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{field}: {path} is not writable (no write permission on {probe}); nothing was written")
    if probe != path:  # permission bits do not tell everything (/proc, /sys, root on odd mounts): try for real,
        trial = _temp_name(probe, ".probe")  # under a name of our own: writers starting together never collide
        try:
            os.mkdir(trial)
            os.rmdir(trial)
        except OSError as exc:
            raise StoreError(f"{field}: cannot create {path} ({exc.strerror or exc}); nothing was written") from None
    return path


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def with_file_hashes(runs: pd.DataFrame, hashes: dict[str, str] | None = None) -> pd.DataFrame:
    """``runs`` with ``init_file_sha256`` filled for its from_file rows (null elsewhere).

    ``hashes`` maps an ``init_path`` value to the sha256 the runs were trained with (the runner snapshots them
    before training); paths not in it are hashed now.
    """
    hashes = dict(hashes or {})
    values: list[Any] = []
    for init, path in zip(runs["init"], runs["init_path"], strict=True):
        if init != "from_file" or pd.isna(path):
            values.append(None)
            continue
        if path not in hashes:
            hashes[path] = file_sha256(path)
        values.append(hashes[path])
    out = runs.drop(columns=[FILE_HASH], errors="ignore")
    at = list(out.columns).index("init_path") + 1 if "init_path" in out else len(out.columns)
    out.insert(at, FILE_HASH, pd.array(values, dtype="string"))
    return out


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, and SIGTERM via xorlab.signals.StopRequested
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
            raise StoreError(f"{self.session_file}: cannot record the end of the session ({oserror_text(err)}); "
                             f"{SAFE}") from None  # fmt: skip

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                with self._lock:
                    self.info["heartbeat"] = provenance.now()
                    _write_json(self.session_file, self.info)
            except OSError as err:  # a full disk must not kill the thread; readers then see an old heartbeat
                log.debug("heartbeat of session %s not written: %s", self.session, err)

    def _create_manifest(self) -> None:
        manifest = self.path / MANIFEST
        if manifest.exists():
            read_manifest(self.path)
            return
        tmp = _temp_name(self.path)
        with os.fdopen(_create_exclusive(tmp), "w") as fh:
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
            _write_json(self.session_file, self.info)

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
        meta = {**(run_table.schema.metadata or {}), META_CHUNK: name.encode(),
                META_CURVES_SHA: hashlib.sha256(curve_bytes).hexdigest().encode()}  # fmt: skip
        run_table = run_table.replace_schema_metadata(meta)
        self.written_files.add(name)  # before the commit: a concurrent reader of the folder knows it is ours
        try:
            _atomic_write(self.path / "curves" / name, lambda fh: fh.write(curve_bytes))
            _atomic_write(self.path / "runs" / name, lambda fh: pq.write_table(run_table, fh))
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
def read_manifest(path: Path, missing_ok: bool = False) -> dict[str, Any] | None:
    """The store's manifest; ``StoreError`` if unreadable or written by an incompatible format version."""
    manifest = path / MANIFEST
    if not manifest.exists():
        if missing_ok:
            if (path / "runs").is_dir():
                raise StoreError(_no_manifest(path))
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


def _no_manifest(path: Path) -> str:
    return (f"{path}: has runs/ but no {MANIFEST}: a store whose manifest was lost, or not an xorlab store; "
            f"restore {MANIFEST} (e.g. from a sibling store) or move the folder away")  # fmt: skip


def _looks_like_store(folder: Path, subdirs: list[str]) -> bool:
    """A folder with a runs/ holding Parquet files: a store even when its manifest is missing."""
    if "runs" not in subdirs:
        return False
    try:
        return any(n.endswith(".parquet") for n in os.listdir(folder / "runs"))
    except OSError:
        return False


def find_stores(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Every store under the given paths (a store folder itself, or any folder containing stores), each once
    (``s1 ./s1 /abs/s1``, or ``runs runs/s1``, name one store).

    A folder that holds runs but lost its manifest is an error, not silently left out.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise StoreError(f"{root}: no such file or directory")
        if not root.is_dir():
            raise StoreError(f"{root}: not a directory (expected a sweep or run directory)")
        here = []
        for d, subdirs, files in os.walk(root):
            folder = Path(d)
            if _hidden(folder, root):
                continue
            if MANIFEST in files:
                here.append(folder)
            elif _looks_like_store(folder, subdirs):
                raise StoreError(_no_manifest(folder))
        if not here:
            raise StoreError(f"{root}: no xorlab records found (no {MANIFEST} in it or below it)")
        here.sort()
        for store in here:
            read_manifest(store)
            if store.resolve() not in seen:
                seen.add(store.resolve())
                found.append(store)
    return found


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def committed_chunks(store: Path) -> list[Path]:
    """Runs files of the store's committed chunks, in name order (temp files excluded)."""
    return sorted(p for p in (Path(store) / "runs").glob("*.parquet") if not p.name.startswith("."))


def corrupt_message(file: Path, reason: str) -> str:
    """One line for a damaged record file: which file, why, and that the rest is safe."""
    return (f"{file}: corrupt, truncated or foreign record file ({reason}); the other chunks are intact; "
            f"`xorlab-store check {file.parent.parent}` lists every damaged file "
            "(Python: load_runs/load_curves(..., on_corrupt='skip') load the rest)")  # fmt: skip


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns; optional columns a store predates become null."""
    for name in OPTIONAL_COLUMNS:
        if name in schema.names and name not in table.column_names:
            table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
    return table.select(schema.names).cast(schema)


def _check_runs_table(file: Path, table: pa.Table) -> None:
    if "run_id" in table.column_names and table.column("run_id").null_count:
        raise ValueError(f"run_id is null in {table.column('run_id').null_count} of {len(table)} rows")
    meta = table.schema.metadata or {}
    chunk = meta.get(META_CHUNK)
    if chunk is not None and chunk.decode() != file.name:
        raise ValueError(f"written as chunk {chunk.decode()!r} of another store or name")


def _read(
    file: Path, schema: pa.Schema, on_corrupt: str, filters: Any = None, check: Callable | None = None
) -> pa.Table | None:
    try:
        table = pq.read_table(file, filters=filters)
        if check is not None:
            check(file, table)
        return _conform(table, schema)
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        msg = corrupt_message(file, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        if on_corrupt == "skip":
            log.warning("skipping %s", msg)
            return None
        raise StoreError(msg) from None


def read_runs_file(file: Path, on_corrupt: str = "raise") -> pa.Table | None:
    """One committed runs file, checked (readable, no null run_id, its own chunk) and conformed to RUN_SCHEMA."""
    return _read(file, RUN_SCHEMA, on_corrupt, check=_check_runs_table)


def read_curves_file(runs_file: Path, on_corrupt: str = "raise", filters: Any = None) -> pa.Table | None:
    """The curves of the committed chunk ``runs_file``, verified to be the file that chunk wrote.

    Chunks record the sha256 of their curves file; older chunks are checked by their run_id sets instead.
    A missing, foreign, partial or edited curves file raises ``StoreError`` (or is skipped, logged).
    """
    curves_file = runs_file.parent.parent / "curves" / runs_file.name
    try:
        data = curves_file.read_bytes()
        expected = (pq.read_schema(runs_file).metadata or {}).get(META_CURVES_SHA)
        if expected is not None:
            if hashlib.sha256(data).hexdigest() != expected.decode():
                raise ValueError(f"not the curves file chunk {runs_file.name} wrote (content hash differs)")
            table = pq.read_table(pa.BufferReader(data), filters=filters)
        else:
            table = pq.read_table(pa.BufferReader(data))
            ids = set(pq.read_table(runs_file, columns=["run_id"]).column("run_id").to_pylist())
            got = set(table.column("run_id").to_pylist()) if len(table) else set()
            if got != ids:
                raise ValueError(f"its run_ids differ from those of {runs_file.name} "
                                 f"({len(got - ids)} foreign, {len(ids - got)} missing)")  # fmt: skip
            if filters is not None:
                table = pq.read_table(pa.BufferReader(data), filters=filters)
        return _conform(table, CURVE_SCHEMA)
    except FileNotFoundError:
        msg = f"{curves_file}: missing curves file of committed chunk {runs_file}; the other chunks are intact"
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        msg = corrupt_message(curves_file, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    if on_corrupt == "skip":
        log.warning("skipping %s", msg)
        return None
    raise StoreError(msg)


def _check_on_corrupt(on_corrupt: str) -> None:
    if on_corrupt not in ("raise", "skip"):
        raise ValueError(f"on_corrupt: must be 'raise' or 'skip', got {on_corrupt!r}")


def runs_to_frame(table: pa.Table) -> pd.DataFrame:
    """A RUN_SCHEMA table as the run frame (nullable Int64 steps, pd.NA-backed strings)."""
    frame = table.to_pandas()
    for col, dtype in RUN_DTYPES.items():  # nullable ints and strings with pd.NA, as records.runs_frame makes them
        if dtype == "Int64" or (dtype == "string" and col not in _PLAIN_STRINGS):
            frame[col] = frame[col].astype(dtype)
    return frame


def _named_stores(paths: str | Path | Iterable[str | Path], names: Sequence[str] | None) -> list[tuple[Path, str]]:
    """(store, sweep name) of every store under ``paths``: the store's path, or the caller's name per path."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if names is None:
        return [(s, str(s)) for s in find_stores(paths)]
    if len(names) != len(paths):
        raise StoreError(f"names: got {len(names)} names for {len(paths)} paths")
    out = []
    for path, name in zip(paths, names, strict=True):
        found = find_stores(path)
        out += [(s, name if len(found) == 1 else f"{name}/{s.relative_to(path)}") for s in found]
    return out


def load_runs(
    paths: str | Path | Iterable[str | Path], on_corrupt: str = "raise", names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per recorded run from sweep dirs, run dirs or their parents: ``RUN_COLUMNS``, then ``sweep`` (the
    store the row came from: its path, or ``names[i]`` for the i-th path) and ``init_label``.

    Runs of different stores are never merged, even with equal ``run_id``s: ``(sweep, run_id)`` is the key.
    Within a store, runs recorded twice (same ``run_id``, hence the same config and, by determinism, the same
    result) are kept once, with a logged warning. A corrupt, truncated or foreign runs file raises ``StoreError``
    naming it, unless ``on_corrupt="skip"``, which skips it with a logged warning.
    """
    from xorlab.records import init_labels

    _check_on_corrupt(on_corrupt)
    frames = []
    for store, name in _named_stores(paths, names):
        tables = [t for f in committed_chunks(store) if (t := read_runs_file(f, on_corrupt)) is not None]
        frame = runs_to_frame(pa.concat_tables(tables) if tables else RUN_SCHEMA.empty_table())
        dup = frame["run_id"].duplicated()
        if dup.any():
            log.warning("%s: %d runs are recorded more than once; keeping one record of each", store, int(dup.sum()))
            frame = frame[~dup]
        frames.append(frame.assign(sweep=name))
    frame = pd.concat(frames, ignore_index=True) if frames else runs_to_frame(RUN_SCHEMA.empty_table())
    frame["sweep"] = frame.get("sweep", pd.Series(dtype=object)).astype("string")
    frame["init_label"] = init_labels(frame) if len(frame) else pd.Series(dtype=str)
    return frame


def load_curves(
    paths: str | Path | Iterable[str | Path],
    run_ids: Iterable[str] | None = None,
    on_corrupt: str = "raise",
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long-form curves (``run_id, step, loss, sweep``) of the recorded runs, optionally only of ``run_ids``;
    ``sweep`` names the store as in ``load_runs``, and stores are never merged.

    Each chunk's curves file is verified to be the one its runs file committed (see ``read_curves_file``).
    """
    _check_on_corrupt(on_corrupt)
    wanted = None if run_ids is None else sorted(set(run_ids))
    if wanted == []:
        return CURVE_SCHEMA.empty_table().to_pandas().assign(sweep=pd.Series(dtype="string"))
    filters = None if wanted is None else [("run_id", "in", wanted)]
    frames = []
    for store, name in _named_stores(paths, names):
        tables = [t for f in committed_chunks(store) if (t := read_curves_file(f, on_corrupt, filters)) is not None]
        frame = (pa.concat_tables(tables) if tables else CURVE_SCHEMA.empty_table()).to_pandas()
        frame = frame.drop_duplicates(["run_id", "step"], ignore_index=True)
        frames.append(frame.assign(sweep=pd.Series([name] * len(frame), dtype="string")))
    if not frames:
        return CURVE_SCHEMA.empty_table().to_pandas().assign(sweep=pd.Series(dtype="string"))
    return pd.concat(frames, ignore_index=True)


class RecordedIndex:
    """The ``run_id`` set of a store, refreshed incrementally: only runs files not seen before are read.

    Concurrent writers commit new chunks while a sweep runs; ``refresh`` returns the ids that appeared since the
    last call, so a writer can drop runs others recorded meanwhile without re-reading the whole store.
    """

    _ID_SCHEMA = pa.schema([RUN_SCHEMA.field("run_id")])

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
            table = _read(f, self._ID_SCHEMA, "raise", check=_check_runs_table)
            new.update(table.column("run_id").to_pylist())
        new -= self.ids
        self.ids |= new
        return new


def recorded_values(path: str | Path, column: str, missing: Any = None) -> set[Any]:
    """Distinct values of one run-table ``column`` in the store at ``path``, reading that column only (``missing``
    for rows of files older than the column, and for nulls). Damaged files are skipped: the loaders and
    ``xorlab-store check`` report them."""
    path = store_path(path)
    if not (path / MANIFEST).exists():
        return set()
    found: set[Any] = set()
    for f in committed_chunks(path):
        try:
            names = pq.read_schema(f).names
            col = pq.read_table(f, columns=[column]).column(column) if column in names else None
        except (OSError, pa.ArrowException):
            continue
        found |= {missing} if col is None else {missing if v is None else v for v in col.to_pylist()}
    return found


def recorded_engines(path: str | Path) -> set[str]:
    """Engines that trained the runs recorded at ``path`` (``numpy`` for rows older than the engine column)."""
    return recorded_values(path, "engine", missing="numpy")


def recorded_ids(path: str | Path) -> set[str]:
    """``run_id`` of every run already recorded in the store at ``path`` (empty if there is none yet)."""
    index = RecordedIndex(path)
    index.refresh()
    return index.ids
