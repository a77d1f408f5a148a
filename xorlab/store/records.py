"""Results as tidy pandas frames: one row per run, and one row per (run, logged step).

This is the one schema every store file, loader, statistic and figure uses.

Run table (``RUN_COLUMNS``): ``run_id``; every ``TrainConfig`` field (init params flattened to ``init_gain``,
``init_std``, ``init_a``, ``init_path``; None where the scheme has no such parameter); ``status``,
``steps_to_solve`` and ``diverged_step`` (nullable Int64), ``final_loss``, ``plateau`` (stuck runs),
``pred_00 … pred_11`` (final predictions in XOR order) and the final parameters ``w1_00 … w1_13``,
``b1_0 … b1_3``, ``w2_0 … w2_3``, ``b2`` (row-major over the notebook shapes).

Curves table (``CURVE_COLUMNS``): ``run_id, step, loss``: the mean BCE before the update of step ``step`` for
the logged steps 0, k, 2k, … < max_steps, plus ``step = max_steps`` holding ``final_loss``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from xorlab.core.config import TrainConfig, config_dtypes, later_fields
from xorlab.core.data import POINT_LABELS
from xorlab.core.identity import run_id_of
from xorlab.core.inits import INIT_PARAM_NAMES, INIT_PARAM_TYPES, SCHEMES
from xorlab.core.runtable import RunTable
from xorlab.engine.results import BatchResult

CONFIG_DTYPES = config_dtypes()  # derived from TrainConfig: one edit there adds a column here
CONFIG_COLUMNS = list(CONFIG_DTYPES)
INIT_COLUMNS = [f"init_{name}" for name in INIT_PARAM_NAMES]
INIT_STRINGS = {f"init_{n}" for n, kind in INIT_PARAM_TYPES.items() if kind is str}  # string init params
PRED_COLUMNS = [f"pred_{p}" for p in POINT_LABELS]
PARAM_COLUMNS = (
    [f"w1_{i}{j}" for i in range(2) for j in range(4)]
    + [f"b1_{j}" for j in range(4)]
    + [f"w2_{j}" for j in range(4)]
    + ["b2"]
)
OUTCOME_DTYPES = {
    "status": "string",
    "steps_to_solve": "Int64",
    "diverged_step": "Int64",
    "final_loss": "float64",
    "plateau": "string",
}
OUTCOME_COLUMNS = list(OUTCOME_DTYPES)
#: Failure taxonomy from behaviour (``xorlab.core.modes``); stores written before it read these as null.
BEHAVIOUR_DTYPES = {
    "mode": "string",
    **{f"point_{p}": "string" for p in POINT_LABELS},
    "trend": "string",
    "period": "Int64",
    "swing": "float64",
    "saturated_units": "Int64",
    "dead_units": "Int64",
    "plateau_distance": "float64",
}
#: Final parameters of a run of any hidden width H other than the notebook's 4: one list, w1 row-major (2·H),
#: b1 (H), w2 (H), b2 (1); null for width-4 runs, whose parameters are the ``PARAM_COLUMNS`` (NaN for the others).
WIDE_PARAMS = "params"
WIDE_DTYPES = {WIDE_PARAMS: "list<float64>"}
PROVENANCE_DTYPES = {"engine": "string"}  # which engine trained the run (xorlab.engine.ENGINES)
#: What else determines a run's result beyond its config: a from_file run's init file content (sha256).
FILE_HASH = "init_file_sha256"
IDENTITY_DTYPES = {FILE_HASH: "string"}
#: Config fields newer than the store's first runs (``spec(since=...)``): a file without the column holds runs
#: at the field's default, which readers fill in (``lr_hidden`` and ``lr_output`` read as 1.0 from 0.1 stores).
DEFAULTED_COLUMNS = later_fields()


def unremarkable(column: str, value: Any) -> bool:
    """True for a later config field at its default (``lr_hidden`` = 1): the condition every run held before the
    field existed, which lists of what was held fixed leave unsaid."""
    return column in DEFAULTED_COLUMNS and value == DEFAULTED_COLUMNS[column]


#: Columns a runs file may lack (newer than format v1): null, or the default of ``DEFAULTED_COLUMNS``.
OPTIONAL_COLUMNS = (
    set(IDENTITY_DTYPES) | set(BEHAVIOUR_DTYPES) | set(PROVENANCE_DTYPES) | set(DEFAULTED_COLUMNS) | set(WIDE_DTYPES)
)
CURVE_COLUMNS = ["run_id", "step", "loss"]


def run_dtypes(cls: type[TrainConfig] = TrainConfig) -> dict[str, str]:
    """Column -> dtype of the run table of configs of class ``cls``: the store's run schema."""
    return {
        "run_id": "string",
        **config_dtypes(cls),
        **IDENTITY_DTYPES,
        **OUTCOME_DTYPES,
        **BEHAVIOUR_DTYPES,
        **PROVENANCE_DTYPES,
        **{c: "float64" for c in PRED_COLUMNS + PARAM_COLUMNS},
        **WIDE_DTYPES,
    }


RUN_DTYPES = run_dtypes()
RUN_COLUMNS = list(RUN_DTYPES)


def run_id(cfg: TrainConfig) -> str:
    """Stable id of a run: sha256 of its complete, canonical config (sorted-key JSON), first 16 hex digits
    (``xorlab.core.identity``, which a sweep's bulk ids use too).

    For ``from_file`` the file is part of the config: its resolved path and the sha256 of its bytes are hashed,
    so ``start.npz`` and ``./start.npz`` name the same run and editing the file makes a new one.
    """
    cached = cfg.__dict__.get("_run_id")  # computed once per config object (planning, chunks, records)
    if cached is None:
        cached = run_id_of(cfg.identity())
        object.__setattr__(cfg, "_run_id", cached)
    return cached


def _config_columns(configs: Sequence[TrainConfig], ids: Sequence[str] | np.ndarray | None) -> dict[str, Any]:
    """``run_id``, the canonical config columns and ``init_file_sha256``, as the run table holds them."""
    table = RunTable.from_configs(configs)
    dtypes = config_dtypes(table.config_cls)
    columns: dict[str, Any] = {"run_id": list(ids) if ids is not None else [run_id(c) for c in configs]}
    for name in dtypes:  # float params are NaN where unset; a path column is a string column
        columns[name] = pd.array(table.columns[name], dtype="string") if name in INIT_STRINGS else table.columns[name]
    columns[FILE_HASH] = pd.array(table.file_sha256, dtype="string")
    return columns


def config_frame(configs: Sequence[TrainConfig], ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
    """One row per config: ``run_id`` (``ids`` if given) plus the canonical config columns.

    ``configs`` is a list of configs or a ``RunTable`` (whose columns are used as they are)."""
    return pd.DataFrame(_config_columns(configs, ids))


def _nullable_steps(values: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.maximum(values, 0).astype(np.int64), values < 0)


def _strings(values: Any) -> pd.api.extensions.ExtensionArray:
    return pd.array(np.asarray(values, dtype=object), dtype="string")


def _table(batch: BatchResult) -> RunTable:
    return batch.table if batch.table is not None else RunTable.from_configs(batch.configs)


def runs_frame(batch: BatchResult, ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
    """The run table of a trained batch (``ids`` defaults to ``run_id`` of each config)."""
    table = _table(batch)
    columns = _config_columns(table, ids)
    columns["status"] = batch.status.astype(str)
    columns["steps_to_solve"] = _nullable_steps(batch.steps_to_solve)
    columns["diverged_step"] = _nullable_steps(batch.diverged_step)
    columns["final_loss"] = batch.final_loss
    columns["plateau"] = _strings(batch.plateau)
    columns["engine"] = _strings([batch.engine] * len(batch) if batch.run_engine is None else batch.run_engine)
    for col, dtype in BEHAVIOUR_DTYPES.items():
        values = batch.behaviour[col]
        columns[col] = _strings(values) if dtype == "string" else pd.array(values, dtype=dtype)
    columns.update(zip(PRED_COLUMNS, batch.predictions.T, strict=True))
    columns.update(_param_columns(batch.params, table.columns["width"]))
    return pd.DataFrame(columns, columns=list(run_dtypes(table.config_cls)))


def _param_columns(params: dict[str, np.ndarray], width: np.ndarray) -> dict[str, Any]:
    """``PARAM_COLUMNS`` and ``params`` (``WIDE_PARAMS``) of runs of hidden widths ``width`` from notebook-shaped
    parameters (padded to the widest run)."""
    n, h = len(width), params["w1"].shape[2]
    four = width == 4
    w1, b1, w2, b2 = (params[k] for k in ("w1", "b1", "w2", "b2"))
    wide = np.full(n, None, dtype=object)
    if four.all() and h == 4:
        flat = np.concatenate([a.reshape(n, -1) for a in (w1, b1, w2, b2)], axis=1)
    else:
        flat = np.full((n, len(PARAM_COLUMNS)), np.nan)
        rows = np.flatnonzero(four)
        if rows.size:
            parts = (w1[rows, :, :4], b1[rows, :, :4], w2[rows, :4], b2[rows])
            flat[rows] = np.concatenate([a.reshape(rows.size, -1) for a in parts], axis=1)
        for i in np.flatnonzero(~four).tolist():
            k = int(width[i])
            wide[i] = np.concatenate([w1[i, :, :k].ravel(), b1[i, 0, :k], w2[i, :k, 0], b2[i].ravel()])
    return {**dict(zip(PARAM_COLUMNS, flat.T, strict=True)), WIDE_PARAMS: wide}


def curves_frame(batch: BatchResult, ids: Sequence[str] | np.ndarray | None = None, every: int = 1) -> pd.DataFrame:
    """Long-form losses of a trained batch: logged steps that are multiples of ``every`` and below each run's
    end, then its final loss (at ``step = max_steps``)."""
    names = np.asarray(ids if ids is not None else [run_id(c) for c in batch.configs], dtype=object)
    max_steps = _table(batch).columns["max_steps"]
    steps = np.broadcast_to(np.append(batch.loss_steps, 0), (len(names), batch.loss_steps.size + 1)).copy()
    steps[:, -1] = max_steps  # (N, S + 1): the logged steps, then each run's end
    keep = (steps < max_steps[:, None]) & (steps % every == 0)
    keep[:, -1] = True
    # Row-major order is (run, step) order: logged steps ascend and every kept one is below the run's end.
    loss = np.concatenate([batch.losses, batch.final_loss[:, None]], axis=1)
    every_kept = keep.all()  # the usual chunk: one budget, every logged step
    categories = pd.Index(pd.unique(names))  # a batch may hold the same config twice; one string per run
    codes = categories.get_indexer(names).astype(np.int32)  # run index -> category code
    return pd.DataFrame(
        {
            "run_id": pd.Categorical.from_codes(np.repeat(codes, keep.sum(axis=1)), categories=categories),
            "step": (steps.reshape(-1) if every_kept else steps[keep]).astype(np.int64, copy=False),
            "loss": loss.reshape(-1) if every_kept else loss[keep],
        }
    )


def params_of(row: pd.Series) -> dict[str, np.ndarray]:
    """Final parameters of one run-table row in the notebook's shapes, for its own hidden width (``PARAM_COLUMNS``
    at width 4, else the ``params`` list; for decision surfaces, restarts)."""
    width = int(row["width"]) if "width" in row and not pd.isna(row["width"]) else 4
    if width == 4:
        return unflatten(row[PARAM_COLUMNS].to_numpy(dtype=np.float64), 4)
    return unflatten(np.asarray(row[WIDE_PARAMS], dtype=np.float64), width)


def unflatten(v: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Notebook-shaped parameters from their flat record (w1 row-major, b1, w2, b2) of a width-``width`` run."""
    if v.shape != (4 * width + 1,):
        raise ValueError(f"a width-{width} run has {4 * width + 1} parameters, got {v.shape}")
    return {
        "w1": v[: 2 * width].reshape(2, width),
        "b1": v[2 * width : 3 * width].reshape(1, width),
        "w2": v[3 * width : 4 * width].reshape(width, 1),
        "b2": v[4 * width :].reshape(1, 1),
    }


def _fmt(value: object) -> str:
    """``%g`` when it names the value exactly (0.01, 2.5), else the shortest exact text (``repr``): a fine grid's
    neighbouring values (0.0100693863148) never share a label."""
    if not isinstance(value, float):
        return str(value)
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def init_labels(runs: pd.DataFrame) -> pd.Series:
    """Readable init per run: the scheme, plus each parameter that varies or differs from its default.

    E.g. ``xavier_normal``, ``normal(std=0.01)``, ``from_file(path=w.npz)``. A label depends only on the run's
    init columns and on which values occur, so it is computed once per distinct combination (a million-run
    store has a handful) and spread to the runs.
    """
    columns = ["init", *(f"init_{p}" for p in INIT_PARAM_NAMES)]
    columns += ["init_file_sha256"] if "init_file_sha256" in runs else []
    from xorlab.store.compact import group_numbers  # (Arrow loaded only where runs are grouped)

    code = group_numbers(runs, columns)  # numbered by first appearance
    distinct = runs.loc[~pd.Series(code).duplicated().to_numpy(), columns].reset_index(drop=True)
    labels = _init_labels(distinct).to_numpy()
    return pd.Series(labels[code], index=runs.index, name="init_label").astype(str)


def _init_labels(runs: pd.DataFrame) -> pd.Series:
    labels = runs["init"].astype(object).copy()
    for name, rows in runs.groupby("init", sort=True).groups.items():
        scheme = SCHEMES.get(name)
        sub = runs.loc[rows]
        shown = []
        for p in INIT_PARAM_NAMES:
            col = sub[f"init_{p}"]
            if col.isna().all():
                continue
            default = scheme.params.get(p) if scheme is not None else None
            if col.nunique(dropna=False) > 1 or col.iloc[0] != default:
                shown.append(p)
        if shown:
            paths = sub["init_path"].dropna()
            short = _short if paths.map(_short).nunique() == paths.nunique() else str  # file names, if unique
            text = {p: sub[f"init_{p}"].map(short if p == "path" else _fmt).to_numpy() for p in shown}
            labels.loc[rows] = [f"{name}({', '.join(f'{p}={text[p][i]}' for p in shown)})" for i in range(len(sub))]
    if "init_file_sha256" in runs and runs["init_file_sha256"].notna().any():
        # One path, several contents (the file was edited between sweeps): never one group. The label gains the
        # content hash, so statistics keep the two experiments apart.
        files = runs[["init_path", "init_file_sha256"]].dropna()
        edited = files.groupby("init_path")["init_file_sha256"].nunique()
        hit = runs["init_path"].isin(edited.index[edited > 1]).fillna(False).to_numpy(dtype=bool)
        if hit.any():
            labels.loc[hit] = [
                f"{lab}@{sha[:8]}" for lab, sha in zip(labels[hit], runs.loc[hit, "init_file_sha256"], strict=True)
            ]
    return labels.astype(str).rename("init_label")


def _short(path: object) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]
