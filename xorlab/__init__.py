"""xorlab: a research harness for how the notebook's 2-4-1 tanh/sigmoid network learns XOR.

Public API::

    from xorlab import TrainConfig, train, train_batch
    res = train(TrainConfig(lr=0.1, max_steps=1000, seed=0, init="notebook"))
    runs = load_runs("runs/my_sweep")        # one row per run (sweep dirs, train run dirs, their parents)
    curves = load_curves("runs/my_sweep")    # long form: run_id, step, loss

The package is layered; each folder imports only from the folders before it in ``LAYERS`` (checked by
``tests/test_layers.py``). The store functions import pandas and pyarrow, so they are loaded on first use
(``import xorlab`` stays light). Modules of xorlab 0.1 (``xorlab.stats``, ``xorlab.records`` ...) still import
from their old paths, with a ``DeprecationWarning``, until 0.3.
"""

from importlib import metadata as _metadata

from xorlab import _moved
from xorlab.core.config import ConfigError, TrainConfig
from xorlab.core.inits import SCHEMES
from xorlab.engine.batch import train, train_batch
from xorlab.engine.results import BatchResult, TrainResult

#: The layers, bottom-up: a module may import from its own folder and the folders before it, never after.
LAYERS = ("core", "engine", "store", "sweep", "analysis", "report", "tracking", "apps")

_STORE_NAMES = ("StoreError", "load_curves", "load_runs")

__all__ = [
    "BatchResult",
    "ConfigError",
    "SCHEMES",
    "StoreError",
    "TrainConfig",
    "TrainResult",
    "load_curves",
    "load_runs",
    "train",
    "train_batch",
]
__version__ = _metadata.version("xorlab")  # one definition: pyproject.toml

_moved.install()


def __getattr__(name: str) -> object:
    if name in _STORE_NAMES:
        from xorlab import store

        return getattr(store, name)
    raise AttributeError(f"module 'xorlab' has no attribute {name!r}")
