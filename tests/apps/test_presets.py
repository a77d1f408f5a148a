"""A researcher's own presets in their own folder (``--config-dir`` or ``hydra.searchpath``): they run like the
package's, and a mistake in one is the usual one-line error naming the file."""

from __future__ import annotations

import pytest

from tests.conftest import one_line_error
from xorlab import load_runs

PRESET = """\
# @package _global_
# my question: does a small normal init behave like the notebook's at two learning rates?
grid:
  lr: [0.1, 0.5]
  seed: range(0,3)
  max_steps: 40
  init:
    - notebook
    - {name: normal, std: 0.5}
sweep:
  log_every: 5
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "myconf" / "experiment").mkdir(parents=True)
    (tmp_path / "myconf" / "experiment" / "mine.yaml").write_text(PRESET)
    return tmp_path


@pytest.mark.parametrize("where", ["--config-dir", "hydra.searchpath"])
def test_a_preset_in_my_folder_runs_its_grid(project, forked_cli, where):
    found = ["--config-dir", "myconf"] if where == "--config-dir" else [f"hydra.searchpath=[file://{project}/myconf]"]
    out = forked_cli("xorlab-sweep", *found, "experiment=mine", "sweep.dir=S", "sweep.engine=numpy", cwd=project)
    assert out.returncode == 0, out.stderr
    runs = load_runs(project / "S")
    assert len(runs) == 12 and sorted(set(runs["lr"])) == [0.1, 0.5] and set(runs["max_steps"]) == {40}
    assert sorted(set(runs["init_label"])) == ["normal(std=0.5)", "notebook"]


MISTAKES = [
    ("  lr: [0.1, 0.5]", "  lr: [0.1, -0.5]", "myconf/experiment/mine.yaml: grid.lr: must be a finite number > 0"),
    ("  lr: [0.1, 0.5]", "  lrr: [0.1, 0.5]", "myconf/experiment/mine.yaml: grid.lrr: unknown key; allowed: grid.lr,"),
    ("std: 0.5", "stdd: 0.5", "myconf/experiment/mine.yaml: grid.init.stdd: unknown init parameter; allowed:"),
    ("  log_every: 5", "  log_every: 0", "myconf/experiment/mine.yaml: sweep.log_every: must be an integer >= 1"),
    ("  log_every: 5", "  log_everyy: 5", "myconf/experiment/mine.yaml: sweep.log_everyy: unknown key; allowed:"),
    (
        "  max_steps: 40",
        "  max_steps: [40",
        "myconf/experiment/mine.yaml:6: not valid YAML: while parsing a flow sequence: expected",
    ),
]


@pytest.mark.parametrize(("good", "bad", "expected"), MISTAKES, ids=[m[1].strip() for m in MISTAKES])
def test_a_mistake_in_my_preset_names_the_file(project, forked_cli, good, bad, expected):
    preset = project / "myconf" / "experiment" / "mine.yaml"
    preset.write_text(PRESET.replace(good, bad))
    out = forked_cli("xorlab-sweep", "--config-dir", "myconf", "experiment=mine", "sweep.dir=S", cwd=project)
    line = one_line_error(out, "xorlab-sweep", expected.split(": ")[0])
    assert line == f"xorlab-sweep: error: {expected}" or line.startswith(f"xorlab-sweep: error: {expected}"), line
    assert sorted(p.name for p in project.iterdir()) == ["myconf"]  # nothing written


def test_a_bad_value_on_the_command_line_is_not_blamed_on_the_preset(project, forked_cli):
    out = forked_cli("xorlab-sweep", "--config-dir", "myconf", "experiment=mine", "grid.lr=[-1]", cwd=project)
    assert one_line_error(out, "xorlab-sweep", "grid.lr").endswith("got -1")


def test_an_unknown_preset_lists_mine_with_the_packages(project, forked_cli):
    out = forked_cli("xorlab-sweep", "--config-dir", "myconf", "experiment=minee", cwd=project)
    line = one_line_error(out, "xorlab-sweep", "experiment")
    assert "unknown option 'minee'; allowed: demo," in line and ", mine, notebook_replay" in line


def test_a_preset_named_like_a_package_preset_is_refused_not_ignored(project, forked_cli):
    """Guards a found trap: Hydra finds the package's ``experiment=demo`` first, so a user's ``demo.yaml`` was
    silently ignored (4,800 runs of the package's demo instead of the user's grid)."""
    (project / "myconf" / "experiment" / "demo.yaml").write_text(PRESET)
    out = forked_cli("xorlab-sweep", "--config-dir", "myconf", "experiment=demo", "sweep.dir=S", cwd=project)
    line = one_line_error(out, "xorlab-sweep", "myconf/experiment/demo.yaml")
    assert "has the name of xorlab's own preset experiment=demo" in line and "rename yours" in line
    assert sorted(p.name for p in project.iterdir()) == ["myconf"]
