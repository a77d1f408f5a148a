"""xorlab: a research harness for how the notebook's 2-4-1 tanh/sigmoid network learns XOR.

Public API::

    from xorlab import TrainConfig, train, train_batch
    res = train(TrainConfig(lr=0.1, max_steps=1000, seed=0, init="notebook"))
    runs = load_runs("runs/my_sweep")        # one row per run (sweep dirs, train run dirs, their parents)
    curves = load_curves("runs/my_sweep")    # long form: run_id, step, loss

The store functions import pandas and pyarrow, so they are loaded on first use (``import xorlab`` stays light).
"""

from xorlab.config import ConfigError, TrainConfig
from xorlab.engine import BatchResult, TrainResult, train, train_batch
from xorlab.inits import SCHEMES

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
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _STORE_NAMES:
        from xorlab import store

        return getattr(store, name)
    raise AttributeError(f"module 'xorlab' has no attribute {name!r}")
