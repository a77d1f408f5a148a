"""Which conditions a report's figures draw side by side: one panel per learning rate, as always, or, when a study
also sweeps a few values of other axes (width, activation, a per-layer rate, …), one panel per combination.

Panels are in the study's own order: rows by the categorical and slower axes, then by lr; columns by width
(ascending), so a 7-width × 2-activation × 2-lr study reads as four rows of widths. An axis with more than
``MAX_VALUES`` values (a continuous map) is pooled, as before, and said so in the report's header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from xorlab.core.activations import NAMES as ACTIVATION_NAMES

#: Axes that get their own panels when swept, slowest first (the last one varies along a row).
PANEL_AXES = ("rng", "rng_skip", "loss_threshold", "lr_hidden", "lr_output", "activation", "lr", "width")
MAX_VALUES = 8  # an axis with more values than this is pooled (continuous maps have their own figures)
MAX_COLUMNS = 8


@dataclass(frozen=True)
class Panels:
    """How figures facet: by ``column`` of the runs (``lr``, or ``panel``: a code per condition, in order)."""

    column: str = "lr"
    titles: dict | None = None  # panel code -> title; None: the lr value itself
    ncols: int = 3
    axes: tuple[str, ...] = ("lr",)  # the swept axes the panels separate
    combos: pd.DataFrame | None = None  # one row per panel: its axes' values, in panel order (index = code)

    def tag(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (grouped by at least ``axes``) with its ``panel`` code column; as it is for lr panels."""
        if self.combos is None:
            return frame
        code = self.combos.reset_index().merge(frame[list(self.axes)], on=list(self.axes), how="right")["index"]
        return frame.assign(panel=code.to_numpy())

    def title(self, value) -> str:
        return self.titles[value] if self.titles is not None else f"lr = {value:g}"

    def tick(self, value) -> str:
        """The short label of a panel's condition on a categorical axis (a heatmap column, a bar)."""
        return self.titles[value] if self.titles is not None else f"{value:g}"

    @property
    def label(self) -> str:
        return "learning rate lr" if self.titles is None else "condition (" + ", ".join(self.axes) + ")"


LR = Panels()


def _sort_key(axis: str, values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):  # sorted by value, not by the order of its categories
        values = values.astype(object)
    if axis == "activation":  # the package's order: tanh (the notebook's) first
        return values.map({a: i for i, a in enumerate(ACTIVATION_NAMES)}).fillna(len(ACTIVATION_NAMES))
    return values


def _text(axis: str, value) -> str:
    if axis == "activation":
        return str(value)
    if axis == "lr":
        return f"lr = {value:g}"
    return f"{axis} {value:g}" if isinstance(value, float) else f"{axis} {value}"


def panels(runs: pd.DataFrame) -> tuple[pd.DataFrame, Panels]:
    """``runs`` with a ``panel`` code column and its ``Panels``, or ``runs`` and ``LR`` when only lr is swept
    (among the axes with at most ``MAX_VALUES`` values). Group by ``["init_label", *panels.axes]`` and ``tag``
    the groups' frames to facet them."""
    axes = panel_axes(runs)
    if not axes:
        return runs, LR
    swept = set(axes)
    combos = runs[axes].drop_duplicates()
    combos = combos.sort_values(axes, key=lambda c: _sort_key(str(c.name), c), ignore_index=True)
    titles = {i: ", ".join(_text(a, row[a]) for a in axes) for i, row in combos.iterrows()}
    ncols = min(MAX_COLUMNS, runs["width"].nunique()) if "width" in swept else 3
    out = Panels("panel", titles, ncols, tuple(axes), combos)
    return out.tag(runs), out


def panel_axes(runs: pd.DataFrame) -> list[str]:
    """The axes the figures' panels separate (lr among them), in ``PANEL_AXES`` order; [] when that is lr alone."""
    swept = [a for a in PANEL_AXES if a in runs.columns and 1 < runs[a].nunique() <= MAX_VALUES]
    if set(swept) <= {"lr"}:
        return []
    return [a for a in PANEL_AXES if a in swept or (a == "lr" and "lr" in runs.columns)]


def pooled_axes(swept: Sequence[str], runs: pd.DataFrame) -> list[str]:
    """Of the swept axes (not seed, not init), those the figures pool over: every one their panels do not
    separate (lr never is pooled)."""
    separate = panel_axes(runs) or ["lr"]
    return [a for a in swept if a not in separate]


def conditioned(caption: str, axes: Sequence[str]) -> str:
    """A figure caption written for lr panels, said of panels per condition (``axes``) instead."""
    what = f"condition ({', '.join(axes)})"
    return caption.replace("per learning rate", f"per {what}").replace("and learning rate", f"and {what}")
