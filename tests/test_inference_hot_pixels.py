"""Hot pixels (bright on their own in every frame) are found, replaced by their neighbours' mean, and no
longer make the network report false emitters; clean movies and emitters that stay on are left alone."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_var_emitter import SimulationConfig, simulate
from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.inference import Predictor
from napari_var_emitter.inference.hot_pixels import find_hot_pixels, hot_pixels_of

CAMERA = CameraConfig(type="scmos", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=1.5)


def _spot(h, w, r, c, photons, sigma):
    yy, xx = np.mgrid[:h, :w]
    g = np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2))
    return photons * g / g.sum()


@pytest.mark.parametrize("seed", range(5))
def test_planted_hot_pixels_are_found_and_nothing_else(seed):
    rng = np.random.default_rng(seed)
    h, w, n = 40, 50, 32
    mean = np.full((h, w), 80.0)
    mean += _spot(h, w, 20, 25, 3000, 1.0) + _spot(h, w, 8, 40, 3000, 0.8)  # beads: on in every frame
    hot = [(0, 0), (0, 17), (13, 49), (30, 10), (39, 33)]  # corners and edges too
    for amp, (r, c) in zip([40, 100, 300, 1000, 3000], hot, strict=True):
        mean[r, c] += amp
    frames = rng.poisson(mean, size=(n, h, w)).astype(np.float32)
    found = hot_pixels_of(frames, CAMERA)
    assert sorted(zip(found.rows.tolist(), found.cols.tolist(), strict=True)) == hot


@pytest.mark.parametrize("seed", range(5))
def test_clean_background_has_no_hot_pixels(seed):
    frames = np.random.default_rng(seed).poisson(60.0, size=(5, 128, 128)).astype(np.float32)
    assert len(hot_pixels_of(frames, CAMERA)) == 0


def test_correction_is_the_mean_of_the_neighbours_that_are_not_hot():
    median = np.full((6, 6), 50.0)
    median[2, 2] = median[2, 3] = 800.0  # two hot pixels side by side are not told from a spot ...
    median[4, 0] = 900.0
    found = hot_pixels_of(np.repeat(median[None], 64, axis=0), CAMERA)
    assert list(zip(found.rows, found.cols, strict=True)) == [(4, 0)]  # ... the lone one is found
    frames = np.arange(2 * 36, dtype=np.float32).reshape(2, 6, 6)
    fixed = found.correct(frames.copy())
    for t in range(2):  # (4, 0)'s five neighbours inside the frame
        want = np.mean([frames[t, 3, 0], frames[t, 3, 1], frames[t, 4, 1], frames[t, 5, 0], frames[t, 5, 1]])
        assert fixed[t, 4, 0] == pytest.approx(want)
    fixed[:, 4, 0] = frames[:, 4, 0]
    np.testing.assert_array_equal(fixed, frames)  # nothing else changes


def test_the_bundled_model_ignores_hot_pixels():
    movie = simulate(SimulationConfig(density=1.0), n_frames=30, seed=3)
    camera = movie.config.camera
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(2, 62, 20), rng.integers(2, 62, 20)
    frames = movie.frames.astype(np.int64)
    frames[:, rows, cols] += 1000  # ~600 photons on top of each, in every frame
    frames = np.clip(frames, 0, 65535).astype(np.uint16)
    assert len(find_hot_pixels(movie.frames, camera)) == 0

    def run(data, **kw):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            result = Predictor(camera=camera, **kw).predict(data)
        return result.table, [str(w.message) for w in seen if "hot pixel" in str(w.message)]

    clean, notes = run(movie.frames)
    assert notes == [] and clean.attrs["hot_pixels_replaced"] == 0
    fixed, notes = run(frames)
    assert len(notes) == 1 and "20 hot pixel(s)" in notes[0]
    assert fixed.attrs["hot_pixels_replaced"] == 20
    kept, _ = run(frames, hot_pixels=False)
    # kept, the network reports false emitters on and around them (the reason for the correction)
    assert len(kept) > 1.3 * len(clean)
    assert abs(len(fixed) - len(clean)) <= 0.03 * len(clean)


def test_the_sample_reads_each_of_at_most_64_frames_once():
    import dask.array as da

    movie = np.random.default_rng(0).poisson(20, (500, 16, 16)).astype(np.uint16)
    counts = np.zeros(len(movie), int)

    def block(x, block_info=None):
        counts[block_info[0]["array-location"][0][0]] += 1
        return x

    lazy = da.from_array(movie, chunks=(1, 16, 16)).map_blocks(block, dtype=movie.dtype)
    assert len(find_hot_pixels(lazy, CAMERA)) == 0
    assert counts.max() == 1 and counts.sum() == 64 and counts[0] == counts[-1] == 1  # the whole movie
