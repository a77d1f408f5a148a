"""Statistics of a sweep: pandas run table in, one tidy pandas frame out, every interval from ``scipy.stats``.

Groups are the distinct values of ``by`` (default: every swept axis except ``seed``; see ``default_by``). The
init scheme and its parameters are one axis, ``init_label`` (``normal(std=0.01)``); ``init`` in ``by`` means it.

Per group (``summarize``):

- ``n``; ``solved`` and ``success_rate`` with a Wilson 95 % interval (``binomtest(...).proportion_ci``);
- counts and rates of each final status: ``diverged``, ``slow``, ``stuck`` and ``stuck_<plateau>`` (the nearest
  loss plateau, kept for older stores), and of each failure mode of ``xorlab.core.modes.MODES``: ``mode_<name>`` and
  ``mode_<name>_rate`` (``mode_unknown``: runs from stores written before the taxonomy);
- steps to solve as survival data: event = run solved at ``steps_to_solve``, every other run right-censored at
  its ``max_steps``. Kaplan–Meier via ``scipy.stats.ecdf(CensoredData)``, pointwise log-log 95 % band. The
  median is the first step where S(t) ≤ 0.5; its interval is read off the band the same way (``km_median``).
  NaN means "not reached within max_steps".
- ``final_loss`` median and quartiles over runs with a finite final loss.

``compare_inits`` pairs each init with a reference init run for run on the same seed and every other config
field, and gives the paired difference in success rate with a seeded bootstrap interval and McNemar's exact p.
The multiple-comparison *family* is fixed by the design: every init against the reference within one stratum
(one value of every grouping axis but the init, e.g. one lr × max_steps, and one store when several are
reported). Benjamini–Hochberg adjusts within each family, so adding runs of other strata (another store,
another lr) never changes an adjusted p.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from xorlab.analysis.survival import CONFIDENCE, kaplan_meier, km_median, survival_data
from xorlab.core.activations import ACTIVATIONS
from xorlab.core.inits import INIT_PARAM_NAMES, SCHEMES
from xorlab.core.modes import MODES
from xorlab.core.order import label_parts, natural_key, ordered
from xorlab.core.outcome import PLATEAU_LABELS
from xorlab.store.records import CONFIG_COLUMNS, init_labels

INIT_COLUMNS = ["init", *(f"init_{p}" for p in INIT_PARAM_NAMES)]
PAIR_COLUMNS = [c for c in CONFIG_COLUMNS if c not in INIT_COLUMNS]  # what a paired comparison holds fixed
SWEEP = "sweep"  # the store a run was loaded from, when a report reads several (never merged across stores)
AXES = [SWEEP, *PAIR_COLUMNS, "init_label"]  # what ``by`` may name
FAILURES = ["diverged", "slow", "stuck", *(f"stuck_{p}" for p in PLATEAU_LABELS)]
UNKNOWN_MODE = "unknown"  # a null ``mode``: the run was recorded before the failure taxonomy existed
MODE_NAMES = [*MODES, UNKNOWN_MODE]
MODE_COLUMNS = [f"mode_{m}" for m in MODE_NAMES]
RELU_FAMILY = [name for name, a in ACTIVATIONS.items() if a.family == "relu"]
N_BOOT = 4000
BOOT_SEED = 20240531


def swept_axes(runs: pd.DataFrame) -> list[str]:
    """Config columns taking more than one distinct value (NaN counts as a value), in ``CONFIG_COLUMNS`` order.

    An init parameter (``init_std`` …) counts only if it varies *within* one scheme: NaN for schemes without
    the parameter is not a sweep of it.
    """
    out = []
    for c in CONFIG_COLUMNS:
        if c not in runs.columns:  # a frame from before a later field (lr_hidden …): held at its default
            continue
        if c in INIT_COLUMNS[1:]:
            swept = (runs.groupby("init", sort=False)[c].nunique(dropna=False) > 1).any()
        else:
            swept = runs[c].nunique(dropna=False) > 1
        if swept:
            out.append(c)
    return out


def distinct_values(column: pd.Series) -> list:
    """The distinct values of ``column`` as plain Python values (None for missing), in ``ordered`` order: the
    duplicates are dropped first, so only the few distinct values are converted."""
    uniq = column.drop_duplicates().astype(object)
    return ordered(uniq.where(uniq.notna(), None).unique())


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def with_init_label(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with an ``init_label`` column (unchanged if it has one)."""
    if "init_label" in runs:
        return runs
    return runs.assign(init_label=init_labels(runs))


def several_sweeps(runs: pd.DataFrame) -> bool:
    """Whether ``runs`` come from more than one store (a ``sweep`` column with several values)."""
    return SWEEP in runs.columns and runs[SWEEP].nunique() > 1


def default_by(runs: pd.DataFrame) -> list[str]:
    """Every swept axis except ``seed``, with ``init`` and its parameters as the one axis ``init_label``; first
    ``sweep`` when the runs come from several stores. Groups come from the data: runs whose init labels differ
    (also by the content hash of an init file edited between sweeps) are never pooled."""
    first = [SWEEP] if several_sweeps(runs) else []
    axes = [c for c in swept_axes(runs) if c != "seed"]
    if with_init_label(runs)["init_label"].nunique() > 1 and not set(axes) & set(INIT_COLUMNS):
        axes.append("init")  # inits that differ only in what the records add (an init file's content): apart
    return resolve_by(runs, first + axes)


def resolve_by(runs: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    """Validate grouping axes (a list, or a comma-separated string); ``init``/``init_*`` mean ``init_label``.

    Raises ``ValueError`` (one line) for an axis that is not a config column.
    """
    if by is None:
        return default_by(runs)
    names = [b.strip() for b in by.split(",") if b.strip()] if isinstance(by, str) else list(by)
    out: list[str] = []
    for name in names:
        name = "init_label" if name in INIT_COLUMNS else name
        if name not in AXES or (name == SWEEP and SWEEP not in runs.columns):
            allowed = [*([SWEEP] if SWEEP in runs.columns else []), "init", *PAIR_COLUMNS]
            raise ValueError(f"unknown grouping axis {name!r}; allowed: {', '.join(allowed)}")
        if name not in out:
            out.append(name)
    return out


def sort_groups(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` sorted by ``columns`` in meaning order (``order.natural_key``: numbers as numbers, also inside
    init labels and store names), stably, with a fresh index. Every table and CSV of a report uses this order."""
    columns = [c for c in columns if c in frame.columns]
    if not columns or frame.empty:
        return frame.reset_index(drop=True)

    def key(col: pd.Series) -> pd.Series:
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            return col
        return col.astype(object).map(natural_key)

    return frame.sort_values(list(columns), key=key, kind="stable", na_position="last", ignore_index=True)


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (NaN, NaN for n = 0)."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def km_curves(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Fraction solved by step t per group, long form: ``by`` + ``step, solved, solved_lo, solved_hi``."""
    runs = with_init_label(runs)
    runs = runs[list(dict.fromkeys([*by, "steps_to_solve", "max_steps"]))]  # groups of these only
    parts = []
    for key, sub in _groups(runs, by):
        km = kaplan_meier(*survival_data(sub))
        part = pd.DataFrame(
            {
                "step": km["step"],
                "solved": 1 - km["surv"],
                "solved_lo": 1 - km["surv_hi"],
                "solved_hi": 1 - km["surv_lo"],
            }
        )
        parts.append(part.assign(**dict(zip(by, key, strict=True))))
    return pd.concat(parts, ignore_index=True)[[*by, "step", "solved", "solved_lo", "solved_hi"]]


def _groups(runs: pd.DataFrame, by: Sequence[str]):
    if not by:
        yield (), runs
        return
    yield from runs.groupby(list(by), sort=True, dropna=False)


def run_modes(runs: pd.DataFrame) -> np.ndarray:
    """Failure mode per run (object array of ``MODE_NAMES``): ``mode``; where it is null (a store written before
    the taxonomy) the status when it names the mode exactly (``solved``, ``diverged``), else ``unknown``."""
    mode = runs["mode"].astype(object) if "mode" in runs.columns else pd.Series(None, index=runs.index, dtype=object)
    status = runs["status"].astype(object)
    exact = status.where(status.isin(["solved", "diverged"]), UNKNOWN_MODE)
    return mode.where(mode.notna(), exact).to_numpy(dtype=object)


def _summary_row(sub: pd.DataFrame) -> dict[str, float]:
    n = len(sub)
    status = sub["status"].to_numpy(dtype=object)
    plateau = sub["plateau"].astype(object).where(sub["plateau"].notna(), "").to_numpy(dtype=object)
    counts = {"solved": int((status == "solved").sum())}
    for mode in ("diverged", "slow", "stuck"):
        counts[mode] = int((status == mode).sum())
    for p in PLATEAU_LABELS:
        counts[f"stuck_{p}"] = int(((status == "stuck") & (plateau == p)).sum())
    lo, hi = wilson_interval(counts["solved"], n)
    row: dict[str, float] = {"n": n, "solved": counts["solved"], "success_rate": counts["solved"] / n}
    row |= {"success_lo": lo, "success_hi": hi}
    for mode in FAILURES:
        row[mode] = counts[mode]
        row[f"{mode}_rate"] = counts[mode] / n
    modes = run_modes(sub)
    for m in MODE_NAMES:
        k = int((modes == m).sum())
        row |= {f"mode_{m}": k, f"mode_{m}_rate": k / n}
    med, med_lo, med_hi = km_median(kaplan_meier(*survival_data(sub)))
    row |= {"km_median": med, "km_median_lo": med_lo, "km_median_hi": med_hi}
    loss = sub["final_loss"].to_numpy(dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    q25, q50, q75 = np.quantile(loss, [0.25, 0.5, 0.75]) if loss.size else (math.nan,) * 3
    row |= {"final_loss_median": q50, "final_loss_q25": q25, "final_loss_q75": q75}
    return row


def summarize(runs: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """One row per group: counts, rates, Wilson interval, KM median with interval, final-loss quartiles."""
    runs = with_init_label(runs)
    by = resolve_by(runs, by)
    read = ["status", "plateau", "mode", "steps_to_solve", "max_steps", "final_loss"]  # what _summary_row reads
    dead = mode_dead_possible(runs)
    runs = runs[list(dict.fromkeys([*by, *(c for c in read if c in runs.columns)]))]  # groups of these only
    rows = [{**dict(zip(by, key, strict=True)), **_summary_row(sub)} for key, sub in _groups(runs, by)]
    out = sort_groups(pd.DataFrame(rows), by)
    return out if dead else out.drop(columns=["mode_dead", "mode_dead_rate"], errors="ignore")


def mode_dead_possible(runs: pd.DataFrame) -> bool:
    """True if some run has a ReLU-family activation: only those can be in mode ``dead``, and a study without
    them has no ``mode_dead`` columns (its tables stay as they were before ReLU existed)."""
    if "activation" not in runs.columns:
        return False
    return bool(runs["activation"].astype(str).isin(RELU_FAMILY).any())


BOOT_CELLS = (
    2**21
)  # resampled values held at once by a bootstrap (16 MB of indices): scipy resamples in batches of this
# size; small enough for the allocator to reuse one block (a 64 MB batch is mapped and unmapped, page by page, anew)


def paired_diff(d: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """Mean of the paired differences d ∈ {-1, 0, 1} and its percentile-bootstrap interval over pairs: the interval
    ``scipy.stats.bootstrap(method="percentile", vectorized=True)`` gives with a generator seeded with ``seed``, bit
    for bit (``tests/test_stats.py`` checks), so the same data always give the same interval.

    The resampling is scipy's, done here in fewer passes: the same draws (``rng.integers(0, n, (batch, n))``, batch
    by batch, which consume the generator as one call would), each resample's mean as its exact integer sum over
    n (what ``np.mean`` of integers gives), and the interval from ``scipy.stats.quantile`` of the same bootstrap
    distribution. scipy promotes the differences to float64 and gathers them with ``sample[..., i]``; gathering int8
    costs 40 % less of a million-run report's statistics. Batches hold at most ``BOOT_CELLS`` values, so there is no
    (n_boot x pairs) array (1.6 GB for 50,000 pairs)."""
    mean = float(d.mean())
    if np.all(d == d[0]):  # every resample is identical: the interval is the point
        return mean, mean, mean
    small = d.astype(np.int8)
    values = small if np.array_equal(small, d) else np.asarray(d, dtype=np.float64)
    n = values.size
    rng = np.random.default_rng(seed)
    batch = max(1, BOOT_CELLS // n)
    means = np.empty(n_boot)
    for k in range(0, n_boot, batch):
        drawn = rng.integers(0, n, (min(batch, n_boot - k), n))
        total = np.take(values, drawn).sum(axis=-1, dtype=np.int64 if values.dtype == np.int8 else np.float64)
        means[k : k + drawn.shape[0]] = total / n
    alpha = np.float64((1 - CONFIDENCE) / 2)
    low, high = stats.quantile(means, np.stack([alpha, 1 - alpha]), axis=-1)
    return mean, float(low), float(high)


DEFAULT_REFERENCE = "notebook"


def reference_init(labels: Sequence[str]) -> str | None:
    """The default reference: ``notebook`` if present, else None (no reference, no paired comparisons; never
    an arbitrary stand-in)."""
    return DEFAULT_REFERENCE if DEFAULT_REFERENCE in set(labels) else None


def _init_value(text: str) -> object:
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text)


def _spelled(label: str) -> tuple[str, dict[str, object], str | None]:
    name, params, sha = label_parts(label)
    defaults = dict(SCHEMES[name].params) if name in SCHEMES else {}
    full = {k: _init_value(v) for k, v in defaults.items()} | {k: _init_value(v) for k, v in params.items()}
    return name, full, sha


def resolve_reference(labels: Sequence[str], spelling: str) -> str:
    """The init label in ``labels`` that ``spelling`` names: the same scheme with numerically equal parameters
    (``normal(std=1.0)`` names ``normal(std=1)``; a parameter left out means its default, so ``normal`` names
    ``normal(std=1)``). Raises ``ValueError`` (one line) when none or several match."""
    labels = ordered(labels)
    if spelling in labels:
        return spelling
    name, params, sha = _spelled(spelling)
    hits = []
    for label in labels:
        n, p, s = _spelled(label)
        if n == name and p == params and (sha is None or s is None or s.startswith(sha)):
            hits.append(label)
    if len(hits) == 1:
        return hits[0]
    found = ", ".join(labels)
    if not hits:
        raise ValueError(f"reference: no init {spelling!r} in the runs; found: {found}")
    raise ValueError(f"reference: {spelling!r} names several inits ({', '.join(hits)}); give one of them exactly")


def compare_inits(
    runs: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    reference: str | None = None,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> pd.DataFrame:
    """Each init vs ``reference``, paired run for run on seed and every other config field, per group of ``by``.

    Columns: ``by`` + ``ref_init, n_pairs, diff_vs_ref`` (success rate of this init minus the reference's on
    the same pairs), ``diff_lo, diff_hi`` (percentile bootstrap over pairs, ``n_boot`` resamples from a
    generator seeded with ``seed`` afresh for every comparison), ``only_this_solved, only_ref_solved``
    (discordant pairs), ``mcnemar_p`` (exact: binomial test of the discordant split), ``family`` (the stratum:
    every grouping axis but the init, e.g. ``lr=0.1, max_steps=1000``), ``family_size`` (comparisons in it) and
    ``mcnemar_p_bh`` (Benjamini–Hochberg within the family). Empty if ``by`` does not contain ``init_label``.
    """
    runs = with_init_label(runs)
    by = resolve_by(runs, by)
    cols = [
        *by,
        "ref_init",
        "n_pairs",
        "diff_vs_ref",
        "diff_lo",
        "diff_hi",
        "only_this_solved",
        "only_ref_solved",
        "mcnemar_p",
        "family",
        "family_size",
        "mcnemar_p_bh",
    ]
    if "init_label" not in by or runs["init_label"].nunique() < 2:
        return pd.DataFrame(columns=cols)
    labels = runs["init_label"].unique()
    ref = resolve_reference(labels, reference) if reference is not None else reference_init(labels)
    if ref is None:
        return pd.DataFrame(columns=cols)
    strata = [b for b in by if b != "init_label"]
    needed = list(dict.fromkeys([*strata, *PAIR_COLUMNS, "init_label"]))  # not a copy of every column
    solved = runs[needed].assign(_ok=(runs["status"] == "solved").astype(np.int8))
    pairs = []  # (stratum, init label, paired differences), then the bootstraps on every core
    for key, sub in _groups(solved, strata):
        sub = sub.drop_duplicates([*PAIR_COLUMNS, "init_label"])
        wide = sub.set_index([*PAIR_COLUMNS, "init_label"])["_ok"].unstack("init_label")  # (pairs, inits)
        if ref not in wide:
            continue
        for label in ordered(c for c in wide.columns if c != ref):
            pair = wide[[label, ref]].dropna()
            if not pair.empty:
                pairs.append((key, label, (pair[label] - pair[ref]).to_numpy(dtype=np.int64)))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # numpy's draws release the GIL
        boots = list(pool.map(lambda p: paired_diff(p[2], n_boot, seed), pairs))
    rows = []
    for (key, label, d), (diff, lo, hi) in zip(pairs, boots, strict=True):
        b, c = int((d == 1).sum()), int((d == -1).sum())
        p = stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
        rows.append(
            {
                **dict(zip(strata, key, strict=True)),
                "init_label": label,
                "ref_init": ref,
                "n_pairs": len(d),
                "diff_vs_ref": diff,
                "diff_lo": lo,
                "diff_hi": hi,
                "only_this_solved": b,
                "only_ref_solved": c,
                "mcnemar_p": float(p),
                "family": family_name(dict(zip(strata, key, strict=True))),
            }
        )
    out = sort_groups(pd.DataFrame(rows, columns=cols), by)
    if len(out):
        fam = out.groupby("family", sort=False)["mcnemar_p"]
        out["family_size"] = fam.transform("size").astype(np.int64)
        out["mcnemar_p_bh"] = fam.transform(
            lambda p: stats.false_discovery_control(p.to_numpy(dtype=float), method="bh")
        )
    return out


def family_name(stratum: dict) -> str:
    """``lr=0.1, max_steps=1000``: one multiple-comparison family (``all`` when there is one stratum)."""
    return ", ".join(f"{k}={_fmt(v)}" for k, v in stratum.items()) or "all"


def stats_table(
    runs: pd.DataFrame, by: str | Sequence[str] | None = None, reference: str | None = None
) -> pd.DataFrame:
    """``summarize`` joined with ``compare_inits`` (comparison columns NaN for the reference and unpaired rows)."""
    runs = with_init_label(runs)
    by = resolve_by(runs, by)
    summary = summarize(runs, by)
    comp = compare_inits(runs, by, reference)
    if comp.empty:
        return summary
    out = summary.merge(comp, on=by, how="left", sort=False)
    for col in ("n_pairs", "only_this_solved", "only_ref_solved", "family_size"):
        out[col] = out[col].astype("Int64")
    return out


def write_csv(frame: pd.DataFrame, path: str | Path, comments: Sequence[str] = ()) -> None:
    """Write a stats frame byte-stably and exactly: every float as its shortest round-trip text (read back with
    ``pd.read_csv(path, comment="#", float_precision="round_trip")`` it is bit-identical), ``\\n`` line ends, no
    index. ``comments`` (what the report read: runs planned and recorded, live writers) go first, each line
    starting with ``# ``."""
    head = "".join(f"# {' '.join(str(c).split())}\n" for c in comments)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(head)
        frame.to_csv(f, index=False, lineterminator="\n")


def thin_steps(steps: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` of the sorted distinct ``steps``, evenly spaced by index, first and last kept."""
    steps = np.unique(steps)
    if steps.size <= max_points:
        return steps
    return steps[np.unique(np.linspace(0, steps.size - 1, max_points).round().astype(np.int64))]


def curve_bands(
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    by: Sequence[str] = ("init_label", "lr"),
    max_points: int = 200,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Median loss per (group, step) with a distribution-free interval for the median.

    The interval is the pair of order statistics (X_(l), X_(n-l+1)) with l = ``binom.ppf(α/2, n, ½)`` (at
    least 1), the exact binomial interval ``scipy.stats.quantile_test`` gives. Non-finite losses (diverged
    runs) count as +inf, i.e. as the worst loss. At most ``max_points`` steps per curve (``thin_steps``).

    Returns ``by`` + ``step, n, loss_median, loss_lo, loss_hi``, sorted.
    """
    by = list(by)
    runs = with_init_label(runs)
    keep = thin_steps(curves["step"].to_numpy(), max_points)
    df = curves.loc[curves["step"].isin(keep), ["run_id", "step", "loss"]]
    # Group code per run (groups in sorted order), then one numpy sort by (group, step, loss): no string sorts.
    meta = runs[["run_id", *by]].drop_duplicates()
    groups = meta[by].drop_duplicates().sort_values(by, kind="stable", ignore_index=True)
    meta = meta.merge(groups.reset_index(names="_g"), on=by, how="left")[["run_id", "_g"]]
    if meta["run_id"].is_unique:  # map through the categories: no per-row string work on millions of rows
        ids = df["run_id"].astype("category")
        per_cat = meta.set_index("run_id")["_g"].reindex(ids.cat.categories.astype(str)).to_numpy(dtype=float)
        g = np.append(per_cat, np.nan)[ids.cat.codes.to_numpy()]  # code -1 (missing id) -> NaN
        df, g = df[~np.isnan(g)], g[~np.isnan(g)].astype(np.int64)
    else:  # a run in several stores belongs to one group per store
        df = df.astype({"run_id": str}).merge(meta.astype({"run_id": str}), on="run_id")
        g = df["_g"].to_numpy(dtype=np.int64)
    step = df["step"].to_numpy(dtype=np.int64)
    v = df["loss"].to_numpy(dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.inf)
    order = np.lexsort((v, step, g))
    g, step, v = g[order], step[order], v[order]
    new = np.r_[True, (g[1:] != g[:-1]) | (step[1:] != step[:-1])]
    start = np.flatnonzero(new)
    n = np.diff(np.r_[start, len(v)])
    rank = np.maximum(stats.binom.ppf((1 - confidence) / 2, n, 0.5).astype(np.int64), 1)  # l, 1-based
    out = groups.iloc[g[start]].reset_index(drop=True)
    out["step"] = step[start]
    out["n"] = n
    with np.errstate(invalid="ignore"):  # inf + inf is inf; no NaN can arise (losses are >= 0)
        out["loss_median"] = (v[start + (n - 1) // 2] + v[start + n // 2]) / 2
    out["loss_lo"] = v[start + rank - 1]
    out["loss_hi"] = v[start + n - rank]
    return out
