"""PSF-model refinement: a batched maximum-likelihood Gaussian fit of each detection, seeded by the network.

The network decides *whether* and roughly *where* an emitter is; for a Gaussian PSF a fit of the camera pixels
around it reaches the Cramer-Rao bound, which a network regressing sub-pixel offsets does not (it
pixel-locks). Network detections closer than the merge radius to a more probable one (one emitter found in two
adjacent pixels) are dropped first. The merge radius is ``merge_px``, and ``merge_dense_px`` where the
localizations are at least ``merge_density`` per µm² (:class:`.MergeRadius`): in a crowd two emitters that
close are common, and merging them loses one. Then every localization's ``box`` x ``box`` patch of its frame
(photons) is fitted with a pixel-integrated Gaussian ``mu = bg + N * Ex(x, s) * Ey(y, s) + others`` by damped
Fisher scoring (iteratively re-weighted least squares). ``others`` is the current model of the other
detections of the same frame whose PSF reaches into the patch, so all fits of a frame are joint and close
neighbours do not drag each other. After a quarter of the iterations, a detection whose fitted photons are
below ``significance`` times their Cramer-Rao standard deviation (nothing this frame's pixels support:
typically the network's guess from a neighbouring frame) is taken out of its neighbours' model for the
remaining iterations; it is still fitted and reported, but no longer pulls photons and position from the
emitters around it.

The weights are the camera's pixel variance (:func:`~napari_var_emitter.camera.pixel_variance`:
photo-electron shot noise, EMCCD excess noise, read noise as added variance), so for an ideal camera this is
the Poisson MLE. The reported uncertainties are the Cramer-Rao bounds at the fitted parameters
(``sqrt(diag(I^-1))``). A fit that fails (non-finite, moved more than ``max_shift_px`` from its seed, sigma
at its bounds) keeps the network's values; so does one that moved further than the network's uncertainty
allows (``trust_sd`` = 4 of its sds, at least ``trust_shift_px`` = 0.5 px, per axis) when significant
detections reach into its box: at high density such a fit is pulled by photons its model lacks (an emitter
the network did not report), and the network's position is the better one (its uncertainties are raised to
at least the fit's bound). The fit of a detection with no significant neighbour in reach is always trusted.
Such a spot still counts as fitted for the test below. Fits that end closer than the merge radius are
merged (photons summed).
Where localizations are dense, the residual of the fit is then searched for emitters no detection explains
(:mod:`.residual_search`; ``residual_density``, off with None).
Last, every fitted spot and every pair of fits closer than ``split_max_px`` is weighed as one emitter against
two (:mod:`.two_emitters`; off with ``split_llr = 0``).

All fits of a batch run on the CPU, one compiled loop over their boxes per iteration
(:mod:`.fisher_scoring`, which releases the GIL); cost grows with the number of localizations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..camera import CameraConfig
from .fisher_scoring import StepBounds, fit_spots, information, neighbour_spots, scoring_steps
from .frame_support import FrameSupport
from .gaussian_psf import crlb_sd, gather_boxes, spot_columns
from .local_density import MergeRadius
from .neighbours import close_pairs, frame_rows, pairs_within
from .residual_search import add_missed
from .two_emitters import GroupTests, decide, weigh_groups

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class RefineOptions:
    """Fit settings. ``sigma_px`` seeds the PSF width (pixels); ``sigma_range_px`` bounds it; a detection
    stays in its neighbours' joint model only with photons / sd(photons) >= ``significance`` (0: always).
    A fit that moved more than ``max_shift_px`` from the network's position failed; one that moved more than
    ``trust_sd`` times the network's own sd and more than ``trust_shift_px`` (per axis) is not trusted when
    significant detections reach into its box: the network's values stay. The one-or-two-emitters test
    (:mod:`.two_emitters`): a spot splits when two emitters gain more than ``split_llr`` in log-likelihood
    (0: no test), each at least ``split_significance`` sd bright and at most ``split_max_px`` apart; a pair
    of fits closer than ``split_max_px`` becomes one when two gain at most ``merge_llr``. Where the model's
    count head sees the two (probability at least ``count_p`` of 2+ in their pixel, or an expected count of
    at least 1.5 over their two pixels), a spot splits above ``count_llr`` instead. A spot whose two fitted
    emitters are found again (within ``split_frames_px``; 0: off) by the test of the frame before or after
    adds that frame's gain, its bar raised by ``split_frames_llr`` per frame added. Where at least
    ``residual_density`` localizations per µm² are near (None: nowhere), the fit's residual is searched for
    emitters no detection explains (:mod:`.residual_search`); it runs with the one-or-two test only. Two
    localizations closer than ``merge_px`` are one emitter, closer than ``merge_dense_px`` where at least
    ``merge_density`` localizations per µm² are near (None: ``merge_px`` everywhere)."""

    box: int = 7
    n_iter: int = 8
    sigma_px: float = 1.15
    sigma_range_px: tuple[float, float] = (0.5, 3.0)
    max_shift_px: float = 1.5
    trust_shift_px: float = 0.5
    trust_sd: float = 4.0
    damping: float = 1e-3
    merge_px: float = 0.6
    significance: float = 3.0
    split_llr: float = 8.0
    merge_llr: float = 4.0
    split_significance: float = 6.0
    split_max_px: float = 2.0
    count_llr: float = 6.0
    count_p: float = 0.3
    split_frames_px: float = 0.5
    split_frames_llr: float = 2.0
    residual_density: float | None = 3.5
    merge_dense_px: float = 0.3
    merge_density: float | None = 8.0


def refine_gaussian(
    table: pd.DataFrame,
    frames: torch.Tensor | np.ndarray,
    frame_ids: np.ndarray,
    pixel_size_nm: float,
    camera: CameraConfig | None = None,
    options: RefineOptions | None = None,
    count: torch.Tensor | None = None,
    support: FrameSupport | None = None,
) -> pd.DataFrame:
    """Refine ``table`` (nm, rows of the frames ``frame_ids``) on ``frames`` (B, H, W) photons, where
    ``frames[b]`` is frame ``frame_ids[b]``. Returns a new table: x/y/photons/bg (and sigma_x/y/photons when
    present) replaced where the fit converged, double detections of one emitter merged into one row; every
    other column kept as it was. ``count`` (B, 3, H, W): a count head's probabilities of 0, 1 and 2 or more
    emitters per camera pixel, for the test of one emitter against two; ``support``: what the previous batch
    of consecutive frames lends that test (:class:`.frame_support.FrameSupport`; None: this batch only).
    The stages: :func:`fit_detections` (per frame), then the test of every fitted spot and close pair as one
    emitter against two (:mod:`.two_emitters`): :func:`weigh_spots` (per frame) and :func:`decide_spots`
    (which leans on the frames around)."""
    opt = options or RefineOptions()
    spots = fit_detections(table, frames, frame_ids, pixel_size_nm, camera, opt)
    tests = weigh_spots(spots, pixel_size_nm, camera, opt, count)
    return decide_spots(spots, tests, pixel_size_nm, camera, opt, support)


@dataclass
class FittedSpots:
    """A batch after the PSF fit and the residual search, before the test of one emitter against two: the
    fitted ``table`` (nm), the ``image`` (B, H, W) photons of the movie frames ``frame_ids``, and per row its
    frame in the batch (``bidx``), its PSF width in pixels (``width``), whether its fit converged
    (``fitted``) and whether it counts in its neighbours' models (``significant``); ``added``: rows found in
    the residual were appended (the table is sorted by frame again after the test)."""

    table: pd.DataFrame
    image: torch.Tensor
    frame_ids: np.ndarray
    bidx: np.ndarray
    width: np.ndarray
    fitted: np.ndarray
    significant: np.ndarray
    added: bool = False

    def then(self, later: FittedSpots) -> FittedSpots:
        """One batch of these frames followed by ``later``'s."""
        tables = [t for t in (self.table, later.table) if len(t)] or [later.table]
        return FittedSpots(
            pd.concat(tables, ignore_index=True),
            torch.cat([self.image, later.image]),
            np.concatenate([self.frame_ids, later.frame_ids]),
            np.concatenate([self.bidx, later.bidx + len(self.frame_ids)]),
            np.concatenate([self.width, later.width]),
            np.concatenate([self.fitted, later.fitted]),
            np.concatenate([self.significant, later.significant]),
            self.added or later.added,
        )


def fit_detections(
    table: pd.DataFrame,
    frames: torch.Tensor | np.ndarray,
    frame_ids: np.ndarray,
    pixel_size_nm: float,
    camera: CameraConfig | None = None,
    options: RefineOptions | None = None,
) -> FittedSpots:
    """The first stage of :func:`refine_gaussian` (same arguments): the joint PSF fit of the detections,
    double detections merged, and (with the test of one emitter against two on) the residual search. Each
    frame's spots depend on that frame only."""
    opt = options or RefineOptions()
    img = torch.as_tensor(frames).to(torch.float32).cpu()  # float32: float64 fits agree to 1e-3 nm, slower
    ids = np.asarray(frame_ids)
    _, h, w = img.shape
    n = len(table)
    bidx = frame_rows(table["frame"].to_numpy(), ids) if n else np.zeros(0, np.int64)  # batch index per row
    if n == 0 or h < opt.box or w < opt.box:  # nothing to fit
        none = np.zeros(n, bool)
        return FittedSpots(table, img, ids, bidx, np.full(n, float(opt.sigma_px)), none, none)
    out, bidx, width, fitted, significant = _fit_stage(table, img, bidx, pixel_size_nm, camera, opt)
    if opt.split_llr <= 0:
        return FittedSpots(out, img, ids, bidx, width, fitted, significant)
    out, new_rows, new_width = add_missed(out, img, bidx, ids, width, pixel_size_nm, camera, opt)
    if len(new_rows):
        found = np.ones(len(new_rows), bool)
        bidx, width = np.concatenate([bidx, new_rows]), np.concatenate([width, new_width])
        fitted, significant = np.concatenate([fitted, found]), np.concatenate([significant, found])
    return FittedSpots(out, img, ids, bidx, width, fitted, significant, added=len(new_rows) > 0)


def weigh_spots(
    spots: FittedSpots,
    pixel_size_nm: float,
    camera: CameraConfig | None,
    opt: RefineOptions,
    count: torch.Tensor | None = None,
) -> GroupTests | None:
    """The one- and two-emitter fits of every spot and close pair of ``spots`` (None with the test off);
    ``count`` (B, 3, H, W): a count head's probabilities per camera pixel."""
    if opt.split_llr <= 0:
        return None
    s = spots
    return weigh_groups(
        s.table, s.image, s.bidx, s.width, s.fitted, s.significant, pixel_size_nm, camera, opt, count
    )


def decide_spots(
    spots: FittedSpots,
    tests: GroupTests | None,
    pixel_size_nm: float,
    camera: CameraConfig | None,
    opt: RefineOptions,
    support: FrameSupport | None = None,
) -> pd.DataFrame:
    """The table of ``spots`` after the decisions on their ``tests`` (:func:`.two_emitters.decide`);
    ``support`` lends the previous batch's tests and takes this one's."""
    if tests is None:
        return spots.table
    shape = tuple(spots.image.shape)
    out = decide(spots.table, shape, spots.bidx, tests, pixel_size_nm, camera, opt, support)
    return out.sort_values("frame", kind="stable", ignore_index=True) if spots.added else out


def split_last_frame(spots: FittedSpots, tests: GroupTests) -> tuple[FittedSpots, GroupTests]:
    """The spots and tests of the batch's last frame, as a batch of their own (copies)."""
    b = len(spots.frame_ids) - 1
    rows = spots.bidx == b
    last = FittedSpots(
        spots.table[rows].reset_index(drop=True),
        spots.image[b:].clone(),
        spots.frame_ids[b:].copy(),
        np.zeros(int(rows.sum()), np.int64),
        spots.width[rows],
        spots.fitted[rows],
        spots.significant[rows],
    )
    return last, tests.select(rows[tests.members[:, 0]], np.cumsum(rows) - 1)


def _fit_stage(table, img, bidx, pixel_size_nm: float, camera, opt: RefineOptions):
    """The joint one-emitter fit of ``table`` (rows in the frames ``bidx`` of ``img``): the fitted table
    (double detections merged), and for each of its rows the frame, the PSF width to model it with, whether
    its fit converged and whether it is significant (see the module docstring)."""
    _, h, w = img.shape
    box = int(opt.box)
    radius = _merge_radius(table, bidx, img.shape, pixel_size_nm, opt)
    keep = _duplicates(table, bidx, pixel_size_nm, radius)
    table, bidx = table.iloc[keep].reset_index(drop=True), bidx[keep]
    xp = table["x_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5  # pixel centres at integers
    yp = table["y_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5
    half = box // 2
    c0 = np.clip(np.rint(xp).astype(np.int64) - half, 0, w - box)
    r0 = np.clip(np.rint(yp).astype(np.int64) - half, 0, h - box)
    data = gather_boxes(img, bidx, r0, c0, box)  # (K, box, box)

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
    sd = crlb_sd(fisher)
    shown = ok & (theta[:, 2].double() >= opt.significance * sd[:, 2])  # what the rest of a box is made of
    crowded = torch.zeros(len(table), dtype=torch.bool)  # a significant detection reaches into the box
    crowded[pairs[shown[pairs[:, 1]], 0]] = True
    trusted = ok & ((_moved(theta, theta0) <= _trust_limit(table, pixel_size_nm, opt)).all(1) | ~crowded)
    out = _with_fit(table, theta, sd, trusted, ok & ~trusted, c0, r0, pixel_size_nm)
    radius = _merge_radius(out, bidx, img.shape, pixel_size_nm, opt)
    keep_i, drop_i = _close_pairs(out, bidx, pixel_size_nm, radius)
    out = _merge(out, keep_i, drop_i)
    alive = np.setdiff1d(np.arange(len(table)), drop_i)
    width = np.where(trusted.numpy(), theta[:, 4].double().numpy(), opt.sigma_px)[alive]
    return out, bidx[alive], width, ok.numpy()[alive], shown.numpy()[alive]


def _moved(theta: torch.Tensor, theta0: torch.Tensor) -> torch.Tensor:
    """(K, 2) distance per axis (px) between the fitted and the seed positions."""
    return (theta[:, :2] - theta0[:, :2]).abs()


def _trust_limit(table: pd.DataFrame, pixel_size_nm: float, opt: RefineOptions) -> torch.Tensor:
    """(K, 2) how far (px, per axis) a fit may move from the network's position and still be trusted:
    ``trust_sd`` times the network's own uncertainty, at least ``trust_shift_px``; without network
    uncertainties (a model without sigma outputs) any distance."""
    if "sigma_x_nm" not in table or "sigma_y_nm" not in table:  # no uncertainty to judge by: trust the fit
        return torch.full((len(table), 2), float("inf"))
    sd = table[["sigma_x_nm", "sigma_y_nm"]].to_numpy(np.float64) / pixel_size_nm
    limit = np.maximum(opt.trust_sd * np.nan_to_num(sd, nan=np.inf), opt.trust_shift_px)
    return torch.from_numpy(limit).float()


def _with_fit(table, theta, sd, ok, floor, c0, r0, pixel_size_nm: float) -> pd.DataFrame:
    """``table`` with the fitted values (and Cramer-Rao ``sd``) where the fit is used (``ok``); where it is
    not trusted (``floor``) the network's values stay, with sigmas raised to at least the fit's bound."""
    out = table.copy()
    th, sdn, okn = theta.double().numpy(), sd.numpy(), ok.numpy()
    for col, k in (("sigma_x_nm", 0), ("sigma_y_nm", 1)):
        if col in out:
            raised = np.maximum(out[col].to_numpy(np.float64), sdn[:, k] * pixel_size_nm)
            out[col] = np.where(floor.numpy(), raised, out[col].to_numpy()).astype(out[col].dtype)
    upd = spot_columns(th, sdn, c0, r0, pixel_size_nm)
    for col, values in upd.items():
        if col in out:
            dtype = out[col].dtype
            out[col] = np.where(okn, values, out[col].to_numpy()).astype(dtype)
    return out


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
    (j's PSF reaches into i's box): a neighbour list per box (CSR layout) with the offset of box i's corner
    in j's box, which is fixed (the boxes do not move); :func:`.fisher_scoring.neighbour_spots` draws them."""

    def __init__(self, pairs: np.ndarray, corner: np.ndarray, box: int, n: int) -> None:
        self.box = box
        order = np.argsort(pairs[:, 0], kind="stable")
        i, self.nbr = pairs[order, 0], np.ascontiguousarray(pairs[order, 1])
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(i, minlength=n))]).astype(np.int64)
        self.offset = np.ascontiguousarray(corner[i] - corner[self.nbr], dtype=np.int64)  # (P, 2)
        self.use = np.ones(len(i), bool)  # where neighbour j is modelled in box i (see gate)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """(K, box*box) for parameters ``theta`` (K, 5) in each detection's own box frame."""
        return neighbour_spots(theta, self.ptr, self.nbr, self.offset, self.use, self.box)

    def gate(self, keep: np.ndarray) -> None:
        """From now on model only the detections ``keep`` (K,) bool in their neighbours' boxes."""
        self.use = keep[self.nbr]


def _close_pairs(table: pd.DataFrame, bidx: np.ndarray, px: float, radius_px: np.ndarray):
    """(kept, dropped) row indices of same-frame pairs closer than the smaller of their two merge radii
    ``radius_px`` (K,); the more probable (then brighter) detection of a pair is kept."""
    if len(table) < 2 or radius_px.max() <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    xy = table[["x_nm", "y_nm"]].to_numpy(np.float64) / px
    pairs = close_pairs(bidx, xy[:, 0], xy[:, 1], radius_px)
    rank = table["photons"].to_numpy(np.float64)
    if "prob" in table:
        rank = rank + 1e9 * table["prob"].to_numpy(np.float64)
    first_wins = rank[pairs[:, 0]] >= rank[pairs[:, 1]]
    return np.where(first_wins, pairs[:, 0], pairs[:, 1]), np.where(first_wins, pairs[:, 1], pairs[:, 0])


def _merge_radius(table: pd.DataFrame, bidx: np.ndarray, shape, px: float, opt: RefineOptions) -> np.ndarray:
    """(K,) the merge radius (pixels) of each row of ``table`` (:class:`.MergeRadius`)."""
    x = table["x_nm"].to_numpy(np.float64) / px - 0.5
    y = table["y_nm"].to_numpy(np.float64) / px - 0.5
    return MergeRadius(bidx, x, y, shape, px, opt).own()


def _duplicates(table: pd.DataFrame, bidx: np.ndarray, px: float, radius_px: np.ndarray) -> np.ndarray:
    """Row indices to fit: network detections closer than ``radius_px`` to a more probable one are the
    same emitter found twice (adjacent pixels above the split threshold) and are not fitted."""
    _, drop = _close_pairs(table, bidx, px, radius_px)
    return np.setdiff1d(np.arange(len(table)), drop)


def _merge(table: pd.DataFrame, keep_i: np.ndarray, drop_i: np.ndarray) -> pd.DataFrame:
    """Fits that converged onto one spot (pairs ``keep_i``, ``drop_i`` closer than ``merge_px``): keep the
    more probable detection and give it the photons of the other."""
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
    """Damped Fisher scoring with the camera's pixel variance (:mod:`.fisher_scoring`), every box at once;
    the other detections of a frame enter each box with their current estimates (a joint fit,
    Jacobi-style). Returns the parameters and the Fisher information at them (float32)."""
    th, data = theta.double().numpy(), d.double().numpy()
    bounds = StepBounds(opt.damping, opt.sigma_range_px, step_clip=1.0)
    if len(pairs) == 0:  # every box alone: all iterations and the information in one call
        th, fisher, _ = fit_spots(th, data, np.zeros_like(data), box, camera, int(opt.n_iter), bounds)
        return torch.from_numpy(th).float(), torch.from_numpy(fisher).float()
    others = _Others(pairs.numpy(), corner.numpy().astype(np.int64), box, len(th))
    gate_at = int(opt.n_iter) // 4  # gate after a quarter of the iterations
    for it in range(int(opt.n_iter)):
        rest = others(th)
        if it == gate_at and opt.significance > 0:
            others.gate(_significant(th, information(th, rest, box, camera)[0], opt.significance))
            rest = others(th)
        th = scoring_steps(th, data, rest, box, camera, 1, bounds)
    fisher = information(th, others(th), box, camera)[0]
    return torch.from_numpy(th).float(), torch.from_numpy(fisher).float()


def _significant(theta: np.ndarray, fisher: np.ndarray, z: float) -> np.ndarray:
    """(K,) True where the fitted photons are at least ``z`` Cramer-Rao standard deviations above zero
    (``fisher`` the Fisher information at ``theta``)."""
    sd = crlb_sd(torch.from_numpy(fisher))[:, 2].numpy()
    return np.nan_to_num(theta[:, 2] - z * sd, nan=-1.0) >= 0


def _accept(
    theta: torch.Tensor, theta0: torch.Tensor, fisher: torch.Tensor, opt: RefineOptions
) -> torch.Tensor:
    lo, hi = opt.sigma_range_px
    finite = torch.isfinite(theta).all(1) & torch.isfinite(fisher).flatten(1).all(1)
    shift = _moved(theta, theta0).max(1).values
    return (
        finite
        & (shift <= opt.max_shift_px)
        & (theta[:, 2] > 0)
        & (theta[:, 4] > lo * 1.001)
        & (theta[:, 4] < hi * 0.999)
    )
