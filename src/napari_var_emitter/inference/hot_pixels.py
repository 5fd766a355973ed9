"""Hot pixels: camera pixels that are bright on their own in every frame (an sCMOS camera's dark-current
outliers), found in the median over a sample of the movie's frames and replaced, in every frame, by the
mean of their neighbours before the network sees them.

The network was trained on simulated cameras without them. A hot pixel of ~600 photons made the bundled
model report a localization on it in a third of the frames and, worse, false ones 2-8 px around it (20
such pixels on a 64 x 64 movie: 2,949 localizations instead of 1,665; docs/inference.md). The median over
frames is the background wherever emitters blink; a pixel is hot when its median stands above the local
background (the median of the 16 pixels two pixels out) by more than ``SIGMAS`` standard errors (and
``MIN_EXCESS`` photons) while none of its eight neighbours stands above that background by a quarter as
much: an emitter that stays on (a fiducial bead) spreads its light over its neighbours (at a PSF sigma of 1
px each side neighbour gets ~60 % of the centre pixel's excess, at 0.8 px ~45 %) and is not taken for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..camera import CameraConfig, adu_to_photons, pixel_variance

#: frames whose median finds the hot pixels (evenly spaced over the movie)
SAMPLE_FRAMES = 64
#: at most this many pixel values are held for the median (large frames: fewer sampled frames, at least 3)
SAMPLE_VALUES = 2**24
#: a hot pixel stands this many standard errors of its median above the local background ...
SIGMAS = 8.0
#: ... and at least this many photons
MIN_EXCESS = 20.0
#: and none of its eight neighbours stands above that background by this fraction of its own excess
NEIGHBOUR_FRACTION = 0.25

_AROUND = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
_RING = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]
_ROWS = 256


@dataclass(frozen=True)
class HotPixels:
    """Hot pixels ``(rows, cols)`` of frames of ``shape`` (H, W), each replaced by the mean of its
    ``neighbours`` (K, 8 flat pixel indices, -1 where there is none: outside the frame or hot itself)."""

    rows: np.ndarray
    cols: np.ndarray
    neighbours: np.ndarray
    shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.rows)

    def correct(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (..., H, W) with each hot pixel replaced by the mean of its neighbours (in place)."""
        if not len(self):
            return frames
        flat = frames.reshape(*frames.shape[:-2], -1)
        valid = self.neighbours >= 0
        values = flat[..., np.where(valid, self.neighbours, 0)]  # (..., K, 8)
        mean = (values * valid).sum(-1) / np.maximum(valid.sum(-1), 1)
        flat[..., self.rows * self.shape[1] + self.cols] = mean
        return frames

    def describe(self, at_most: int = 5) -> str:
        """``"(row, col), ..."`` of the first ``at_most`` hot pixels."""
        shown = ", ".join(
            f"({r}, {c})" for r, c in zip(self.rows[:at_most], self.cols[:at_most], strict=True)
        )
        return shown + (", ..." if len(self) > at_most else "")


def sample_indices(n_frames: int, frame_shape: tuple[int, int]) -> np.ndarray:
    """Frame numbers of the sample the median is taken over: evenly spaced over the whole movie."""
    per_frame = max(1, int(frame_shape[0]) * int(frame_shape[1]))
    n = int(min(n_frames, SAMPLE_FRAMES, max(3, SAMPLE_VALUES // per_frame)))
    return np.unique(np.linspace(0, n_frames - 1, n).round().astype(np.int64))


def read_sample(data: Any, camera: CameraConfig) -> np.ndarray:
    """The :func:`sample_indices` frames of the movie ``data`` (T, H, W) in ADU (numpy, dask or any array
    that reads ``data[a:b]``), in photons."""
    n, h, w = (int(s) for s in data.shape)
    frames = np.stack([np.asarray(data[int(i) : int(i) + 1])[0] for i in sample_indices(n, (h, w))])
    return adu_to_photons(frames, camera)


def find_hot_pixels(data: Any, camera: CameraConfig) -> HotPixels:
    """The hot pixels of the movie ``data`` (see :func:`read_sample`)."""
    return hot_pixels_of(read_sample(data, camera), camera)


def hot_pixels_of(frames: np.ndarray, camera: CameraConfig) -> HotPixels:
    """The hot pixels of ``frames`` (n, H, W) in photons (see the module docstring). The standard error of
    a pixel's median is the larger of the camera's noise at the background level and the spread of the
    frames around it (two pixels out): in crowded movies emitters make the median move far more than noise."""
    n, h, w = frames.shape
    quartiles = np.percentile(frames, [25, 50, 75], axis=0).astype(np.float32)
    median, spread = quartiles[1], (quartiles[2] - quartiles[0]) / 1.349  # a robust sd per pixel
    padded = np.pad(np.stack([median, spread]), ((0, 0), (2, 2), (2, 2)), mode="reflect")
    hot = np.zeros((h, w), bool)
    for r0 in range(0, h, _ROWS):  # a block of rows at a time: 16 shifted copies of it are held
        r1 = min(h, r0 + _ROWS)

        def shifted(offsets: list[tuple[int, int]], k: int, r0: int = r0, r1: int = r1) -> np.ndarray:
            return np.stack([padded[k, 2 + dy + r0 : 2 + dy + r1, 2 + dx : 2 + dx + w] for dy, dx in offsets])

        level = np.median(shifted(_RING, 0), axis=0)  # the local background, two pixels out
        sd = np.maximum(
            np.median(shifted(_RING, 1), axis=0), np.sqrt(pixel_variance(np.maximum(level, 0), camera))
        )
        se = 1.2533 * sd / np.sqrt(n)  # of a median of n frames
        excess = median[r0:r1] - level
        brightest_neighbour = shifted(_AROUND, 0).max(axis=0) - level
        hot[r0:r1] = (excess > np.maximum(SIGMAS * se, MIN_EXCESS)) & (
            brightest_neighbour < NEIGHBOUR_FRACTION * excess
        )
    rows, cols = np.nonzero(hot)
    neighbours = np.full((len(rows), len(_AROUND)), -1, np.int64)
    for k, (dy, dx) in enumerate(_AROUND):
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        ok = inside & ~hot[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)]
        neighbours[ok, k] = (r * w + c)[ok]
    return HotPixels(rows.astype(np.int64), cols.astype(np.int64), neighbours, (h, w))
