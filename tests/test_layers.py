"""Guards the architecture from the package's own folders (``tests/layering.py`` reads the import graph):
every module sits in a layer folder, no import cycle between modules or folders, imports point to the same or an
earlier layer of ``xorlab.LAYERS``, third-party packages stay in their layers, and ``import xorlab`` stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xorlab
from tests.layering import ALLOWED, problems, read_graph

PACKAGE = Path(xorlab.__file__).parent


def test_the_package_keeps_every_rule():
    graph = read_graph(PACKAGE)
    assert graph.layers == xorlab.LAYERS
    assert problems(graph) == []


def test_every_folder_is_a_declared_layer():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders - {"conf"} == set(xorlab.LAYERS)


@pytest.fixture
def planted(tmp_path):
    """A copy of the real package to plant modules in."""
    copy = tmp_path / "xorlab"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "conf"))
    return copy


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        ("core/planted.py", "from xorlab.report import figures\n", "from a later layer (report)"),
        ("store/planted.py", "def f():\n    from xorlab.sweep.grid import Grid\n", "from a later layer (sweep)"),
        ("engine/planted.py", "import xorlab\n", "imports the package root"),
        ("analysis/planted.py", "import matplotlib.pyplot\n", "imports matplotlib, allowed only in report"),
        ("core/planted.py", "import pandas\n", "imports pandas, allowed only in"),
        ("sweep/planted.py", "from omegaconf import OmegaConf\n", "imports omegaconf, allowed only in apps"),
        (
            "engine/planted.py",
            "import numba\n",
            "imports numba, allowed only in engine.kernel_math, engine.kernel_wide",
        ),
        ("planted/x.py", "X = 1\n", "folder 'planted' is not in LAYERS"),
    ],
)
def test_a_planted_module_that_breaks_a_rule_fails(planted, where, code, expected):
    file = planted / where
    file.parent.mkdir(exist_ok=True)
    (file.parent / "__init__.py").touch()
    file.write_text(code)
    found = problems(read_graph(planted))
    assert any(expected in line for line in found), found


def test_a_planted_cycle_fails_at_module_and_folder_level(planted):
    (planted / "core" / "planted_a.py").write_text("from xorlab.core import planted_b\n")
    (planted / "core" / "planted_b.py").write_text("def f():\n    from xorlab.core import planted_a\n")
    assert any(line.startswith("import cycle between modules") for line in problems(read_graph(planted)))
    # folders: two layers that import each other (one of them upward, so also reported as such)
    (planted / "core" / "planted_c.py").write_text("from xorlab.engine import results\n")
    found = problems(read_graph(planted))
    assert any(line.startswith("import cycle between folders") for line in found), found


def test_the_order_comes_from_the_package_not_from_this_test(planted):
    """Swapping two layers in the package's LAYERS turns their imports into upward ones."""
    init = planted / "__init__.py"
    init.write_text(init.read_text().replace('("core", "engine",', '("engine", "core",'))
    assert any("from a later layer (core)" in line for line in problems(read_graph(planted)))


def test_allowed_third_party_names_are_real_layers():
    for top, places in ALLOWED.items():
        for place in places:
            assert place.split(".")[0] in xorlab.LAYERS, (top, place)


def test_apps_are_only_in_the_apps_package():
    """Every Hydra or argparse entry point lives in xorlab.apps; the console scripts point there."""
    graph = read_graph(PACKAGE)
    for name, path in graph.modules.items():
        if graph.folder(name) != "apps":
            text = path.read_text()
            assert "@hydra.main" not in text and "argparse" not in text, name
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    for script in ("xorlab-train", "xorlab-sweep", "xorlab-report", "xorlab-runs", "xorlab-store"):
        assert f'{script} = "xorlab.apps.' in pyproject, script


@pytest.mark.parametrize("module", ["xorlab.report.figures", "xorlab.report.mode_figures"])
def test_figures_only_draw_frames(module):
    """Figures take frames; they never run the network or read records."""
    graph = read_graph(PACKAGE)
    assert not {graph.folder(m) for m in graph.edges[module]} & {"engine", "store", "sweep"}


def test_nothing_below_the_apps_imports_hydra_at_run_time():
    graph = read_graph(PACKAGE)
    below = sorted(
        m
        for m in graph.modules
        if graph.folder(m) not in ("apps", "<root>") and not m.endswith(("kernel_math", "kernel_wide"))
    )
    code = (
        "import sys, importlib\n"
        f"for m in {below!r}: importlib.import_module(m)\n"
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


def test_old_module_paths_still_import_with_a_deprecation_warning():
    """The 0.1 flat paths (documented in 0.1's README) are the new modules, with a warning, until 0.3."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n    import xorlab.stats\nexcept DeprecationWarning as w:\n    print(w)\n"
        "warnings.simplefilter('ignore')\n"
        "import xorlab.stats, xorlab.records, xorlab.analysis.stats, xorlab.store.records\n"
        "from xorlab.store import session_state, load_runs\n"
        "assert xorlab.stats is xorlab.analysis.stats and xorlab.records is xorlab.store.records\n"
        "print('same')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines() == [
        "xorlab.stats moved to xorlab.analysis.stats; the old path is removed in xorlab 0.3",
        "same",
    ], out.stderr
