"""``TrainConfig``: the typed description of one training run — the single source of config truth.

Everything else that names config fields is derived from the dataclass below: the canonical dict (and so
``run_id``), the store's column names and dtypes (``config_dtypes``), the sweep grid's axes (``grid_axes``), the
trajectory key, and the Hydra structured-config schemas of the apps. Adding a field is one line here: a
default, a ``check`` and, for a field that does not change the trajectory, ``budget=True``.

The numpy core receives only ``TrainConfig`` objects. Plain values (a Hydra node, a dict, a grid point) become
one through **``TrainConfig.from_mapping``**, the one boundary function the apps use. Every check raises
``ConfigError``, whose ``field`` and ``message`` give a one-line text such as
``lr: must be a finite number > 0, got 'abc'``.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast

from xorlab.core.activations import NAMES as ACTIVATION_NAMES
from xorlab.core.inits import (
    INIT_PARAM_NAMES,
    INIT_PARAM_TYPES,
    SCHEMES,
    InitFileError,
    layer_shapes,
    read_init_file,
)
from xorlab.core.rng import MAX_SEED, RNG_KINDS

MAX_STEPS = 100_000_000  # beyond this a run's per-step loss array alone would not fit in memory
MAX_WIDTH = 256  # hidden units; the output stays one sigmoid unit
MAX_RNG_SKIP = 100_000_000  # discarded draws cost ~1 s per 10**8 (in 8 MB blocks); the notebook replay needs 144

Check = Callable[[str, Any], None]


class ConfigError(ValueError):
    """An invalid configuration value. ``str(err)`` is one line: ``field: message``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def under(self, prefix: str) -> ConfigError:
        """The same error with its field named under ``prefix`` (``lr`` -> ``grid.lr``)."""
        return ConfigError(f"{prefix}.{self.field}", self.message)


# ------------------------------------------------------------------------------------------------ checks
def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def positive(allow_zero: bool = False) -> Check:
    """Check: a finite real number > 0 (or ≥ 0)."""

    def check(name: str, v: Any) -> None:
        if not _is_real(v) or not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ConfigError(name, f"must be a finite number {bound}, got {v!r}")

    return check


def integer(minimum: int, maximum: int | None = None) -> Check:
    """Check: an integer (not a bool) in ``minimum … maximum``."""
    return lambda name, v: check_int(name, v, minimum, maximum)


def one_of(options: tuple[str, ...], what: str = "option") -> Check:
    """Check: one of the strings ``options``."""

    def check(name: str, v: Any) -> None:
        if not isinstance(v, str) or v not in options:
            raise ConfigError(name, f"unknown {what} {v!r}; allowed: {', '.join(options)}")

    return check


def check_int(name: str, v: Any, minimum: int, maximum: int | None = None) -> None:
    """Raise ``ConfigError`` unless ``v`` is an integer (not a bool) in ``minimum … maximum``."""
    if not _is_int(v) or v < minimum or (maximum is not None and v > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in {minimum} … {maximum}"
        raise ConfigError(name, f"must be an integer {allowed}, got {v!r}")


def spec(default: Any, check: Check, doc: str, budget: bool = False, since: str | None = None) -> Any:
    """A ``TrainConfig`` field: its default, its check, a one-line doc, and whether it is the run's *budget*
    (a field that only says how long to follow a trajectory, so runs differing only there share one).

    ``since`` (a version) marks a field added after run ids were first written: at its default it is left out
    of the run's identity and trajectory texts, so every run recorded before it keeps its ``run_id`` and shard,
    and readers fill the default into stores that predate its column."""
    return field(default=default, metadata={"check": check, "doc": doc, "budget": budget, "since": since})


# ------------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class TrainConfig:
    """One training run of the notebook's network. Field docs: ``field_docs()``; docs/reference/train.md."""

    lr: float = spec(0.1, positive(), "learning rate of gradient descent on the summed BCE (the notebook's)")
    max_steps: int = spec(1000, integer(1, MAX_STEPS), "number of updates", budget=True)
    seed: int = spec(0, integer(0, MAX_SEED["default"]), "seed of the run's own generator")
    init: str = spec("notebook", one_of(tuple(SCHEMES), "scheme"), "init scheme, a key of xorlab.core.inits.SCHEMES")
    init_params: Mapping[str, Any] = field(default_factory=dict)  # the scheme's params; defaults fill the rest
    rng: str = spec("default", one_of(RNG_KINDS, "generator"), "default = default_rng(seed); legacy = RandomState")
    rng_skip: int = spec(0, integer(0, MAX_RNG_SKIP), "standard-normal draws discarded before init (replay: 144)")
    loss_threshold: float = spec(0.05, positive(), "solved = all four points right and loss below this")
    lr_hidden: float = spec(1.0, positive(), "multiplier of lr for the hidden layer (w1, b1)", since="0.2")
    lr_output: float = spec(1.0, positive(), "multiplier of lr for the output layer (w2, b2)", since="0.2")
    width: int = spec(4, integer(1, MAX_WIDTH), "hidden units (the notebook's 4)", since="0.3")
    activation: str = spec(
        "tanh", one_of(ACTIVATION_NAMES, "activation"), "hidden activation (xorlab.core.activations)", since="0.3"
    )

    def __post_init__(self) -> None:
        validate(self)
        # Canonical, complete init params: the scheme's defaults overlaid with what was given.
        object.__setattr__(self, "init_params", {**SCHEMES[self.init].params, **self.init_params})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrainConfig:
        """**The app boundary**: a config from plain values (a dict, a Hydra node, a grid point).

        Keys are field names; ``init`` may be a scheme name or a mapping ``{name: ..., <param>: ...}`` (the
        Hydra ``init`` group's node), whose params then go to ``init_params``; ``None`` params are unset.
        Unknown keys raise ``ConfigError`` naming the key and the allowed ones.
        """
        known = [f.name for f in fields(cls)]
        values = {k: v for k, v in values.items() if not str(k).startswith("_")}  # vars(cfg)'s private caches
        for key in values:
            if key not in known:
                raise ConfigError(str(key), f"unknown field; allowed: {', '.join(known)}")
        out = dict(values)
        init = out.get("init")
        if isinstance(init, Mapping):
            out["init"] = init.get("name")
            given = {k: v for k, v in init.items() if k != "name" and v is not None}
            out["init_params"] = {**given, **dict(out.get("init_params") or {})}
        elif "init_params" in out and isinstance(out["init_params"], Mapping):
            out["init_params"] = dict(out["init_params"])
        return cls(**out)

    @classmethod
    def _prevalidated(cls, init_params: Mapping[str, Any], **values: Any) -> TrainConfig:
        """A config from values already validated one by one (a ``Grid`` checks every axis value once), without
        checking them again per run: building a million-run grid's configs costs µs, not tens of µs, a run."""
        cfg = object.__new__(cls)
        for name, default in _defaults(cls):
            object.__setattr__(cfg, name, values.get(name, default))
        object.__setattr__(cfg, "init_params", {**SCHEMES[cfg.init].params, **init_params})
        return cfg

    def __hash__(self) -> int:
        return hash(json.dumps(self.canonical(), sort_keys=True))

    def canonical(self) -> dict[str, Any]:
        """All fields as plain JSON-able values in field order, init params flattened to ``init_<name>`` (None
        where the scheme has no such parameter). ``run_id`` hashes this (see ``identity``)."""
        cached = self.__dict__.get("_canonical")  # a frozen config's canonical form never changes
        if cached is None:
            cached = {name: cast(getattr(self, name)) for name, cast in _plain_casts(type(self))}
            for name in INIT_PARAM_NAMES:
                value = self.init_params.get(name)
                cached[f"init_{name}"] = value if value is None or INIT_PARAM_TYPES[name] is str else float(value)
            object.__setattr__(self, "_canonical", cached)
        return dict(cached)

    def identity(self) -> dict[str, Any]:
        """What determines the run's result: ``canonical()``, plus for ``from_file`` the file's resolved path
        and the sha256 of its bytes (so ``start.npz`` and ``./start.npz`` are one run, and an edited file a new
        one). ``records.run_id`` hashes exactly this."""
        out = self.canonical()
        for name, default in later_fields(type(self)).items():
            if out[name] == default:
                del out[name]
        if self.init_params.get("path") is not None:
            file = read_init_file(self.init_params["path"], self.width)
            out.update(init_path=str(file.path), init_file_sha256=file.sha256)
        return out

    def trajectory_key(self) -> tuple:
        """What determines the run's trajectory: every canonical field except the budget (``max_steps``) and
        the later fields at their defaults (see ``spec``)."""
        budget, later = _budget(type(self)), later_fields(type(self))
        return tuple(
            (k, v) for k, v in self.canonical().items() if k not in budget and (k not in later or later[k] != v)
        )

    def rates(self) -> tuple[float, float]:
        """The learning rates of the hidden layer (w1, b1) and of the output layer (w2, b2): ``lr`` times each
        layer's multiplier (at the default multipliers both are exactly ``lr``)."""
        return self.lr * self.lr_hidden, self.lr * self.lr_output


_F = TypeVar("_F", bound=Callable[..., Any])


def _per_class(fn: _F) -> _F:
    """``functools.cache`` over a config class, typed as the function it wraps. (mypy checks a class object
    against ``Hashable`` with its instances' ``__hash__`` and so rejects ``TrainConfig``, which defines one; every
    class object hashes by identity.)"""
    return cast(_F, functools.cache(fn))


_PLAIN: dict[str, Callable[[Any], Any]] = {"float": float, "int": int, "str": str}
_DTYPES = {"float": "float64", "int": "int64", "str": "string"}


def _kind(f: Any) -> str:
    """'float', 'int' or 'str' from a field's annotation (a string under ``from __future__ import annotations``)."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind not in _PLAIN:
        raise TypeError(f"TrainConfig field {f.name}: type {kind} is not one of {', '.join(_PLAIN)}")
    return kind


@_per_class
def scalar_fields(cls: type[TrainConfig] = TrainConfig) -> tuple[Any, ...]:
    """The dataclass fields that are one value each (every field but ``init_params``), in order."""
    return tuple(f for f in fields(cls) if f.name != "init_params")


@_per_class
def _plain_casts(cls: type[TrainConfig]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    return tuple((f.name, _PLAIN[_kind(f)]) for f in scalar_fields(cls))


def plain_cast(cls: type[TrainConfig], name: str) -> Callable[[Any], Any]:
    """How ``canonical()`` turns field ``name``'s value into a plain JSON value (``float``, ``int`` or ``str``)."""
    return dict(_plain_casts(cls))[name]


@_per_class
def _defaults(cls: type[TrainConfig]) -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.default) for f in scalar_fields(cls))


@_per_class
def later_fields(cls: type[TrainConfig] = TrainConfig) -> dict[str, Any]:
    """Fields added after run ids were first written (``spec(since=...)``) -> their defaults: left out of the
    identity and trajectory texts at the default, filled with it when reading stores that predate them."""
    return {f.name: f.default for f in scalar_fields(cls) if f.metadata["since"]}


@_per_class
def _budget(cls: type[TrainConfig]) -> frozenset[str]:
    return frozenset(f.name for f in scalar_fields(cls) if f.metadata["budget"])


def config_dtypes(cls: type[TrainConfig] = TrainConfig) -> dict[str, str]:
    """Column name -> pandas dtype of the canonical config, in ``canonical()`` order (the store's schema)."""
    out = {f.name: _DTYPES[_kind(f)] for f in scalar_fields(cls)}
    out.update({f"init_{n}": _DTYPES[INIT_PARAM_TYPES[n].__name__] for n in INIT_PARAM_NAMES})
    return out


def grid_axes(cls: type[TrainConfig] = TrainConfig) -> dict[str, Any]:
    """Sweep axis name -> the field (every scalar field; ``init`` carries the init params)."""
    return {f.name: f for f in scalar_fields(cls)}


def budget_axes(cls: type[TrainConfig] = TrainConfig) -> list[str]:
    return [f.name for f in scalar_fields(cls) if f.metadata["budget"]]


def int_axes(cls: type[TrainConfig] = TrainConfig) -> set[str]:
    """Integer axes (they also accept ``range(a,b[,step])`` in a grid)."""
    return {f.name for f in scalar_fields(cls) if _kind(f) == "int"}


def float_axes(cls: type[TrainConfig] = TrainConfig) -> set[str]:
    """Float axes (they also accept ``linspace(a,b,n)`` and ``logspace(a,b,n)`` in a grid)."""
    return {f.name for f in scalar_fields(cls) if _kind(f) == "float"}


def field_defaults(cls: type[TrainConfig] = TrainConfig) -> dict[str, Any]:
    return {f.name: f.default for f in scalar_fields(cls)}


def field_docs(cls: type[TrainConfig] = TrainConfig) -> dict[str, str]:
    return {f.name: f.metadata["doc"] for f in scalar_fields(cls)}


def validate(cfg: TrainConfig) -> None:
    """Raise ``ConfigError`` for the first invalid field of ``cfg`` (each field's ``check``, then init params)."""
    for f in scalar_fields(type(cfg)):
        f.metadata["check"](f.name, getattr(cfg, f.name))
    if cfg.seed > MAX_SEED[cfg.rng]:
        raise ConfigError("seed", f"rng {cfg.rng!r} takes seeds in 0 … {MAX_SEED[cfg.rng]}, got {cfg.seed!r}")
    if not isinstance(cfg.init_params, Mapping):
        raise ConfigError("init_params", f"must be a mapping, got {cfg.init_params!r}")
    scheme = SCHEMES[cfg.init]
    shapes = layer_shapes(cfg.width)
    for key, value in cfg.init_params.items():
        if key not in scheme.params:
            allowed = ", ".join(scheme.params) or "none"
            raise ConfigError(f"init.{key}", f"not a parameter of init {cfg.init!r}; allowed: {allowed}")
        if key == "path":
            if not isinstance(value, str) or not value:
                raise ConfigError("init.path", f"must be the path of an .npz file, got {value!r}")
            try:
                read_init_file(value, cfg.width)
            except InitFileError as exc:
                raise ConfigError("init.path", str(exc)) from None
        else:
            positive(allow_zero=key != "gain")(f"init.{key}", value)
            if not scheme.draws_finite({**scheme.params, **cfg.init_params}, shapes):
                raise ConfigError(f"init.{key}", f"{value!r} is too large: the weight bounds overflow float64")
    if "path" in scheme.params and "path" not in cfg.init_params:
        raise ConfigError("init.path", "init 'from_file' needs the path of an .npz with w1, b1, w2, b2")
