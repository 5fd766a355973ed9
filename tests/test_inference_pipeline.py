"""The predictor's two-stage pipeline (post-processing of batch k in a worker thread while batch k+1 runs
through the network): the same results as the sequential path, warnings in the caller's thread, prompt
cancellation, errors passed through as they are, and no worker thread left behind."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from _inference_helpers import IDEAL, PX, MatchedFilterModel, isolated_emitters, render_frames
from napari_var_emitter.checkpoints import LoadedModel
from napari_var_emitter.devices import denormals_flushed
from napari_var_emitter.inference import Predictor
from napari_var_emitter.inference import predictor as predictor_module
from napari_var_emitter.inference.pipeline import StageWorker
from napari_var_emitter.simulation import SimulationConfig, simulate

WORKER = "var-emitter-post"  # the name prefix of the pipeline's worker thread


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(WORKER)]


def matched_filter(**kw) -> Predictor:
    """A fixed-weight model with the PSF fit (and its PSF check) on, in batches of 3 frames."""
    model = MatchedFilterModel()
    kw = {"device": "cpu", "batch_size": 3, "refine": True} | kw
    return Predictor(LoadedModel(model, model.config, IDEAL, PX, {}, None), **kw)


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    """11 frames: batches of 3, 3, 3 and 2."""
    return render_frames(isolated_emitters(11, (32, 32), per_frame=5, seed=4), 11, (32, 32), seed=4)


@pytest.fixture(scope="module")
def elongated() -> np.ndarray:
    """16 frames of 16 isolated emitters whose PSF is 1.15 times wider in y (as in
    test_inference_two_emitters): about 8 spots a frame pass the PSF check's selection, so with 50 spots
    (``few_psf_spots``) the check concludes in the second batch of 4 frames and switches the test off."""
    rng = np.random.default_rng(9)
    grid = np.arange(800.0, 6400.0, 1600.0)
    gx, gy = (g.ravel() for g in np.meshgrid(grid, grid))
    n_frames, n = 16, 16 * len(gx)
    sigma = rng.uniform(100.0, 130.0, n)
    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n_frames), len(gx)),
            "x_nm": np.tile(gx, n_frames) + rng.uniform(-400.0, 400.0, n),
            "y_nm": np.tile(gy, n_frames) + rng.uniform(-400.0, 400.0, n),
            "photons": rng.uniform(1000.0, 5000.0, n),
            "sigma_x_nm": sigma,
            "sigma_y_nm": sigma * 1.15,
        }
    )
    cfg = SimulationConfig(background=(70.0, 70.0), camera={})
    return simulate(cfg, n_frames, seed=9, emitters=truth).frames


@pytest.fixture
def few_psf_spots(monkeypatch):
    monkeypatch.setattr(predictor_module, "PSF_CHECK_SPOTS", 50)


def test_pipelined_and_sequential_runs_give_the_same_tables_and_maps(movie):
    piped = matched_filter().predict(movie, scales=(1, 2))
    seq = matched_filter(pipeline=False).predict(movie, scales=(1, 2))
    assert piped.n_frames == seq.n_frames == 11 and not piped.cancelled
    assert len(seq.table) > 40
    pd.testing.assert_frame_equal(piped.table, seq.table)
    assert piped.table.attrs == seq.table.attrs
    for f in (1, 2):
        assert piped.maps[f].shape == (11, 32 * f, 32 * f)
        np.testing.assert_array_equal(piped.maps[f], seq.maps[f])
    batches = list(matched_filter().iter_batches(movie, scales=(2,)))
    assert [list(b.frames) for b in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10]]  # in order
    assert not workers()


def test_post_processing_runs_in_the_worker_in_inference_mode(movie, monkeypatch):
    seen = []
    original = predictor_module.fit_detections

    def spy(*args, **kwargs):
        seen.append((threading.current_thread().name, torch.is_inference_mode_enabled()))
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor_module, "fit_detections", spy)
    for _batch in matched_filter().iter_batches(movie):
        assert not torch.is_inference_mode_enabled()  # never held across the yield in the caller's thread
    assert len(seen) == 4
    assert all(name.startswith(WORKER) and inference for name, inference in seen)
    seen.clear()
    matched_filter(pipeline=False).predict(movie)
    assert seen == [(threading.current_thread().name, True)] * 4


def test_the_psf_check_switches_mid_run_with_the_same_result_and_warns_in_the_callers_thread(
    elongated, few_psf_spots, monkeypatch
):
    """The PSF check concludes in the second batch (of four), inside the worker; its warning is issued by the
    thread that runs the predictor (where the CLI's and napari's warning handlers are), and the table is the
    one of the sequential path."""
    threads = []
    original = warnings.warn

    def spy(message, *args, **kwargs):
        if "elongated" in str(message):
            threads.append(threading.current_thread())
        return original(message, *args, **kwargs)

    monkeypatch.setattr(predictor_module.warnings, "warn", spy)
    with pytest.warns(UserWarning, match="PSF looks elongated"):
        piped = Predictor(device="cpu", batch_size=4).predict(elongated)
    assert threads == [threading.current_thread()]
    with pytest.warns(UserWarning, match="PSF looks elongated"):
        seq = Predictor(device="cpu", batch_size=4, pipeline=False).predict(elongated)
    assert piped.table.attrs["two_emitter_test"] is False
    assert piped.warnings == seq.warnings and any("elongated" in w for w in piped.warnings)
    pd.testing.assert_frame_equal(piped.table, seq.table)


def test_a_dropped_batch_leaves_no_trace_in_the_psf_check(elongated, few_psf_spots, monkeypatch):
    """Cancelled after the first batch: the worker has checked the second batch's spots (enough to switch the
    test off), but that batch is dropped, so the run reports what the sequential run reports."""
    notes, second_checked = [], threading.Event()
    original = Predictor._check_psf

    def spy(self, *args):
        notes.append(original(self, *args))
        if len(notes) == 2:
            second_checked.set()
        return notes[-1]

    monkeypatch.setattr(Predictor, "_check_psf", spy)
    runs = []
    for pipeline in (True, False):
        stop = threading.Event()

        def progress(n, stop=stop, pipeline=pipeline):
            if pipeline:  # let the worker conclude the check on the second batch first
                assert second_checked.wait(60)
            stop.set()

        notes.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no elongation warning: no batch handed over used it
            res = Predictor(device="cpu", batch_size=4, pipeline=pipeline).predict(
                elongated, cancel=stop, progress=progress
            )
        runs.append((res, [n is not None for n in notes]))
    (piped, piped_notes), (seq, seq_notes) = runs
    assert piped_notes == [False, True] and seq_notes == [False]  # the worker did switch the test off
    assert piped.cancelled and piped.n_frames == seq.n_frames == 4
    assert piped.table.attrs["two_emitter_test"] is seq.table.attrs["two_emitter_test"] is True
    assert piped.warnings == seq.warnings == []
    pd.testing.assert_frame_equal(piped.table, seq.table)


@pytest.mark.parametrize("pipeline", [True, False])
def test_cancel_after_the_first_batch_stops_and_leaves_no_worker(movie, pipeline):
    stop = threading.Event()
    p = matched_filter(pipeline=pipeline)
    frames, located, alive = [], [], []
    for batch in p.iter_batches(movie, cancel=stop):
        frames.append(list(batch.frames))
        located.append(sorted(set(batch.table["frame"])))
        alive.append(len(workers()))
        stop.set()  # the user presses Cancel after the first batch
    # the first batch's last frame, held back for the next batch's, comes alone at the end
    assert frames == [[0, 1, 2], []] and located == [[0, 1], [2]]
    assert alive[0] == (1 if pipeline else 0)  # the worker was there, post-processing the second batch
    assert not workers()
    res = p.predict(movie, cancel=lambda: True)
    assert res.cancelled and res.n_frames == 0 and res.table.empty
    assert not workers()


@pytest.mark.parametrize("pipeline", [True, False])
@pytest.mark.parametrize("target", ["fit_detections", "localize"])
def test_an_error_in_post_processing_reaches_the_caller_as_it_is(movie, monkeypatch, pipeline, target):
    original = getattr(predictor_module, target)
    calls = []
    error = ValueError("bad value in the second batch")

    def faulty(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor_module, target, faulty)
    with pytest.raises(ValueError, match="bad value in the second batch") as info:
        matched_filter(pipeline=pipeline).predict(movie)
    assert info.value is error  # not wrapped
    assert len(calls) == 2  # no further batch was post-processed
    assert not workers()
    calls.clear()
    got = []
    with pytest.raises(ValueError):
        for batch in matched_filter(pipeline=pipeline).iter_batches(movie):
            got.append(list(batch.frames))
    assert got == [[0, 1, 2]]  # the batches before the error were handed over
    assert not workers()


def test_breaking_out_of_iter_batches_leaves_no_worker(movie):
    p = matched_filter()
    for batch in p.iter_batches(movie):
        assert list(batch.frames) == [0, 1, 2] and len(workers()) == 1
        break  # the generator is released (and closed) here
    assert not workers()
    batches = p.iter_batches(movie, scales=(2,))
    next(batches)
    next(batches)
    batches.close()  # the napari widget stops a run this way
    assert not workers()
    # the predictor runs again normally afterwards
    pd.testing.assert_frame_equal(p.predict(movie).table, matched_filter(pipeline=False).predict(movie).table)


def test_a_single_batch_runs_without_a_worker(movie, monkeypatch):
    started = []
    monkeypatch.setattr(predictor_module, "StageWorker", lambda: started.append(1))
    res = matched_filter(batch_size=16).predict(movie)
    assert res.n_frames == 11 and started == []


def test_stage_worker_runs_jobs_in_order_in_the_callers_float_mode_and_passes_errors_through():
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    worker = StageWorker()
    try:
        worker.submit(lambda: float(tiny * 1.0))
        with pytest.raises(RuntimeError, match="one job at a time"):
            worker.submit(lambda: None)
        assert worker.take() != 0.0  # IEEE floats, as in the caller's thread
        with denormals_flushed():
            worker.submit(lambda: float(tiny * 1.0))
        assert worker.take() == 0.0  # the caller flushes denormals: so does the job
        worker.submit(lambda: float(tiny * 1.0))
        assert worker.take() != 0.0
        error = KeyError("x")
        worker.submit(lambda: (_ for _ in ()).throw(error))
        with pytest.raises(KeyError) as info:
            worker.take()
        assert info.value is error
        release = threading.Event()
        worker.submit(release.wait, 10)
        assert worker.busy
        release.set()
    finally:
        assert worker.close() is True  # the pending job was dropped
    assert not workers()


def test_maps_for_the_first_frames_only_in_one_run(movie):
    """``map_frames``: the batches holding the first 4 frames come with maps, the rest without, and the table
    is that of a run without maps (one run: every frame keeps the frames around it for the fit's test)."""
    with_maps = list(matched_filter().iter_batches(movie, scales=(2,), map_frames=4))
    assert [sorted(b.maps) for b in with_maps] == [[2], [2], [], []]
    assert with_maps[1].maps[2].shape == (3, 64, 64)
    plain = matched_filter().predict(movie).table
    pd.testing.assert_frame_equal(pd.concat([b.table for b in with_maps], ignore_index=True), plain)
