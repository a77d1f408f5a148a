"""The prose of a report, computed from the stats table: key findings, the summary table as text, the method.

Rules the sentences follow, so that what a researcher reads is true:

- success rates are stated per budget (``max_steps``) and per learning rate, never pooled over groups that are
  not replicates of each other;
- ties are reported as ties (``3 inits tie at 100.0 %``), never as one arbitrary "best" group;
- a "fastest" claim is only made about groups that solve at least half of their runs;
- totals count each run once per budget (a 1,000-step run and its 5,000-step twin share one trajectory, but
  they are different budgets, so they are never added together);
- failures are named by what the network does (``xorlab.core.modes.MODES``), not by the nearest loss plateau;
- the multiple-comparison family is stated (``stats.compare_inits``: every init vs the reference within one
  stratum), so a reader knows what the adjusted p is adjusted for.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xorlab.analysis import stats
from xorlab.analysis.text import md_code, md_text
from xorlab.core.modes import MODES
from xorlab.core.order import ordered
from xorlab.store.records import unremarkable

SIGNIFICANCE = 0.05
FAST_ENOUGH = 0.5  # a group must solve at least this share of runs to be called fastest
#: What the network does in each mode, for prose (the definitions are ``xorlab.core.modes.MODES``).
MODE_TEXT: dict[str, str] = {
    "diverged": "a loss or parameter became non-finite",
    "solved": "solved",
    "saturated": "every hidden unit saturated, some point not right",
    "dead": "every hidden ReLU unit dead (no input turns it on), some point not right",
    "oscillating": "the loss swings by ≥ 0.1 nats (cycling or erratic)",
    "slow": "all four points right, loss still above the threshold",
    "saddle_ln2": "all four outputs undecided near 0.5, the ln 2 saddle",
    "three_tied": "three outputs tied, the fourth right, the 0.477 plateau",
    "half_undecided": "two points right, two undecided, the ln 2 / 2 plateau",
    "one_wrong": "three points right, one confidently wrong",
    "one_undecided": "three points right, one undecided",
    "other": "none of the named patterns",
    stats.UNKNOWN_MODE: "recorded before the failure taxonomy; see the status columns",
}
FAILURE_MODES = [m for m in stats.MODE_NAMES if m != "solved"]


def count(n: int, noun: str) -> str:
    """``1 run``, ``4,800 runs``, ``2 families``."""
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n:,} {noun if n == 1 else plural}"


def pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.1f}"


def steps(x: float) -> str:
    return "n.r." if pd.isna(x) else f"{x:,.0f}"


def ci(mid: str, lo: str, hi: str) -> str:
    return f"{mid} [{lo}, {hi}]"


def value(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


ROLES = {"max_steps": "training budget", "loss_threshold": "solve threshold"}


def _range(values: Sequence) -> str:
    vals = ordered(values)
    if len(vals) <= 4:
        return ", ".join(value(v) for v in vals)
    if all(isinstance(v, int | float) for v in vals) and all(float(v).is_integer() for v in vals):
        ints = [int(v) for v in vals]
        if ints == list(range(ints[0], ints[-1] + 1)):
            return f"{ints[0]}–{ints[-1]}"
    return f"{value(vals[0])}, {value(vals[1])}, …, {value(vals[-1])}"


def conditions(runs: pd.DataFrame) -> list[str]:
    """What a reader must know to interpret the numbers: every config field with one value among ``runs`` (the
    budget and the solve threshold named as such; a later field at its default, e.g. ``lr_hidden`` = 1, goes
    unsaid), the engine(s) that trained them, and each swept axis with its values. One bullet each."""
    runs = stats.with_init_label(runs)
    fixed, swept = [], []
    for c in ["init_label", *(c for c in stats.PAIR_COLUMNS if c in runs.columns)]:
        vals = stats.distinct_values(runs[c])
        name = "init" if c == "init_label" else c
        role = f" ({ROLES[c]})" if c in ROLES else ""
        if len(vals) == 1 and unremarkable(c, vals[0]):
            continue
        if len(vals) == 1:
            fixed.append(f"`{name}` = {value(vals[0]) if c != 'max_steps' else f'{int(vals[0]):,}'}{role}")
        else:
            swept.append(f"`{name}`{role} ({len(vals):,} values: {_range(vals)})")
    if "engine" in runs.columns:
        eng = runs["engine"].astype(object).where(runs["engine"].notna(), "unknown").value_counts()
        engines = ", ".join(f"{e} ({count(int(k), 'run')})" for e, k in sorted(eng.items(), key=lambda t: -t[1]))
    else:
        engines = "unknown (not recorded by this store's version)"
    return [
        "Held fixed: " + (", ".join(fixed) if fixed else "nothing") + ".",
        "Swept: " + (", ".join(swept) if swept else "nothing") + ".",
        f"Engine: {engines}.",
    ]


def group_name(row: pd.Series, axes: Sequence[str]) -> str:
    """``he_normal`` for the init axis alone, else ``lr=0.1, init_label=he_normal``; ``all runs`` for none."""
    if list(axes) == ["init_label"]:
        return str(row["init_label"])
    return ", ".join(f"{a}={value(row[a])}" for a in axes) or "all runs"


def mode_phrase(mode: str, k: int) -> str:
    return f"`{mode}` ({MODE_TEXT[mode]}) {k:,}"


def _names(rows: pd.DataFrame, axes: Sequence[str]) -> str:
    """Every group of ``rows`` named, in meaning order: a tie is named in full, never "and k more"."""
    return ", ".join(f"**{md_text(group_name(r, axes))}**" for _, r in stats.sort_groups(rows, axes).iterrows())


def _extreme(rows: pd.DataFrame, axes: Sequence[str], rate: float, word: str, noun: str) -> str:
    """``highest: **a** 99.5 % [97.2, 99.9]`` or ``highest: 3 inits tie at 100.0 % (**a**, **b**, **c**)``."""
    hit = rows[rows["success_rate"] == rate]
    if len(hit) == 1:
        r = hit.iloc[0]
        return f"{word}: {_names(hit, axes)} {ci(pct(rate), pct(r.success_lo), pct(r.success_hi))} %"
    return f"{word}: {len(hit)} {noun}s tie at {pct(rate)} % ({_names(hit, axes)})"


def _speed(rows: pd.DataFrame, axes: Sequence[str], noun: str) -> str:
    """KM median of the fastest groups among those solving ≥ FAST_ENOUGH (ties named); '' if none qualifies."""
    label = "KM median steps to first solve"
    if len(rows) == 1:  # nothing to compare: the median itself (n.r. when fewer than half ever solved)
        r = rows.iloc[0]
        return f"{label} {ci(steps(r.km_median), steps(r.km_median_lo), steps(r.km_median_hi))}"
    ok = rows[(rows["success_rate"] >= FAST_ENOUGH) & rows["km_median"].notna()]
    if ok.empty:
        return f"no {noun} solves ≥ {pct(FAST_ENOUGH)} % of its runs, so none is called fastest"
    best = ok["km_median"].min()
    hit = ok[ok["km_median"] == best]
    if len(hit) == 1:
        r = hit.iloc[0]
        return (
            f"fastest of those solving ≥ {pct(FAST_ENOUGH)} %: {_names(hit, axes)}, {label} "
            f"{ci(steps(best), steps(r.km_median_lo), steps(r.km_median_hi))}"
        )
    return f"fastest of those solving ≥ {pct(FAST_ENOUGH)} %: {len(hit)} {noun}s tie at a {label} of {steps(best)}"


def failure_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Failed runs per mode over the rows of one budget (each run is in exactly one row and one mode)."""
    return {m: int(rows[f"mode_{m}"].sum()) for m in FAILURE_MODES if f"mode_{m}" in rows and rows[f"mode_{m}"].sum()}


def _failures(rows: pd.DataFrame, top: int = 2) -> str:
    counts = failure_counts(rows)
    failed = int(rows["n"].sum() - rows["solved"].sum())
    if not failed:
        return "no run failed"
    ranked = sorted(counts, key=lambda m: (-counts[m], m))[:top]
    return f"{failed:,} failed, most as " + "; ".join(mode_phrase(m, counts[m]) for m in ranked)


def stratum_line(rows: pd.DataFrame, head: str, axes: Sequence[str]) -> str:
    """One bullet: a budget × lr stratum (``head``), its groups compared without pooling them."""
    noun = "init" if list(axes) == ["init_label"] else "group"
    if len(rows) == 1:
        r = rows.iloc[0]
        text = (
            f"{head}: {int(r.solved):,} of {count(int(r.n), 'run')} solved "
            f"({pct(r.success_rate)} %, 95 % CI {pct(r.success_lo)}–{pct(r.success_hi)} %)"
        )
    else:
        hi, lo = rows["success_rate"].max(), rows["success_rate"].min()
        sizes = rows["n"].unique()
        n_text = f"n = {int(sizes[0]):,} each" if len(sizes) == 1 else f"n = {int(sizes.min()):,}–{int(sizes.max()):,}"
        if hi == lo:
            text = f"{head}: all {len(rows)} {noun}s solve {pct(hi)} % ({n_text})"
        else:
            text = (
                f"{head} ({n_text}): {_extreme(rows, axes, hi, 'highest', noun)}; "
                f"{_extreme(rows, axes, lo, 'lowest', noun)}"
            )
    return f"{text}; {_speed(rows, axes, noun)}; {_failures(rows)}."


def key_findings(
    table: pd.DataFrame, by: Sequence[str], budget_of: dict | None = None, pooled: Sequence[str] = ()
) -> list[tuple]:
    """Blocks (``h3``/``ul``): per budget (and store), one bullet per lr, then the failure totals of that budget,
    then the paired comparisons. ``budget_of`` gives the max_steps of the runs when it is not a grouping axis;
    ``pooled`` names the swept axes the groups pool (``--by`` left them out), which the text then says."""
    sections = [a for a in (stats.SWEEP, "max_steps") if a in by]
    lines = ["lr"] if "lr" in by else []
    members = [b for b in by if b not in sections and b not in lines]
    note = f" (groups pooled over {', '.join(f'`{a}`' for a in pooled)})" if pooled else ""
    blocks: list[tuple] = []
    for key, section in table.groupby(sections, sort=True) if sections else [((), table)]:
        key = dict(zip(sections, key if isinstance(key, tuple) else (key,), strict=True))
        budget = key.get("max_steps", (budget_of or {}).get("max_steps"))
        title = (f"After {budget:,} steps" if budget is not None else "All budgets") + note
        if stats.SWEEP in key:
            title += f", store {md_code(key[stats.SWEEP])}"
        items = []
        for lkey, rows in section.groupby(lines, sort=True) if lines else [((), section)]:
            alone = "This budget" if budget is not None else "All budgets"
            head = f"lr = {value(lkey[0] if isinstance(lkey, tuple) else lkey)}" if lines else alone
            head = "Every group" if not lines and len(rows) > 1 else head
            items.append(stratum_line(rows, head, members))
        items.append(_total_line(section, budget is not None))
        blocks += [("h3", title), ("ul", items)]
    if "diff_vs_ref" in table:
        blocks += [("h3", "Paired comparisons with the reference init"), ("p", comparison_sentence(table, by))]
        if table["diff_vs_ref"].notna().any():
            blocks.append(("table", comparison_table(table, by)))
    return blocks


def _total_line(section: pd.DataFrame, one_budget: bool = True) -> str:
    """Failures of one budget, every run counted once, by mode (or of all budgets, when groups pool them)."""
    n, failed = int(section["n"].sum()), int(section["n"].sum() - section["solved"].sum())
    where = "at this budget" if one_budget else "over all budgets together"
    if not failed:
        return f"No run of the {n:,} {where} failed."
    counts = failure_counts(section)
    parts = "; ".join(mode_phrase(m, counts[m]) for m in sorted(counts, key=lambda m: (-counts[m], m)))
    return f"Failures {where}, each run counted once: {failed:,} of {count(n, 'run')}: {parts}."


def family_text(table: pd.DataFrame, by: Sequence[str]) -> str:
    strata = [b for b in by if b != "init_label"]
    comp = table.dropna(subset=["diff_vs_ref"])
    sizes = comp.groupby("family")["family_size"].first() if len(comp) else pd.Series(dtype=int)
    if not strata:
        return f"one family of {count(len(comp), 'comparison')}: every init against the reference, Benjamini–Hochberg"
    size = (
        f"{count(int(sizes.iloc[0]), 'comparison')} each"
        if sizes.nunique() == 1
        else f"{int(sizes.min())}–{int(sizes.max())} comparisons"
    )
    within = " × ".join(f"`{s}`" for s in strata)
    return (
        f"one family per value of {within} ({count(len(sizes), 'family')}, {size}): every init against the "
        "reference within it; Benjamini–Hochberg adjusts within each family only, so runs of other strata or "
        "other stores never change an adjusted p"
    )


RANKED = 25  # at most this many comparisons listed in the ranking (every one is in the summary table and stats.csv)
UNCLEAR_SHOWN = 5  # when no interval excludes 0, the largest differences still listed


def _effect_floor(r: pd.Series) -> float:
    """How large the effect is at least: the interval's end nearest 0 (0 when the interval contains 0)."""
    lo, hi = float(r.diff_lo), float(r.diff_hi)
    return 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))


def ranked_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """Paired comparisons, most informative first: by how large the effect is at least (``_effect_floor``), then
    by its size; a trivial p (a huge, obvious effect) ranks by its size like any other, never by the p."""
    comp = table.dropna(subset=["diff_vs_ref"]).copy()
    comp["_floor"] = [_effect_floor(r) for r in comp.itertuples()]
    comp["_size"] = comp["diff_vs_ref"].abs()
    return comp.sort_values(["_floor", "_size"], ascending=False, kind="stable").drop(columns=["_floor", "_size"])


def shown_comparisons(table: pd.DataFrame) -> pd.DataFrame:
    """The comparisons the ranking lists: every one whose 95 % interval excludes 0, largest effect first (at most
    ``RANKED``); when none does, the ``UNCLEAR_SHOWN`` largest differences."""
    ranked = ranked_comparisons(table)
    clear = ranked[(ranked["diff_lo"] > 0) | (ranked["diff_hi"] < 0)]
    return clear.head(RANKED) if len(clear) else ranked.head(UNCLEAR_SHOWN)


def comparison_sentence(table: pd.DataFrame, by: Sequence[str]) -> str:
    comp = table.dropna(subset=["diff_vs_ref"])
    if comp.empty:
        return "No init could be paired with the reference init on equal seeds."
    ref = comp["ref_init"].iloc[0]
    sig = comp[comp["mcnemar_p_bh"] < SIGNIFICANCE]
    clear = comp[(comp["diff_lo"] > 0) | (comp["diff_hi"] < 0)]
    shown = len(shown_comparisons(table))
    which = (
        f"the {count(shown, 'comparison')} whose interval excludes 0"
        if len(clear)
        else f"no interval excludes 0; the {count(shown, 'largest difference')}"
    )
    more = f" (of {len(clear)})" if len(clear) > shown else ""
    return (
        f"Paired by seed against the reference init **{md_text(ref)}** (exact McNemar test; {family_text(table, by)}): "
        f"{len(sig)} of {len(comp)} comparisons have an adjusted p < {SIGNIFICANCE}; the 95 % interval of the "
        f"difference excludes 0 in {len(clear)}. Below, {which}{more}, largest effect first (ranked by the "
        "interval's end nearest 0, then by size); every comparison is in the summary table."
    )


def comparison_table(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The comparisons of ``shown_comparisons`` as a text table."""
    top = shown_comparisons(table)
    strata = [b for b in by if b != "init_label"]
    out = pd.DataFrame({"init": top["init_label"].astype(str).to_numpy()})
    for b in strata:
        out[b] = [value(v) for v in top[b]]
    out["Δ solved vs ref, pts [95% CI]"] = [
        ci(f"{100 * r.diff_vs_ref:+.1f}", f"{100 * r.diff_lo:+.1f}", f"{100 * r.diff_hi:+.1f}")
        for r in top.itertuples()
    ]
    out["pairs"] = [f"{int(v):,}" for v in top["n_pairs"]]
    pairs = zip(top["only_this_solved"], top["only_ref_solved"], strict=True)
    out["only this / only ref solved"] = [f"{int(a)} / {int(b)}" for a, b in pairs]
    out["p adj. (BH in family)"] = [_p(v) for v in top["mcnemar_p_bh"]]
    return out


def _p(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.2g}"


def summary_table(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The stats table as strings for the report (rates in %, intervals in brackets, labels saying what is shown)."""
    out = table[list(by)].astype(str).copy()
    for b in by:
        if pd.api.types.is_float_dtype(table[b]):
            out[b] = [f"{v:g}" for v in table[b]]
    out["n"] = table["n"].astype(str)
    rows = list(table.itertuples())
    out["solved % [95% CI]"] = [ci(pct(r.success_rate), pct(r.success_lo), pct(r.success_hi)) for r in rows]
    out["KM median steps to first solve [95% CI]"] = [
        ci(steps(r.km_median), steps(r.km_median_lo), steps(r.km_median_hi)) for r in rows
    ]
    out["most common failure mode, % of runs"] = [_top_mode(r) for _, r in table.iterrows()]
    for status in ("diverged", "stuck", "slow"):
        out[f"{status} %"] = [pct(v) for v in table[f"{status}_rate"]]
    out["final loss median [Q1, Q3]"] = [
        ci(f"{m:.3g}", f"{a:.3g}", f"{b:.3g}") if m == m else "–"
        for m, a, b in zip(table["final_loss_median"], table["final_loss_q25"], table["final_loss_q75"], strict=True)
    ]
    if "diff_vs_ref" in table:
        refs = table["ref_init"].dropna()
        ref = refs.iloc[0] if len(refs) else None
        out["Δ solved vs ref, pts [95% CI]"] = [_diff_cell(r, ref) for r in rows]
        out["McNemar p"] = [_p(v) for v in table["mcnemar_p"]]
        out["p adj. (BH in family)"] = [_p(v) for v in table["mcnemar_p_bh"]]
    return out


def _top_mode(r: pd.Series) -> str:
    counts = {m: int(r[f"mode_{m}"]) for m in FAILURE_MODES if f"mode_{m}" in r and int(r[f"mode_{m}"])}
    if not counts:
        return "–"
    m = sorted(counts, key=lambda k: (-counts[k], k))[0]
    return f"{m} {pct(counts[m] / r['n'])}"


def _diff_cell(r, ref: str | None) -> str:
    if pd.isna(r.diff_vs_ref):
        return "reference" if r.init_label == ref else "–"
    return ci(f"{100 * r.diff_vs_ref:+.1f}", f"{100 * r.diff_lo:+.1f}", f"{100 * r.diff_hi:+.1f}")


def method(by: Sequence[str], table: pd.DataFrame) -> list[str]:
    """The method section: what every number is and how it was computed."""
    modes = "; ".join(f"`{m}`: {d}" for m, d in MODES.items() if m != "dead" or "mode_dead" in table.columns)
    out = [
        f"Groups: every combination of {', '.join(f'`{b}`' for b in by) or 'all runs'}; seeds are replicates. "
        "`init_label` is the init scheme with any parameter that varies or differs from its default. Runs of "
        "different stores (`sweep`) are never pooled.",
        "Success rate: runs whose final status is `solved`; 95 % Wilson score interval "
        "(`scipy.stats.binomtest(k, n).proportion_ci(method='wilson')`). Key findings compare groups within one "
        "budget and one lr; nothing is pooled across learning rates or budgets.",
        "Failure modes (`xorlab.core.modes`, from the final predictions, the first layer and the last 65 losses; the "
        f"first that applies): {modes}. A null mode (a store written before the taxonomy) is `unknown`. "
        "`stats.csv` has `mode_<name>` and `mode_<name>_rate` per group; the status columns (`stuck`, `slow`, "
        "`diverged`, `stuck_<plateau>`) are kept for comparison with older reports.",
        "KM median steps to first solve: survival analysis of the time to the first solve (`steps_to_solve`); "
        "runs that never solved are right-censored at their `max_steps`. Kaplan–Meier estimate and pointwise "
        "95 % log-log band from `scipy.stats.ecdf`; the median is the first step where at most half the runs "
        "remain unsolved, its interval the steps where the band's edges cross one half (n.r. = not reached). "
        f"A group is only called fastest if it solves ≥ {pct(FAST_ENOUGH)} % of its runs.",
        "Final loss: median and quartiles [Q1, Q3] over runs with a finite final loss.",
    ]
    if "diff_vs_ref" in table:
        out.append(
            "Paired comparison: each init against the reference init on the same seeds and all other config "
            "fields (the normal-family schemes draw from the same standard normals on the same seed, so pairs "
            "share their luck). Difference in success rate with a percentile bootstrap interval over pairs "
            f"({stats.N_BOOT} resamples, fixed seed {stats.BOOT_SEED}); McNemar's exact test on the discordant "
            f"pairs (raw p), Benjamini–Hochberg adjusted p with {family_text(table, by)}."
        )
    out.append(
        "Convergence curves: per init, lr and logged step, the median loss over runs and the distribution-free "
        "95 % interval of the median (binomial order statistics, as `scipy.stats.quantile_test`); diverged runs "
        "count as infinite loss. Sampled runs per mode are drawn with a fixed seed from the runs sorted by "
        "`run_id`; the typical run of a mode is the medoid of its final predictions."
    )
    return out
