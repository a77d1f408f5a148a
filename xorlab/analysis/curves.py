"""Where a report's curves and final parameters come from: a loaded frame, or the stores themselves, read out of
core (``xorlab.analysis.bands``) so that a million-run report never holds its curve table.

Both kinds answer the same three questions the figures ask: the median-loss bands of some groupings (one pass for
all of them), the curves of a few runs, and the final parameters of a few runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xorlab.analysis import bands, stats
from xorlab.store.format import CURVE_SCHEMA
from xorlab.store.reader import find_stores, load_curves, load_runs
from xorlab.store.records import PARAM_COLUMNS, WIDE_PARAMS
from xorlab.store.scan import curve_tables


class FrameCurves:
    """Curves of a loaded frame (``run_id, step, loss``); parameters from the run table itself."""

    def __init__(self, curves: pd.DataFrame) -> None:
        self.curves = curves.drop_duplicates(["run_id", "step"])  # a run recorded in several stores: one curve

    @property
    def units(self) -> int:
        return 1

    def bands(
        self,
        runs: pd.DataFrame,
        groupings: Mapping[str, Sequence[str]],
        progress: Callable[[], None] | None = None,
        lines: Sequence[str] = (),
    ) -> dict[str, pd.DataFrame]:
        out = {name: stats.curve_bands(self.curves, runs, by=list(by)) for name, by in groupings.items()}
        if progress is not None:
            progress()
        return out

    def lines(self, run_ids: Sequence[str]) -> pd.DataFrame:
        return self.curves[self.curves["run_id"].isin(set(run_ids))][["run_id", "step", "loss"]]

    def with_params(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows


class StoreCurves:
    """Curves and parameters read from the stores at ``paths`` when asked, named as ``xorlab-report`` names them:
    a path holding one store by the path as given, the stores under a folder by their own paths."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [str(p) for p in paths]
        named: list[tuple[str, str]] = []
        for path in self.paths:
            found = find_stores(path)
            named += [(str(s), path if len(found) == 1 else str(s)) for s in found]
        self.stores = [s for s, _ in named]
        self.names = [n for _, n in named]
        self.units_ = sum(len(list((Path(s) / "runs").glob("*.parquet"))) for s in self.stores)

    @property
    def units(self) -> int:
        """Chunk files a ``bands`` pass reads (for progress)."""
        return max(1, self.units_)

    def bands(
        self,
        runs: pd.DataFrame,
        groupings: Mapping[str, Sequence[str]],
        progress: Callable[[], None] | None = None,
        lines: Sequence[str] = (),
    ) -> dict[str, pd.DataFrame]:
        """The bands of ``groupings``; the curves of the runs ``lines`` are kept from the same pass over the
        curves files, so a later ``lines`` of those runs reads nothing again."""
        runs = runs if stats.SWEEP in runs.columns else runs.assign(sweep=self.names[0])
        wanted = pa.array(sorted({str(r) for r in lines}), pa.string())
        kept: list[pa.Table] = []

        def tables() -> Iterator[tuple[str, pa.Table]]:
            for name, table in curve_tables(self.stores, self.names):
                if len(wanted):
                    rows = _rows_of(table.column("run_id"), wanted)
                    if rows is not None:
                        kept.append(table.filter(rows))
                yield name, table

        out = bands.curve_bands(tables(), runs, groupings, progress=progress)
        if len(wanted):
            frame = (pa.concat_tables(kept) if kept else CURVE_SCHEMA.empty_table()).to_pandas()
            self._lines = (set(wanted.to_pylist()), frame)
        return out

    def lines(self, run_ids: Sequence[str]) -> pd.DataFrame:
        ids = {str(r) for r in run_ids}
        cached = getattr(self, "_lines", None)
        if cached is not None and ids <= cached[0]:  # kept by the bands' pass, in the order load_curves reads
            curves = cached[1][cached[1]["run_id"].astype(str).isin(ids)]
        else:
            curves = load_curves(self.stores, run_ids=run_ids, names=self.names)
        return curves.drop_duplicates(["run_id", "step"])[["run_id", "step", "loss"]]

    def with_params(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` with their final parameters (read for these runs only)."""
        wanted = [*PARAM_COLUMNS, WIDE_PARAMS]  # width 4, and any other width
        if set(wanted) <= set(rows.columns):
            return rows
        params = load_runs(self.stores, names=self.names, columns=wanted, run_ids=rows["run_id"].astype(str))
        params = params[["run_id", stats.SWEEP, *wanted]].astype({"run_id": str, stats.SWEEP: str})
        key = ["run_id", stats.SWEEP] if stats.SWEEP in rows.columns else ["run_id"]
        if key == ["run_id"]:
            params = params.drop(columns=stats.SWEEP).drop_duplicates("run_id")
        merged = rows.astype({k: str for k in key}).merge(params, on=key, how="left")
        merged.index = rows.index
        return merged


Curves = FrameCurves | StoreCurves


def _rows_of(run_id: pa.ChunkedArray, wanted: pa.Array) -> pa.ChunkedArray | None:
    """Boolean mask of the rows whose ``run_id`` is in ``wanted``, or None when there are none: looked up once per
    dictionary entry (a curves file's run ids are dictionary-encoded), not once per row."""
    parts = []
    for chunk in run_id.chunks:
        if isinstance(chunk, pa.DictionaryArray):
            found = pc.is_in(chunk.dictionary, value_set=wanted)
            parts.append(found.take(chunk.indices) if pc.any(found).as_py() else None)
        else:
            parts.append(pc.is_in(chunk, value_set=wanted))
    if all(p is None for p in parts):
        return None
    none = [pa.array(np.zeros(len(c), dtype=bool)) for c in run_id.chunks]
    return pa.chunked_array([n if p is None else p for n, p in zip(none, parts, strict=True)], pa.bool_())
