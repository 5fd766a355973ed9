"""The PSF fit's search of its residual: in crowded frames, emitters the network missed next to brighter ones
are found; where localizations are sparse, or nothing was missed, nothing is added."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from napari_var_emitter.camera import adu_to_photons
from napari_var_emitter.evaluation.matching import match
from napari_var_emitter.inference.gaussian_psf import draw_spots
from napari_var_emitter.inference.refine import RefineOptions, refine_gaussian
from napari_var_emitter.simulation import SimulationConfig, simulate

IDEAL = {"type": "ideal", "qe": 1.0, "e_per_adu": 1.0, "baseline": 100.0, "read_noise_e": 0.0}
OFF = RefineOptions(residual_density=None)
EVERYWHERE = RefineOptions(residual_density=0.0)


def _grid_scene(spacing_px: float, n_frames: int, seed: int, hidden: bool):
    """Frames of 40 x 40 px with 3,000-photon emitters on a grid ``spacing_px`` apart (jittered), on 50
    photons/px; with ``hidden``, every other grid cell has a 1,500-photon emitter near its centre that the
    'network' table does not list. Returns the frames (photons), the table, the
    emitters it lists and the hidden ones."""
    cfg = SimulationConfig(
        frame_size=(40, 40),
        density=0.0,
        background=(50.0, 50.0),
        psf={"sigma_px": (1.15, 1.15)},
        camera=IDEAL,
    )
    rng = np.random.default_rng(seed)
    centres = np.arange(4.0, 36.0, spacing_px)
    gx, gy = np.meshgrid(centres, centres)
    rows, partners = [], []
    for f in range(n_frames):
        xy = np.stack([gx.ravel(), gy.ravel()], 1) + rng.uniform(-0.5, 0.5, (gx.size, 2))
        rows.append(
            pd.DataFrame({"frame": f, "x_nm": xy[:, 0] * 100, "y_nm": xy[:, 1] * 100, "photons": 3000.0})
        )
        if hidden:
            p = xy[::2] + spacing_px / 2 + rng.uniform(-0.3, 0.3, (len(xy[::2]), 2))
            partners.append(
                pd.DataFrame({"frame": f, "x_nm": p[:, 0] * 100, "y_nm": p[:, 1] * 100, "photons": 1500.0})
            )
    listed = pd.concat(rows, ignore_index=True)
    missed = pd.concat(partners, ignore_index=True) if partners else listed.iloc[:0]
    truth = pd.concat([listed, missed], ignore_index=True)
    movie = simulate(cfg, n_frames, seed=seed, emitters=truth)
    noise = rng.normal(0, 15.0, (len(listed), 2))
    net = listed.assign(x_nm=listed.x_nm + noise[:, 0], y_nm=listed.y_nm + noise[:, 1], z_nm=0.0, bg=50.0)
    net = net.assign(prob=0.9, sigma_x_nm=15.0, sigma_y_nm=15.0)  # about as sure as the bundled network
    return adu_to_photons(movie.frames, cfg.camera), net, listed, missed


def _found(out: pd.DataFrame, emitters: pd.DataFrame) -> float:
    """Fraction of ``emitters`` with a localization within 50 nm."""
    hit = 0
    for f, group in emitters.groupby("frame"):
        loc = out[out.frame == f][["x_nm", "y_nm"]].to_numpy()
        d = np.linalg.norm(group[["x_nm", "y_nm"]].to_numpy()[:, None, :] - loc[None, :, :], axis=2)
        hit += int((d.min(1) < 50.0).sum())
    return hit / len(emitters)


def test_emitters_the_network_missed_between_others_are_found():
    """A grid 6 px apart with a hidden 1,500-photon emitter in every other cell, searched everywhere: the
    hidden emitters are found, once each, and the listed ones are kept."""
    frames, net, listed, missed = _grid_scene(6.0, 4, seed=1, hidden=True)
    ids = np.arange(len(frames))
    before = refine_gaussian(net, frames, ids, 100.0, None, OFF)
    after = refine_gaussian(net, frames, ids, 100.0, None, EVERYWHERE)
    assert _found(before, missed) < 0.05
    assert _found(after, missed) >= 0.85
    assert _found(after, listed) >= _found(before, listed) - 0.02
    m = match(after, pd.concat([listed, missed]), tolerance_nm=100.0)
    assert len(after) - len(m.pred_index) <= 0.02 * len(after)  # few localizations that match nothing
    assert after["frame"].is_monotonic_increasing
    new = after.merge(before, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(new) >= 0.85 * len(missed)
    assert (new["prob"] == 0.9).all()  # the other columns come from the nearest localization


def test_the_search_runs_only_where_localizations_are_dense():
    """By default only where the localizations are at least 3.5/µm²: the grid 5 px apart (4/µm²) is searched,
    the grid 12 px apart (0.7/µm²) is not (the result is the fit's without search) unless asked."""
    frames, net, _, missed = _grid_scene(5.0, 4, seed=2, hidden=True)
    ids = np.arange(len(frames))
    assert _found(refine_gaussian(net, frames, ids, 100.0, None), missed) >= 0.3
    frames, net, _, missed = _grid_scene(12.0, 4, seed=2, hidden=True)
    sparse = refine_gaussian(net, frames, ids, 100.0, None)
    pd.testing.assert_frame_equal(sparse, refine_gaussian(net, frames, ids, 100.0, None, OFF))
    assert _found(sparse, missed) < 0.05
    assert _found(refine_gaussian(net, frames, ids, 100.0, None, EVERYWHERE), missed) >= 0.85


@pytest.mark.parametrize(("spacing", "options"), [(5.0, RefineOptions()), (6.0, EVERYWHERE)])
def test_a_crowded_frame_with_nothing_missed_gains_almost_nothing(spacing, options):
    frames, net, listed, _ = _grid_scene(spacing, 4, seed=3, hidden=False)
    out = refine_gaussian(net, frames, np.arange(len(frames)), 100.0, None, options)
    assert len(listed) <= len(out) <= 1.02 * len(listed)


def test_drawn_spots_hold_their_photons_and_sit_where_they_are_drawn():
    model, pad = draw_spots(
        (2, 20, 30),
        np.array([0, 1]),
        np.array([10.3, 2.0]),
        np.array([7.6, 15.0]),
        np.array([1000.0, 500.0]),
        np.array([1.2, 1.0]),
    )
    assert model.shape == (2, 20 + 2 * pad, 30 + 2 * pad)
    assert torch.isclose(model.sum((1, 2)), torch.tensor([1000.0, 500.0]), rtol=1e-3).all()
    inner = model[0, pad : pad + 20, pad : pad + 30]
    row, col = divmod(int(inner.argmax()), 30)
    assert (row, col) == (8, 10)  # y 7.6 rounds to pixel 8, x 10.3 to 10


def test_small_frames_and_edges_are_searched_without_error():
    """Frames no larger than the fit's box and a frame crowded at its edges: searched everywhere, every
    localization stays inside the frame."""
    rng = np.random.default_rng(4)
    for size in (7, 12):
        frames = torch.from_numpy(rng.poisson(50.0, (2, size, size)).astype(np.float32))
        frames[:, 0, 0] += 3000.0  # a bright pixel in a corner
        net = pd.DataFrame(
            {"frame": [0, 0, 1], "x_nm": [50.0, 150.0, size * 50.0], "y_nm": [50.0, 350.0, size * 50.0]}
        )
        net = net.assign(z_nm=0.0, photons=2000.0, bg=50.0, prob=0.9, sigma_x_nm=15.0, sigma_y_nm=15.0)
        out = refine_gaussian(net, frames, np.arange(2), 100.0, None, EVERYWHERE)
        assert out[["x_nm", "y_nm"]].ge(0).all().all()
        assert out[["x_nm", "y_nm"]].le(size * 100.0).all().all()
