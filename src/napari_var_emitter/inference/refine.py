"""PSF-model refinement: a batched maximum-likelihood Gaussian fit of each detection, seeded by the network.

The network decides *whether* and roughly *where* an emitter is; for a Gaussian PSF a fit of the camera
pixels around it reaches the Cramer-Rao bound, which a network regressing sub-pixel offsets does not (it
pixel-locks). Network detections closer than ``merge_px`` to a more probable one (one emitter found in two
adjacent pixels) are dropped first. Then every localization's ``box`` x ``box`` patch of its frame (photons)
is fitted with a pixel-integrated Gaussian ``mu = bg + N * Ex(x, s) * Ey(y, s) + others`` by damped Fisher
scoring (iteratively re-weighted least squares). ``others`` is the current model of the other detections of
the same frame whose PSF reaches into the patch, so all fits of a frame are joint and close neighbours do not
drag each other. After a quarter of the iterations, a detection whose fitted photons are below
``significance`` times their Cramer-Rao standard deviation (nothing this frame's pixels support: typically
the network's guess from a neighbouring frame) is taken out of its neighbours' model for the remaining
iterations; it is still fitted and reported, but no longer pulls photons and position from the emitters
around it.

The weights are the camera's pixel variance (:func:`~napari_var_emitter.camera.pixel_variance`:
photo-electron shot noise, EMCCD excess noise, read noise as added variance), so for an ideal camera this is
the Poisson MLE. The reported uncertainties are the Cramer-Rao bounds at the fitted parameters
(``sqrt(diag(I^-1))``). A fit that fails (non-finite, moved more than ``max_shift_px`` from its seed, sigma
at its bounds) keeps the network's values. Fits that end closer than ``merge_px`` are merged (photons summed).

All fits of a batch run at once in torch (CPU or GPU); cost grows with the number of localizations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..camera import CameraConfig, pixel_variance

_SQRT2 = math.sqrt(2.0)
N_PARAMS = 5  # x, y, photons, bg, sigma


@dataclass(frozen=True)
class RefineOptions:
    """Fit settings. ``sigma_px`` seeds the PSF width (pixels); ``sigma_range_px`` bounds it; a detection
    stays in its neighbours' joint model only with photons / sd(photons) >= ``significance`` (0: always)."""

    box: int = 7
    n_iter: int = 8
    sigma_px: float = 1.15
    sigma_range_px: tuple[float, float] = (0.5, 3.0)
    max_shift_px: float = 1.5
    damping: float = 1e-3
    merge_px: float = 0.6
    significance: float = 3.0


def _profile(k: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pixel integrals of a unit 1-D Gaussian (centre ``c``, width ``s``) over pixels ``k`` (centres at
    integers), with the scaled pixel edges ``a``, ``b``. Shapes: k (1, box), c and s (K, 1) -> (K, box)."""
    a = (k - c + 0.5) / (_SQRT2 * s)
    b = (k - c - 0.5) / (_SQRT2 * s)
    return 0.5 * (torch.erf(a) - torch.erf(b)), a, b


def _edge_integral(k: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`_profile` and its derivatives by ``c`` and ``s``."""
    e, a, b = _profile(k, c, s)
    ga = torch.exp(-a * a) / math.sqrt(math.pi)
    gb = torch.exp(-b * b) / math.sqrt(math.pi)
    de_dc = -(ga - gb) / (_SQRT2 * s)
    de_ds = -(ga * a - gb * b) / s
    return e, de_dc, de_ds


def _model(theta: torch.Tensor, box: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``mu`` (K, box*box) of a Gaussian spot (without ``others``) and its Jacobian, parameter-major
    (K, 5, box*box)."""
    k = torch.arange(box, dtype=theta.dtype, device=theta.device)[None, :]
    x, y, n, bg, s = (theta[:, i : i + 1] for i in range(N_PARAMS))
    ex, dex_dx, dex_ds = _edge_integral(k, x, s)
    ey, dey_dy, dey_ds = _edge_integral(k, y, s)
    kk = theta.shape[0]
    nx = n * ex  # the photons fold into the 1-D factors: products of (K, box) before (K, box, box)
    ny = n * ey
    jac = torch.empty(kk, N_PARAMS, box, box, dtype=theta.dtype, device=theta.device)
    torch.mul(ey[:, :, None], (n * dex_dx)[:, None, :], out=jac[:, 0])
    torch.mul((n * dey_dy)[:, :, None], ex[:, None, :], out=jac[:, 1])
    torch.mul(ey[:, :, None], ex[:, None, :], out=jac[:, 2])
    jac[:, 3] = 1.0
    torch.addcmul(dey_ds[:, :, None] * nx[:, None, :], ny[:, :, None], dex_ds[:, None, :], out=jac[:, 4])
    mu = torch.addcmul(bg[:, :, None], n[:, :, None], jac[:, 2])
    return mu.reshape(kk, -1), jac.reshape(kk, N_PARAMS, -1)


def _fisher(jac: torch.Tensor, mu: torch.Tensor, camera: CameraConfig | None) -> tuple[torch.Tensor, ...]:
    """Fisher information (K, 5, 5) of the Jacobian ``jac`` (K, 5, P) at ``mu`` (K, P), and the weighted
    Jacobian ``jac / var`` (K, 5, P) it was formed with."""
    jw = jac / pixel_variance(mu, camera)[:, None, :]
    return jw @ jac.transpose(1, 2), jw


def refine_gaussian(
    table: pd.DataFrame,
    frames: torch.Tensor | np.ndarray,
    frame_ids: np.ndarray,
    pixel_size_nm: float,
    camera: CameraConfig | None = None,
    options: RefineOptions | None = None,
) -> pd.DataFrame:
    """Refine ``table`` (nm, rows of the frames ``frame_ids``) on ``frames`` (B, H, W) photons, where
    ``frames[b]`` is frame ``frame_ids[b]``. Returns a new table: x/y/photons/bg (and sigma_x/y/photons when
    present) replaced where the fit converged, double detections of one emitter merged into one row; every
    other column kept as it was."""
    opt = options or RefineOptions()
    if len(table) == 0:
        return table
    img = torch.as_tensor(frames).to(torch.float32).cpu()  # float32: float64 fits agree to 1e-3 nm, slower
    _, h, w = img.shape
    box = int(opt.box)
    if h < box or w < box:
        return table
    ids = np.asarray(frame_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    bidx = order[np.searchsorted(ids[order], table["frame"].to_numpy(np.int64))]  # batch index of each row
    keep = _duplicates(table, bidx, pixel_size_nm, opt.merge_px)
    table, bidx = table.iloc[keep].reset_index(drop=True), bidx[keep]
    xp = table["x_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5  # pixel centres at integers
    yp = table["y_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5
    half = box // 2
    c0 = np.clip(np.rint(xp).astype(np.int64) - half, 0, w - box)
    r0 = np.clip(np.rint(yp).astype(np.int64) - half, 0, h - box)
    offs = torch.arange(box)
    rr = torch.from_numpy(r0)[:, None] + offs
    cc = torch.from_numpy(c0)[:, None] + offs
    data = img[torch.from_numpy(bidx)[:, None, None], rr[:, :, None], cc[:, None, :]]  # (K, box, box)

    n_net = np.maximum(table["photons"].to_numpy(np.float64), 1.0)
    pairs = _neighbour_pairs(bidx, xp, yp, box, opt.sigma_px)
    bg_seed = np.median(data.reshape(len(table), -1).numpy(), axis=1)
    if "bg" in table:
        bg_net = table["bg"].to_numpy(np.float64)
        bg_seed = np.where(np.isfinite(bg_net) & (bg_net > 0), bg_net, bg_seed)
    theta0 = torch.from_numpy(
        np.stack([xp - c0, yp - r0, n_net, np.maximum(bg_seed, 0.1), np.full(len(table), opt.sigma_px)], 1)
    ).float()
    corner = torch.from_numpy(np.stack([c0, r0], 1).astype(np.float32))
    theta, fisher = _fit(theta0, data.reshape(len(table), -1), pairs, corner, box, camera, opt)

    ok = _accept(theta, theta0, fisher, opt)
    cov = _covariance(fisher.double())
    var = torch.diagonal(cov, dim1=-2, dim2=-1).clamp(min=0)
    out = table.copy()
    th, sd, okn = theta.double().numpy(), var.sqrt().numpy(), ok.numpy()
    upd = {
        "x_nm": (th[:, 0] + c0 + 0.5) * pixel_size_nm,
        "y_nm": (th[:, 1] + r0 + 0.5) * pixel_size_nm,
        "photons": th[:, 2],
        "bg": th[:, 3],
        "sigma_x_nm": sd[:, 0] * pixel_size_nm,
        "sigma_y_nm": sd[:, 1] * pixel_size_nm,
        "sigma_photons": sd[:, 2],
    }
    for col, values in upd.items():
        if col in out:
            dtype = out[col].dtype
            out[col] = np.where(okn, values, out[col].to_numpy()).astype(dtype)
    return _merge_duplicates(out, bidx, pixel_size_nm, opt.merge_px)


def _covariance(fisher: torch.Tensor) -> torch.Tensor:
    """Inverse of each (positive definite) Fisher matrix by Cholesky; the pseudo-inverse where that fails."""
    chol, info = torch.linalg.cholesky_ex(fisher)
    bad = info != 0
    chol[bad] = torch.eye(fisher.shape[-1], dtype=fisher.dtype)
    cov = torch.cholesky_inverse(chol)
    if bool(bad.any()):
        cov[bad] = torch.linalg.pinv(fisher[bad])
    return cov


def pairs_within(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """(P, 2) index pairs ``i < j`` of points of the same ``group`` closer than ``radius`` (sort and sweep
    along x; vectorised). Not scipy's cKDTree: it crashed (segfault) on such frame-offset point sets in a
    thread where torch flushed denormals."""
    n = len(x)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    order = np.lexsort((x, group))
    g, xs, ys = group[order], x[order], y[order]
    span = np.ptp(xs) + 2 * radius + 1.0
    key = g * span + (xs - xs.min())  # groups far apart along one sorted axis
    end = np.searchsorted(key, key + radius, side="right")
    count = end - np.arange(n) - 1
    i = np.repeat(np.arange(n), count)
    j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count))
    close = (g[i] == g[j]) & (np.hypot(xs[i] - xs[j], ys[i] - ys[j]) < radius)
    a, b = order[i[close]], order[j[close]]
    return np.stack([np.minimum(a, b), np.maximum(a, b)], 1).astype(np.int64)


def _neighbour_pairs(bidx, xp, yp, box: int, sigma_px: float) -> torch.Tensor:
    """(P, 2) ordered pairs (i, j) of detections in the same frame where j's PSF (to 3 sigma, allowing for the
    fit's movement) reaches into i's box."""
    if len(bidx) < 2:
        return torch.zeros((0, 2), dtype=torch.long)
    reach = box / 2 + 3 * sigma_px + 0.5  # per axis
    pairs = pairs_within(bidx, xp, yp, reach * _SQRT2)
    if len(pairs):
        near = (np.abs(xp[pairs[:, 0]] - xp[pairs[:, 1]]) <= reach) & (
            np.abs(yp[pairs[:, 0]] - yp[pairs[:, 1]]) <= reach
        )
        pairs = pairs[near]
    both = np.concatenate([pairs, pairs[:, ::-1]]) if len(pairs) else np.zeros((0, 2), np.int64)
    return torch.from_numpy(both.astype(np.int64))


class _Others:
    """The model of the other detections of the same frame over each detection's box, for the pairs ``(i, j)``
    (j's PSF reaches into i's box). The boxes do not move, so the offset of box i in j's pixel frame is fixed.
    Each detection's 1-D pixel profiles are evaluated once per call over the span of offsets that occur;
    every box lists its neighbours (padded to the most any box has) and gathers their ``box`` pixels of each
    profile, and one batched product of the (neighbour x row) and (neighbour x column) profiles sums the
    neighbours' spots: no (pairs x box x box) intermediate."""

    def __init__(self, pairs: torch.Tensor, corner: torch.Tensor, box: int, n: int) -> None:
        self.n, self.box = n, box
        self.nb: torch.Tensor | None = None  # (n, M) neighbour j of each box (0 in the padding)
        if len(pairs) == 0:
            return
        i, j = pairs[:, 0], pairs[:, 1]
        counts = torch.bincount(i, minlength=n)
        order = torch.argsort(i, stable=True)
        i, j = i[order], j[order]
        slot = torch.arange(len(i)) - (torch.cumsum(counts, 0) - counts)[i]
        m = int(counts.max())
        self.nb = torch.zeros(n, m, dtype=torch.long)
        self.nb[i, slot] = j
        self.valid = torch.zeros(n, m, dtype=torch.bool)
        self.valid[i, slot] = True
        self.use = self.valid.to(corner.dtype)  # (n, M) 1 where neighbour j is modelled in box i (see gate)
        d = (corner[i] - corner[j]).round().long()  # (P, 2): box i's corner in j's pixel frame
        lo = int(d.min())
        self.grid = torch.arange(lo, int(d.max()) + box, dtype=corner.dtype)[None, :]
        span, offs = self.grid.shape[1], torch.arange(box)
        self.cols = torch.zeros(n, m, box, dtype=torch.long)  # flat indices into the (n, span) profiles
        self.rows = torch.zeros(n, m, box, dtype=torch.long)
        self.cols[i, slot] = j[:, None] * span + d[:, 0:1] - lo + offs
        self.rows[i, slot] = j[:, None] * span + d[:, 1:2] - lo + offs

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        """(K, box*box) for parameters ``theta`` (K, 5) in each detection's own box frame."""
        if self.nb is None:
            return torch.zeros(self.n, self.box * self.box, dtype=theta.dtype)
        ex = _profile(self.grid, theta[:, 0:1], theta[:, 4:5])[0]  # (K, span)
        ey = _profile(self.grid, theta[:, 1:2], theta[:, 4:5])[0]
        shape = self.cols.shape  # (K, M, box); flat index_select: ~3x faster than advanced indexing
        gx = ex.reshape(-1).index_select(0, self.cols.reshape(-1)).view(shape)
        gy = ey.reshape(-1).index_select(0, self.rows.reshape(-1)).view(shape)
        photons = theta[:, 2][self.nb] * self.use.to(theta.dtype)  # (K, M)
        return torch.bmm((gy * photons[..., None]).transpose(1, 2), gx).reshape(self.n, -1)

    def gate(self, keep: torch.Tensor) -> None:
        """From now on model only the detections ``keep`` (K,) bool in their neighbours' boxes."""
        if self.nb is not None:
            self.use = (self.valid & keep[self.nb]).to(self.use.dtype)


def _close_pairs(table: pd.DataFrame, bidx: np.ndarray, px: float, radius_px: float):
    """(kept, dropped) row indices of same-frame pairs closer than ``radius_px``; the more probable (then
    brighter) detection of a pair is kept."""
    if len(table) < 2 or radius_px <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    xy = table[["x_nm", "y_nm"]].to_numpy(np.float64) / px
    pairs = pairs_within(bidx, xy[:, 0], xy[:, 1], radius_px)
    rank = table["photons"].to_numpy(np.float64)
    if "prob" in table:
        rank = rank + 1e9 * table["prob"].to_numpy(np.float64)
    first_wins = rank[pairs[:, 0]] >= rank[pairs[:, 1]]
    return np.where(first_wins, pairs[:, 0], pairs[:, 1]), np.where(first_wins, pairs[:, 1], pairs[:, 0])


def _duplicates(table: pd.DataFrame, bidx: np.ndarray, px: float, radius_px: float) -> np.ndarray:
    """Row indices to fit: network detections closer than ``radius_px`` to a more probable one are the
    same emitter found twice (adjacent pixels above the split threshold) and are not fitted."""
    _, drop = _close_pairs(table, bidx, px, radius_px)
    return np.setdiff1d(np.arange(len(table)), drop)


def _merge_duplicates(table: pd.DataFrame, bidx: np.ndarray, px: float, merge_px: float) -> pd.DataFrame:
    """Fits that converged onto one spot (closer than ``merge_px``): keep the more probable detection and
    give it the photons of the other."""
    keep_i, drop_i = _close_pairs(table, bidx, px, merge_px)
    if len(drop_i) == 0:
        return table
    photons = table["photons"].to_numpy(np.float64).copy()
    np.add.at(photons, keep_i, photons[drop_i])
    out = table.copy()
    out["photons"] = photons.astype(table["photons"].dtype)
    return out.drop(index=out.index[np.unique(drop_i)]).reset_index(drop=True)


def _fit(
    theta: torch.Tensor,
    d: torch.Tensor,
    pairs: torch.Tensor,
    corner: torch.Tensor,
    box: int,
    camera: CameraConfig | None,
    opt: RefineOptions,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Damped Fisher scoring with the camera's pixel variance, all detections at once; the other detections
    of a frame enter each box with their current estimates (a joint fit, Jacobi-style). Returns the
    parameters and the Fisher information at them."""
    lo, hi = opt.sigma_range_px
    lam = torch.full((theta.shape[0], 1), float(opt.damping), dtype=theta.dtype)
    eye = torch.eye(N_PARAMS, dtype=theta.dtype)
    others = _Others(pairs, corner, box, theta.shape[0])
    n_iter, gate_at = int(opt.n_iter), int(opt.n_iter) // 4  # gate after a quarter of the iterations
    for it in range(n_iter):
        mu, jac = _model(theta, box)
        if it == gate_at and opt.significance > 0 and len(pairs):
            others.gate(_significant(theta, mu + others(theta), jac, camera, opt.significance))
        mu = (mu + others(theta)).clamp(min=1e-6)
        fisher, jw = _fisher(jac, mu, camera)
        grad = (jw @ (d - mu)[..., None])[..., 0]
        diag = torch.diagonal(fisher, dim1=-2, dim2=-1)
        step = torch.linalg.solve(
            fisher + lam[..., None] * eye * diag[:, None, :].clamp(min=1e-9), grad[..., None]
        )[..., 0]
        step = torch.nan_to_num(step)
        step[:, :2] = step[:, :2].clamp(-1.0, 1.0)
        new = theta + step
        new[:, 2] = torch.maximum(new[:, 2], theta[:, 2] * 0.2)
        new[:, 3] = torch.maximum(new[:, 3], theta[:, 3] * 0.2).clamp(min=1e-3)
        new[:, 4] = new[:, 4].clamp(lo, hi)
        theta = new
    mu, jac = _model(theta, box)
    return theta, _fisher(jac, (mu + others(theta)).clamp(min=1e-6), camera)[0]


def _significant(
    theta: torch.Tensor, mu: torch.Tensor, jac: torch.Tensor, camera: CameraConfig | None, z: float
) -> torch.Tensor:
    """(K,) True where the fitted photons are at least ``z`` Cramer-Rao standard deviations above zero."""
    fisher = _fisher(jac, mu.clamp(min=1e-6), camera)[0]
    var = torch.diagonal(_covariance(fisher.double()), dim1=-2, dim2=-1)[:, 2]
    sd = var.clamp(min=0).sqrt().to(theta.dtype)
    return torch.nan_to_num(theta[:, 2] - z * sd, nan=-1.0) >= 0


def _accept(
    theta: torch.Tensor, theta0: torch.Tensor, fisher: torch.Tensor, opt: RefineOptions
) -> torch.Tensor:
    lo, hi = opt.sigma_range_px
    finite = torch.isfinite(theta).all(1) & torch.isfinite(fisher).flatten(1).all(1)
    shift = (theta[:, :2] - theta0[:, :2]).abs().max(1).values
    return (
        finite
        & (shift <= opt.max_shift_px)
        & (theta[:, 2] > 0)
        & (theta[:, 4] > lo * 1.001)
        & (theta[:, 4] < hi * 0.999)
    )
