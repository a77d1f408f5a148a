"""Steps to solve as survival data: Kaplan–Meier estimate, its log-log band and the median with its interval.

The event is a run's *first* solve (``steps_to_solve``); runs that never solved are right-censored at their
``max_steps``. Everything is computed by ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``; ``xorlab.analysis.stats``
applies it per group (``km_median`` in ``summarize``, ``km_curves`` for the figure).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95  # every interval of a report (``xorlab.analysis.stats`` uses this one too)


def survival_data(runs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(time, event): time to the *first* solve, ``steps_to_solve``, for runs that ever solved (event); runs
    that never did are right-censored at ``max_steps`` (they were observed unsolved until then; a diverged run is
    frozen, so it too stays unsolved to the end)."""
    solved_at = runs["steps_to_solve"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    event = ~np.isnan(solved_at)
    time = np.where(event, solved_at, runs["max_steps"].to_numpy(dtype=np.float64))
    return time, event


def kaplan_meier(time: np.ndarray, event: np.ndarray, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Kaplan–Meier survival S(t) = P(not solved after t steps) with its pointwise log-log band.

    Returns one row per distinct observed time, starting with ``step = 0`` (S = 1): ``step, surv, surv_lo,
    surv_hi``. Where the log-log band is undefined (S = 1 before any event: the band is [1, 1]; S = 0 after the
    last run solved: lower 0, upper NaN, i.e. unbounded) it is filled as stated.
    """
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=bool)
    data = stats.CensoredData(uncensored=time[event], right=time[~event])
    sf = stats.ecdf(data).sf
    with warnings.catch_warnings():  # scipy warns where the log-log band is undefined; filled below
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sf.confidence_interval(confidence, method="log-log")
    surv = sf.probabilities
    lo = np.where(surv >= 1, 1.0, np.where(surv <= 0, 0.0, ci.low.probabilities))
    hi = np.where(surv >= 1, 1.0, ci.high.probabilities)
    out = pd.DataFrame({"step": sf.quantiles, "surv": surv, "surv_lo": lo, "surv_hi": hi})
    if out.empty or out["step"].iloc[0] > 0:
        out = pd.concat([pd.DataFrame({"step": [0.0], "surv": [1.0], "surv_lo": [1.0], "surv_hi": [1.0]}), out])
    return out.reset_index(drop=True)


def _first_below_half(step: pd.Series, surv: pd.Series) -> float:
    hit = step[surv.fillna(np.inf).to_numpy() <= 0.5]
    return float(hit.iloc[0]) if len(hit) else math.nan


def km_median(km: pd.DataFrame) -> tuple[float, float, float]:
    """Median steps to solve and its 95 % interval from a ``kaplan_meier`` frame.

    median = first step with S(t) ≤ 0.5. The interval is read off the pointwise band the same way (the
    Brookmeyer–Crowley-style read-off R's ``survfit`` uses): lower = first step where the band's lower edge
    is ≤ 0.5, upper = first step where its upper edge is. NaN = not reached within the observed steps
    (for the upper bound: too few events to bound the median).
    """
    return (
        _first_below_half(km["step"], km["surv"]),
        _first_below_half(km["step"], km["surv_lo"]),
        _first_below_half(km["step"], km["surv_hi"]),
    )
