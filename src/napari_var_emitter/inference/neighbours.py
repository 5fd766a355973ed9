"""Which points of the same frame lie close together (for the PSF fit's neighbour models and merges), and
which row of a batch of frames each point belongs to."""

from __future__ import annotations

import numpy as np


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


def close_pairs(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """(P, 2) index pairs ``i < j`` of points of the same ``group`` closer than the smaller of their two
    ``radius`` (K,) values."""
    if len(x) < 2:
        return np.zeros((0, 2), np.int64)
    pairs = pairs_within(group, x, y, float(np.max(radius)))
    dist = np.hypot(x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]])
    return pairs[dist < np.minimum(radius[pairs[:, 0]], radius[pairs[:, 1]])]


def frame_rows(frames: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
    """Row of a batch of frames (``frame_ids[row]`` is that row's frame number) of each of ``frames``."""
    ids = np.asarray(frame_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], np.asarray(frames, dtype=np.int64))]
