"""Tests for ``xorlab.engine``: training equals a naive re-run, batches are bit-for-bit invariant, extreme
settings train without warnings, and runs of different lengths share a batch without interfering."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from tests import naive_notebook as nb
from xorlab.core.config import ConfigError, TrainConfig
from xorlab.core.inits import SCHEMES
from xorlab.core.modes import TAIL
from xorlab.engine.batch import start_params, train, train_batch
from xorlab.engine.results import NO_STEP, TrainResult, stack_params, unstack_params
from xorlab.engine.simulate import simulate

DIVERGING = TrainConfig(lr=1e306, max_steps=40, seed=0, init="normal", init_params={"std": 1e3})
LATE_DIVERGING = TrainConfig(lr=1e307, max_steps=40, seed=0, init="notebook")  # diverges at step 2


@pytest.fixture(scope="module")
def start_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("init") / "start.npz"
    rng = np.random.default_rng(42)
    np.savez(path, w1=rng.standard_normal((2, 4)), b1=np.zeros((1, 4)), w2=rng.standard_normal((4, 1)), b2=[[0.1]])
    return str(path)


def assert_same_run(a: TrainResult, b: TrainResult) -> None:
    """Bit-for-bit equality of two results (bytes compared, so -0.0 vs 0.0 and NaN payloads count)."""
    assert a.config == b.config
    assert a.losses.tobytes() == b.losses.tobytes()
    assert np.array_equal(a.losses, b.losses, equal_nan=True)
    assert a.loss_steps.tobytes() == b.loss_steps.tobytes()
    assert np.float64(a.final_loss).tobytes() == np.float64(b.final_loss).tobytes()
    assert a.predictions.tobytes() == b.predictions.tobytes()
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert a.params[k].shape == b.params[k].shape
        assert a.params[k].tobytes() == b.params[k].tobytes(), k
    assert (a.status, a.steps_to_solve, a.plateau, a.diverged_step) == (
        b.status,
        b.steps_to_solve,
        b.plateau,
        b.diverged_step,
    )


# --- against a naive re-run ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "lr", "rng"), [("notebook", 0.1, "legacy"), ("he_uniform", 0.5, "default"), ("orthogonal", 1.0, "default")]
)
def test_train_matches_naive_notebook_loop(init, lr, rng):
    """Guards the training loop: per-step losses (before each update), final loss, predictions and
    parameters equal the notebook's forward/backward/update loop re-implemented naively."""
    cfg = TrainConfig(lr=lr, max_steps=300, seed=3, init=init, rng=rng)
    res = train(cfg)
    losses, preds, ref = nb.run(start_params(cfg), lr, cfg.max_steps)
    assert res.losses.shape == (300,) and res.loss_steps.tolist() == list(range(300))
    np.testing.assert_allclose(res.losses, losses, rtol=1e-10)
    np.testing.assert_allclose(res.predictions, preds[-1], rtol=1e-10)
    assert res.final_loss == pytest.approx(nb.bce(preds[-1][:, None], nb.Y), rel=1e-10)
    for k, v in ref.params().items():
        np.testing.assert_allclose(res.params[k], v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize(("hidden", "output"), [(0.25, 1.0), (1.0, 4.0), (3.0, 0.125)])
def test_per_layer_rates_match_a_naive_loop_with_two_rates(engine, hidden, output):
    """``lr_hidden``/``lr_output`` multiply ``lr`` for (w1, b1) and (w2, b2): both engines equal the naive loop
    stepping each layer with its own rate, and differ from the plain-lr run."""
    cfg = TrainConfig(lr=0.5, max_steps=200, seed=5, init="xavier_normal", lr_hidden=hidden, lr_output=output)
    res = train_batch([cfg], engine=engine)[0]
    losses, preds, ref = nb.run(start_params(cfg), 0.5 * hidden, cfg.max_steps, lr_output=0.5 * output)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-9)
    for k, v in ref.params().items():
        np.testing.assert_allclose(res.params[k], v, rtol=1e-8, atol=1e-12)
    plain = train_batch([replace(cfg, lr_hidden=1.0, lr_output=1.0)], engine=engine)[0]
    assert not np.array_equal(plain.losses, res.losses)


def test_default_multipliers_are_the_plain_lr_bit_for_bit():
    """Multipliers of 1.0 are the notebook's single rate exactly (lr * 1.0 == lr), in a batch mixing both."""
    a = TrainConfig(lr=0.7, max_steps=150, seed=2, init="he_normal")
    b = replace(a, lr_hidden=2.0)
    mixed = train_batch([b, a, b], engine="numpy")
    assert_same_run(mixed[1], train(a))
    assert_same_run(mixed[0], mixed[2])


def test_explicit_params():
    """Guards ``params=``: starting from the config's own draw gives the identical run; equal configs with
    different explicit starts in one batch stay separate runs."""
    cfg = TrainConfig(lr=0.3, max_steps=60, seed=8, init="xavier_normal")
    assert_same_run(train(cfg, params=start_params(cfg)), train(cfg))
    # equal configs with different explicit starts are different runs
    other = start_params(replace(cfg, seed=9))
    res = train_batch([cfg, cfg], params=[start_params(cfg), other])
    assert_same_run(res[0], train(cfg))
    assert_same_run(res[1], train(cfg, params=other))
    assert res[0].losses[0] != res[1].losses[0]


def test_stack_unstack_round_trip():
    """Guards the layout helpers: notebook shapes -> run axis last -> notebook shapes is the identity."""
    runs = [start_params(TrainConfig(seed=s, init="he_normal")) for s in range(3)]
    back = unstack_params(stack_params(runs))
    for n, r in enumerate(runs):
        for k, v in r.items():
            np.testing.assert_array_equal(back[k][n], v)
    p = stack_params(runs)
    assert p.w1.shape == (2, 4, 3) and p.b1.shape == (4, 3) and p.w2.shape == (4, 3) and p.b2.shape == (3,)
    np.testing.assert_array_equal(p.w1[1, 2], [r["w1"][1, 2] for r in runs])


def test_bad_arguments():
    """Guards ``train_batch``'s own checks: empty batch, bad log_every, wrong params count/shape/keys."""
    cfg = TrainConfig(max_steps=3)
    good = start_params(cfg)
    cases = [
        ("configs", lambda: train_batch([])),
        ("log_every", lambda: train_batch([cfg], log_every=0)),
        ("params", lambda: train_batch([cfg, cfg], params=[good])),
        ("params.w1", lambda: train(cfg, params={**good, "w1": np.zeros((4, 2))})),
        ("params", lambda: train(cfg, params={k: v for k, v in good.items() if k != "b2"})),
    ]
    for field, call in cases:
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.field == field and "\n" not in str(info.value)


def test_log_every_subsamples_without_changing_outcomes():
    """Guards ``log_every``: logged losses are the every-step losses at steps 0, k, 2k, …; outcomes and final
    state do not depend on the logging interval."""
    cfgs = [TrainConfig(lr=0.5, max_steps=m, seed=s) for s, m in [(0, 300), (1, 95), (2, 7)]]
    every = train_batch(cfgs)
    sparse = train_batch(cfgs, log_every=10)
    assert sparse.loss_steps.tolist() == list(range(0, 300, 10))
    np.testing.assert_array_equal(sparse.losses, every.losses[:, ::10])
    for i in range(3):
        a, b = every[i], sparse[i]
        assert b.loss_steps.tolist() == list(range(0, cfgs[i].max_steps, 10))
        assert (a.status, a.steps_to_solve, a.final_loss) == (b.status, b.steps_to_solve, b.final_loss)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])


# --- symmetry -----------------------------------------------------------------------------------------------


def assert_hidden_units_equal(params: dict[str, np.ndarray]) -> None:
    w1, b1, w2 = params["w1"], params["b1"], params["w2"]
    for j in range(1, 4):
        assert w1[:, j].tobytes() == w1[:, 0].tobytes()
        assert b1[0, j].tobytes() == b1[0, 0].tobytes()
        assert w2[j].tobytes() == w2[0].tobytes()


def test_zeros_init_never_breaks_symmetry():
    """Guards the symmetry argument: from ``zeros`` all four hidden units stay identical (here: exactly 0,
    a stationary point), and from any symmetric non-zero start they move but stay identical, so the net
    behaves like a single hidden unit and never solves XOR."""
    res = train(TrainConfig(lr=0.5, max_steps=500, init="zeros"))
    assert_hidden_units_equal(res.params)
    assert res.status == "stuck" and res.plateau == "ln2"

    sym = {
        "w1": np.tile([[0.3], [-0.7]], (1, 4)),
        "b1": np.full((1, 4), 0.1),
        "w2": np.full((4, 1), 0.25),
        "b2": np.array([[-0.2]]),
    }
    res = train(TrainConfig(lr=0.5, max_steps=500, init="zeros"), params=sym)
    assert_hidden_units_equal(res.params)
    assert not np.allclose(res.params["w1"], sym["w1"])  # it did learn something
    assert res.status != "solved" and res.steps_to_solve is None


# --- batch invariance ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probes(start_file) -> list[TrainConfig]:
    """Runs of every kind: schemes, lrs, lengths, rng kinds; stuck, solved, slow and diverging ones."""
    return [
        TrainConfig(lr=0.1, max_steps=200, seed=0, init="notebook"),
        TrainConfig(lr=1.0, max_steps=150, seed=1, init="he_normal", init_params={"gain": 2.0}, rng="legacy"),
        TrainConfig(lr=0.5, max_steps=77, seed=2, init="orthogonal"),
        TrainConfig(lr=0.3, max_steps=120, seed=3, init="zeros"),
        TrainConfig(lr=0.5, max_steps=250, seed=0, init="normal", init_params={"std": 3.0}),
        DIVERGING,
        LATE_DIVERGING,
        TrainConfig(lr=0.2, max_steps=100, seed=4, init="from_file", init_params={"path": start_file}),
        TrainConfig(lr=3.0, max_steps=250, seed=5, init="uniform", init_params={"a": 2.0}, rng="legacy", rng_skip=5),
        TrainConfig(lr=0.05, max_steps=1, seed=6, init="lecun_uniform"),
        TrainConfig(lr=0.7, max_steps=180, seed=7, init="xavier_uniform", loss_threshold=0.3),
    ]


def fillers(n: int, seed: int, start_file: str) -> list[TrainConfig]:
    """``n`` random configs mixing schemes, lrs (one absurd) and lengths."""
    rng = np.random.default_rng(seed)
    names = list(SCHEMES)
    out = []
    for i in range(n):
        init = names[rng.integers(len(names))]
        params = {"path": start_file} if init == "from_file" else {}
        lr = float(rng.choice([0.01, 0.1, 0.5, 2.0, 10.0, 1e306]))
        out.append(TrainConfig(lr=lr, max_steps=int(rng.integers(1, 260)), seed=i, init=init, init_params=params))
    return out


def test_probes_cover_every_outcome(probes):
    """Guards the batch-invariance tests' coverage: the probes include every status."""
    statuses = {train(c).status for c in probes}
    assert statuses == {"solved", "slow", "stuck", "diverged"}


@pytest.mark.parametrize("size", [1, 2, 7, 64, 129])
def test_batch_invariance(probes, start_file, size):
    """Guards batch invariance: each probe run's losses, final state and outcome are bit-for-bit the same
    trained alone or at any position in a batch of ``size`` mixed runs (other schemes, lrs, lengths,
    diverging and stuck runs). Small sizes: one batch per probe (first, last or a middle position); large
    sizes: all probes at random positions of one batch."""
    alone = [train(c) for c in probes]
    rng = np.random.default_rng(size)
    if size < len(probes):
        for k, probe in enumerate(probes):
            batch = fillers(size - 1, seed=1000 * size + k, start_file=start_file)
            pos = [0, size - 1, int(rng.integers(size))][k % 3]
            batch.insert(pos, probe)
            res = train_batch(batch)
            assert len(res) == size
            assert_same_run(res[pos], alone[k])
    else:
        batch = fillers(size - len(probes), seed=size, start_file=start_file)
        positions = sorted(rng.choice(size, len(probes), replace=False).tolist())
        for pos, probe in zip(positions, probes, strict=True):
            batch.insert(pos, probe)
        res = train_batch(batch)
        assert len(res) == size
        for pos, expected in zip(positions, alone, strict=True):
            assert_same_run(res[pos], expected)


def test_batch_members_equal_their_solo_runs(start_file):
    """Guards batch invariance for every member of one mixed batch (not only chosen probes)."""
    batch = fillers(9, seed=7, start_file=start_file)
    res = train_batch(batch)
    for i, cfg in enumerate(batch):
        assert_same_run(res[i], train(cfg))


# --- lengths sharing a batch --------------------------------------------------------------------------------


def test_short_run_in_long_batch_equals_alone():
    """Guards per-run ends: a run of max_steps m in a batch trained to M > m reports exactly its own run
    (losses, final state at t = m, steps_to_solve, status), even when the longer copy solves or diverges
    after m."""
    solve_late = TrainConfig(lr=0.1, max_steps=1000, seed=1337, init="notebook", rng="legacy", rng_skip=144)
    long_run = train(solve_late)
    assert long_run.steps_to_solve is not None and long_run.steps_to_solve > 100
    short = [
        replace(solve_late, max_steps=100),
        replace(solve_late, max_steps=long_run.steps_to_solve),
        replace(LATE_DIVERGING, max_steps=1),
        replace(LATE_DIVERGING, max_steps=2),
    ]
    res = train_batch([solve_late, *short, LATE_DIVERGING])
    assert_same_run(res[0], long_run)
    for i, cfg in enumerate(short, start=1):
        assert_same_run(res[i], train(cfg))
        longer = res[0] if cfg.lr == solve_late.lr else res[5]
        assert res[i].losses.tobytes() == longer.losses[: cfg.max_steps].tobytes()  # a prefix of the long run
    assert res[1].steps_to_solve is None and res[1].status != "solved"
    assert res[2].steps_to_solve == long_run.steps_to_solve and res[2].status == "solved"
    assert res[3].status != "diverged" and res[3].diverged_step is None
    assert res[4].status == "diverged" and res[4].diverged_step == 2


def test_runs_sharing_a_trajectory_equal_solo_runs():
    """Guards trajectory sharing: runs that differ only in ``max_steps`` (or not at all) may share one
    simulated trajectory, but every other field (threshold, lr, seed, init params, rng, skip) separates them;
    each run equals its solo run."""
    base = TrainConfig(lr=0.1, max_steps=400, seed=1337, init="notebook", rng="legacy", rng_skip=144)
    cfgs = [
        base,
        replace(base, max_steps=100),
        base,
        replace(base, max_steps=301),
        replace(base, loss_threshold=0.3),
        replace(base, loss_threshold=0.3, max_steps=150),
        replace(base, lr=0.2),
        replace(base, seed=1338),
        replace(base, rng="default"),
        replace(base, rng_skip=143),
        replace(LATE_DIVERGING, max_steps=1),
        LATE_DIVERGING,
    ]
    res = train_batch(cfgs)
    for i, cfg in enumerate(cfgs):
        assert_same_run(res[i], train(cfg))
    assert res[4].steps_to_solve < res[0].steps_to_solve  # the thresholds really differ in outcome


# --- extremes: no warnings, divergence ----------------------------------------------------------------------


def test_huge_lr_and_saturating_init_train_without_warnings():
    """Guards the numerics: lr = 1e3 and ``normal`` std = 50 (sigmoid and tanh deep in saturation) train
    with no RuntimeWarning, finite losses at every step and no divergence (a naive sigmoid/log would hit
    log(0) here)."""
    cfgs = [
        TrainConfig(lr=1e3, max_steps=300, seed=0),
        TrainConfig(lr=0.1, max_steps=300, seed=1, init="normal", init_params={"std": 50.0}),
        TrainConfig(lr=1e3, max_steps=300, seed=2, init="normal", init_params={"std": 50.0}),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train_batch(cfgs)
    assert np.isfinite(res.losses).all() and np.isfinite(res.final_loss).all()
    assert (res.status != "diverged").all() and (res.diverged_step == -1).all()
    assert res.final_loss.max() > 40  # saturated: per-point BCE of tens, where log(1 - yhat) = log(0)


def test_absurd_lr_diverges_quietly_without_touching_others():
    """Guards divergence: lr = 1e306 (with std 1e3 weights) is ``diverged`` at a recorded step, with no
    warning; its state is frozen from then on; a healthy run in the same batch equals its solo run."""
    healthy = TrainConfig(lr=0.5, max_steps=40, seed=1, init="he_normal")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train_batch([healthy, DIVERGING, LATE_DIVERGING])
        solo = train(healthy)
    assert_same_run(res[0], solo)
    for i in (1, 2):
        r = res[i]
        d = r.diverged_step
        assert r.status == "diverged" and d is not None and 1 <= d <= r.config.max_steps
        assert np.isfinite(r.losses[:d]).all()
        params_finite = all(np.isfinite(v).all() for v in r.params.values())
        assert not (params_finite and np.isfinite(r.final_loss))  # the frozen state is the non-finite one
        np.testing.assert_array_equal(r.losses[d:], np.full(r.losses.size - d, r.final_loss))
        # the definition: the state after d updates is the first non-finite one
        before = train(replace(r.config, max_steps=d - 1)) if d > 1 else None
        if before is not None:
            assert before.status != "diverged"
            assert all(np.isfinite(v).all() for v in before.params.values())


# --------------------------------------------------------------------------------- the simulate contract
def _lanes(configs):
    start = stack_params([start_params(c) for c in configs])
    lr = np.array([c.lr for c in configs])
    thr = np.array([c.loss_threshold for c in configs])
    return start, lr, thr, np.arange(len(configs))


CONTINUED = [
    TrainConfig(lr=lr, seed=s, init=i)
    for lr in (0.1, 1.0, 5.0)
    for s in range(4)
    for i in ("notebook", "orthogonal", "zeros")
]


def test_simulate_continues_from_a_recorded_state_bit_for_bit():
    """Training 0 -> 80, then 80 -> 200 from the recorded state (and first solve), equals 0 -> 200."""
    start, lr, thr, lanes = _lanes(CONTINUED)
    full = simulate(start, lr, thr, lanes, np.full(len(lanes), 200), log_every=1)
    half = simulate(start, lr, thr, lanes, np.full(len(lanes), 80), log_every=1)
    rest = simulate(
        half.end_params, lr, thr, lanes, np.full(len(lanes), 200), log_every=1, t0=80, first_solved0=half.first_solved
    )
    assert (full.diverged_step == NO_STEP).all()
    assert rest.end_loss.tobytes() == full.end_loss.tobytes()
    assert rest.end_yhat.tobytes() == full.end_yhat.tobytes()
    for a, b in zip(rest.end_params.arrays(), full.end_params.arrays(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert np.array_equal(rest.first_solved, full.first_solved)
    assert (rest.loss_steps == np.arange(80, 200)).all()
    assert rest.losses.tobytes() == full.losses[:, 80:].tobytes()
    assert ((full.first_solved >= 0) & (full.first_solved < 80)).any()  # some solved before the restart


def test_simulate_tail_holds_the_last_losses_before_each_end():
    configs = CONTINUED[:6]
    start, lr, thr, lanes = _lanes(configs)
    ends = np.array([TAIL // 2, 150, 150, 300, 40, 300])  # one run ends before a full tail exists
    run_lane = np.array([0, 1, 1, 2, 3, 5])
    trace = simulate(start, lr, thr, run_lane, ends, log_every=1)
    for r, (lane, end) in enumerate(zip(run_lane, ends, strict=True)):
        kept = min(TAIL, end)
        expected = trace.losses[lane, end - kept : end]
        assert trace.end_tail[r, TAIL - kept :].tobytes() == expected.tobytes()
        assert np.isnan(trace.end_tail[r, : TAIL - kept]).all()


def test_train_batch_exposes_the_loss_tail():
    batch = train_batch(CONTINUED[:3], log_every=7)  # the tail is per step, whatever the logging interval
    full = train_batch(CONTINUED[:3], log_every=1)
    assert batch.loss_tail.shape == (3, TAIL)
    assert batch.loss_tail.tobytes() == full.loss_tail.tobytes() == full.losses[:, -TAIL:].tobytes()


def test_compiled_engine_falls_back_to_numpy_with_one_notice(monkeypatch, capsys):
    """Without numba, engine='compiled' trains with the numpy engine and says so once, on one line."""
    from xorlab.engine import batch, kernel

    monkeypatch.setattr(kernel, "available", lambda: False)
    monkeypatch.setattr(batch, "_notified", set())
    cfgs = [TrainConfig(max_steps=30, seed=s) for s in range(2)]
    first, second = train_batch(cfgs, engine="compiled"), train_batch(cfgs, engine="compiled")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "falls back to 'numpy'" in err
    assert first.engine == second.engine == "numpy"
    assert first.final_loss.tobytes() == train_batch(cfgs).final_loss.tobytes()


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^engine: unknown engine 'jax'; allowed: numpy, compiled"):
        train_batch([TrainConfig(max_steps=3)], engine="jax")
