"""Pixel-integrated Gaussian PSFs (2-D and astigmatic 3-D), rendered in local windows, vectorised.

All positions here are in camera pixels measured from the image corner (pixel c spans [c, c + 1)), so the
centre of pixel (r, c) is (c + 0.5, r + 0.5): the nm convention (:mod:`napari_var_emitter.geometry`) in
pixels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from .config import PSFConfig

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


def astigmatic_sigmas(z_nm: np.ndarray, psf: PSFConfig) -> tuple[np.ndarray, np.ndarray]:
    """sigma_x, sigma_y in pixels of the astigmatic PSF at depth ``z_nm``."""
    return _astig(z_nm, psf, +1.0)[0], _astig(z_nm, psf, -1.0)[0]


def astigmatic_sigma_derivatives(z_nm: np.ndarray, psf: PSFConfig) -> tuple[np.ndarray, np.ndarray]:
    """d sigma_x / dz and d sigma_y / dz in pixels per nm."""
    return _astig(z_nm, psf, +1.0)[1], _astig(z_nm, psf, -1.0)[1]


def _astig(z_nm: np.ndarray, psf: PSFConfig, sign: float) -> tuple[np.ndarray, np.ndarray]:
    u = (np.asarray(z_nm, dtype=np.float64) - sign * psf.focal_offset_nm) / psf.depth_nm
    q = np.maximum(1.0 + u**2 + psf.a * u**3 + psf.b * u**4, 1e-6)
    sigma = psf.sigma0_px * np.sqrt(q)
    dsigma = psf.sigma0_px * (2 * u + 3 * psf.a * u**2 + 4 * psf.b * u**3) / (2 * np.sqrt(q)) / psf.depth_nm
    return sigma, dsigma


def window_sizes(sigma_x_px: np.ndarray, sigma_y_px: np.ndarray) -> np.ndarray:
    """Side of each emitter's square window: at least +-4 sigma around the emitter's pixel."""
    return 2 * np.ceil(4.0 * np.maximum(sigma_x_px, sigma_y_px)).astype(np.int64) + 3


def group_by_size(sizes: np.ndarray) -> list[np.ndarray]:
    """Indices of the emitters sharing each window size (one vectorised block per size)."""
    order = np.argsort(sizes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(sizes[order])) + 1)


def window_start(centre_px: np.ndarray, size: int) -> np.ndarray:
    """First pixel index of a window of ``size`` pixels centred on the pixel containing ``centre_px``."""
    return np.floor(centre_px).astype(np.int64) - size // 2


def pixel_profiles(
    centre_px: np.ndarray, sigma_px: np.ndarray, start: np.ndarray, size: int, derivatives: bool = False
) -> tuple[np.ndarray, ...]:
    """1-D pixel-integrated Gaussian over pixels ``start .. start + size - 1`` for each emitter.

    Returns ``G`` (n, size) (the fraction of the emitter's photons in each pixel column/row) and, with
    ``derivatives``, ``dG/dcentre`` and ``dG/dsigma`` of the same shape.
    """
    sigma = np.asarray(sigma_px, dtype=np.float64)[:, None]
    lower = start[:, None] + np.arange(size) - np.asarray(centre_px, dtype=np.float64)[:, None]
    edges = np.concatenate([lower, lower[:, -1:] + 1.0], axis=1)  # (n, size + 1) pixel edges
    cdf = erf(edges / (_SQRT2 * sigma))
    g = 0.5 * np.diff(cdf, axis=1)
    if not derivatives:
        return (g,)
    gauss = np.exp(-0.5 * (edges / sigma) ** 2)
    dg_dc = -np.diff(gauss, axis=1) / (_SQRT2PI * sigma)
    dg_ds = -np.diff(edges * gauss, axis=1) / (_SQRT2PI * sigma**2)
    return g, dg_dc, dg_ds


def render(
    shape: tuple[int, int, int],
    frame: np.ndarray,
    x_px: np.ndarray,
    y_px: np.ndarray,
    sigma_x_px: np.ndarray,
    sigma_y_px: np.ndarray,
    photons: np.ndarray,
) -> np.ndarray:
    """Expected photons per pixel (float32, ``shape`` = (T, H, W)) of emitters in frames ``frame``.

    Each emitter is the outer product of two 1-D erf profiles in a local window of +-4 sigma; windows are
    accumulated with one ``np.bincount``. Photons falling outside the frame are lost, as on a camera.
    """
    t, h, w = shape
    if len(frame) == 0:
        return np.zeros(shape, dtype=np.float32)
    frame = np.asarray(frame, dtype=np.int64)
    photons = np.asarray(photons, dtype=np.float64)
    # windows sized per emitter (+-4 sigma), grouped by size so that each group is one vectorised block
    sizes = window_sizes(sigma_x_px, sigma_y_px)
    indices, weights = [], []
    for i in group_by_size(sizes):
        size = int(sizes[i[0]])
        cx, cy = window_start(x_px[i], size), window_start(y_px[i], size)
        (gx,) = pixel_profiles(x_px[i], sigma_x_px[i], cx, size)
        (gy,) = pixel_profiles(y_px[i], sigma_y_px[i], cy, size)
        cols = cx[:, None] + np.arange(size)
        rows = cy[:, None] + np.arange(size)
        gx *= (cols >= 0) & (cols < w)
        gy *= photons[i, None] * ((rows >= 0) & (rows < h))
        weights.append((gy[:, :, None] * gx[:, None, :]).ravel())
        index = (
            (frame[i] * (h * w))[:, None, None]
            + (np.clip(rows, 0, h - 1) * w)[:, :, None]
            + np.clip(cols, 0, w - 1)[:, None, :]
        )
        indices.append(index.ravel())
    image = np.bincount(np.concatenate(indices), weights=np.concatenate(weights), minlength=t * h * w)
    return image.astype(np.float32).reshape(shape)
