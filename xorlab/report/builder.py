"""Build a sweep report from the run and curve tables: ``stats.csv``, figures, ``report.md`` and ``report.html``.

``build_report`` computes ``stats.stats_table``, draws the figures of ``FIGURES`` (``xorlab.report.figures``), and
writes one document twice: as Markdown (renders on a git host; figures as relative PNG links) and as a
self-contained HTML page (figures embedded as base64 PNG, inline CSS, no network). The prose comes from
``analysis.findings``. Nothing depends on the clock or on the output path, and every sample is seeded, so the same
tables give byte-identical files.

Figures show one budget: by default each configuration's longest run (a shorter run of the same config is a
prefix of that trajectory, so mixing lengths would only mix horizons), or ``budget`` (``--budget``); the
report states which. Axes other than init and lr are pooled in the figures; ``stats.csv`` keeps every group
apart. Runs of several stores (a ``sweep`` column) are never merged: ``sweep`` becomes the first grouping axis.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from xorlab.analysis import findings, maps, stats, surface
from xorlab.analysis.curves import Curves, FrameCurves
from xorlab.analysis.text import md_code, md_text
from xorlab.core.order import ordered
from xorlab.report import figures, mode_figures, pages
from xorlab.report import maps as map_figures
from xorlab.report.panels import conditioned, panel_axes, panels, pooled_axes
from xorlab.report.progress import Progress, Quiet
from xorlab.store.compact import unique_sorted
from xorlab.store.records import CONFIG_COLUMNS, FILE_HASH, PRED_COLUMNS

FIGURES = {  # stem -> caption; {budget} names the runs the figure shows
    "convergence": "Training loss per init (median and 95 % CI of the median), one panel per learning rate{budget}.",
    "km_curves": "Fraction of runs solved by step t (Kaplan–Meier time to first solve, unsolved runs censored at "
    "max_steps){budget}.",
    "failure_heatmap": "Fraction of runs not solved per init and learning rate{budget}; each cell gives the rate "
    "and failed/n.",
    "failure_modes": "Share of runs in each failure mode per learning rate, one panel per init{budget}.",
    "final_loss": "Final loss per init and learning rate{budget}: dot area and the numbers give how many runs "
    "share a loss bin; stuck runs sit on the plateau levels.",
    "decision_surfaces": "Network output over the input plane for the typical (medoid) run of each mode{budget}, "
    "with how many runs share the mode.",
    "mode_curves": "Loss curves per mode{budget}: the median of all runs in the mode and a few runs sampled with a "
    "fixed seed.",
}
SAMPLED = 5  # individual runs drawn per mode in mode_curves
#: The run columns a report reads (the others -- parameters, point states, trend -- are never decoded; the typical
#: runs' parameters are read for those runs alone).
RUN_COLUMNS_USED = [
    "run_id",
    *CONFIG_COLUMNS,
    FILE_HASH,
    "status",
    "steps_to_solve",
    "final_loss",
    "plateau",
    "mode",
    "engine",  # the report states which engine trained the runs
    *PRED_COLUMNS,
]


def figure_runs(runs: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """The runs the figures use: those with ``max_steps == budget``, or by default each configuration's
    longest run (its shorter runs are prefixes of it). Raises ``ValueError`` for a budget no run has."""
    if budget is not None:
        if not (runs["max_steps"] == budget).any():
            found = ", ".join(f"{int(m)}" for m in sorted(runs["max_steps"].unique()))
            raise ValueError(f"--budget: no runs with max_steps = {budget}; found: {found}")
        return runs[runs["max_steps"] == budget]
    if runs["max_steps"].nunique(dropna=False) == 1:  # one budget: every run is its configuration's longest
        return runs
    keys = [c for c in [stats.SWEEP, *CONFIG_COLUMNS] if c != "max_steps" and c in runs.columns]
    longest = runs.groupby(keys, dropna=False, sort=False)["max_steps"].transform("max")
    return runs[runs["max_steps"] == longest]


def budget_text(shown: pd.DataFrame) -> str:
    """`` after 5,000 steps`` or `` at each configuration's longest max_steps (1,000–5,000)``."""
    lengths = sorted(int(m) for m in shown["max_steps"].unique())
    if len(lengths) == 1:
        return f" after {lengths[0]:,} steps"
    return f" at each configuration's longest max_steps ({lengths[0]:,}–{lengths[-1]:,})"


def document(
    table: pd.DataFrame,
    runs: pd.DataFrame,
    by: Sequence[str],
    inputs: Sequence[str],
    notes: Sequence[str],
    budget: str = "",
    read: Sequence[str] = (),
    reference: str | None = None,
    captions: dict[str, str] | None = None,
) -> list[tuple]:
    """The report as a list of blocks ``(kind, content)``: h1, h2, h3, p, ul, table, figure. ``read`` says what
    the inputs held when read (runs planned and recorded, live writers), first of all."""
    blocks: list[tuple] = [("h1", "xorlab sweep report")]
    blocks.append(("p", "Inputs: " + ", ".join(md_code(p) for p in inputs) + f"; {findings.count(len(runs), 'run')}."))
    if read:
        blocks.append(("ul", list(read)))
    swept = stats.swept_axes(runs)
    blocks.append(("h2", "Conditions"))
    blocks.append(
        (
            "ul",
            [
                *findings.conditions(runs),
                f"Grouped by: {', '.join(f'`{b}`' for b in by) or 'nothing (all runs pooled)'}.",
                reference_text(table, runs, by, reference),
                *notes,
            ],
        )
    )
    single = runs["max_steps"].unique()
    budget_of = {"max_steps": int(single[0])} if len(single) == 1 else None
    pooled = [a for a in swept if a != "seed" and a not in by and not (a in stats.INIT_COLUMNS and "init_label" in by)]
    pooled = ["init" if a in stats.INIT_COLUMNS else a for a in dict.fromkeys(pooled)]
    blocks += [("h2", "Key findings"), *findings.key_findings(table, by, budget_of, list(dict.fromkeys(pooled)))]
    blocks += [("h2", "Summary"), ("table", findings.summary_table(table, by))]
    blocks.append(
        (
            "p",
            "Rates in %; n.r. = not reached within max_steps; p adj. = Benjamini–Hochberg within the family "
            "stated under Key findings; every number is in `stats.csv`.",
        )
    )
    blocks.append(("h2", "Figures"))
    blocks += [("figure", stem, caption.format(budget=budget)) for stem, caption in (captions or FIGURES).items()]
    blocks += [("h2", "Method"), ("ul", findings.method(by, table))]
    return blocks


def reference_text(table: pd.DataFrame, runs: pd.DataFrame, by: Sequence[str], reference: str | None) -> str:
    """Which init the paired comparisons are against, or why there are none."""
    labels = runs["init_label"].unique()
    if "init_label" not in by or len(labels) < 2:
        return "Reference init: none (the groups do not compare inits)."
    if reference is None:
        return (
            f"Reference init: none — the default `{stats.DEFAULT_REFERENCE}` is not among the inits, so there are no "
            "paired comparisons; name one with `--reference`."
        )
    how = "`--reference`" if reference != stats.DEFAULT_REFERENCE else "the default"
    return f"Reference init: **{reference}** ({how}); every other init is compared with it on the same seeds."


def to_markdown(blocks: Sequence[tuple], figure_dir: str = "figures", formats: Sequence[str] = figures.FORMATS) -> str:
    """The report as GitHub-flavoured Markdown (``xorlab.report.pages``): each figure linked as PNG, with its SVG
    when ``formats`` has one."""
    other = (lambda stem: {"SVG": f"{figure_dir}/{stem}.svg"}) if "svg" in formats else (lambda stem: {})
    return pages.to_markdown(
        [(k, f"{figure_dir}/{r[0]}.png", r[1], other(r[0])) if k == "figure" else (k, *r) for k, *r in blocks]
    )


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;line-height:1.45;color:#222;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right;white-space:nowrap}th{background:#f3f3f3}
tbody tr:nth-child(even){background:#fafafa}figure{margin:1.5em 0}img{max-width:100%;height:auto}
figcaption{font-style:italic;color:#444}code{background:#f3f3f3;padding:0 0.2em}.wide{overflow-x:auto}"""


def to_html(blocks: Sequence[tuple], figure_dir: Path) -> str:
    """The report as one self-contained HTML page (``xorlab.report.pages``), figures embedded from ``figure_dir``."""
    return pages.to_html([(k, f"{r[0]}.png", r[1]) if k == "figure" else (k, *r) for k, *r in blocks], figure_dir, CSS)


def store_names(paths: Sequence[str]) -> dict[str, str]:
    """Short names of stores for figure legends: the last path component if those are unique, else ``#1``…"""
    short = {p: str(p).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] for p in paths}
    if len(set(short.values())) == len(short):
        return short
    return {p: f"#{i + 1}" for i, p in enumerate(paths)}


def _figure_frame(runs: pd.DataFrame, reference: str | None) -> tuple[pd.DataFrame, str | None]:
    """Runs as the figures draw them: with several stores, each init label names its store too (never merged)."""
    if not stats.several_sweeps(runs):
        return runs, reference
    names = store_names(ordered(runs[stats.SWEEP].astype(str).unique()))
    sweep = runs[stats.SWEEP].astype(str).map(names)
    return runs.assign(init_label=runs["init_label"].astype(str) + " · " + sweep), None


def draw_figures(
    runs: pd.DataFrame,
    curves: pd.DataFrame | Curves,
    figure_dir: Path,
    reference: str | None = None,
    budget: str = "",
    formats: Sequence[str] = figures.FORMATS,
    progress: Progress | None = None,
) -> None:
    """Draw every figure of ``FIGURES`` from ``runs`` (already the figure subset) and save each in ``formats``.

    ``curves`` is a curve frame or a curve source (``xorlab.analysis.curves``): the loss bands of both groupings
    are computed in one pass over it, the sampled runs' curves and the typical runs' parameters read on demand.
    """
    progress = progress or Quiet()
    source = FrameCurves(curves) if isinstance(curves, pd.DataFrame) else curves
    runs, reference = _figure_frame(runs, reference)
    runs = runs.assign(mode=surface.mode_labels(runs))
    runs, by_panel = panels(runs)  # one panel per lr, or per condition when a study sweeps a few other values too
    facet, group = by_panel.column, ["init_label", *by_panel.axes]  # groups by config axes, tagged with panels
    sampled = surface.sample_runs(runs, SAMPLED)
    bands: dict[str, pd.DataFrame] = {}  # the loss bands, computed beside the figures that do not need them
    # The loss bands' pass over every curves file runs on a thread of its own from here on, beside the figures
    # that do not need them: reading, scattering and selecting are numpy and pyarrow outside the GIL, drawing is
    # Python. The statistics run on a third thread (``build_report``).
    with_curves = ("convergence", "mode_curves")
    groupings = {"convergence": group, "mode": ["mode"]}
    sampled_ids = sampled["run_id"].astype(str).tolist()  # their curves are kept from the bands' pass
    progress.start("figures and loss curves", len(FIGURES) - len(with_curves) + source.units)
    with ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(source.bands, runs, groupings, progress.advance, sampled_ids)
        threshold = runs["loss_threshold"].iloc[0] if runs["loss_threshold"].nunique() == 1 else None
        first = runs["steps_to_solve"].astype("Float64").astype(float)
        log_steps = figures.early_steps(first.groupby(runs[facet]).median(), float(runs["max_steps"].max()))
        summary = by_panel.tag(stats.summarize(runs, group))

        def mode_curves() -> figures.Figure:
            picked = sampled[["run_id", "mode"]].drop_duplicates("run_id").astype({"run_id": str})
            lines = source.lines(picked["run_id"].tolist()).astype({"run_id": str}).merge(picked, on="run_id")
            counts = runs["mode"].value_counts().to_dict()
            order = {m: i for i, m in enumerate(sampled["mode"].drop_duplicates())}
            by_mode = bands["mode"].sort_values("mode", key=lambda m: m.map(order), kind="stable")
            return mode_figures.mode_curves(by_mode, lines, budget, log_steps, counts)

        def surfaces() -> figures.Figure:
            typical = source.with_params(surface.typical_runs(runs))
            return mode_figures.decision_surfaces(typical, surface.decision_surface(typical), budget)

        drawn = {
            "convergence": lambda: figures.convergence(
                by_panel.tag(bands["convergence"]), budget, reference, log_steps, by_panel
            ),
            "km_curves": lambda: figures.km_curves(
                by_panel.tag(stats.km_curves(runs, group)), budget, reference, log_steps, by_panel
            ),
            "failure_heatmap": lambda: figures.failure_heatmap(summary, budget, by_panel),
            "failure_modes": lambda: mode_figures.failure_modes(summary, budget, reference, by_panel),
            "final_loss": lambda: figures.final_loss(runs, threshold, budget, reference, by_panel),
            "decision_surfaces": surfaces,
            "mode_curves": mode_curves,
        }
        for stem, make in drawn.items():
            if stem not in with_curves:
                figures.save(make(), figure_dir, stem, formats)
                progress.advance()
        bands.update(reading.result())
    progress.start("curve figures", len(with_curves))
    for stem in with_curves:
        figures.save(drawn[stem](), figure_dir, stem, formats)
        progress.advance()


def build_report(
    runs: pd.DataFrame,
    curves: pd.DataFrame | Curves,
    out_dir: str | Path,
    inputs: Sequence[str] = (),
    by: str | Sequence[str] | None = None,
    reference: str | None = None,
    budget: int | None = None,
    notes: Sequence[str] = (),
    read: Sequence[str] = (),
    formats: Sequence[str] = figures.FORMATS,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Write ``stats.csv``, ``figures/*.png|svg``, ``report.md`` and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    runs : run table (``records.RUN_COLUMNS``, optionally a ``sweep`` column naming each run's store);
        duplicate rows (the same ``run_id`` in the same store) count once; runs of different stores never merge.
    curves : curve table (``run_id, step, loss``) covering at least ``figure_runs(runs, budget)``, or a curve
        source (``xorlab.analysis.curves.StoreCurves``) that reads the stores out of core.
    out_dir : created if missing; existing files of the same names are overwritten.
    inputs : how to name the inputs in the report (e.g. the sweep directories).
    by : grouping axes (see ``stats.resolve_by``); default every swept axis but ``seed`` (and ``sweep`` first
        when the runs come from several stores).
    reference : init label the comparisons use as reference (default ``notebook`` if present).
    budget : the ``max_steps`` the figures show (default: each configuration's longest).
    notes : extra lines for the report's header (e.g. the ``--where`` filter applied).
    read : what the inputs held when read (runs planned and recorded, a writer still running): the report's first
        lines and ``stats.csv``'s comment lines.
    formats : figure formats, ``png`` (always: the pages embed it) and optionally ``svg``.
    progress : stages and ETA of a long report (``xorlab.report.progress``; default none).

    When two axes are continuous (``xorlab.analysis.maps``), the figures are maps over them at full resolution,
    and the statistics are grouped by the other axes by default (a map shows every point).

    Returns the paths written, by name.
    """
    if runs.empty:
        raise ValueError("no runs to report on")
    progress = progress or Quiet()
    out_dir = Path(out_dir)
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    n_all = len(runs)
    key = [stats.SWEEP, "run_id"] if stats.SWEEP in runs.columns else ["run_id"]
    runs = unique_sorted(runs, key)  # order-free
    runs = stats.with_init_label(runs)
    by = maps.default_by(runs) if by is None else stats.resolve_by(runs, by)
    if stats.several_sweeps(runs) and stats.SWEEP not in by:
        by = [stats.SWEEP, *by]  # runs of different stores are never pooled
    progress.start("statistics")
    labels = runs["init_label"].unique()
    ref = stats.resolve_reference(labels, reference) if reference is not None else stats.reference_init(labels)
    shown = figure_runs(runs, budget)
    # The statistics (their seeded bootstraps mostly outside the GIL) run on a thread of their own from here on,
    # while the figures are prepared and drawn: both only read the run table.
    with ThreadPoolExecutor(max_workers=1) as pool:
        statistics = pool.submit(stats.stats_table, runs, by, ref)
        map_axes = maps.map_axes(shown)
        captions = FIGURES if map_axes is None else map_figures.MAP_FIGURES
        if map_axes is None and panel_axes(shown):  # panels per condition: the captions say which
            captions = {stem: conditioned(text, panel_axes(shown)) for stem, text in captions.items()}
        budget_note = budget_text(shown)
        notes = [*notes, *_figure_notes(runs, shown, budget, budget_note, n_all)]
        if map_axes is None:
            draw_figures(shown, curves, figure_dir, ref, budget_note, formats, progress)
        else:
            progress.start("maps", len(captions))
            save = functools.partial(figures.save, formats=formats)
            map_figures.draw_maps(shown, map_axes, figure_dir, budget_note, save, progress.advance)
            notes.append(
                f"Two continuous axes (`{map_axes[0].name}` × `{map_axes[1].name}`, "
                f"{map_axes[0].values.size:,} × {map_axes[1].values.size:,} values): the figures are maps "
                "over them, one cell per grid point."
            )
        table = statistics.result()
    stats.write_csv(table, out_dir / "stats.csv", [*read, *findings.conditions(runs)])

    progress.start("pages")
    blocks = document(table, runs, by, inputs, notes, budget_note, read, ref, captions)
    paths = {"stats": out_dir / "stats.csv", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["md"].write_text(to_markdown(blocks, formats=formats), encoding="utf-8", newline="\n")
    paths["html"].write_text(to_html(blocks, figure_dir), encoding="utf-8", newline="\n")
    paths |= {f"{stem}.{ext}": figure_dir / f"{stem}.{ext}" for stem in captions for ext in formats}
    return paths


def _figure_notes(
    runs: pd.DataFrame, shown: pd.DataFrame, budget: int | None, budget_note: str, n_all: int
) -> list[str]:
    """The report header's lines about what the figures show (and about duplicate runs)."""
    swept = [a for a in stats.swept_axes(shown) if a != "seed" and a not in stats.INIT_COLUMNS]
    pooled = pooled_axes(swept, shown)
    notes = [
        f"Figures show {findings.count(len(shown), 'run')}{budget_note}"
        + (" (`--budget`)" if budget is not None else " (shorter runs are prefixes of these)")
        + (f", pooled over {', '.join(f'`{a}`' for a in pooled)}." if pooled else ".")
    ]
    if stats.several_sweeps(runs):
        names = store_names(ordered(runs[stats.SWEEP].astype(str).unique()))
        if any(k != v for k, v in names.items()):
            named = ", ".join(f"{md_text(v)} = {md_code(k)}" for k, v in names.items())
            notes.append(f"In the figures, stores are named {named}.")
    if len(runs) < n_all:
        notes.append(f"{n_all - len(runs):,} duplicate runs (same run_id in one store) counted once.")
    return notes
