"""napari sample data: the simulated movie and its ground truth overlay by the nm geometry rule."""

from __future__ import annotations

import numpy as np
import pytest

from napari_var_emitter.napari._sample_data import SAMPLE_CONFIG, simulated_movie


def test_layer_data_and_placement():
    (frames, img_kw, img_type), (points, pts_kw, pts_type) = simulated_movie()
    assert img_type == "image" and pts_type == "points"
    assert frames.shape == (300, 64, 64) and frames.dtype == np.uint16
    px = SAMPLE_CONFIG.pixel_size_nm
    assert img_kw["scale"] == (1.0, px, px) and img_kw["translate"] == (0.0, px / 2, px / 2)
    assert img_kw["metadata"]["pixel_size_nm"] == px and img_kw["metadata"]["camera"]["type"] == "scmos"
    features = pts_kw["features"]
    assert points.shape == (len(features), 3)
    world = points * np.asarray(pts_kw["scale"]) + np.asarray(pts_kw.get("translate", 0.0))
    np.testing.assert_allclose(world[:, 1:], features[["y_nm", "x_nm"]].to_numpy())
    np.testing.assert_allclose(world[:, 0], features["frame"].to_numpy())
    # the ground truth sits on its spot: background-subtracted centroid of the 5x5 window around each bright
    # emitter's pixel, in world coordinates (data index * scale + translate), matches its point
    feats = features[features["photons"] > 2500]
    t = feats["frame"].to_numpy()
    r = np.floor(feats["y_nm"].to_numpy() / px).astype(int)
    c = np.floor(feats["x_nm"].to_numpy() / px).astype(int)
    ok = (r > 2) & (r < 61) & (c > 2) & (c < 61)
    t, r, c, feats = t[ok], r[ok], c[ok], feats[ok]
    d = np.arange(-2, 3)
    win = frames[t[:, None, None], (r[:, None] + d)[:, :, None], (c[:, None] + d)[:, None, :]].astype(float)
    win = np.clip(win - np.median(frames[t].reshape(len(t), -1), axis=1)[:, None, None], 0, None)
    world_y = (r[:, None] + d) * img_kw["scale"][1] + img_kw["translate"][1]
    world_x = (c[:, None] + d) * img_kw["scale"][2] + img_kw["translate"][2]
    cy = (win.sum(2) * world_y).sum(1) / win.sum((1, 2))
    cx = (win.sum(1) * world_x).sum(1) / win.sum((1, 2))
    assert np.median(np.abs(cy - feats["y_nm"].to_numpy())) < 0.2 * px
    assert np.median(np.abs(cx - feats["x_nm"].to_numpy())) < 0.2 * px
    assert abs(np.median(cx - feats["x_nm"].to_numpy())) < 0.05 * px  # no half-pixel shift


def test_reproducible():
    a, b = simulated_movie(), simulated_movie()
    np.testing.assert_array_equal(a[0][0], b[0][0])


@pytest.mark.gui
def test_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-var-emitter", "simulated_movie")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Points"]
    image, points = layers
    np.testing.assert_allclose(image.scale, (1, 100, 100))
    assert len(points.features) == len(points.data) > 0
    # the frame axis starts at 0: the ground-truth markers do not reach into neighbouring frames
    assert viewer.dims.range[0].start == 0
    assert viewer.dims.axis_labels == ("frame", "y", "x")  # not napari's "-3", read as a frame number
    assert points.extent.world[0, 0] == 0
    assert points.size.max() * points.scale[0] / 2 <= 0.5  # a marker's reach along the frame axis
    np.testing.assert_allclose(
        points.data_to_world(points.data[0])[1:], points.features[["y_nm", "x_nm"]].iloc[0]
    )
