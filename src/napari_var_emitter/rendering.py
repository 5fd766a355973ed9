"""Super-resolution rendering of a localization table (histogram or Gaussian), vectorised.

Image pixel ``(0, 0)`` covers ``[0, pixel_size_nm)`` in x and y, so in napari the image overlays the
localizations with ``scale=(p, p)`` and ``translate=(p / 2, p / 2)`` (:func:`~.geometry.grid_geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from .errors import ParameterError
from .geometry import grid_geometry

METHODS = ("histogram", "gaussian")
#: relative width of the sigma bins used for per-localization Gaussian rendering
_SIGMA_BIN = 0.1
#: guard against absurd images (pixels)
MAX_PIXELS = 400_000_000


@dataclass(frozen=True)
class RenderedImage:
    image: np.ndarray  #: float32 (H, W); localizations per pixel (histogram) or their density (gaussian)
    pixel_size_nm: float
    n_rendered: int = 0  #: localizations drawn (in the frame range, with finite positions)

    @property
    def napari_scale(self) -> tuple[float, ...]:
        return grid_geometry(self.pixel_size_nm, leading_axes=0)[0]

    @property
    def napari_translate(self) -> tuple[float, ...]:
        return grid_geometry(self.pixel_size_nm, leading_axes=0)[1]


def _shape(table: pd.DataFrame, pixel_size_nm: float, shape_nm, margin_nm: float = 0.0) -> tuple[int, int]:
    if shape_nm is None:
        attrs = table.attrs
        if "frame_shape" in attrs and "pixel_size_nm" in attrs:
            h, w = attrs["frame_shape"][-2:]
            shape_nm = (h * attrs["pixel_size_nm"], w * attrs["pixel_size_nm"])
        elif len(table):
            pad = pixel_size_nm + margin_nm
            shape_nm = (float(table["y_nm"].max()) + pad, float(table["x_nm"].max()) + pad)
        else:
            shape_nm = (pixel_size_nm, pixel_size_nm)
    h, w = (max(1, int(np.ceil(s / pixel_size_nm))) for s in shape_nm)
    if h * w > MAX_PIXELS:
        raise ParameterError(f"rendered image of {h} x {w} pixels is too large; choose a larger pixel size")
    return h, w


def _histogram(x: np.ndarray, y: np.ndarray, shape: tuple[int, int], p: float) -> np.ndarray:
    h, w = shape
    col = np.floor(x / p).astype(np.int64)
    row = np.floor(y / p).astype(np.int64)
    ok = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    counts = np.bincount(row[ok] * w + col[ok], minlength=h * w)
    return counts.reshape(h, w).astype(np.float32)


def render(
    table: pd.DataFrame,
    pixel_size_nm: float = 10.0,
    method: str = "histogram",
    shape_nm: tuple[float, float] | None = None,
    frames: tuple[int, int] | range | slice | None = None,
    sigma_nm: float | None = None,
) -> RenderedImage:
    """Render localizations into an image of ``pixel_size_nm`` pixels.

    ``method="histogram"`` counts localizations per pixel. ``"gaussian"`` draws each localization as a
    normalised Gaussian: of width ``sigma_nm`` when given, else of its predicted ``sigma_x_nm``/``sigma_y_nm``
    (localizations are grouped in 10 % sigma bins, each bin rendered by one histogram and one blur), else
    of the table's median ``sigma_x_nm``, else 1.5 render pixels. ``shape_nm`` (height, width) defaults to
    the camera frame in ``table.attrs``, else the extent of the data (plus 4 sigma for Gaussians).
    ``frames`` limits to ``[start, stop)``.
    """
    if pixel_size_nm is None or not 0 < pixel_size_nm < np.inf:
        raise ParameterError(f"pixel size must be a finite number > 0, got {pixel_size_nm}")
    if sigma_nm is not None and not 0 < sigma_nm < np.inf:
        raise ParameterError(f"sigma must be a finite number > 0 nm, got {sigma_nm}")
    if method not in METHODS:
        raise ParameterError(f"unknown rendering method {method!r}; choose one of {', '.join(METHODS)}")
    missing = [c for c in ("x_nm", "y_nm") if c not in table.columns]
    if missing:
        raise ParameterError(f"localization table lacks column(s) {', '.join(missing)}")
    margin = 0.0
    if method == "gaussian":  # room for the Gaussians of the outermost localizations
        sig = [table[c].max() for c in ("sigma_x_nm", "sigma_y_nm") if c in table.columns and len(table)]
        margin = 4 * float(sigma_nm or np.nanmax([*sig, 1.5 * pixel_size_nm]))
    shape = _shape(table, pixel_size_nm, shape_nm, margin)
    if frames is not None:
        if isinstance(frames, slice | range):
            start, stop = frames.start or 0, frames.stop
        else:
            start, stop = frames
        if stop is not None and stop <= start:
            raise ParameterError(f"frame range [{start}, {stop}) is empty (STOP must be > START)")
        f = table["frame"].to_numpy()
        keep = f >= start
        if stop is not None:
            keep &= f < stop
        table = table[keep]
    x, y = table["x_nm"].to_numpy(float), table["y_nm"].to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if method == "histogram":
        return RenderedImage(_histogram(x, y, shape, pixel_size_nm), float(pixel_size_nm), len(x))
    has_sigma = "sigma_x_nm" in table.columns and "sigma_y_nm" in table.columns
    if sigma_nm is not None or not has_sigma or not len(x):
        s = sigma_nm
        if s is None:
            s = float(np.nanmedian(table["sigma_x_nm"])) if has_sigma and len(x) else 1.5 * pixel_size_nm
        img = gaussian_filter(_histogram(x, y, shape, pixel_size_nm), s / pixel_size_nm, mode="constant")
        return RenderedImage(img.astype(np.float32), float(pixel_size_nm), len(x))
    sx = table["sigma_x_nm"].to_numpy(float)[ok] / pixel_size_nm
    sy = table["sigma_y_nm"].to_numpy(float)[ok] / pixel_size_nm
    floor = 0.3  # below a third of a render pixel a Gaussian is a delta for all practical purposes
    bx = np.round(np.log(np.maximum(np.nan_to_num(sx, nan=floor), floor)) / np.log1p(_SIGMA_BIN)).astype(int)
    by = np.round(np.log(np.maximum(np.nan_to_num(sy, nan=floor), floor)) / np.log1p(_SIGMA_BIN)).astype(int)
    keys, inverse = np.unique(np.stack([bx, by], 1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    img = np.zeros(shape, np.float64)
    for k, (kx, ky) in enumerate(keys):  # one blur per sigma bin, not per localization
        sel = inverse == k
        sig = (np.log1p(_SIGMA_BIN) * np.array([ky, kx])).clip(max=np.log(1e4))
        img += gaussian_filter(_histogram(x[sel], y[sel], shape, pixel_size_nm), np.exp(sig), mode="constant")
    return RenderedImage(img.astype(np.float32), float(pixel_size_nm), len(x))
