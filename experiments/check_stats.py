"""Check that the statistics of the committed studies are unchanged: each study's ``stats.csv`` recomputed from its
store (``runs/<study>``, written by ``make experiments``) with the report's own reading path (only the columns it
uses, bootstraps in batches on every core) must equal the committed file: counts exactly, every other number to
1e-12 (relative) after both are read back (the file holds every float exactly).

    .venv/bin/python experiments/check_stats.py            # every study whose store exists; exit 1 on a difference
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from xorlab.analysis import maps, stats
from xorlab.report.builder import RUN_COLUMNS_USED
from xorlab.store.reader import load_runs

ROOT = Path(__file__).resolve().parents[1]


def recomputed(store: Path, reference: str | None = None) -> pd.DataFrame:
    runs = load_runs(store, columns=RUN_COLUMNS_USED).drop_duplicates("run_id")
    runs = stats.with_init_label(runs.sort_values("run_id", kind="stable", ignore_index=True))
    ref = stats.resolve_reference(runs["init_label"].unique(), reference) if reference else None
    table = stats.stats_table(runs, maps.default_by(runs), ref)
    with tempfile.TemporaryDirectory() as tmp:
        stats.write_csv(table, Path(tmp) / "stats.csv")
        return read(Path(tmp) / "stats.csv")


def stated_reference(report: Path) -> str | None:
    """The reference init a study's report names as given (``--reference``), or None for the default."""
    match = re.search(r"^- Reference init: \*\*(.+?)\*\* \(`--reference`\)", report.read_text(), re.M)
    return match[1] if match else None


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def differences(new: pd.DataFrame, old: pd.DataFrame) -> list[str]:
    """Columns where ``new`` and the committed ``old`` disagree: counts and text exactly; floats within 1e-12
    (relative), or, where the committed file holds 6 significant digits (written before stats.csv kept every float
    exactly), as the same 6-digit text."""
    if list(new.columns) != list(old.columns) or len(new) != len(old):
        return [f"shape or columns differ: {new.shape} vs {old.shape}"]
    out = []
    for col in old.columns:
        a, b = new[col], old[col]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            close = (np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= 1e-12 * np.maximum(1.0, np.abs(y)))
            six = np.array([f"{v:.6g}" for v in x]) == np.array([f"{v:.6g}" for v in y])
            same = close | six
        else:
            same = ((a.astype(str) == b.astype(str)).fillna(False) | (a.isna() & b.isna())).to_numpy(dtype=bool)
        if not same.all():
            out.append(f"{col}: {int((~same).sum())} rows differ")
    return out


def main() -> int:
    failed = checked = 0
    for csv in sorted((ROOT / "experiments").glob("*/report/stats.csv")):
        study = csv.parent.parent.name
        store = ROOT / "runs" / study
        if not store.exists():
            print(f"{study}: no store at runs/{study} (run `make experiments` first); skipped")
            continue
        diff = differences(recomputed(store, stated_reference(csv.parent / "report.md")), read(csv))
        checked += 1
        failed += bool(diff)
        print(f"{study}: " + ("stats.csv equal (counts exactly, numbers to 1e-12)" if not diff else "; ".join(diff)))
    print(f"{checked} studies checked, {failed} differ")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
