"""Two stores side by side, as frames: did a change (of code, threshold, grid …) change the results?

``compare(runs_a, runs_b)`` answers three questions, each as one tidy frame (one row per compared unit):

- ``cells``: per configuration cell present in both stores (every config field but ``seed``; the init scheme
  with its parameters as ``init_label``), each store's success rate with its Wilson 95 % interval and the
  difference B − A with Newcombe's hybrid-score interval (method 10: independent samples, built from the
  two Wilson intervals).
- ``same``: runs with the same ``run_id`` in both stores (same complete config), per cell: how many have an
  identical outcome (status, steps to solve, plateau, final loss and predictions bit for bit) and how many
  changed. With deterministic training, any change means the code that trained them changed the numbers.
- ``paired``: runs paired on ``seed`` and every config field the stores share, across the fields whose values
  do not overlap between the stores (e.g. ``loss_threshold`` 0.05 in A, 0.01 in B). Per pair group: both
  success rates on the pairs, the mean paired difference with a seeded percentile-bootstrap interval, the
  discordant pairs and McNemar's exact p (Benjamini–Hochberg adjusted over the groups). Seeds share their
  luck (the same initial weights), so this detects smaller differences than the unpaired cells.

``table`` stacks the three into the long frame written as ``compare.csv`` (column ``comparison``). The page,
its text and its figure are written by ``xorlab.report.compare``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats as sps

from xorlab.analysis import stats
from xorlab.store.compact import group_numbers, stack
from xorlab.store.records import FILE_HASH, INIT_COLUMNS, PRED_COLUMNS

KEY = ["init_label", *[c for c in stats.PAIR_COLUMNS if c != "seed"]]  # a configuration cell
OUTCOME = ["status", "steps_to_solve", "plateau", "final_loss", *PRED_COLUMNS]
SIDES = ("a", "b")
SIGNIFICANCE = 0.05


def value_text(v: object) -> str:
    """A config value as a report shows it (floats in their shortest form, missing as a dash)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Side:
    """What one store holds, as a comparison states it: config held fixed, swept axes, engines, code version."""

    name: str
    runs: int
    fixed: dict[str, str]  # config field -> its one value
    swept: dict[str, int]  # config field -> number of values
    engines: dict[str, int]  # engine -> runs
    code: str  # git commit (short) of the writers, or "unknown"

    def engine_text(self) -> str:
        return ", ".join(f"{e} ({k:,} run{'' if k == 1 else 's'})" for e, k in self.engines.items()) or "unknown"


def describe_side(runs: pd.DataFrame, name: str, code: str = "unknown", rows: np.ndarray | None = None) -> Side:
    """``Side`` of one store's labelled runs (``init_label`` present); with ``rows`` (a boolean mask), of those
    rows of ``runs``, read a column at a time (never a copy of the frame)."""

    def column(c: str) -> pd.Series:
        return runs[c] if rows is None else runs[c][rows]

    fixed, swept = {}, {}
    for c in ["init_label", *(c for c in stats.PAIR_COLUMNS if c in runs.columns)]:
        vals = stats.distinct_values(column(c))
        field = "init" if c == "init_label" else c
        if len(vals) == 1:
            fixed[field] = value_text(vals[0])
        else:
            swept[field] = len(vals)
    eng = column("engine").astype(object) if "engine" in runs else None
    engines = (
        {} if eng is None else {str(e): int(k) for e, k in eng.where(eng.notna(), "unknown").value_counts().items()}
    )
    n = len(runs) if rows is None else int(rows.sum())
    return Side(name, n, fixed, swept, engines, code)


@dataclass(frozen=True)
class Comparison:
    """The frames ``compare`` returns (see the module docstring) and what they were computed from."""

    names: tuple[str, str]
    n_runs: tuple[int, int]
    cells: pd.DataFrame
    only: tuple[int, int]  # cells found only in A, only in B
    same: pd.DataFrame
    paired: pd.DataFrame
    across: list[str]  # fields the paired comparison crosses (values disjoint between the stores)
    shown: list[str]  # key fields that vary anywhere: the ones tables show
    sides: tuple[Side, Side] | None = None  # what each store holds (config, engines, code)


def _labelled(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """Both run tables (``runs``: A then B) in one frame with ``side`` (a/b), ``init_label`` computed over both
    (so the same init gets the same label on both sides) and a boolean ``ok`` (solved).

    ``runs`` is emptied, and the tables are stacked column by column (``xorlab.store.compact.stack``) from
    shallow copies: frames no one else holds are freed as the table grows, never held twice; a caller's own
    frames are left as they were. The init columns, once labelled, are dropped."""
    sides = []
    for side in SIDES:
        frame = runs.pop(0).drop(columns=["init_label", stats.SWEEP], errors="ignore")  # the labels: over both stores
        if not frame["run_id"].is_unique:  # a run recorded twice (load_runs already keeps one): count it once
            frame = frame.drop_duplicates("run_id")
        frame["side"] = pd.Categorical.from_codes(np.zeros(len(frame), dtype=np.int8), [side])
        sides.append(frame)
    del frame
    both = stack(sides)
    del sides
    both["init_label"] = stats.init_labels(both)
    both = both.drop(columns=[c for c in ("init", *INIT_COLUMNS, FILE_HASH) if c in both.columns])
    both["ok"] = both["status"].eq("solved").to_numpy(dtype=bool)
    return both


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ci = [stats.wilson_interval(int(a), int(b)) for a, b in zip(k, n, strict=True)]
    return np.array([c[0] for c in ci], dtype=float), np.array([c[1] for c in ci], dtype=float)


def _first_rows(numbers: np.ndarray) -> pd.Series:
    """The first row holding each number (indexed by the number): a row to read a cell's field values from."""
    rows = np.flatnonzero(~pd.Series(numbers).duplicated().to_numpy())
    return pd.Series(rows, index=numbers[rows])


def cell_rates(both: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (side, cell): ``side, *KEY, n, solved, success_rate, success_lo, success_hi``, in
    the order of a groupby over ``side`` and ``KEY`` (sorted, missing last)."""
    cell = group_numbers(both, KEY)
    frame = pd.DataFrame({"side": both["side"], "_cell": cell, "ok": both["ok"]})
    g = frame.groupby(["side", "_cell"], sort=False)["ok"].agg(n="size", solved="sum").reset_index()
    del frame
    keys = both[KEY].iloc[_first_rows(cell).loc[g["_cell"]].to_numpy()].reset_index(drop=True)
    g = pd.concat([g[["side"]], keys, g[["n", "solved"]]], axis=1)
    g = g.sort_values(["side", *KEY], na_position="last", kind="stable", ignore_index=True)
    g["success_rate"] = g["solved"] / g["n"]
    g["success_lo"], g["success_hi"] = _wilson(g["solved"].to_numpy(), g["n"].to_numpy())
    return g


def newcombe(
    p_a: np.ndarray, lo_a: np.ndarray, hi_a: np.ndarray, p_b: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference ``p_b − p_a`` of independent proportions and its interval from the two Wilson intervals."""
    d = p_b - p_a
    return d, d - np.hypot(p_b - lo_b, hi_a - p_a), d + np.hypot(hi_b - p_b, p_a - lo_a)


def compare_cells(both: pd.DataFrame) -> tuple[pd.DataFrame, tuple[int, int]]:
    """One row per cell present in both stores; and the numbers of cells found in only one of them."""
    long = cell_rates(both)
    a = long[long["side"] == "a"].drop(columns="side")
    b = long[long["side"] == "b"].drop(columns="side")
    wide = a.merge(b, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only = (int((wide["_merge"] == "left_only").sum()), int((wide["_merge"] == "right_only").sum()))
    wide = stats.sort_groups(wide[wide["_merge"] == "both"].drop(columns="_merge"), KEY)
    for c in ("n", "solved"):
        for s in SIDES:
            wide[f"{c}_{s}"] = wide[f"{c}_{s}"].astype(np.int64)
    wide["diff"], wide["diff_lo"], wide["diff_hi"] = newcombe(
        *(
            wide[f"success_{q}_{s}" if q != "rate" else f"success_rate_{s}"].to_numpy(dtype=float)
            for s in SIDES
            for q in ("rate", "lo", "hi")
        )
    )
    return wide, only


def _bits_equal(x: pd.Series, y: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
        a = np.ascontiguousarray(x.to_numpy(dtype=np.float64)).view(np.uint64)
        b = np.ascontiguousarray(y.to_numpy(dtype=np.float64)).view(np.uint64)
        return a == b
    xa, ya = x.astype(object), y.astype(object)
    return ((xa == ya) | (xa.isna() & ya.isna())).to_numpy(dtype=bool)


SAME_COLUMNS = [
    "shared",
    "identical",
    "changed",
    "changed_engine",
    "changed_same_engine",
    "status_changed",
    "max_rel_diff",
]


def _rel_diff(x: pd.Series, y: pd.Series) -> np.ndarray:
    """|x − y| / max(|x|, |y|) per row (0 where equal, NaN where either is not finite)."""
    a, b = x.to_numpy(dtype=np.float64), y.to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.maximum(np.abs(a), np.abs(b))
        out = np.where(a == b, 0.0, np.abs(a - b) / scale)
    return np.where(np.isfinite(a) & np.isfinite(b), out, np.nan)


def _codes(column: pd.Series) -> np.ndarray:
    """Values as numbers that are equal exactly where ``_bits_equal`` calls two values equal: a float's bits, else
    a code per distinct value (missing values share one code)."""
    if pd.api.types.is_float_dtype(column):
        return np.ascontiguousarray(column.to_numpy(dtype=np.float64)).view(np.uint64)
    return pd.factorize(column, use_na_sentinel=True)[0]


def same_runs(both: pd.DataFrame) -> pd.DataFrame:
    """Per cell, runs recorded in both stores (same ``run_id``): ``shared, identical, changed`` and the changed
    runs split by who trained them: ``changed_engine`` (different engines: floating-point order, expected),
    ``changed_same_engine`` (the same engine: the code changed the numbers); ``status_changed``; and
    ``max_rel_diff``, the largest relative difference of final loss and predictions over the changed runs.

    The runs are matched by id with one hash lookup (in Arrow) and compared column by column as arrays (no joined
    frame)."""
    outcome = [c for c in OUTCOME + ["mode"] if c in both.columns]
    in_a = (both["side"] == "a").to_numpy()
    ids = pa.array(both["run_id"])  # Arrow strings: no Python string per run (each side's ids are unique)
    at_b = pc.index_in(ids.filter(in_a), value_set=ids.filter(~in_a)).fill_null(-1).to_numpy()
    del ids
    rows_a, rows_b = np.flatnonzero(in_a)[at_b >= 0], np.flatnonzero(~in_a)[at_b[at_b >= 0]]
    if not rows_a.size:
        return pd.DataFrame(columns=[*KEY, *SAME_COLUMNS])

    def equal(c: str) -> np.ndarray:
        code = _codes(both[c])
        return code[rows_a] == code[rows_b]

    same = np.ones(rows_a.size, dtype=bool)
    for c in outcome:
        same &= equal(c)
    other_engine = ~equal("engine") if "engine" in both.columns else np.zeros(rows_a.size, dtype=bool)
    floats = [both[c].to_numpy(dtype=np.float64) for c in ["final_loss", *PRED_COLUMNS]]
    rel = np.fmax.reduce([_rel_diff(pd.Series(f[rows_a]), pd.Series(f[rows_b])) for f in floats])
    cell = group_numbers(both, KEY)
    m = pd.DataFrame(
        {
            "cell": cell[rows_a],
            "identical": same,
            "status_changed": ~equal("status"),
            "changed_engine": ~same & other_engine,
            "changed_same_engine": ~same & ~other_engine,
            "rel": np.where(same, 0.0, rel),
        }
    )
    g = m.groupby("cell", sort=True).agg(
        shared=("identical", "size"),
        identical=("identical", "sum"),
        status_changed=("status_changed", "sum"),
        changed_engine=("changed_engine", "sum"),
        changed_same_engine=("changed_same_engine", "sum"),
        max_rel_diff=("rel", "max"),
    )
    g["changed"] = g["shared"] - g["identical"]
    keys = both[KEY].iloc[_first_rows(cell).loc[g.index].to_numpy()].reset_index(drop=True)  # each cell's values
    out = pd.concat([keys, g.reset_index(drop=True)[SAME_COLUMNS]], axis=1)
    return stats.sort_groups(out.astype({c: np.int64 for c in SAME_COLUMNS if c != "max_rel_diff"}), KEY)


def across_fields(both: pd.DataFrame) -> list[str]:
    """Key fields whose values in A and B do not overlap: what a seed-paired comparison compares across."""
    out = []
    for c in KEY:
        va = set(pd.Series(both.loc[both["side"] == "a", c].unique()).astype(object).fillna("<NA>"))
        vb = set(pd.Series(both.loc[both["side"] == "b", c].unique()).astype(object).fillna("<NA>"))
        if va and vb and not va & vb:
            out.append(c)
    return out


def seed_pairs(both: pd.DataFrame, across: Sequence[str]) -> pd.DataFrame:
    """Runs of A and B paired on ``seed`` and every key field not in ``across``; one row per pair group."""
    common = [c for c in KEY if c not in across]
    # The common fields as one number per run (equal exactly where every common field is, missing included;
    # fields with one value everywhere cannot split a pair): the pairing works on a few narrow columns.
    cell = group_numbers(both, common)
    values = {int(n): [both[c].iloc[i] for c in common] for n, i in _first_rows(cell).items()}  # fields of each
    narrow = pd.DataFrame({"_cell": cell, "seed": both["seed"].to_numpy(), **{c: both[c] for c in across}})
    narrow["ok"] = both["ok"].to_numpy()
    in_a = (both["side"] == "a").to_numpy()
    a = narrow[in_a].drop_duplicates(["_cell", "seed", *across])
    b = narrow[~in_a].drop_duplicates(["_cell", "seed", *across])
    del narrow
    m = a.merge(b, on=["_cell", "seed"], suffixes=("_a", "_b"))
    groups = [*common, *(f"{c}_{s}" for c in across for s in SIDES)]
    # pairs in seed order within each group: the bootstrap resamples positions, so its interval must not depend on
    # the order the stores happen to hold their runs in
    m = m.sort_values(["_cell", *groups[len(common) :], "seed"], kind="stable", ignore_index=True)
    cols = [
        *groups,
        "n_pairs",
        "success_rate_a",
        "success_rate_b",
        "paired_diff",
        "paired_lo",
        "paired_hi",
        "only_a_solved",
        "only_b_solved",
        "mcnemar_p",
        "mcnemar_p_bh",
    ]
    rows = []
    across_ab = groups[len(common) :]
    for key, sub in m.groupby(["_cell", *across_ab], dropna=False, sort=True) if len(m) else []:
        ok_a, ok_b = sub["ok_a"].to_numpy(dtype=np.int64), sub["ok_b"].to_numpy(dtype=np.int64)
        d = ok_b - ok_a
        _, lo, hi = stats.paired_diff(d, stats.N_BOOT, stats.BOOT_SEED)  # the report's own bootstrap
        only_b, only_a = int((d == 1).sum()), int((d == -1).sum())
        p = sps.binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        rows.append(
            {
                **dict(zip(groups, [*values[int(key[0])], *key[1:]], strict=True)),
                "n_pairs": len(d),
                "success_rate_a": ok_a.mean(),
                "success_rate_b": ok_b.mean(),
                "paired_diff": d.mean(),
                "paired_lo": lo,
                "paired_hi": hi,
                "only_a_solved": only_a,
                "only_b_solved": only_b,
                "mcnemar_p": float(p),
            }
        )
    out = stats.sort_groups(pd.DataFrame(rows, columns=cols), groups)
    if len(out):
        out["mcnemar_p_bh"] = sps.false_discovery_control(out["mcnemar_p"].to_numpy(dtype=float), method="bh")
    return out


def compare(
    runs_a: pd.DataFrame,
    runs_b: pd.DataFrame,
    names: tuple[str, str] = ("A", "B"),
    code: tuple[str, str] = ("unknown", "unknown"),
) -> Comparison:
    """Compare two run tables (``load_runs`` of each store); see the module docstring. ``code`` names the code
    version (git commit) that wrote each store, for the comparison's statement of what differs."""
    if runs_a.empty or runs_b.empty:
        raise ValueError(f"{names[0] if runs_a.empty else names[1]}: no runs recorded")
    frames = [runs_a, runs_b]
    del runs_a, runs_b  # a caller that handed its frames over (``xorlab-runs compare``) frees them as they stack
    both = _labelled(frames)
    cells, only = compare_cells(both)
    across = across_fields(both)
    shown = [c for c in KEY if both[c].nunique(dropna=False) > 1]
    return Comparison(
        names=(str(names[0]), str(names[1])),
        n_runs=(int((both["side"] == "a").sum()), int((both["side"] == "b").sum())),
        cells=cells,
        only=only,
        same=same_runs(both),
        paired=seed_pairs(both, across),
        across=across,
        shown=shown,
        sides=(
            describe_side(both, str(names[0]), code[0], rows=(both["side"] == "a").to_numpy()),
            describe_side(both, str(names[1]), code[1], rows=(both["side"] == "b").to_numpy()),
        ),
    )


def table(result: Comparison) -> pd.DataFrame:
    """The three frames stacked long (``comparison`` = cell | same_runs | paired), as written to compare.csv."""
    parts = [
        result.cells.assign(comparison="cell"),
        result.same.assign(comparison="same_runs"),
        result.paired.assign(comparison="paired"),
    ]
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if out is None:
        return pd.DataFrame(columns=["comparison", *KEY])
    return out[["comparison", *[c for c in out.columns if c != "comparison"]]]
