"""``TrainConfig``: the typed description of one training run, and its validation.

The numpy core receives only ``TrainConfig`` objects; Hydra configs become one at the app boundary
(``TrainConfig.from_mapping``). Every check raises ``ConfigError``, whose text is one line naming the field
and what is allowed, e.g. ``lr: must be a finite number > 0, got 'abc'``.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from xorlab.inits import INIT_PARAM_NAMES, SCHEMES, InitFileError, load_params
from xorlab.rng import RNG_KINDS

MAX_STEPS = 100_000_000  # beyond this a run's per-step loss array alone would not fit in memory


class ConfigError(ValueError):
    """An invalid configuration value. ``str(err)`` is a one-line message: ``field: what is allowed``."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run of the notebook's network.

    Parameters
    ----------
    lr : learning rate of plain gradient descent on the *summed* BCE (the notebook's gradient).
    max_steps : number of updates.
    seed : seed of the run's own generator (see ``xorlab.rng``).
    init : init scheme name, a key of ``xorlab.inits.SCHEMES``.
    init_params : the scheme's parameters (``gain``, ``std``, ``a`` or ``path``); defaults fill the rest.
    rng : ``"default"`` (``default_rng(seed)``) or ``"legacy"`` (``RandomState(seed)``, the notebook's stream).
    rng_skip : standard-normal draws discarded before initialising (notebook replay: 144).
    loss_threshold : a run is solved when all four points are on the right side of 0.5 and loss < this.
    """

    lr: float = 0.1
    max_steps: int = 1000
    seed: int = 0
    init: str = "notebook"
    init_params: Mapping[str, Any] = field(default_factory=dict)
    rng: str = "default"
    rng_skip: int = 0
    loss_threshold: float = 0.05

    def __post_init__(self) -> None:
        validate(self)
        # Canonical, complete init params: the scheme's defaults overlaid with what was given.
        object.__setattr__(self, "init_params", {**SCHEMES[self.init].params, **self.init_params})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from plain values (a Hydra node or a dict); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(str(key), f"unknown field; allowed: {', '.join(sorted(known))}")
        return cls(**{k: (dict(v) if k == "init_params" and isinstance(v, Mapping) else v) for k, v in values.items()})

    def __hash__(self) -> int:
        return hash(json.dumps(self.canonical(), sort_keys=True))

    def canonical(self) -> dict[str, Any]:
        """All fields as plain JSON-able values, init params flattened to ``init_<name>`` (None if unused)."""
        out: dict[str, Any] = {
            "lr": float(self.lr),
            "max_steps": int(self.max_steps),
            "seed": int(self.seed),
            "init": self.init,
            "rng": self.rng,
            "rng_skip": int(self.rng_skip),
            "loss_threshold": float(self.loss_threshold),
        }
        for name in INIT_PARAM_NAMES:
            value = self.init_params.get(name)
            out[f"init_{name}"] = value if value is None or name == "path" else float(value)
        return out


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_positive(name: str, v: Any, allow_zero: bool = False) -> None:
    if not _is_real(v) or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(name, f"must be a finite number {bound}, got {v!r}")


def check_int(name: str, v: Any, minimum: int, maximum: int | None = None) -> None:
    """Raise ``ConfigError`` unless ``v`` is an integer (not a bool) in ``minimum … maximum``."""
    if not _is_int(v) or v < minimum or (maximum is not None and v > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in {minimum} … {maximum}"
        raise ConfigError(name, f"must be an integer {allowed}, got {v!r}")


def validate(cfg: TrainConfig) -> None:
    """Raise ``ConfigError`` for the first invalid field of ``cfg``."""
    _check_positive("lr", cfg.lr)
    check_int("max_steps", cfg.max_steps, 1, MAX_STEPS)
    check_int("seed", cfg.seed, 0)
    check_int("rng_skip", cfg.rng_skip, 0, MAX_STEPS)
    _check_positive("loss_threshold", cfg.loss_threshold)
    if cfg.rng not in RNG_KINDS:
        raise ConfigError("rng", f"unknown generator {cfg.rng!r}; allowed: {', '.join(RNG_KINDS)}")
    if not isinstance(cfg.init, str) or cfg.init not in SCHEMES:
        raise ConfigError("init", f"unknown scheme {cfg.init!r}; allowed: {', '.join(SCHEMES)}")
    if not isinstance(cfg.init_params, Mapping):
        raise ConfigError("init_params", f"must be a mapping, got {cfg.init_params!r}")
    scheme = SCHEMES[cfg.init]
    for key, value in cfg.init_params.items():
        if key not in scheme.params:
            allowed = ", ".join(scheme.params) or "none"
            raise ConfigError(f"init.{key}", f"not a parameter of init {cfg.init!r}; allowed: {allowed}")
        if key == "path":
            if not isinstance(value, str) or not value:
                raise ConfigError("init.path", f"must be the path of an .npz file, got {value!r}")
            try:
                load_params(value)
            except InitFileError as exc:
                raise ConfigError("init.path", str(exc)) from None
        else:
            _check_positive(f"init.{key}", value, allow_zero=key != "gain")
            if not scheme.draws_finite({**scheme.params, **cfg.init_params}):
                raise ConfigError(f"init.{key}", f"{value!r} is too large: the weight bounds overflow float64")
    if "path" in scheme.params and "path" not in cfg.init_params:
        raise ConfigError("init.path", "init 'from_file' needs the path of an .npz with w1, b1, w2, b2")
