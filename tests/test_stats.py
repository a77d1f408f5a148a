"""Tests for ``xorlab.analysis.stats``: hand-checkable cases, closed forms and scipy as independent references."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from xorlab.analysis import stats
from xorlab.core.config import TrainConfig
from xorlab.engine.batch import train_batch
from xorlab.store.records import CONFIG_COLUMNS, curves_frame, runs_frame

Z = sps.norm.ppf(0.975)


def fake_runs(status, steps=None, max_steps=100, plateau=None, final_loss=None, **config) -> pd.DataFrame:
    """A minimal run table: one row per entry of ``status``; config columns from ``config`` or defaults."""
    n = len(status)
    cfg = {
        "lr": 0.1,
        "max_steps": max_steps,
        "seed": np.arange(n),
        "init": "notebook",
        "rng": "default",
        "rng_skip": 0,
        "loss_threshold": 0.05,
        "lr_hidden": 1.0,
        "lr_output": 1.0,
        "width": 4,
        "activation": "tanh",
        "init_gain": np.nan,
        "init_std": np.nan,
        "init_a": np.nan,
        "init_path": None,
    }
    cfg.update(config)
    frame = pd.DataFrame({c: cfg[c] for c in CONFIG_COLUMNS}, index=range(n))
    frame.insert(0, "run_id", [f"r{i:05d}-{frame['init'][i]}-{frame['lr'][i]}" for i in range(n)])
    frame["status"] = list(status)
    frame["steps_to_solve"] = pd.array([None] * n if steps is None else list(steps), dtype="Int64")
    frame["plateau"] = pd.array([None] * n if plateau is None else list(plateau), dtype="string")
    frame["final_loss"] = np.full(n, 0.01) if final_loss is None else np.asarray(final_loss, dtype=float)
    return frame


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval from its closed form."""
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


@pytest.mark.parametrize("k", [0, 5, 50, 100])
def test_wilson_interval_matches_closed_form(k):
    lo, hi = stats.wilson_interval(k, 100)
    np.testing.assert_allclose([lo, hi], wilson_by_hand(k, 100), atol=1e-12)


def test_zero_of_100_solved():
    s = stats.summarize(fake_runs(["stuck"] * 100, plateau=["ln2"] * 100))
    row = s.iloc[0]
    assert (row.n, row.solved, row.success_rate, row.success_lo) == (100, 0, 0.0, 0.0)
    assert row.success_hi == pytest.approx(Z**2 / (100 + Z**2))  # Wilson upper bound for k = 0
    assert (row.stuck, row.stuck_ln2, row["stuck_0.477"], row.diverged, row.slow) == (100, 100, 0, 0, 0)
    assert np.isnan([row.km_median, row.km_median_lo, row.km_median_hi]).all()  # all censored: never reached


def test_five_of_100_solved_and_failure_modes():
    status = ["solved"] * 5 + ["diverged"] * 10 + ["slow"] * 15 + ["stuck"] * 70
    plateau = [None] * 30 + ["ln2"] * 40 + ["0.477"] * 20 + ["ln2/2"] * 10
    steps = [10, 20, 30, 40, 50] + [None] * 95
    row = stats.summarize(fake_runs(status, steps, plateau=plateau)).iloc[0]
    assert (row.solved, row.diverged, row.slow, row.stuck) == (5, 10, 15, 70)
    assert (row.stuck_ln2, row["stuck_0.477"], row["stuck_ln2/2"]) == (40, 20, 10)
    assert (row.diverged_rate, row["stuck_ln2/2_rate"]) == (0.10, 0.10)
    np.testing.assert_allclose([row.success_lo, row.success_hi], wilson_by_hand(5, 100))
    assert np.isnan(row.km_median)  # 95 % censored: S never drops to one half


def test_kaplan_meier_by_hand():
    # events at 2, 4, 6; one run censored at 4 (still at risk at 4).
    km = stats.kaplan_meier(np.array([2, 4, 4, 6]), np.array([True, True, False, True]))
    np.testing.assert_allclose(km["step"], [0, 2, 4, 6])
    np.testing.assert_allclose(km["surv"], [1, 0.75, 0.5, 0.0])  # 3/4, then 3/4 * 2/3, then 0
    assert stats.km_median(km)[0] == 4


def test_none_censored_is_the_empirical_distribution():
    times = np.arange(1, 101)
    runs = fake_runs(["solved"] * 100, steps=times, max_steps=200)
    km = stats.km_curves(runs, [])
    ecdf = np.searchsorted(np.sort(times), km["step"], side="right") / 100
    np.testing.assert_allclose(km["solved"], ecdf)
    med, lo, hi = stats.summarize(runs).iloc[0][["km_median", "km_median_lo", "km_median_hi"]]
    assert med == 50  # first t with S(t) <= 0.5
    assert lo < med < hi
    # the interval is read off scipy's own log-log band
    with warnings.catch_warnings():  # undefined at S = 0 (the last step); irrelevant to the read-off
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sps.ecdf(times.astype(float)).sf.confidence_interval(0.95, method="log-log")
    assert lo == times[np.argmax(ci.low.probabilities <= 0.5)]
    assert hi == times[np.argmax(ci.high.probabilities <= 0.5)]


def test_all_censored_band_is_flat():
    km = stats.km_curves(fake_runs(["slow"] * 20), [])
    assert (km[["solved", "solved_lo", "solved_hi"]].to_numpy() == 0).all()


def test_km_matches_scipy_with_censoring():
    rng = np.random.default_rng(3)
    t = rng.integers(1, 300, 200)
    solved = t < 200
    runs = fake_runs(np.where(solved, "solved", "stuck"), np.where(solved, t, None), max_steps=200)
    km = stats.km_curves(runs, []).iloc[1:]  # row 0 is the added (0, S = 1)
    res = sps.ecdf(sps.CensoredData(uncensored=t[solved].astype(float), right=np.full((~solved).sum(), 200.0)))
    np.testing.assert_allclose(km["solved"], 1 - res.sf.evaluate(km["step"].to_numpy()))


def test_final_loss_quartiles_ignore_non_finite():
    loss = [0.1, 0.2, 0.3, 0.4, np.inf, np.nan]
    row = stats.summarize(fake_runs(["slow"] * 4 + ["diverged"] * 2, final_loss=loss)).iloc[0]
    np.testing.assert_allclose(
        [row.final_loss_q25, row.final_loss_median, row.final_loss_q75], np.quantile(loss[:4], [0.25, 0.5, 0.75])
    )


def two_inits(n=100, solved_ref=100, solved_other=90, extra_other=0) -> pd.DataFrame:
    ref = fake_runs(["solved"] * solved_ref + ["stuck"] * (n - solved_ref), steps=[5] * n, init="notebook")
    m = n + extra_other
    other = fake_runs(
        ["solved"] * solved_other + ["stuck"] * (m - solved_other), steps=[5] * m, init="xavier_normal", init_gain=1.0
    )
    return pd.concat([ref, other], ignore_index=True)


def test_paired_comparison_by_hand():
    runs = two_inits(extra_other=10)  # xavier has 10 seeds the reference lacks: unpaired, dropped
    comp = stats.compare_inits(runs)
    assert len(comp) == 1
    c = comp.iloc[0]
    assert (c.init_label, c.ref_init, c.n_pairs) == ("xavier_normal", "notebook", 100)
    assert (c.only_this_solved, c.only_ref_solved) == (0, 10)
    assert c.diff_vs_ref == pytest.approx(-0.10)
    assert c.diff_lo < -0.10 < c.diff_hi < 0  # a real difference: the interval excludes 0
    assert c.mcnemar_p == pytest.approx(sps.binomtest(0, 10, 0.5).pvalue)  # = 2 / 2**10


def test_paired_comparison_no_difference():
    c = stats.compare_inits(two_inits(solved_other=100)).iloc[0]
    assert (c.diff_vs_ref, c.diff_lo, c.diff_hi, c.mcnemar_p) == (0, 0, 0, 1)


def test_comparison_is_seeded_and_order_free():
    runs = two_inits(solved_ref=70, solved_other=60)
    a = stats.compare_inits(runs)
    b = stats.compare_inits(runs.sample(frac=1, random_state=1))
    pd.testing.assert_frame_equal(a, b)
    other_seed = stats.compare_inits(runs, seed=1).iloc[0]
    assert other_seed.diff_vs_ref == a.iloc[0].diff_vs_ref  # only the bootstrap interval depends on the seed


def test_stats_csv_is_byte_stable_and_row_order_free():
    runs = two_inits(solved_ref=70, solved_other=60)
    outs = []
    for frame in (runs, runs.sample(frac=1, random_state=7)):
        buf = io.StringIO()
        stats.stats_table(frame).to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]


def test_swept_axes_and_init_labels():
    cfgs = [
        TrainConfig(lr=lr, max_steps=20, seed=s, init="normal", init_params={"std": sd})
        for lr in (0.1, 1.0)
        for sd in (0.01, 1.0)
        for s in range(2)
    ]
    cfgs += [TrainConfig(lr=0.1, max_steps=20, seed=s, init="xavier_normal") for s in range(2)]
    cfgs += [TrainConfig(lr=0.1, max_steps=20, seed=s, init="zeros") for s in range(2)]
    runs = runs_frame(train_batch(cfgs))
    # init_gain is NaN for normal/zeros and 1.0 for xavier: not a sweep of gain
    assert stats.swept_axes(runs) == ["lr", "seed", "init", "init_std"]
    assert stats.default_by(runs) == ["lr", "init_label"]
    assert sorted(set(stats.init_labels(runs))) == ["normal(std=0.01)", "normal(std=1)", "xavier_normal", "zeros"]


def test_init_label_shows_non_default_params():
    runs = runs_frame(train_batch([TrainConfig(init="xavier_uniform", init_params={"gain": 2.0}, max_steps=5)]))
    assert stats.init_labels(runs).tolist() == ["xavier_uniform(gain=2)"]


def test_resolve_by():
    runs = fake_runs(["solved"] * 2, steps=[1, 2])
    assert stats.resolve_by(runs, "lr, init,init_std") == ["lr", "init_label"]
    with pytest.raises(ValueError, match="unknown grouping axis 'bogus'"):
        stats.resolve_by(runs, ["bogus"])


def test_curve_bands_against_numpy_and_quantile_test():
    rng = np.random.default_rng(0)
    rows = []
    for run, n_lr in enumerate([0.1] * 9 + [1.0] * 12):  # odd and even group sizes
        for step in (0, 10, 20):
            rows.append({"run_id": f"r{run}", "step": step, "loss": rng.lognormal(-2, 1), "lr": n_lr})
    curves = pd.DataFrame(rows)
    runs = curves.drop_duplicates("run_id")[["run_id", "lr"]].assign(init_label="notebook")
    bands = stats.curve_bands(curves[["run_id", "step", "loss"]], runs)
    assert len(bands) == 6
    for b in bands.itertuples():
        x = curves.loc[(curves.lr == b.lr) & (curves.step == b.step), "loss"].to_numpy()
        ci = sps.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95)
        assert (b.n, b.loss_median, b.loss_lo, b.loss_hi) == (len(x), np.median(x), ci.low, ci.high)


def test_curve_bands_treat_diverged_as_worst():
    curves = pd.DataFrame({"run_id": ["a", "b", "c"], "step": 0, "loss": [0.1, np.inf, np.nan]})
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "lr": 0.1, "init_label": "x"})
    assert stats.curve_bands(curves, runs).loss_median.iloc[0] == np.inf


def test_thin_steps_keeps_ends():
    steps = stats.thin_steps(np.arange(0, 10001, 10), 50)
    assert steps.size <= 50 and steps[0] == 0 and steps[-1] == 10000


def test_real_batch_counts_add_up():
    cfgs = [
        TrainConfig(lr=lr, max_steps=300, seed=s, init=i)
        for lr in (0.05, 1.0)
        for i in ("notebook", "zeros")
        for s in range(25)
    ]
    batch = train_batch(cfgs, log_every=10)
    runs, curves = runs_frame(batch), curves_frame(batch)
    table = stats.stats_table(runs)
    assert table[["lr", "init_label"]].value_counts().eq(1).all() and len(table) == 4
    assert (table["solved"] + table["diverged"] + table["slow"] + table["stuck"] == table["n"]).all()
    plateaus = table[["stuck_ln2", "stuck_0.477", "stuck_ln2/2"]].sum(axis=1)
    assert (plateaus == table["stuck"]).all()
    assert (table.loc[table.init_label == "zeros", "success_rate"] == 0).all()  # symmetric start never learns
    bands = stats.curve_bands(curves, runs)
    assert set(bands["n"]) == {25}


def test_time_to_first_solve_counts_runs_that_later_lost_it():
    """Guards the survival definition: the event is the *first* solve (``steps_to_solve``), whatever the final
    status; only runs that never solved are censored, at their ``max_steps``."""
    runs = fake_runs(["solved", "stuck", "slow", "diverged"], steps=[10, 20, None, None], max_steps=100)
    time, event = stats.survival_data(runs)
    np.testing.assert_array_equal(event, [True, True, False, False])
    np.testing.assert_array_equal(time, [10, 20, 100, 100])


def greenwood_loglog_median_ci(time: np.ndarray, event: np.ndarray, z: float = Z) -> tuple[float, float, float]:
    """Kaplan–Meier median and its 95 % interval written out by hand: product-limit S(t), Greenwood variance,
    the log-log band S^exp(±z·sqrt(V)/|log S|), and the first event times at which S, its lower and its upper
    band reach 1/2 (NaN if never)."""
    surv, var = 1.0, 0.0
    med = lo = hi = np.nan
    for t in np.unique(time[event]):
        n_at_risk = np.sum(time >= t)
        d = np.sum((time == t) & event)
        surv *= 1 - d / n_at_risk
        var += d / (n_at_risk * (n_at_risk - d)) if n_at_risk > d else np.inf
        if 0 < surv < 1 and np.isfinite(var):
            sigma = np.sqrt(var) / abs(np.log(surv))
            s_lo, s_hi = surv ** np.exp(z * sigma), surv ** np.exp(-z * sigma)
        else:
            s_lo, s_hi = (0.0, np.nan) if surv == 0 else (surv, surv)
        if np.isnan(med) and surv <= 0.5:
            med = t
        if np.isnan(lo) and s_lo <= 0.5:
            lo = t
        if np.isnan(hi) and s_hi <= 0.5:
            hi = t
    return med, lo, hi


def test_km_median_interval_with_censoring_by_hand():
    """Guards the KM median CI on censored data against an independent Greenwood/log-log computation."""
    rng = np.random.default_rng(11)
    t = rng.integers(1, 400, 150)
    solved = t < 300  # ~25 % censored at max_steps = 300
    runs = fake_runs(np.where(solved, "solved", "stuck"), np.where(solved, t, None), max_steps=300)
    time, event = stats.survival_data(runs)
    expected = greenwood_loglog_median_ci(time, event)
    got = stats.summarize(runs).iloc[0][["km_median", "km_median_lo", "km_median_hi"]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected)
    assert expected[1] < expected[0] < expected[2]


def test_paired_bootstrap_interval_matches_explicit_resampling_of_pairs():
    """Guards the paired-difference interval: close to percentiles of means of pairs resampled by hand."""
    d = np.repeat([-1, 0, 1], [20, 150, 30])
    mean, lo, hi = stats.paired_diff(d, 20_000, seed=1)
    idx = np.random.default_rng(2).integers(0, d.size, size=(20_000, d.size))
    by_hand = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    assert mean == pytest.approx(0.05)
    np.testing.assert_allclose([lo, hi], by_hand, atol=0.006)
    assert stats.paired_diff(np.zeros(50), 1000, seed=1) == (0.0, 0.0, 0.0)


def test_mode_counts_and_rates_per_group():
    runs = fake_runs(["solved"] * 3 + ["stuck"] * 2, steps=[1, 2, 3, None, None])
    row = stats.summarize(runs).iloc[0]
    assert (row.mode_solved, row.mode_unknown) == (3, 2)  # no mode column (older store): status where exact
    runs["mode"] = pd.array(["solved"] * 3 + ["one_wrong", None], dtype="string")
    row = stats.summarize(runs).iloc[0]
    assert (row.mode_solved, row.mode_one_wrong, row.mode_unknown, row.mode_saturated) == (3, 1, 1, 0)
    assert row.mode_one_wrong_rate == pytest.approx(0.2)
    assert sum(row[c] for c in stats.MODE_COLUMNS if c in row) == row.n  # every run in exactly one mode
    assert stats.MODE_COLUMNS == [f"mode_{m}" for m in [*stats.MODES, "unknown"]]
    # only ReLU-family units can be dead: without such runs the table has no mode_dead columns (as before ReLU)
    assert "mode_dead" not in row and "mode_dead_rate" not in row
    runs["activation"] = ["tanh"] * 4 + ["relu"]
    runs["mode"] = pd.array(["solved"] * 3 + ["one_wrong", "dead"], dtype="string")
    table = stats.summarize(runs, by="activation").set_index("activation")
    assert table.loc["relu", "mode_dead"] == 1 and table.loc["tanh", "mode_dead"] == 0
    assert list(table.columns).index("mode_dead") == list(table.columns).index("mode_saturated_rate") + 1


def paired(lr: float, ref_solved: int, other_solved: int, n: int = 100) -> pd.DataFrame:
    a = two_inits(n, ref_solved, other_solved)
    a["lr"] = lr
    a["run_id"] = a["run_id"] + f"-{lr}"
    return a


def test_bh_family_is_one_stratum_and_unchanged_by_unrelated_runs():
    """Guards a found bug: an unrelated store grew the BH family from 12 to 13 and flipped the headline."""
    mine = pd.concat([paired(0.1, 70, 55), paired(1.0, 90, 80)], ignore_index=True)
    other = paired(2.0, 50, 49)  # another lr: its own family
    alone = stats.compare_inits(mine, by="lr,init")
    both = stats.compare_inits(pd.concat([mine, other], ignore_index=True), by="lr,init")
    pd.testing.assert_frame_equal(alone, both[both["lr"] != 2.0].reset_index(drop=True))
    assert list(alone["family"]) == ["lr=0.1", "lr=1"] and (alone["family_size"] == 1).all()
    np.testing.assert_allclose(alone["mcnemar_p_bh"], alone["mcnemar_p"])  # a family of one needs no adjustment
    # the old global family would have changed the adjusted p of these very rows
    global_bh = sps.false_discovery_control(both["mcnemar_p"].to_numpy(), method="bh")[: len(alone)]
    assert not np.allclose(global_bh, alone["mcnemar_p_bh"])


def test_bh_within_a_family_matches_scipy():
    he = fake_runs(["solved"] * 80 + ["stuck"] * 20, steps=[5] * 100, init="he_normal", init_gain=1.0)
    runs = pd.concat([two_inits(100, 70, 55), he], ignore_index=True)
    comp = stats.compare_inits(runs)
    assert (comp["family_size"] == 2).all() and (comp["family"] == "all").all()
    np.testing.assert_allclose(comp["mcnemar_p_bh"], sps.false_discovery_control(comp["mcnemar_p"], method="bh"))


def test_sweep_is_a_grouping_axis_only_when_present():
    runs = fake_runs(["solved"] * 4, steps=[1, 2, 3, 4])
    with pytest.raises(ValueError, match="unknown grouping axis 'sweep'"):
        stats.resolve_by(runs, "sweep")
    two = pd.concat([runs.assign(sweep="a"), runs.assign(sweep="b")], ignore_index=True)
    assert stats.default_by(two) == ["sweep"]
    assert stats.summarize(two)["n"].tolist() == [4, 4]  # the same run_ids in two stores are never merged


def test_an_edited_init_file_never_pools_two_experiments(tmp_path):
    """Same path, two contents (edited between sweeps): two groups, each with its own success rate."""
    import numpy as np

    from xorlab.engine.batch import train_batch
    from xorlab.store.records import runs_frame

    path = tmp_path / "start.npz"
    frames = []
    for scale in (1.0, 0.0):  # a good start, then all zeros (never solves)
        rng = np.random.default_rng(1)
        np.savez(
            path,
            w1=rng.standard_normal((2, 4)) * scale,
            b1=np.zeros((1, 4)),
            w2=rng.standard_normal((4, 1)) * scale,
            b2=np.zeros((1, 1)),
        )
        cfgs = [
            TrainConfig(lr=1.0, max_steps=300, seed=s, init="from_file", init_params={"path": str(path)})
            for s in range(3)
        ]
        frames.append(runs_frame(train_batch(cfgs)))
    runs = stats.with_init_label(pd.concat(frames, ignore_index=True))
    assert runs["init_label"].nunique() == 2 and all("@" in lab for lab in runs["init_label"])
    table = stats.summarize(runs, ["init_label"])
    assert sorted(table["n"]) == [3, 3]


def test_bootstrap_in_batches_and_threads_equals_one_array(monkeypatch):
    """Resampling in batches (bounded memory) on several threads gives the intervals of scipy's one-array bootstrap
    (the same draws of the same seeded generator), which is what keeps a million-run stats.csv unchanged."""
    rng = np.random.default_rng(5)
    n = 600
    runs = pd.concat(
        [
            fake_runs(rng.choice(["solved", "stuck"], size=n, p=[p, 1 - p]), init=init, lr=lr)
            for init, p in (("notebook", 0.6), ("he_normal", 0.5), ("zeros", 0.0))
            for lr in (0.1, 1.0)
        ],
        ignore_index=True,
    )
    runs["run_id"] = [f"r{i}" for i in range(len(runs))]
    batched = stats.compare_inits(runs, by=["init_label", "lr"], n_boot=500)
    monkeypatch.setattr(stats, "BOOT_CELLS", 7 * n)  # batches of 7 resamples: many batches, an uneven last one
    small = stats.compare_inits(runs, by=["init_label", "lr"], n_boot=500)
    pd.testing.assert_frame_equal(small, batched, rtol=0, atol=0)
    for _, row in batched.iterrows():
        sub = runs[runs["lr"] == row["lr"]]
        ok = (sub["status"] == "solved").astype(np.int64).to_numpy().reshape(3, n)
        d = ok[{"he_normal": 1, "zeros": 2}[row["init_label"]]] - ok[0]  # rows: notebook, he_normal, zeros
        ref = sps.bootstrap(
            (d,),
            np.mean,
            n_resamples=500,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(stats.BOOT_SEED),
        )
        assert abs(row["diff_lo"] - ref.confidence_interval.low) <= 1e-12
        assert abs(row["diff_hi"] - ref.confidence_interval.high) <= 1e-12


@pytest.mark.parametrize("seed", range(8))
def test_paired_diff_is_scipys_percentile_bootstrap_bit_for_bit(seed, monkeypatch):
    """``paired_diff`` resamples as ``scipy.stats.bootstrap`` does (same draws, same batches, same quantiles) in
    fewer passes: the interval is scipy's exactly, for odd and even pair counts, batches that divide the resamples
    or not, and differences that are not int8."""
    rng = np.random.default_rng(seed)
    n, n_boot = int(rng.integers(2, 1500)), int(rng.integers(1, 700))
    d = rng.choice([-1, 0, 1], size=n, p=rng.dirichlet([1, 1, 1])).astype(np.int64)
    d[:2] = [-1, 1]  # never all equal
    if seed % 4 == 3:
        d = d * 300  # not int8: resampled as float64, as scipy does
    for cells in (stats.BOOT_CELLS, 7 * n, 3 * n + 1, n):
        monkeypatch.setattr(stats, "BOOT_CELLS", cells)
        mean, lo, hi = stats.paired_diff(d, n_boot, seed)
        ref = sps.bootstrap(
            (d,),
            np.mean,
            n_resamples=n_boot,
            method="percentile",
            confidence_level=stats.CONFIDENCE,
            vectorized=True,
            rng=np.random.default_rng(seed),
            batch=max(1, cells // n),
        )
        assert (lo, hi) == (ref.confidence_interval.low, ref.confidence_interval.high)
        assert mean == d.mean()
