"""Benchmark: the engine that aggregates curves where they lie — DuckDB or pyarrow + numpy — side by side.

The question the report asks of the curves files: per group (init x lr) and logged step, the exact median loss and
the order statistics of its 95 % interval (ranks from the binomial distribution, a different rank for each group
size). Three ways, each in its own subprocess on the same store, timed with ``time.perf_counter`` and peak RSS:

- ``numpy``: ``xorlab.analysis.bands`` — pyarrow reads each chunk (next chunk read ahead), rows go to a disk spill
  as dense (runs x steps) blocks, then one ``np.sort`` per group and slab of steps; exact order statistics;
- ``duckdb-window``: one SQL query, ``row_number() OVER (PARTITION BY group, step ORDER BY loss)``, keeping the
  ranks near the middle; exact, and the only way SQL gives ranks that depend on each group's size;
- ``duckdb-list``: ``list_sort(list(loss))`` per group and step, then the median pair by index; exact.

DuckDB is not a dependency of xorlab; ``pip install duckdb`` to run its two sides (they are skipped without it).
Measured on 100,000 runs (10.1 M curve rows), load average ~8 on 2 cores: numpy 11.6 s / 495 MB, DuckDB window
78 s / 676 MB, DuckDB lists 25 s / 908 MB — hence ``xorlab.analysis.bands``.

    .venv/bin/python benchmarks/bench_aggregate.py STORE
"""

from __future__ import annotations

import os
import subprocess
import sys

MB = 1024.0

CHILD = r"""
import glob, sys, time, resource
import pyarrow as pa, pyarrow.parquet as pq
store, which = sys.argv[1], sys.argv[2]
runs = pa.concat_tables([pq.read_table(f, columns=["run_id", "lr", "init"])
                         for f in sorted(glob.glob(f"{store}/runs/*.parquet"))]).to_pandas()
runs["g"] = runs.groupby(["init", "lr"], sort=True).ngroup()
t = time.perf_counter()
if which == "numpy":
    from xorlab.analysis import bands
    from xorlab.store.scan import curve_tables
    out = bands.curve_bands(curve_tables(store, [store]), runs.assign(sweep=store), {"g": ["g"]})["g"]
else:
    import duckdb
    files = sorted(glob.glob(f"{store}/curves/*.parquet"))
    con = duckdb.connect()
    con.execute("SET threads=2")
    con.register("runmap", runs[["run_id", "g"]])
    src = (f"SELECT g, step, CASE WHEN isfinite(loss) THEN loss ELSE 'inf'::DOUBLE END AS v "
           f"FROM read_parquet({files!r}) JOIN runmap USING (run_id)")
    if which == "duckdb-window":
        q = (f"WITH c AS ({src}), r AS (SELECT g, step, v, row_number() OVER (PARTITION BY g, step ORDER BY v) AS k, "
             "count(*) OVER (PARTITION BY g, step) AS n FROM c) "
             "SELECT g, step, n, k, v FROM r WHERE abs(k - n / 2.0) <= sqrt(n) + 2")
    else:
        q = (f"WITH s AS (SELECT g, step, list_sort(list(v)) AS v FROM ({src}) GROUP BY g, step) "
             "SELECT g, step, len(v) AS n, (v[(len(v) + 1) // 2] + v[len(v) // 2 + 1]) / 2 AS med FROM s")
    out = con.execute(q).df()
print(f"{time.perf_counter() - t:.2f} {len(out)}")
"""


def main() -> None:
    store = sys.argv[1]
    print(f"store {store}; {os.cpu_count()} cores; load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    for which in ("numpy", "duckdb-window", "duckdb-list"):
        if which.startswith("duckdb"):
            try:
                import duckdb  # noqa: F401
            except ImportError:
                print(f"{which:14s} skipped (pip install duckdb)")
                continue
        proc = subprocess.Popen([sys.executable, "-c", CHILD, store, which], stdout=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read().split() if proc.stdout else []
        ok = os.waitstatus_to_exitcode(status) == 0 and out
        seconds = float(out[0]) if ok else float("nan")
        print(f"{which:14s} {seconds:8.1f} s aggregating, {usage.ru_maxrss / MB:6.0f} MB peak RSS")


if __name__ == "__main__":
    main()
