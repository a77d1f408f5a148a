"""The compiled engine (``engine="compiled"``): the numpy engine's ``simulate`` core as one numba kernel.

Same inputs, outputs and semantics as ``xorlab.engine.simulate`` (see that function; the contract both engines keep):
shared trajectories read out at each run's own end, per-lane lr and threshold, losses logged every
``log_every`` steps, the first solve checked at every step, diverged lanes frozen and recorded, continuation
from step ``t0`` with a known ``first_solved0``, and the last ``TAIL`` losses before each run end. It is
batch invariant like the numpy engine. Results agree with it except that exp, tanh and log1p are this
module's polynomials (``xorlab.engine.kernel_math``), an ulp or two away from numpy's, so trajectories can differ in
their last bits and, rarely, a run near a decision boundary gets another outcome (see ``tests/test_kernel.py``).

numba is optional, and its environment may be broken: ``unavailable()`` says why the compiled engine cannot
run here (numba missing or failing to import, ``NUMBA_DISABLE_JIT`` set) and ``available()`` whether it can;
``simulate_compiled`` raises ``RuntimeError`` otherwise, so callers fall back to the numpy engine with a
one-line notice. An invalid ``NUMBA_NUM_THREADS`` is a setting error (``check_settings``), raised before
anything runs: numba refuses 0, and crashes (segfault) with tens of thousands of threads.
The first use in a fresh environment compiles the kernel (one signature; a one-line notice on stderr);
later processes load it from numba's on-disk cache (``__pycache__``, or ``NUMBA_CACHE_DIR``). A cache that
cannot be read (corrupt, truncated, foreign) is replaced: the kernel is recompiled into a fresh cache, with a
one-line notice, instead of every later process failing until someone deletes the cache by hand.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading

import numpy as np

from xorlab.core.modes import TAIL
from xorlab.core.net import Params
from xorlab.engine.results import NO_STEP, Trace

COMPILE_SECONDS = 15  # measured cold compile on a 2-core machine (11-18 s), quoted in the notice
# When numba's cache holds the kernel, loading it takes ~0.5 s (several s on a machine with load 20): the notice
# waits this long, so only a compile (11-18 s; a cache left by another numba) announces itself. With no cache
# entry the compile is certain and the notice is printed at once.
_NOTICE_AFTER_CACHED = 8.0


_kernel = None
_lock = threading.Lock()
_run_lock = threading.Lock()  # numba's default (workqueue) threading layer must not be entered by two threads at once


MAX_THREADS = 1024  # NUMBA_NUM_THREADS above this only slows a 17-parameter kernel; numba segfaults near 10^5


class SettingError(ValueError):
    """An environment setting of the compiled engine with an invalid value; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def check_settings() -> None:
    """Raise ``SettingError`` for a ``NUMBA_NUM_THREADS`` numba would refuse or crash on (checked before numba is
    imported: its import raises for 0 or a negative count)."""
    raw = os.environ.get("NUMBA_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_THREADS:
        raise SettingError(
            "NUMBA_NUM_THREADS",
            f"must be a whole number from 1 to {MAX_THREADS} (this machine has {os.cpu_count()} cores), got {raw!r}",
        )


def unavailable() -> str | None:
    """Why the compiled engine cannot run in this environment (one line), or None if it can."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0"):
        return "NUMBA_DISABLE_JIT is set (numba would run the kernel as slow Python)"
    try:
        check_settings()
        importlib.import_module("xorlab.engine.kernel_math")  # the one module that imports numba
    except ImportError:
        return "numba is not installed"
    except Exception as exc:  # noqa: BLE001 - numba's import can fail many ways (bad settings, broken install)
        return f"numba cannot start ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return None


def available() -> bool:
    """True if the compiled engine can run here (see ``unavailable``)."""
    return unavailable() is None


def _require() -> None:
    """Raise ``RuntimeError`` with the one-line reason the compiled engine cannot run here, if it cannot."""
    reason = unavailable()
    if reason == "numba is not installed":
        raise RuntimeError("engine 'compiled' needs numba (pip install numba); use engine 'numpy'")
    if reason is not None:
        raise RuntimeError(f"engine 'compiled' cannot run: {reason}; use engine 'numpy'")


def _compiled():
    """The kernel, compiled for its one signature or loaded from numba's cache; compilation is announced."""
    global _kernel
    with _lock:
        if _kernel is None:
            _require()
            from xorlab.engine import kernel_math

            message = f"xorlab: compiling the engine (once, ~{COMPILE_SECONDS} s)..."
            notice = threading.Timer(_NOTICE_AFTER_CACHED, lambda: print(message, file=sys.stderr, flush=True))
            if _cached(kernel_math):
                notice.start()  # a load is expected: only a slow one (a compile after all) is announced
            else:
                print(message, file=sys.stderr, flush=True)  # nothing to load: the compile is certain
            try:
                try:
                    kernel_math.simulate_kernel.compile(kernel_math.SIGNATURE)
                except Exception as exc:  # noqa: BLE001 - an unreadable cache raises whatever unpickling raised
                    notice.cancel()
                    _recompile(kernel_math, exc)
                kernel_math.simulate_kernel.disable_compile()  # any other argument types: TypeError, no recompile
            finally:
                notice.cancel()
            _kernel = kernel_math
    return _kernel


def _cached(km) -> bool:
    """Whether numba's cache has an index for the kernel (then loading, not compiling, is expected)."""
    try:
        return os.path.exists(km.simulate_kernel._cache._cache_file._index_path)
    except AttributeError:  # numba's internals moved: expect a compile, announce it at once
        return False


def _recompile(km, exc: Exception) -> None:
    """The cached kernel could not be loaded: say so in one line, recompile into a fresh cache."""
    folder = os.path.join(tempfile.gettempdir(), f"xorlab-numba-cache-{os.getuid() if hasattr(os, 'getuid') else 0}")
    where = km.fresh_cache(folder)
    reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}" if str(exc) else type(exc).__name__
    print(
        f"xorlab: the compiled engine's cache could not be read ({reason}); recompiling it (~{COMPILE_SECONDS} s) "
        f"into {where}",
        file=sys.stderr,
        flush=True,
    )
    try:
        km.simulate_kernel.compile(km.SIGNATURE)
    except Exception as again:  # noqa: BLE001 - reported as the engine being unavailable; callers fall back
        raise RuntimeError(f"engine 'compiled' cannot be compiled here ({type(again).__name__}: {again})") from None


_wide = None


def _compiled_wide():
    """The kernel for any width and activation (``kernel_wide``), compiled or loaded on first use, announced as
    the notebook kernel's compile is. An error is a ``RuntimeError``: callers train those runs on numpy."""
    global _wide
    with _lock:
        if _wide is None:
            _require()
            from xorlab.engine import kernel_wide

            message = f"xorlab: compiling the engine for other widths and activations (once, ~{COMPILE_SECONDS} s)..."
            notice = threading.Timer(_NOTICE_AFTER_CACHED, lambda: print(message, file=sys.stderr, flush=True))
            notice.start()
            try:
                kernel_wide.simulate_wide.compile(kernel_wide.SIGNATURE)
            except Exception as exc:  # noqa: BLE001 - an unreadable cache, a numba that cannot compile it
                raise RuntimeError(f"engine 'compiled' cannot compile its wide kernel ({type(exc).__name__})") from None
            finally:
                notice.cancel()
            kernel_wide.simulate_wide.disable_compile()
            _wide = kernel_wide
    return _wide


def load() -> None:
    """Compile the kernel, or load it from numba's cache, now (else the first simulation does it)."""
    _compiled()


def simulate_compiled(
    start: Params,
    lr: np.ndarray,
    threshold: np.ndarray,
    run_lane: np.ndarray,
    run_end: np.ndarray,
    log_every: int,
    t0: int = 0,
    first_solved0: np.ndarray | None = None,
    lr_output: np.ndarray | None = None,
    activation: str = "tanh",
) -> Trace:
    """Simulate L lanes from ``start`` (step ``t0``) to horizon = max(run_end) and read out R runs.

    Parameters
    ----------
    start : Params
        Starting parameters of the L lanes, run axis last.
    lr, threshold : (L,) float64
        Learning rate (of the hidden layer, when ``lr_output`` is given) and loss threshold of each lane.
    run_lane, run_end : (R,) int64
        Lane of each read-out run and the step at which it is read out (t0 <= run_end <= horizon).
    log_every : int
        Losses are logged at steps t0 <= t < horizon with t % log_every == 0.
    t0 : int
        Step index of ``start``.
    first_solved0 : (L,) int64, optional
        Already-known first solve per lane (-1 = none); a lane with one keeps it.
    lr_output : (L,) float64, optional
        Learning rate of the output layer (w2, b2) of each lane; default ``lr``.
    activation : str
        The hidden units' activation (``xorlab.core.activations``). The notebook's network (width 4, tanh) runs on
        ``kernel_math``'s unrolled kernel, every other width and activation on ``kernel_wide``'s.

    Returns
    -------
    Trace
        As ``xorlab.engine.simulate``.
    """
    _require()
    width = start.b1.shape[0]
    wide = width != 4 or activation != "tanh"  # the notebook's network has its own unrolled kernel
    km = _compiled_wide() if wide else _compiled()
    P = np.ascontiguousarray(
        np.concatenate([start.w1.reshape(2 * width, -1), start.b1, start.w2, start.b2[None]]), dtype=np.float64
    )
    n_lanes = P.shape[1]
    lr = np.ascontiguousarray(lr, dtype=np.float64)
    lr_out = lr if lr_output is None else np.ascontiguousarray(lr_output, dtype=np.float64)
    threshold = np.ascontiguousarray(threshold, dtype=np.float64)
    run_lane = np.ascontiguousarray(run_lane, dtype=np.int64)
    run_end = np.ascontiguousarray(run_end, dtype=np.int64)
    if lr.shape != (n_lanes,) or lr_out.shape != (n_lanes,) or threshold.shape != (n_lanes,):
        raise ValueError(f"lr, lr_output and threshold must have shape ({n_lanes},)")
    rates = np.ascontiguousarray(np.stack([lr, lr_out]))  # (2, L): hidden layer, output layer
    if run_lane.ndim != 1 or run_lane.shape != run_end.shape or run_lane.size == 0:
        raise ValueError("run_lane and run_end must be non-empty 1-D arrays of equal length")
    if run_lane.min() < 0 or run_lane.max() >= n_lanes or run_end.min() < t0:
        raise ValueError("run_lane must index lanes and run_end must be >= t0")
    if int(log_every) < 1:
        raise ValueError("log_every must be >= 1")
    fs0 = np.full(n_lanes, NO_STEP, dtype=np.int64) if first_solved0 is None else first_solved0
    fs0 = np.ascontiguousarray(fs0, dtype=np.int64)
    t0, log_every, horizon = int(t0), int(log_every), int(run_end.max())

    # Runs sorted by (block of their lane, end): each block walks its own runs in end order.
    order = np.lexsort((run_end, run_lane // km.BLOCK))
    n_blocks = -(-n_lanes // km.BLOCK)
    blk_ptr = np.searchsorted(run_lane[order] // km.BLOCK, np.arange(n_blocks + 1)).astype(np.int64)
    loss_steps = np.arange(-(-t0 // log_every) * log_every, horizon, log_every, dtype=np.int64)
    n_runs = run_lane.size
    losses = np.full((n_lanes, loss_steps.size), np.nan)
    first_solved = np.empty(n_lanes, dtype=np.int64)
    diverged_step = np.empty(n_lanes, dtype=np.int64)
    end_loss = np.empty(n_runs)
    end_yhat = np.empty((4, n_runs))
    end_P = np.empty((P.shape[0], n_runs))
    end_tail = np.full((n_runs, TAIL), np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        cthr = np.expm1(4.0 * threshold)  # loss < thr ⇔ ∏(1 + e_p) - 1 < expm1(4·thr) when all points are correct
    runs = (run_lane[order], run_end[order], order.astype(np.int64), blk_ptr)
    outputs = (losses, first_solved, diverged_step, end_loss, end_yhat, end_P, end_tail)
    with _run_lock:
        if wide:
            code = km.ACT_CODE[activation]
            km.simulate_wide(width, code, P, rates, cthr, fs0, t0, horizon, log_every, *runs, outputs)
        else:
            km.simulate_kernel(P, rates, cthr, fs0, t0, horizon, log_every, *runs, *outputs)
    h = width  # the rows of end_P: w1 (2H, row k·H + j), b1 (H), w2 (H), b2
    end_params = Params(
        w1=end_P[0 : 2 * h].reshape(2, h, n_runs), b1=end_P[2 * h : 3 * h], w2=end_P[3 * h : 4 * h], b2=end_P[4 * h]
    )
    return Trace(
        loss_steps=loss_steps,
        losses=losses,
        first_solved=first_solved,
        diverged_step=diverged_step,
        end_loss=end_loss,
        end_yhat=end_yhat,
        end_params=end_params,
        end_tail=end_tail,
    )
