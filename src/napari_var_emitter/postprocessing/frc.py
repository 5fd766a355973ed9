"""Fourier ring correlation (FRC) resolution of a localization table.

The localizations are split at random into two halves, each half is rendered as a histogram of
``pixel_nm`` pixels over the same field, and the normalised cross-correlation of their Fourier transforms is
averaged over rings of equal spatial frequency (Nieuwenhuizen et al., Nat. Methods 2013; Banterle et al.,
J. Struct. Biol. 2013). The resolution is the inverse of the frequency where the (lightly smoothed) curve
first drops below 1/7.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import fft
from scipy.ndimage import uniform_filter1d

from ..errors import ParameterError

THRESHOLD = 1.0 / 7.0
MIN_LOCS = 100
MAX_SIDE = 8192


@dataclass(frozen=True)
class FRCResult:
    resolution_nm: float  #: NaN when the curve never drops below the threshold (finer than 2 pixels)
    frequency: np.ndarray  #: ring frequencies in 1/nm
    frc: np.ndarray  #: smoothed FRC per ring
    frc_raw: np.ndarray  #: FRC per ring before smoothing
    threshold: float
    pixel_nm: float
    n_locs: int


def _rings(image_a: np.ndarray, image_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FRC per integer ring radius (in Fourier pixels of the square image), rings 0 .. side/2."""
    side = image_a.shape[0]
    fa, fb = fft.rfft2(image_a, workers=-1), fft.rfft2(image_b, workers=-1)
    ky = fft.fftfreq(side) * side
    kx = fft.rfftfreq(side) * side
    ring = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64).ravel()
    n = side // 2 + 1
    sel = ring < n
    ring = ring[sel]
    num = np.bincount(ring, (fa * np.conj(fb)).real.ravel()[sel], minlength=n)
    pa = np.bincount(ring, (np.abs(fa) ** 2).ravel()[sel], minlength=n)
    pb = np.bincount(ring, (np.abs(fb) ** 2).ravel()[sel], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = num / np.sqrt(pa * pb)
    return np.arange(n) / side, np.nan_to_num(frc)


def frc_resolution(table: pd.DataFrame, pixel_nm: float = 5.0, seed: int = 0, smooth: int = 7) -> FRCResult:
    """FRC resolution of ``table`` from two random halves rendered at ``pixel_nm`` (see the module doc).

    ``smooth`` is the width (rings) of the moving average applied before the threshold crossing is found.
    Raises :class:`ParameterError` for fewer than ``MIN_LOCS`` localizations or an image that is too large.
    """
    if not pixel_nm > 0:
        raise ParameterError(f"pixel size must be positive, got {pixel_nm}")
    missing = [c for c in ("x_nm", "y_nm") if c not in table.columns]
    if missing:
        raise ParameterError(f"localization table lacks column(s) {', '.join(missing)}")
    x = table["x_nm"].to_numpy(np.float64)
    y = table["y_nm"].to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < MIN_LOCS:
        raise ParameterError(f"FRC needs at least {MIN_LOCS} localizations, the table has {len(x)}")
    extent = max(x.max() - x.min(), y.max() - y.min())
    pad = 0.05 * extent + 4 * pixel_nm  # empty margin: no structure is cut by the periodic border
    side = fft.next_fast_len(int(np.ceil((extent + 2 * pad) / pixel_nm)) + 1, real=True)
    if side > MAX_SIDE:
        raise ParameterError(
            f"FRC image of {side} x {side} pixels of {pixel_nm:g} nm is too large; use a larger pixel size "
            "or a smaller region"
        )
    col = np.floor((x - x.min() + pad) / pixel_nm).astype(np.int64)
    row = np.floor((y - y.min() + pad) / pixel_nm).astype(np.int64)
    half = np.random.default_rng(seed).random(len(x)) < 0.5
    images = [
        np.bincount(row[h] * side + col[h], minlength=side * side).reshape(side, side).astype(np.float64)
        for h in (half, ~half)
    ]
    q, raw = _rings(*images)
    q = q / pixel_nm
    curve = uniform_filter1d(raw, size=max(1, int(smooth)), mode="nearest")
    below = np.flatnonzero(curve[1:] < THRESHOLD) + 1
    resolution = float("nan")
    if len(below):
        k = int(below[0])
        c0, c1 = curve[k - 1], curve[k]
        frac = (c0 - THRESHOLD) / (c0 - c1) if c0 != c1 else 0.0
        q_cross = q[k - 1] + frac * (q[k] - q[k - 1])
        resolution = float(1.0 / q_cross) if q_cross > 0 else float("inf")
    return FRCResult(resolution, q, curve, raw, THRESHOLD, float(pixel_nm), int(len(x)))
