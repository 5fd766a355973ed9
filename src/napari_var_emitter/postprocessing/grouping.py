"""Grouping: merge the localizations of one emitter that stays on for several consecutive frames.

Two localizations are linked when they lie within ``radius_nm`` of each other and their frames differ by 1 to
``max_dark + 1`` (so up to ``max_dark`` dark frames are bridged); the connected components of these links are
the groups. Each group becomes one localization: positions averaged with inverse-variance weights (the
predicted ``sigma_x_nm``/``sigma_y_nm``/``sigma_z_nm``, else photons, else equal weights), the merged sigma
``1 / sqrt(sum 1/sigma^2)``, photons summed, ``frame`` the first frame, ``n_frames`` the number of
localizations merged, other numeric columns averaged and other columns taken from the first localization.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..errors import ParameterError

#: default radius as a multiple of the median localization precision, and without precisions (nm)
RADIUS_PER_SIGMA = 5.0
DEFAULT_RADIUS_NM = 50.0


def default_radius(table: pd.DataFrame) -> float:
    """``RADIUS_PER_SIGMA`` times the median predicted precision, or ``DEFAULT_RADIUS_NM`` without one."""
    cols = [c for c in ("sigma_x_nm", "sigma_y_nm") if c in table.columns]
    if cols and len(table):
        s = np.nanmedian(table[cols].to_numpy(np.float64))
        if np.isfinite(s) and s > 0:
            return float(RADIUS_PER_SIGMA * s)
    return DEFAULT_RADIUS_NM


def link(x: np.ndarray, y: np.ndarray, frame: np.ndarray, radius_nm: float, max_dark: int) -> np.ndarray:
    """Group label (0 .. n_groups-1) of every localization."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    # a box query (Chebyshev metric): |dx|, |dy| <= radius and |dframe| <= max_dark + 1; exact test after
    pts = np.column_stack([x / radius_nm, y / radius_nm, frame / (max_dark + 1.5)])
    pairs = cKDTree(pts).query_pairs(1.0, p=np.inf, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    ok = (frame[i] != frame[j]) & ((x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 <= radius_nm**2)
    graph = coo_matrix((np.ones(int(ok.sum()), np.int8), (i[ok], j[ok])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _weights(table: pd.DataFrame, col: str) -> np.ndarray | None:
    if col not in table.columns:
        return None
    s = table[col].to_numpy(np.float64)
    if not np.all(np.isfinite(s) & (s > 0)):
        return None
    return 1.0 / s**2


def group_localizations(
    table: pd.DataFrame, radius_nm: float | None = None, max_dark: int = 1
) -> pd.DataFrame:
    """Merge localizations of the same emitter in consecutive frames into one (see the module doc).

    ``radius_nm`` defaults to :func:`default_radius`. The result is sorted by its first frame and keeps the
    input's columns (plus ``n_frames``) and ``attrs`` (plus ``grouping``)."""
    missing = [c for c in ("frame", "x_nm", "y_nm") if c not in table.columns]
    if missing:
        raise ParameterError(f"localization table lacks column(s) {', '.join(missing)}")
    if radius_nm is None:
        radius_nm = default_radius(table)
    if not np.isfinite(radius_nm) or radius_nm <= 0:
        raise ParameterError(f"grouping radius must be positive, got {radius_nm}")
    if int(max_dark) != max_dark or max_dark < 0:
        raise ParameterError(f"max dark frames must be a whole number >= 0, got {max_dark}")
    t = table.reset_index(drop=True)
    x = t["x_nm"].to_numpy(np.float64)
    y = t["y_nm"].to_numpy(np.float64)
    frame = t["frame"].to_numpy(np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(frame))):
        raise ParameterError("localization table has non-finite frame/x_nm/y_nm values")
    g = link(x, y, frame, float(radius_nm), int(max_dark))
    n = int(g.max()) + 1 if len(g) else 0
    count = np.bincount(g, minlength=n).astype(np.float64)

    def wmean(values: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.bincount(g, w * values, minlength=n) / np.bincount(g, w, minlength=n)

    fallback = np.ones(len(t))  # position weights without sigmas: photons when all are positive
    if "photons" in t.columns:
        ph = t["photons"].to_numpy(np.float64)
        if np.all(np.isfinite(ph) & (ph > 0)):
            fallback = ph
    order = np.lexsort((frame, g))  # by group, then frame: each group's first row is its first frame
    first = order[np.r_[0, np.flatnonzero(np.diff(g[order])) + 1]] if len(t) else order
    out: dict[str, np.ndarray] = {}
    for col in t.columns:
        v = t[col]
        if col == "frame":
            out[col] = v.to_numpy()[first]
        elif col in ("x_nm", "y_nm", "z_nm"):
            axis = col[0]
            w = _weights(t, f"sigma_{axis}_nm")
            out[col] = wmean(v.to_numpy(np.float64), w if w is not None else fallback)
        elif col in ("sigma_x_nm", "sigma_y_nm", "sigma_z_nm"):
            w = _weights(t, col)
            if w is not None:
                out[col] = 1.0 / np.sqrt(np.bincount(g, w, minlength=n))
            else:  # the error of an unweighted mean
                out[col] = np.sqrt(np.bincount(g, v.to_numpy(np.float64) ** 2, minlength=n)) / count
        elif col == "photons":
            out[col] = np.bincount(g, v.to_numpy(np.float64), minlength=n)
        elif col == "sigma_photons":
            out[col] = np.sqrt(np.bincount(g, v.to_numpy(np.float64) ** 2, minlength=n))
        elif col == "n_frames":
            out[col] = np.bincount(g, v.to_numpy(np.float64), minlength=n).astype(np.int64)
        elif v.dtype.kind in "biuf":
            out[col] = np.bincount(g, v.to_numpy(np.float64), minlength=n) / count
            if v.dtype.kind in "biu" and np.all(out[col] == np.round(out[col])):
                out[col] = out[col].astype(v.dtype)
        else:
            out[col] = v.to_numpy()[first]
    if "n_frames" not in out:
        out["n_frames"] = count.astype(np.int64)
    result = pd.DataFrame(out)
    result = result.sort_values("frame", kind="stable").reset_index(drop=True)
    result.attrs = dict(table.attrs)
    result.attrs["grouping"] = {"radius_nm": float(radius_nm), "max_dark": int(max_dark)}
    return result
