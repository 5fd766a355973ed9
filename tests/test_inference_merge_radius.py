"""The merge radius of the PSF fit: smaller where localizations are crowded, so two emitters closer than
a pixel survive there, while a sparse spot found twice is still one localization."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_var_emitter.camera import adu_to_photons
from napari_var_emitter.evaluation.matching import match
from napari_var_emitter.inference.local_density import MergeRadius
from napari_var_emitter.inference.neighbours import close_pairs
from napari_var_emitter.inference.refine import RefineOptions, refine_gaussian
from napari_var_emitter.simulation import SimulationConfig, simulate

IDEAL = {"type": "ideal", "qe": 1.0, "e_per_adu": 1.0, "baseline": 100.0, "read_noise_e": 0.0}
DENSE = RefineOptions(merge_px=0.6, merge_dense_px=0.3, merge_density=8.0)
FIXED = RefineOptions(merge_px=0.6, merge_density=None)


def test_the_radius_is_the_dense_one_only_where_localizations_are_crowded():
    g = np.arange(5.0, 36.0, 3.0)  # 3 px apart: 11 per µm² at 100 nm pixels
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    x = np.concatenate([gx, [20.0, 20.4]])
    y = np.concatenate([gy, [20.0, 20.0]])
    b = np.concatenate([np.zeros(len(gx), np.int64), [1, 1]])  # frame 1: one lone spot found twice
    radius = MergeRadius(b, x, y, (2, 40, 40), 100.0, DENSE).own()
    centre = (np.abs(gx - 20) < 8) & (np.abs(gy - 20) < 8)
    assert np.all(radius[: len(gx)][centre] == 0.3)
    assert np.all(radius[len(gx) :] == 0.6)
    assert np.all(MergeRadius(b, x, y, (2, 40, 40), 100.0, FIXED).own() == 0.6)
    # at points that are not localizations: inside the grid, and in the sparse frame
    at = MergeRadius(b, x, y, (2, 40, 40), 100.0, DENSE).at(
        np.array([0, 1]), np.array([20.5, 3.0]), np.array([20.5, 3.0])
    )
    np.testing.assert_array_equal(at, [0.3, 0.6])


def test_a_pair_is_close_only_within_the_smaller_of_its_two_radii():
    x, y, b = np.array([0.0, 0.45, 5.0]), np.zeros(3), np.zeros(3, np.int64)
    assert close_pairs(b, x, y, np.array([0.6, 0.6, 0.6])).tolist() == [[0, 1]]
    assert len(close_pairs(b, x, y, np.array([0.6, 0.3, 0.6]))) == 0


def _crowded_pairs(n_frames: int, seed: int):
    """40 x 40 px frames holding 3,000-photon emitters 3 px apart (11 per µm²); every other one has a
    partner 45 nm away, also listed by the 'network'. Returns the frames (photons), the table and the
    emitters."""
    cfg = SimulationConfig(frame_size=(40, 40), density=0.0, background=(50.0, 50.0), camera=IDEAL)
    cfg = cfg.model_copy(update={"psf": cfg.psf.model_copy(update={"sigma_px": (1.15, 1.15)})})
    rng = np.random.default_rng(seed)
    g = np.arange(4.0, 37.0, 3.0)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    rows = []
    for f in range(n_frames):
        x, y = gx + rng.uniform(-0.3, 0.3, gx.size), gy + rng.uniform(-0.3, 0.3, gy.size)
        angle = rng.uniform(0, 2 * np.pi, len(x[::2]))
        px, py = x[::2] + 0.45 * np.cos(angle), y[::2] + 0.45 * np.sin(angle)
        rows.append(pd.DataFrame({"frame": f, "x_nm": np.r_[x, px] * 100, "y_nm": np.r_[y, py] * 100}))
    truth = pd.concat(rows, ignore_index=True).assign(photons=3000.0)
    movie = simulate(cfg, n_frames, seed=seed, emitters=truth)
    net = truth.assign(z_nm=0.0, bg=50.0, prob=0.9, sigma_x_nm=10.0, sigma_y_nm=10.0)
    return adu_to_photons(movie.frames, cfg.camera), net, truth


def _recall(out: pd.DataFrame, truth: pd.DataFrame) -> float:
    return match(out, truth, tolerance_nm=30.0).tp / len(truth)


def test_emitters_45_nm_apart_survive_where_crowded():
    """With a fixed 0.6 px radius one of each pair is merged away; with the dense radius both stay."""
    frames, net, truth = _crowded_pairs(3, seed=1)
    ids = np.arange(len(frames))
    fixed = _recall(refine_gaussian(net, frames, ids, 100.0, None, FIXED), truth)
    dense = _recall(refine_gaussian(net, frames, ids, 100.0, None, DENSE), truth)
    assert fixed < 0.75
    assert dense > fixed + 0.15


def test_the_table_says_which_merge_radius_was_used():
    from napari_var_emitter.inference import Predictor

    meta = Predictor(device="cpu").table_metadata(100.0, (8, 8), 1)
    assert meta["merge_radius"] == {"px": 0.6, "dense_px": 0.3, "dense_above_per_um2": 8.0}
    assert Predictor(device="cpu", refine=False).table_metadata(100.0, (8, 8), 1)["merge_radius"] is None
