"""Tests for ``xorlab.engine.kernel`` (compiled engine): outcomes agree with the numpy engine, the notebook replay is
exact, diverged runs are frozen, results are batch invariant bit for bit, the contract's shared trajectories,
logging, end tails and continuation hold, and the step loops really are vectorised.

The kernel is compiled once per environment (numba's on-disk cache); the first run of this file pays for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pytest

from xorlab.core.config import TrainConfig
from xorlab.core.data import Y
from xorlab.core.inits import SCHEMES
from xorlab.core.modes import TAIL
from xorlab.core.net import Params
from xorlab.core.outcome import classify, correct_side
from xorlab.engine import kernel
from xorlab.engine.batch import start_params, train_batch
from xorlab.engine.results import stack_params
from xorlab.engine.simulate import simulate as numpy_simulate

if TYPE_CHECKING:
    from xorlab.engine.results import Trace

pytestmark = pytest.mark.skipif(not kernel.available(), reason="numba is not installed")

GRID_SCHEMES = [s for s in SCHEMES if s != "from_file"]  # from_file: same start for every seed, tested below
GRID_LRS = (0.03, 0.1, 0.3, 1.0)


def grid(seeds: int, max_steps: int = 1000) -> list[TrainConfig]:
    return [
        TrainConfig(lr=lr, max_steps=max_steps, seed=seed, init=init)
        for init in GRID_SCHEMES
        for lr in GRID_LRS
        for seed in range(seeds)
    ]


def simulate(configs, starts=None, log_every=1, run_lane=None, run_end=None, **kw) -> Trace:
    """``simulate_compiled`` with one lane per config (runs read out at their own max_steps by default)."""
    p = stack_params(starts if starts is not None else [start_params(c) for c in configs])
    n = len(configs)
    return kernel.simulate_compiled(
        p,
        np.array([c.lr for c in configs]),
        np.array([c.loss_threshold for c in configs]),
        np.arange(n) if run_lane is None else np.asarray(run_lane),
        np.array([c.max_steps for c in configs]) if run_end is None else np.asarray(run_end),
        log_every,
        **kw,
    )


def outcomes(configs, tr: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(status, steps_to_solve) per run, by the numpy engine's rules (one lane per run, read out at max_steps)."""
    thr = np.array([c.loss_threshold for c in configs])
    ends = np.array([c.max_steps for c in configs])
    diverged = (tr.diverged_step >= 0) & (tr.diverged_step <= ends)
    status = classify(diverged, correct_side(tr.end_yhat, Y), tr.end_loss, thr)
    return status, np.where(tr.first_solved <= ends, tr.first_solved, -1)


def bits(a) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


def end_bits(tr: Trace, r: int) -> tuple:
    """Run r's read-out (loss, predictions, parameters) as bytes."""
    p = tr.end_params
    return (
        bits(tr.end_loss[r]),
        bits(tr.end_yhat[:, r]),
        bits(p.w1[..., r]),
        bits(p.b1[:, r]),
        bits(p.w2[:, r]),
        bits(p.b2[r]),
    )


def run_bits(tr: Trace, r: int, lane: int) -> tuple:
    """Everything the trace says about run r on lane ``lane``, as bytes: lane curve and events, read-out, tail."""
    lane_part = (bits(tr.losses[lane]), int(tr.first_solved[lane]), int(tr.diverged_step[lane]))
    return lane_part + end_bits(tr, r) + (bits(tr.end_tail[r]),)


# --- agreement with the numpy engine ---------------------------------------------------------------------------


def agreement(configs) -> tuple[float, np.ndarray, np.ndarray]:
    """Fraction of runs with identical status and steps_to_solve; final losses of both engines."""
    ref = train_batch(configs, log_every=100)
    tr = simulate(configs, log_every=100)
    status, steps = outcomes(configs, tr)
    same = (status == ref.status) & (steps == ref.steps_to_solve)
    return float(same.mean()), tr.end_loss, ref.final_loss


def check_agreement(configs) -> float:
    frac, got, want = agreement(configs)
    lr01 = np.array([c.lr == 0.1 for c in configs])
    print(f"\ncompiled vs numpy engine: {frac:.4%} of {len(configs)} runs agree on status and steps_to_solve")
    assert frac >= 0.999
    np.testing.assert_allclose(got[lr01], want[lr01], rtol=1e-9)
    return frac


def test_outcomes_agree_with_numpy_engine():
    """Guards agreement (small grid, every init scheme, lr ≤ 1): ≥ 99.9 % identical status and steps_to_solve,
    final loss within 1e-9 relative at lr 0.1."""
    check_agreement(grid(seeds=10))


@pytest.mark.slow
def test_outcomes_agree_with_numpy_engine_10k():
    """As above on the 10,032-run grid (11 schemes × 4 learning rates × 228 seeds × 1,000 steps)."""
    check_agreement(grid(seeds=228))


def test_from_file_start_and_losses_agree(tmp_path):
    """Guards explicit starts and logged losses: a from_file start trains to the numpy engine's losses (1e-9)."""
    rng = np.random.default_rng(7)
    path = tmp_path / "start.npz"
    np.savez(
        path, w1=rng.standard_normal((2, 4)), b1=rng.standard_normal((1, 4)), w2=rng.standard_normal((4, 1)), b2=[[0.3]]
    )
    configs = [TrainConfig(lr=0.1, max_steps=500, init="from_file", init_params={"path": str(path)})]
    ref = train_batch(configs)
    tr = simulate(configs)
    np.testing.assert_allclose(tr.losses[0], ref.losses[0], rtol=1e-9)
    assert list(outcomes(configs, tr)[0]) == list(ref.status)


def test_notebook_replay_exact():
    """Guards the replay with the compiled engine: the 43 printed losses (3 dp) and 4 predictions (8 dp)."""
    from tests import test_notebook_replay as replay

    text = replay.NOTEBOOK.read_text()
    printed = [(int(s), v) for s, v in replay.LOSS_LINE.findall(text)]
    preds = [float(p) for p in replay.PRED_LINE.findall(text)]
    tr = simulate([replay.REPLAY])
    assert len(printed) == 43 and len(preds) == 4
    assert [(s, f"{tr.losses[0, s]:.3f}") for s, _ in printed] == printed
    assert [round(float(p), 8) for p in tr.end_yhat[:, 0]] == preds


# --- divergence ------------------------------------------------------------------------------------------------


def test_diverging_runs_frozen_and_marked():
    """Guards divergence: lr 1e308 (and the numpy engine tests' diverging configs) diverge at the numpy engine's
    step; afterwards the lane is frozen: every later loss, every read-out (at several ends) is bit-identical."""
    configs = [TrainConfig(lr=1e308, max_steps=40, seed=s, init=i) for i in GRID_SCHEMES for s in range(3)]
    configs += [
        TrainConfig(lr=1e306, max_steps=40, seed=0, init="normal", init_params={"std": 1e3}),
        TrainConfig(lr=1e307, max_steps=40, seed=0, init="notebook"),
    ]
    ref = train_batch(configs)
    tr = simulate(configs)
    status, steps = outcomes(configs, tr)
    np.testing.assert_array_equal(tr.diverged_step, ref.diverged_step)
    assert list(status) == list(ref.status)
    assert (steps == ref.steps_to_solve).all()
    for lane in np.flatnonzero(tr.diverged_step >= 0):
        ds = tr.diverged_step[lane]
        assert len({bits(v) for v in tr.losses[lane, ds:]}) == 1
        assert bits(tr.end_loss[lane]) == bits(tr.losses[lane, ds])
    # read out one diverging lane at many ends: all frozen read-outs equal
    lane = int(np.flatnonzero(tr.diverged_step >= 0)[0])
    ends = np.arange(tr.diverged_step[lane], 41)
    multi = simulate(configs[lane : lane + 1], run_lane=np.zeros(ends.size, dtype=np.int64), run_end=ends)
    assert len({end_bits(multi, r) for r in range(ends.size)}) == 1


def test_overflowing_logit_with_finite_params_diverges():
    """Guards the divergence check's blind spot: finite parameters whose logit overflows to -inf at a y = 0 point
    (max(z, 0) alone would be finite there) give the numpy engine a NaN loss, so both engines mark step 0."""
    start = {
        "w1": np.array([[-100.0, 0, 0, 0], [0, -100.0, 0, 0]]),
        "b1": np.array([[100.0, 100.0, 0, 0]]),
        "w2": np.array([[-0.9e308], [-0.9e308], [0], [0]]),
        "b2": np.array([[0.5e308]]),
    }
    cfg = TrainConfig(lr=0.1, max_steps=5)
    ref = train_batch([cfg], params=[start])
    tr = simulate([cfg], starts=[start])
    assert ref.diverged_step[0] == tr.diverged_step[0] == 0
    assert bits(tr.end_loss) == bits(ref.final_loss) and bits(tr.end_yhat.T) == bits(ref.predictions)


# --- batch invariance and the contract ------------------------------------------------------------------------


def test_batch_invariance_bit_for_bit():
    """Guards batch invariance: a run alone equals the same run in a batch of 300, at positions in different
    blocks and at block edges, next to diverging runs and runs of other lengths (which switch its block's steps
    between the logging and plain loops)."""
    probe = TrainConfig(lr=0.5, max_steps=400, seed=11, init="he_uniform")  # the longest: same horizon
    alone = simulate([probe], log_every=5)
    others = [
        TrainConfig(lr=[0.1, 1e308, 2.0][s % 3], max_steps=50 + s, seed=s, init="xavier_normal") for s in range(300)
    ]
    want = run_bits(alone, 0, 0)
    for pos in (0, 127, 128, 200, 299):
        batch = others.copy()
        batch[pos] = probe
        got = simulate(batch, log_every=5)
        assert run_bits(got, pos, pos) == want, pos


def test_logging_does_not_change_results():
    """Guards the two loop variants: outcomes, read-outs and tails are bit-identical at any log_every."""
    configs = grid(seeds=2, max_steps=400)
    a, b = simulate(configs, log_every=1), simulate(configs, log_every=37)
    np.testing.assert_array_equal(b.loss_steps, np.arange(0, 400, 37))
    assert bits(a.losses[:, ::37]) == bits(b.losses)
    for r in range(len(configs)):
        assert run_bits(a, r, r)[1:] == run_bits(b, r, r)[1:]


def test_shared_trajectory_read_out_at_each_end():
    """Guards shared lanes: runs of one lane ending at 100, 250, 400 equal three lanes run to their own ends;
    end_tail holds the losses of the 64 steps before each end."""
    cfg = TrainConfig(lr=0.3, max_steps=400, seed=5, init="lecun_normal")
    ends = np.array([250, 100, 400])
    shared = simulate([cfg], run_lane=np.zeros(3, dtype=np.int64), run_end=ends)
    for r, end in enumerate(ends):
        alone = simulate([cfg], run_end=[end])
        assert end_bits(shared, r) + (bits(shared.end_tail[r]),) == end_bits(alone, 0) + (bits(alone.end_tail[0]),)
        assert bits(shared.end_tail[r]) == bits(shared.losses[0, end - kernel.TAIL : end])
        if shared.first_solved[0] <= end:
            assert alone.first_solved[0] == shared.first_solved[0]


def test_continuation_from_t0():
    """Guards continuation: 0 → 600 equals 0 → 255 then 255 → 600 from the read-out state with the known
    first_solved; losses are logged at t % log_every == 0 from t0; tail steps before t0 are NaN."""
    configs = grid(seeds=1, max_steps=600)
    n = len(configs)
    full = simulate(configs, log_every=10)
    half = simulate(configs, log_every=10, run_end=np.full(n, 255))
    rest = kernel.simulate_compiled(
        half.end_params,
        np.array([c.lr for c in configs]),
        np.array([c.loss_threshold for c in configs]),
        np.arange(n),
        np.full(n, 600),
        10,
        t0=255,
        first_solved0=half.first_solved,
    )
    np.testing.assert_array_equal(rest.loss_steps, np.arange(260, 600, 10))
    assert bits(rest.losses) == bits(full.losses[:, 26:])
    np.testing.assert_array_equal(rest.first_solved, full.first_solved)
    np.testing.assert_array_equal(rest.diverged_step, np.where(full.diverged_step >= 255, full.diverged_step, -1))
    for r in range(n):
        assert end_bits(rest, r) == end_bits(full, r)
        assert bits(rest.end_tail[r]) == bits(full.end_tail[r])  # NaN before t0 = 255: tail starts at 536
    short = kernel.simulate_compiled(
        half.end_params, np.full(n, 0.1), np.full(n, 0.01), np.arange(n), np.full(n, 300), 10, t0=255
    )
    assert np.isnan(short.end_tail[:, :19]).all() and not np.isnan(short.end_tail[:, 19:]).any()


def test_trace_matches_numpy_simulate():
    """Guards the contract against the numpy core itself: same trace fields, within an ulp-driven tolerance."""
    configs = grid(seeds=3, max_steps=300)
    n = len(configs)
    args = (
        stack_params([start_params(c) for c in configs]),
        np.array([c.lr for c in configs]),
        np.array([c.loss_threshold for c in configs]),
        np.arange(n),
        np.full(n, 300),
        10,
    )
    want, got = numpy_simulate(*args), kernel.simulate_compiled(*args)
    np.testing.assert_array_equal(got.loss_steps, want.loss_steps)
    assert (got.first_solved == want.first_solved).mean() >= 0.99
    np.testing.assert_array_equal(got.diverged_step, want.diverged_step)
    np.testing.assert_allclose(got.end_tail, want.end_tail, rtol=1e-6)


# --- compilation -----------------------------------------------------------------------------------------------


def test_step_loops_vectorise():
    """Guards speed: both step loops are vectorised across lanes (vector divides = tanh and sigmoid) and call
    nothing but LLVM intrinsics."""
    import re

    import numba as nb

    from xorlab.engine import kernel_math as km

    sig = (nb.types.float64[::1], nb.types.int64)
    for step_loop in (km._steps_plain, km._steps_loss):
        loop = nb.njit(nogil=True, error_model="numpy")(step_loop.py_func)  # a fresh, inspectable compile
        loop.compile(sig)
        ir = loop.inspect_llvm(sig)
        body = ir[ir.index("define ") :]  # the kernel itself, before its Python wrapper
        body = body[: body.index("\n}\n")]
        assert re.search(r"fdiv <\d+ x double>", body), loop
        assert set(re.findall(r"call [^@]*@([\w.$]+)", body)) <= {f for f in re.findall(r"@(llvm\.[\w.]+)", body)}


def test_math_functions_match_numpy():
    """Guards the kernel's own exp/tanh/log1p against numpy: exp within 1 ulp including the subnormal range
    (-745.1 … -708) and 0 below it, tanh within 3 ulp with tanh(-0.0) = -0.0 and exact ±1 in the tails, log1p on
    [0, 1] within 2 ulp; inf and NaN handled as numpy does."""
    import numba as nb

    from xorlab.engine import kernel_math as km

    @nb.njit(error_model="numpy")
    def apply(which, x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = km.exp(x[i]) if which == 0 else km.tanh(x[i]) if which == 1 else km.log1p01(x[i])
        return out

    def ulps(got, want):
        return np.abs(got.view(np.int64) - want.view(np.int64)).max()

    rng = np.random.default_rng(1)
    x = -np.abs(rng.standard_normal(200_000) * 10.0 ** rng.uniform(-20, 3, 200_000))
    x = np.concatenate([x, np.linspace(-760.0, -700.0, 100_001), [-np.inf, -0.0, 0.0, np.nan]])
    with np.errstate(under="ignore"):
        want = np.exp(x)
    got = apply(0, x)
    assert ulps(got[:-1], want[:-1]) <= 1 and np.isnan(got[-1])
    t = rng.standard_normal(200_000) * 10.0 ** rng.uniform(-20, 1.5, 200_000)
    t = np.concatenate([t, [-np.inf, np.inf, -0.0, 0.0, 19.5, -30.0, 5e-324]])
    assert ulps(apply(1, t), np.tanh(t)) <= 3
    assert np.signbit(apply(1, np.array([-0.0])))[0] and np.isnan(apply(1, np.array([np.nan])))[0]
    e = rng.uniform(0, 1, 200_000) * 10.0 ** rng.uniform(-300, 0, 200_000)
    assert ulps(apply(2, e), np.log1p(e)) <= 2


def _python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_warm_start_is_silent():
    """Guards the cache: a later process loads the kernel without compiling (no notice on stderr)."""
    assert kernel._compiled().TAIL == TAIL  # also fills the cache
    out = _python("from xorlab.engine import kernel; kernel._compiled()")
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_without_numba_not_reachable():
    """Guards the fallback: without numba, available() is False and simulate_compiled raises a one-line error."""
    out = _python("""
        import sys
        sys.modules["numba"] = None
        from xorlab.engine import kernel
        assert not kernel.available()
        try:
            kernel.simulate_compiled(None, None, None, None, None, 1)
        except RuntimeError as exc:
            print(exc)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "engine 'compiled' needs numba (pip install numba); use engine 'numpy'"


@pytest.mark.slow
def test_cold_compile_announced_once(tmp_path):
    """Guards the first use: with an empty cache, exactly one notice line on stderr."""
    out = _python("from xorlab.engine import kernel; kernel._compiled()", {"NUMBA_CACHE_DIR": str(tmp_path)})
    assert out.returncode == 0
    (line,) = out.stderr.splitlines()
    assert line.startswith("xorlab: compiling the engine (once, ~")


def test_start_params_roundtrip():
    """Guards the parameter layout: with lr 0 nothing moves, so end_params equal the start bit for bit."""
    rng = np.random.default_rng(3)
    p = Params(
        w1=rng.standard_normal((2, 4, 5)),
        b1=rng.standard_normal((4, 5)),
        w2=rng.standard_normal((4, 5)),
        b2=rng.standard_normal(5),
    )
    tr = kernel.simulate_compiled(p, np.zeros(5), np.full(5, 0.01), np.arange(5), np.full(5, 3), 1)
    for got, want in zip(tr.end_params.arrays(), p.arrays(), strict=True):
        assert bits(got) == bits(want)
