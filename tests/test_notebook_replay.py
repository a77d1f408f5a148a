"""The notebook replay (``experiments/notebook_replay/``): xorlab reproduces every number the notebook printed.

The printed numbers are parsed from the notebook text kept in the study folder, so the test needs nothing
outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from xorlab.core.config import TrainConfig
from xorlab.engine.batch import start_params, train

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "notebook_replay" / "xor_notebook.txt"
REPLAY = TrainConfig(lr=0.1, max_steps=1000, seed=1337, init="notebook", rng="legacy", rng_skip=144)

LOSS_LINE = re.compile(r"^(\d+)/1000: loss = (\d+\.\d{3})$", re.MULTILINE)
PRED_LINE = re.compile(r"^ ?\[?\[(\d\.\d+(?:e-?\d+)?)\]\]?$", re.MULTILINE)


@pytest.fixture(scope="module")
def printed() -> tuple[list[tuple[int, str]], list[str]]:
    text = NOTEBOOK.read_text()
    losses = [(int(step), value) for step, value in LOSS_LINE.findall(text)]
    preds = PRED_LINE.findall(text)
    return losses, preds


@pytest.fixture(scope="module")
def replay():
    return train(REPLAY)


def test_parsed_everything_printed(printed):
    """Guards the parser: all 43 complete loss lines (steps 0, 20, …, 840; the 860 line was cut off) and
    the 4 printed predictions."""
    losses, preds = printed
    assert len(losses) == 43 and [s for s, _ in losses] == list(range(0, 841, 20))
    assert len(preds) == 4


def test_printed_losses_reproduced(printed, replay):
    """Guards the replay: each printed ``f"{loss:.3f}"`` equals xorlab's loss at that step."""
    losses, _ = printed
    got = [(step, f"{replay.losses[step]:.3f}") for step, _ in losses]
    assert got == losses


def test_printed_predictions_reproduced(printed, replay):
    """Guards the replay: the final predictions, rounded to the 8 decimals numpy printed, are the notebook's."""
    _, preds = printed
    assert [round(float(p), 8) for p in replay.predictions] == [float(p) for p in preds]


def test_skip_is_twelve_earlier_nets():
    """Guards ``rng_skip=144``: the replay's start equals the 13th ``Net()`` drawn from the global stream after
    ``np.random.seed(1337)``, each ``Net()`` drawing ``randn(2,4)`` then ``randn(4,1)`` (global state restored)."""
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(1337)  # noqa: NPY002
        for _ in range(13):
            w1 = np.random.randn(2, 4) * np.sqrt(2) ** -1  # noqa: NPY002
            w2 = np.random.randn(4, 1) * 0.5  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    start = start_params(REPLAY)
    np.testing.assert_array_equal(start["w1"], w1)
    np.testing.assert_array_equal(start["w2"], w2)
