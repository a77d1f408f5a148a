"""A researcher's own presets: which folders they come from, what they offer, and which file a bad value came from.

Hydra's standard mechanisms put a user's folder on the search path (``--config-dir DIR`` or
``hydra.searchpath=[file://DIR]``), so ``DIR/experiment/mine.yaml`` is ``experiment=mine``. Hydra's composition
does not remember which file set a value; when a value fails validation, ``attributed`` names the preset file
that set it (a chosen option found in a user folder whose YAML holds that key, unless the command line set the
key itself), so the error points at the line to fix: ``xorlab-sweep: error: myconf/experiment/mine.yaml:
grid.lr: must be a finite number > 0, got -0.5``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from xorlab.core.config import ConfigError

_GLOBAL = re.compile(r"^#\s*@package\s+_global_\s*$", re.M)


def user_dirs(overrides: Sequence[str], config_dir: str | None) -> list[Path]:
    """The user's preset folders: ``--config-dir`` and the ``file://`` (or plain) entries of ``hydra.searchpath``."""
    dirs = [Path(config_dir)] if config_dir else []
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") != "hydra.searchpath":
            continue
        for entry in value.strip().strip("[]").split(","):
            entry = entry.strip().strip("'\"")
            if entry.startswith("file://"):
                dirs.append(Path(entry.removeprefix("file://")))
            elif entry and "://" not in entry:
                dirs.append(Path(entry))
    return [d.absolute() for d in dirs]


def options_in(dirs: Iterable[Path], group: str) -> set[str]:
    """The options of config group ``group`` that the folders ``dirs`` add (their ``group/*.yaml`` stems)."""
    return {f.stem for d in dirs for f in (d / group).glob("*.yaml")}


def chosen_files(
    choices: Mapping[str, Any], dirs: Sequence[Path], primary: Path | None = None
) -> list[tuple[str, Path]]:
    """``(group, file)`` of every chosen group option that comes from a user folder (the first folder holding it,
    as Hydra's search path resolves it). A user preset named like one of xorlab's own (in ``primary``) would be
    ignored silently, since Hydra searches the package's configs first: that raises ``ConfigError``."""
    out = []
    for group, option in choices.items():
        if not isinstance(option, str) or group.startswith("hydra"):
            continue
        for d in dirs:
            if (f := d / group / f"{option}.yaml").is_file():
                if primary is not None and (primary / group / f"{option}.yaml").is_file():
                    raise ConfigError(
                        shown(f),
                        f"has the name of xorlab's own preset {group}={option}, which Hydra finds first and uses "
                        f"instead; rename yours (e.g. {option}_mine.yaml)",
                    )
                out.append((group, f))
                break
    return out


def keys_of(file: Path, group: str) -> set[str]:
    """Every dotted key the preset ``file`` of ``group`` sets, as it lands in the composed config."""
    text = file.read_text(encoding="utf-8", errors="replace")
    try:
        data = OmegaConf.to_container(OmegaConf.create(text))
    except Exception:  # not YAML Hydra could read: Hydra itself reports it
        return set()
    prefix = "" if _GLOBAL.search(text) else group.replace("/", ".") + "."
    out: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k != "defaults":
                    out.add(path + str(k))
                    walk(v, f"{path}{k}.")

    walk(data, prefix)
    return out


def origin(field: str, files: Sequence[tuple[str, Path]], overrides: Sequence[str]) -> Path | None:
    """The preset file a bad ``field`` (``grid.lr``, or a deeper key under it) came from, or None: the command
    line sets it, or no user preset does."""
    set_here = {o.partition("=")[0].lstrip("+~") for o in overrides}
    parts = field.split(".")
    candidates = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    if candidates & set_here:
        return None
    for group, file in reversed(files):  # later defaults override earlier ones
        if candidates & keys_of(file, group):
            return file
    return None


def attributed(exc: ConfigError, files: Sequence[tuple[str, Path]], overrides: Sequence[str]) -> ConfigError:
    """``exc`` with the preset file that set its field named first, when a user preset set it."""
    file = origin(exc.field, files, overrides)
    return exc if file is None else ConfigError(f"{shown(file)}: {exc.field}", exc.message)


def unknown_key_file(text: str, dirs: Sequence[Path]) -> tuple[Path, str] | None:
    """For Hydra's "In 'experiment/mine': … Key 'lrr' not in 'GridConf'": the user's preset file and the dotted
    key it sets (None if that preset is not in a user folder)."""
    m = re.search(r"In '([^']+)'.*?Key '([^']+)' not in", " ".join(text.split()))
    if not m:
        return None
    group, _, option = m[1].rpartition("/")
    found = chosen_files({group: option}, dirs)
    if not found:
        return None
    (_, file), key = found[0], m[2]
    dotted = sorted(k for k in keys_of(file, group) if k.split(".")[-1] == key)
    return file, dotted[0] if dotted else key


def yaml_error(exc: Exception) -> ConfigError:
    """A config file that YAML cannot parse, as one line naming the file, the line and the problem."""
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)  # where the mistake starts
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if context := getattr(exc, "context", None):
        problem = f"{context}: {problem}"
    if mark is None:
        return ConfigError("config", f"not valid YAML: {problem}")
    return ConfigError(f"{shown(Path(mark.name))}:{mark.line + 1}", f"not valid YAML: {problem}")


def shown(file: Path) -> str:
    """A preset path as the user would type it: relative to the working directory when it is below it."""
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return str(file)
