"""Reading a store a chunk at a time: each committed chunk's curves (or run columns) as an Arrow table, the next
chunk read by a background thread while the caller works on this one (pyarrow decodes without the GIL).

This is how the analysis reads stores out of core (``xorlab.analysis.bands``): never more than two chunks in
memory, only the columns asked for, and each curves file verified as ``read_curves_file`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from xorlab.store.reader import committed_chunks, named_stores, read_curves_file


def curve_tables(
    paths: str | Path | Iterable[str | Path], names: Sequence[str] | None = None, on_corrupt: str = "raise"
) -> Iterator[tuple[str, pa.Table]]:
    """``(sweep, curves table)`` of every committed chunk of the stores under ``paths``, in store then chunk order;
    ``sweep`` names the store as ``load_curves`` does (its path, or ``names[i]``). A damaged chunk raises
    ``StoreError`` (or, with ``on_corrupt="skip"``, is skipped with a logged warning)."""
    work = [(name, f) for store, name in named_stores(paths, names) for f in committed_chunks(store)]
    if not work:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(read_curves_file, work[0][1], on_corrupt)
        for i, (name, _) in enumerate(work):
            table = ahead.result()
            if i + 1 < len(work):
                ahead = pool.submit(read_curves_file, work[i + 1][1], on_corrupt)
            if table is not None:
                yield name, table
