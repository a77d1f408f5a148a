"""Reading stores: finding them, reading and validating chunks (a foreign, partial or corrupt file is never read
as this store's records), and the loaders ``load_runs`` / ``load_curves``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xorlab.core.order import natural_key
from xorlab.store.compact import categorical, encode_strings, stack
from xorlab.store.files import store_path
from xorlab.store.format import (
    _PLAIN_STRINGS,
    CURVE_SCHEMA,
    MANIFEST,
    META_CHUNK,
    META_CURVES_SHA,
    RUN_SCHEMA,
    StoreError,
    log,
    no_manifest,
    read_manifest,
)
from xorlab.store.records import DEFAULTED_COLUMNS, OPTIONAL_COLUMNS, RUN_DTYPES
from xorlab.store.sessions import read_session


def read_parquet(path: Path, **kw: Any) -> pa.Table:
    """``pq.read_table`` of the file at ``path``, opened by Python: pyarrow encodes a path as UTF-8, which a path
    holding bytes that are not UTF-8 (given by the OS, surrogate-escaped by Python) cannot be, and the good file
    would read as corrupt. Python's ``open`` passes the OS its own bytes."""
    with open(path, "rb") as fh:
        return pq.read_table(fh, **kw)


def read_parquet_schema(path: Path) -> pa.Schema:
    """``pq.read_schema`` of the file at ``path``, opened by Python (see ``read_parquet``)."""
    with open(path, "rb") as fh:
        return pq.read_schema(fh)


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
                raise StoreError(no_manifest(folder))
        if not here:
            raise StoreError(f"{root}: no xorlab records found (no {MANIFEST} in it or below it)")
        here.sort(key=lambda p: natural_key(str(p)))  # multirun jobs 0, 1, 2, …, 10, not 0, 1, 10, 11, …, 2
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
    return (
        f"{file}: corrupt, truncated or foreign record file ({reason}); the other chunks are intact; "
        f"`xorlab-store check {file.parent.parent}` lists every damaged file "
        "(Python: load_runs/load_curves(..., on_corrupt='skip') load the rest)"
    )


def _fill_missing(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the optional columns of ``schema`` it lacks (a store predating them): a later config field
    as its default (``DEFAULTED_COLUMNS``), anything else as null."""
    for name in OPTIONAL_COLUMNS:
        if name in schema.names and name not in table.column_names:
            kind = schema.field(name).type
            filler = (
                pa.repeat(pa.scalar(DEFAULTED_COLUMNS[name], kind), len(table))
                if name in DEFAULTED_COLUMNS
                else pa.nulls(len(table), kind)
            )
            table = table.append_column(name, filler)
    return table


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, in its order and types; see ``_fill_missing``."""
    return _fill_missing(table, schema).select(schema.names).cast(schema)


def check_runs_table(file: Path, table: pa.Table) -> None:
    if "run_id" in table.column_names and table.column("run_id").null_count:
        raise ValueError(f"run_id is null in {table.column('run_id').null_count} of {len(table)} rows")
    meta = table.schema.metadata or {}
    chunk = meta.get(META_CHUNK)
    if chunk is not None and chunk.decode() != file.name:
        raise ValueError(f"written as chunk {chunk.decode()!r} of another store or name")


def _subschema(schema: pa.Schema, columns: Sequence[str] | None) -> pa.Schema:
    if columns is None:
        return schema
    return pa.schema([schema.field(c) for c in schema.names if c in set(columns)], metadata=schema.metadata)


def read_table(
    file: Path,
    schema: pa.Schema,
    on_corrupt: str,
    filters: Any = None,
    check: Callable | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table | None:
    """``file`` conformed to ``schema`` (or to its ``columns``): only those columns are read from disk. A file
    that lacks a required column, or fails ``check(file, table)`` (given the file's metadata), is corrupt."""
    wanted = list(schema.names if columns is None else columns)
    try:
        with open(file, "rb") as fh:  # not pq.ParquetFile(path): see read_parquet
            pf = pq.ParquetFile(fh)
            present = set(pf.schema_arrow.names)
            if missing := [c for c in wanted if c not in present and c not in OPTIONAL_COLUMNS]:
                raise KeyError(f"no column {missing[0]!r}")
            read = [c for c in wanted if c in present]
            table = pf.read(columns=read).replace_schema_metadata(pf.schema_arrow.metadata)
            table = _fill_missing(table, pa.schema([schema.field(c) for c in wanted]))
            if filters is not None:  # the file is opened once; a runs file is one chunk, small enough to filter here
                table = table.filter(pq.filters_to_expression(filters))
        if check is not None:
            check(file, table)
        return _conform(table, pa.schema([schema.field(c) for c in wanted]))
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        msg = corrupt_message(file, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        if on_corrupt == "skip":
            log.warning("skipping %s", msg)
            return None
        raise StoreError(msg) from None


@overload
def read_runs_file(
    file: Path, on_corrupt: Literal["raise"] = ..., columns: Sequence[str] | None = None, filters: Any = None
) -> pa.Table: ...
@overload
def read_runs_file(
    file: Path, on_corrupt: str, columns: Sequence[str] | None = None, filters: Any = None
) -> pa.Table | None: ...
def read_runs_file(
    file: Path, on_corrupt: str = "raise", columns: Sequence[str] | None = None, filters: Any = None
) -> pa.Table | None:
    """One committed runs file, checked (readable, no null run_id, its own chunk) and conformed to RUN_SCHEMA
    (only ``columns``, if given, are read)."""
    return read_table(file, RUN_SCHEMA, on_corrupt, filters=filters, check=check_runs_table, columns=columns)


def _encoded(read: Callable[[Path], pa.Table | None]) -> Callable[[Path], pa.Table | None]:
    """``read`` with the string columns of each table it returns dictionary-encoded (``encode_strings``)."""

    def encoded(file: Path) -> pa.Table | None:
        table = read(file)
        return None if table is None else encode_strings(table)

    return encoded


def read_files(files: Sequence[Path], read: Callable[[Path], Any]) -> list[Any]:
    """``read`` of every file, in order, on every core (pyarrow decodes without the GIL)."""
    if len(files) < 2:
        return [read(f) for f in files]
    with ThreadPoolExecutor(max_workers=min(len(files), os.cpu_count() or 1)) as pool:
        return list(pool.map(read, files))


@overload
def read_curves_file(runs_file: Path, on_corrupt: Literal["raise"] = ..., filters: Any = None) -> pa.Table: ...
@overload
def read_curves_file(runs_file: Path, on_corrupt: str, filters: Any = None) -> pa.Table | None: ...
def read_curves_file(runs_file: Path, on_corrupt: str = "raise", filters: Any = None) -> pa.Table | None:
    """The curves of the committed chunk ``runs_file``, verified to be the file that chunk wrote.

    Chunks record the sha256 of their curves file; older chunks are checked by their run_id sets instead.
    A missing, foreign, partial or edited curves file raises ``StoreError`` (or is skipped, logged).
    """
    curves_file = runs_file.parent.parent / "curves" / runs_file.name
    try:
        data = curves_file.read_bytes()
        expected = (read_parquet_schema(runs_file).metadata or {}).get(META_CURVES_SHA)
        if expected is not None:
            if hashlib.sha256(data).hexdigest() != expected.decode():
                raise ValueError(f"not the curves file chunk {runs_file.name} wrote (content hash differs)")
            table = pq.read_table(pa.BufferReader(data), filters=filters)
        else:
            table = pq.read_table(pa.BufferReader(data))
            ids = set(read_parquet(runs_file, columns=["run_id"]).column("run_id").to_pylist())
            got = set(table.column("run_id").to_pylist()) if len(table) else set()
            if got != ids:
                raise ValueError(
                    f"its run_ids differ from those of {runs_file.name} "
                    f"({len(got - ids)} foreign, {len(ids - got)} missing)"
                )
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


def runs_to_frame(table: pa.Table, categories: bool = False) -> pd.DataFrame:
    """A RUN_SCHEMA table (or some of its columns) as the run frame (nullable Int64 steps, pd.NA-backed strings).

    ``categories``: the string columns but ``run_id`` as categoricals (``xorlab.store.compact``), and the table
    given up as it is converted (each column freed once it is a pandas column): pass a table no one else holds."""
    if categories:
        frame = encode_strings(table).to_pandas(split_blocks=True, self_destruct=True)
        del table
    else:
        frame = table.to_pandas()
    for col, dtype in RUN_DTYPES.items():  # nullable ints and strings with pd.NA, as records.runs_frame makes them
        if col not in frame.columns or isinstance(frame[col].dtype, pd.CategoricalDtype):
            continue
        if dtype == "Int64" or (dtype == "string" and col not in _PLAIN_STRINGS):
            frame[col] = frame[col].astype(dtype)
    return frame


MULTIRUN_FILE = "multirun.yaml"  # what Hydra writes into the folder of a multirun, beside its jobs' folders


def study_name(store: Path) -> str:
    """The study a store belongs to: the folder of the Hydra multirun that wrote it (one store per job, all one
    study), else the store's own path."""
    parent = store.parent
    return str(parent) if (parent / MULTIRUN_FILE).is_file() else str(store)


def named_stores(paths: str | Path | Iterable[str | Path], names: Sequence[str] | None) -> list[tuple[Path, str]]:
    """(store, sweep name) of every store under ``paths``: the store's path, or the caller's name per path."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if names is None:
        return [(s, study_name(s)) for s in find_stores(paths)]
    if len(names) != len(paths):
        raise StoreError(f"names: got {len(names)} names for {len(paths)} paths")
    out = []
    for path, name in zip(paths, names, strict=True):
        found = find_stores(path)
        out += [(s, name if len(found) == 1 else f"{name}/{s.relative_to(path)}") for s in found]
    return out


def store_label(name: str) -> str:
    """A store's name as a ``sweep`` value: the path as given, with bytes that are not UTF-8 (which Arrow strings
    cannot hold) written as ``\\xNN`` escapes."""
    return (
        os.fsencode(name).decode("utf-8", "backslashreplace") if any("\udc80" <= c <= "\udcff" for c in name) else name
    )


def load_runs(
    paths: str | Path | Iterable[str | Path],
    on_corrupt: str = "raise",
    names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    run_ids: Iterable[str] | None = None,
    categories: bool = False,
) -> pd.DataFrame:
    """One row per recorded run from sweep dirs, run dirs or their parents: ``RUN_COLUMNS``, then ``sweep`` (the
    store the row came from: its path, or ``names[i]`` for the i-th path) and ``init_label``.

    ``columns`` reads only those run columns (plus ``run_id``, and ``init_label`` when the init columns are among
    them): the others are never decoded, which is what keeps a million-run store's table small. ``run_ids``
    reads only those runs. Files are read on every core. ``categories`` holds the string columns but ``run_id``
    (and ``sweep``, ``init_label``) as categoricals: the same values in a fraction of the memory.

    Runs of different stores are never merged, even with equal ``run_id``s: ``(sweep, run_id)`` is the key.
    Within a store, runs recorded twice (same ``run_id``, hence the same config and, by determinism, the same
    result) are kept once, with a logged warning. A corrupt, truncated or foreign runs file raises ``StoreError``
    naming it, unless ``on_corrupt="skip"``, which skips it with a logged warning.
    """
    from xorlab.store.records import INIT_COLUMNS, init_labels

    _check_on_corrupt(on_corrupt)
    if columns is not None:
        unknown = sorted(set(columns) - set(RUN_SCHEMA.names))
        if unknown:
            raise StoreError(f"columns: unknown run column {unknown[0]!r}; allowed: {', '.join(RUN_SCHEMA.names)}")
        columns = list(dict.fromkeys(["run_id", *columns]))
    wanted = None if run_ids is None else sorted(set(run_ids))
    filters = None if wanted is None else [("run_id", "in", wanted)]
    empty = _conform(RUN_SCHEMA.empty_table(), _subschema(RUN_SCHEMA, columns))
    frames = []
    for store, name in named_stores(paths, names):
        runs = StoreReader(store, on_corrupt).runs(columns, filters, categories=categories)
        label = store_label(name)
        runs["sweep"] = pd.Categorical.from_codes(np.zeros(len(runs), dtype=np.int8), [label]) if categories else label
        frames.append(runs)
    if not frames:
        frame = runs_to_frame(empty, categories)
    else:
        frame = stack(frames) if categories else pd.concat(frames, ignore_index=True)
    del frames
    sweep = frame.get("sweep", pd.Series(dtype=object))
    frame["sweep"] = categorical(sweep) if categories else sweep.astype("string")
    if columns is None or {"init", *INIT_COLUMNS} <= set(columns):
        label = init_labels(frame) if len(frame) else pd.Series(dtype=str)
        frame["init_label"] = categorical(label) if categories else label
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
    for store, name in named_stores(paths, names):
        tables = [t for f in committed_chunks(store) if (t := read_curves_file(f, on_corrupt, filters)) is not None]
        frame = (pa.concat_tables(tables) if tables else CURVE_SCHEMA.empty_table()).to_pandas()
        frame = frame.drop_duplicates(["run_id", "step"], ignore_index=True)
        frames.append(frame.assign(sweep=pd.Series([store_label(name)] * len(frame), dtype="string")))
    if not frames:
        return CURVE_SCHEMA.empty_table().to_pandas().assign(sweep=pd.Series(dtype="string"))
    return pd.concat(frames, ignore_index=True)


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
            names = read_parquet_schema(f).names
            col = read_parquet(f, columns=[column]).column(column) if column in names else None
        except (OSError, pa.ArrowException):
            continue
        found |= {missing} if col is None else {missing if v is None else v for v in col.to_pylist()}
    return found


def recorded_engines(path: str | Path) -> set[str]:
    """Engines that trained the runs recorded at ``path`` (``numpy`` for rows older than the engine column)."""
    return recorded_values(path, "engine", missing="numpy")


class StoreReader:
    """One store, each file read at most once per question: the chunk list (listed once), run ids per chunk (the
    id column only), the runs table (projected to the columns asked for), and one run's row, curves and session
    (its runs file, its chunk's curves file and its session record, each read once; no other file is opened)."""

    def __init__(self, path: str | Path, on_corrupt: str = "raise") -> None:
        _check_on_corrupt(on_corrupt)
        self.path = store_path(path)
        self.manifest = read_manifest(self.path)
        self.on_corrupt = on_corrupt
        self.chunks = committed_chunks(self.path)
        self._ids: dict[Path, frozenset[str]] = {}

    def ids(self, chunk: Path) -> frozenset[str]:
        """The run ids committed by ``chunk`` (its ``run_id`` column only; cached)."""
        if chunk not in self._ids:
            table = read_runs_file(chunk, self.on_corrupt, columns=["run_id"])
            self._ids[chunk] = frozenset() if table is None else frozenset(table.column("run_id").to_pylist())
        return self._ids[chunk]

    def all_ids(self) -> set[str]:
        return set().union(*(self.ids(c) for c in self.chunks))

    def locate(self, run_id: str) -> Path:
        """The runs file of the chunk that recorded ``run_id``; ``StoreError`` if none did."""
        for chunk in self.chunks:
            if run_id in self.ids(chunk):
                return chunk
        raise StoreError(f"{self.path}: no run {run_id!r}")

    def runs(self, columns: Sequence[str] | None = None, filters: Any = None, categories: bool = False) -> pd.DataFrame:
        """The run table of every chunk (only ``columns``, if given; only rows matching ``filters``), in chunk order,
        each run once; files are read on every core. ``categories``: see ``runs_to_frame``; each file's strings
        are encoded as it is read, so the store's plain strings are never held at once."""
        read: Callable[[Path], pa.Table | None]
        read = functools.partial(read_runs_file, on_corrupt=self.on_corrupt, columns=columns, filters=filters)
        if categories:
            read = _encoded(read)
        tables = [t for t in read_files(self.chunks, read) if t is not None]
        schema = RUN_SCHEMA if columns is None else pa.schema([RUN_SCHEMA.field(c) for c in columns])
        table = pa.concat_tables(tables) if tables else schema.empty_table()
        del tables  # the table is the only holder of the files' columns, which runs_to_frame frees as it converts
        frame = runs_to_frame(table, categories)
        del table
        if "run_id" in frame.columns and (dup := frame["run_id"].duplicated()).any():
            n = int(dup.sum())
            log.warning("%s: %d runs are recorded more than once; keeping one record of each", self.path, n)
            frame = frame[~dup].reset_index(drop=True)
        return frame

    def run(self, run_id: str) -> tuple[pd.DataFrame, Path]:
        """One run's row (a one-row run frame) and the runs file that holds it (read once, filtered to the run)."""
        chunk = self.locate(run_id)
        table = read_runs_file(chunk, "raise", filters=[("run_id", "==", run_id)])
        assert table is not None  # "raise": a damaged file raised
        return runs_to_frame(table).head(1), chunk

    def curves(self, chunk: Path, run_ids: Iterable[str]) -> pd.DataFrame:
        """The curves of ``run_ids`` from ``chunk``'s curves file (read once, verified against its runs file)."""
        table = read_curves_file(chunk, "raise", filters=[("run_id", "in", sorted(set(run_ids)))])
        assert table is not None
        return table.to_pandas().drop_duplicates(["run_id", "step"], ignore_index=True)

    def session(self, chunk: Path) -> dict[str, Any]:
        """The session record of the writer that committed ``chunk`` (chunks are ``<session>-<seq>.parquet``)."""
        session = chunk.stem.rsplit("-", 1)[0]
        return read_session(self.path, session) or {"session": session}
