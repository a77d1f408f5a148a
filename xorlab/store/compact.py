"""Run tables held small: string columns as categoricals, frames stacked column by column, groups numbered
from the columns that tell them apart.

A million-run table spends most of its memory on strings that take a handful of values (``status``, ``engine``,
``mode`` …): as pandas categoricals they cost a byte or two a run instead of an Arrow string each. The values
are the same strings; only the dtype differs. ``run_id`` (every value distinct) stays a string column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

UNIQUE_STRINGS = {"run_id"}  # one value per run: a dictionary would only add an index to every value


def encode_strings(table: pa.Table) -> pa.Table:
    """``table`` with its string columns (but ``run_id``) dictionary-encoded: ``to_pandas`` makes them
    categoricals, and the plain strings are never materialised as Python or pandas strings."""
    for i, field in enumerate(table.schema):
        if field.name not in UNIQUE_STRINGS and pa.types.is_string(field.type):
            table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
    return table


def categorical(column: pd.Series) -> pd.Series:
    """``column`` as a categorical with the same values (missing stays missing)."""
    return column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")


def stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames one under another (a fresh index), built column by column: each column is removed from the
    inputs once stacked, so their memory is given back while the result grows and the peak is the inputs plus
    one column, not twice the inputs. The frames in ``frames`` are emptied: pass frames you own (a shallow copy
    is enough). Categoricals with different categories are stacked as one categorical over their union (the
    first frame's categories first); other columns as ``pd.concat`` stacks them."""
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    out: dict[str, pd.Series] = {}
    for c in columns:
        parts = [f[c] if c in f.columns else pd.Series(pd.NA, index=f.index) for f in frames]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            if len({p.cat.categories.dtype for p in parts}) > 1:  # e.g. strings, and none at all (all missing)
                parts = [p.astype(pd.CategoricalDtype(p.cat.categories.astype(object))) for p in parts]
            out[c] = pd.Series(pd.api.types.union_categoricals(parts), name=c)
        else:
            out[c] = pd.concat(parts, ignore_index=True)
        del parts
        for f in frames:
            if c in f.columns:
                del f[c]
    return pd.DataFrame(out, copy=False)


def group_numbers(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One number per row, equal exactly where every one of ``columns`` is (missing equal to missing), numbered by
    first appearance: ``frame.groupby(columns, dropna=False, sort=False).ngroup()``. A column with one value in
    every row cannot tell rows apart, so only the others are grouped on: a million runs' init schemes or
    configuration cells are found from two or three columns, not every one (each grouped column costs a
    hash table and codes the length of the frame)."""
    varying = [c for c in columns if frame[c].nunique(dropna=False) > 1]
    if not varying:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(varying, dropna=False, sort=False).ngroup().to_numpy()


def unique_sorted(frame: pd.DataFrame, key: Sequence[str]) -> pd.DataFrame:
    """``frame.drop_duplicates(key).sort_values(key, kind="stable", ignore_index=True)``, with the wide frame
    copied once at most: duplicates and order are found on the key columns alone, a leading key column of one
    value is no key, and a frame already in order is only renumbered."""
    key = [*(k for k in key[:-1] if frame[k].nunique(dropna=False) > 1), *key[-1:]]
    narrow = frame[key].reset_index(drop=True)
    keep = ~narrow.duplicated(key).to_numpy()
    if not keep.all():
        narrow = narrow[keep].reset_index(drop=True)
    if len(key) == 1 and narrow[key[0]].is_monotonic_increasing:
        order = np.arange(len(narrow))
    else:
        order = narrow.sort_values(key, kind="stable").index.to_numpy()
    rows = np.flatnonzero(keep)[order]
    if rows.size == len(frame) and (rows == np.arange(rows.size)).all():
        return frame.reset_index(drop=True)
    return frame.take(rows).reset_index(drop=True)
