"""Targets: padding of emitter lists and rasterisation into every scale's pixel grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_var_emitter.errors import ParameterError
from napari_var_emitter.losses import EmitterTargets, rasterize
from napari_var_emitter.models import VARConfig
from napari_var_emitter.models import layout as L

CFG = VARConfig(photon_scale=1000.0, bg_scale=100.0, z_scale_nm=500.0)


def test_from_lists_pads_and_moves():
    t = EmitterTargets.from_lists(
        [np.array([[1.0, 2.0, 3.0, 400.0]]), np.zeros((0, 4))], [10.0, 20.0], shape=(8, 9)
    )
    assert t.xyz.shape == (2, 1, 3) and t.photons.shape == (2, 1) and t.bg.shape == (2, 8, 9)
    assert t.mask.tolist() == [[True], [False]]
    assert float(t.bg[1, 0, 0]) == 20.0
    assert t.to("cpu").xyz.device.type == "cpu"
    with pytest.raises(ParameterError, match="shape"):
        EmitterTargets.from_lists([np.zeros((0, 4))], 5.0)


@pytest.mark.parametrize("factor", [1 / 8, 1 / 4, 1, 2, 4, 8])
def test_emitter_lands_in_the_right_pixel_with_the_right_offset(factor):
    x, y, z, ph = 5.3, 9.85, 250.0, 1500.0
    t = EmitterTargets.from_lists([[[x, y, z, ph]]], 40.0, shape=(16, 16))
    hw = (max(1, int(16 * factor)), max(1, int(16 * factor)))
    m = rasterize(t, factor, hw, CFG)
    assert m.shape == (1, 6, *hw)
    col, row = int(np.floor(x * factor)), int(np.floor(y * factor))
    occ = m[0, L.P]
    assert occ.sum() == 1 and occ[row, col] == 1
    # offset from that pixel's centre, in that scale's pixels
    assert float(m[0, L.DX, row, col]) == pytest.approx(x * factor - (col + 0.5), abs=1e-5)
    assert float(m[0, L.DY, row, col]) == pytest.approx(y * factor - (row + 0.5), abs=1e-5)
    assert float(m[0, L.PHOTONS, row, col]) == pytest.approx(ph / 1000.0)
    assert float(m[0, L.Z, row, col]) == pytest.approx(z / 500.0)
    assert torch.allclose(m[0, L.BG], torch.full(hw, 0.4))
    assert (m[0, L.DX][occ == 0] == 0).all()


def test_brighter_emitter_wins_a_shared_pixel_and_outside_is_ignored():
    em = [[2.2, 2.2, 0.0, 500.0], [2.8, 2.7, 100.0, 900.0], [2.6, 2.3, 0.0, 700.0], [-1.0, 3.0, 0.0, 1e4]]
    t = EmitterTargets.from_lists([em], 0.0, shape=(8, 8))
    m = rasterize(t, 1, None, CFG)
    assert m[0, L.P].sum() == 1
    assert float(m[0, L.PHOTONS, 2, 2]) == pytest.approx(0.9)
    assert float(m[0, L.DX, 2, 2]) == pytest.approx(0.3, abs=1e-5)
    # at 2x they fall into different pixels and all three are kept
    assert rasterize(t, 2, None, CFG)[0, L.P].sum() == 3


def test_rasterize_is_vectorised_over_a_dense_batch():
    rng = np.random.default_rng(0)
    em = [
        np.c_[rng.uniform(0, 32, (300, 2)), rng.uniform(-1, 1, 300), rng.uniform(1, 2, 300)] for _ in range(4)
    ]
    t = EmitterTargets.from_lists(em, 1.0, shape=(32, 32))
    m = rasterize(t, 8, None, CFG)
    assert m.shape == (4, 6, 256, 256)
    assert 250 * 4 < m[:, L.P].sum() <= 300 * 4
