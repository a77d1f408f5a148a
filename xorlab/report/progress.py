"""Progress of a long report: one tqdm bar over its stages (reading, statistics, figures, pages) with an ETA.

Each stage declares how many units of work it has (curve files read, groups computed, figures drawn) and a weight
(its expected share of the time), so the bar moves evenly enough for tqdm's ETA to mean something. The bar is
written to stderr only when stderr is a terminal (``enabled=None``), and it is closed before anything else is
printed, so it never interleaves with other notices; ``note`` prints a line above it instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

from tqdm import tqdm

SCALE = 1000  # bar units per unit of weight: fine enough for small stages


class Progress:
    """Stages with weights; ``advance(k)`` moves the current stage by k of its units."""

    def __init__(self, weights: Mapping[str, float], enabled: bool | None = None, desc: str = "xorlab-report") -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        total = sum(weights.values())
        self.weights = {k: w / total for k, w in weights.items()} if total else dict(weights)
        self.bar: Any = tqdm(
            total=SCALE,
            disable=not enabled,
            desc=desc,
            unit="%",
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        )
        self.done = 0.0
        self.lock = threading.Lock()
        self.stage: str | None = None
        self.units = 1
        self.left = 0.0

    def start(self, stage: str, units: int = 1) -> None:
        """Begin ``stage`` (finishing the previous one) with ``units`` steps of work."""
        with self.lock:
            self._finish_stage()
            self.stage, self.units = stage, max(1, int(units))
            self.left = self.weights.get(stage, 0.0)
            self.bar.set_description_str(f"xorlab-report: {stage}")

    def advance(self, k: int = 1) -> None:
        """``k`` more units of the current stage are done (from any thread: a stage's work may run on several)."""
        with self.lock:
            if self.stage is None:
                return
            step = min(self.left, self.weights.get(self.stage, 0.0) * k / self.units)
            self.left -= step
            self._move(step)

    def _move(self, fraction: float) -> None:
        new = self.done + fraction
        delta = round(new * SCALE) - round(self.done * SCALE)
        self.done = new
        if delta > 0:
            self.bar.update(delta)

    def _finish_stage(self) -> None:
        if self.stage is not None and self.left > 0:
            self._move(self.left)
            self.left = 0.0

    def note(self, text: str) -> None:
        """Print a line without breaking the bar."""
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self._finish_stage()
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Quiet(Progress):
    """No bar at all (a library call)."""

    def __init__(self) -> None:
        super().__init__({}, enabled=False)
