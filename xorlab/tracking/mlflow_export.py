"""Export a store's statistics to MLflow (``pip install 'xorlab[mlflow]'``): summaries, not seeds.

One **parent run per store** and one **child run per configuration cell** (the groups of
``xorlab.analysis.stats.stats_table`` over every swept axis except ``seed``), laid out for MLflow's own views:

- **params**: the parent holds the grid (each axis's recorded values as text). A child holds every config field
  that is constant in its cell as its own param, written as the number it is (``lr`` ``0.1``, ``max_steps``
  ``1000``, ``init`` ``normal``, ``init_std`` ``0.01``), so MLflow's compare, parallel-coordinates and scatter
  views can plot success against ``lr`` or ``init_std``. A field a cell does not have (``init_std`` of ``he_normal``)
  is absent, never empty.
- **metrics**: every number of the cell's stats row (n, success rate and Wilson interval, Kaplan–Meier median
  steps to solve and interval, failure-mode counts and rates, final-loss quartiles, the paired comparison with
  the reference init). A number that does not exist for a cell (no comparison for the reference itself, no KM
  median when fewer than half solve) is absent: no NaN is ever logged. The cell's median loss curve and its
  95 % interval (``stats.curve_bands``) are the metric histories ``loss_median``, ``loss_lo``, ``loss_hi``
  against the training step (non-finite points, i.e. diverged runs dominating, are left out).
- **tags**: the comparison's reference and multiple-comparison family (``xorlab.ref_init``,
  ``xorlab.family``), the init label; on the parent the store's path, state, planned and recorded run counts,
  code version, and the MLflow version that wrote it.
- **artifacts** (parent): the per-run table ``runs.parquet`` and ``STORE/report/`` if present.

**Re-exporting is exact.** Everything an export would write is summarised in a fingerprint (tag
``xorlab.fingerprint``, set last, so an interrupted export is never taken as complete). If the store's earlier
export carries the same fingerprint, nothing is written; otherwise the earlier parent and children are deleted
and written anew. So whatever happened to the store (grown, shrunk by deleting a damaged chunk, edited), every
metric's latest value and every curve's history in MLflow are the store's current ones: MLflow keeps every value
ever logged and shows the one at the largest step, which no in-place update could make right for a shrunk store.
A store is found by the tag ``xorlab.store_key`` (its absolute path and creation time), cells by ``xorlab.cell``.

**Tracking URI**: ``--tracking-uri`` if given; else ``MLFLOW_TRACKING_URI`` if set (MLflow's own conventions);
else ``sqlite:///<store's parent>/mlflow.db`` with artifacts in ``<store's parent>/mlartifacts/<experiment>-<hash>``
(the experiment name is reduced to safe characters, so it can never point the artifacts elsewhere). Exports to
one SQLite database are serialised by a lock file beside it (``mlflow.db.lock``): concurrent exports, even to a
database that does not exist yet, all succeed one after the other. ``pip install 'xorlab[mlflow-ui]'`` brings the
MLflow UI of the same version (``mlflow ui --backend-store-uri sqlite:///…/mlflow.db``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from xorlab.analysis import stats
from xorlab.store.format import StoreError, read_manifest
from xorlab.store.provenance import package_versions
from xorlab.store.reader import load_curves, load_runs
from xorlab.store.records import CONFIG_COLUMNS
from xorlab.tracking import catalog

STORE_KEY_TAG = "xorlab.store_key"
ROLE_TAG = "xorlab.role"  # "store" (parent) or "cell" (child)
CELL_TAG = "xorlab.cell"
FINGERPRINT_TAG = "xorlab.fingerprint"  # of everything the export wrote; set last
DEFAULT_EXPERIMENT = "xorlab"
TEXT_COLUMNS = {"ref_init": "xorlab.ref_init", "family": "xorlab.family"}  # text of a stats row: tags
CURVE_METRICS = ("loss_median", "loss_lo", "loss_hi")
CURVE_POINTS = 200  # steps per logged curve (``stats.thin_steps``)
REACH_TIMEOUT = 5.0  # seconds to wait for an http(s) tracking server to accept a connection
LOCK_TIMEOUT = 600.0  # seconds to wait for another export to the same SQLite database
_AXES = [c for c in CONFIG_COLUMNS if c not in stats.INIT_COLUMNS]  # init and its params are ``init_label``
_MAX_BATCH = {"params": 100, "metrics": 1000, "tags": 100}  # MLflow's limits per log_batch call


class ExportError(RuntimeError):
    """The export cannot run (MLflow missing, a bad tracking URI, an empty store); ``str`` is one line."""


@dataclass(frozen=True)
class Export:
    """What ``export_store`` did: ``status`` is ``created``, ``replaced`` (the store changed since its last
    export, which was deleted and written anew) or ``unchanged`` (the last export is current; nothing written)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    cell_run_ids: dict[str, str]  # cell key -> MLflow run id
    status: str

    @property
    def replaced(self) -> bool:
        return self.status == "replaced"

    @property
    def updated(self) -> bool:
        """An earlier export of this store was found (replaced or already current)."""
        return self.status != "created"


@dataclass
class _Run:
    """What one MLflow run is to hold."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # metric -> [(step, value)]


def store_key(path: str | Path) -> str:
    """Identity of a store across exports: its absolute path and the creation time in its manifest."""
    path = Path(path).expanduser().absolute()
    created = (read_manifest(path) or {}).get("created", "")
    return hashlib.sha256(f"{path}|{created}".encode()).hexdigest()[:16]


def default_tracking_uri(path: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite database beside the store (in its parent folder)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(path).expanduser().absolute().parent / 'mlflow.db'}"


def _sqlite_path(uri: str) -> Path | None:
    return Path(unquote(uri[len("sqlite:///") :])) if uri.startswith("sqlite:///") else None


def artifact_folder(experiment: str) -> str:
    """A folder name for an experiment's artifacts that stays inside ``mlartifacts/`` whatever the name is:
    the name's safe characters (no leading dots) and a hash of the whole name, so names differing only in
    unsafe characters do not share a folder."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment).lstrip(".")[:60]
    return f"{safe or 'experiment'}-{hashlib.sha256(experiment.encode()).hexdigest()[:8]}"


def _artifact_location(uri: str, experiment: str) -> str | None:
    """For a SQLite URI, artifacts beside the database (MLflow's default would be ``./mlruns`` of the cwd)."""
    db = _sqlite_path(uri)
    if db is None:
        return None
    return (db.parent / "mlartifacts" / artifact_folder(experiment)).absolute().as_uri()


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def typed(value: Any) -> str:
    """A param value as the number it is (shortest text that reads back to the same float), or its text."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _values_text(values: list[Any]) -> str:
    """An axis's values: ``range(0, 200)`` for consecutive integers, else the sorted values (shortened)."""
    vals = sorted(set(values), key=lambda v: (str(type(v)), v))
    if (
        len(vals) > 2
        and all(isinstance(v, int | np.integer) for v in vals)
        and vals == list(range(vals[0], vals[-1] + 1))
    ):
        return f"range({vals[0]}, {vals[-1] + 1})"
    text = ", ".join(_text(v) for v in vals)
    return text if len(text) <= 500 else f"{len(vals)} values: {_text(vals[0])} … {_text(vals[-1])}"


def grid_params(runs: pd.DataFrame) -> dict[str, str]:
    """The grid as recorded: each config axis's distinct values (init with its parameters as ``init``)."""
    out = {"init": _values_text(list(runs["init_label"].astype(str)))}
    for c in _AXES:
        out[c] = _values_text([v for v in runs[c].tolist() if not (isinstance(v, float) and math.isnan(v))])
    return out


def cell_key(row: Mapping[str, Any], by: list[str]) -> str:
    """``init=notebook, lr=0.1, max_steps=1000``: a cell's name and its ``xorlab.cell`` tag."""
    return ", ".join(f"{'init' if b == 'init_label' else b}={_text(row[b])}" for b in by) or "all runs"


def cell_params(cell: pd.DataFrame) -> dict[str, str]:
    """Every config field with one value in the cell (seed excepted: a cell pools seeds), typed; a field that
    is null throughout (an init parameter the scheme does not have) is absent."""
    out = {}
    for c in CONFIG_COLUMNS:
        if c == "seed" or c not in cell:
            continue
        values = cell[c].dropna().unique()
        if len(values) == 1 and cell[c].notna().all():
            out[c] = typed(values[0])
    return out


def cell_metrics(row: pd.Series, by: list[str]) -> dict[str, float]:
    """Every finite number of a ``stats_table`` row; a number that does not exist (NaN) is left out."""
    out = {}
    for name, value in row.items():
        if name in by or name in TEXT_COLUMNS or isinstance(value, str) or pd.isna(value):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(name)] = number
    return out


def _cell_tags(row: pd.Series) -> dict[str, str]:
    return {tag: str(row[col]) for col, tag in TEXT_COLUMNS.items() if col in row and isinstance(row[col], str)}


def _histories(bands: pd.DataFrame) -> dict[str, list[tuple[int, float]]]:
    """A cell's curve band as metric histories against the training step (finite points only)."""
    steps = bands["step"].to_numpy(dtype=np.int64)
    out = {}
    for name in CURVE_METRICS:
        values = bands[name].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        out[name] = [(int(s), float(v)) for s, v in zip(steps[keep], values[keep], strict=True)]
    return out


def _by_cell(frame: pd.DataFrame, by: list[str]) -> dict[str, pd.DataFrame]:
    """The rows of ``frame`` per cell (one cell, ``all runs``, when nothing is swept)."""
    if not by:
        return {cell_key({}, by): frame}
    return {cell_key(dict(zip(by, k, strict=True)), by): g for k, g in frame.groupby(by, sort=False)}


def plan(path: Path, by: Any = None) -> tuple[_Run, list[_Run], pd.DataFrame]:
    """What an export of the store at ``path`` writes: the parent run, one run per cell (no MLflow needed), and
    the per-run table attached to the parent."""
    try:
        read_manifest(path)  # one store: load_runs would also read a folder of stores, as one
        runs = load_runs(path)
        curves = load_curves(path)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    if runs.empty:
        raise ExportError(f"{path}: no runs recorded")
    info = catalog.describe(path)
    runs = stats.with_init_label(runs)
    by = stats.resolve_by(runs, by)
    table = stats.stats_table(runs, by)
    bands = stats.curve_bands(curves, runs.assign(_all=0), by or ["_all"], max_points=CURVE_POINTS)
    band_of, run_groups = _by_cell(bands, by), _by_cell(runs, by)
    key = store_key(path)
    parent = _Run(
        name=path.name,
        params=grid_params(runs),
        metrics=cell_metrics(stats.summarize(runs, []).iloc[0], []),
        tags={
            STORE_KEY_TAG: key,
            ROLE_TAG: "store",
            "xorlab.store": str(path.expanduser().absolute()),
            "xorlab.version": _version(),
            "xorlab.commit": info.commit or "unknown",
            "xorlab.dirty": str(info.dirty),
            "xorlab.state": info.state,
            "xorlab.runs_recorded": str(info.runs),
            "xorlab.runs_planned": "unknown" if info.planned is None else str(info.planned),
            "xorlab.by": ",".join(by),
        },
    )
    cells = []
    for _, row in table.iterrows():
        name = cell_key(row, by)
        tags = {ROLE_TAG: "cell", CELL_TAG: name, STORE_KEY_TAG: key, **_cell_tags(row)}
        if "init_label" in by:
            tags["xorlab.init_label"] = str(row["init_label"])
        history = _histories(band_of[name]) if name in band_of else {}
        cells.append(_Run(name, cell_params(run_groups[name]), cell_metrics(row, by), tags, history))
    return parent, cells, runs


def fingerprint(parent: _Run, cells: list[_Run], report: Path) -> str:
    """sha256 of everything an export writes (runs, values, the report's files), timestamps excepted."""
    h = hashlib.sha256()
    for run in (parent, *cells):
        h.update(json.dumps([run.name, run.params, run.metrics, run.tags, run.history], sort_keys=True).encode())
    for f in sorted(report.rglob("*")) if report.is_dir() else []:
        if f.is_file():
            h.update(str(f.relative_to(report)).encode() + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:32]


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow and alembic log every schema migration at INFO; keep the export's own output to its summary."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextmanager
def database_lock(uri: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """For a SQLite tracking URI, hold ``<database>.lock`` (an ``flock``) for the whole export: MLflow creates
    and migrates a new database's tables on first use, and two processes doing so at once fail ("table …
    already exists"); two exports of one store at once would also both create its parent run. Other URIs
    (a tracking server) are not locked."""
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    lock = db.with_name(db.name + ".lock")
    try:
        fh = open(lock, "a")  # held across the yield
    except OSError as exc:
        reason = exc.strerror or exc
        raise ExportError(f"{lock}: cannot open the export lock ({reason}); nothing was exported") from None
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ExportError(f"{lock}: another export to {db} has held this lock for over {timeout:.0f} s; "
                                      "nothing was exported; try again when it has finished") from None  # fmt: skip
                time.sleep(0.1)
        yield
    finally:
        fh.close()  # releases the lock


def _import_mlflow() -> None:
    """Import MLflow first: importing it configures its loggers, which ``_quiet`` then turns down."""
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError:
        raise ExportError("MLflow is not installed; pip install 'xorlab[mlflow]'") from None


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _search(client, exp_id: str, filter_string: str) -> list:
    """Every run matching ``filter_string`` (active ones), across result pages."""
    out, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string=filter_string, max_results=1000, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def _experiment(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=_artifact_location(uri, name))
        except Exception:  # created meanwhile by another export to the same server
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _log(client, run_id: str, run: _Run) -> None:
    """Params, metrics (step 0), tags and metric histories of ``run``, in batches MLflow accepts."""
    from mlflow.entities import Metric, Param, RunTag

    now = int(1000 * time.time())
    items: dict[str, list] = {
        "params": [Param(k, v) for k, v in run.params.items()],
        "metrics": [Metric(k, v, now, 0) for k, v in run.metrics.items()]
        + [Metric(k, v, now, s) for k, points in run.history.items() for s, v in points],
        "tags": [RunTag(k, v) for k, v in run.tags.items()],
    }
    for kind, entries in items.items():
        size = _MAX_BATCH[kind]
        for i in range(0, len(entries), size):
            client.log_batch(run_id, **{kind: entries[i : i + size]})


def export_store(
    path: str | Path, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT, by: Any = None
) -> Export:
    """Export the store at ``path`` (see the module docstring); returns what was done and the ids written."""
    path = Path(path)
    parent, cells, runs = plan(path, by)
    uri = tracking_uri or default_tracking_uri(path)
    check_reachable(uri)
    _import_mlflow()
    from mlflow.version import VERSION

    fp = fingerprint(parent, cells, path / "report")
    parent.tags["xorlab.mlflow_version"] = VERSION
    key = parent.tags[STORE_KEY_TAG]
    with database_lock(uri), _quiet():
        try:
            client = _client(uri)
            exp_id = _experiment(client, experiment, uri)
            found = _search(client, exp_id, f"tags.`{STORE_KEY_TAG}` = '{key}' and tags.`{ROLE_TAG}` = 'store'")
        except Exception as exc:  # MLflow raises its own and driver errors for a bad URI or database
            raise ExportError(
                f"tracking URI {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        children = {
            p.info.run_id: _search(client, exp_id, f"tags.mlflow.parentRunId = '{p.info.run_id}'") for p in found
        }
        if len(found) == 1 and found[0].data.tags.get(FINGERPRINT_TAG) == fp:
            current = found[0]
            cell_ids = {r.data.tags.get(CELL_TAG): r.info.run_id for r in children[current.info.run_id]}
            return Export(uri, exp_id, current.info.run_id, cell_ids, "unchanged")
        for old in found:  # the store changed since: its old numbers must not stay behind as "latest"
            for r in children[old.info.run_id]:
                client.delete_run(r.info.run_id)
            client.delete_run(old.info.run_id)
        parent_id = client.create_run(exp_id, tags=parent.tags, run_name=parent.name).info.run_id
        _log(client, parent_id, parent)
        cell_ids = {}
        for cell in cells:
            tags = {**cell.tags, "mlflow.parentRunId": parent_id}
            run_id = client.create_run(exp_id, tags=tags, run_name=cell.name).info.run_id
            _log(client, run_id, cell)
            client.set_terminated(run_id, "FINISHED")
            cell_ids[cell.name] = run_id
        _attach(client, parent_id, runs, path)
        client.set_tag(parent_id, FINGERPRINT_TAG, fp)  # last: only a complete export is ever "current"
        client.set_terminated(parent_id, "FINISHED")
    return Export(uri, exp_id, parent_id, cell_ids, "replaced" if found else "created")


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT) -> None:
    """For an http(s) tracking URI, raise ``ExportError`` unless its server accepts a connection within
    ``timeout`` seconds: MLflow's client would otherwise retry for minutes before saying anything."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ExportError(
            f"tracking URI: cannot reach the MLflow server at {uri} ({reason}); nothing was exported; "
            "start it (mlflow server) or check the address"
        ) from None


def _attach(client, run_id: str, runs: pd.DataFrame, path: Path) -> None:
    """The per-run table as ``runs.parquet``, and ``STORE/report/`` as ``report/`` if it exists."""
    with tempfile.TemporaryDirectory(prefix="xorlab-mlflow-") as tmp:
        table = Path(tmp) / "runs.parquet"
        runs.to_parquet(table, index=False)
        client.log_artifact(run_id, str(table))
    report = path / "report"
    if report.is_dir():
        client.log_artifacts(run_id, str(report), artifact_path="report")


def _version() -> str:
    return package_versions().get("xorlab") or "unknown"
