"""Structured-config schemas of the Hydra apps, registered in Hydra's ConfigStore.

The schemas fix each config's *structure*: which keys exist (an unknown key is a composition error) and their
defaults. Value fields are typed ``Any`` on purpose: a wrong value (``lr=abc``, ``max_steps=1.5``) then
reaches ``TrainConfig`` validation, which answers with one line naming the field and what is allowed, instead
of OmegaConf's multi-line type error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from xorlab.config import TrainConfig
from xorlab.inits import INIT_PARAM_NAMES


@dataclass
class InitConf:
    """An init scheme and its parameters (only those of the chosen scheme may be set)."""

    name: Any = "notebook"
    gain: Any = None
    std: Any = None
    a: Any = None
    path: Any = None


@dataclass
class RunFields:
    """The TrainConfig fields other than init, shared by ``xorlab-train`` and a sweep grid's fixed values."""

    lr: Any = 0.1
    max_steps: Any = 1000
    seed: Any = 0
    rng: Any = "default"
    rng_skip: Any = 0
    loss_threshold: Any = 0.05


@dataclass
class TrainAppConf(RunFields):
    init: InitConf = field(default_factory=InitConf)
    print_every: Any = 20  # print the loss every this many steps, like the notebook
    log_every: Any = 1  # record the loss curve every this many steps


@dataclass
class GridConf:
    """Sweep axes: each a value or a list (integer axes also ``range(a,b)``); see ``xorlab.grid``."""

    lr: Any = field(default_factory=lambda: [0.1])
    max_steps: Any = field(default_factory=lambda: [1000])
    seed: Any = "range(0,10)"
    init: Any = field(default_factory=lambda: ["notebook"])
    rng: Any = "default"
    rng_skip: Any = 0
    loss_threshold: Any = 0.05


@dataclass
class SweepRunConf:
    """Where the records go and how the work is split (``xorlab.runner.SweepOptions``)."""

    dir: Any = None  # None: Hydra's output dir (in a multirun, the sweep dir that all jobs share)
    shard: Any = 0
    num_shards: Any = 1
    chunk_size: Any = 4096
    log_every: Any = 10
    progress: Any = True


@dataclass
class SweepAppConf:
    grid: GridConf = field(default_factory=GridConf)
    sweep: SweepRunConf = field(default_factory=SweepRunConf)


def init_node_params(node: Any) -> tuple[Any, dict[str, Any]]:
    """An ``init`` config node -> (scheme name, params that are set)."""
    if isinstance(node, str):
        return node, {}
    params = {k: node[k] for k in INIT_PARAM_NAMES if k in node and node[k] is not None}
    return node.get("name"), params


def train_config(cfg: DictConfig) -> TrainConfig:
    """The typed ``TrainConfig`` of a composed ``xorlab-train`` config (raises ``ConfigError``)."""
    name, params = init_node_params(cfg.init)
    return TrainConfig(
        lr=cfg.lr,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        init=name,
        init_params=params,
        rng=cfg.rng,
        rng_skip=cfg.rng_skip,
        loss_threshold=cfg.loss_threshold,
    )


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainAppConf)
    cs.store(name="sweep_schema", node=SweepAppConf)
