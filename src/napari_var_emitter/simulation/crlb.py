"""Cramer-Rao lower bound of single emitters: pixel-integrated Gaussian PSF on a uniform background.

Model (photon units, per pixel k): ``mu_k = N * Gx_k * Gy_k + b``, parameters ``(x, y, N, b)`` and, for an
astigmatic PSF, ``z`` (through sigma_x(z), sigma_y(z)). Fisher information
``I_ij = sum_k d_i mu_k d_j mu_k / var_k`` with the pixel variance in photon units

    var_k = F^2 * (mu_k + c / qe) / qe + (read_noise_e / (em_gain * qe))^2

(``F^2 = 2`` for an EMCCD, 1 otherwise; ``c`` = spurious charge). For pure shot noise and qe = 1 this is the
exact Poisson Fisher information; EMCCD excess noise halves it; the read-noise term treats read noise as
extra Gaussian variance (the usual sCMOS approximation). Only pixels inside the frame count. Neighbouring
emitters are ignored (isolated-emitter bound). All functions are vectorised over emitters.
"""

from __future__ import annotations

import numpy as np

from ..camera import CameraConfig, pixel_variance  # pixel_variance: re-exported
from .psf import group_by_size, pixel_profiles, window_sizes, window_start

_CHUNK = 1024  # emitters per vectorised block (keeps the (n, P, K*K) Jacobian in cache)
_MIN_VARIANCE = 1e-4  # photons^2: keeps empty pixels of a background-free camera finite


def crlb(
    x_px: np.ndarray,
    y_px: np.ndarray,
    photons: np.ndarray,
    bg: np.ndarray,
    sigma_x_px: np.ndarray,
    sigma_y_px: np.ndarray,
    camera: CameraConfig | None = None,
    frame_size: tuple[int, int] | None = None,
    dsigma_x_dz: np.ndarray | None = None,
    dsigma_y_dz: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """CRLB (standard deviations) per emitter.

    Positions and sigmas in pixels from the image corner, ``photons`` per frame, ``bg`` photons/pixel,
    ``camera=None`` for pure Poisson noise with qe = 1, ``frame_size=None`` for an unbounded camera.
    With ``dsigma_*_dz`` (pixels/nm) z is a parameter too. Returns ``x_px``, ``y_px``, ``photons``, ``bg``
    (and ``z_nm``) arrays; NaN where the Fisher matrix is singular (e.g. an emitter far outside the frame).
    """
    x, y, n, b, sx, sy = (
        np.atleast_1d(np.asarray(a, dtype=np.float64))
        for a in (x_px, y_px, photons, bg, sigma_x_px, sigma_y_px)
    )
    x, y, n, b, sx, sy = np.broadcast_arrays(x, y, n, b, sx, sy)
    with_z = dsigma_x_dz is not None and dsigma_y_dz is not None
    names = ["x_px", "y_px", "photons", "bg"] + (["z_nm"] if with_z else [])
    if x.size == 0:
        return {k: np.zeros(0) for k in names}

    dz = (
        tuple(np.broadcast_to(np.asarray(d, dtype=np.float64), x.shape) for d in (dsigma_x_dz, dsigma_y_dz))
        if with_z
        else None
    )
    # emitters grouped by their own window size (+-4 sigma), each group in cache-sized chunks
    sizes = window_sizes(sx, sy)
    fisher = np.empty((x.size, len(names), len(names)))
    for group in group_by_size(sizes):
        size = int(sizes[group[0]])
        for lo in range(0, len(group), _CHUNK):
            i = group[lo : lo + _CHUNK]
            dzs = None if dz is None else (dz[0][i], dz[1][i])
            fisher[i] = _fisher(x[i], y[i], n[i], b[i], sx[i], sy[i], size, camera, frame_size, dzs)
    # invert the correlation-normalised matrix (well scaled whatever the units), flag singular ones
    diag = np.diagonal(fisher, axis1=1, axis2=2)
    ok = np.all(diag > 0, axis=1)
    scale = np.sqrt(np.where(ok[:, None], diag, 1.0))
    corr = fisher / (scale[:, :, None] * scale[:, None, :])
    with np.errstate(invalid="ignore"):
        ok &= np.linalg.det(corr) > 1e-12
    corr[~ok] = np.eye(len(names))
    var = np.diagonal(np.linalg.inv(corr), axis1=1, axis2=2) / scale**2
    var = np.where(ok[:, None], var, np.nan)
    std = np.sqrt(np.maximum(var, 0.0))
    return {k: std[:, i] for i, k in enumerate(names)}


def _fisher(x, y, n, b, sx, sy, size, camera, frame_size, dz) -> np.ndarray:
    """Fisher matrices (n, P, P) of a chunk of emitters (float32 pixel sums, float64 result)."""
    cx, cy = window_start(x, size), window_start(y, size)
    gx, dgx_dc, dgx_ds = (a.astype(np.float32) for a in pixel_profiles(x, sx, cx, size, derivatives=True))
    gy, dgy_dc, dgy_ds = (a.astype(np.float32) for a in pixel_profiles(y, sy, cy, size, derivatives=True))
    m, k2 = len(x), size * size
    nn = n.astype(np.float32)[:, None, None]
    jac = np.empty((m, 4 if dz is None else 5, size, size), dtype=np.float32)
    np.multiply(gy[:, :, None], dgx_dc[:, None, :], out=jac[:, 0])
    np.multiply(dgy_dc[:, :, None], gx[:, None, :], out=jac[:, 1])
    np.multiply(gy[:, :, None], gx[:, None, :], out=jac[:, 2])
    jac[:, 3] = 1.0
    if dz is not None:
        dzx, dzy = (d.astype(np.float32)[:, None, None] for d in dz)
        jac[:, 4] = (gy[:, :, None] * dgx_ds[:, None, :]) * dzx + (dgy_ds[:, :, None] * gx[:, None, :]) * dzy
        jac[:, 4] *= nn
    jac[:, :2] *= nn[:, None]
    variance = pixel_variance(nn * jac[:, 2] + b.astype(np.float32)[:, None, None], camera)
    weight = 1.0 / np.maximum(variance, _MIN_VARIANCE)
    if frame_size is not None:
        h, w = frame_size
        rows = cy[:, None] + np.arange(size)
        cols = cx[:, None] + np.arange(size)
        weight *= ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    jac = jac.reshape(m, -1, k2)
    return np.matmul(jac * weight.reshape(m, 1, k2), jac.transpose(0, 2, 1)).astype(np.float64)


def crlb_gaussian_2d(
    photons: float | np.ndarray,
    bg: float | np.ndarray,
    sigma_px: float | np.ndarray,
    camera: CameraConfig | None = None,
    offset_px: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """Lateral CRLB (pixels) of a symmetric 2-D Gaussian emitter at ``offset_px`` within its pixel."""
    n = np.atleast_1d(np.asarray(photons, dtype=np.float64))
    bg, sigma = np.broadcast_arrays(n, np.asarray(bg, dtype=np.float64), np.asarray(sigma_px, np.float64))[1:]
    centre = np.full(n.shape, 100.0)
    out = crlb(centre + offset_px[0], centre + offset_px[1], n, bg, sigma, sigma, camera)
    return out["x_px"]
