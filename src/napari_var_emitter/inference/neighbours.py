"""Which points of the same frame lie close together (for the PSF fit's neighbour models and merges), and
which row of a batch of frames each point belongs to."""

from __future__ import annotations

import numpy as np


def pairs_within(group: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """(P, 2) index pairs ``i < j`` of points of the same ``group`` closer than ``radius``, in lexicographic
    order. The points are cut into rows ``radius`` high, and each row, together with the row below it, is
    swept along x (vectorised), so the work grows with the points and their neighbours, not with the width
    of the frame times its height. Not scipy's cKDTree: it crashed (segfault) on such frame-offset point sets
    in a thread where torch flushed denormals."""
    n = len(x)
    radius = float(radius)
    if n < 2 or not radius > 0:
        return np.zeros((0, 2), np.int64)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    band = np.floor((y - y.min()) / radius).astype(np.int64)
    # every point in its own row, and a copy of it in the row above: two points closer than ``radius`` share
    # a row or lie in adjacent ones, where the upper one meets the lower one's copy
    src = np.concatenate([np.arange(n), np.arange(n)])
    copy = np.repeat([False, True], n)
    cell = np.asarray(group, np.int64)[src] * (int(band.max()) + 2) + np.concatenate([band, band - 1]) + 1
    xs = x[src]
    order = np.lexsort((xs, cell))
    cell, xs, src, copy = cell[order], xs[order], src[order], copy[order]
    span = np.ptp(xs) + 2 * radius + 1.0
    key = (cell - cell[0]) * span + (xs - xs.min())  # cells far apart along one sorted axis
    end = np.searchsorted(key, key + radius, side="right")
    count = end - np.arange(2 * n) - 1
    i = np.repeat(np.arange(2 * n), count)
    j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count))
    a, b = src[i], src[j]
    keep = (cell[i] == cell[j]) & ~(copy[i] & copy[j]) & (np.hypot(x[a] - x[b], y[a] - y[b]) < radius)
    pairs = np.stack([np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])], 1).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def nearest_in_group(
    group: np.ndarray, x: np.ndarray, y: np.ndarray, of_group: np.ndarray, of_x: np.ndarray, of_y: np.ndarray,
    radius: float,
) -> np.ndarray:  # fmt: skip
    """Index of the point of ``(of_group, of_x, of_y)`` nearest to each point ``(group, x, y)`` in the same
    group (the lowest index among equally near ones; -1 where the group has none). Neighbours within
    ``radius`` are found by :func:`pairs_within`; only the points with none that near are compared with
    their whole group."""
    m = len(x)
    out = np.full(m, -1, np.int64)
    if m == 0 or len(of_x) == 0:
        return out
    pairs = pairs_within(
        np.concatenate([group, of_group]), np.concatenate([x, of_x]), np.concatenate([y, of_y]), radius
    )
    pairs = pairs[(pairs[:, 0] < m) & (pairs[:, 1] >= m)]  # one of each (pairs are i < j)
    q, o = pairs[:, 0], pairs[:, 1] - m
    dist = np.hypot(x[q] - of_x[o], y[q] - of_y[o])
    first = np.lexsort((o, dist, q))  # per query: nearest first, then the lowest index
    q, o = q[first], o[first]
    lead = np.ones(len(q), bool)
    lead[1:] = q[1:] != q[:-1]
    out[q[lead]] = o[lead]
    for k in np.flatnonzero(out < 0):  # none within ``radius``: the whole group
        same = np.flatnonzero(of_group == group[k])
        if len(same):
            out[k] = same[np.argmin(np.hypot(of_x[same] - x[k], of_y[same] - y[k]))]
    return out


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
