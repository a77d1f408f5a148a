"""The compiled step kernel for any hidden width and activation (numba): ``kernel_math``'s semantics, generalised.

``kernel_math`` is unrolled for the notebook's network (4 tanh units) and stays the kernel for it. This one takes
the width H and the activation at run time: per block of ``BLOCK`` lanes, the parameters are rows of one array
(w1[k, j] is row k·H + j, b1_j row 2H + j, w2_j row 3H + j, b2 row 4H), every elementwise step is a loop over the
block's lanes (innermost, so it vectorises), and the activation is chosen outside those loops. The arithmetic is
the numpy engine's, in its order (``xorlab.core.net``): z1 = (x0·w1[0,j] + x1·w1[1,j]) + b1_j, z2 = Σ_j a_j·w2_j in
unit order, then + b2; dz1 = (dz2·w2_j)·f'(a_j); every sum over the four points in point order. exp, tanh and
log1p are ``kernel_math``'s polynomials (an ulp or a few from numpy's), as in the notebook kernel.

Divergence, the solve check, logging, read-out, the TAIL losses and continuation are ``kernel_math``'s: a lane is
diverged when Σ_p (max(z2, 0) − y·z2) or some b1_j is not finite (a non-finite w1, w2 or b2 makes some z2
non-finite: at the point 00, 0·±inf is NaN, which every activation keeps).
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from numba import prange
from numba.core import types

from xorlab.core.activations import LEAKY_SLOPE, NAMES
from xorlab.core.modes import TAIL
from xorlab.engine.kernel_math import _bce, _bce_big, exp, tanh
from xorlab.engine.results import NO_STEP

BLOCK = 64  # lanes per block: the hidden activations of a block (4 × H × 64 doubles) stay in L2 up to H = 256
ACT_CODE = {name: code for code, name in enumerate(NAMES)}  # tanh 0, sigmoid 1, relu 2, leaky_relu 3
# Rows of the per-block auxiliary array.
LR, LRO, CTHR, FS, DS, LOSS, YHAT, NAUX = 0, 1, 2, 3, 4, 5, 6, 10
_Y = (0.0, 1.0, 1.0, 0.0)  # XOR labels of the points 00, 01, 10, 11
_JIT: dict[str, Any] = {"nogil": True, "error_model": "numpy"}


@nb.njit(**_JIT)
def _activate(z, a, act):
    """a = f(z) over one row of lanes (``z`` may be overwritten)."""
    n = z.size
    if act == 0:
        for i in range(n):
            a[i] = tanh(z[i])
    elif act == 1:
        for i in range(n):
            e = exp(-abs(z[i]))
            a[i] = (1.0 if z[i] >= 0.0 else e) / (1.0 + e)
    elif act == 2:
        for i in range(n):
            a[i] = 0.0 if z[i] < 0.0 else z[i]  # np.maximum(z, 0): NaN and -0.0 kept
    else:
        for i in range(n):
            a[i] = z[i] if z[i] > 0.0 else LEAKY_SLOPE * z[i]


@nb.njit(**_JIT)
def _slope(a, s, act):
    """s = f'(z) from the output a, over one row of lanes."""
    n = a.size
    if act == 0:
        for i in range(n):
            s[i] = 1.0 - a[i] * a[i]
    elif act == 1:
        for i in range(n):
            s[i] = a[i] * (1.0 - a[i])
    elif act == 2:
        for i in range(n):
            s[i] = 1.0 if a[i] > 0.0 else 0.0
    else:
        for i in range(n):
            s[i] = 1.0 if a[i] > 0.0 else LEAKY_SLOPE


@nb.njit(**_JIT)
def _step(Pw, aux, A, Z2, E, YH, S, zt, h, act, t, with_loss):
    """One step of every lane of a block: forward, divergence and solve checks, (loss, predictions), update."""
    n = BLOCK
    for p in range(4):  # forward, point by point; z2 summed over the units in order, then + b2
        x0 = 1.0 if p >= 2 else 0.0
        x1 = 1.0 if p % 2 == 1 else 0.0
        z2 = Z2[p]
        for j in range(h):
            w0, w1, b1, v = Pw[j], Pw[h + j], Pw[2 * h + j], Pw[3 * h + j]
            for i in range(n):
                zt[i] = (x0 * w0[i] + x1 * w1[i]) + b1[i]
            a = A[p, j]
            _activate(zt, a, act)
            if j == 0:
                for i in range(n):
                    z2[i] = a[i] * v[i]
            else:
                for i in range(n):
                    z2[i] = z2[i] + a[i] * v[i]
        b2 = Pw[4 * h]
        for i in range(n):
            z = z2[i] + b2[i]
            z2[i] = z
            e = exp(-abs(z))
            E[p, i] = e
            YH[p, i] = (1.0 if z >= 0.0 else e) / (1.0 + e)
    fs, ds, cthr = aux[FS], aux[DS], aux[CTHR]
    for i in range(n):  # divergence, solve, loss: as kernel_math._step
        big = ((_bce_big(Z2[0, i], 0.0) + _bce_big(Z2[1, i], 1.0)) + _bce_big(Z2[2, i], 1.0)) + _bce_big(Z2[3, i], 0.0)
        finite = big - big == 0.0
        for j in range(h):
            b = Pw[2 * h + j, i]
            finite = finite & (b - b == 0.0)
        ds[i] = t if (ds[i] < 0.0) & (not finite) else ds[i]
        alive = ds[i] < 0.0
        correct = (YH[0, i] < 0.5) & (YH[1, i] > 0.5) & (YH[2, i] > 0.5) & (YH[3, i] < 0.5)
        q = E[0, i]
        q = q + E[1, i] + q * E[1, i]
        q = q + E[2, i] + q * E[2, i]
        q = q + E[3, i] + q * E[3, i]
        fs[i] = t if (fs[i] < 0.0) & alive & correct & (q < cthr[i]) else fs[i]
        if with_loss:
            loss = (
                (_bce(Z2[0, i], 0.0, E[0, i]) + _bce(Z2[1, i], 1.0, E[1, i])) + _bce(Z2[2, i], 1.0, E[2, i])
            ) + _bce(Z2[3, i], 0.0, E[3, i])
            aux[LOSS, i] = loss / 4.0
            for p in range(4):
                aux[YHAT + p, i] = YH[p, i]
    lr, lro = aux[LR], aux[LRO]
    for j in range(h):  # backward and update, unit by unit (unit j's update reads only its own old w2_j)
        for p in range(4):
            _slope(A[p, j], S[p], act)
        w0, w1, b1, v = Pw[j], Pw[h + j], Pw[2 * h + j], Pw[3 * h + j]
        for i in range(n):
            alive = ds[i] < 0.0
            d0, d1, d2, d3 = YH[0, i] - 0.0, YH[1, i] - 1.0, YH[2, i] - 1.0, YH[3, i] - 0.0
            g0, g1 = (d0 * v[i]) * S[0, i], (d1 * v[i]) * S[1, i]
            g2, g3 = (d2 * v[i]) * S[2, i], (d3 * v[i]) * S[3, i]
            gw0 = ((0.0 * g0 + 0.0 * g1) + 1.0 * g2) + 1.0 * g3  # x.T @ dz1, x[:, 0] = 0 0 1 1
            gw1 = ((0.0 * g0 + 1.0 * g1) + 0.0 * g2) + 1.0 * g3  # x[:, 1] = 0 1 0 1
            gb1 = ((g0 + g1) + g2) + g3
            gw2 = ((A[0, j, i] * d0 + A[1, j, i] * d1) + A[2, j, i] * d2) + A[3, j, i] * d3  # a1.T @ dz2
            w0[i] = w0[i] - lr[i] * gw0 if alive else w0[i]
            w1[i] = w1[i] - lr[i] * gw1 if alive else w1[i]
            b1[i] = b1[i] - lr[i] * gb1 if alive else b1[i]
            v[i] = v[i] - lro[i] * gw2 if alive else v[i]
    b2 = Pw[4 * h]
    for i in range(n):
        gb2 = (((YH[0, i] - 0.0) + (YH[1, i] - 1.0)) + (YH[2, i] - 1.0)) + (YH[3, i] - 0.0)
        b2[i] = b2[i] - lro[i] * gb2 if ds[i] < 0.0 else b2[i]


@nb.njit(**_JIT)
def _block(b, h, act, P, lr, cthr, fs0, t0, horizon, log_every, r_lane, r_end, r_idx, lo, hi, out):
    """Lanes b·BLOCK … of every step, with the runs r_idx[lo:hi] (sorted by end) read out; as kernel_math._block."""
    losses, fs_out, ds_out, end_loss, end_yhat, end_P, end_tail = out
    n_lanes, n_par = P.shape[1], P.shape[0]
    l0 = b * BLOCK
    n = min(BLOCK, n_lanes - l0)
    Pw = np.zeros((n_par, BLOCK))  # padding lanes: a zero net with lr 0, harmless
    aux = np.zeros((NAUX, BLOCK))
    A = np.empty((4, h, BLOCK))
    Z2, E, YH, S = np.empty((4, BLOCK)), np.empty((4, BLOCK)), np.empty((4, BLOCK)), np.empty((4, BLOCK))
    zt = np.empty(BLOCK)
    for k in range(n_par):
        for i in range(n):
            Pw[k, i] = P[k, l0 + i]
    for i in range(BLOCK):
        aux[DS, i] = NO_STEP
        aux[FS, i] = fs0[l0 + i] if i < n else NO_STEP
        if i < n:
            aux[LR, i], aux[LRO, i], aux[CTHR, i] = lr[0, l0 + i], lr[1, l0 + i], cthr[l0 + i]
    a = lo
    for t in range(t0, horizon + 1):
        while a < hi and r_end[a] < t:
            a += 1
        logged = t < horizon and t % log_every == 0
        if not (logged or t == horizon or (a < hi and r_end[a] <= t + TAIL)):
            _step(Pw, aux, A, Z2, E, YH, S, zt, h, act, t, False)
            continue
        c = a
        while c < hi and r_end[c] == t:
            for k in range(n_par):
                end_P[k, r_idx[c]] = Pw[k, r_lane[c] - l0]
            c += 1
        _step(Pw, aux, A, Z2, E, YH, S, zt, h, act, t, True)
        if logged:
            s = t // log_every - (t0 + log_every - 1) // log_every
            for i in range(n):
                losses[l0 + i, s] = aux[LOSS, i]
        c = a
        while c < hi and r_end[c] <= t + TAIL:
            i, r, end = r_lane[c] - l0, r_idx[c], r_end[c]
            if end == t:
                end_loss[r] = aux[LOSS, i]
                for p in range(4):
                    end_yhat[p, r] = aux[YHAT + p, i]
            else:
                end_tail[r, t - (end - TAIL)] = aux[LOSS, i]
            c += 1
    for i in range(n):
        fs_out[l0 + i] = np.int64(aux[FS, i])
        ds_out[l0 + i] = np.int64(aux[DS, i])


_I = types.int64
_F1, _I1, _F2 = types.float64[::1], types.int64[::1], types.float64[:, ::1]
_OUT = types.Tuple((_F2, _I1, _I1, _F1, _F2, _F2, _F2))
SIGNATURE = types.void(_I, _I, _F2, _F2, _F1, _I1, _I, _I, _I, _I1, _I1, _I1, _I1, _OUT)


@nb.njit(nogil=True, error_model="numpy", parallel=True, cache=True)
def simulate_wide(h, act, P, lr, cthr, fs0, t0, horizon, log_every, r_lane, r_end, r_idx, blk_ptr, out):
    """All blocks over numba's threads. P (4H + 1, L) parameter rows, lr (2, L), cthr = expm1(4·threshold); runs
    sorted by (block, end), block b's at blk_ptr[b]:blk_ptr[b+1]; ``out`` = (losses, first_solved,
    diverged_step, end_loss, end_yhat, end_P, end_tail) as in ``xorlab.engine.kernel.simulate_compiled``."""
    for b in prange(blk_ptr.size - 1):
        _block(
            b, h, act, P, lr, cthr, fs0, t0, horizon, log_every, r_lane, r_end, r_idx, blk_ptr[b], blk_ptr[b + 1], out
        )
