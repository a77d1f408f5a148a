"""MLflow as its users use it: ``xorlab-runs mlflow-ui`` serves an export's database with MLflow's own server on
the loopback address (started and stopped by this test, by its process group), and the UI page and the REST
``runs/search`` show xorlab's runs with their typed parameters. ``make test-mlflow-ui`` installs the extra."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import stop_group
from xorlab.sweep.grid import Grid
from xorlab.sweep.runner import SweepOptions, run_sweep

pytestmark = pytest.mark.mlflow_ui
BIN = Path(sys.executable).parent
GRID = {"lr": [0.3, 1.0], "init": ["notebook", {"name": "normal", "std": 0.5}], "seed": "range(0,10)", "max_steps": 200}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def test_the_ui_serves_the_export(tmp_path):
    pytest.importorskip("flask", reason="pip install 'xorlab[mlflow-ui]' (make test-mlflow-ui)")
    store = tmp_path / "study"
    run_sweep(Grid.from_mapping(GRID), SweepOptions(dir=store, progress=False, engine="numpy"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    subprocess.run([BIN / "xorlab-runs", "export-mlflow", store], check=True, env=env, capture_output=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [BIN / "xorlab-runs", "mlflow-ui", tmp_path, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server's workers stop with it
    )
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as resp:
                    page = resp.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None and "<title>MLflow</title>" in page
        (experiment,) = [
            e
            for e in _post(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
            if e["name"] == "xorlab"
        ]
        runs = _post(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        children = [r for r in runs if any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))]
        assert len(runs) == 1 + len(children) and len(children) == 4  # a parent and one run per cell
        for child in children:
            params = {p["key"]: p["value"] for p in child["data"]["params"]}
            assert float(params["lr"]) in (0.3, 1.0) and params["max_steps"] == "200"
            assert params["init"] in ("notebook", "normal") and ("init_std" in params) == (params["init"] == "normal")
            metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
            assert metrics["n"] == 10 and all(math.isfinite(v) for v in metrics.values())
    finally:
        stop_group(server)
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/", timeout=5)
