"""Tests for ``xorlab.apps.cli``: every job's config is composed with Hydra's public API and checked before
Hydra starts; the config checked is the one the job receives; Hydra's own groups list their real options; and
nothing in xorlab reaches into ``hydra._internal``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

import xorlab
import xorlab.apps.sweep  # noqa: F401  (importing an app registers its schema with Hydra)
import xorlab.apps.train  # noqa: F401
from xorlab.apps.cli import composed_jobs

PACKAGE = Path(xorlab.__file__).parent


def test_xorlab_uses_only_hydras_public_api():
    private = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "hydra._internal" in p.read_text()]
    assert private == []


@pytest.mark.parametrize(
    ("app", "args"),
    [
        ("xorlab-sweep", ["grid.seed=[0,1]", "grid.max_steps=5", "sweep.engine=numpy", "sweep.progress=false"]),
        ("xorlab-train", ["init=normal", "init.std=0.5", "max_steps=5"]),
    ],
)
def test_the_config_checked_is_the_config_the_job_gets(tmp_path, cli, app, args):
    name = app.removeprefix("xorlab-")
    out_key = "sweep.dir" if name == "sweep" else "hydra.run.dir"
    argv = [*args, f"{out_key}={tmp_path / 'S'}"]
    (checked,) = composed_jobs(name, argv)
    run = cli(app, *argv, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    written = yaml.safe_load((tmp_path / "S" / ".hydra" / "config.yaml").read_text())
    assert OmegaConf.to_container(checked, resolve=True) == written


def test_a_multirun_is_checked_job_by_job_as_the_basic_sweeper_forms_them(tmp_path, cli):
    argv = ["-m", "init=glob(*,exclude=from_file)", "seed=0,1", "max_steps=3", f"hydra.sweep.dir={tmp_path / 'M'}"]
    jobs = composed_jobs("train", argv)
    run = cli("xorlab-train", *argv, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    launched = sorted((tmp_path / "M").glob("*/.hydra/config.yaml"), key=lambda p: int(p.parts[-3]))
    assert [OmegaConf.to_container(j, resolve=True) for j in jobs] == [yaml.safe_load(p.read_text()) for p in launched]
    assert len(jobs) == 2 * 11


def test_a_bad_value_in_one_job_of_a_multirun_stops_before_anything_is_written(tmp_path, cli):
    run = cli("xorlab-train", "-m", "lr=0.1,-1", "max_steps=3", f"hydra.sweep.dir={tmp_path / 'M'}", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and run.stderr.startswith("xorlab-train: error: lr")
    assert not (tmp_path / "M").exists()


@pytest.mark.parametrize(("app", "group"), [("xorlab-sweep", "hydra/launcher"), ("xorlab-train", "hydra/sweeper")])
def test_an_unknown_option_of_hydras_own_group_lists_the_real_options(tmp_path, cli, app, group):
    run = cli(app, f"{group}=joblbi", cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
    allowed = run.stderr.split("allowed: ")[1].strip().split(", ")
    assert "basic" in allowed and ("joblib" in allowed or group == "hydra/sweeper"), run.stderr


def test_config_asking_for_a_multirun_runs_as_a_multirun(tmp_path, cli):
    """``hydra.mode=MULTIRUN`` without ``-m``: Hydra runs it as a multirun (job dir S/0, the store S)."""
    out = cli(
        "xorlab-sweep",
        "hydra.mode=MULTIRUN",
        "grid.seed=[0]",
        "grid.max_steps=5",
        "sweep.dir=S",
        "sweep.engine=numpy",
        "sweep.progress=false",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "Launching 1 jobs locally" in out.stdout and "trained 1 runs" in out.stdout
    assert (tmp_path / "S" / "0" / ".hydra" / "config.yaml").exists() and (tmp_path / "S" / "runs").is_dir()


@pytest.mark.parametrize("app", ["xorlab-sweep", "xorlab-train"])
def test_help_is_hydras_help_text_without_hydras_start_up(tmp_path, cli, app, monkeypatch, capsys):
    """``--help`` prints exactly what Hydra prints for the app (``--config-name`` takes Hydra's own path), and
    does not start Hydra to do it (Hydra's help lists every config group the slow way)."""
    import importlib

    module = importlib.import_module(f"xorlab.apps.{app.removeprefix('xorlab-')}")
    monkeypatch.setattr(module, "hydra_main", lambda: pytest.fail("Hydra was started for --help"))
    monkeypatch.setattr("sys.argv", [app, "--help", "max_steps=7" if app == "xorlab-train" else "grid.lr=[0.5]"])
    module.main()
    fast = capsys.readouterr().out
    name = app.removeprefix("xorlab-")
    override = "max_steps=7" if app == "xorlab-train" else "grid.lr=[0.5]"
    slow = cli(app, "--config-name", name, "--help", override, cwd=tmp_path)
    assert slow.returncode == 0 and fast == slow.stdout
    assert "== Examples ==" in fast and ("max_steps: 7" in fast or "- 0.5" in fast)


@pytest.mark.parametrize(
    ("app", "args"),
    [
        ("xorlab-train", ["lr=-1"]),
        ("xorlab-train", ["-m", "seed=0,-1"]),
        ("xorlab-train", ["hydra.run.dir=/proc/xorlab-test"]),
        ("xorlab-sweep", ["grid.lr=[0.1,abc]", "sweep.dir=s"]),
        ("xorlab-sweep", ["--config-name", "sweep", "-m", "grid.lr=0.1,-1"]),
    ],
)
def test_a_forked_app_reports_what_a_fresh_process_reports(tmp_path, cli, forked_cli, app, args):
    """The bad-input tables run the apps forked from the test process (``forked_cli``): same exit status, same
    stdout and stderr, same files as a fresh ``python -m`` process."""
    outs = []
    for name, run in (("fresh", cli), ("forked", forked_cli)):
        (tmp_path / name).mkdir()
        out = run(app, *args, cwd=tmp_path / name)
        outs.append((out.returncode, out.stdout, out.stderr, sorted(p.name for p in (tmp_path / name).iterdir())))
    assert outs[0] == outs[1] and outs[0][0] != 0
