"""The store's on-disk format: Arrow schemas of runs and curves files and the metadata keys that tie a runs file
to its curves. Names, versions, liveness constants, ``StoreError`` and the manifest are in ``layout`` (light) and
re-exported here.
"""

from __future__ import annotations

import pyarrow as pa

from xorlab.store.layout import (  # noqa: F401  (re-exported: one definition, in layout)
    FILE_HASH,
    FORMAT,
    HEARTBEAT_EVERY,
    HEARTBEAT_TIMEOUT,
    MANIFEST,
    SAFE,
    STATUSES,
    TEMP_PREFIX,
    VERSION,
    StoreError,
    log,
    no_manifest,
    read_manifest,
)
from xorlab.store.records import RUN_DTYPES

_ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "list<float64>": pa.list_(pa.float64()),
}


def run_schema(dtypes: dict[str, str] = RUN_DTYPES) -> pa.Schema:
    """Arrow schema of a runs file from the run table's dtypes (``records.run_dtypes``, derived from TrainConfig)."""
    return pa.schema([(c, _ARROW[dtype]) for c, dtype in dtypes.items()])


RUN_COLUMNS = list(RUN_DTYPES)
RUN_SCHEMA = run_schema()
_PLAIN_STRINGS = {"run_id", "init", "rng", "activation", "status"}  # never null: kept as object columns, as always
CURVE_SCHEMA = pa.schema(
    [("run_id", pa.dictionary(pa.int32(), pa.string())), ("step", pa.int64()), ("loss", pa.float64())]
)

# Parquet key-value metadata of a runs file: what ties it to this store's chunk and curves file.
META_CHUNK = b"xorlab.chunk"
META_CURVES_SHA = b"xorlab.curves_sha256"


def named_columns(text: str | None) -> list[str]:
    """The run columns whose names appear as words in ``text`` (e.g. a ``--where`` query), in schema order: what a
    reader must load besides its own columns for the query to see every column it names."""
    import re

    words = set(re.findall(r"\w+", text or ""))
    return [c for c in RUN_SCHEMA.names if c in words]
