"""xorlab: a research harness for how the notebook's 2-4-1 tanh/sigmoid network learns XOR.

Public API::

    from xorlab import TrainConfig, train, train_batch
    res = train(TrainConfig(lr=0.1, max_steps=1000, seed=0, init="notebook"))
"""

from xorlab.config import ConfigError, TrainConfig
from xorlab.engine import BatchResult, TrainResult, train, train_batch
from xorlab.inits import SCHEMES

__all__ = ["BatchResult", "ConfigError", "SCHEMES", "TrainConfig", "TrainResult", "train", "train_batch"]
__version__ = "0.1.0"
