"""Support from the neighbouring frames for a spot tested as one emitter or two.

An emitter of SMLM data stays on for a few frames, and so does a close pair. One frame of a pair 75-100 nm
apart often gains too little from a second emitter to pass the bar that keeps isolated emitters whole
(docs/model.md, section 17), but the same spot, tested in the frames just before and after, shows the same
two emitters again. Where it does (the two fitted emitters of the neighbouring frame's test lie within a
radius of this frame's, in either order), its gain is added, and the bar rises for every frame added, so a
single emitter, whose two-emitter fits point anywhere from frame to frame, seldom gathers support by
chance. Within a batch of frames every test has both neighbours. Across batches, :class:`FrameSupport`
(which the predictor carries from one batch to the next) lends the tests of a batch's last two frames to the
next, and holds its last frame back (:class:`HeldFrame`): the predictor decides that frame's tests again
with the next batch, where the frame after it is, and reports it with that batch. Every frame of a
run thus has the frames on both sides whatever the batch size (the same table for any batching); only the
last frame of a run (or of a run that stops early) goes without the frame after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .neighbours import pairs_within

if TYPE_CHECKING:
    from .refine import FittedSpots
    from .two_emitters import GroupTests


@dataclass
class FrameTests:
    """Tests of single spots that can lend their gain to the next batch's: movie ``frame`` (K,), the two
    fitted emitters ``first`` and ``second`` (K, 2, pixels) and ``gain`` (K,)."""

    frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    first: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    second: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    gain: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class HeldFrame:
    """The last frame of a batch, held back to be decided with the next batch: its fitted ``spots``
    (:class:`.refine.FittedSpots`) and the ``tests`` of its groups (:class:`.two_emitters.GroupTests`; both
    depend on that frame only), and ``provisional``, its localizations as decided without the frame after
    it (what a run that stops here reports)."""

    spots: FittedSpots
    tests: GroupTests
    provisional: pd.DataFrame


@dataclass
class FrameSupport:
    """What one batch hands to the next: the tests of its last two frames (``last``: the next batch starts
    again at the held frame, which needs the frame before it) and its held last frame (``held``, or None);
    one per run of consecutive batches, fresh for every run."""

    last: FrameTests = field(default_factory=FrameTests)
    held: HeldFrame | None = None


def neighbour_frame_gain(
    frame: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    gain: np.ndarray,
    usable: np.ndarray,
    radius_px: float,
    lenders: FrameTests | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each test (a single spot in movie frame ``frame`` (G,), its two-emitter fit's emitters at
    ``first`` and ``second`` (G, 2) pixels, its ``gain`` (G,)), the gain plus the best gain of the ``usable``
    tests of the frames just before and just after whose two emitters both lie within ``radius_px`` of this
    test's (in either order); and how many neighbouring frames were added (0, 1 or 2). Tests that are not
    ``usable`` neither give nor get support; ``lenders`` (an earlier batch's tests) only give."""
    n_own = len(gain)
    if lenders is not None and len(lenders.frame):
        frame = np.concatenate([np.asarray(frame, np.int64), lenders.frame])
        first, second = np.concatenate([first, lenders.first]), np.concatenate([second, lenders.second])
        gain = np.concatenate([np.asarray(gain, np.float64), lenders.gain])
        usable = np.concatenate([usable, np.ones(len(lenders.frame), bool)])
    own = np.asarray(gain, np.float64)  # a neighbour lends its own frame's gain, not what it gathered
    summed = own.copy()
    added = np.zeros(len(summed), np.int64)
    idx = np.flatnonzero(usable)
    if radius_px <= 0 or len(idx) < 2:
        return summed[:n_own], added[:n_own]
    mid = (first[idx] + second[idx]) / 2
    f = np.asarray(frame, np.int64)[idx]
    n = len(idx)
    for step in (-1, 1):
        # the usable tests, and again as if they were ``step`` frames earlier: a pair across the two halves
        # is a test of frame f and one of frame f + step at about the same place
        close = pairs_within(
            np.concatenate([f, f - step]), np.tile(mid[:, 0], 2), np.tile(mid[:, 1], 2), radius_px
        )
        close = close[(close[:, 0] < n) & (close[:, 1] >= n)]
        i, j = idx[close[:, 0]], idx[close[:, 1] - n]
        same = np.maximum(_dist(first[i], first[j]), _dist(second[i], second[j]))
        swapped = np.maximum(_dist(first[i], second[j]), _dist(second[i], first[j]))
        keep = np.minimum(same, swapped) <= radius_px
        best = np.full(len(summed), -np.inf)
        np.maximum.at(best, i[keep], own[j[keep]])
        has = np.isfinite(best)
        summed[has] += best[has]
        added[has] += 1
    return summed[:n_own], added[:n_own]


def latest_frame_tests(
    frame: np.ndarray, first: np.ndarray, second: np.ndarray, gain: np.ndarray, usable, n_frames: int = 2
) -> FrameTests:
    """The ``usable`` tests of the ``n_frames`` latest frames among ``frame`` (what the next batch can lean
    on)."""
    frame = np.asarray(frame, np.int64)
    latest = np.unique(frame)[-n_frames:]
    keep = np.asarray(usable, bool) & np.isin(frame, latest)
    return FrameTests(frame[keep], first[keep], second[keep], np.asarray(gain, np.float64)[keep])


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])
