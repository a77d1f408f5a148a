"""Tests for ``xorlab.apps.cli``: a plain command line (overrides only) is composed once, into exactly the config
``@hydra.main`` composes for it, and runs as ``@hydra.main`` runs it. The general path (``composed_jobs``, then
``@hydra.main``) is taken here by adding ``--config-name``, which names the same primary config."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

import xorlab.apps.sweep as sweep_app
from xorlab.apps.cli import compose_plain

PLAIN = [
    ("xorlab-sweep", ["grid.seed=[0,1]", "grid.max_steps=5", "sweep.dir=S", "sweep.engine=numpy",
                      "sweep.progress=false"]),
    ("xorlab-sweep", ["experiment=demo", "grid.seed=[0]", "grid.max_steps=5", "grid.lr=[0.5]", "sweep.dir=S",
                      "sweep.engine=numpy", "sweep.progress=false", "hydra.job.chdir=true",
                      "hydra.job_logging.root.level=WARNING"]),
    ("xorlab-train", ["init=normal", "init.std=0.5", "max_steps=5", "hydra.run.dir=S"]),
    ("xorlab-train", ["experiment=notebook_replay", "max_steps=5", "hydra.run.dir=S", "hydra.mode=RUN"]),
]  # fmt: skip


def hydra_files(run_dir, cwd) -> dict[str, str]:
    return {p.name: p.read_text().replace(str(cwd), "<cwd>") for p in sorted((run_dir / ".hydra").iterdir())}


@pytest.mark.parametrize(("app", "args"), PLAIN, ids=[" ".join(a) for _, a in PLAIN])
def test_plain_run_writes_what_hydra_main_writes(tmp_path, cli, app, args):
    """The files Hydra writes for the job (composed config, Hydra's config, overrides) and what the app prints
    are those of the general path, byte for byte up to the working directory."""
    plain, general = tmp_path / "plain", tmp_path / "general"
    plain.mkdir()
    general.mkdir()
    a = cli(app, *args, cwd=plain)
    b = cli(app, "--config-name", app.removeprefix("xorlab-"), *args, cwd=general)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    files = hydra_files(plain / "S", plain)
    assert set(files) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert files == hydra_files(general / "S", general)
    assert "hydra.mode=RUN" in files["hydra.yaml"]
    if app == "xorlab-train":  # (the sweep's summary line carries its duration; log lines their time)
        printed = [[ln for ln in out.stdout.splitlines() if not ln.startswith("[")] for out in (a, b)]
        assert printed[0] == printed[1] and len(printed[0]) > 5
    assert a.stderr == b.stderr == ""


@pytest.mark.parametrize(
    "overrides",
    [[], ["grid.seed='range(0,3)'", "sweep.dir=S"], ["experiment=init_comparison", "hydra.verbose=true"],
     ["hydra/launcher=joblib", "hydra.job.name=other", "+hydra.job.env_set.X=1"], ["hydra.mode=RUN"]],
)  # fmt: skip
def test_compose_plain_equals_hydra_run_composition(overrides):
    """The config ``compose_plain`` hands to ``Hydra.run`` equals the one ``Hydra.run`` composes itself, with the
    overrides ``@hydra.main`` gives it, node for node (interpolations unresolved) and in the same key order."""
    try:
        main, cfg, run_overrides = compose_plain("sweep", sweep_app.hydra_main.__wrapped__, overrides)
        assert isinstance(main, Hydra) and GlobalHydra.instance().hydra is main
        assert main.config_loader.ready == {}  # nothing handed out yet: the next composition is a real one
        expected = main.compose_config("sweep", run_overrides, run_mode=RunMode.RUN)
        assert main.get_mode("sweep", overrides) == (RunMode.RUN if "hydra.mode=RUN" in overrides else None)
    finally:
        GlobalHydra.instance().clear()
    assert run_overrides == (overrides if "hydra.mode=RUN" in overrides else [*overrides, "hydra.mode=RUN"])
    assert cfg.hydra.job.name == ("other" if "hydra.job.name=other" in overrides else "sweep")
    assert cfg.hydra.mode == RunMode.RUN
    assert OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(expected)


def test_config_asking_for_a_multirun_takes_the_general_path(tmp_path, cli):
    """``hydra.mode=MULTIRUN`` without ``-m``: Hydra runs it as a multirun (job dir S/0, the store S)."""
    out = cli("xorlab-sweep", "hydra.mode=MULTIRUN", "grid.seed=[0]", "grid.max_steps=5", "sweep.dir=S",
              "sweep.engine=numpy", "sweep.progress=false", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Launching 1 jobs locally" in out.stdout and "trained 1 runs" in out.stdout
    assert (tmp_path / "S" / "0" / ".hydra" / "config.yaml").exists() and (tmp_path / "S" / "runs").is_dir()


COUNTED = """
import atexit, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
impl, calls = ConfigLoaderImpl._load_configuration_impl, []
def counted(*args, **kwargs):
    calls.append(1)
    return impl(*args, **kwargs)
ConfigLoaderImpl._load_configuration_impl = counted
atexit.register(lambda: print("compositions:", len(calls)))
sys.argv[0] = "xorlab-sweep"
from xorlab.apps.sweep import main
main()
"""


def test_plain_run_is_composed_once(tmp_path):
    args = ["grid.seed=[0]", "grid.max_steps=5", "sweep.engine=numpy", "sweep.progress=false"]
    counts = []
    for extra in ([], ["--config-name", "sweep"]):
        out = subprocess.run([sys.executable, "-c", COUNTED, *extra, *args, f"sweep.dir=S{len(counts)}"],
                             cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
        counts.append(out.stdout.splitlines()[-1])
    assert counts == ["compositions: 1", "compositions: 3"]  # the general path: check, get_mode, run
