"""Train a stream of batches with the compiled kernel overlapping the Python work around it.

``train_batch`` is three steps: ``prepare`` (lanes, init draws), ``run`` (the simulation) and ``result``
(outcomes, failure modes). The compiled kernel releases the GIL, so while it simulates batch k on every core,
the calling thread can draw batch k+1's starting parameters and compute batch k-1's outcomes. ``train_batches``
does exactly that with one kernel thread: the kernel runs batches one at a time and back to back, and each
batch comes out in order, identical to ``train_batch`` of it (``tests/test_pipeline.py``). With the numpy
engine, which holds the GIL, batches are simply trained one after another in the calling thread (so a stop
signal interrupts the numpy step loop at once, as before).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from xorlab.core.config import TrainConfig
from xorlab.engine.batch import Prepared, prepare, simulator, train_batch
from xorlab.engine.results import BatchResult

Tag = TypeVar("Tag")


def train_batches(
    batches: Iterable[tuple[Sequence[TrainConfig], Tag] | None], log_every: int = 1, engine: str = "numpy"
) -> Iterator[tuple[Tag, BatchResult] | None]:
    """``(tag, train_batch(configs))`` for each ``(configs, tag)`` of ``batches``, in order.

    The next batch is taken from ``batches`` (and prepared) while the current one simulates. A ``None`` in
    ``batches`` says the producer is about to wait (e.g. for work other writers hold): the batch in flight is
    finished and yielded first, then ``None`` is passed on, so the consumer can commit it and release what it
    holds. Closing the iterator early (an exception in the consumer, a stop signal) waits for the kernel
    running at the time.
    """
    used, _ = simulator(engine)
    if used != "compiled":
        for item in batches:
            yield None if item is None else (item[1], train_batch(item[0], log_every=log_every, engine=engine))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xorlab-kernel") as kernel:
        running: tuple[Tag, Prepared, Future[Any]] | None = None
        for item in batches:
            if item is None:  # the producer waits: nothing may stay in flight meanwhile
                if running is not None:
                    yield running[0], running[1].result(*running[2].result())
                    running = None
                yield None
                continue
            configs, tag = item
            batch = prepare(configs, log_every=log_every, engine=engine)  # while the kernel runs the previous one
            done: Any = None if running is None else running[2].result()
            simulating = kernel.submit(batch.run)
            if running is not None:
                yield running[0], running[1].result(*done)  # outcomes while the kernel runs this one
            running = (tag, batch, simulating)
        if running is not None:
            yield running[0], running[1].result(*running[2].result())
