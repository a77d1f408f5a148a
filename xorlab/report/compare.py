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
from xorlab.analysis.text import md_code
from xorlab.report import pages
from xorlab.store.records import PRED_COLUMNS

KEY = ["init_label", *[c for c in stats.PAIR_COLUMNS if c != "seed"]]  # a configuration cell
OUTCOME = ["status", "steps_to_solve", "plateau", "final_loss", *PRED_COLUMNS]
SIDES = ("a", "b")
SIGNIFICANCE = 0.05


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
    wide = wide[wide["_merge"] == "both"].drop(columns="_merge").reset_index(drop=True)
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


def same_runs(both: pd.DataFrame) -> pd.DataFrame:
    """Per cell, runs recorded in both stores (same ``run_id``): ``shared, identical, changed, status_changed``."""
    outcome = [c for c in OUTCOME + ["mode"] if c in both.columns]
    a = both.loc[both["side"] == "a", ["run_id", *KEY, *outcome]]
    b = both.loc[both["side"] == "b", ["run_id", *outcome]]
    m = a.merge(b, on="run_id", suffixes=("_a", "_b"))
    cols = ["shared", "identical", "changed", "status_changed"]
    if m.empty:
        return pd.DataFrame(columns=[*KEY, *cols])
    same = np.ones(len(m), dtype=bool)
    for c in outcome:
        same &= _bits_equal(m[f"{c}_a"], m[f"{c}_b"])
    m["identical"] = same
    m["status_changed"] = ~_bits_equal(m["status_a"], m["status_b"])
    g = m.groupby(KEY, dropna=False, sort=True).agg(
        shared=("run_id", "size"), identical=("identical", "sum"), status_changed=("status_changed", "sum")
    )
    g["changed"] = g["shared"] - g["identical"]
    return g.reset_index()[[*KEY, *cols]].astype({c: np.int64 for c in cols})


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
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        out["mcnemar_p_bh"] = sps.false_discovery_control(out["mcnemar_p"].to_numpy(dtype=float), method="bh")
    return out


def compare(runs_a: pd.DataFrame, runs_b: pd.DataFrame, names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Compare two run tables (``load_runs`` of each store); see the module docstring."""
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


def summary_lines(result: Comparison) -> list[str]:
    """Three lines: the cells, the shared runs, the seed-paired comparison."""
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
    s = result.same
    if len(s):
        shared, changed, flipped = int(s["shared"].sum()), int(s["changed"].sum()), int(s["status_changed"].sum())
        line2 = (
            f"same runs: {shared:,} run_ids in both; {shared - changed:,} identical outcomes, {changed:,} changed "
            f"({flipped:,} with a different status)"
        )
    else:
        line2 = "same runs: no run_id is recorded in both stores"
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
    blocks.append(
        ("p", f"A = {md_code(na)} ({result.n_runs[0]:,} runs); B = {md_code(nb)} ({result.n_runs[1]:,} runs).")
    )
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
        for col in ("shared", "identical", "changed", "status_changed"):
            t[col.replace("_", " ")] = s[col].astype(str)
        blocks.append(("table", t.reset_index(drop=True)))
        blocks.append(
            (
                "p",
                "Identical: same status, steps to solve, plateau, and final loss and predictions bit for "
                "bit. Training is deterministic, so a change means the code changed the numbers.",
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


def _figure_points(result: Comparison) -> tuple[pd.DataFrame, np.ndarray, str] | None:
    """What the figure plots: the common cells, else the seed-paired groups (Wilson intervals on the pairs)."""
    if len(result.cells):
        c = result.cells
        return c, ((c["diff_lo"] > 0) | (c["diff_hi"] < 0)).to_numpy(), "configuration cell"
    if len(result.paired):
        p = result.paired.copy()
        for s in SIDES:
            k = np.rint(p[f"success_rate_{s}"] * p["n_pairs"]).to_numpy()
            p[f"success_lo_{s}"], p[f"success_hi_{s}"] = _wilson(k, p["n_pairs"].to_numpy())
        sig = (p["mcnemar_p_bh"] < SIGNIFICANCE).to_numpy()
        return p, sig, f"seed-paired group ({_across_text(result).replace('`', '')})"
    return None


def figure_caption(result: Comparison) -> str:
    if len(result.cells):
        return (
            "Success rate per configuration cell, B against A (Wilson 95 % intervals); cells off the diagonal "
            "changed, filled markers significantly (the interval of B − A excludes 0)."
        )
    return (
        "Success rate per seed-paired group, B against A (Wilson 95 % intervals on the pairs); filled markers: "
        f"McNemar's exact test, Benjamini–Hochberg adjusted p < {SIGNIFICANCE}."
    )


def figure(result: Comparison):
    """Success rate in B against A per cell (else per seed-paired group), Wilson intervals as error bars;
    None when the stores have neither in common."""
    from matplotlib.figure import Figure

    points = _figure_points(result)
    if points is None:
        return None
    c, sig, unit = points
    fig = Figure(figsize=(7.5, 6.4), layout="constrained")
    ax = fig.subplots()
    for mask, face, label in ((~sig, "white", "difference not significant"), (sig, "C3", "significant")):
        sub = c[mask]
        if sub.empty:
            continue
        ax.errorbar(
            sub["success_rate_a"],
            sub["success_rate_b"],
            xerr=[sub["success_rate_a"] - sub["success_lo_a"], sub["success_hi_a"] - sub["success_rate_a"]],
            yerr=[sub["success_rate_b"] - sub["success_lo_b"], sub["success_hi_b"] - sub["success_rate_b"]],
            fmt="o",
            mfc=face,
            mec="C3" if face != "white" else "C0",
            ecolor="0.6",
            elinewidth=0.8,
            capsize=2,
            label=f"{label} ({len(sub)})",
        )
    ax.plot([0, 1], [0, 1], color="0.4", lw=0.8, ls="--", zorder=0, label="no change")
    (na, nb) = result.names
    ax.set(
        xlim=(-0.03, 1.03),
        ylim=(-0.03, 1.03),
        aspect="equal",
        xlabel=f"success rate in A ({_short(na)})",
        ylabel=f"success rate in B ({_short(nb)})",
        title=f"Success rate per {unit}",
    )
    ax.grid(True, lw=0.4, color="0.85")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def write(result: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write compare.csv, compare.png (unless nothing is comparable), compare.md and compare.html into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "compare.csv", "md": out_dir / "compare.md", "html": out_dir / "compare.html"}
    table(result).to_csv(paths["csv"], index=False, float_format="%.6g", lineterminator="\n")
    fig = figure(result)
    if fig is not None:
        paths["png"] = out_dir / "compare.png"
        fig.savefig(paths["png"], dpi=110, metadata={"Software": None})
    blocks = document(result, "compare.png" if fig is not None else None)
    paths["md"].write_text(pages.to_markdown(blocks), encoding="utf-8", newline="\n")
    paths["html"].write_text(pages.to_html(blocks, out_dir), encoding="utf-8", newline="\n")
    return paths
