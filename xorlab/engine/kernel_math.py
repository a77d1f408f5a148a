"""The compiled step kernel (numba): the numpy engine's step loop, vectorised across runs.

Imported only through ``xorlab.engine.kernel`` (which checks that numba is importable). The entry point
``simulate_kernel`` is compiled for one explicit signature (``SIGNATURE``) with ``cache=True``; every helper is
inlined into it (``forceinline``). ``error_model="numpy"`` everywhere: no zero-division branches.

Why it is fast (each point checked in the LLVM IR, see ``tests/test_kernel.py::test_step_loops_vectorise``):

- *run axis innermost*: a block of ``BLOCK`` lanes keeps every per-lane quantity in one row of a single local
  array ``loc`` (row offsets and the trip count are compile-time constants), so LLVM proves the rows disjoint
  without runtime alias checks and vectorises the per-lane loop across lanes. No numba internals needed.
- *no library calls in the loop*: ``exp``, ``tanh`` (from ``expm1``) and ``log1p`` are branch-free
  polynomials written below; numba has no vector math library, and a scalar libm call blocks vectorisation.
- *no log in the solve check*: when all four points are correct, BCE_p = log1p(e_p) with e_p = exp(-|z2_p|), so
  loss < thr  ⇔  ∏(1 + e_p) − 1 < expm1(4·thr); the product is expanded (q ← q + e + q·e) so it stays
  accurate for tiny e. ``log1p`` runs only on steps whose loss is recorded.
- *network arithmetic in the numpy engine's order*, no FMA contraction (``fastmath`` off): only exp/tanh/log1p
  differ from numpy's (≤ 1, 3 and 2 ulp); fused multiply-adds appear only inside those polynomials.
- *separate loops* for plain steps and for steps that record losses (logged steps, the last one, the TAIL steps
  before a run end): a branch inside the lane loop would stop vectorisation.

Batch invariance: no value crosses lanes; padding lanes of the last block compute a harmless zero net; the
"loss" and "plain" loop variants make identical decisions (divergence, solve, update), the first merely also
records the loss, so a lane's bits do not depend on its block, its position or which runs share the call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba import prange
from numba.core import cgutils, types
from numba.extending import intrinsic as _numba_intrinsic

from xorlab.core.modes import TAIL  # losses kept before each run's end (a compile-time constant here)
from xorlab.engine.results import NO_STEP  # negative: never (the `< 0.0` tests below)

BLOCK = 128  # lanes per block: all rows of a block (27 x 128 doubles = 27 KiB) stay in L1 for every step

# Rows of the per-block array ``loc`` (each BLOCK long). w1[k, j] is row 4k + j, as in Params.w1 (2, 4, N).
B1, W2, B2 = 8, 12, 16
NPARAM = 17
LR, CTHR, FS, DS, LOSS, YHAT = 17, 18, 19, 20, 21, 22  # FS/DS: first_solved/diverged_step (-1 = never)
LRO = 26  # the output layer's rate (LR: the hidden layer's)
NROW = 27

# Cody–Waite split of ln 2 (fdlibm): LN2_HI has 32 trailing zero bits, so k·LN2_HI is exact for |k| < 2^21.
LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SHIFTER = 6755399441055744.0  # 1.5·2^52: (v + SHIFTER) - SHIFTER rounds v to an integer, which sits in its low bits
SHIFTER_BITS = 0x4338000000000000
SIGN = -0x8000000000000000

_JIT: dict[str, Any] = {"nogil": True, "error_model": "numpy", "cache": False, "forceinline": True}
# An intrinsic's Python signature carries numba's typing context first; compiled callers leave it out. Typed as
# Any so the type checker reads calls as the compiled code makes them.
intrinsic: Callable[..., Any] = _numba_intrinsic


@intrinsic
def _f64_bits(typingctx, x):
    """float64 -> its IEEE bits as int64 (a register move; vectorises, unlike a view)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _bits_f64(typingctx, i):
    """int64 IEEE bits -> float64."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c with one rounding (llvm.fma; vectorises). Used only inside this module's polynomials: the
    network arithmetic itself is never contracted, to keep the numpy engine's rounding."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


@nb.njit(**_JIT)
def _pow2(k):
    """2**k for integer k in [-1022, 1023] (k as int64): the exponent field built directly."""
    return _bits_f64((k + 1023) << 52)


# Q(r) = (expm1(r) - r)/r² on |r| ≤ 0.3466 (≥ ln2/2): degree-10 Chebyshev interpolant (near-minimax, fitted in
# 40-digit arithmetic), relative error of r + r²·Q below 1e-18, i.e. well under an ulp before rounding.
Q_COEF = (
    0.5,
    0.1666666666666667,
    0.04166666666666667,
    0.008333333333326136,
    0.001388888888888375,
    0.00019841269874815834,
    2.480158732554432e-05,
    2.7557255406285044e-06,
    2.7557273647451087e-07,
    2.5105214474751413e-08,
    2.0914685161418067e-09,
)


@nb.njit(**_JIT)
def _reduce(x):
    """x = k·ln2 + r with k = round(x/ln2) (shifter trick: k sits in the low bits of v), |r| ≤ ln2/2;
    returns (r, k as int64, expm1(r)) with expm1(r) = r + r²·Q(r) by Horner with fused multiply-adds."""
    v = _fma(x, LOG2E, SHIFTER)
    kf = v - SHIFTER
    k = _f64_bits(v) - SHIFTER_BITS
    r = _fma(kf, -LN2_LO, _fma(kf, -LN2_HI, x))  # Cody–Waite: k·LN2_HI is exact, so r carries no cancellation
    c = Q_COEF
    q = _fma(c[10], r, c[9])
    q = _fma(q, r, c[8])
    q = _fma(q, r, c[7])
    q = _fma(q, r, c[6])
    q = _fma(q, r, c[5])
    q = _fma(q, r, c[4])
    q = _fma(q, r, c[3])
    q = _fma(q, r, c[2])
    q = _fma(q, r, c[1])
    q = _fma(q, r, c[0])
    return k, _fma(r * r, q, r)


@nb.njit(**_JIT)
def exp(x):
    """e**x, ~1 ulp for normal results, correctly scaled subnormals, 0 below -745.2, inf above 709.8, NaN kept.

    e**x = 2**k·(1 + expm1(r)); 2**k is applied as 2**k1 · 2**k2 with k1 = k >> 1, so a subnormal result is
    rounded once, by the last product, as np.exp rounds it."""
    xc = -746.0 if x < -746.0 else x  # -inf -> 0 below; NaN fails both comparisons and stays NaN
    xc = 710.0 if xc > 710.0 else xc
    k, em = _reduce(xc)
    k1 = k >> 1
    return ((1.0 + em) * _pow2(k1)) * _pow2(k - k1)


@nb.njit(**_JIT)
def _expm1_pos(y):
    """e**y - 1 for y in [0, 40] (or NaN), accurate near 0: 2**k·expm1(r) + (2**k - 1) (exact for k ≤ 53)."""
    k, em = _reduce(y)
    s = _pow2(k)
    return _fma(s, em, s - 1.0)


@nb.njit(**_JIT)
def tanh(x):
    """tanh x = sign(x)·m/(m + 2), m = expm1(2|x|): a few ulp, exact ±1 beyond |x| = 20, tanh(±0) = ±0, NaN kept."""
    ax = abs(x)
    ax = 20.0 if ax > 20.0 else ax  # tanh(20) rounds to 1; keeps expm1 finite (NaN passes through)
    m = _expm1_pos(2.0 * ax)
    t = m / (m + 2.0)
    return _bits_f64(_f64_bits(t) | (_f64_bits(x) & SIGN))  # copysign(t, x)


@nb.njit(**_JIT)
def log1p01(e):
    """log(1 + e) for e in [0, 1] (or NaN): 2·atanh(s), s = e/(2 + e) ≤ 1/3, series to s^31 (remainder < 2e-17)."""
    s = e / (2.0 + e)
    z = s * s
    q = 1.0 / 31.0
    q = _fma(q, z, 1.0 / 29.0)
    q = _fma(q, z, 1.0 / 27.0)
    q = _fma(q, z, 1.0 / 25.0)
    q = _fma(q, z, 1.0 / 23.0)
    q = _fma(q, z, 1.0 / 21.0)
    q = _fma(q, z, 1.0 / 19.0)
    q = _fma(q, z, 1.0 / 17.0)
    q = _fma(q, z, 1.0 / 15.0)
    q = _fma(q, z, 1.0 / 13.0)
    q = _fma(q, z, 1.0 / 11.0)
    q = _fma(q, z, 1.0 / 9.0)
    q = _fma(q, z, 1.0 / 7.0)
    q = _fma(q, z, 1.0 / 5.0)
    q = _fma(q, z, 1.0 / 3.0)
    return 2.0 * s + 2.0 * s * (z * q)


@nb.njit(**_JIT)
def _bce_big(z, y):
    """max(z, 0) - y·z: the BCE without its log1p(e) term, as the numpy engine computes it (NaN kept as in
    np.maximum; y·z with y = 0 kept, it is NaN for z = ±inf)."""
    mx = z if not z < 0.0 else 0.0
    return mx - y * z


@nb.njit(**_JIT)
def _bce(z, y, e):
    """One point's BCE from its logit, the numpy engine's order: (max(z, 0) - y·z) + log1p(e)."""
    return _bce_big(z, y) + log1p01(e)


@nb.njit(**_JIT)
def _point(x0, x1, w, b1, v, b2):
    """Forward pass of one XOR point (x0, x1): hidden tanh units a_j, logit z2, e = exp(-|z2|), prediction yhat.

    z1_j = (x0·w1[0,j] + x1·w1[1,j]) + b1_j;  z2 = Σ_j a_j·w2_j (j in order) + b2;  yhat = (z2 ≥ 0 ? 1 : e)/(1 + e).
    x0·w with x0 = 0 is kept (it is ±0, or NaN for a non-finite weight), exactly as the numpy engine computes it.
    """
    a0 = tanh((x0 * w[0] + x1 * w[4]) + b1[0])
    a1 = tanh((x0 * w[1] + x1 * w[5]) + b1[1])
    a2 = tanh((x0 * w[2] + x1 * w[6]) + b1[2])
    a3 = tanh((x0 * w[3] + x1 * w[7]) + b1[3])
    z2 = (((a0 * v[0] + a1 * v[1]) + a2 * v[2]) + a3 * v[3]) + b2
    e = exp(-abs(z2))  # in [0, 1]: the sigmoid never overflows
    yhat = (1.0 if z2 >= 0.0 else e) / (1.0 + e)
    return (a0, a1, a2, a3), z2, e, yhat


@nb.njit(**_JIT)
def _dz1(a, d, v):
    """dz1_j = (dz2·w2_j)·(1 - a_j²) for one point (tanh' = 1 - tanh²)."""
    return (
        (d * v[0]) * (1.0 - a[0] * a[0]),
        (d * v[1]) * (1.0 - a[1] * a[1]),
        (d * v[2]) * (1.0 - a[2] * a[2]),
        (d * v[3]) * (1.0 - a[3] * a[3]),
    )


@nb.njit(**_JIT)
def _psum(p0, p1, p2, p3):
    """Σ_p over the 4 points, added in point order (the numpy engine's ``_sum_points``)."""
    return ((p0 + p1) + p2) + p3


@nb.njit(**_JIT)
def _step(loc, i, t, with_loss):
    """One step of lane i at step t: forward, divergence check, solve check, (loss, predictions), update.

    Divergence: the numpy engine's loss is non-finite exactly when Σ_p (max(z2,0) - y·z2) is (the log1p terms
    are in [0, ln 2] and cannot change finiteness); w1, w2, b2 non-finite make some z2 non-finite, b1 is checked
    directly (tanh(±inf) = ±1 would hide it). A diverged lane keeps its parameters (the select below), so every
    later forward pass reproduces its frozen loss and predictions.
    """
    n = BLOCK
    w = (
        loc[i],
        loc[n + i],
        loc[2 * n + i],
        loc[3 * n + i],
        loc[4 * n + i],
        loc[5 * n + i],
        loc[6 * n + i],
        loc[7 * n + i],
    )
    b1 = (loc[B1 * n + i], loc[(B1 + 1) * n + i], loc[(B1 + 2) * n + i], loc[(B1 + 3) * n + i])
    v = (loc[W2 * n + i], loc[(W2 + 1) * n + i], loc[(W2 + 2) * n + i], loc[(W2 + 3) * n + i])
    b2 = loc[B2 * n + i]
    fs = loc[FS * n + i]
    ds = loc[DS * n + i]
    a_0, z_0, e_0, y_0 = _point(0.0, 0.0, w, b1, v, b2)  # XOR points 00, 01, 10, 11; labels 0, 1, 1, 0
    a_1, z_1, e_1, y_1 = _point(0.0, 1.0, w, b1, v, b2)
    a_2, z_2, e_2, y_2 = _point(1.0, 0.0, w, b1, v, b2)
    a_3, z_3, e_3, y_3 = _point(1.0, 1.0, w, b1, v, b2)

    big = _psum(_bce_big(z_0, 0.0), _bce_big(z_1, 1.0), _bce_big(z_2, 1.0), _bce_big(z_3, 0.0))
    finite = (
        (big - big == 0.0)
        & (b1[0] - b1[0] == 0.0)
        & (b1[1] - b1[1] == 0.0)
        & (b1[2] - b1[2] == 0.0)
        & (b1[3] - b1[3] == 0.0)
    )
    ds = t if (ds < 0.0) & (not finite) else ds
    alive = ds < 0.0
    correct = (y_0 < 0.5) & (y_1 > 0.5) & (y_2 > 0.5) & (y_3 < 0.5)
    q = e_0  # ∏(1 + e_p) - 1, expanded so it stays accurate for tiny e_p
    q = q + e_1 + q * e_1
    q = q + e_2 + q * e_2
    q = q + e_3 + q * e_3
    fs = t if (fs < 0.0) & alive & correct & (q < loc[CTHR * n + i]) else fs
    loc[FS * n + i] = fs
    loc[DS * n + i] = ds
    if with_loss:  # a compile-time constant at each call site: the branch folds away
        loss = _psum(_bce(z_0, 0.0, e_0), _bce(z_1, 1.0, e_1), _bce(z_2, 1.0, e_2), _bce(z_3, 0.0, e_3)) / 4.0
        loc[LOSS * n + i] = loss
        loc[YHAT * n + i] = y_0
        loc[(YHAT + 1) * n + i] = y_1
        loc[(YHAT + 2) * n + i] = y_2
        loc[(YHAT + 3) * n + i] = y_3

    # Backward (gradients of the summed BCE): dz2 = yhat - y, then the numpy engine's sums in point order.
    d_0, d_1, d_2, d_3 = y_0 - 0.0, y_1 - 1.0, y_2 - 1.0, y_3 - 0.0
    g_0, g_1, g_2, g_3 = _dz1(a_0, d_0, v), _dz1(a_1, d_1, v), _dz1(a_2, d_2, v), _dz1(a_3, d_3, v)
    lr, lro = loc[LR * n + i], loc[LRO * n + i]  # hidden layer's rate, output layer's rate
    for j in range(4):  # unrolled by LLVM (constant trip count) before vectorising across lanes
        gw0 = _psum(0.0 * g_0[j], 0.0 * g_1[j], 1.0 * g_2[j], 1.0 * g_3[j])  # x.T @ dz1, x[:, 0] = 0 0 1 1
        gw1 = _psum(0.0 * g_0[j], 1.0 * g_1[j], 0.0 * g_2[j], 1.0 * g_3[j])  # x[:, 1] = 0 1 0 1
        gb1 = _psum(g_0[j], g_1[j], g_2[j], g_3[j])
        gw2 = _psum(a_0[j] * d_0, a_1[j] * d_1, a_2[j] * d_2, a_3[j] * d_3)  # a1.T @ dz2
        loc[j * n + i] = w[j] - lr * gw0 if alive else w[j]  # p -= lr·g, unless frozen
        loc[(4 + j) * n + i] = w[4 + j] - lr * gw1 if alive else w[4 + j]
        loc[(B1 + j) * n + i] = b1[j] - lr * gb1 if alive else b1[j]
        loc[(W2 + j) * n + i] = v[j] - lro * gw2 if alive else v[j]
    gb2 = _psum(d_0, d_1, d_2, d_3)
    loc[B2 * n + i] = b2 - lro * gb2 if alive else b2


@nb.njit(nogil=True, error_model="numpy")
def _steps_plain(loc, t):
    """A step of every lane of a block (constant trip count, no call inside: vectorises across lanes)."""
    for i in range(BLOCK):
        _step(loc, i, t, False)


@nb.njit(nogil=True, error_model="numpy")
def _steps_loss(loc, t):
    """As ``_steps_plain``, also storing each lane's loss and predictions in rows LOSS, YHAT…YHAT+3."""
    for i in range(BLOCK):
        _step(loc, i, t, True)


@nb.njit(nogil=True, error_model="numpy")
def _block(
    b,
    P,
    lr,
    cthr,
    fs0,
    t0,
    horizon,
    log_every,
    r_lane,
    r_end,
    r_idx,
    lo,
    hi,
    losses,
    fs_out,
    ds_out,
    end_loss,
    end_yhat,
    end_P,
    end_tail,
):
    """Simulate lanes b·BLOCK … b·BLOCK + BLOCK - 1 over every step, with the runs r_idx[lo:hi] read out of them
    (sorted by end). A step records losses ("loss" loop) if it is logged, the last, or within TAIL steps before
    some run end of this block; otherwise it runs the plain loop."""
    n_lanes = P.shape[1]
    l0 = b * BLOCK
    n = min(BLOCK, n_lanes - l0)
    loc = np.zeros(NROW * BLOCK)  # padding lanes: a zero net with lr 0, harmless
    for k in range(NPARAM):
        for i in range(n):
            loc[k * BLOCK + i] = P[k, l0 + i]
    for i in range(n):
        loc[LR * BLOCK + i] = lr[0, l0 + i]
        loc[LRO * BLOCK + i] = lr[1, l0 + i]
        loc[CTHR * BLOCK + i] = cthr[l0 + i]
        loc[FS * BLOCK + i] = fs0[l0 + i]
    for i in range(BLOCK):
        loc[DS * BLOCK + i] = NO_STEP
        if i >= n:
            loc[FS * BLOCK + i] = NO_STEP
    a = lo  # first run (in end order) that has not ended before t
    for t in range(t0, horizon + 1):
        while a < hi and r_end[a] < t:
            a += 1
        logged = t < horizon and t % log_every == 0
        if not (logged or t == horizon or (a < hi and r_end[a] <= t + TAIL)):
            _steps_plain(loc, t)
            continue
        c = a  # runs ending at t: their parameters now, before this step's update
        while c < hi and r_end[c] == t:
            for k in range(NPARAM):
                end_P[k, r_idx[c]] = loc[k * BLOCK + r_lane[c] - l0]
            c += 1
        _steps_loss(loc, t)
        if logged:
            s = t // log_every - (t0 + log_every - 1) // log_every  # index among logged t0 <= t' < horizon
            for i in range(n):
                losses[l0 + i, s] = loc[LOSS * BLOCK + i]
        c = a
        while c < hi and r_end[c] <= t + TAIL:
            i, r, end = r_lane[c] - l0, r_idx[c], r_end[c]
            if end == t:
                end_loss[r] = loc[LOSS * BLOCK + i]
                for p in range(4):
                    end_yhat[p, r] = loc[(YHAT + p) * BLOCK + i]
            else:  # end - TAIL <= t < end
                end_tail[r, t - (end - TAIL)] = loc[LOSS * BLOCK + i]
            c += 1
    for i in range(n):
        fs_out[l0 + i] = np.int64(loc[FS * BLOCK + i])
        ds_out[l0 + i] = np.int64(loc[DS * BLOCK + i])


_I = types.int64
_F1, _I1, _F2 = types.float64[::1], types.int64[::1], types.float64[:, ::1]
SIGNATURE = types.void(_F2, _F2, _F1, _I1, _I, _I, _I, _I1, _I1, _I1, _I1, _F2, _I1, _I1, _F1, _F2, _F2, _F2)


@nb.njit(nogil=True, error_model="numpy", parallel=True, cache=True)
def simulate_kernel(
    P,
    lr,
    cthr,
    fs0,
    t0,
    horizon,
    log_every,
    r_lane,
    r_end,
    r_idx,
    blk_ptr,
    losses,
    fs_out,
    ds_out,
    end_loss,
    end_yhat,
    end_P,
    end_tail,
):
    """All blocks, spread over numba's threads (``prange``); results land in the output arrays.

    P (17, L) parameter rows; lr (2, L) the hidden and the output layer's rates; cthr = expm1(4·threshold), fs0
    per lane; runs sorted by (block, end), block b's
    runs at blk_ptr[b]:blk_ptr[b+1]; outputs as in ``xorlab.engine.kernel.simulate_compiled``."""
    for b in prange(blk_ptr.size - 1):
        _block(
            b,
            P,
            lr,
            cthr,
            fs0,
            t0,
            horizon,
            log_every,
            r_lane,
            r_end,
            r_idx,
            blk_ptr[b],
            blk_ptr[b + 1],
            losses,
            fs_out,
            ds_out,
            end_loss,
            end_yhat,
            end_P,
            end_tail,
        )


def fresh_cache(folder: str) -> str:
    """Give ``simulate_kernel`` a cache that holds nothing yet, after its cache could not be read (a corrupt or
    truncated entry): the damaged index is replaced by an empty one in place when its folder is writable, so the
    recompiled kernel is saved over it and later processes load it again; otherwise the cache moves to
    ``folder`` for this process. Returns where the recompiled kernel is cached."""
    import os

    from numba.core import caching, config

    cache = getattr(simulate_kernel, "_cache")  # noqa: B009 - numba's private attribute, untyped
    try:
        cache.flush()  # an empty index: the damaged entry is no longer referred to, the new one replaces it
        return str(cache.cache_path)
    except (OSError, AttributeError):
        os.makedirs(folder, exist_ok=True)
        setattr(config, "CACHE_DIR", folder)  # noqa: B010 - numba's config module, untyped
        setattr(simulate_kernel, "_cache", caching.FunctionCache(simulate_kernel.py_func))  # noqa: B010
        return folder
