"""Close pairs and nearest points per frame (the PSF fit's neighbour lists): the same as comparing every two
points, on frames of any shape, with ties and exact distances."""

from __future__ import annotations

import numpy as np
import pytest

from napari_var_emitter.inference.neighbours import close_pairs, nearest_in_group, pairs_within


def _points(rng, n, height, grid=False):
    group = rng.integers(0, 4, n)
    x, y = rng.uniform(0, 50, n), rng.uniform(0, height, n)
    if grid:  # integer coordinates: equal distances and pairs exactly ``radius`` apart
        x, y = np.round(x), np.round(y)
    return group, x, y


@pytest.mark.parametrize("seed", range(40))
def test_pairs_within_is_every_close_pair_once(seed):
    rng = np.random.default_rng(seed)
    height = [1.0, 10.0, 200.0][seed % 3]  # a strip, a box, a tall frame (many rows of the sweep)
    group, x, y = _points(rng, int(rng.integers(0, 150)), height, grid=seed % 4 == 0)
    radius = float(rng.choice([0.5, 1.0, 2.0, 7.5]))
    i, j = np.triu_indices(len(x), 1)
    close = (group[i] == group[j]) & (np.hypot(x[i] - x[j], y[i] - y[j]) < radius)
    np.testing.assert_array_equal(pairs_within(group, x, y, radius), np.stack([i[close], j[close]], 1))


def test_close_pairs_uses_the_smaller_radius():
    x, y = np.array([0.0, 1.5, 3.0]), np.zeros(3)
    pairs = close_pairs(np.zeros(3, np.int64), x, y, np.array([2.0, 1.6, 1.0]))
    np.testing.assert_array_equal(pairs, [[0, 1]])  # 1-2 are 1.5 apart: within 1.6 but not within 1


@pytest.mark.parametrize("seed", range(20))
def test_nearest_in_group_matches_every_distance(seed):
    rng = np.random.default_rng(100 + seed)
    group, x, y = _points(rng, int(rng.integers(0, 120)), 80.0, grid=seed % 3 == 0)
    q_group, qx, qy = _points(rng, 25, 80.0, grid=seed % 3 == 0)
    q_group[0] = 9  # a group with no points at all
    got = nearest_in_group(q_group, qx, qy, group, x, y, radius=4.0)
    for k in range(len(qx)):
        same = np.flatnonzero(group == q_group[k])
        want = same[np.argmin(np.hypot(x[same] - qx[k], y[same] - qy[k]))] if len(same) else -1
        assert got[k] == want
