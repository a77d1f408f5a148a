"""What an installed xorlab promises: its version in one place, and no namespace-package shadowing."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import xorlab

ROOT = Path(__file__).resolve().parent.parent


def test_the_version_has_one_definition_and_a_changelog_entry():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert xorlab.__version__ == version
    assert f"## [{version}] - " in (ROOT / "CHANGELOG.md").read_text()


def test_python_next_to_a_clone_named_xorlab_imports_the_package(tmp_path):
    """Guards a found bug: beside a folder named ``xorlab`` (a clone), ``from xorlab import load_runs`` failed with
    "cannot import name … (unknown location)": the folder was imported as an empty namespace package."""
    (tmp_path / "xorlab").symlink_to(ROOT, target_is_directory=True)
    code = "import xorlab; from xorlab import load_runs; print(xorlab.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == (ROOT / "xorlab" / "__init__.py").resolve()
