"""Weight initialisation schemes: a registry of pure functions drawing from the run's own generator.

Weights are stored (in, out) as in the notebook: ``w1`` (2, H) has fan_in 2, fan_out H; ``w2`` (H, 1) has
fan_in H, fan_out 1, for a hidden layer of H units (the notebook's H = 4; ``TrainConfig.width``). Biases start
at zero. Each scheme draws ``w1`` first, then ``w2``, one call each.
Normal draws are ``standard_normal(shape)`` then a scale; uniform draws are ``uniform(-a, a, shape)``.

====================  =====================================================  ==========
scheme                w ~                                                    params
====================  =====================================================  ==========
notebook              N(0,1)·(1/√fi): w1 = N(0,1)·(1/√2), w2 = N(0,1)·0.5 at H=4  –
xavier_normal         N(0, (g·√(2/(fi+fo)))²)                                gain
xavier_uniform        U(±g·√(6/(fi+fo)))                                     gain
he_normal             N(0, (g·√(2/fi))²)                                     gain
he_uniform            U(±g·√(6/fi))                                          gain
lecun_normal          N(0, (g·√(1/fi))²)                                     gain
lecun_uniform         U(±g·√(3/fi))                                          gain
orthogonal            PyTorch ``orthogonal_``, stored transposed, times g    gain
normal                N(0, std²)                                             std
uniform               U(±a)                                                  a
zeros                 0                                                      –
from_file             w1, b1, w2, b2 read from an ``.npz``                   path
====================  =====================================================  ==========
"""

from __future__ import annotations

import hashlib
import io
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xorlab.core.rng import Draws

W1_SHAPE = (2, 4)  # (fan_in, fan_out) of the notebook's network (width 4)
W2_SHAPE = (4, 1)
PARAM_SHAPES = {"w1": (2, 4), "b1": (1, 4), "w2": (4, 1), "b2": (1, 1)}


def layer_shapes(width: int = 4) -> tuple[tuple[int, int], tuple[int, int]]:
    """(w1, w2) shapes, (fan_in, fan_out) each, of the network with ``width`` hidden units."""
    return (2, width), (width, 1)


def param_shapes(width: int = 4) -> dict[str, tuple[int, int]]:
    """Notebook-shaped parameter shapes of the network with ``width`` hidden units (``PARAM_SHAPES`` at 4)."""
    return {"w1": (2, width), "b1": (1, width), "w2": (width, 1), "b2": (1, 1)}


def notebook_std(fan_in: int, fan_out: int) -> float:
    """The notebook's scale, ``1/sqrt(fan_in)`` written as it does: ``randn(2,4) * np.sqrt(2)**-1`` for w1 and
    ``randn(4,1) * 0.5`` for w2, where ``np.sqrt(4)**-1`` is exactly 0.5. For other widths the same expression."""
    return float(np.sqrt(fan_in) ** -1)


Params = dict[str, np.ndarray]
LayerInit = Callable[[Draws, tuple[int, int], Mapping[str, Any]], np.ndarray]


class InitFileError(ValueError):
    """A ``from_file`` init file is missing, unreadable or has the wrong contents."""


@dataclass(frozen=True)
class Scheme:
    """One init scheme: how it draws weights and which parameters it takes (with defaults)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    layer: LayerInit | None = None  # draws one weight matrix; None for schemes with their own ``make``
    make: Callable[[Draws, Mapping[str, Any], int], Params] | None = None

    def draws_finite(
        self, params: Mapping[str, Any], shapes: tuple[tuple[int, int], ...] = (W1_SHAPE, W2_SHAPE)
    ) -> bool:
        """False if a uniform draw U(±a) with these params cannot be made (2a overflows float64)."""
        bound = getattr(self.layer, "bound", None)
        if bound is None:
            return True
        with np.errstate(over="ignore"):
            return all(np.isfinite(2 * np.float64(bound(*shape, params))) for shape in shapes)

    def init(self, rng: Draws, params: Mapping[str, Any], width: int = 4) -> Params:
        """Return w1, b1, w2, b2 in the notebook's shapes (``width`` hidden units), drawing w1 then w2 from ``rng``."""
        full = {**self.params, **params}
        if self.make is not None:
            return self.make(rng, full, width)
        if self.layer is None:  # a scheme defined with neither: a programming error, not bad input
            raise TypeError(f"init scheme {self.name!r} has neither a layer nor a make function")
        w1_shape, w2_shape = layer_shapes(width)
        w1 = self.layer(rng, w1_shape, full)
        w2 = self.layer(rng, w2_shape, full)
        return {"w1": w1, "b1": np.zeros((1, width)), "w2": w2, "b2": np.zeros((1, 1))}


def _normal(std: Callable[[int, int, Mapping[str, Any]], float]) -> LayerInit:
    def layer(rng: Draws, shape: tuple[int, int], p: Mapping[str, Any]) -> np.ndarray:
        fan_in, fan_out = shape
        return rng.standard_normal(shape) * std(fan_in, fan_out, p)

    layer.std = std  # type: ignore[attr-defined]  # init_draws relies on: layer = standard_normal(shape) * std
    return layer


def _uniform(bound: Callable[[int, int, Mapping[str, Any]], float]) -> LayerInit:
    def layer(rng: Draws, shape: tuple[int, int], p: Mapping[str, Any]) -> np.ndarray:
        fan_in, fan_out = shape
        a = bound(fan_in, fan_out, p)
        return rng.uniform(-a, a, shape)

    layer.bound = bound  # type: ignore[attr-defined]  # read by Scheme.draws_finite; init_draws relies on: uniform(±a)
    return layer


def _orthogonal(rng: Draws, shape: tuple[int, int], p: Mapping[str, Any]) -> np.ndarray:
    """PyTorch's ``orthogonal_`` on the (fan_out, fan_in) weight it would hold, returned as (in, out).

    Draw A ~ N(0,1) of shape (rows, cols) = (fan_out, fan_in); QR-factorise A (or Aᵀ when rows < cols);
    sign each column of Q by diag(R) so the factorisation is unique; transpose back; scale by gain.
    """
    fan_in, fan_out = shape
    rows, cols = fan_out, fan_in
    a = rng.standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return q.T * p["gain"]  # (fan_out, fan_in) -> stored (in, out)


def _zeros(rng: Draws, p: Mapping[str, Any], width: int) -> Params:
    return {k: np.zeros(s) for k, s in param_shapes(width).items()}


def load_params(path: str | Path, data: bytes | None = None, width: int = 4) -> Params:
    """Read w1, b1, w2, b2 from an ``.npz`` (or from its bytes ``data``) and check names, shapes (of the network
    with ``width`` hidden units) and values.

    Raises ``InitFileError`` with a one-line reason for anything that is not a valid parameter file.
    """
    path = Path(path)
    if data is None and not path.is_file():
        raise InitFileError(f"no such file: {path}")
    try:
        with np.load(io.BytesIO(data) if data is not None else path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # numpy raises several types for corrupt archives
        raise InitFileError(f"{path} is not a readable .npz file ({type(exc).__name__})") from None
    shapes = param_shapes(width)
    missing = [k for k in shapes if k not in arrays]
    if missing:
        needs = ", ".join(f"{k} ({s[0]},{s[1]})" for k, s in shapes.items())
        raise InitFileError(f"{path} lacks {', '.join(missing)}; it needs {needs}")
    out = {}
    for name, shape in shapes.items():
        arr = arrays[name]
        if arr.shape != shape:
            at = "" if width == 4 else f" (width {width})"
            raise InitFileError(f"{path}: {name} has shape {arr.shape}, expected {shape}{at}")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise InitFileError(f"{path}: {name} has dtype {arr.dtype}, expected real numbers")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise InitFileError(f"{path}: {name} contains NaN or infinity")
        out[name] = arr
    return out


@dataclass(frozen=True)
class InitFile:
    """A validated ``from_file`` parameter file: its resolved path, the sha256 of its bytes, its arrays."""

    path: Path
    sha256: str
    params: Params


_INIT_FILES: dict[tuple, InitFile] = {}  # (resolved path, inode, size, mtime) -> InitFile


def read_init_file(path: str | Path, width: int = 4) -> InitFile:
    """Read, check and hash an init file **once** per distinct file state in this process.

    Validation, ``run_id`` and the init draw of every run of a grid that names the file share one read. The
    cache key includes inode, size and mtime, so a file replaced or edited between two calls is read anew.
    """
    if any("\udc80" <= c <= "\udcff" for c in str(path)):  # bytes the OS gave that are not UTF-8
        shown = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
        raise InitFileError(
            f"{shown}: the path is not valid UTF-8, and runs record their init file's path as text; "
            "rename the file or link it under a UTF-8 name"
        )
    resolved = Path(path).expanduser().resolve()
    try:
        st = os.stat(resolved)
    except OSError:
        st = None
    key = (str(resolved), st.st_ino, st.st_size, st.st_mtime_ns, width) if st else None
    if key is not None and key in _INIT_FILES:
        return _INIT_FILES[key]
    if not resolved.is_file():
        raise InitFileError(f"no such file: {path}")
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise InitFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    file = InitFile(resolved, hashlib.sha256(data).hexdigest(), load_params(path, data, width))
    if key is not None:
        if len(_INIT_FILES) > 256:  # a bound, not a policy: grids name a handful of files
            _INIT_FILES.clear()
        _INIT_FILES[key] = file
    return file


def _from_file(rng: Draws, p: Mapping[str, Any], width: int) -> Params:
    return {k: v.copy() for k, v in read_init_file(p["path"], width).params.items()}


def _gain(fn: Callable[[int, int], float]) -> Callable[[int, int, Mapping[str, Any]], float]:
    return lambda fi, fo, p: p["gain"] * fn(fi, fo)


GAIN = {"gain": 1.0}

SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in [
        Scheme("notebook", layer=_normal(lambda fi, fo, p: notebook_std(fi, fo))),
        Scheme("xavier_normal", GAIN, _normal(_gain(lambda fi, fo: math.sqrt(2 / (fi + fo))))),
        Scheme("xavier_uniform", GAIN, _uniform(_gain(lambda fi, fo: math.sqrt(6 / (fi + fo))))),
        Scheme("he_normal", GAIN, _normal(_gain(lambda fi, fo: math.sqrt(2 / fi)))),
        Scheme("he_uniform", GAIN, _uniform(_gain(lambda fi, fo: math.sqrt(6 / fi)))),
        Scheme("lecun_normal", GAIN, _normal(_gain(lambda fi, fo: math.sqrt(1 / fi)))),
        Scheme("lecun_uniform", GAIN, _uniform(_gain(lambda fi, fo: math.sqrt(3 / fi)))),
        Scheme("orthogonal", GAIN, _orthogonal),
        Scheme("normal", {"std": 1.0}, _normal(lambda fi, fo, p: p["std"])),
        Scheme("uniform", {"a": 1.0}, _uniform(lambda fi, fo, p: p["a"])),
        Scheme("zeros", make=_zeros),
        Scheme("from_file", {"path": None}, make=_from_file),
    ]
}

INIT_PARAM_TYPES: dict[str, type] = {"gain": float, "std": float, "a": float, "path": str}
INIT_PARAM_NAMES = tuple(INIT_PARAM_TYPES)  # every parameter any scheme takes


def init_params(scheme: str, rng: Draws, params: Mapping[str, Any] | None = None, width: int = 4) -> Params:
    """Draw a run's starting parameters with scheme ``scheme`` for ``width`` hidden units; see the table in the
    module docstring."""
    return SCHEMES[scheme].init(rng, params or {}, width)
