"""Fiducial-free drift correction by redundant cross-correlation (RCC).

The frames are cut into segments; each segment's localizations are rendered as a blurred histogram, every pair
of segments is cross-correlated (FFT) and the correlation peak is located to sub-pixel precision. The shifts
of all pairs over-determine the segment positions: a least-squares solve, with inconsistent pairs rejected,
gives one drift per segment (Wang et al., Opt. Express 2014), which a cubic spline interpolates per frame.
The drift curve has zero mean over the frames, so correction moves the data as little as possible overall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import fft
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter

from ..errors import ParameterError

#: largest correlation image side (pixels); beyond it the bin size is raised
MAX_SIDE = 4096
#: most segments (the pairs grow as n^2)
MAX_SEGMENTS = 100
#: fewest segments: with two, one shift and nothing to check it against
MIN_SEGMENTS = 3
#: blur (pixels) of the segment images before correlation
BLUR_PX = 1.0
#: width (pixels) of the smooth background removed from the segment images
HIGHPASS_PX = 8.0


@dataclass(frozen=True)
class DriftResult:
    """A drift-corrected table with its drift curve (per frame) and the per-segment estimates."""

    table: pd.DataFrame
    drift: pd.DataFrame  #: frame, drift_x_nm, drift_y_nm for every frame 0 .. last frame
    segments: pd.DataFrame  #: frame (mean frame of the segment), drift_x_nm, drift_y_nm, n_locs
    info: dict[str, Any] = field(default_factory=dict)


def _xyf(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [c for c in ("frame", "x_nm", "y_nm") if c not in table.columns]
    if missing:
        raise ParameterError(f"localization table lacks column(s) {', '.join(missing)}")
    x = table["x_nm"].to_numpy(np.float64)
    y = table["y_nm"].to_numpy(np.float64)
    f = table["frame"].to_numpy(np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(f))):
        raise ParameterError("localization table has non-finite frame/x_nm/y_nm values")
    return x, y, f.astype(np.int64)


def _subpixel_peak(cc: np.ndarray) -> tuple[float, float, bool]:
    """(dy, dx) of the maximum of ``cc`` with a Gaussian (log-parabola) 3-point fit per axis; False when the
    maximum lies on the border of the search window (no peak inside it)."""
    i, j = np.unravel_index(int(np.argmax(cc)), cc.shape)
    if i in (0, cc.shape[0] - 1) or j in (0, cc.shape[1] - 1):
        return float(i), float(j), False
    floor = max(float(cc.max()) * 1e-6, 1e-12)
    c = np.log(np.maximum(cc[i - 1 : i + 2, j - 1 : j + 2], floor))
    dy = 0.0
    den = c[0, 1] - 2 * c[1, 1] + c[2, 1]
    if den < 0:
        dy = float(np.clip(0.5 * (c[0, 1] - c[2, 1]) / den, -0.5, 0.5))
    dx = 0.0
    den = c[1, 0] - 2 * c[1, 1] + c[1, 2]
    if den < 0:
        dx = float(np.clip(0.5 * (c[1, 0] - c[1, 2]) / den, -0.5, 0.5))
    return i + dy, j + dx, True


def _solve(pairs: np.ndarray, shifts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares segment positions (segment 0 at 0) from pairwise shifts ``r[j] - r[i]``; residuals."""
    a = np.zeros((len(pairs), n))
    a[np.arange(len(pairs)), pairs[:, 1]] = 1.0
    a[np.arange(len(pairs)), pairs[:, 0]] = -1.0
    sol, *_ = np.linalg.lstsq(a[:, 1:], shifts, rcond=None)
    r = np.vstack([np.zeros((1, 2)), sol])
    res = np.linalg.norm(a @ r - shifts, axis=1)
    return r, res


def _connected(pairs: np.ndarray, n: int) -> bool:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[0] == 1


def estimate_drift(
    table: pd.DataFrame,
    segment: int = 1000,
    bin_nm: float = 20.0,
    max_drift_nm: float = 1000.0,
    min_locs: int = 200,
    max_residual_nm: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Estimate the drift of ``table`` by RCC; returns ``(per-frame curve, per-segment drift, info)``.

    ``segment`` frames per segment, ``bin_nm`` the histogram pixel of the correlated images (blurred by one
    pixel), ``max_drift_nm`` the largest shift searched between two segments, ``min_locs`` the fewest
    localizations a segment may hold, ``max_residual_nm`` (default ``bin_nm``) the largest disagreement of a
    pair with the least-squares solution before the pair is rejected. Raises :class:`ParameterError` when the
    table is too short or too sparse, or when the pairs do not agree (nothing to correlate).
    """
    if int(segment) < 1:
        raise ParameterError(f"segment must be at least 1 frame, got {segment}")
    if not bin_nm > 0 or not max_drift_nm > 0:
        raise ParameterError("bin size and maximum drift must be positive")
    segment = int(segment)
    x, y, f = _xyf(table)
    if len(x) == 0:
        raise ParameterError("cannot correct drift: the table is empty")
    seg = f // segment
    n = int(seg.max()) + 1
    counts = np.bincount(seg, minlength=n)
    if n > MAX_SEGMENTS:
        raise ParameterError(
            f"cannot correct drift: {n} segments of {segment} frames is too many (at most {MAX_SEGMENTS}); "
            "choose a longer segment"
        )
    if counts[-1] < min_locs and n > 2 and counts[-1] < counts[:-1].mean() / 2:  # short tail: join it
        seg = np.minimum(seg, n - 2)
        n -= 1
        counts = np.bincount(seg, minlength=n)
    if n < MIN_SEGMENTS:
        raise ParameterError(
            f"cannot correct drift: the table spans {int(f.max()) + 1} frames, {n} segment(s) of {segment} "
            f"frames; at least {MIN_SEGMENTS} are needed to cross-check the shifts, choose a shorter segment"
        )
    if counts.min() < min_locs:
        k = int(np.argmin(counts))
        raise ParameterError(
            f"table too sparse to correlate: segment {k} (frames {k * segment}-{(k + 1) * segment - 1}) "
            f"holds {int(counts[k])} localizations, at least {min_locs} are needed; use a longer segment"
        )
    max_residual = float(max_residual_nm if max_residual_nm is not None else bin_nm)

    # rendering grid (same for all segments), with room for the largest shift
    extent = max(x.max() - x.min(), y.max() - y.min())
    bin_nm = float(max(bin_nm, (extent + 2 * max_drift_nm) / MAX_SIDE))
    m = int(np.ceil(max_drift_nm / bin_nm)) + 1  # search half-width in pixels
    w = int(np.ceil((x.max() - x.min()) / bin_nm)) + 1
    h = int(np.ceil((y.max() - y.min()) / bin_nm)) + 1
    shape = (fft.next_fast_len(h + m + 2, real=True), fft.next_fast_len(w + m + 2, real=True))
    col = np.floor((x - x.min()) / bin_nm).astype(np.int64)
    row = np.floor((y - y.min()) / bin_nm).astype(np.int64)
    flat = seg * (h * w) + row * w + col
    images = np.bincount(flat, minlength=n * h * w).reshape(n, h, w).astype(np.float32)
    # band-pass (difference of Gaussians): sharp enough for the peak, without the field's overall envelope,
    # whose broad correlation would pull every shift towards zero
    images = gaussian_filter(images, (0, BLUR_PX, BLUR_PX), mode="constant") - gaussian_filter(
        images, (0, HIGHPASS_PX, HIGHPASS_PX), mode="constant"
    )
    spectra = fft.rfft2(images, s=shape, axes=(-2, -1), workers=-1)
    del images

    pairs = np.array([(i, j) for i in range(n) for j in range(i + 1, n)], dtype=np.int64)
    shifts = np.empty((len(pairs), 2))
    valid = np.ones(len(pairs), bool)
    for k, (i, j) in enumerate(pairs):  # one FFT per pair of segments
        cc = fft.irfft2(np.conj(spectra[i]) * spectra[j], s=shape, workers=-1)
        win = np.roll(cc, (m, m), axis=(0, 1))[: 2 * m + 1, : 2 * m + 1]
        py, px, ok = _subpixel_peak(win)
        shifts[k] = ((px - m) * bin_nm, (py - m) * bin_nm)  # (x, y) of segment j relative to segment i
        valid[k] = ok

    keep = valid.copy()
    while True:
        # more consistent pairs than a spanning tree, which any shifts would fit: at least one closed loop
        if keep.sum() < max(n, len(pairs) / 2) or not _connected(pairs[keep], n):
            raise ParameterError(
                f"table too sparse to correlate: the shifts between segments disagree ({int(keep.sum())} of "
                f"{len(pairs)} segment pairs consistent to {max_residual:g} nm); use a longer segment, or "
                "raise the maximum drift if the sample moved more than it"
            )
        r, res = _solve(pairs[keep], shifts[keep], n)
        if res.max() <= max_residual:
            break
        # drop the worst pairs (those above half the worst residual) and solve again
        keep[np.flatnonzero(keep)[res > max(max_residual, 0.5 * res.max())]] = False

    centers = np.bincount(seg, weights=f.astype(np.float64), minlength=n) / counts
    frames = np.arange(int(f.max()) + 1)
    if n >= 4:  # cubic spline between the segment centres, continued linearly beyond them
        spline = CubicSpline(centers, r, axis=0, bc_type="not-a-knot")
        curve = spline(np.clip(frames, centers[0], centers[-1]))
        slope0, slope1 = spline(centers[0], 1), spline(centers[-1], 1)
    else:
        curve = np.column_stack([np.interp(frames, centers, r[:, k]) for k in range(2)])
        slope0 = slope1 = (r[-1] - r[0]) / (centers[-1] - centers[0])
    lo, hi = frames < centers[0], frames > centers[-1]
    curve[lo] += np.outer(frames[lo] - centers[0], slope0)
    curve[hi] += np.outer(frames[hi] - centers[-1], slope1)
    origin = curve.mean(axis=0)
    curve -= origin
    r = r - origin
    drift = pd.DataFrame({"frame": frames, "drift_x_nm": curve[:, 0], "drift_y_nm": curve[:, 1]})
    segments = pd.DataFrame(
        {"frame": centers, "drift_x_nm": r[:, 0], "drift_y_nm": r[:, 1], "n_locs": counts.astype(np.int64)}
    )
    info = {
        "segment": segment,
        "n_segments": n,
        "bin_nm": bin_nm,
        "pairs_used": int(keep.sum()),
        "pairs_total": len(pairs),
        "pair_rms_residual_nm": float(np.sqrt(np.mean(res**2))),
    }
    return drift, segments, info


def apply_drift(table: pd.DataFrame, drift: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with the drift of each localization's frame subtracted from ``x_nm``/``y_nm``.

    ``drift`` has columns ``frame``, ``drift_x_nm``, ``drift_y_nm``; frames between its rows are
    interpolated linearly, frames beyond them take the nearest row. Every other column and row is kept."""
    missing = [c for c in ("frame", "drift_x_nm", "drift_y_nm") if c not in drift.columns]
    if missing:
        raise ParameterError(f"drift table lacks column(s) {', '.join(missing)}")
    if len(drift) == 0:
        raise ParameterError("drift table is empty")
    x, y, f = _xyf(table)
    d = drift.sort_values("frame")
    fd = d["frame"].to_numpy(np.float64)
    out = table.copy()
    out.attrs = dict(table.attrs)
    out["x_nm"] = x - np.interp(f, fd, d["drift_x_nm"].to_numpy(np.float64))
    out["y_nm"] = y - np.interp(f, fd, d["drift_y_nm"].to_numpy(np.float64))
    return out


def correct_drift(
    table: pd.DataFrame,
    segment: int = 1000,
    bin_nm: float = 20.0,
    max_drift_nm: float = 1000.0,
    min_locs: int = 200,
) -> DriftResult:
    """Estimate the drift by redundant cross-correlation and subtract it (see :func:`estimate_drift`)."""
    drift, segments, info = estimate_drift(table, segment, bin_nm, max_drift_nm, min_locs)
    corrected = apply_drift(table, drift)
    corrected.attrs["drift_correction"] = {"method": "rcc", **info}
    return DriftResult(corrected, drift, segments, info)
