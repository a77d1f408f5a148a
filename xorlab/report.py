"""Build a sweep report from the run and curve tables: ``stats.csv``, figures, ``report.md`` and ``report.html``.

``build_report`` computes ``stats.stats_table``, draws the five figures of ``xorlab.figures`` and writes one
document twice: as Markdown (renders on a git host; figures as relative PNG links) and as a self-contained
HTML page (figures embedded as base64 PNG, inline CSS, no network). Nothing in it depends on the clock or on
the output path, so the same tables give byte-identical files.

Figures that plot against the step (and, so every cell of a figure means the same thing, all five) use the
runs with the largest ``max_steps``: a shorter run of the same config is a prefix of that trajectory, so mixing
lengths would only mix horizons. Axes other than init and lr are pooled in the figures; ``stats.csv`` keeps
every group apart.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xorlab import figures, stats, surface
from xorlab.outcome import PLATEAU_LABELS, PLATEAU_TEXT, PLATEAU_TOLERANCE
from xorlab.records import CONFIG_COLUMNS

FIGURES = {
    "convergence": "Training loss per init (median and 95 % CI of the median), one panel per learning rate.",
    "failure_heatmap": "Fraction of runs not solved per init and learning rate; each cell gives the rate and n.",
    "km_curves": "Fraction of runs solved by step t (Kaplan–Meier, unsolved runs censored at max_steps).",
    "final_loss": "Final loss of every run; stuck runs sit on the plateau levels.",
    "decision_surfaces": "Network output over the input plane for one run of each outcome found.",
}
SIGNIFICANCE = 0.05



def _count(n: int, noun: str) -> str:
    """``1 run``, ``4,800 runs``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"

def figure_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the figures use: each configuration's longest run (its shorter runs are prefixes of it)."""
    keys = [c for c in CONFIG_COLUMNS if c != "max_steps" and c in runs.columns]
    longest = runs.groupby(keys, dropna=False, sort=False)["max_steps"].transform("max")
    return runs[runs["max_steps"] == longest]


def _pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * x:.1f}"


def _num(x: float) -> str:
    return "n.r." if pd.isna(x) else f"{x:.0f}"


def _ci(mid: str, lo: str, hi: str) -> str:
    return f"{mid} [{lo}, {hi}]"


def _group_name(row: pd.Series, by: Sequence[str]) -> str:
    return ", ".join(f"{b}={row[b]:g}" if isinstance(row[b], float) else f"{b}={row[b]}" for b in by) or "all runs"


def summary_table(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The stats table as strings for the report (rates in %, intervals in brackets)."""
    out = table[list(by)].astype(str).copy()
    for b in by:
        if pd.api.types.is_float_dtype(table[b]):
            out[b] = [f"{v:g}" for v in table[b]]
    out["n"] = table["n"].astype(str)
    out["solved % [95% CI]"] = [
        _ci(_pct(r.success_rate), _pct(r.success_lo), _pct(r.success_hi)) for r in table.itertuples()
    ]
    out["median steps [95% CI]"] = [
        _ci(_num(r.km_median), _num(r.km_median_lo), _num(r.km_median_hi)) for r in table.itertuples()
    ]
    for mode in ("diverged", "stuck", "slow"):
        out[f"{mode} %"] = [_pct(v) for v in table[f"{mode}_rate"]]
    out["final loss median [IQR]"] = [
        _ci(f"{m:.3g}", f"{a:.3g}", f"{b:.3g}") if m == m else "–"
        for m, a, b in zip(table["final_loss_median"], table["final_loss_q25"], table["final_loss_q75"], strict=True)
    ]
    if "diff_vs_ref" in table:
        refs = table["ref_init"].dropna()
        ref = refs.iloc[0] if len(refs) else None
        out["Δ solved vs ref, pts [95% CI]"] = [_diff_cell(r, ref) for r in table.itertuples()]
    return out


def _diff_cell(r, ref: str | None) -> str:
    if pd.isna(r.diff_vs_ref):
        return "reference" if r.init_label == ref else "–"
    return _ci(f"{100 * r.diff_vs_ref:+.1f}", f"{100 * r.diff_lo:+.1f}", f"{100 * r.diff_hi:+.1f}")


def key_findings(table: pd.DataFrame, runs: pd.DataFrame, by: Sequence[str]) -> list[str]:
    """Sentences computed from the numbers: overall rate, best/worst/fastest group, failure modes, comparisons."""
    out = []
    for steps, group in runs.groupby("max_steps", sort=True):  # a shorter run is a prefix of a longer one
        n, k = len(group), int((group["status"] == "solved").sum())
        lo, hi = stats.wilson_interval(k, n)
        out.append(
            f"After {steps:,} steps: {k:,} of {_count(n, 'run')} solved XOR ({_pct(k / n)} %, "
            f"95 % CI {_pct(lo)}–{_pct(hi)} %)."
        )
    if len(table) > 1:
        ranked = table.sort_values(
            ["success_rate", "success_lo", "km_median"], ascending=[False, False, True], kind="stable"
        )
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        ties = int((table["success_hi"] >= best["success_lo"]).sum()) - 1
        out.append(
            f"Highest success rate: **{_group_name(best, by)}**, {_pct(best.success_rate)} % "
            f"(95 % CI {_pct(best.success_lo)}–{_pct(best.success_hi)} %, n = {int(best.n):,}); {ties} other "
            f"group(s) have intervals overlapping it."
        )
        out.append(
            f"Lowest success rate: **{_group_name(worst, by)}**, {_pct(worst.success_rate)} % "
            f"(95 % CI {_pct(worst.success_lo)}–{_pct(worst.success_hi)} %, n = {int(worst.n):,})."
        )
    timed = table.dropna(subset=["km_median"])
    if len(timed):
        fast = timed.sort_values(["km_median", "success_rate"], ascending=[True, False], kind="stable").iloc[0]
        out.append(
            f"Fastest: **{_group_name(fast, by)}** reaches 50 % solved after a median of "
            f"{_num(fast.km_median)} steps (95 % CI {_num(fast.km_median_lo)}–{_num(fast.km_median_hi)})."
        )
    out.append(_failure_sentence(table))
    if "diff_vs_ref" in table:
        out.append(_comparison_sentence(table, by))
    return out


def _failure_sentence(table: pd.DataFrame) -> str:
    modes = {"diverged": "diverged", "slow": "slow (right side of 0.5, loss above the threshold)"}
    modes |= {f"stuck_{p}": f"stuck on the {PLATEAU_TEXT[p]} plateau" for p in PLATEAU_LABELS[:-1]}
    modes["stuck_other"] = (
        f"stuck far from every plateau (loss > {PLATEAU_TOLERANCE:g} nats from each; typically saturated)"
    )
    counts = {m: int(table[m].sum()) for m in modes}
    failed = int(table["n"].sum() - table["solved"].sum())
    if failed == 0:
        return "No run failed."
    top = max(counts, key=lambda m: (counts[m], m))
    parts = ", ".join(f"{modes[m].split(' (')[0]} {counts[m]:,}" for m in modes if counts[m])
    return (
        f"Most common failure: {modes[top]}, {counts[top]:,} of {failed:,} failed runs "
        f"({_pct(counts[top] / failed)} %); all failures: {parts}."
    )


def _comparison_sentence(table: pd.DataFrame, by: Sequence[str]) -> str:
    comp = table.dropna(subset=["diff_vs_ref"])
    if comp.empty:
        return "No init could be paired with the reference init on equal seeds."
    ref = comp["ref_init"].iloc[0]
    sig = comp[comp["mcnemar_p_bh"] < SIGNIFICANCE].sort_values("diff_vs_ref", ascending=False, kind="stable")
    head = (
        f"Paired by seed against the reference init **{ref}**, {len(sig)} of {len(comp)} comparisons differ "
        f"significantly (exact McNemar test, Benjamini–Hochberg adjusted p < {SIGNIFICANCE})"
    )
    if sig.empty:
        return head + ": no init is distinguishable from the reference at this sample size."

    def describe(r: pd.Series) -> str:
        return (
            f"{_group_name(r, by)} ({100 * r.diff_vs_ref:+.1f} pts, 95 % CI {100 * r.diff_lo:+.1f} to "
            f"{100 * r.diff_hi:+.1f})"
        )

    better, worse = sig[sig["diff_vs_ref"] > 0], sig[sig["diff_vs_ref"] < 0]
    parts = []
    if len(better):
        parts.append(
            "better: "
            + "; ".join(describe(r) for _, r in better.head(3).iterrows())
            + ("; …" if len(better) > 3 else "")
        )
    if len(worse):
        parts.append(
            "worse: "
            + "; ".join(describe(r) for _, r in worse.iloc[::-1].head(3).iterrows())
            + ("; …" if len(worse) > 3 else "")
        )
    return head + ". " + ". ".join(p[0].upper() + p[1:] for p in parts) + "."


def _method(by: Sequence[str]) -> list[str]:
    return [
        f"Groups: every combination of {', '.join(f'`{b}`' for b in by) or 'all runs'}; seeds are replicates. "
        "`init_label` is the init scheme with any parameter that varies or differs from its default.",
        "Success rate: runs whose final status is `solved`; 95 % Wilson score interval "
        "(`scipy.stats.binomtest(k, n).proportion_ci(method='wilson')`).",
        "Failure modes: `diverged` (a loss or parameter became non-finite), `stuck` (a point on the wrong side of "
        "0.5; split by the nearest plateau loss ln 2, 0.477, ln 2 / 2, or `other` when none is within "
        f"{PLATEAU_TOLERANCE:g}) "
        "and `slow` (all points right, loss above the solve threshold).",
        "Steps to solve: survival analysis of the time to the first solve (`steps_to_solve`); runs that never "
        "solved are right-censored at their `max_steps`. Kaplan–Meier estimate and pointwise 95 % log-log band from "
        "`scipy.stats.ecdf`; the median is the first step where at most half the runs remain unsolved, its "
        "interval the steps where the band's edges cross one half (n.r. = not reached within max_steps).",
        "Final loss: median and interquartile range over runs with a finite final loss.",
        "Paired comparison: each init against the reference init on the same seeds and all other config fields "
        "(the normal-family schemes draw from the same standard normals on the same seed, so pairs share their "
        f"luck). Difference in success rate with a percentile bootstrap interval over pairs ({stats.N_BOOT} "
        f"resamples, fixed seed {stats.BOOT_SEED}); significance from McNemar's exact test on the discordant "
        "pairs with Benjamini–Hochberg adjustment across all comparisons.",
        "Convergence curves: per init, lr and logged step, the median loss over runs and the distribution-free "
        "95 % interval of the median (binomial order statistics, as `scipy.stats.quantile_test`); diverged runs "
        "count as infinite loss.",
    ]


def document(
    table: pd.DataFrame, runs: pd.DataFrame, by: Sequence[str], inputs: Sequence[str], notes: Sequence[str]
) -> list[tuple]:
    """The report as a list of blocks ``(kind, content)``: h1, h2, p, ul, table, figure."""
    blocks: list[tuple] = [("h1", "xorlab sweep report")]
    blocks.append(("p", "Inputs: " + ", ".join(f"`{p}`" for p in inputs) + f"; {_count(len(runs), 'run')}."))
    swept = stats.swept_axes(runs)
    blocks.append(
        (
            "ul",
            [
                f"Swept axes: {', '.join(f'`{a}`' for a in swept) or 'none'}.",
                f"Grouped by: {', '.join(f'`{b}`' for b in by) or 'nothing (all runs pooled)'}.",
                *notes,
            ],
        )
    )
    blocks += [("h2", "Key findings"), ("ul", key_findings(table, runs, by))]
    blocks += [("h2", "Summary"), ("table", summary_table(table, by))]
    blocks.append(("p", "Rates in %; n.r. = not reached within max_steps; every number is in `stats.csv`."))
    blocks.append(("h2", "Figures"))
    blocks += [("figure", stem, caption) for stem, caption in FIGURES.items()]
    blocks += [("h2", "Method"), ("ul", _method(by))]
    return blocks


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(blocks: Sequence[tuple], figure_dir: str = "figures") -> str:
    """Render blocks as GitHub-flavoured Markdown (figures as relative PNG links)."""
    out = []
    for kind, *rest in blocks:
        if kind == "h1":
            out.append(f"# {rest[0]}")
        elif kind == "h2":
            out.append(f"## {rest[0]}")
        elif kind == "p":
            out.append(rest[0])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            t = rest[0]
            lines = ["| " + " | ".join(_md_cell(c) for c in t.columns) + " |", "|" + "---|" * t.shape[1]]
            lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in t.itertuples(index=False)]
            out.append("\n".join(lines))
        elif kind == "figure":
            stem, caption = rest
            out.append(f"![{caption}]({figure_dir}/{stem}.png)\n\n*{caption}* ([SVG]({figure_dir}/{stem}.svg))")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    text = html.escape(str(text), quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;line-height:1.45;color:#222}table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right;white-space:nowrap}th{background:#f3f3f3}
tbody tr:nth-child(even){background:#fafafa}figure{margin:1.5em 0}img{max-width:100%;height:auto}
figcaption{font-style:italic;color:#444}code{background:#f3f3f3;padding:0 0.2em}.wide{overflow-x:auto}"""


def to_html(blocks: Sequence[tuple], figure_dir: Path) -> str:
    """Render blocks as one self-contained HTML page; figures embedded as base64 PNG from ``figure_dir``."""
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{_inline_html(rest[0])}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            t = rest[0]
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t.columns)
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>"
                for r in t.itertuples(index=False)
            )
            body.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
        elif kind == "figure":
            stem, caption = rest
            data = base64.b64encode((figure_dir / f"{stem}.png").read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption>{_inline_html(caption)}</figcaption></figure>"
            )
    title = _inline_html(blocks[0][1]) if blocks and blocks[0][0] == "h1" else "xorlab report"
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _surfaces(runs: pd.DataFrame):
    examples = surface.example_runs(runs)
    return figures.decision_surfaces(examples, surface.decision_surface(examples))


def draw_figures(runs: pd.DataFrame, curves: pd.DataFrame, figure_dir: Path) -> None:
    """Draw the five figures from ``runs`` (already the figure subset) and save each as PNG and SVG."""
    threshold = runs["loss_threshold"].iloc[0] if runs["loss_threshold"].nunique() == 1 else None
    drawn = {
        "convergence": lambda: figures.convergence(stats.curve_bands(curves, runs)),
        "failure_heatmap": lambda: figures.failure_heatmap(stats.summarize(runs, ["init_label", "lr"])),
        "km_curves": lambda: figures.km_curves(stats.km_curves(runs, ["init_label", "lr"])),
        "final_loss": lambda: figures.final_loss(runs, threshold=threshold),
        "decision_surfaces": lambda: _surfaces(runs),
    }
    for stem, make in drawn.items():
        figures.save(make(), figure_dir, stem)


def build_report(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: str | Path,
    inputs: Sequence[str] = (),
    by: str | Sequence[str] | None = None,
    reference: str | None = None,
) -> dict[str, Path]:
    """Write ``stats.csv``, ``figures/*.png|svg``, ``report.md`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    runs : run table (``records.RUN_COLUMNS``); duplicate ``run_id`` rows (a run in two inputs) count once.
    curves : curve table (``run_id, step, loss``) covering at least ``figure_runs(runs)``.
    out_dir : created if missing; existing files of the same names are overwritten.
    inputs : how to name the inputs in the report (e.g. the sweep directories).
    by : grouping axes (see ``stats.resolve_by``); default every swept axis but ``seed``.
    reference : init label the comparisons use as reference (default ``notebook`` if present).

    Returns the paths written, by name.
    """
    if runs.empty:
        raise ValueError("no runs to report on")
    out_dir = Path(out_dir)
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    n_all = len(runs)
    runs = runs.drop_duplicates("run_id").sort_values("run_id", kind="stable", ignore_index=True)  # order-free
    runs = stats.with_init_label(runs)
    by = stats.resolve_by(runs, by)
    table = stats.stats_table(runs, by, reference)
    stats.write_csv(table, out_dir / "stats.csv")

    shown = figure_runs(runs)
    pooled = [a for a in stats.swept_axes(shown) if a not in ("seed", "lr") and a not in stats.INIT_COLUMNS]
    lengths = sorted(shown["max_steps"].unique())
    longest = f"max_steps = {lengths[0]}" if len(lengths) == 1 else "its own longest max_steps"
    notes = [
        f"Figures use each configuration's longest run: {_count(len(shown), 'run')} with {longest}"
        + (f", pooled over {', '.join(f'`{a}`' for a in pooled)}." if pooled else ".")
    ]
    if len(runs) < n_all:
        notes.append(f"{n_all - len(runs):,} duplicate runs (same run_id in several inputs) counted once.")
    draw_figures(shown, curves, figure_dir)

    blocks = document(table, runs, by, inputs, notes)
    paths = {"stats": out_dir / "stats.csv", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["md"].write_text(to_markdown(blocks), encoding="utf-8", newline="\n")
    paths["html"].write_text(to_html(blocks, figure_dir), encoding="utf-8", newline="\n")
    paths |= {f"{stem}.{ext}": figure_dir / f"{stem}.{ext}" for stem in FIGURES for ext in ("png", "svg")}
    return paths
