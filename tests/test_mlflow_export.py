"""xorlab.tracking.mlflow_export, for real: export to a temporary SQLite tracking store, read back with MLflow's
own client, compare every param, metric and curve with ``xorlab.analysis.stats`` on the same runs.

``make test`` installs the ``mlflow`` extra, so in CI (``CI`` set) a missing MLflow fails instead of skipping.
The attacks (a store shrunk under its export, hostile experiment names, concurrent exports to a new database)
are in the chaos suite (``make test-chaos``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

if not os.environ.get("CI"):
    pytest.importorskip("mlflow", reason="pip install 'xorlab[mlflow]'")
import mlflow  # noqa: E402

from xorlab.analysis import stats  # noqa: E402
from xorlab.store import provenance  # noqa: E402
from xorlab.store.reader import committed_chunks, load_curves, load_runs  # noqa: E402
from xorlab.sweep.grid import Grid  # noqa: E402
from xorlab.sweep.runner import SweepOptions, run_sweep  # noqa: E402
from xorlab.tracking import mlflow_export  # noqa: E402

# MLflow's SQLAlchemy models use a loader option SQLAlchemy 2.1 deprecates: MLflow's to fix, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

GRID = {"lr": [0.5, 3.0], "init": ["notebook", {"name": "normal", "std": 0.01}], "seed": "range(0,10)",
        "max_steps": [50, 120]}  # fmt: skip  # 80 runs, 8 cells


def sweep(path: Path, chunk_size: int = 4096, **changes) -> Path:
    run_sweep(Grid.from_mapping({**GRID, **changes}), SweepOptions(dir=path, progress=False, chunk_size=chunk_size))
    return path


def client(uri: str):
    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def exported(uri: str, experiment: str = "xorlab") -> list:
    """Every active run of the experiment, as MLflow's client returns them."""
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    return mlflow_export._search(c, exp.experiment_id, "")


def assert_current(store: Path, uri: str) -> None:
    """What MLflow shows for the store (the one parent, its children: latest metric values, params, curve
    histories) is exactly the store's statistics now, with no NaN anywhere."""
    runs = stats.with_init_label(load_runs(store))
    by = stats.default_by(runs)
    table = stats.stats_table(runs, by)
    bands = stats.curve_bands(load_curves(store), runs, by, max_points=mlflow_export.CURVE_POINTS)
    found = exported(uri)
    parents = [r for r in found if r.data.tags["xorlab.role"] == "store"]
    assert len(parents) == 1
    (parent,) = parents
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    cells = {r.data.tags["xorlab.cell"]: r for r in children}
    assert len(cells) == len(found) - 1 == len(table)
    assert parent.data.tags["xorlab.runs_recorded"] == str(runs["run_id"].nunique())
    assert parent.data.metrics["n"] == len(runs)
    c = client(uri)
    for _, row in table.iterrows():
        got = cells[mlflow_export.cell_key(row, by)]
        want = {k: float(v) for k, v in row.items() if k not in by and not isinstance(v, str) and pd.notna(v)}
        want = {k: v for k, v in want.items() if math.isfinite(v)}
        latest = {k: v for k, v in got.data.metrics.items() if k not in mlflow_export.CURVE_METRICS}
        assert latest == want, row[by].to_dict()  # every latest value is the current one, exactly
        assert all(math.isfinite(v) for v in got.data.metrics.values())
        sel = (bands[by] == row[by]).all(axis=1)
        for name in mlflow_export.CURVE_METRICS:
            hist = sorted((m.step, m.value) for m in c.get_metric_history(got.info.run_id, name))
            band = bands.loc[sel, ["step", name]]
            band = band[band[name].map(math.isfinite)]
            assert hist == list(zip(band["step"].astype(int), band[name].astype(float), strict=True)), name


def test_export_is_made_for_mlflows_views(tmp_path):
    store = sweep(tmp_path / "runs" / "sweep")
    (store / "report").mkdir()
    (store / "report" / "report.md").write_text("# a report\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    done = mlflow_export.export_store(store, tracking_uri=uri)
    assert done.status == "created" and not done.updated and not done.replaced
    assert_current(store, uri)
    found = exported(uri)
    (parent,) = [r for r in found if r.data.tags["xorlab.role"] == "store"]
    cells = [r for r in found if r.data.tags["xorlab.role"] == "cell"]

    # parent: the grid as params; code, store, its state and size as tags
    assert parent.info.run_id == done.parent_run_id
    p = parent.data.params
    assert (p["lr"], p["seed"], p["max_steps"], p["init"]) == ("0.5, 3", "range(0, 10)", "50, 120",
                                                                "normal(std=0.01), notebook")  # fmt: skip
    tags = parent.data.tags
    assert tags["xorlab.commit"] == (provenance.code_version()["git_commit"] or "unknown")
    assert tags["xorlab.store"] == str(store.absolute()) and tags["xorlab.version"]
    assert (tags["xorlab.state"], tags["xorlab.runs_planned"], tags["xorlab.runs_recorded"]) == ("complete", "80", "80")
    assert tags["xorlab.mlflow_version"] == mlflow.__version__

    # children: every config field of the cell as its own param, as the number it is; absent when it has none
    assert len(cells) == 8
    for cell in cells:
        params = cell.data.params
        assert {"lr", "max_steps", "init", "rng", "rng_skip", "loss_threshold"} <= set(params)
        assert float(params["lr"]) in (0.5, 3.0) and int(params["max_steps"]) in (50, 120)
        assert params["loss_threshold"] == "0.05" and "seed" not in params
        if params["init"] == "normal":
            assert params["init_std"] == "0.01" and cell.data.tags["xorlab.init_label"] == "normal(std=0.01)"
            assert cell.data.tags["xorlab.ref_init"] == "notebook"
            assert cell.data.tags["xorlab.family"] == f"lr={float(params['lr']):g}, max_steps={params['max_steps']}"
            assert "diff_vs_ref" in cell.data.metrics
        else:
            assert params["init"] == "notebook" and not any(k.startswith("init_") for k in params)
            assert "diff_vs_ref" not in cell.data.metrics and "xorlab.family" not in cell.data.tags  # absent, not NaN
    # MLflow's own table has the typed params as columns a parallel-coordinates view can use
    mlflow.set_tracking_uri(uri)
    try:
        frame = mlflow.search_runs(experiment_ids=[done.experiment_id], filter_string="params.init = 'normal'")
    finally:
        mlflow.set_tracking_uri(None)
    assert len(frame) == 4 and pd.to_numeric(frame["params.init_std"]).eq(0.01).all()

    # artifacts: the run table and the store's report
    c = client(uri)
    assert {a.path for a in c.list_artifacts(done.parent_run_id)} == {"runs.parquet", "report"}
    local = c.download_artifacts(done.parent_run_id, "runs.parquet", str(tmp_path))
    assert sorted(pd.read_parquet(local)["run_id"]) == sorted(load_runs(store)["run_id"])

    # the same store again: nothing to write, the same runs
    again = mlflow_export.export_store(store, tracking_uri=uri)
    assert again.status == "unchanged" and again.parent_run_id == done.parent_run_id
    assert again.cell_run_ids == done.cell_run_ids and len(exported(uri)) == 9


@pytest.mark.slow
@pytest.mark.chaos
def test_reexport_is_exact_whatever_happened_to_the_store(tmp_path):
    """Shrunk (a damaged chunk deleted, as the docs advise), grown back, grown beyond, edited: after each
    re-export every latest metric, param and curve in MLflow is the store's current one."""
    store = sweep(tmp_path / "s", chunk_size=16)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_export.export_store(store, tracking_uri=uri)
    assert_current(store, uri)

    chunk = committed_chunks(store)[1]  # shrink: delete one chunk (runs and curves)
    chunk.unlink()
    (store / "curves" / chunk.name).unlink(missing_ok=True)
    assert 0 < load_runs(store)["run_id"].nunique() < 80
    assert mlflow_export.export_store(store, tracking_uri=uri).status == "replaced"
    assert_current(store, uri)

    sweep(store, chunk_size=16)  # grown back: the same 80 runs again
    mlflow_export.export_store(store, tracking_uri=uri)
    assert_current(store, uri)

    sweep(store, chunk_size=16, seed="range(0,15)")  # grown beyond
    mlflow_export.export_store(store, tracking_uri=uri)
    assert_current(store, uri)

    report = store / "report"  # edited: only the report changed
    report.mkdir()
    (report / "report.md").write_text("v1\n")
    first = mlflow_export.export_store(store, tracking_uri=uri)
    (report / "report.md").write_text("v2\n")
    second = mlflow_export.export_store(store, tracking_uri=uri)
    assert (first.status, second.status) == ("replaced", "replaced")
    local = client(uri).download_artifacts(second.parent_run_id, "report/report.md", str(tmp_path))
    assert Path(local).read_text() == "v2\n"
    assert_current(store, uri)


@pytest.mark.slow
@pytest.mark.chaos
def test_experiment_names_cannot_steer_artifact_paths(tmp_path):
    store = sweep(tmp_path / "db" / "s", seed=0, lr=0.5, init="notebook", max_steps=20)
    uri = f"sqlite:///{tmp_path / 'db' / 'mlflow.db'}"
    names = ["../../x", "/abs/x", "a/../../b", "..", "x\\..\\y", " spaced  name ", "~/x", "$HOME"]
    for name in names:
        mlflow_export.export_store(store, tracking_uri=uri, experiment=name)
        assert client(uri).get_experiment_by_name(name) is not None  # the name itself is kept as given
    artifacts = tmp_path / "db" / "mlartifacts"
    written = [p for p in tmp_path.rglob("runs.parquet") if p.is_file()]
    assert len(written) == len(names) and all(artifacts in p.parents for p in written), written
    assert len({p.parent for p in written}) == len(names)  # one folder each
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == ["mlartifacts", "mlflow.db", "mlflow.db.lock", "s"]


@pytest.mark.slow
@pytest.mark.chaos
def test_concurrent_exports_to_a_fresh_database_all_succeed(tmp_path):
    """MLflow creates a new database's tables on first use; several exports doing so at once used to fail
    ("table … already exists"). Four processes (two of them exporting the same store) start together."""
    stores = [sweep(tmp_path / f"s{i}", seed="range(0,3)", lr=lr) for i, lr in enumerate((0.5, 1.0, 2.0))]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = "import sys; from xorlab.apps.runs import main; sys.exit(main(sys.argv[1:]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, "export-mlflow", str(s), "--tracking-uri", uri],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in [*stores, stores[0]]]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    parents = [r for r in exported(uri) if r.data.tags["xorlab.role"] == "store"]
    assert sorted(r.data.tags["xorlab.store"] for r in parents) == sorted(str(s.absolute()) for s in stores)
    assert len(exported(uri)) == len(stores) * (1 + 4)  # each store once: its parent and its 4 cells


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
