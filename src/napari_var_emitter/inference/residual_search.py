"""Emitters no detection explains: a search of the fit's residual in crowded regions (as DAOSTORM does).

At high density the network misses emitters next to brighter ones, and a one-emitter fit next to a missed
emitter is pulled onto the blend. After the joint fit of :mod:`.refine`, every localization of a frame is
drawn into a model image (its fitted photons and width); what the model leaves over the local background is
scanned with the PSF as a matched filter, whose value at each pixel is the log-likelihood one more emitter
centred there would gain (Gaussian approximation with the camera's pixel variance). Local maxima above
``_CANDIDATE_GAIN``, further than ``_CLEAR_PX`` from every localization and where the localizations are at
least ``residual_density`` per µm² (:func:`.density_map`: in sparse regions the network misses almost nothing
and residual peaks are mostly a bright spot's imperfect model), are fitted with one pixel-integrated Gaussian,
everything else held at its fit. A candidate becomes a localization when its photons are at least
``split_significance`` Cramer-Rao standard deviations, its width inside the fit's bounds, and it ends inside
its box and further than the merge radius (:class:`.MergeRadius`) from every other localization. The new
localizations then take part in the one-or-two test (:mod:`.two_emitters`) like every fitted spot, so a
candidate that is only part of its neighbour's spot is merged back there. Other columns (``prob``, ``z_nm``,
...) are those of the nearest localization of the frame: the crowded spot it was found in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..camera import CameraConfig, pixel_variance
from .gaussian_psf import crlb_sd, draw_spots, gather_boxes, profile, spot_columns
from .local_density import MergeRadius, box_sums, density_map
from .neighbours import close_pairs, nearest_in_group
from .two_emitters import fit_model

if TYPE_CHECKING:
    from .refine import RefineOptions

#: log-likelihood gain of the matched filter at which a residual peak is fitted
_CANDIDATE_GAIN = 10.0
#: no candidate closer than this (pixels) to a localization: that light is the localization's own
_CLEAR_PX = 1.0
#: side (pixels) of the box over which the residual's local mean is taken as the background
_BACKGROUND_WINDOW = 15
#: iterations of a candidate's fit
_SEARCH_ITER = 6
#: radius (pixels) within which a new point's nearest localization is looked for first (beyond: all)
_NEAREST_PX = 4.0


def add_missed(
    table: pd.DataFrame,
    img: torch.Tensor,
    bidx: np.ndarray,
    frame_ids: np.ndarray,
    width_px: np.ndarray,
    pixel_size_nm: float,
    camera: CameraConfig | None,
    opt: RefineOptions,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``table`` (fitted localizations, nm; ``bidx`` the row of ``img`` (B, H, W photons) of each, and
    ``frame_ids[b]`` the frame number of ``img[b]``; ``width_px`` each one's PSF width) with the emitters
    found in the residual appended (see the module docstring), and the batch rows and PSF widths of the new
    rows. Nothing is searched when ``opt.residual_density`` is None."""
    none = (table, np.zeros(0, np.int64), np.zeros(0))
    if opt.residual_density is None or len(table) == 0:
        return none
    _, h, w = img.shape
    box, half, px = int(opt.box), int(opt.box) // 2, float(pixel_size_nm)
    x = table["x_nm"].to_numpy(np.float64) / px - 0.5
    y = table["y_nm"].to_numpy(np.float64) / px - 0.5
    dens = density_map(bidx, x, y, img.shape)
    dense = dens >= float(opt.residual_density) * px * px / 1e6 * (1 - 1e-6)
    frames = torch.nonzero(dense.flatten(1).any(1))[:, 0].numpy()  # only frames with a dense region
    if len(frames) == 0:
        return none
    inside = np.flatnonzero(np.isin(bidx, frames))
    rows = np.searchsorted(frames, bidx[inside])  # row of each localization in the frames searched
    n = np.maximum(table["photons"].to_numpy(np.float64)[inside], 1.0)
    s = np.asarray(width_px, np.float64)[inside]
    sub = img[torch.from_numpy(frames)]
    padded, pad = draw_spots(sub.shape, rows, x[inside], y[inside], n, s)
    model = padded[:, pad : pad + h, pad : pad + w]
    peaks = _candidates(sub - model, model, rows, x[inside], y[inside], dense[frames], camera, opt)
    if len(peaks[0]) == 0:
        return none
    r_sub, row, col, nhat, bg = peaks
    b = frames[r_sub]
    c0, r0 = np.clip(col - half, 0, w - box), np.clip(row - half, 0, h - box)
    d = gather_boxes(img, b, r0, c0, box).reshape(len(b), -1)
    rest = gather_boxes(padded, r_sub, r0 + pad, c0 + pad, box).reshape(len(b), -1)
    seed = [col - c0, row - r0, np.maximum(nhat, 10.0), np.maximum(bg, 0.1), np.full(len(b), opt.sigma_px)]
    theta0 = torch.from_numpy(np.stack(seed, 1)).float()
    theta, fisher, _ = fit_model(theta0, d, rest, box, camera, opt, _SEARCH_ITER)
    sd = crlb_sd(fisher)
    lo, hi = opt.sigma_range_px
    ok = torch.isfinite(theta).all(1) & torch.isfinite(fisher).flatten(1).all(1)
    ok &= theta[:, 2].double() >= opt.split_significance * sd[:, 2]
    ok &= (theta[:, 4] > lo * 1.001) & (theta[:, 4] < hi * 0.999)
    ok &= ((theta[:, :2] > -0.5) & (theta[:, :2] < box - 0.5)).all(1)
    keep = torch.nonzero(ok)[:, 0].numpy()
    th, sdn, b, c0, r0 = theta[keep].double().numpy(), sd[keep].numpy(), b[keep], c0[keep], r0[keep]
    nx, ny = th[:, 0] + c0, th[:, 1] + r0
    merge = MergeRadius(bidx, x, y, img.shape, px, opt, dens)
    radius = np.concatenate([merge.at(b, nx, ny), merge.own()])
    alone = _apart(b, nx, ny, bidx, x, y, radius, th[:, 2])
    th, sdn, b, c0, r0, nx, ny = th[alone], sdn[alone], b[alone], c0[alone], r0[alone], nx[alone], ny[alone]
    if len(b) == 0:
        return none
    new = table.iloc[_nearest(b, nx, ny, bidx, x, y)].reset_index(drop=True)
    values = {"frame": np.asarray(frame_ids, np.int64)[b], **spot_columns(th, sdn, c0, r0, px)}
    for col_name, v in values.items():
        if col_name in new:
            new[col_name] = v.astype(table[col_name].dtype)
    return pd.concat([table, new], ignore_index=True), b, th[:, 4]


def _correlate(a: torch.Tensor, g1: torch.Tensor) -> torch.Tensor:
    """(B, H, W) ``a`` correlated with the symmetric kernel ``g1`` (2r + 1,) along both axes, zero padding, as
    two products with banded matrices."""
    r = len(g1) // 2

    def band(n: int) -> torch.Tensor:
        k = torch.arange(n)
        off = k[None, :] - k[:, None]
        return torch.where(off.abs() <= r, g1[(off + r).clamp(0, 2 * r)], torch.zeros(()))

    return band(a.shape[1]) @ a @ band(a.shape[2]).T


def _local_maxima(a: torch.Tensor) -> torch.Tensor:
    """(B, H, W) True where ``a`` (>= 0) is the largest of its 3 x 3 neighbourhood."""
    p = F.pad(a, (1, 1, 1, 1), value=-1.0)
    h, w = a.shape[1:]
    rows = torch.maximum(torch.maximum(p[:, :, :w], p[:, :, 1 : w + 1]), p[:, :, 2:])
    best = torch.maximum(torch.maximum(rows[:, :h], rows[:, 1 : h + 1]), rows[:, 2:])
    return a >= best


def _candidates(resid, model, bidx, x, y, dense, camera, opt):
    """Residual peaks worth a fit in the ``dense`` (B, H, W) regions: (batch row, pixel row, pixel column,
    matched-filter photons, local background), each (C,)."""
    k = _BACKGROUND_WINDOW
    bg = box_sums(F.pad(resid[:, None], (k // 2,) * 4, mode="replicate")[:, 0], k) / (k * k)
    var = pixel_variance((bg + model).clamp(min=1e-3), camera)
    r = int(np.ceil(3 * opt.sigma_px))
    g1 = profile(torch.arange(-r, r + 1.0)[None, :], torch.zeros(1, 1), torch.full((1, 1), opt.sigma_px))[0]
    g1 = g1[0]
    num = _correlate((resid - bg) / var, g1)
    den = _correlate(1.0 / var, g1 * g1)
    gain = torch.where((num > 0) & dense, num * num / (2 * den), torch.zeros_like(num))
    gain[_near_localizations(bidx, x, y, resid.shape)] = 0.0
    peak = _local_maxima(gain) & (gain > _CANDIDATE_GAIN)
    b, row, col = torch.nonzero(peak, as_tuple=True)
    nhat = (num / den)[b, row, col]
    return b.numpy(), row.numpy(), col.numpy(), nhat.double().numpy(), bg[b, row, col].double().numpy()


def _near_localizations(bidx, x, y, shape) -> torch.Tensor:
    """(B, H, W) True at the pixels whose centres lie within ``_CLEAR_PX`` of a localization."""
    nb, h, w = shape
    off = torch.arange(-int(np.ceil(_CLEAR_PX)), int(np.ceil(_CLEAR_PX)) + 1)
    xt, yt = torch.from_numpy(x)[:, None, None], torch.from_numpy(y)[:, None, None]
    cols = torch.round(xt).long() + off[None, None, :]
    rows = torch.round(yt).long() + off[None, :, None]
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    near = (torch.hypot(cols - xt, rows - yt) < _CLEAR_PX) & inside
    b = torch.from_numpy(np.asarray(bidx, np.int64))[:, None, None].expand_as(near)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[b[near], rows.expand_as(near)[near], cols.expand_as(near)[near]] = True
    return mask


def _apart(b, nx, ny, bidx, x, y, radius: np.ndarray, photons: np.ndarray) -> np.ndarray:
    """(C,) True for the new points further than the merge radius from every localization and from every
    brighter new point of the same frame; ``radius`` holds the radii of the new points, then of the
    localizations (a pair's is the smaller of its two)."""
    m = len(b)
    pairs = close_pairs(np.concatenate([b, bidx]), np.concatenate([nx, x]), np.concatenate([ny, y]), radius)
    ok = np.ones(m, bool)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]  # i < j: a new point first
        ok[i[(i < m) & (j >= m)]] = False
        both = (j < m) & (i < m)
        dimmer = np.where(photons[i[both]] >= photons[j[both]], j[both], i[both])
        ok[dimmer] = False
    return ok


def _nearest(b, nx, ny, bidx, x, y) -> np.ndarray:
    """(C,) index of the localization nearest to each new point in its frame (the point itself is never
    alone: it was found where localizations are dense)."""
    return nearest_in_group(b, nx, ny, bidx, x, y, _NEAREST_PX)
