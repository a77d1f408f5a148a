"""Tests for ``xorlab.engine.pipeline``: batches trained back to back come out in order and equal to ``train_batch`` of
each, whichever engine; a producer's ``None`` (it is about to wait) first flushes the batch in flight."""

from __future__ import annotations

import numpy as np
import pytest

from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.engine.pipeline import train_batches

BATCHES = [
    [TrainConfig(seed=s, lr=lr, max_steps=m) for s in range(k, k + 3) for lr in (0.5, 3.0) for m in (20, 40)]
    for k in range(0, 12, 3)
]
FIELDS = ("losses", "final_loss", "predictions", "steps_to_solve", "diverged_step", "loss_tail")


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_batches_come_out_in_order_and_equal_to_train_batch(engine):
    out = list(train_batches(((b, i) for i, b in enumerate(BATCHES)), log_every=3, engine=engine))
    assert [tag for tag, _ in out] == list(range(len(BATCHES)))
    for (_, got), configs in zip(out, BATCHES, strict=True):
        want = train_batch(configs, log_every=3, engine=engine)
        assert got.configs == configs and got.engine == want.engine
        for name in FIELDS:
            assert getattr(got, name).tobytes() == getattr(want, name).tobytes(), name


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_a_wait_marker_flushes_the_batch_in_flight(engine):
    seen = []

    def producer():
        yield BATCHES[0], 0
        yield BATCHES[1], 1
        seen.append("waiting")
        yield None  # before this returns, batches 0 and 1 must have come out
        yield BATCHES[2], 2

    events = []
    for item in train_batches(producer(), engine=engine):
        events.append(None if item is None else item[0])
        if item is None:
            assert events == [0, 1, None]
    assert events == [0, 1, None, 2] and seen == ["waiting"]


def test_closing_early_waits_for_the_kernel_and_trains_nothing_more():
    pulled = []

    def producer():
        for i, b in enumerate(BATCHES):
            pulled.append(i)
            yield b, i

    stream = train_batches(producer(), engine="compiled")
    tag, batch = next(stream)
    stream.close()  # as an exception or a stop signal in the consumer does
    assert tag == 0 and np.isfinite(batch.final_loss).all()
    assert pulled == [0, 1]  # one batch ahead, no more
