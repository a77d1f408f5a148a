"""The XOR data set, exactly as the notebook writes it.

Row order is the notebook's: inputs 00, 01, 10, 11. Every prediction array in xorlab uses this order.
"""

from __future__ import annotations

import numpy as np

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)  # (4, 2)
Y = np.array([0, 1, 1, 0], dtype=np.float64)  # (4,)  the notebook's y[:, 0]
POINT_LABELS = ("00", "01", "10", "11")
N_POINTS = len(POINT_LABELS)  # P in every shape comment

X.setflags(write=False)
Y.setflags(write=False)
