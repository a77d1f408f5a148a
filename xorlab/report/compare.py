"""Two stores side by side, written: ``compare.csv``, ``compare.md``, ``compare.html`` (self-contained) and
``compare.png`` into a folder (``write``). The frames and their statistics are
``xorlab.analysis.comparison``; its public names are re-exported here, so ``compare.compare(a, b)`` and
``compare.write(result, out)`` read as one API.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xorlab.analysis import stats
from xorlab.analysis.comparison import (
    KEY,
    OUTCOME,
    SAME_COLUMNS,
    SIDES,
    SIGNIFICANCE,
    Comparison,
    Side,
    across_fields,
    cell_rates,
    compare,
    compare_cells,
    describe_side,
    newcombe,
    same_runs,
    seed_pairs,
    table,
    value_text,
)
from xorlab.analysis.text import md_code
from xorlab.report import pages
from xorlab.store.records import DEFAULTED_COLUMNS

__all__ = [
    "Comparison",
    "KEY",
    "OUTCOME",
    "SAME_COLUMNS",
    "SIDES",
    "SIGNIFICANCE",
    "Side",
    "across_fields",
    "cell_rates",
    "compare",
    "compare_cells",
    "describe_side",
    "newcombe",
    "same_runs",
    "seed_pairs",
    "table",
    "document",
    "figure",
    "figure_caption",
    "summary_lines",
    "differs_lines",
    "write",
]


# ----------------------------------------------------------------------------------------------- text
def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _significant_cells(result: Comparison) -> int:
    c = result.cells
    return int(((c["diff_lo"] > 0) | (c["diff_hi"] < 0)).sum()) if len(c) else 0


def _across_text(result: Comparison, row: pd.Series | None = None) -> str:
    if not result.across:
        return "same configuration"
    if row is None:
        return "across " + ", ".join(f"`{c}`" for c in result.across)
    return ", ".join(f"{c} {value_text(row[f'{c}_a'])} → {value_text(row[f'{c}_b'])}" for c in result.across)


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
    # a later field (lr_hidden …) at its default on both sides is what every store held: left unsaid
    quiet = {f for f, d in DEFAULTED_COLUMNS.items() if a.fixed.get(f) == b.fixed.get(f) == value_text(d)}
    same_fixed = [f"{f}={v}" for f, v in a.fixed.items() if b.fixed.get(f) == v and f not in quiet]
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
        out[f.replace("init_label", "init")] = [value_text(v) for v in frame[f]]
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
