"""Deprecated module paths of xorlab 0.1 (flat modules), kept importable for one minor version.

``import xorlab.stats`` still works and warns (``DeprecationWarning``) that the module now lives at
``xorlab.analysis.stats``; the old and new names are the same module object, so monkeypatching either affects
both. Removed in 0.3 (see CHANGELOG.md).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED = {
    "data": "core.data", "rng": "core.rng", "seeding": "core.seeding", "net": "core.net", "inits": "core.inits",
    "outcome": "core.outcome", "modes": "core.modes", "config": "core.config", "runtable": "core.runtable",
    "kernel": "engine.kernel", "kernel_math": "engine.kernel_math", "pipeline": "engine.pipeline",
    "init_draws": "engine.init_draws",
    "records": "store.records", "provenance": "store.provenance", "signals": "store.signals", "claims": "store.claims",
    "grid": "sweep.grid", "grid_keys": "sweep.keys", "options": "sweep.options", "runner": "sweep.runner",
    "committer": "sweep.committer", "extend": "sweep.extend",
    "stats": "analysis.stats", "survival": "analysis.survival", "surface": "analysis.surface",
    "findings": "analysis.findings",
    "figures": "report.figures", "mode_figures": "report.mode_figures", "pages": "report.pages",
    "compare": "report.compare",
    "catalog": "tracking.catalog", "maintenance": "tracking.maintenance", "mlflow_export": "tracking.mlflow_export",
}  # fmt: skip


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module object is the new module's, already executed."""


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds ``xorlab.<old>`` for every old flat module and hands back the module at its new path."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        prefix, _, old = fullname.partition(".")
        if prefix != "xorlab" or old not in MOVED:
            return None
        new = f"xorlab.{MOVED[old]}"
        warnings.warn(f"{fullname} moved to {new}; the old path is removed in xorlab 0.3", DeprecationWarning, 2)
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
