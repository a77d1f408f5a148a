"""Where a result came from: code version, package versions, command line, host and time."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("xorlab", "numpy", "numba", "pandas", "pyarrow", "scipy", "hydra-core", "omegaconf")


def now() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# The folder holding the package: a checkout's root when xorlab runs from one (an editable install), else
# site-packages (or wherever the wheel was installed).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str, root: Path = SOURCE_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_version(root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """Git commit of the xorlab source and whether the work tree had uncommitted changes (None: not a checkout).

    Only a repository whose top folder holds the package counts: an installed wheel inside a virtual environment
    inside the user's own repository must not record that repository's commit as xorlab's code version.
    """
    top = _git("rev-parse", "--show-toplevel", root=root)
    if top is None or Path(top).resolve() != root.resolve():
        return {"git_commit": None, "git_dirty": None}
    commit = _git("rev-parse", "HEAD", root=root)
    status = _git("status", "--porcelain", "--untracked-files=no", root=root) if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect() -> dict[str, Any]:
    """Provenance of the current process (end time is added by the writer when it finishes)."""
    return {
        **code_version(),
        "packages": package_versions(),
        "command": sys.argv,
        "host": socket.gethostname(),
        "started": now(),
    }
