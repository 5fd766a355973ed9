"""One emitter or two? Model selection for spots closer than the PSF: the last stage of the PSF fit.

A camera-pixel map holds one emitter per pixel, and the joint one-emitter fit of :mod:`.refine` (each
detection in its own box, the others held at their last estimates) cannot hold two emitters 50-150 nm
apart: either the detector reports one spot for them, or it reports two and their fits drift together. So
for every fitted localization, and every pair of them closer than ``split_max_px``, this stage weighs one
emitter against two, as classical multi-emitter fitting does (DAOSTORM, SSM-BIC):

- A box around the spot or pair is fitted with one pixel-integrated Gaussian (x, y, N, bg, sigma) and with
  two (x1, y1, N1, x2, y2, N2, bg, sigma1, sigma2), by damped Fisher scoring under the camera's pixel
  variance, every other localization of the frame held at its fit.
- Two emitters win when the two-emitter fit gains more log-likelihood than the threshold (Gaussian
  approximation with the camera variance, what the fit minimises): ``split_llr`` for one spot,
  ``merge_llr`` for a pair the detector already reported as two. Each emitter must also be
  ``split_significance`` Cramer-Rao standard deviations bright on its own and lie within the box and
  further than the merge radius from every other localization (:class:`.MergeRadius`); the two of a
  single spot at most ``split_max_px`` apart.
- A spot that wins becomes its two emitters; a pair that wins gets the joint fit of both; a pair whose gain
  is at most ``merge_llr`` becomes one localization (the one-emitter fit, the more probable row's other
  columns); anything else keeps the values of the joint fit of :mod:`.refine`.

A model with a count head (emitters per camera pixel: 0, 1, 2+) lowers the bar of a single spot to
``count_llr`` where the head sees the two fitted emitters (:func:`count_sees_two`). A single spot whose two
fitted emitters appear again in the test of the frame before or after (within ``split_frames_px``) adds that
test's gain to its own, and its bar rises by ``split_frames_llr`` per frame added (:mod:`.frame_support`).

The second emitter of a single spot is seeded along the major axis of its second moments (background and
neighbours removed), half a separation either side, where ``var_major - var_minor = (d / 2)^2`` puts two
emitters; a pair is seeded with its own two fits. Single spots whose two-emitter fit gains under
``_SCREEN_LLR`` after ``_SCREEN_ITER`` iterations stop there (they are far from any threshold).

The test assumes the PSF is a symmetric Gaussian, like the models trained here and the fit: an elongated
PSF (astigmatism, a tilted focal plane) looks like two emitters and is split. docs/inference.md gives the
figures and how to switch the test off (``split_llr=0``, ``var-emitter predict --no-split``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..camera import CameraConfig, pixel_variance
from .fisher_scoring import StepBounds, fit_spots, information
from .frame_support import FrameSupport, latest_frame_tests, neighbour_frame_gain
from .gaussian_psf import crlb_sd, draw_spots, gather_boxes, profile, spot_columns
from .local_density import MergeRadius
from .neighbours import close_pairs, frame_rows, pairs_within

if TYPE_CHECKING:
    from .refine import RefineOptions

#: iterations of the two-emitter fit, and after how many a single spot's fit must have gained ``_SCREEN_LLR``
#: to go on (8, 3 and 2.0 gave the same JI and pairs on held-out movies, 7 % slower)
_TWO_ITER, _SCREEN_ITER, _SCREEN_LLR = 6, 2, 3.0
#: iterations of the one-emitter fit of a single spot (it starts at the joint fit's optimum)
_SINGLE_ITER = 2
#: a count head's expected count over two pixels above which it sees two emitters there (one: 1, two: 2)
_TWO_PIXELS = 1.5


def log_likelihood(d: torch.Tensor, mu: torch.Tensor, camera: CameraConfig | None) -> torch.Tensor:
    """(K,) log-likelihood (up to a constant) of data ``d`` (K, P) under independent Gaussian pixels of
    mean ``mu`` (K, P) and the camera's variance at ``mu``."""
    var = pixel_variance(mu, camera)
    return -0.5 * ((d - mu) ** 2 / var + torch.log(var)).sum(1)


def _halves(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two one-emitter parameter sets (K, 5) of two-emitter parameters (K, 9); the second without the
    background."""
    a = torch.cat([theta[:, 0:3], theta[:, 6:8]], 1)
    b = torch.cat([theta[:, 3:6], torch.zeros_like(theta[:, :1]), theta[:, 8:9]], 1)
    return a, b


def fit_model(
    theta: torch.Tensor,
    d: torch.Tensor,
    rest: torch.Tensor,
    box: int,
    camera: CameraConfig | None,
    opt: RefineOptions,
    n_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Damped Fisher scoring of the one- (``theta`` (K, 5)) or two-emitter model (K, 9) on the boxes ``d``
    (K, P) with the fixed model ``rest`` (K, P) of the other localizations (:mod:`.fisher_scoring`; steps
    of at most 0.5 px, positions within a pixel of the box). Returns the parameters, the Fisher information
    and ``mu`` (with ``rest``) at them."""
    bounds = StepBounds(opt.damping, opt.sigma_range_px, step_clip=0.5, position_range=(-1.0, float(box)))
    th, data, other = (t.double().numpy() for t in (theta, d, rest))
    out = fit_spots(th, data, other, box, camera, n_iter, bounds)
    return tuple(torch.from_numpy(a).to(theta.dtype) for a in out)


def _continue(state, rows: torch.Tensor, d, rest, box, camera, opt, n_iter: int):
    """``state`` (parameters, Fisher information, mu of :func:`fit_model`) after ``n_iter`` more iterations
    for the rows ``rows`` (K,) bool."""
    idx = torch.nonzero(rows)[:, 0]
    if len(idx) == 0 or n_iter <= 0:
        return state
    more = fit_model(state[0][idx], d[idx], rest[idx], box, camera, opt, n_iter)
    out = tuple(t.clone() for t in state)
    for t, m in zip(out, more, strict=True):
        t[idx] = m
    return out


def moment_seeds(theta: torch.Tensor, d: torch.Tensor, rest: torch.Tensor, box: int, sigma_px: float):
    """(K, 9) two-emitter seeds from one-emitter fits ``theta`` (K, 5): half the photons each, half a
    separation either side along the major axis of the second moments of ``d - bg - rest``."""
    k = torch.arange(box, dtype=theta.dtype)
    yy, xx = (g.reshape(1, -1) for g in torch.meshgrid(k, k, indexing="ij"))
    x, y, n, bg, s = (theta[:, i] for i in range(5))
    w = (d - bg[:, None] - rest).clamp(min=0)
    w = w / w.sum(1, keepdim=True).clamp(min=1e-6)
    dx, dy = xx - x[:, None], yy - y[:, None]
    cxx, cyy, cxy = (w * dx * dx).sum(1), (w * dy * dy).sum(1), (w * dx * dy).sum(1)
    spread = (0.25 * (cxx - cyy) ** 2 + cxy**2).sqrt()  # (var_major - var_minor) / 2
    half = (2 * spread).sqrt().clamp(0.3, 1.0)
    angle = 0.5 * torch.atan2(2 * cxy, cxx - cyy)
    ux, uy = torch.cos(angle) * half, torch.sin(angle) * half
    s0 = s.clamp(max=sigma_px)
    return torch.stack([x - ux, y - uy, n / 2, x + ux, y + uy, n / 2, bg, s0, s0], 1)


def _match_pairs(pairs: np.ndarray, x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """(M, 2) disjoint pairs out of ``pairs`` (P, 2): repeatedly the mutually nearest ones."""
    dist = np.hypot(x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]])
    taken = np.zeros(n, bool)
    chosen = []
    while len(pairs):
        best = np.full(n, np.inf)
        np.minimum.at(best, pairs[:, 0], dist)
        np.minimum.at(best, pairs[:, 1], dist)
        mutual = (dist <= best[pairs[:, 0]]) & (dist <= best[pairs[:, 1]])
        pick = pairs[mutual]
        pick = pick[~taken[pick].any(1)]
        _, first = np.unique(pick[:, 0], return_index=True)  # ties: one pair per point
        pick = pick[first]
        pick = pick[np.unique(pick[:, 1], return_index=True)[1]]
        if len(pick) == 0:
            break
        taken[pick.ravel()] = True
        chosen.append(pick)
        left = ~taken[pairs].any(1)
        pairs, dist = pairs[left], dist[left]
    return np.concatenate(chosen) if chosen else np.zeros((0, 2), np.int64)


def _groups(rows: np.ndarray, bidx: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """(G, 2) what is tested: disjoint pairs of ``rows`` closer than ``radius`` (mutually nearest first),
    then every other row alone (second column -1). A spot too faint for one emitter (not in ``rows``) is
    not two."""
    close = pairs_within(bidx[rows], x[rows], y[rows], radius)
    matched = rows[_match_pairs(close, x[rows], y[rows], len(rows))] if len(close) else np.zeros((0, 2), int)
    single = np.setdiff1d(rows, matched.ravel())
    return np.concatenate([np.stack([single, np.full(len(single), -1)], 1), matched]).astype(np.int64)


def rest_model(c0, r0, gframe, members, x, y, n, s, frame, use, shape, box: int) -> torch.Tensor:
    """(G, box*box) model of the localizations ``use`` (K,) bool, other than each group's ``members``, in the
    group boxes with corners ``c0``, ``r0`` in frames ``gframe``: every such localization's spot is drawn
    (to 3 sigma) into a model of its frame, the boxes are read out and their members' own spots taken off."""
    j = np.flatnonzero(use)
    model, pad = draw_spots(shape, frame[j], x[j], y[j], n[j], s[j])
    rest = gather_boxes(model, gframe, r0 + pad, c0 + pad, box)
    kb = torch.arange(box, dtype=torch.float32)[None, :]
    for m in (members[:, 0], members[:, 1]):
        own = (m >= 0) & use[np.maximum(m, 0)]
        g, mm = np.flatnonzero(own), m[own]
        if len(g):
            sm = torch.from_numpy(s[mm][:, None]).float()
            ex = profile(kb, torch.from_numpy((x[mm] - c0[g])[:, None]).float(), sm)[0]
            ey = profile(kb, torch.from_numpy((y[mm] - r0[g])[:, None]).float(), sm)[0]
            rest[torch.from_numpy(g)] -= (
                torch.from_numpy(n[mm]).float()[:, None, None] * ey[:, :, None] * ex[:, None, :]
            )
    return rest.clamp(min=0).reshape(len(c0), -1)


@dataclass
class GroupTests:
    """The tested groups of a batch, before the decisions: ``members`` (G, 2) rows of the table (the second
    -1 for a single spot), their boxes' corners ``c0``, ``r0``, the model ``rest`` (G, box*box) of the other
    localizations there, the one- and two-emitter fits ``one`` (G, 5), ``fisher1``, ``two`` (G, 9),
    ``fisher2``, the two-emitter fit's ``gain`` in log-likelihood and the bar ``thr`` it must pass. A group
    depends on its own frame only, so one frame's tests can be kept and joined with a later batch's."""

    members: np.ndarray
    c0: np.ndarray
    r0: np.ndarray
    rest: torch.Tensor
    one: torch.Tensor
    fisher1: torch.Tensor
    two: torch.Tensor
    fisher2: torch.Tensor
    gain: torch.Tensor
    thr: torch.Tensor

    @classmethod
    def none(cls, box: int) -> GroupTests:
        """No groups."""
        ints, z = np.zeros(0, np.int64), torch.zeros
        empty = (z(0, box * box), z(0, 5), z(0, 5, 5), z(0, 9), z(0, 9, 9), z(0), z(0))
        return cls(np.zeros((0, 2), np.int64), ints, ints, *empty)

    def __len__(self) -> int:
        return len(self.members)

    def select(self, keep: np.ndarray, row_map: np.ndarray) -> GroupTests:
        """The groups ``keep`` (G,) bool, their member rows renumbered by ``row_map`` (old row -> new)."""
        m = self.members[keep]
        members = np.where(m >= 0, row_map[np.maximum(m, 0)], -1)
        t = torch.from_numpy(keep)
        return GroupTests(members, self.c0[keep], self.r0[keep], *(v[t] for v in self._tensors()))

    def then(self, later: GroupTests, n_rows: int) -> GroupTests:
        """These groups followed by ``later``'s, whose table rows come after this table's ``n_rows``."""
        shifted = np.where(later.members >= 0, later.members + n_rows, -1)
        pairs = ((self.members, shifted), (self.c0, later.c0), (self.r0, later.r0))
        arrays = (np.concatenate(p) for p in pairs)
        tensors = (torch.cat([a, b]) for a, b in zip(self._tensors(), later._tensors(), strict=True))
        return GroupTests(*arrays, *tensors)

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.rest, self.one, self.fisher1, self.two, self.fisher2, self.gain, self.thr


def weigh_groups(
    table: pd.DataFrame,
    img: torch.Tensor,
    bidx: np.ndarray,
    width_px: np.ndarray,
    fitted: np.ndarray,
    significant: np.ndarray,
    pixel_size_nm: float,
    camera: CameraConfig | None,
    opt: RefineOptions,
    count: torch.Tensor | None = None,
) -> GroupTests:
    """One emitter or two for every fitted localization and every close pair of them (see the module
    docstring), first stage: the groups and their one- and two-emitter fits, gains and bars. ``table`` is
    the fitted table (nm), ``img`` (B, H, W) photons, ``bidx`` the frame of each row in ``img``, ``width_px``
    each row's fitted PSF width, ``fitted`` where its fit converged, ``significant`` where it counts in its
    neighbours' models, ``count`` a count head's (B, 3, H, W) probabilities of 0, 1 and 2+ emitters per
    camera pixel (or None). Each group depends on its own frame only."""
    box, half = int(opt.box), int(opt.box) // 2
    if len(table) == 0:
        return GroupTests.none(box)
    _, h, w = img.shape
    px = float(pixel_size_nm)
    x = table["x_nm"].to_numpy(np.float64) / px - 0.5
    y = table["y_nm"].to_numpy(np.float64) / px - 0.5
    n = np.maximum(table["photons"].to_numpy(np.float64), 1.0)
    bg = table["bg"].to_numpy(np.float64) if "bg" in table else np.full(len(table), np.nan)
    s = np.asarray(width_px, np.float64)
    members = _groups(np.flatnonzero(fitted & significant), bidx, x, y, float(opt.split_max_px))
    if len(members) == 0:
        return GroupTests.none(box)
    is_pair = members[:, 1] >= 0
    a, b = members[:, 0], np.where(is_pair, members[:, 1], members[:, 0])
    wa, wb = n[a], np.where(is_pair, n[b], 0.0)
    cx_f, cy_f = (wa * x[a] + wb * x[b]) / (wa + wb), (wa * y[a] + wb * y[b]) / (wa + wb)
    c0 = np.clip(np.rint(cx_f).astype(np.int64) - half, 0, w - box)
    r0 = np.clip(np.rint(cy_f).astype(np.int64) - half, 0, h - box)
    d = gather_boxes(img, bidx[a], r0, c0, box).reshape(len(members), -1)
    rest = rest_model(c0, r0, bidx[a], members, x, y, n, s, bidx, significant, img.shape, box)
    bg_g = np.where(np.isfinite(bg[a]) & (bg[a] > 0), bg[a], np.median(d.numpy(), axis=1))

    def t(v):
        return torch.from_numpy(np.asarray(v, np.float64)).float()

    one0 = torch.stack([t(cx_f - c0), t(cy_f - r0), t(wa + wb), t(np.maximum(bg_g, 0.1)), t(s[a])], 1)
    pair_t = torch.from_numpy(is_pair)
    n_iter = int(opt.n_iter)
    first = fit_model(one0, d, rest, box, camera, opt, _SINGLE_ITER)
    one, fisher1, mu1 = _continue(first, pair_t, d, rest, box, camera, opt, n_iter - _SINGLE_ITER)
    ll1 = log_likelihood(d, mu1, camera)
    seeds = moment_seeds(one, d, rest, box, float(opt.sigma_px))
    own = torch.stack([t(x[a] - c0), t(y[a] - r0), t(wa), t(x[b] - c0), t(y[b] - r0), t(wb)], 1)
    own = torch.cat([own, one0[:, 3:4], t(s[a])[:, None], t(s[b])[:, None]], 1)
    two0 = torch.where(pair_t[:, None], own, seeds)
    screen = fit_model(two0, d, rest, box, camera, opt, _SCREEN_ITER)
    more = pair_t | (log_likelihood(d, screen[2], camera) - ll1 > _SCREEN_LLR)
    two, fisher2, mu2 = _continue(screen, more, d, rest, box, camera, opt, _TWO_ITER - _SCREEN_ITER)
    gain = log_likelihood(d, mu2, camera) - ll1
    thr = torch.full((len(members),), float(opt.split_llr))
    if count is not None:
        thr[count_sees_two(count, bidx[a], two, c0, r0, opt.count_p)] = float(opt.count_llr)
    return GroupTests(members, c0, r0, rest, one, fisher1, two, fisher2, gain, thr)


def decide(
    table: pd.DataFrame,
    shape: tuple[int, int, int],
    bidx: np.ndarray,
    tests: GroupTests,
    pixel_size_nm: float,
    camera: CameraConfig | None,
    opt: RefineOptions,
    support: FrameSupport | None = None,
) -> pd.DataFrame:
    """The second stage: the decisions on ``tests`` (:func:`weigh_groups`) of the rows of ``table`` (in the
    frames ``bidx`` of a batch of ``shape`` (B, H, W)), with the support of the neighbouring frames
    (:class:`.frame_support.FrameSupport`: it lends the previous batch's tests and takes this one's; None:
    this call only); the new table."""
    if len(tests) == 0:
        return table
    box, px = int(opt.box), float(pixel_size_nm)
    x = table["x_nm"].to_numpy(np.float64) / px - 0.5
    y = table["y_nm"].to_numpy(np.float64) / px - 0.5
    members, c0, r0 = tests.members, tests.c0, tests.r0
    is_pair = members[:, 1] >= 0
    frame = table["frame"].to_numpy()[members[:, 0]]
    gain, thr = _with_frame_support(tests.gain, tests.thr, tests.two, c0, r0, frame, is_pair, opt, support)
    radius = MergeRadius(bidx, x, y, shape, px, opt)
    one, fisher1, two, fisher2 = tests.one, tests.fisher1, tests.two, tests.fisher2
    split = _two_win(
        two, fisher2, gain, thr, tests.rest, c0, r0, x, y, bidx, members, box, camera, opt, radius
    )
    split = split.numpy()
    one_ok = torch.isfinite(one).all(1).numpy() & (torch.isfinite(fisher1).flatten(1).all(1).numpy())
    merge = is_pair & ~split & one_ok & (gain <= opt.merge_llr).numpy()
    return _rebuild(table, members, split, merge, one, fisher1, two, fisher2, c0, r0, px)


def _with_frame_support(
    gain, thr, two, c0, r0, frame, is_pair, opt: RefineOptions, support: FrameSupport | None
):
    """The gains and bars of the single spots with the support of the neighbouring frames
    (:mod:`.frame_support`): a spot whose two emitters appear again in the frame before or after gains
    that frame's gain too, and its bar rises by ``split_frames_llr`` per frame added. ``support`` (or None)
    lends the previous batch's last two frames and takes this batch's."""
    if opt.split_frames_px <= 0:
        return gain, thr
    t = two.double().numpy()
    corner = np.stack([c0, r0], 1)
    first, second = t[:, 0:2] + corner, t[:, 3:5] + corner
    g = gain.numpy()
    usable = ~is_pair & np.isfinite(t).all(1) & np.isfinite(g)
    lenders = support.last if support is not None else None
    summed, added = neighbour_frame_gain(frame, first, second, g, usable, float(opt.split_frames_px), lenders)
    if support is not None:
        support.last = latest_frame_tests(frame, first, second, g, usable)
    gathered = torch.from_numpy(added > 0)
    gain = torch.where(gathered, torch.from_numpy(summed).to(gain.dtype), gain)
    return gain, thr + float(opt.split_frames_llr) * torch.from_numpy(added).to(thr.dtype)


def count_sees_two(
    count: torch.Tensor, frame: np.ndarray, two: torch.Tensor, c0, r0, p_min: float
) -> torch.Tensor:
    """(G,) whether a count head's (B, 3, H, W) probabilities of 0, 1 and 2+ emitters per pixel see the two
    of the two-emitter fits ``two`` (G, 9): both in one pixel, a probability of 2+ there of at least
    ``p_min``; in two pixels, an expected count over the two of at least ``_TWO_PIXELS``. (Not the chance
    of at least one in each: an emitter near a pixel edge spreads its count over both pixels.)"""
    p = count.float().cpu()
    _, _, h, w = p.shape
    f = torch.from_numpy(np.asarray(frame, np.int64))
    pix = []
    for o in (0, 3):
        col = np.clip(np.rint(two[:, o].double().numpy() + c0), 0, w - 1).astype(np.int64)
        row = np.clip(np.rint(two[:, o + 1].double().numpy() + r0), 0, h - 1).astype(np.int64)
        pix.append((f, torch.from_numpy(row), torch.from_numpy(col)))
    a, b = pix
    same = (a[1] == b[1]) & (a[2] == b[2])
    expected = p[:, 1] + 2 * p[:, 2]  # (B, H, W)
    return torch.where(same, p[:, 2][a] >= p_min, expected[a] + expected[b] >= _TWO_PIXELS)


def _two_win(
    two, fisher2, gain, thr, rest, c0, r0, x, y, bidx, members, box, camera, opt, merge_radius
) -> torch.Tensor:
    """(G,) True where two emitters are the better model (see the module docstring); ``thr`` (G,) is the
    gain a single spot needs; ``merge_radius`` the :class:`.MergeRadius` around the localizations."""
    lo, hi = opt.sigma_range_px
    pair = torch.from_numpy(members[:, 1] >= 0)
    thr = torch.where(pair, float(opt.merge_llr), thr)
    win = torch.isfinite(two).all(1) & torch.isfinite(fisher2).flatten(1).all(1) & (gain > thr)
    win &= ((two[:, 7:] > lo * 1.001) & (two[:, 7:] < hi * 0.999)).all(1)
    win &= ((two[:, [0, 1, 3, 4]] > -0.5) & (two[:, [0, 1, 3, 4]] < box - 0.5)).all(1)
    win &= (torch.hypot(two[:, 0] - two[:, 3], two[:, 1] - two[:, 4]) <= opt.split_max_px) | pair
    cand = torch.nonzero(win)[:, 0]
    for alone in _halves(two[cand]):
        alone = torch.cat([alone[:, :3], two[cand, 6:7], alone[:, 4:5]], 1)  # each on the background
        fisher = information(alone.double().numpy(), rest[cand].double().numpy(), box, camera)[0]
        sd = crlb_sd(torch.from_numpy(fisher))[:, 2].numpy()
        win[cand] &= alone[:, 2] >= opt.split_significance * torch.from_numpy(sd).float()
    # neither emitter on top of another localization (the neighbours' residual, not a new emitter)
    cand = torch.nonzero(win)[:, 0].numpy()
    if len(cand):
        radius_old = merge_radius.own()
        for o in (0, 3):
            ex = two[cand, o].double().numpy() + c0[cand]
            ey = two[cand, o + 1].double().numpy() + r0[cand]
            new_b = bidx[members[cand, 0]]
            radius = np.concatenate([merge_radius.at(new_b, ex, ey), radius_old])
            near = close_pairs(
                np.concatenate([new_b, bidx]), np.concatenate([ex, x]), np.concatenate([ey, y]), radius
            )
            lo_i, hi_i = near.min(1), near.max(1)
            cross = (lo_i < len(cand)) & (hi_i >= len(cand))
            g, j = lo_i[cross], hi_i[cross] - len(cand)
            other = (j != members[cand[g], 0]) & (j != members[cand[g], 1])
            win[torch.from_numpy(cand[g[other]])] = False
    return win


def _rebuild(table, members, split, merge, one, fisher1, two, fisher2, c0, r0, px) -> pd.DataFrame:
    """``table`` after the decisions: split groups become their two emitters, merged pairs one emitter."""
    cols = ("x_nm", "y_nm", "photons", "bg", "sigma_x_nm", "sigma_y_nm", "sigma_photons")
    cols = [c for c in cols if c in table]
    vals = {c: table[c].to_numpy(np.float64).copy() for c in cols}
    th1, sd1 = one.double().numpy(), crlb_sd(fisher1).numpy()
    th2, sd2 = two.double().numpy(), crlb_sd(fisher2).numpy()

    def fill(rows, th, sd, o, g):
        new = spot_columns(th[g], sd[g], c0[g], r0[g], px, o)
        return {c: new[c] for c in cols}, rows

    is_pair = members[:, 1] >= 0
    updates = []
    g = np.flatnonzero(split)
    updates.append(fill(members[g, 0], th2, sd2, 0, g))
    gp = g[is_pair[g]]
    updates.append(fill(members[gp, 1], th2, sd2, 3, gp))
    gm = np.flatnonzero(merge)
    pa, pb = members[gm, 0], members[gm, 1]
    rank = table["prob"].to_numpy(np.float64) if "prob" in table else table["photons"].to_numpy(np.float64)
    keeper = np.where(rank[pa] >= rank[pb], pa, pb)
    updates.append(fill(keeper, th1, sd1, 0, gm))
    for new, rows in updates:
        for c in cols:
            vals[c][rows] = new[c]
    gs = g[~is_pair[g]]
    extra = fill(members[gs, 0], th2, sd2, 3, gs)[0]
    dropped = np.where(rank[pa] >= rank[pb], pb, pa)
    kept = np.setdiff1d(np.arange(len(table)), dropped)
    src = np.concatenate([kept, members[gs, 0]])
    out = table.iloc[src].reset_index(drop=True)
    for c in cols:
        out[c] = np.concatenate([vals[c][kept], extra[c]]).astype(table[c].dtype)
    order = np.argsort(np.concatenate([kept, members[gs, 0] + 0.5]), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def psf_moments(
    table: pd.DataFrame,
    frames: torch.Tensor | np.ndarray,
    frame_ids: np.ndarray,
    pixel_size_nm: float,
    box: int = 7,
) -> tuple[np.ndarray, np.ndarray]:
    """The shape of the bright, isolated spots of ``frames`` (B, H, W photons; ``frames[b]`` is frame
    ``frame_ids[b]``) at the localizations of ``table`` (at least 1,000 photons, no other localization within
    ``box`` pixels along either axis), from their second moments with the background removed: ``q`` (n, 2) =
    ``((cxx - cyy), 2 cxy) / (cxx + cyy)`` per spot, and the camera pixel (n, 2) of each spot (so that the
    same emitter in consecutive frames can be counted once). See :func:`elongation`."""
    img = torch.as_tensor(frames).float().cpu()
    _, h, w = img.shape
    half = box // 2
    x = table["x_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5
    y = table["y_nm"].to_numpy(np.float64) / pixel_size_nm - 0.5
    bidx = frame_rows(table["frame"].to_numpy(), frame_ids)
    bright = table["photons"].to_numpy(np.float64) >= 1000.0
    inside = (x >= half) & (x < w - 1 - half) & (y >= half) & (y < h - 1 - half)
    keep = np.flatnonzero(bright & inside)
    keep = keep[_alone(bidx, np.rint(x).astype(np.int64), np.rint(y).astype(np.int64), img.shape, box)[keep]]
    c0, r0 = np.rint(x[keep]).astype(np.int64) - half, np.rint(y[keep]).astype(np.int64) - half
    d = gather_boxes(img, bidx[keep], r0, c0, box).double()
    bg = d.flatten(1).median(1).values if len(keep) else torch.zeros(0, dtype=torch.float64)
    if "bg" in table:
        bg = torch.from_numpy(table["bg"].to_numpy(np.float64)[keep])
    wgt = (d - bg[:, None, None]).clamp(min=0)
    wgt = wgt / wgt.sum((1, 2), keepdim=True).clamp(min=1e-6)
    k = torch.arange(box, dtype=torch.float64)
    dx = k[None, None, :] - torch.from_numpy(x[keep] - c0)[:, None, None]
    dy = k[None, :, None] - torch.from_numpy(y[keep] - r0)[:, None, None]
    cxx, cyy, cxy = (wgt * dx * dx).sum((1, 2)), (wgt * dy * dy).sum((1, 2)), (wgt * dx * dy).sum((1, 2))
    total = (cxx + cyy).clamp(min=1e-6)
    q = torch.stack([(cxx - cyy) / total, 2 * cxy / total], 1).numpy()
    return q, np.stack([c0 + half, r0 + half], 1)


def _alone(rows: np.ndarray, cols_px: np.ndarray, rows_px: np.ndarray, shape, radius: int) -> np.ndarray:
    """(K,) True for the points (camera pixel ``cols_px``, ``rows_px`` in frame ``rows``) with no other point
    within ``radius`` pixels along either axis: the points are counted into per-frame images and each point
    sums its window from their cumulative sums (cheap on every batch, unlike a pair search at 5/um^2)."""
    nb, h, w = shape
    cx, cy = np.clip(cols_px, 0, w - 1), np.clip(rows_px, 0, h - 1)
    counts = np.zeros((nb, h + 1, w + 1), np.int64)
    np.add.at(counts, (rows, cy + 1, cx + 1), 1)
    cum = counts.cumsum(1).cumsum(2)
    y0, y1 = np.clip(cy - radius, 0, h), np.clip(cy + radius + 1, 0, h)
    x0, x1 = np.clip(cx - radius, 0, w), np.clip(cx + radius + 1, 0, w)
    window = cum[rows, y1, x1] - cum[rows, y0, x1] - cum[rows, y1, x0] + cum[rows, y0, x0]
    return window == 1


def elongation(q: np.ndarray) -> tuple[float, float]:
    """The PSF's elongation from :func:`psf_moments` ``q`` (n, 2) of independent spots: the length of their
    mean, about 0 for a round PSF whatever the spots' sub-pixel positions and about ``(b^2 - 1) / (b^2 + 1)``
    less the box's truncation when one axis is ``b`` times the other; and that length in standard errors
    (unresolved close pairs make single spots elongated too, but in every direction: large spread, small
    mean)."""
    mean = q.mean(0)
    length = float(np.hypot(*mean))
    se = float(np.sqrt(q.var(0).sum() / (2 * len(q))))
    return length, length / max(se, 1e-12)
