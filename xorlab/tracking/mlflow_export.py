"""Export a store's statistics to MLflow (``pip install 'xorlab[mlflow]'``): summaries, not seeds.

One **parent run per store** (params: the grid, each axis's recorded values; tags: git commit, dirty flag,
xorlab version, store path, state) and one **child run per configuration cell** (the groups of
``xorlab.analysis.stats.stats_table`` over every swept axis except ``seed``; params: the cell's config; metrics: every
number of its stats row: n, success rate and Wilson interval, Kaplan–Meier median steps to solve and interval,
failure-mode counts and rates, final-loss quartiles, comparison with the reference init). Attached to the
parent: the per-run table as ``runs.parquet`` and the store's report folder (``STORE/report/``) if present.

Re-exporting a store updates its runs in place: the parent is found by the tag ``xorlab.store_key`` (a hash
of the store's absolute path and creation time), the children by ``xorlab.cell``. Metrics are logged at
step = number of recorded runs, so the latest value is the one for the current store. MLflow params are
immutable; if the grid changed (the store grew), the old parent and its children are deleted and written anew.

Tracking URI: ``--tracking-uri`` if given; else ``MLFLOW_TRACKING_URI`` if set (MLflow's own conventions);
else ``sqlite:///<store's parent>/mlflow.db`` with artifacts in ``<store's parent>/mlartifacts``
(``mlflow ui --backend-store-uri sqlite:///.../mlflow.db`` shows it). MLflow's file store is in maintenance
mode and refuses to start without an opt-in, hence SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from xorlab.analysis import stats
from xorlab.store.format import StoreError, read_manifest
from xorlab.store.provenance import package_versions
from xorlab.store.reader import load_runs
from xorlab.store.records import CONFIG_COLUMNS
from xorlab.tracking import catalog

STORE_KEY_TAG = "xorlab.store_key"
ROLE_TAG = "xorlab.role"  # "store" (parent) or "cell" (child)
CELL_TAG = "xorlab.cell"
DEFAULT_EXPERIMENT = "xorlab"
NON_METRICS = {"ref_init"}  # text columns of a stats row (NaN in the reference's own row): a tag instead
_AXES = [c for c in CONFIG_COLUMNS if c not in stats.INIT_COLUMNS]  # init and its params are ``init_label``


REACH_TIMEOUT = 5.0  # seconds to wait for an http(s) tracking server to accept a connection


class ExportError(RuntimeError):
    """The export cannot run (MLflow missing, a bad tracking URI, an empty store); ``str`` is one line."""


@dataclass(frozen=True)
class Export:
    """What ``export_store`` wrote."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    cell_run_ids: dict[str, str]  # cell key -> MLflow run id
    replaced: bool  # the grid changed since the last export: old runs deleted, new ones created
    updated: bool  # an earlier export of this store was updated in place


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


def _artifact_location(uri: str, experiment: str) -> str | None:
    """For a SQLite URI, artifacts beside the database (MLflow's default would be ``./mlruns`` of the cwd)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(unquote(uri[len("sqlite:///") :]))
    return (db.parent / "mlartifacts" / experiment).absolute().as_uri()


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
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


def cell_metrics(row: pd.Series, by: list[str]) -> dict[str, float]:
    """Every numeric column of a ``stats_table`` row, as floats (NaN where not reached or not applicable)."""
    out = {}
    for name, value in row.items():
        if name in by or isinstance(value, str) or name in NON_METRICS:
            continue
        try:
            out[str(name)] = math.nan if pd.isna(value) else float(value)
        except (TypeError, ValueError):
            continue
    return out


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
        return client.create_experiment(name, artifact_location=_artifact_location(uri, name))
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _batch(
    client,
    run_id: str,
    params: Mapping[str, str] = (),
    metrics: Mapping[str, float] = (),
    step: int = 0,
    tags: Mapping[str, str] = (),
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    now = int(1000 * pd.Timestamp.now(tz="UTC").timestamp())
    items = {
        "params": [Param(k, v) for k, v in dict(params).items()],
        "metrics": [Metric(k, v, now, step) for k, v in dict(metrics).items()],
        "tags": [RunTag(k, v) for k, v in dict(tags).items()],
    }
    for i in range(0, max(len(v) for v in items.values()) or 1, 100):  # MLflow caps a batch's size
        client.log_batch(run_id, **{k: v[i : i + 100] for k, v in items.items()})


def export_store(
    path: str | Path, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT, by: Any = None
) -> Export:
    """Export the store at ``path`` (see the module docstring); returns the ids written."""
    path = Path(path)
    try:
        read_manifest(path)  # one store: load_runs would also read a folder of stores, as one
        runs = load_runs(path)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    if runs.empty:
        raise ExportError(f"{path}: no runs recorded")
    info = catalog.describe(path)
    runs = stats.with_init_label(runs)
    by = stats.resolve_by(runs, by)
    table = stats.stats_table(runs, by)
    uri = tracking_uri or default_tracking_uri(path)
    check_reachable(uri)
    key = store_key(path)
    params = grid_params(runs)
    overall = stats.summarize(runs, [])
    step = len(runs)
    parent_tags = {
        STORE_KEY_TAG: key,
        ROLE_TAG: "store",
        "xorlab.store": str(path.expanduser().absolute()),
        "xorlab.version": _version(),
        "xorlab.commit": info.commit or "unknown",
        "xorlab.dirty": str(info.dirty),
        "xorlab.state": info.state,
        "xorlab.by": ",".join(by),
        "mlflow.runName": path.name,
    }
    _import_mlflow()
    with _quiet():
        try:
            client = _client(uri)
            exp_id = _experiment(client, experiment, uri)
            found = _search(client, exp_id, f"tags.`{STORE_KEY_TAG}` = '{key}' and tags.`{ROLE_TAG}` = 'store'")
        except Exception as exc:  # MLflow raises its own and driver errors for a bad URI or database
            raise ExportError(
                f"tracking URI {uri}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        parent = found[0] if found else None
        replaced = False
        if parent is not None and any(parent.data.params.get(k, v) != v for k, v in params.items()):
            for r in _search(client, exp_id, f"tags.mlflow.parentRunId = '{parent.info.run_id}'"):
                client.delete_run(r.info.run_id)
            client.delete_run(parent.info.run_id)
            parent, replaced = None, True
        updated = parent is not None
        if parent is None:
            parent = client.create_run(exp_id, tags=parent_tags, run_name=path.name)
        parent_id = parent.info.run_id
        _batch(client, parent_id, params, cell_metrics(overall.iloc[0], []), step, parent_tags)

        existing = {
            r.data.tags.get(CELL_TAG): r.info.run_id
            for r in _search(client, exp_id, f"tags.mlflow.parentRunId = '{parent_id}'")
        }
        constant = {c: params[c] for c in _AXES if c not in by and c != "seed"}
        cells: dict[str, str] = {}
        for _, row in table.iterrows():
            name = cell_key(row, by)
            tags = {
                ROLE_TAG: "cell",
                CELL_TAG: name,
                STORE_KEY_TAG: key,
                "mlflow.parentRunId": parent_id,
                "mlflow.runName": name,
            }
            if "ref_init" in row and isinstance(row["ref_init"], str):
                tags["xorlab.ref_init"] = row["ref_init"]
            run_id = existing.get(name) or client.create_run(exp_id, tags=tags, run_name=name).info.run_id
            cell_params = {**constant, **{("init" if b == "init_label" else b): _text(row[b]) for b in by}}
            _batch(client, run_id, cell_params, cell_metrics(row, by), step, tags)
            client.set_terminated(run_id, "FINISHED")
            cells[name] = run_id
        _attach(client, parent_id, runs, path)
        client.set_terminated(parent_id, "FINISHED")
    return Export(uri, exp_id, parent_id, cells, replaced, updated)


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
