"""Streaming over lazy stacks, cancellation, maps, neighbours, errors — with the real model classes."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import torch

from _inference_helpers import IDEAL, PX, MatchedFilterModel, isolated_emitters, render_frames
from napari_var_emitter.checkpoints import LoadedModel
from napari_var_emitter.errors import InputFileError, ParameterError
from napari_var_emitter.inference import Predictor
from napari_var_emitter.inference.hot_pixels import sample_indices
from napari_var_emitter.models import UNetConfig, VARConfig, build_model

torch.set_num_threads(1)

TINY_VAR = VARConfig(
    n_frames=3,
    token_strides=(4, 2),
    enc_channels=(8, 8, 8),
    embed_dim=16,
    depth=1,
    n_heads=1,
    head_channels=8,
    fine_channels=(4, 4, 4),
    tile_size=32,
    margin=8,
)


def loaded(model):
    return LoadedModel(model, model.config, IDEAL, PX, {}, None)


class GuardedStack:
    """A lazy-looking (T, H, W) array that refuses to hand out more than ``limit`` frames at once."""

    def __init__(self, data: np.ndarray, limit: int):
        self.data, self.limit, self.shape, self.dtype, self.ndim = data, limit, data.shape, data.dtype, 3
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, key):
        start, stop, _ = key.indices(self.shape[0])
        if stop - start > self.limit:
            raise AssertionError(f"asked for {stop - start} frames at once")
        self.reads.append((start, stop))
        return self.data[key]


def _batch_reads(guarded: GuardedStack) -> list[tuple[int, int]]:
    """The reads of the batches: after the run's sample (one frame at a time, spread over the whole movie,
    read before the first batch)."""
    sample = sample_indices(guarded.shape[0], guarded.shape[1:])
    assert guarded.reads[: len(sample)] == [(int(i), int(i) + 1) for i in sample]
    return guarded.reads[len(sample) :]


def counting_dask(data: np.ndarray):
    counts = np.zeros(len(data), int)

    def block(x, block_info=None):
        lo, hi = block_info[0]["array-location"][0]
        counts[lo:hi] += 1
        return x

    return da.from_array(data, chunks=(1, *data.shape[1:])).map_blocks(block, dtype=data.dtype), counts


def test_var_model_streams_dask_stack_without_materializing_it():
    model = build_model(TINY_VAR)
    movie = np.random.default_rng(0).poisson(20, (12, 40, 40)).astype(np.uint16)
    lazy, counts = counting_dask(movie)
    p = Predictor(loaded(model), device="cpu", batch_size=4, threshold=0.9)
    batches = list(p.iter_batches(lazy, scales=(1, 8)))
    assert [list(b.frames) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    # each frame is computed once for the run's sample (hot pixels, the typical brightness: all 12 frames
    # here), by its batch and, as a neighbour, at most by the next one
    counts -= np.isin(np.arange(len(movie)), sample_indices(len(movie), movie.shape[1:]))
    assert counts.max() <= 2 and counts.sum() <= len(movie) + 2 * (len(batches) - 1)
    for b in batches:
        assert b.maps[1].shape == (4, 40, 40) and b.maps[8].shape == (4, 320, 320)
        assert b.maps[8].dtype == np.float32 and 0 <= b.maps[8].min() and b.maps[8].max() <= 1


def test_batches_never_read_more_than_batch_plus_neighbours(monkeypatch):
    from napari_var_emitter.inference import streaming

    monkeypatch.setattr(streaming, "CHUNK_BYTES", 0)  # blocks of one batch: the smallest reads possible
    model = build_model(UNetConfig(n_frames=3, channels=(4, 8), sigma_channels=False))
    guarded = GuardedStack(np.random.default_rng(1).poisson(20, (10, 24, 24)).astype(np.uint16), limit=3 + 2)
    res = Predictor(loaded(model), device="cpu", batch_size=3).predict(guarded, frames=(2, 9))
    assert res.n_frames == 7 and not res.cancelled
    assert _batch_reads(guarded)[0] == (1, 6)  # frames 2..4 and their neighbours 1 and 5


def test_lazy_stacks_are_read_in_blocks_of_bounded_size_within_the_selection(monkeypatch):
    from napari_var_emitter.inference import streaming

    frame_bytes = 24 * 24 * 2
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 8 * frame_bytes)  # blocks of 8 frames
    model = build_model(UNetConfig(n_frames=3, channels=(4, 8), sigma_channels=False))
    data = np.random.default_rng(1).poisson(20, (40, 24, 24)).astype(np.uint16)
    guarded = GuardedStack(data, limit=8)
    p = Predictor(loaded(model), device="cpu", batch_size=3)
    res = p.predict(guarded, frames=(2, 30))
    assert res.n_frames == 28
    reads = _batch_reads(guarded)
    assert all(hi - lo <= 8 for lo, hi in reads) and len(reads) < 28 // 3
    assert min(lo for lo, _ in reads) == 1 and max(hi for _, hi in reads) == 31
    ref = Predictor(loaded(model), device="cpu", batch_size=3, prefetch=False).predict(data, frames=(2, 30))
    pd.testing.assert_frame_equal(res.table, ref.table)


def test_cancel_after_first_batch_keeps_its_results():
    truth = isolated_emitters(9, (24, 24), per_frame=2)
    movie = render_frames(truth, 9, (24, 24))
    stop = threading.Event()
    p = Predictor(loaded(MatchedFilterModel()), device="cpu", batch_size=3)
    seen = []

    def progress(n):
        seen.append(n)
        stop.set()  # the user presses Cancel after the first batch

    res = p.predict(movie, cancel=stop, progress=progress)
    assert res.cancelled and res.n_frames == 3 and seen == [3]
    assert set(res.table.frame) == {0, 1, 2} and len(res.table) == 6
    # a callable works too
    assert p.predict(movie, cancel=lambda: True).table.empty


def test_a_suspended_stream_leaves_grad_enabled_in_the_callers_thread():
    """A widget may cancel mid-stream on a pooled worker thread that trains next."""
    movie = render_frames(isolated_emitters(6, (24, 24)), 6, (24, 24))
    batches = Predictor(loaded(MatchedFilterModel()), device="cpu", batch_size=2).iter_batches(movie)
    next(batches)
    assert torch.is_grad_enabled()
    batches.close()


def test_edge_frames_are_replicated_for_3_frame_models():
    seen = []

    class Spy(MatchedFilterModel):
        def forward(self, x, teacher=None, teacher_prob=1.0, max_scale=None):
            seen.append(x.clone())
            return super().forward(x[:, 1:2])

    spy = Spy(scales=(1,))
    spy.n_frames = 3
    movie = np.arange(4)[:, None, None] * np.ones((4, 8, 8), np.uint16)
    Predictor(loaded(spy), device="cpu", batch_size=4).predict(movie)
    x = seen[0][:, :, 0, 0]
    assert x.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def test_input_errors():
    p = Predictor(loaded(build_model(UNetConfig(n_frames=3, channels=(4, 8)))), device="cpu")
    with pytest.raises(InputFileError, match="3 consecutive frames"):
        p.predict(np.zeros((1, 16, 16), np.uint16))
    with pytest.raises(InputFileError, match="file not found"):
        p.predict("/nonexistent/movie.tif")
    with pytest.raises(InputFileError, match="movie"):
        p.predict(np.zeros((2, 3, 16, 16)))
    with pytest.raises(ParameterError, match="frame range"):
        p.predict(np.zeros((4, 16, 16)), frames=(3, 9))
    with pytest.raises(ParameterError, match="NaN"):
        p.predict(np.full((4, 16, 16), np.nan, np.float32))
    with pytest.raises(ParameterError, match="scale"):
        p.predict(np.zeros((4, 16, 16)), scales=(8,))
    with pytest.raises(ParameterError, match="threshold"):
        Predictor(p.loaded, device="cpu", threshold=1.5)


def test_warns_when_data_unlike_training_data():
    model = MatchedFilterModel()
    lm = LoadedModel(
        model,
        model.config,
        IDEAL,
        PX,
        {"simulation": {"background": [5.0, 30.0], "photons": [1000.0, 5000.0]}},
        None,
    )
    movie = np.random.default_rng(2).poisson(900, (2, 16, 16)).astype(np.uint16)  # e.g. a forgotten baseline
    p = Predictor(lm, device="cpu")
    with pytest.warns(UserWarning, match="background"):
        res = p.predict(movie)
    assert any("background" in w for w in res.warnings)


def test_nan_frames_in_a_movie_file_are_reported_with_its_name(tmp_path):
    """The widget and the API get the file name too (not only the command line)."""
    from napari_var_emitter.io import write_stack

    frames = np.full((3, 16, 16), 120.0, np.float32)
    frames[1, 4, 4] = np.nan
    path = write_stack(tmp_path / "nan.ome.tif", frames, 100.0) or tmp_path / "nan.ome.tif"
    p = Predictor(loaded(build_model(UNetConfig(n_frames=3, channels=(4, 8)))), device="cpu")
    with pytest.raises(InputFileError, match=r"nan\.ome\.tif.*NaN"):
        p.predict(path)


def test_mixed_precision_is_off_on_the_cpu_by_default_and_runs_when_asked():
    model = build_model(UNetConfig(n_frames=1, channels=(4, 8), sigma_channels=False))
    movie = np.random.default_rng(3).poisson(20, (4, 24, 24)).astype(np.uint16)
    assert not Predictor(loaded(model), device="cpu").amp
    p = Predictor(loaded(model), device="cpu", amp=True)  # bfloat16 autocast on the CPU
    res = p.predict(movie, scales=(1,))
    assert p.amp and res.n_frames == 4 and res.maps[1].dtype == np.float32
    assert all(res.table[c].dtype == np.float32 for c in ("x_nm", "y_nm", "photons"))
