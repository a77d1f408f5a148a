"""What the Hydra apps share: config location, argv handling, and one-line errors before Hydra starts.

Hydra creates its output directory (and ``.hydra/``, the log file) before the task function runs. To keep the
promise "bad input → one line, non-zero exit, nothing written", each app first composes its config(s) with
Hydra's Compose API from the same command line — every job of a ``-m`` sweep included — and validates them.
Only if that passes is the real ``@hydra.main`` entry point run. Errors raised later inside a job (a file
that vanished meanwhile, say) are reported the same way by ``reported``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import DictConfig, OmegaConf

from xorlab.config import ConfigError
from xorlab.store import StoreError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
VERSION_BASE = "1.3"
_MULTIRUN = ("-m", "--multirun")
USER_ERRORS = (ConfigError, StoreError)


def fail(prog: str, message: str) -> NoReturn:
    """Print ``prog: error: message`` (one line) to stderr and exit with status 2."""
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr)
    sys.exit(2)


@contextmanager
def reported(prog: str) -> Iterator[None]:
    """Turn the user errors raised inside a block into one-line failures (no traceback)."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except USER_ERRORS as exc:
        fail(prog, str(exc))
    except OmegaConfBaseException as exc:  # e.g. an interpolation that does not resolve: lr='${foo}'
        key = getattr(exc, "full_key", None) or "config"
        fail(prog, f"{key}: {str(exc).splitlines()[0]}")


def group_options(group: str) -> list[str]:
    """Names of the options of a config group (``conf/<group>/*.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _split(argv: list[str]) -> tuple[list[str], bool, bool]:
    """argv -> (overrides, multirun?, only overrides and -m present?)."""
    overrides = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    multirun = any(f in _MULTIRUN for f in flags)
    return overrides, multirun, all(f in _MULTIRUN for f in flags)


def _composition_error(exc: Exception) -> ConfigError:
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, name = exc.missing_cfg_file.rpartition("/")
        return ConfigError(group, f"unknown option {name!r}; allowed: {', '.join(group_options(group))}")
    lines = [ln for ln in str(exc).split("\n") if ln.strip()]
    return ConfigError("overrides", " ".join(lines[:2]))


def composed_jobs(config_name: str, argv: list[str]) -> list[DictConfig] | None:
    """Compose the config of every job the command line would run, or None if argv has other Hydra flags.

    Raises ``ConfigError`` with a one-line message when Hydra cannot compose a job.
    """
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides, multirun, plain = _split(argv)
    if not plain:  # --help, --cfg, --config-dir …: Hydra handles those itself
        return None
    if any(o.startswith("hydra/sweeper=") and o != "hydra/sweeper=basic" for o in overrides):
        return None  # another sweeper (optuna …) draws the jobs itself; each job is checked when it runs
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=VERSION_BASE):
        try:
            if multirun:
                parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
                batches = BasicSweeper.split_arguments(parser.parse_overrides(overrides), None)
                jobs = [job for batch in batches for job in batch] or [overrides]
            else:
                jobs = [overrides]
            return [compose(config_name, overrides=job) for job in jobs]
        except HydraException as exc:
            raise _composition_error(exc) from None


def run_app(prog: str, config_name: str, hydra_main: Callable[[], Any], check: Callable[[DictConfig], Any]) -> None:
    """Console-script body: validate every job's composed config with ``check``, then run Hydra."""
    argv = sys.argv[1:]
    with reported(prog):
        for cfg in composed_jobs(config_name, argv) or []:
            check(cfg)
    hydra_main()


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for records and provenance)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
