"""MLflow's UI on an export's database: ``xorlab-runs mlflow-ui FOLDER`` (``pip install 'xorlab[mlflow-ui]'``).

``export-mlflow`` writes ``<store's parent>/mlflow.db`` with MLflow's client (the skinny package). Looking at it
takes MLflow's server and web UI, which the skinny package lacks (its ``mlflow ui`` fails with a traceback about
``flask``); the ``mlflow-ui`` extra installs the full package of the same release line, which reads the database
the client wrote. This module finds the database and says in one line what is missing; the app runs the server.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DATABASE = "mlflow.db"


class UIError(ValueError):
    """What keeps the UI from starting, in one line."""


def database(folder: str | Path) -> Path:
    """The export database in ``folder`` (a folder holding ``mlflow.db``, or the ``.db`` file itself)."""
    path = Path(folder)
    db = path if path.suffix == ".db" else path / DATABASE
    if not db.is_file():
        raise UIError(
            f"{path}: no {DATABASE} here; export a store first: xorlab-runs export-mlflow STORE "
            f"(it writes <store's parent>/{DATABASE})"
        )
    return db.absolute()


def check_ui_installed() -> None:
    """The full MLflow package (server and web UI), not only the skinny client."""
    if importlib.util.find_spec("mlflow") is None or importlib.util.find_spec("flask") is None:
        raise UIError("MLflow's server and UI are not installed; pip install 'xorlab[mlflow-ui]'")


def server_command(db: Path, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The command serving ``db`` on ``host:port`` (loopback by default: the UI has no authentication)."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
