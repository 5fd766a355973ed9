"""Localization accuracy and tile/edge invariance of the predictor with a fixed-weight model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from _inference_helpers import IDEAL, PX, MatchedFilterModel, isolated_emitters, render_frames
from napari_var_emitter.checkpoints import LoadedModel
from napari_var_emitter.evaluation import evaluate
from napari_var_emitter.inference import Predictor
from napari_var_emitter.inference.tiling import forward_tiled

torch.set_num_threads(1)


def predictor(model, **kw):
    return Predictor(LoadedModel(model, model.config, IDEAL, PX, {}, None), device="cpu", **kw)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_isolated_emitters_found_at_right_nm_positions(scale):
    truth = isolated_emitters(6, (40, 48), per_frame=5, seed=scale)
    movie = render_frames(truth, 6, (40, 48), seed=scale)
    p = predictor(MatchedFilterModel(tile_size=24, margin=6), scale=scale, batch_size=4)
    table = p.predict(movie).table
    r = evaluate(table, truth, tolerance_nm=100.0)
    assert r["recall"] == 1.0 and r["precision"] == 1.0
    assert r["rmse_lat"] < 15.0
    assert abs(r["bias_x"]) < 5.0 and abs(r["bias_y"]) < 5.0
    assert r["photons_rel_error"] < 0.1
    assert table.attrs["pixel_size_nm"] == PX and table.attrs["frame_shape"] == [40, 48]


def test_same_emitter_same_localization_in_every_tile_position_and_at_edges():
    """One emitter pattern shifted across a tiled frame: the localization moves exactly with the shift."""
    h, w = 70, 90
    shifts = [(0, 0), (5, 13), (11, 26), (17, 41), (23, 58), (28, 3)]  # crosses tile cores and borders
    base = pd.DataFrame({"x_nm": [230.0, 1710.0], "y_nm": [260.0, 3420.0], "photons": [2500.0, 2500.0]})
    movie = render_frames(base.assign(frame=0), 1, (h, w), seed=5)  # one noisy frame ...
    frames = np.stack([np.roll(movie[0], s, axis=(0, 1)) for s in shifts])  # ... shifted with the emitters
    model = MatchedFilterModel(scales=(1, 4), tile_size=32, margin=8)
    tiled = predictor(model, scale=4, batch_size=3).predict(frames).table
    assert len(tiled) == 2 * len(shifts)
    rel = tiled.assign(
        x0=tiled.x_nm - np.array(shifts)[tiled.frame, 1] * PX,
        y0=tiled.y_nm - np.array(shifts)[tiled.frame, 0] * PX,
    ).sort_values(["frame", "y0"])
    for k in range(2):
        xs, ys = rel.x0.to_numpy()[k::2], rel.y0.to_numpy()[k::2]
        assert np.ptp(xs) < 1.0 and np.ptp(ys) < 1.0
    # tiling changes nothing for a local model: same table as whole-frame inference
    model.tile_size = None
    whole = predictor(model, scale=4, batch_size=6).predict(frames).table
    pd.testing.assert_frame_equal(tiled.reset_index(drop=True), whole.reset_index(drop=True), atol=1e-3)


def test_emitter_at_frame_edge_and_tiny_frames():
    truth = pd.DataFrame(
        {"frame": [0, 1], "x_nm": [160.0, 1140.0], "y_nm": [150.0, 1150.0], "photons": 3000.0}
    )
    movie = render_frames(truth, 2, (13, 13), seed=2)  # smaller than the tile: padded, then cropped
    model = MatchedFilterModel(tile_size=24, margin=6)
    table = predictor(model, scale=2).predict(movie).table
    r = evaluate(table, truth, tolerance_nm=100.0)
    assert r["tp"] == 2 and r["fp"] == 0
    assert r["rmse_lat"] < 40.0  # the fixed filter's window is truncated 1.5 px from the edge
    model.tile_size = None
    pd.testing.assert_frame_equal(table, predictor(model, scale=2).predict(movie).table)


def test_forward_passes_of_any_size_stitch_the_same_maps():
    """Tiles of several frames run in passes that split a tile's windows between two passes (7 windows per
    pass, 5 frames per tile) or whole frames in passes of 2: every map equals the one-pass result."""
    truth = isolated_emitters(5, (70, 90), per_frame=6, seed=9)
    x = torch.from_numpy(render_frames(truth, 5, (70, 90), seed=9)).float()[:, None]
    model = MatchedFilterModel(scales=(1, 2), tile_size=32, margin=8)
    kw = {"factors": (1, 2), "tile_size": 32, "margin": 8, "p_only": (1,)}
    one_pass = forward_tiled(model, x, max_batch=1000, **kw)
    split = forward_tiled(model, x, max_batch=7, **kw)
    whole = forward_tiled(model, x, max_batch=2, factors=(1, 2), p_only=(1,))
    assert one_pass[1].shape == (5, 1, 70, 90) and one_pass[2].shape[1:] == (model.n_channels, 140, 180)
    for f in (1, 2):
        assert torch.equal(split[f], one_pass[f])
        assert torch.allclose(whole[f], one_pass[f], atol=1e-4)
