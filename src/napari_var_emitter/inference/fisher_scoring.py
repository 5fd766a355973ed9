"""Damped Fisher scoring of pixel-integrated Gaussian spots, compiled with numba: the inner loop of the PSF
fit (:mod:`.refine`) and of the one-or-two test (:mod:`.two_emitters`).

Each of K boxes (``box`` x ``box`` camera pixels of photons, pixel centres at integers, flattened row-major)
holds one emitter, ``theta = (x, y, N, bg, s)``, or two on one background, ``theta = (x1, y1, N1, x2, y2, N2,
bg, s1, s2)``. Its model is ``mu = bg + sum_m N_m Ex(x_m, s_m) Ey(y_m, s_m) + rest`` (``Ex``, ``Ey`` the
pixel integrals of a unit Gaussian, :func:`.gaussian_psf.profile`; ``rest`` the fixed model of everything
else in the box), clamped at 1e-6, and the pixels' variance is the camera's
(:func:`~napari_var_emitter.camera.pixel_variance`, linear in ``mu``). One step solves ``(I + damping
diag(I)) step = J^T W (d - mu)`` (``I = J^T W J`` the Fisher information, ``W`` the inverse variances) and
bounds the result (see :func:`scoring_steps`).

Every box is fitted in one pass over its pixels per iteration, in float64, with no (boxes x parameters x
pixels) temporaries: the batched torch version this replaced moved ~30 such arrays through memory per
iteration (the whole PSF fit took about twice as long: docs/benchmarks.md, speed). The compiled functions
release the GIL, so the predictor's worker thread fits one batch while the network runs on the next. They
are compiled on first use (~8 s, once) and cached next to this file (numba's cache, or a user-wide folder
where that is not writable); loading them costs a process ~0.6 s (numba's own start).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import torch

from ..camera import CameraConfig, pixel_variance
from .gaussian_psf import contiguous_profile

_SQRT2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
_F32_MAX = float(np.finfo(np.float32).max)  # where torch.nan_to_num puts an infinite step
#: sums over pixels may be reordered (vectorised) and multiply-adds fused; NaN and infinity keep their meaning
_FAST = {"contract", "reassoc"}


def variance_coefficients(camera: CameraConfig | None) -> tuple[float, float]:
    """``(a, b)`` with ``pixel_variance(mu, camera) == a * mu + b`` (the variance is linear in ``mu``)."""
    b = float(pixel_variance(np.float64(0.0), camera))
    return float(pixel_variance(np.float64(1.0), camera)) - b, b


@numba.njit(nogil=True, inline="always")  # inlined into the kernels, which are cached
def _profiles(c, s, box, e, de_dc, de_ds):  # compiled
    """Pixel integrals ``e`` of a unit 1-D Gaussian (centre ``c``, width ``s``) over pixels 0..box-1 and
    their derivatives by ``c`` and ``s``; adjacent pixels share an edge, so erf and exp run box + 1 times."""
    scale = 1.0 / (_SQRT2 * s)
    t0 = (-c - 0.5) * scale
    f0 = math.erf(t0)
    g0 = math.exp(-t0 * t0) / _SQRT_PI
    for k in range(box):
        t1 = t0 + scale
        f1 = math.erf(t1)
        g1 = math.exp(-t1 * t1) / _SQRT_PI
        e[k] = 0.5 * (f1 - f0)
        de_dc[k] = -(g1 - g0) * scale
        de_ds[k] = -(g1 * t1 - g0 * t0) / s
        t0, f0, g0 = t1, f1, g1


@numba.njit(nogil=True, inline="always")  # inlined into the kernels, which are cached
def _solve(a, b, x):  # compiled
    """``x = a^-1 b`` by Gaussian elimination with partial pivoting (``a`` and ``b`` are overwritten); a
    non-finite result is what ``torch.nan_to_num`` makes of it (NaN 0, infinities the float32 extremes)."""
    n = b.shape[0]
    for col in range(n):
        piv = col
        for r in range(col + 1, n):
            if abs(a[r, col]) > abs(a[piv, col]):
                piv = r
        if piv != col:
            for k in range(n):
                a[col, k], a[piv, k] = a[piv, k], a[col, k]
            b[col], b[piv] = b[piv], b[col]
        for r in range(col + 1, n):
            f = a[r, col] / a[col, col]
            for k in range(col, n):
                a[r, k] -= f * a[col, k]
            b[r] -= f * b[col]
    for r in range(n - 1, -1, -1):
        acc = b[r]
        for k in range(r + 1, n):
            acc -= a[r, k] * x[k]
        x[r] = acc / a[r, r]
    for r in range(n):
        v = x[r]
        if v != v:
            x[r] = 0.0
        elif v > _F32_MAX:
            x[r] = _F32_MAX
        elif v < -_F32_MAX:
            x[r] = -_F32_MAX


@numba.njit(nogil=True, inline="always")  # inlined into the kernels, which are cached
def _at_least(v, lo):  # compiled
    """``max(v, lo)`` that keeps a NaN ``v`` (as torch.maximum and torch.clamp do)."""
    return lo if v < lo else v


@numba.njit(nogil=True, inline="always")  # inlined into the kernels, which are cached
def _at_most(v, hi):  # compiled
    return hi if v > hi else v


def _compiled(fn: Callable) -> Callable:
    """``fn`` compiled (GIL released, the fast-math flags of ``_FAST``) and cached on disk; uncached, so
    compiled anew in every process, where numba finds no writable folder for its cache."""
    try:
        return numba.njit(cache=True, nogil=True, fastmath=_FAST)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, fastmath=_FAST)(fn)


@functools.cache
def _kernels(box: int) -> tuple[Callable, Callable]:
    """The compiled ``score`` and ``neighbour_spots`` kernels for ``box`` x ``box`` boxes. ``box`` is a
    compile-time constant of each (the pixel loops unroll: ~3x faster than a run-time size); numba caches
    one compiled pair per box size. (A kernel that called another closure would not be found in numba's
    cache by the next process, so the pixel terms are written out in ``score``.)"""
    npx = box * box

    @_compiled
    def score(theta, d, rest, n_em, n_iter, info, damping, var_a, var_b, clip, pos_lo, pos_hi, s_lo, s_hi):
        """``n_iter`` steps in each box (see :func:`scoring_steps`), then (``info``) the Fisher information
        (K, n, n) and model (K, P) at the result. The Jacobian is parameter-major, so the sums over pixels
        are contiguous (vectorised)."""
        nk, n = theta.shape
        out = theta.copy()
        fisher = np.zeros((nk if info else 1, n, n))
        mu = np.zeros((nk if info else 1, npx))
        f, grad, model = np.empty((n, n)), np.empty(n), np.empty(npx)
        prof, jac, w, res = np.empty((n_em, 6, box)), np.empty((n, npx)), np.empty(npx), np.empty(npx)
        a, step = np.empty((n, n)), np.empty(n)
        bg_i = 3 * n_em
        for k in range(nk):
            th = out[k]
            for it in range(n_iter + 1):
                last = it == n_iter
                if last and not info:
                    break
                for m in range(n_em):
                    s = th[bg_i + 1 + m]
                    _profiles(th[3 * m], s, box, prof[m, 0], prof[m, 1], prof[m, 2])
                    _profiles(th[3 * m + 1], s, box, prof[m, 3], prof[m, 4], prof[m, 5])
                for p in range(npx):
                    model[p] = th[bg_i] + rest[k, p]
                    jac[bg_i, p] = 1.0
                for m in range(n_em):
                    big_n = th[3 * m + 2]
                    for r in range(box):
                        ey, dey, dsy = prof[m, 3, r], prof[m, 4, r], prof[m, 5, r]
                        for c in range(box):
                            p = r * box + c
                            ex, dex, dsx = prof[m, 0, c], prof[m, 1, c], prof[m, 2, c]
                            jac[3 * m, p] = big_n * dex * ey
                            jac[3 * m + 1, p] = big_n * ex * dey
                            jac[3 * m + 2, p] = ex * ey
                            jac[bg_i + 1 + m, p] = big_n * (dsx * ey + ex * dsy)
                            model[p] += big_n * ex * ey
                for p in range(npx):
                    model[p] = _at_least(model[p], 1e-6)
                    w[p] = 1.0 / (var_a * model[p] + var_b)
                    res[p] = 0.0 if last else (d[k, p] - model[p]) * w[p]
                for i in range(n):
                    for j in range(i + 1):
                        acc = 0.0
                        for p in range(npx):
                            acc += jac[i, p] * jac[j, p] * w[p]
                        f[i, j] = acc
                        f[j, i] = acc
                    acc = 0.0
                    for p in range(npx):
                        acc += jac[i, p] * res[p]
                    grad[i] = acc
                if last:
                    fisher[k] = f
                    mu[k] = model
                    break
                a[:, :] = f
                for i in range(n):
                    a[i, i] += damping * max(f[i, i], 1e-9)
                _solve(a, grad, step)
                for m in range(n_em):
                    for i in (3 * m, 3 * m + 1):
                        v = th[i] + _at_most(_at_least(step[i], -clip), clip)
                        th[i] = _at_most(_at_least(v, pos_lo), pos_hi)
                    i = 3 * m + 2
                    th[i] = _at_least(th[i] + step[i], th[i] * 0.2)
                    i = bg_i + 1 + m
                    th[i] = _at_most(_at_least(th[i] + step[i], s_lo), s_hi)
                th[bg_i] = _at_least(_at_least(th[bg_i] + step[bg_i], th[bg_i] * 0.2), 1e-3)
        return out, fisher, mu

    @_compiled
    def neighbour_spots(ex, ey, photons, ptr, nbr, offset, use):
        """See :func:`neighbour_spots` (``offset`` into the profiles ``ex``, ``ey`` (K, span))."""
        nk = ex.shape[0]
        out = np.empty((nk, npx))
        acc = np.empty(npx)  # a local accumulator: no aliasing with the profiles, the loops vectorise
        for i in range(nk):
            acc[:] = 0.0
            for q in range(ptr[i], ptr[i + 1]):
                if not use[q]:
                    continue
                j = nbr[q]
                cx, cy, n = offset[q, 0], offset[q, 1], photons[j]
                for r in range(box):
                    v = n * ey[j, cy + r]
                    for c in range(box):
                        acc[r * box + c] += v * ex[j, cx + c]
            out[i] = acc
        return out

    return score, neighbour_spots


def _emitters(theta: np.ndarray) -> int:
    if theta.ndim != 2 or theta.shape[1] not in (5, 9):
        raise ValueError(f"theta holds 5 (one emitter) or 9 (two) parameters per box, not {theta.shape[1:]}")
    return 1 if theta.shape[1] == 5 else 2


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


@dataclass(frozen=True)
class StepBounds:
    """How the fit's steps are damped and bounded: ``damping`` times each diagonal element of the Fisher
    information is added to it; a step's position components are clipped to ``step_clip`` px; photons and
    background fall at most to a fifth per step (the background to at least 1e-3); widths stay in
    ``sigma_range`` and positions in ``position_range`` (box pixels)."""

    damping: float
    sigma_range: tuple[float, float]
    step_clip: float
    position_range: tuple[float, float] = (-math.inf, math.inf)


def _score(theta, d, rest, box: int, camera, n_iter: int, info: bool, bounds: StepBounds):
    n_em = _emitters(theta)
    a, b = variance_coefficients(camera)
    (lo, hi), (p_lo, p_hi) = bounds.sigma_range, bounds.position_range
    rest = _f64(rest).reshape(len(theta), box * box)
    d = rest if d is None else _f64(d)
    return _kernels(int(box))[0](
        _f64(theta), d, rest, n_em, max(int(n_iter), 0), bool(info), float(bounds.damping), a, b,
        float(bounds.step_clip), float(p_lo), float(p_hi), float(lo), float(hi),
    )  # fmt: skip


def fit_spots(
    theta: np.ndarray, d: np.ndarray, rest: np.ndarray, box: int, camera: CameraConfig | None, n_iter: int,
    bounds: StepBounds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``theta`` (K, 5 or 9) after ``n_iter`` damped Fisher-scoring steps (``bounds``) on the boxes ``d``
    (K, box*box) with the fixed model ``rest`` (K, box*box), and the Fisher information (K, n, n) and model
    ``mu`` (K, box*box, with ``rest``, clamped at 1e-6) there; float64."""
    return _score(theta, d, rest, box, camera, n_iter, True, bounds)


def scoring_steps(
    theta: np.ndarray, d: np.ndarray, rest: np.ndarray, box: int, camera: CameraConfig | None, n_iter: int,
    bounds: StepBounds,
) -> np.ndarray:  # fmt: skip
    """The parameters of :func:`fit_spots` alone (no Fisher information computed)."""
    return _score(theta, d, rest, box, camera, n_iter, False, bounds)[0]


_NO_STEP = StepBounds(0.0, (0.0, 1.0), 0.0)


def information(
    theta: np.ndarray, rest: np.ndarray, box: int, camera: CameraConfig | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher information (K, n, n) and model ``mu`` (K, box*box, with ``rest``, clamped at 1e-6) of the
    spots ``theta`` (K, n = 5 or 9) in their boxes; float64."""
    _, fisher, mu = _score(theta, None, rest, box, camera, 0, True, _NO_STEP)
    return fisher, mu


def neighbour_spots(
    theta: np.ndarray, ptr: np.ndarray, nbr: np.ndarray, offset: np.ndarray, use: np.ndarray, box: int
) -> np.ndarray:
    """(K, box*box) the spots of other detections in each detection's box (float64): the neighbours of box
    ``i`` are ``nbr[ptr[i]:ptr[i + 1]]``, each with the offset (columns, rows) of box ``i``'s corner in the
    neighbour's own box and counted only where ``use`` is True; ``theta`` (K, 5) in each box's frame."""
    if len(nbr) == 0:
        return np.zeros((len(theta), box * box))
    lo = int(offset.min())
    span = int(offset.max()) + box - lo  # the pixels of each detection's own frame that any box reads
    t = torch.from_numpy(np.asarray(theta)).float()  # torch's vectorised erf: 3x numba's scalar one
    ex = contiguous_profile(lo, span, t[:, 0:1], t[:, 4:5]).numpy()
    ey = contiguous_profile(lo, span, t[:, 1:2], t[:, 4:5]).numpy()
    return _kernels(int(box))[1](ex, ey, _f64(theta[:, 2]), ptr, nbr, offset - lo, use)
