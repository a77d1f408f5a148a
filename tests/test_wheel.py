"""The wheel as a user gets it: built with ``python -m build``, installed into a fresh venv (no editable install,
no checkout on the path), and every command, the tutorial and a user preset run from empty folders.
``make test-wheel``; prints the wheel's size and the install time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.wheel

PRESET = """\
# @package _global_
grid:
  lr: [0.5]
  seed: range(0,4)
  max_steps: 60
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("HYDRA_")}
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(ROOT)], tmp, env)
    (wheel,) = (tmp / "dist").glob("xorlab-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp, env)
    start = time.perf_counter()
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[mlflow]"], tmp, env)
    seconds = time.perf_counter() - start
    print(f"\nwheel {wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB; install into a fresh venv {seconds:.0f} s")
    empty = tmp / "empty"
    empty.mkdir()
    env = {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}
    return venv / "bin", empty, env


def test_the_package_comes_from_the_venv_not_the_checkout(installed):
    bin_, empty, env = installed
    out = run([str(bin_ / "python"), "-c", "import xorlab; print(xorlab.__file__, xorlab.__version__)"], empty, env)
    path, version = out.stdout.split()
    assert Path(path).is_relative_to(bin_.parent) and not Path(path).is_relative_to(ROOT)
    assert (bin_.parent / "lib").exists() and version


def test_every_command_works_from_an_empty_folder(installed):
    bin_, empty, env = installed
    for app in ("train", "sweep", "report", "runs", "store"):
        assert f"xorlab-{app}" in run([str(bin_ / f"xorlab-{app}"), "--help"], empty, env).stdout
    replay = run([str(bin_ / "xorlab-train"), "experiment=notebook_replay", "hydra.run.dir=replay"], empty, env)
    assert "0/1000: loss = 0.708\n20/1000: loss = 0.689\n" in replay.stdout  # the notebook's own first lines
    run([str(bin_ / "xorlab-sweep"), "grid.seed=range(0,10)", "grid.max_steps=100", "sweep.dir=s"], empty, env)
    run([str(bin_ / "xorlab-report"), "s", "--out", "r", "--formats", "png"], empty, env)
    assert (empty / "r" / "report.md").is_file() and (empty / "r" / "report.html").is_file()
    listed = run([str(bin_ / "xorlab-runs"), "list", "s"], empty, env).stdout
    assert " 10/10 " in listed and "complete" in listed
    shown = run([str(bin_ / "xorlab-runs"), "show", "s", "--where", "seed == 3"], empty, env).stdout
    assert "1 of 10 runs match" in shown
    run([str(bin_ / "xorlab-store"), "check", "s"], empty, env)


def test_the_tutorial_runs_from_the_wheel(installed, tmp_path):
    """The tutorial's commands, as written, with only the installed wheel (and its mlflow extra)."""
    from tests.test_docs import console_commands

    bin_, _, env = installed
    for command in console_commands(ROOT / "docs" / "tutorial.md"):
        out = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"$ {command}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
    assert (tmp_path / "runs" / "compare" / "compare.html").is_file() and (tmp_path / "runs" / "mlflow.db").is_file()


def test_my_preset_in_my_folder_runs_from_the_wheel(installed):
    bin_, empty, env = installed
    (empty / "myconf" / "experiment").mkdir(parents=True)
    (empty / "myconf" / "experiment" / "mine.yaml").write_text(PRESET)
    sweep = [str(bin_ / "xorlab-sweep"), "--config-dir", "myconf", "experiment=mine", "sweep.dir=mine"]
    assert "trained 4 runs" in run(sweep, empty, env).stdout
    (empty / "myconf" / "experiment" / "mine.yaml").write_text(PRESET.replace("lr:", "lrr:"))
    bad = subprocess.run(sweep, cwd=empty, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("xorlab-sweep: error: myconf/experiment/mine.yaml: grid.lrr:")
