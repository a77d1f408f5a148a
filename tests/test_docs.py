"""The documentation says what works: every command of the tutorial runs as written and the site builds with
``--strict`` (``make docs``, marker ``docs``), and the site's generated reference covers every command and config
field (default suite)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def console_commands(page: Path) -> list[str]:
    """The ``$ `` lines of a page's ```console blocks, in order."""
    commands, inside = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```console"
            continue
        if inside and line.startswith("$ "):
            commands.append(line[2:])
    return commands


@pytest.mark.docs
def test_the_tutorial_runs_as_written(tmp_path):
    commands = console_commands(ROOT / "docs" / "tutorial.md")
    assert len(commands) >= 8 and any(c.startswith("xorlab-runs compare") for c in commands)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    for command in commands:
        assert shlex.split(command)[0].startswith("xorlab-"), command  # only xorlab's own commands
        out = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"$ {command}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
        assert "Traceback" not in out.stderr, command
    assert (tmp_path / "runs" / "first" / "report" / "report.html").is_file()
    assert (tmp_path / "runs" / "compare" / "compare.html").is_file()
    assert (tmp_path / "runs" / "mlflow.db").is_file()


def test_the_reference_pages_come_from_the_code():
    """The hooks that generate the reference: every app's help, every config field (so neither can drift)."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import hooks
    finally:
        sys.path.remove(str(ROOT / "docs"))
    from dataclasses import fields

    from xorlab.core.config import TrainConfig
    from xorlab.sweep.options import SweepOptions

    cli = hooks.cli_page()
    for app in ("xorlab-train", "xorlab-sweep", "xorlab-report", "xorlab-runs", "xorlab-store"):
        assert f"## `{app}`" in cli
    assert "### `xorlab-runs compare`" in cli and "usage: xorlab-runs compare" in cli
    config = hooks.config_page()
    for f in fields(TrainConfig):
        assert re.search(rf"^\| `{f.name}` \|", config, re.M), f.name
    for f in fields(SweepOptions):
        assert f"| `sweep.{f.name}` |" in config


@pytest.mark.docs
def test_the_site_builds_strict(tmp_path):
    out = subprocess.run(
        [BIN / "mkdocs", "build", "--strict", "--site-dir", tmp_path / "site"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for page in ("index.html", "tutorial.html", "reference/cli.html", "reference/api.html", "changelog.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_the_architecture_page_lists_every_module_in_its_folder():
    """docs/explanation/architecture.md: each layer folder's line names every module the folder holds."""
    text = (ROOT / "docs" / "explanation" / "architecture.md").read_text()
    listing = text.split("```")[1]
    chunks: dict[str, str] = {}
    folder = None
    for line in listing.splitlines():
        if m := re.match(r"^  (\w+)/\s", line):
            folder = m[1]
        if folder:
            chunks[folder] = chunks.get(folder, "") + " " + line
    import xorlab

    for layer in xorlab.LAYERS:
        modules = {p.stem for p in (ROOT / "xorlab" / layer).glob("*.py") if p.stem != "__init__"}
        missing = {m for m in modules if not re.search(rf"\b{m}\b", chunks.get(layer, ""))}
        assert not missing, (layer, missing)
