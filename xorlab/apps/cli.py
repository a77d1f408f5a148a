"""What the Hydra apps share: config location, argv handling, and one-line errors before Hydra starts.

Hydra creates its output directory (and ``.hydra/``, the log file) before the task function runs. To keep the
promise "bad input → one line, non-zero exit, nothing written", each app first composes the config of every job
the command line would run — each job of a ``-m`` sweep included, whatever other flags are given — with Hydra's
public Compose API (``composed_jobs``), checks that every key exists in the app's schema (``+typo=1`` too) and
validates the values. Only if that passes does ``@hydra.main`` run the jobs. Errors raised later inside a job (a
file that vanished meanwhile, say) are reported the same way by ``reported``.

Each app has its own config root (``conf/train``, ``conf/sweep``, inside the package), so its ``--help`` lists
only its groups. ``--config-dir DIR`` adds the user's own folder of presets to the search path, as in any Hydra
app; ``--config-path``/``--config-name`` replace the primary config.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra.types import TaskFunction
from omegaconf import DictConfig, OmegaConf

from xorlab.apps import presets
from xorlab.apps.errors import FAILURE, fail, user_errors
from xorlab.core.config import ConfigError
from xorlab.store.layout import oserror_text

CONF_ROOT = Path(__file__).resolve().parent.parent / "conf"  # shipped inside the package
VERSION_BASE = "1.3"
_MULTIRUN = ("-m", "--multirun")
_WITH_VALUE = {
    "-cn": "config_name",
    "--config-name": "config_name",
    "-cp": "config_path",
    "--config-path": "config_path",
    "-cd": "config_dir",
    "--config-dir": "config_dir",
}
# Flags after which Hydra prints something and runs no job: nothing to validate.
_NO_JOB = {
    "-h",
    "--help",
    "--hydra-help",
    "-c",
    "--cfg",
    "-i",
    "--info",
    "-sc",
    "--shell-completion",
    "--version",
    "-p",
    "--package",
    "--resolve",
}

# `${xorlab.or:${sweep.dir},outputs/...}`: the first value that is set (conf/sweep/hydra/output/xorlab.yaml).
if not OmegaConf.has_resolver("xorlab.or"):
    OmegaConf.register_new_resolver("xorlab.or", lambda *values: next((v for v in values if v), None))


def conf_dir(app: str) -> Path:
    """The config root of an app (``train`` or ``sweep``)."""
    return CONF_ROOT / app


def hydra_entry(app: str) -> Callable[[TaskFunction], Callable[[], Any]]:
    """``@hydra.main`` with the app's config root and primary config (``conf/<app>/<app>.yaml``)."""
    return hydra.main(config_path=str(conf_dir(app)), config_name=app, version_base=VERSION_BASE)


@contextmanager
def reported(prog: str) -> Iterator[None]:
    """Turn the user errors raised inside a block into one-line failures (no traceback)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except OmegaConfBaseException as exc:  # e.g. an interpolation that does not resolve: lr='${foo}'
        key = getattr(exc, "full_key", None) or "config"
        fail(prog, f"{key}: {str(exc).splitlines()[0]}")
    except OSError as exc:  # the library turns a sweep's own OS errors into StoreError; this is the rest
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        fail(prog, f"{where}{oserror_text(exc)}", FAILURE)
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        fail(prog, exc, getattr(exc, "status", 2))


def parse_argv(argv: list[str]) -> tuple[list[str], dict[str, str], bool, bool]:
    """argv -> (overrides, {config_name/config_path/config_dir: value}, multirun?, runs a job?)."""
    overrides: list[str] = []
    options: dict[str, str] = {}
    multirun, runs_job = False, True
    args = iter(argv)
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag in _WITH_VALUE:
            options[_WITH_VALUE[flag]] = value if eq else next(args, "")
        elif arg in _MULTIRUN:
            multirun = True
        elif arg.startswith("-"):
            runs_job = runs_job and flag not in _NO_JOB
        else:
            overrides.append(arg)
    return overrides, options, multirun, runs_job


def group_options(group: str) -> list[str]:
    """Options of a config group on the current search path (the app's, the user's ``--config-dir``, Hydra's own
    groups such as ``hydra/launcher``); Hydra must be initialised (``composed_jobs`` does it)."""
    from hydra.core.global_hydra import GlobalHydra

    return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def _composition_error(app: str, exc: Exception, dirs: Sequence[Path] = ()) -> ConfigError:
    """Hydra's composition error as one line; ``dirs``: the user's preset folders (their options are allowed too,
    and an unknown key in one of their presets names the file)."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, name = exc.missing_cfg_file.rpartition("/")
        allowed = sorted(set(group_options(group)) | presets.options_in(dirs, group))
        return ConfigError(group, f"unknown option {name!r}; allowed: {', '.join(allowed)}")
    text = str(exc)
    if found := presets.unknown_key_file(text, dirs):
        file, key = found
        unknown = _unknown_key(app, key)
        return ConfigError(f"{presets.shown(file)}: {unknown.field}", unknown.message)
    if m := re.search(r"Could not override '([^']+)'\. To append", " ".join(text.split())):
        return _unknown_key(app, m[1])  # Hydra's wording does not say what is allowed
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return ConfigError("overrides", " ".join(lines[:2]))


def _unknown_key(app: str, key: str) -> ConfigError:
    """``key: unknown key; allowed: …`` with the keys of the schema level the key was meant for."""
    from xorlab.apps.schema import SCHEMAS, schema_keys

    keys: Any = schema_keys(SCHEMAS[app])
    *parents, _ = key.split(".")
    prefix = ""
    for part in parents:
        if not isinstance(keys, Mapping) or not isinstance(keys.get(part), Mapping):
            break
        keys, prefix = keys[part], f"{prefix}{part}."
    return ConfigError(key, f"unknown key; allowed: {', '.join(prefix + k for k in keys)}")


def check_keys(cfg: Any, keys: Mapping[str, Any], prefix: str = "") -> None:
    """Raise ``ConfigError`` for the first key of ``cfg`` that the schema (``schema.schema_keys``) lacks."""
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in keys:
            allowed = ", ".join(f"{prefix}{k}" for k in keys)
            raise ConfigError(name, f"unknown key; allowed: {allowed}")
        if isinstance(keys[key], Mapping) and isinstance(cfg[key], Mapping | DictConfig):
            check_keys(cfg[key], keys[key], f"{name}.")


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """The jobs of a basic-sweeper multirun: the Cartesian product of every sweep override's values (``a=1,2``,
    ``range``, ``choice``, ``glob`` over a group), in command-line order, as Hydra's basic sweeper forms them."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    axes = []
    for override in parser.parse_overrides(overrides):
        if override.is_sweep_override():
            key = override.get_key_element()
            axes.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            assert override.input_line is not None, "an override parsed from the command line keeps its text"
            axes.append([override.input_line])
    return [list(job) for job in itertools.product(*axes)]


def composed_jobs(app: str, argv: list[str], check: Callable[[DictConfig], Any] | None = None) -> list[DictConfig]:
    """Compose the config of every job the command line would run (none if it runs no job), and ``check`` each.

    Raises ``ConfigError`` with a one-line message when Hydra cannot compose a job or ``check`` refuses one; an
    error in a value that one of the user's own presets set names that preset's file.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException

    overrides, options, multirun, runs_job = parse_argv(argv)
    if not runs_job:
        return []
    primary = Path(options.get("config_path") or conf_dir(app)).absolute()
    dirs = presets.user_dirs(overrides, options.get("config_dir"))
    if options.get("config_dir"):  # Hydra's -cd: the user's folder joins the search path
        overrides = [*overrides, f"hydra.searchpath=[file://{Path(options['config_dir']).absolute()}]"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(primary), version_base=VERSION_BASE):
            try:
                sweeper = next((o.split("=", 1)[1] for o in overrides if o.startswith("hydra/sweeper=")), "basic")
                if sweeper not in group_options("hydra/sweeper"):
                    raise _composition_error(app, MissingConfigException("", f"hydra/sweeper/{sweeper}"), dirs)
                if sweeper != "basic":
                    return []  # another sweeper (optuna …) draws the jobs itself; each is checked when it runs
                jobs = sweep_jobs(overrides) if multirun else [overrides]
                name = options.get("config_name") or app
                composed = (compose(name, overrides=job, return_hydra_config=True) for job in jobs)
                return [_checked(cfg, job, dirs, check, primary) for cfg, job in zip(composed, jobs, strict=True)]
            except HydraException as exc:
                raise _composition_error(app, exc, dirs) from None
            except yaml.YAMLError as exc:  # a preset that is not YAML: Hydra lets the parser's traceback through
                raise presets.yaml_error(exc) from None
    finally:
        GlobalHydra.instance().clear()


def _checked(
    cfg: DictConfig,
    job: list[str],
    dirs: Sequence[Path],
    check: Callable[[DictConfig], Any] | None,
    primary: Path | None = None,
) -> DictConfig:
    """One composed job, its hydra node dropped, checked by ``check`` (errors from a user's preset name it)."""
    files = presets.chosen_files(cfg.hydra.runtime.choices, dirs, primary)
    cfg = _with_runtime(cfg)
    if check is not None:
        try:
            check(cfg)
        except ConfigError as exc:
            raise presets.attributed(exc, files, job) from None
    return cfg


def _with_runtime(cfg: DictConfig) -> DictConfig:
    """Let ``${hydra:runtime.cwd}`` resolve as it will in the job, then drop the hydra node."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.runtime.cwd = os.getcwd()
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _check_utf8(argv: list[str]) -> None:
    """Hydra's override grammar reads text: an argument holding bytes that are not UTF-8 (a path the OS gave as
    bytes) is one line saying so and what to do, instead of the grammar's lexer error."""
    for arg in argv:
        if any("\udc80" <= c <= "\udcff" for c in arg):
            key = arg.split("=", 1)[0] if "=" in arg else "overrides"
            shown = os.fsencode(arg).decode("utf-8", "backslashreplace")
            raise ConfigError(
                key,
                f"{shown} holds bytes that are not UTF-8, which Hydra's command line cannot carry; "
                "use a UTF-8 name (e.g. a symlink to the folder), or the Python API (run_sweep)",
            )


def run_app(prog: str, app: str, hydra_main: Callable[[], Any], check: Callable[[DictConfig], Any]) -> None:
    """Console-script body: check every job's composed config (keys and values), then run ``hydra_main`` (the
    app's ``@hydra_entry(app)`` function), which composes and runs the same jobs."""
    from xorlab.apps.schema import SCHEMAS, schema_keys

    keys = schema_keys(SCHEMAS[app])
    if app_help(prog, app, sys.argv[1:]):
        return
    with reported(prog):
        _check_utf8(sys.argv[1:])

        def checked(cfg: DictConfig) -> None:
            check_keys(cfg, keys)
            check(cfg)

        composed_jobs(app, sys.argv[1:], checked)
    hydra_main()


def app_help(prog: str, app: str, argv: list[str]) -> bool:
    """``--help`` printed as Hydra prints it, without Hydra's start-up: the app's help template (``hydra.help``)
    with ``$APP_CONFIG_GROUPS`` and ``$CONFIG`` filled in, from one composition. Hydra's own ``--help`` lists every
    config group through a fresh config repository per group (about 2 s here); this takes one compose and a
    folder listing. Returns False, having printed nothing, unless ``argv`` is ``--help``/``-h`` with plain
    overrides and the template uses nothing else (then Hydra prints it: same text, slower)."""
    import string

    overrides, options, multirun, _ = parse_argv(argv)
    flags = [a for a in argv if a.startswith("-")]
    if flags not in (["--help"], ["-h"]) or options or multirun:
        return False
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf_dir(app)), version_base=VERSION_BASE):
            try:
                cfg = compose(app, overrides=overrides, return_hydra_config=True)
            except HydraException:
                return False  # Hydra reports it as it always does
            template = str(cfg.hydra.help.template)
            if {"$FLAGS_HELP", "$HYDRA_CONFIG_GROUPS", "${FLAGS_HELP}", "${HYDRA_CONFIG_GROUPS}"} & set(
                re.findall(r"\$\{?[A-Z_]+\}?", template)
            ):
                return False
            groups = sorted({p.parent.relative_to(conf_dir(app)).as_posix() for p in conf_dir(app).rglob("*.yaml")})
            listed = "".join(
                f"{g}: {', '.join(group_options(g))}\n" for g in groups if g != "." and not g.startswith("hydra")
            )
            with open_dict(cfg):
                del cfg["hydra"]
            text = string.Template(template).substitute(APP_CONFIG_GROUPS=listed, CONFIG=OmegaConf.to_yaml(cfg))
            try:
                print(text)
            except BrokenPipeError:  # piped into head: stop quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        GlobalHydra.instance().clear()
    return True


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for records and provenance)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
