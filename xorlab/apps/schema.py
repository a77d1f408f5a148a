"""Structured-config schemas of the Hydra apps, **derived** from the library's dataclasses and registered in
Hydra's ConfigStore.

Nothing here restates a field or a default: ``RunFields`` and ``GridConf`` are made from ``TrainConfig``'s
fields, ``SweepConf`` from ``runner.SweepOptions`` and ``TrainOptions`` below is the one home of the train
app's own options. The schemas fix each config's *structure* (which keys exist: an unknown key is an error).
Value fields are typed ``Any`` on purpose: a wrong value (``lr=abc``) then reaches the library's validation,
which answers with one line naming the field and what is allowed, instead of OmegaConf's multi-line error.
"""

from __future__ import annotations

import functools
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from xorlab.core.config import TrainConfig, field_defaults
from xorlab.core.inits import INIT_PARAM_NAMES
from xorlab.sweep.options import SweepOptions


def _any(name: str, defaults: dict[str, Any], bases: tuple = ()) -> type:
    """A dataclass with one ``Any`` field per entry of ``defaults`` (lists get a factory)."""
    return make_dataclass(
        name,
        [
            (k, Any, field(default_factory=functools.partial(list, v)) if isinstance(v, list) else field(default=v))
            for k, v in defaults.items()
        ],
        bases=bases,
    )


InitConf = _any("InitConf", {"name": TrainConfig().init, **dict.fromkeys(INIT_PARAM_NAMES)})
RunFields = _any("RunFields", {k: v for k, v in field_defaults().items() if k != "init"})
GridConf = _any("GridConf", field_defaults())  # each axis: a value or a list; see xorlab.sweep.grid


@dataclass
class TrainOptions:
    """The train app's own options (not part of the run's identity)."""

    print_every: Any = 20  # print the loss every this many steps, like the notebook
    log_every: Any = 1  # record the loss curve every this many steps
    engine: Any = "numpy"  # the bit-exact reference; "compiled" = the numba kernel


TRAIN_OPTIONS = tuple(f.name for f in fields(TrainOptions))


@dataclass
class _TrainApp(TrainOptions):
    init: InitConf = field(default_factory=InitConf)  # type: ignore[valid-type]


TrainAppConf = make_dataclass("TrainAppConf", [], bases=(_TrainApp, RunFields))

SweepConf = _any(
    "SweepConf", {f.name: None if f.default is MISSING else f.default for f in fields(SweepOptions)}
)  # sweep.dir None: Hydra's output dir (in a multirun, the sweep dir that all jobs share)


@dataclass
class SweepAppConf:
    grid: GridConf = field(default_factory=GridConf)  # type: ignore[valid-type]
    sweep: SweepConf = field(default_factory=SweepConf)  # type: ignore[valid-type]


def schema_keys(schema: type) -> dict[str, Any]:
    """Key -> nested key dict (or None for a leaf) of a schema dataclass."""
    out: dict[str, Any] = {}
    for f in fields(schema):
        factory = f.default_factory if f.default_factory is not MISSING else None
        sub = factory() if factory is not None else None
        out[f.name] = schema_keys(type(sub)) if sub is not None and hasattr(sub, "__dataclass_fields__") else None
    return out


def train_config(cfg: DictConfig) -> TrainConfig:
    """The typed ``TrainConfig`` of a composed ``xorlab-train`` config, through the one boundary function."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict), "a composed config is a mapping"
    return TrainConfig.from_mapping({str(k): v for k, v in values.items() if k not in TRAIN_OPTIONS})


SCHEMAS = {"train": TrainAppConf, "sweep": SweepAppConf}


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConf)
    cs.store(name="sweep_schema", node=SweepAppConf)
