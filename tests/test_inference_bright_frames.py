"""A frame far brighter than the frames next to it (a flash, a saturated frame) is not the network's
context for its neighbours: their localizations stay what they are without it."""

from __future__ import annotations

import warnings

import numpy as np

from napari_var_emitter import SimulationConfig, simulate
from napari_var_emitter.inference import Predictor


def _run(frames, camera, **kw):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        table = Predictor(camera=camera, **kw).predict(frames).table
    counts = table.groupby("frame").size().reindex(range(len(frames)), fill_value=0).to_numpy()
    return counts, [str(w.message) for w in seen if "far brighter than the frames next" in str(w.message)]


def test_a_saturated_frame_leaves_its_neighbours_alone():
    movie = simulate(SimulationConfig(density=1.0), n_frames=12, seed=4)
    camera = movie.config.camera
    clean, notes = _run(movie.frames, camera)
    assert notes == []
    flashed = movie.frames.copy()
    flashed[5] = 65535  # saturated
    counts, notes = _run(flashed, camera)
    assert len(notes) == 1 and "frame(s) 5 " in notes[0]
    # its neighbours see the frame itself in its place, as at the movie's ends; before, hundreds to
    # thousands of false emitters there
    assert all(abs(int(counts[f]) - int(clean[f])) <= 0.2 * clean[f] + 2 for f in (4, 6))
    same, _ = _run(flashed, camera, batch_size=1)  # decided per frame and neighbour, not per batch
    np.testing.assert_array_equal(same, counts)


def test_ordinary_changes_of_brightness_are_context_as_before():
    movie = simulate(SimulationConfig(density=1.0), n_frames=8, seed=5)
    camera = movie.config.camera
    frames = movie.frames.astype(np.float64)
    base = camera.baseline
    frames[3] = (frames[3] - base) * 3 + base  # the laser turned up for a frame: not a flash
    frames[4] = (frames[4] - base) * 0.1 + base  # nearly dark
    _, notes = _run(np.clip(frames, 0, 65535).astype(np.uint16), camera)
    assert notes == []
