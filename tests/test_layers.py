"""Guards the architecture: layers import downward only, and nothing below the apps imports Hydra."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import xorlab

PACKAGE = Path(xorlab.__file__).parent
LAYERS = {  # data & math -> engine -> store -> analysis -> apps
    "data": 0, "rng": 0, "net": 0, "inits": 0, "config": 0, "outcome": 0,
    "engine": 1,
    "records": 2, "store": 2, "provenance": 2, "grid": 2, "runner": 2,
    "claims": 2, "signals": 2, "limits": 2, "maintenance": 2,
    "stats": 3, "figures": 3, "reporting": 3,
    "cli": 4, "hydra_schema": 4, "train": 4, "sweep": 4, "report": 4,
}  # fmt: skip
BELOW_APPS = sorted(m for m, layer in LAYERS.items() if layer < 4)


def xorlab_imports(path: Path) -> set[str]:
    """Names of the xorlab modules a source file imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xorlab"):
            if node.module == "xorlab":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("xorlab.")}
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(LAYERS), "add new modules to LAYERS in tests/test_layers.py"


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_point_downward(module):
    for imported in xorlab_imports(PACKAGE / f"{module}.py"):
        assert LAYERS[imported] <= LAYERS[module], f"{module} (layer {LAYERS[module]}) imports {imported}"


def test_nothing_below_the_apps_imports_hydra():
    code = (
        "import sys, importlib\n"
        f"for m in {BELOW_APPS!r}: importlib.import_module('xorlab.' + m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('hydra', 'omegaconf'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"hydra/omegaconf imported by a lower layer: {out.stdout}"
