"""Estimate simulation parameters (background, brightness, PSF width, density) from a camera movie in photons.

Used by the training widget's "Estimate from image" button so that simulated training data resemble the
user's data. Vectorised: spots are found with a maximum filter and measured in 7x7 boxes cut out at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter, uniform_filter

from ...errors import ParameterError
from ...geometry import DEFAULT_PIXEL_SIZE_NM

BOX = 7  # odd box side (px) for photon and width measurements


@dataclass(frozen=True)
class ImageEstimate:
    background: tuple[float, float]  #: photons/px, range over frames
    photons: tuple[float, float]  #: photons per spot, 10th-90th percentile
    sigma_px: tuple[float, float]  #: PSF sigma in camera pixels, quartiles
    density: float  #: isolated bright spots per um^2 per frame (a lower bound at high density)
    n_spots: int


def sample_frames(data, max_frames: int = 50) -> np.ndarray:
    """Up to ``max_frames`` frames spread evenly over a (T, Y, X) array (lazy arrays are read only there)."""
    n = int(data.shape[0])
    index = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    return np.asarray(data[index], dtype=np.float32)


def estimate_from_frames(photons: np.ndarray, pixel_size_nm: float = DEFAULT_PIXEL_SIZE_NM) -> ImageEstimate:
    """Estimate simulation parameters from frames (T, Y, X) already converted to photons."""
    frames = np.asarray(photons, dtype=np.float32)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or min(frames.shape[1:]) < 2 * BOX:
        raise ParameterError(
            f"cannot estimate from frames of shape {frames.shape}: need (T, Y, X) of >= 14 px"
        )
    t, h, w = frames.shape
    bg = np.median(frames, axis=(1, 2))
    residual = frames - bg[:, None, None]
    noise = 1.4826 * np.median(np.abs(residual), axis=(1, 2)) + 1e-6
    smooth = gaussian_filter(residual, sigma=(0, 1, 1))
    is_max = (smooth == maximum_filter(smooth, size=(1, 5, 5))) & (smooth > 3.0 * noise[:, None, None])
    r = BOX // 2
    is_max[:, :r] = is_max[:, -r:] = False
    is_max[:, :, :r] = is_max[:, :, -r:] = False
    ft, fy, fx = np.nonzero(is_max)
    # keep isolated spots: no other maximum within the box
    neighbours = uniform_filter(is_max.astype(np.float32), size=(1, BOX + 2, BOX + 2), mode="constant")
    keep = neighbours[ft, fy, fx] * (BOX + 2) ** 2 < 1.5
    ft, fy, fx = ft[keep], fy[keep], fx[keep]
    area_um2 = h * w * (pixel_size_nm / 1000.0) ** 2
    bg_range = (float(np.percentile(bg, 5)), float(np.percentile(bg, 95)))
    if len(ft) < 3:
        return ImageEstimate(bg_range, (1000.0, 5000.0), (1.0, 1.4), 0.0, int(len(ft)))
    d = np.arange(-r, r + 1)
    boxes = residual[
        ft[:, None, None], fy[:, None, None] + d[None, :, None], fx[:, None, None] + d[None, None, :]
    ]
    weights = np.clip(boxes, 0, None)
    total = weights.sum(axis=(1, 2)) + 1e-6
    my = (weights * d[None, :, None]).sum(axis=(1, 2)) / total
    mx = (weights * d[None, None, :]).sum(axis=(1, 2)) / total
    var = (
        (
            weights
            * ((d[None, :, None] - my[:, None, None]) ** 2 + (d[None, None, :] - mx[:, None, None]) ** 2)
        ).sum(axis=(1, 2))
        / total
        / 2
    )
    sigma = np.sqrt(np.clip(var - 1 / 12, 0.05, None))  # minus the pixel-integration variance
    spot_photons = boxes.sum(axis=(1, 2))
    lo_s, hi_s = np.percentile(sigma, [25, 75])
    lo_p, hi_p = np.percentile(spot_photons, [10, 90])
    return ImageEstimate(
        background=bg_range,
        photons=(float(max(lo_p, 1.0)), float(max(hi_p, lo_p + 1.0))),
        sigma_px=(float(np.clip(lo_s, 0.5, 5.0)), float(np.clip(hi_s, 0.5, 5.0))),
        density=float(len(ft) / t / area_um2),
        n_spots=int(len(ft)),
    )
