"""Two stores side by side: did a change (of code, threshold, grid …) change the results?

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

``table`` stacks the three into the long frame written as ``compare.csv`` (column ``comparison``); ``write``
writes ``compare.csv``, ``compare.md``, ``compare.html`` (self-contained) and ``compare.png`` into a folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from xorlab.analysis import stats
from xorlab.core.order import ordered
from xorlab.report import pages
from xorlab.store.records import PRED_COLUMNS

KEY = ["init_label", *[c for c in stats.PAIR_COLUMNS if c != "seed"]]  # a configuration cell
OUTCOME = ["status", "steps_to_solve", "plateau", "final_loss", *PRED_COLUMNS]
SIDES = ("a", "b")
SIGNIFICANCE = 0.05


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


def describe_side(runs: pd.DataFrame, name: str, code: str = "unknown") -> Side:
    """``Side`` of one store's labelled runs (``init_label`` present)."""
    fixed, swept = {}, {}
    for c in ["init_label", *stats.PAIR_COLUMNS]:
        vals = ordered(runs[c].astype(object).where(runs[c].notna(), None).unique())
        field = "init" if c == "init_label" else c
        if len(vals) == 1:
            fixed[field] = _value(vals[0])
        else:
            swept[field] = len(vals)
    eng = runs["engine"].astype(object).where(runs["engine"].notna(), "unknown") if "engine" in runs else None
    engines = {} if eng is None else {str(e): int(k) for e, k in eng.value_counts().items()}
    return Side(name, len(runs), fixed, swept, engines, code)


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


def _labelled(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> pd.DataFrame:
    """Both run tables in one frame with ``side`` (a/b), ``init_label`` computed over both (so the same init
    gets the same label on both sides) and a boolean ``ok`` (solved)."""
    both = pd.concat([runs_a.assign(side="a"), runs_b.assign(side="b")], ignore_index=True)
    both = both.drop(columns=["init_label"], errors="ignore").drop_duplicates(["side", "run_id"], ignore_index=True)
    both["init_label"] = stats.init_labels(both)
    return both.assign(ok=both["status"].eq("solved").to_numpy(dtype=bool))


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ci = [stats.wilson_interval(int(a), int(b)) for a, b in zip(k, n, strict=True)]
    return np.array([c[0] for c in ci], dtype=float), np.array([c[1] for c in ci], dtype=float)


def cell_rates(both: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per (side, cell): ``side, *KEY, n, solved, success_rate, success_lo, success_hi``."""
    g = both.groupby(["side", *KEY], dropna=False, sort=True)["ok"].agg(n="size", solved="sum").reset_index()
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


def same_runs(both: pd.DataFrame) -> pd.DataFrame:
    """Per cell, runs recorded in both stores (same ``run_id``): ``shared, identical, changed`` and the changed
    runs split by who trained them: ``changed_engine`` (different engines: floating-point order, expected),
    ``changed_same_engine`` (the same engine: the code changed the numbers); ``status_changed``; and
    ``max_rel_diff``, the largest relative difference of final loss and predictions over the changed runs."""
    outcome = [c for c in OUTCOME + ["mode"] if c in both.columns]
    engine = ["engine"] if "engine" in both.columns else []
    a = both.loc[both["side"] == "a", ["run_id", *KEY, *outcome, *engine]]
    b = both.loc[both["side"] == "b", ["run_id", *outcome, *engine]]
    m = a.merge(b, on="run_id", suffixes=("_a", "_b"))
    if m.empty:
        return pd.DataFrame(columns=[*KEY, *SAME_COLUMNS])
    same = np.ones(len(m), dtype=bool)
    for c in outcome:
        same &= _bits_equal(m[f"{c}_a"], m[f"{c}_b"])
    m["identical"] = same
    m["status_changed"] = ~_bits_equal(m["status_a"], m["status_b"])
    other_engine = ~_bits_equal(m["engine_a"], m["engine_b"]) if engine else np.zeros(len(m), dtype=bool)
    m["changed_engine"] = ~same & other_engine
    m["changed_same_engine"] = ~same & ~other_engine
    rel = np.fmax.reduce([_rel_diff(m[f"{c}_a"], m[f"{c}_b"]) for c in ["final_loss", *PRED_COLUMNS]])
    m["rel"] = np.where(same, 0.0, rel)
    g = m.groupby(KEY, dropna=False, sort=True).agg(
        shared=("run_id", "size"),
        identical=("identical", "sum"),
        status_changed=("status_changed", "sum"),
        changed_engine=("changed_engine", "sum"),
        changed_same_engine=("changed_same_engine", "sum"),
        max_rel_diff=("rel", "max"),
    )
    g["changed"] = g["shared"] - g["identical"]
    out = g.reset_index()[[*KEY, *SAME_COLUMNS]]
    return stats.sort_groups(out.astype({c: np.int64 for c in SAME_COLUMNS if c != "max_rel_diff"}), KEY)


def across_fields(both: pd.DataFrame) -> list[str]:
    """Key fields whose values in A and B do not overlap: what a seed-paired comparison compares across."""
    out = []
    for c in KEY:
        va = set(both.loc[both["side"] == "a", c].astype(object).fillna("<NA>"))
        vb = set(both.loc[both["side"] == "b", c].astype(object).fillna("<NA>"))
        if va and vb and not va & vb:
            out.append(c)
    return out


def _paired_interval(d: np.ndarray, seed: int = stats.BOOT_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference (seeded: same data, same interval)."""
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = sps.bootstrap(
        (d,),
        np.mean,
        n_resamples=stats.N_BOOT,
        method="percentile",
        confidence_level=stats.CONFIDENCE,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def seed_pairs(both: pd.DataFrame, across: Sequence[str]) -> pd.DataFrame:
    """Runs of A and B paired on ``seed`` and every key field not in ``across``; one row per pair group."""
    common = [c for c in KEY if c not in across]
    keep = [*common, "seed", *across, "ok"]
    a = both.loc[both["side"] == "a", keep].drop_duplicates([*common, "seed", *across])
    b = both.loc[both["side"] == "b", keep].drop_duplicates([*common, "seed", *across])
    m = a.merge(b, on=[*common, "seed"], suffixes=("_a", "_b"))
    groups = [*common, *(f"{c}_{s}" for c in across for s in SIDES)]
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
    for key, sub in m.groupby(groups, dropna=False, sort=True) if len(m) else []:
        ok_a, ok_b = sub["ok_a"].to_numpy(dtype=np.int64), sub["ok_b"].to_numpy(dtype=np.int64)
        d = ok_b - ok_a
        lo, hi = _paired_interval(d)
        only_b, only_a = int((d == 1).sum()), int((d == -1).sum())
        p = sps.binomtest(only_b, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        rows.append(
            {
                **dict(zip(groups, key, strict=True)),
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
    both = _labelled(runs_a, runs_b)
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
            describe_side(both[both["side"] == "a"], str(names[0]), code[0]),
            describe_side(both[both["side"] == "b"], str(names[1]), code[1]),
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


# ----------------------------------------------------------------------------------------------- text
def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _significant_cells(result: Comparison) -> int:
    c = result.cells
    return int(((c["diff_lo"] > 0) | (c["diff_hi"] < 0)).sum()) if len(c) else 0


def _across_text(result: Comparison, row: pd.Series | None = None) -> str:
    if not result.across:
        return "same configuration"
    if row is None:
        return "across " + ", ".join(f"`{c}`" for c in result.across)
    return ", ".join(f"{c} {_value(row[f'{c}_a'])} → {_value(row[f'{c}_b'])}" for c in result.across)


def differs_lines(result: Comparison) -> list[str]:
    """What differs between the stores before any number: configuration, engine, code version."""
    if result.sides is None:
        return []
    a, b = result.sides
    fields = list(dict.fromkeys([*a.fixed, *a.swept, *b.fixed, *b.swept]))
    config = []
    for f in fields:
        va = a.fixed.get(f, f"{a.swept.get(f, 0)} values")
        vb = b.fixed.get(f, f"{b.swept.get(f, 0)} values")
        if va != vb:
            config.append(f"{f} {va} → {vb}")
    same_fixed = [f"{f}={v}" for f, v in a.fixed.items() if b.fixed.get(f) == v]
    out = [
        "configuration: "
        + ("; ".join(config) if config else "the same fields and values")
        + (f" (both: {' '.join(same_fixed)})" if same_fixed else ""),
        f"engine: A {a.engine_text()}; B {b.engine_text()}"
        + (" (the same)" if a.engines.keys() == b.engines.keys() else " (different engines)"),
        f"code: A {a.code}; B {b.code}" + (" (the same)" if a.code == b.code and a.code != "unknown" else ""),
    ]
    return out


def _same_line(result: Comparison) -> str:
    s = result.same
    if not len(s):
        return "same runs: no run_id is recorded in both stores"
    shared, changed, flipped = int(s["shared"].sum()), int(s["changed"].sum()), int(s["status_changed"].sum())
    head = f"same runs: {shared:,} run_ids in both; {shared - changed:,} identical outcomes, {changed:,} changed"
    if not changed:
        return head + " (identical: bit for bit)"
    by_engine, same_engine = int(s["changed_engine"].sum()), int(s["changed_same_engine"].sum())
    worst = float(s["max_rel_diff"].max())
    parts = []
    if by_engine:
        parts.append(
            f"{by_engine:,} differ between runs trained by different engines (largest relative difference of final "
            f"loss and predictions {worst:.2g}): the engines add in different orders, so these differences are "
            "expected and say nothing about the code"
        )
    if same_engine:
        a, b = result.sides if result.sides is not None else (None, None)
        code = f" ({a.code} → {b.code})" if a is not None and b is not None else ""
        parts.append(f"{same_engine:,} differ under the same engine: the code changed the numbers{code}")
    return f"{head}: " + "; ".join(parts) + f"; {flipped:,} with a different status"


def summary_lines(result: Comparison) -> list[str]:
    """Three lines: the cells, the shared runs, the seed pairs (``differs_lines`` says what differs first)."""
    (na, nb), c = result.names, result.cells
    line1 = f"cells: {na} has {result.n_runs[0]:,} runs, {nb} {result.n_runs[1]:,}; "
    if len(c):
        line1 += (
            f"{len(c)} configurations in both, success rate differs in {_significant_cells(result)} "
            "(95 % CI of B − A excludes 0)"
        )
    else:
        line1 += "no configuration is in both"
    if result.only != (0, 0):
        line1 += f"; {result.only[0]} only in {na}, {result.only[1]} only in {nb}"
    line2 = _same_line(result)
    p = result.paired
    if len(p):
        n = int(p["n_pairs"].sum())
        rate_a = float((p["success_rate_a"] * p["n_pairs"]).sum() / n)
        rate_b = float((p["success_rate_b"] * p["n_pairs"]).sum() / n)
        sig = int((p["mcnemar_p_bh"] < SIGNIFICANCE).sum())
        line3 = (
            f"seed-paired ({_across_text(result).replace('`', '')}): {n:,} pairs in {len(p)} groups, success "
            f"{_pct(rate_a)} % in {na} vs {_pct(rate_b)} % in {nb}; {sig} groups differ (McNemar, BH p < "
            f"{SIGNIFICANCE})"
        )
    else:
        line3 = "seed-paired: no runs share a seed and the other config fields"
    return [line1, line2, line3]


def _cell_columns(frame: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for f in fields:
        out[f.replace("init_label", "init")] = [_value(v) for v in frame[f]]
    return out


def _ci(p: float, lo: float, hi: float) -> str:
    return f"{_pct(p)} [{_pct(lo)}, {_pct(hi)}]"


def document(result: Comparison, figure: str | None) -> list[tuple]:
    """The comparison as ``xorlab.report.pages`` blocks."""
    (na, nb) = result.names
    blocks: list[tuple] = [("h1", "xorlab store comparison")]
    blocks.append(("p", f"A = `{na}` ({result.n_runs[0]:,} runs); B = `{nb}` ({result.n_runs[1]:,} runs)."))
    blocks += [("h2", "What differs"), ("ul", differs_lines(result))]
    blocks += [("h2", "Summary"), ("ul", summary_lines(result))]
    if figure:
        blocks.append(("figure", figure, figure_caption(result)))
    fields = result.shown or ["init_label"]
    blocks.append(("h2", "Success rate per configuration"))
    c = result.cells
    if len(c):
        t = _cell_columns(c, fields)
        t["n A"], t["n B"] = c["n_a"].astype(str), c["n_b"].astype(str)
        t["solved % A [95% CI]"] = [_ci(*r) for r in c[["success_rate_a", "success_lo_a", "success_hi_a"]].to_numpy()]
        t["solved % B [95% CI]"] = [_ci(*r) for r in c[["success_rate_b", "success_lo_b", "success_hi_b"]].to_numpy()]
        t["B − A, pts [95% CI]"] = [
            f"{_pts(d)} [{_pts(lo)}, {_pts(hi)}]" for d, lo, hi in c[["diff", "diff_lo", "diff_hi"]].to_numpy()
        ]
        blocks.append(("table", t.reset_index(drop=True)))
        blocks.append(
            (
                "p",
                "Wilson 95 % intervals per store; the difference's interval is Newcombe's hybrid score "
                "interval for independent samples.",
            )
        )
    else:
        blocks.append(("p", "No configuration cell is present in both stores."))
    blocks.append(("h2", "Runs recorded in both stores"))
    s = result.same
    if len(s):
        t = _cell_columns(s, fields)
        for col, head in (
            ("shared", "shared"),
            ("identical", "identical"),
            ("changed_engine", "differ: other engine"),
            ("changed_same_engine", "differ: same engine"),
            ("status_changed", "status changed"),
        ):
            t[head] = s[col].astype(str)
        t["largest relative difference"] = [f"{v:.2g}" if v > 0 else "0" for v in s["max_rel_diff"]]
        blocks.append(("table", t.reset_index(drop=True)))
        blocks.append(
            (
                "p",
                "Identical: same status, steps to solve, plateau, and final loss and predictions bit for bit. "
                "Training with one engine is deterministic, so a difference between runs trained by the *same* "
                "engine means the code changed the numbers. The compiled and the numpy engine add in different "
                "orders: their runs differ in the last bits (relative differences of about 1e-12), which can flip "
                "a run that ends near the solve threshold; such differences are the engine's, not the code's. "
                "Largest relative difference: of final loss and predictions, |a − b| / max(|a|, |b|).",
            )
        )
    else:
        blocks.append(("p", "No `run_id` is recorded in both stores."))
    blocks.append(("h2", f"Seed-paired comparison ({_across_text(result)})"))
    p = result.paired
    if len(p):
        common = [f for f in fields if f not in result.across]
        t = _cell_columns(p, common)
        if result.across:
            t["A → B"] = [_across_text(result, r) for _, r in p.iterrows()]
        t["pairs"] = p["n_pairs"].astype(str)
        t["solved % A"], t["solved % B"] = (
            [_pct(v) for v in p["success_rate_a"]],
            [_pct(v) for v in p["success_rate_b"]],
        )
        t["B − A, pts [95% CI]"] = [
            f"{_pts(d)} [{_pts(lo)}, {_pts(hi)}]"
            for d, lo, hi in p[["paired_diff", "paired_lo", "paired_hi"]].to_numpy()
        ]
        t["only A / only B solved"] = [f"{a} / {b}" for a, b in p[["only_a_solved", "only_b_solved"]].to_numpy()]
        t["McNemar p (BH)"] = [f"{v:.3g}" for v in p["mcnemar_p_bh"]]
        blocks.append(("table", t.reset_index(drop=True)))
        blocks.append(
            (
                "p",
                f"Pairs: runs with the same seed and the same value of every other config field. "
                f"Difference: mean over pairs, percentile bootstrap ({stats.N_BOOT} resamples, seed "
                f"{stats.BOOT_SEED}); McNemar's exact test on the discordant pairs, Benjamini–Hochberg "
                "adjusted over the groups.",
            )
        )
    else:
        blocks.append(("p", "No runs of the two stores share a seed and the other config fields."))
    return blocks


FIGURE_ROWS = 40  # at most this many cells or pair groups in compare.png: the largest differences


def _figure_rows(result: Comparison) -> tuple[pd.DataFrame, str] | None:
    """What the figure plots, one row per unit with ``label, diff, lo, hi, significant``: the common cells (the
    difference B − A with Newcombe's interval; significant = the interval excludes 0), else the seed-paired
    groups (the mean paired difference with its bootstrap interval; significant = McNemar BH p < 0.05)."""
    fields = result.shown or ["init_label"]
    if len(result.cells):
        c = result.cells
        rows = pd.DataFrame({"diff": c["diff"], "lo": c["diff_lo"], "hi": c["diff_hi"]})
        rows["significant"] = (c["diff_lo"] > 0) | (c["diff_hi"] < 0)
        frame, unit = c, "configuration cell"
    elif len(result.paired):
        p = result.paired
        rows = pd.DataFrame({"diff": p["paired_diff"], "lo": p["paired_lo"], "hi": p["paired_hi"]})
        rows["significant"] = p["mcnemar_p_bh"] < SIGNIFICANCE
        fields = [f for f in fields if f not in result.across]
        frame, unit = p, f"seed-paired group ({_across_text(result).replace('`', '')})"
    else:
        return None
    labels = _cell_columns(frame, fields) if fields else pd.DataFrame(index=frame.index)
    rows["label"] = [", ".join(f"{k}={v}" for k, v in r.items()) or "all runs" for _, r in labels.iterrows()]
    return rows.reset_index(drop=True), unit


def figure_caption(result: Comparison) -> str:
    if len(result.cells):
        return (
            "Success rate B − A per configuration cell with Newcombe's 95 % interval for independent samples (the "
            "interval of the test the tables report); filled: the interval excludes 0."
        )
    return (
        "Mean paired difference B − A in success per seed-paired group with its bootstrap 95 % interval; filled: "
        f"McNemar's exact test on the same pairs, Benjamini–Hochberg adjusted p < {SIGNIFICANCE}."
    )


def figure(result: Comparison):
    """B − A per cell (else per seed-paired group): a labelled dot-and-interval row each, filled when the
    test the tables report finds a difference; None when the stores have neither in common."""
    from matplotlib.figure import Figure

    found = _figure_rows(result)
    if found is None:
        return None
    rows, unit = found
    title = f"Success rate B − A per {unit}"
    if len(rows) > FIGURE_ROWS:
        keep = rows["diff"].abs().sort_values(ascending=False, kind="stable").index[:FIGURE_ROWS]
        rows = rows.loc[sorted(keep)]
        title += f"\n(the {FIGURE_ROWS} largest differences of {len(found[0])}; all in compare.csv)"
    rows = rows.reset_index(drop=True)
    fig = Figure(figsize=(8.5, 0.26 * len(rows) + 1.9), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(rows))
    for mask, face, label in (
        (~rows["significant"], "white", "no difference found"),
        (rows["significant"], "C3", "difference (test significant)"),
    ):
        sub = rows[mask.to_numpy()]
        if sub.empty:
            continue
        ax.errorbar(
            100 * sub["diff"],
            y[mask.to_numpy()],
            xerr=[100 * (sub["diff"] - sub["lo"]), 100 * (sub["hi"] - sub["diff"])],
            fmt="o",
            mfc=face,
            mec="C3" if face != "white" else "C0",
            ecolor="0.5",
            elinewidth=0.9,
            capsize=2,
            label=f"{label} ({len(sub)})",
        )
    ax.axvline(0, color="0.4", lw=0.8, ls="--", zorder=0)
    (na, nb) = result.names
    ax.set_yticks(y, rows["label"], fontsize=7.5)
    reach = float(np.nanmax(np.abs(rows[["lo", "hi"]].to_numpy(dtype=float)), initial=0.0))
    span = min(105.0, max(5.0, 115 * reach))
    ax.set(ylim=(len(rows) - 0.5, -0.5), xlim=(-span, span), xlabel="success rate B − A (percentage points)")
    ax.set_title(f"{title}\nA = {_short(na, 70)}\nB = {_short(nb, 70)}", fontsize=9.5)
    ax.grid(True, axis="x", lw=0.4, color="0.85")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def write(result: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write compare.csv, compare.png (unless nothing is comparable), compare.md and compare.html into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "compare.csv", "md": out_dir / "compare.md", "html": out_dir / "compare.html"}
    table(result).to_csv(paths["csv"], index=False, lineterminator="\n")  # floats round-trip exactly
    fig = figure(result)
    if fig is not None:
        paths["png"] = out_dir / "compare.png"
        fig.savefig(paths["png"], dpi=110, metadata={"Software": None})
    blocks = document(result, "compare.png" if fig is not None else None)
    paths["md"].write_text(pages.to_markdown(blocks), encoding="utf-8", newline="\n")
    paths["html"].write_text(pages.to_html(blocks, out_dir), encoding="utf-8", newline="\n")
    return paths
