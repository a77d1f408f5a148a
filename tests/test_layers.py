"""Guards the architecture: layers import downward only, apps live in ``xorlab.apps``, nothing below the apps
imports Hydra, and the figures only draw frames (they never run the network)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import xorlab

PACKAGE = Path(xorlab.__file__).parent
LAYERS = {  # data & math -> engine -> store -> analysis -> apps
    "data": 0, "rng": 0, "net": 0, "inits": 0, "init_draws": 0, "seeding": 0, "config": 0, "outcome": 0,
    "modes": 0, "runtable": 0,
    "engine": 1, "kernel": 1, "kernel_math": 1, "pipeline": 1,
    "records": 2, "store": 2, "provenance": 2, "grid": 2, "grid_keys": 2, "options": 2, "runner": 2, "extend": 2,
    "claims": 2, "signals": 2, "maintenance": 2, "committer": 2,
    "survival": 3, "stats": 3, "surface": 3, "figures": 3, "mode_figures": 3, "findings": 3, "report": 3,
    "pages": 3, "catalog": 3, "compare": 3, "mlflow_export": 3,
    "apps": 4,
}  # fmt: skip
BELOW_APPS = sorted(m for m, layer in LAYERS.items() if layer < 4)


def module_files() -> dict[str, Path]:
    """Module name (``apps.train`` for the apps) -> file."""
    out = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    out |= {f"apps.{p.stem}": p for p in (PACKAGE / "apps").glob("*.py") if p.stem != "__init__"}
    return out


def layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def xorlab_imports(path: Path) -> set[str]:
    """Top-level names of the xorlab modules a source file imports (``apps`` for anything in xorlab.apps)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xorlab"):
            if node.module == "xorlab":
                found |= {alias.name for alias in node.names if not alias.name.startswith("__")}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("xorlab.")}
    return found


def test_every_module_has_a_layer():
    unknown = {m for m in module_files() if m.split(".")[0] not in LAYERS}
    assert not unknown, "add new modules to LAYERS in tests/test_layers.py"


@pytest.mark.parametrize("module", sorted(module_files()))
def test_imports_point_downward(module):
    for imported in xorlab_imports(module_files()[module]):
        assert LAYERS[imported] <= layer(module), f"{module} (layer {layer(module)}) imports {imported}"


def test_apps_are_only_in_the_apps_package():
    """Every Hydra or argparse entry point lives in xorlab.apps; the console scripts point there."""
    for name, path in module_files().items():
        text = path.read_text()
        if not name.startswith("apps."):
            assert "@hydra.main" not in text and "argparse" not in text, name
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    for script in ("xorlab-train", "xorlab-sweep", "xorlab-report"):
        assert f'{script} = "xorlab.apps.' in pyproject, script


@pytest.mark.parametrize("module", ["figures", "mode_figures"])
def test_figures_only_draw_frames(module):
    assert not xorlab_imports(module_files()[module]) & {"engine", "net", "records", "surface"}


def test_nothing_below_the_apps_imports_hydra():
    code = (
        "import sys, importlib\n"
        f"for m in {BELOW_APPS!r}: importlib.import_module('xorlab.' + m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('hydra', 'omegaconf'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"hydra/omegaconf imported by a lower layer: {out.stdout}"


def test_importing_xorlab_stays_light():
    """``import xorlab`` (and the apps' schema) loads no pandas/pyarrow/scipy/matplotlib: fast ``--help``."""
    code = (
        "import sys, xorlab, xorlab.apps.schema, xorlab.apps.cli\n"
        "print(','.join(m for m in ('pandas', 'pyarrow', 'scipy', 'matplotlib', 'seaborn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
