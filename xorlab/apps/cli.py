"""What the Hydra apps share: config location, argv handling, and one-line errors before Hydra starts.

Hydra creates its output directory (and ``.hydra/``, the log file) before the task function runs. To keep the
promise "bad input → one line, non-zero exit, nothing written", each app first composes its config(s) from the
same command line — every job of a ``-m`` sweep included, whatever other flags are given — checks that every
key exists in the app's schema (``+typo=1`` too) and validates the values. Only if that passes does Hydra run
the job. A plain run (overrides only, no flags: the common case) is composed once, exactly as ``@hydra.main``
would compose it, and Hydra runs that checked config (``run_plain``); anything else is checked with Hydra's
Compose API (``composed_jobs``) and then run by the ``@hydra.main`` entry point, which composes it again.
Errors raised later inside a job (a file that vanished meanwhile, say) are reported the same way by
``reported``.

Each app has its own config root (``conf/train``, ``conf/sweep``), so its ``--help`` lists only its groups.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.types import RunMode, TaskFunction
from omegaconf import DictConfig, OmegaConf

from xorlab.core.config import ConfigError

CONF_ROOT = Path(__file__).resolve().parent.parent / "conf"  # shipped inside the package
VERSION_BASE = "1.3"
_MULTIRUN = ("-m", "--multirun")
_WITH_VALUE = {"-cn": "config_name", "--config-name": "config_name", "-cp": "config_path",
               "--config-path": "config_path", "-cd": "config_dir", "--config-dir": "config_dir"}  # fmt: skip
# Flags after which Hydra prints something and runs no job: nothing to validate.
_NO_JOB = {"-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion",
           "--version", "-p", "--package", "--resolve"}  # fmt: skip

# `${xorlab.or:${sweep.dir},outputs/...}`: the first value that is set (conf/sweep/hydra/output/xorlab.yaml).
if not OmegaConf.has_resolver("xorlab.or"):
    OmegaConf.register_new_resolver("xorlab.or", lambda *values: next((v for v in values if v), None))


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's input, reported as one line: config errors, and store errors once the store
    module is loaded (it is imported lazily: it pulls in pandas and pyarrow)."""
    store = sys.modules.get("xorlab.store")
    return (ConfigError,) if store is None else (ConfigError, store.StoreError)


def conf_dir(app: str) -> Path:
    """The config root of an app (``train`` or ``sweep``)."""
    return CONF_ROOT / app


def hydra_entry(app: str) -> Callable[[TaskFunction], Callable[[], Any]]:
    """``@hydra.main`` with the app's config root and primary config (``conf/<app>/<app>.yaml``); ``run_plain``
    composes with the same two."""
    return hydra.main(config_path=str(conf_dir(app)), config_name=app, version_base=VERSION_BASE)


def fail(prog: str, message: str) -> NoReturn:
    """Print ``prog: error: message`` (one line) to stderr and exit with status 2."""
    from xorlab.analysis.text import terminal

    one_line = terminal(" ".join(str(message).split()))  # control characters from a path or a store shown, not obeyed
    print(f"{prog}: error: {one_line}", file=sys.stderr)
    sys.exit(2)


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
        fail(prog, f"{where}{exc.strerror or exc}")
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        fail(prog, str(exc))


def group_options(app: str, group: str) -> list[str]:
    """Names of the options of a config group (``conf/<app>/<group>/*.yaml``)."""
    return sorted(p.stem for p in (conf_dir(app) / group).glob("*.yaml"))


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


def _composition_error(app: str, exc: Exception) -> ConfigError:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, name = exc.missing_cfg_file.rpartition("/")
        return ConfigError(group, f"unknown option {name!r}; allowed: {', '.join(group_options(app, group))}")
    text = str(exc)
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


def composed_jobs(app: str, argv: list[str]) -> list[DictConfig]:
    """Compose the config of every job the command line would run (none if it runs no job).

    Raises ``ConfigError`` with a one-line message when Hydra cannot compose a job.
    """
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides, options, multirun, runs_job = parse_argv(argv)
    if not runs_job:
        return []
    if any(o.startswith("hydra/sweeper=") and o != "hydra/sweeper=basic" for o in overrides):
        return []  # another sweeper (optuna …) draws the jobs itself; each job is checked when it runs
    config_dir = options.get("config_dir") or options.get("config_path") or str(conf_dir(app))
    config_name = options.get("config_name") or app
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(config_dir).absolute()), version_base=VERSION_BASE):
        try:
            if multirun:
                parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
                batches = BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)
                jobs = [job for batch in batches for job in batch] or [overrides]
            else:
                jobs = [overrides]
            return [_with_runtime(compose(config_name, overrides=job, return_hydra_config=True)) for job in jobs]
        except HydraException as exc:
            raise _composition_error(app, exc) from None


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


class _Precomposed(ConfigLoaderImpl):
    """Hydra's config loader, except that a composition already made (and checked) by ``run_plain`` is handed
    out once, when Hydra asks for exactly that composition, instead of being composed again."""

    def __init__(self, config_search_path: Any) -> None:
        super().__init__(config_search_path=config_search_path)
        self.ready: dict[tuple, DictConfig] = {}

    def offer(self, cfg: DictConfig, config_name: str, overrides: list[str]) -> None:
        """Hand out ``cfg`` for the composition ``Hydra.run`` asks for (its defaults: from the shell, validated)."""
        self.ready[(config_name, tuple(overrides), RunMode.RUN, True, True)] = cfg

    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        key = (config_name, tuple(overrides), run_mode, from_shell, validate_sweep_overrides)
        if key in self.ready:
            return self.ready.pop(key)
        return super().load_configuration(config_name, overrides, run_mode, from_shell, validate_sweep_overrides)


def compose_plain(app: str, task: TaskFunction, overrides: list[str]) -> tuple[Any, DictConfig, list[str]] | None:
    """Set up Hydra for ``task`` as ``@hydra.main`` does and compose the config that ``Hydra.run`` will compose
    for a plain command line (``overrides``, no flags).

    Returns the ``Hydra`` object (also made the global one; clear it when done), the config and the overrides
    ``Hydra.run`` is to be called with, or None when the config asks for a multirun (``hydra.mode=MULTIRUN``).
    ``@hydra.main`` composes a plain run twice: ``Hydra.get_mode`` reads ``hydra.mode`` from a composition,
    ``_run_app`` appends the override ``hydra.mode=RUN`` when it is unset, and ``Hydra.run`` composes again. Here
    the Hydra object is built as ``hydra._internal.utils._run_hydra`` builds it (same job name and search path),
    the config is composed once with ``Hydra.run``'s arguments, and the appended override is applied to it as
    Hydra's composition applies it (``tests/apps/test_cli.py`` checks the result against ``@hydra.main``'s own).
    Raises ``ConfigError`` with a one-line message when Hydra cannot compose it.
    """
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import (
        create_automatic_config_search_path,
        detect_calling_file_or_module_from_task_function,
        detect_task_name,
        run_and_report,
    )
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    calling_file, calling_module = detect_calling_file_or_module_from_task_function(task)
    loader = _Precomposed(create_automatic_config_search_path(calling_file, calling_module, str(conf_dir(app))))
    GlobalHydra.instance().clear()
    main = run_and_report(lambda: Hydra(task_name=detect_task_name(calling_file, calling_module), config_loader=loader))
    GlobalHydra.instance().initialize(main)
    try:
        cfg = loader.load_configuration(app, overrides, RunMode.RUN)
    except HydraException as exc:
        raise _composition_error(app, exc) from None
    if cfg.hydra.mode == RunMode.MULTIRUN:
        return None
    if cfg.hydra.mode is None:
        overrides = [*overrides, "hydra.mode=RUN"]
        OmegaConf.update(cfg, "hydra.mode", "RUN", merge=True)  # = ConfigLoaderImpl._apply_overrides_to_config
        cfg.hydra.overrides.hydra.append(overrides[-1])  # = the hydra overrides recorded by _load_configuration_impl
    return main, cfg, overrides


def run_plain(prog: str, app: str, hydra_main: Callable[[], Any], check: Callable[[DictConfig], Any],
              overrides: list[str], keys: Mapping[str, Any]) -> bool:  # fmt: skip
    """Check and run a plain command line, composing its config once (``compose_plain``): the config checked on a
    copy is the one ``Hydra.run`` gets (from ``_Precomposed``). Returns False, having run nothing, when the
    config asks for a multirun: the caller then takes the general path."""
    from hydra._internal.utils import run_and_report
    from hydra.core.global_hydra import GlobalHydra

    task = hydra_main.__wrapped__  # type: ignore[attr-defined]
    try:
        with reported(prog):
            composed = compose_plain(app, task, overrides)
            if composed is None:
                return False
            main, cfg, overrides = composed
            job = _with_runtime(copy.deepcopy(cfg))
            check_keys(job, keys)
            check(job)
        main.config_loader.offer(cfg, app, overrides)
        run_and_report(lambda: main.run(config_name=app, task_function=task, overrides=overrides))
    finally:
        GlobalHydra.instance().clear()
    return True


def run_app(prog: str, app: str, hydra_main: Callable[[], Any], check: Callable[[DictConfig], Any]) -> None:
    """Console-script body: check every job's composed config (keys and values), then run Hydra.

    ``hydra_main`` is the app's ``@hydra_entry(app)`` function. A plain run is composed once (``run_plain``);
    other command lines (``-m``, ``--cfg``, ``-cn`` …) are checked job by job, then given to ``hydra_main``.
    """
    from xorlab.apps.schema import SCHEMAS, schema_keys

    keys = schema_keys(SCHEMAS[app])
    argv = sys.argv[1:]
    overrides = parse_argv(argv)[0]
    plain = len(overrides) == len(argv) and not any(o.startswith("hydra/sweeper=") for o in overrides)
    if plain and run_plain(prog, app, hydra_main, check, overrides, keys):
        return
    with reported(prog):
        for cfg in composed_jobs(app, argv):
            check_keys(cfg, keys)
            check(cfg)
    hydra_main()


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for records and provenance)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
