"""xorlab.tracking.mlflow_export, for real: export to a temporary SQLite tracking store, read back with
``mlflow.search_runs``, compare every metric with ``xorlab.analysis.stats.stats_table`` on the same runs.

``make test`` installs the ``mlflow`` extra, so in CI (``CI`` set) a missing MLflow fails instead of skipping.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

if not os.environ.get("CI"):
    pytest.importorskip("mlflow", reason="pip install 'xorlab[mlflow]'")
import mlflow  # noqa: E402

from xorlab.analysis import stats  # noqa: E402
from xorlab.store import provenance
from xorlab.store.reader import load_runs  # noqa: E402
from xorlab.sweep.grid import Grid  # noqa: E402
from xorlab.sweep.runner import SweepOptions, run_sweep  # noqa: E402
from xorlab.tracking import mlflow_export

# MLflow's SQLAlchemy models use a loader option SQLAlchemy 2.1 deprecates: MLflow's to fix, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

GRID = {"lr": [0.5, 3.0], "init": ["notebook", {"name": "normal", "std": 0.01}], "seed": "range(0,10)",
        "max_steps": [50, 120]}  # fmt: skip  # 80 runs, 8 cells


def sweep(path: Path, **changes) -> Path:
    run_sweep(Grid.from_mapping({**GRID, **changes}), SweepOptions(dir=path, progress=False))
    return path


def read_back(uri: str, experiment: str = "xorlab") -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.get_experiment_by_name(experiment)
        return mlflow.search_runs(experiment_ids=[exp.experiment_id])
    finally:
        mlflow.set_tracking_uri(None)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_export_matches_stats_table_and_updates_in_place(tmp_path):
    store = sweep(tmp_path / "runs" / "sweep")
    (store / "report").mkdir()
    (store / "report" / "report.md").write_text("# a report\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    done = mlflow_export.export_store(store, tracking_uri=uri)
    assert not done.updated and not done.replaced
    found = read_back(uri)
    parents = found[found["tags.xorlab.role"] == "store"]
    cells = found[found["tags.xorlab.role"] == "cell"]
    assert len(parents) == 1 and parents["run_id"].iloc[0] == done.parent_run_id

    # parent: the grid as params, code and store as tags
    parent = parents.iloc[0]
    assert parent["params.lr"] == "0.5, 3" and parent["params.seed"] == "range(0, 10)"
    assert parent["params.max_steps"] == "50, 120"
    assert parent["params.init"] == "normal(std=0.01), notebook"
    assert parent["tags.xorlab.commit"] == provenance.code_version()["git_commit"]
    assert parent["tags.xorlab.store"] == str(store.absolute())
    assert parent["tags.xorlab.version"] and parent["metrics.n"] == 80

    # children: one per cell, every metric equal to the stats table on the same runs
    runs = stats.with_init_label(load_runs(store))
    by = stats.default_by(runs)
    table = stats.stats_table(runs, by)
    assert by == ["lr", "max_steps", "init_label"] and len(cells) == len(table) == 8
    assert (cells["tags.mlflow.parentRunId"] == done.parent_run_id).all()
    metric_cols = [c for c in table.columns if c not in by and pd.api.types.is_numeric_dtype(table[c])]
    for _, row in table.iterrows():
        hit = cells[
            (cells["params.lr"] == f"{row['lr']:g}")
            & (cells["params.max_steps"] == str(row["max_steps"]))
            & (cells["params.init"] == row["init_label"])
        ]
        assert len(hit) == 1, row[by].to_dict()
        got = hit.iloc[0]
        for col in metric_cols:
            want = math.nan if pd.isna(row[col]) else float(row[col])
            assert same(float(got[f"metrics.{col}"]), want), (col, got[f"metrics.{col}"], want)
        assert got["params.loss_threshold"] == "0.05"  # constant config fields are part of a cell's config
    assert not any(c.startswith("params.seed") and cells[c].notna().any() for c in cells.columns)  # no per-seed

    # artifacts: the run table and the store's report
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    names = {a.path for a in client.list_artifacts(done.parent_run_id)}
    assert names == {"runs.parquet", "report"}
    local = client.download_artifacts(done.parent_run_id, "runs.parquet", str(tmp_path))
    assert pd.read_parquet(local)["run_id"].sort_values().tolist() == sorted(runs["run_id"])
    assert [a.path for a in client.list_artifacts(done.parent_run_id, "report")] == ["report/report.md"]

    # the same store again: updated, not duplicated
    again = mlflow_export.export_store(store, tracking_uri=uri)
    assert again.updated and again.parent_run_id == done.parent_run_id
    assert set(again.cell_run_ids.values()) == set(cells["run_id"])
    assert len(read_back(uri)) == 9

    # the store grew (more seeds): params are immutable, so the export is replaced, still one of each
    sweep(store, seed="range(0,20)")
    grown = mlflow_export.export_store(store, tracking_uri=uri)
    assert grown.replaced
    found = read_back(uri)
    assert len(found) == 9 and (found.loc[found["tags.xorlab.role"] == "cell", "metrics.n"] == 20).all()
    assert found.loc[found["tags.xorlab.role"] == "store", "params.seed"].tolist() == ["range(0, 20)"]


def test_default_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_export.default_tracking_uri(tmp_path / "runs" / "a") == f"sqlite:///{tmp_path / 'runs'}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert mlflow_export.default_tracking_uri(tmp_path / "runs" / "a") == "http://127.0.0.1:5000"


def test_bad_store_and_uri_are_export_errors(tmp_path):
    with pytest.raises(mlflow_export.ExportError, match="not an xorlab store"):
        mlflow_export.export_store(tmp_path)
    store = sweep(tmp_path / "s", seed=0, lr=0.5, init="notebook", max_steps=20)
    with pytest.raises(mlflow_export.ExportError, match="not an xorlab store"):
        mlflow_export.export_store(tmp_path)  # a folder holding a store is not one
    with pytest.raises(mlflow_export.ExportError, match="tracking URI nosuch://x"):
        mlflow_export.export_store(store, tracking_uri="nosuch://x")


def test_an_unreachable_server_is_one_line_at_once(tmp_path):
    """MLflow's own client retries an unreachable server for minutes; the export says so within seconds."""
    import socket
    import time

    store = sweep(tmp_path / "s", seed=0, lr=0.5, init="notebook", max_steps=20)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(mlflow_export.ExportError, match=r"cannot reach the MLflow server at http://127\.0\.0\.1:\d+ "):
        mlflow_export.export_store(store, f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < mlflow_export.REACH_TIMEOUT + 5
    mlflow_export.check_reachable(f"sqlite:///{tmp_path}/x.db")  # files and databases are not probed
