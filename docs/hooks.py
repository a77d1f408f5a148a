"""MkDocs hooks: pages generated from the code at build time, so the reference cannot drift from it.

- ``reference/cli.md``: each command's ``--help``, as the installed command prints it;
- ``reference/config.md``: the config schema, from ``TrainConfig``'s field specs and ``SweepOptions``' fields;
- ``changelog.md``: the repository's ``CHANGELOG.md``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
APPS = {
    "xorlab-train": "train one run (Hydra app)",
    "xorlab-sweep": "train a grid into a run store (Hydra app)",
    "xorlab-report": "statistics, figures and a report of stores",
    "xorlab-runs": "list, show, compare and export recorded runs",
    "xorlab-store": "check or clean a store",
}
SUBCOMMANDS = {"xorlab-runs": ["list", "show", "compare", "export-mlflow"], "xorlab-store": ["check", "clean"]}


def _help(app: str, *args: str) -> str:
    module = "xorlab.apps." + app.removeprefix("xorlab-")
    out = subprocess.run([sys.executable, "-m", module, *args, "--help"], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{app} {' '.join(args)} --help failed: {out.stderr}")
    return out.stdout.rstrip()


def cli_page() -> str:
    parts = ["# Command lines\n", "Generated from each command's `--help` when the site is built.\n"]
    for app, what in APPS.items():
        parts += [f"## `{app}`\n", f"{what.capitalize()}.\n", f"```text\n{_help(app)}\n```\n"]
        for sub in SUBCOMMANDS.get(app, []):
            parts += [f"### `{app} {sub}`\n", f"```text\n{_help(app, sub)}\n```\n"]
    return "\n".join(parts)


def _comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field line of a dataclass's source."""
    source = inspect.getsource(cls)
    lines = source.splitlines()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.lineno - 1]
            if "#" in line:
                out[node.target.id] = line.split("#", 1)[1].strip()
    return out


def config_page() -> str:
    sys.path.insert(0, str(ROOT))
    from xorlab.core.config import TrainConfig, field_docs
    from xorlab.sweep.options import SweepOptions

    docs = field_docs(TrainConfig)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        meaning = docs.get(f.name, "the init scheme's parameters (see Init schemes)")
        rows.append(f"| `{f.name}` | `{f.type}` | `{default!r}` | {meaning} |")
    comments = _comments(SweepOptions)
    sweep = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(SweepOptions):
        default = "" if f.default is dataclasses.MISSING else f"`{f.default!r}`"
        sweep.append(f"| `sweep.{f.name}` | `{f.type}` | {default} | {comments.get(f.name, '')} |")
    return "\n".join(
        [
            "# Config schema",
            "",
            "Generated from the dataclasses when the site is built. A run is a `TrainConfig` (`xorlab-train`'s "
            "top-level keys). Every field but `init_params` is also a grid axis `grid.<field>` of `xorlab-sweep`, "
            "taking a list of values; init parameters go with their scheme "
            "(`grid.init=[{name: normal, std: [0.01, 0.1]}]`). "
            "`xorlab-sweep`'s own options are `SweepOptions` (`sweep.<option>`).",
            "",
            "## `TrainConfig` (a run; `grid.<field>` in a sweep)",
            "",
            *rows,
            "",
            "## `SweepOptions` (`sweep.*`)",
            "",
            *sweep,
            "",
        ]
    )


def on_files(files, config):
    def changelog() -> str:
        return (ROOT / "CHANGELOG.md").read_text().replace("](CONTRIBUTING.md#", "](contributing.md#")

    for path, make in (
        ("reference/cli.md", cli_page),
        ("reference/config.md", config_page),
        ("changelog.md", changelog),
        ("contributing.md", lambda: (ROOT / "CONTRIBUTING.md").read_text()),
    ):
        files.append(File.generated(config, path, content=make()))
    return files
