"""One emitter or two (the PSF fit's model selection): close pairs seen as one spot are split, one emitter
seen twice is merged, isolated emitters stay whole, and the two-emitter model's derivatives are right."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from _models_helpers import tiny_var
from napari_var_emitter.camera import adu_to_photons
from napari_var_emitter.evaluation.matching import match
from napari_var_emitter.inference.frame_support import FrameSupport
from napari_var_emitter.inference.refine import RefineOptions, refine_gaussian
from napari_var_emitter.simulation import SimulationConfig, simulate

IDEAL = {"type": "ideal", "qe": 1.0, "e_per_adu": 1.0, "baseline": 100.0, "read_noise_e": 0.0}
OFF = RefineOptions(split_llr=0.0)


def _scenes(distance_nm: float, detections: str, n: int, seed: int):
    """``n`` single frames of two emitters ``distance_nm`` apart (one emitter at 0), 3,000 photons each on
    50 photons/px, and the 'network' table of each: one detection near the middle (``"one"``), one per
    emitter (``"each"``), or two detections 120 nm apart on one emitter (``"twice"``)."""
    cfg = SimulationConfig(
        frame_size=(24, 24),
        density=0.0,
        background=(50.0, 50.0),
        psf={"sigma_px": (1.15, 1.15)},
        camera=IDEAL,
    )
    rng = np.random.default_rng(seed)
    for _ in range(n):
        centre = 1200.0 + rng.uniform(-50, 50, 2)
        angle = rng.uniform(0, np.pi)
        half = np.array([np.cos(angle), np.sin(angle)]) * distance_nm / 2
        pos = np.stack([centre - half, centre + half]) if distance_nm > 0 else centre[None]
        truth = pd.DataFrame({"frame": 0, "x_nm": pos[:, 0], "y_nm": pos[:, 1], "photons": 3000.0})
        movie = simulate(cfg, 1, seed=int(rng.integers(1 << 30)), emitters=truth)
        if detections == "one":
            xy = centre[None] + rng.normal(0, 20, (1, 2))
        elif detections == "each":
            xy = pos + rng.normal(0, 20, pos.shape)
        else:
            xy = centre[None] + np.array([[-60.0, 0.0], [60.0, 0.0]])
        net = pd.DataFrame({"frame": 0, "x_nm": xy[:, 0], "y_nm": xy[:, 1], "z_nm": 0.0})
        net = net.assign(photons=3000.0 * len(pos) / len(xy), bg=50.0, prob=1.0)
        yield adu_to_photons(movie.frames, cfg.camera), net, movie.emitters, cfg.camera


def _outcome(out: pd.DataFrame, truth: pd.DataFrame, distance_nm: float) -> bool:
    """Every true emitter found, one localization each, within max(d / 2, 30 nm)."""
    m = match(out, truth, tolerance_nm=max(distance_nm / 2, 30.0))
    return len(out) == len(truth) == len(m.truth_index)


def test_a_pair_120nm_apart_detected_as_one_spot_is_split():
    resolved, before = [], []
    for frames, net, truth, cam in _scenes(120.0, "one", 30, seed=1):
        resolved.append(_outcome(refine_gaussian(net, frames, np.arange(1), 100.0, cam), truth, 120.0))
        before.append(len(refine_gaussian(net, frames, np.arange(1), 100.0, cam, OFF)))
    assert np.mean(resolved) >= 0.8
    assert set(before) == {1}  # without the test, one localization for the pair


def test_one_emitter_detected_twice_becomes_one():
    merged, before = [], []
    for frames, net, truth, cam in _scenes(0.0, "twice", 30, seed=2):
        merged.append(_outcome(refine_gaussian(net, frames, np.arange(1), 100.0, cam), truth, 0.0))
        before.append(_outcome(refine_gaussian(net, frames, np.arange(1), 100.0, cam, OFF), truth, 0.0))
    assert np.mean(merged) >= 0.75
    assert np.mean(merged) > np.mean(before) + 0.2


def test_a_pair_150nm_apart_detected_as_two_stays_two():
    kept = [
        _outcome(refine_gaussian(net, frames, np.arange(1), 100.0, cam), truth, 150.0)
        for frames, net, truth, cam in _scenes(150.0, "each", 20, seed=3)
    ]
    assert np.mean(kept) >= 0.9


def _true_count(truth: pd.DataFrame, shape: tuple[int, int]) -> torch.Tensor:
    """A perfect count head: (1, 3, H, W) probabilities of 0, 1, 2+ emitters per camera pixel (100 nm)."""
    n = np.zeros(shape, np.int64)
    np.add.at(n, ((truth.y_nm // 100).astype(int), (truth.x_nm // 100).astype(int)), 1)
    return torch.from_numpy(np.stack([np.minimum(n, 2) == k for k in range(3)])[None].astype(np.float32))


def test_where_the_count_head_sees_two_close_pairs_split_more_often():
    """80 nm pairs seen as one spot: where a count head sees both emitters (here a perfect one) the spot
    splits at a lower likelihood gain (``count_llr``, 2 here) and far more pairs are resolved."""
    opt = RefineOptions(count_llr=2.0)
    with_count, without = [], []
    for frames, net, truth, cam in _scenes(80.0, "one", 40, seed=5):
        count = _true_count(truth, frames.shape[-2:])
        out = refine_gaussian(net, frames, np.arange(1), 100.0, cam, opt, count=count)
        with_count.append(_outcome(out, truth, 80.0))
        without.append(_outcome(refine_gaussian(net, frames, np.arange(1), 100.0, cam, opt), truth, 80.0))
    assert np.mean(with_count) >= 0.4
    assert np.mean(with_count) >= np.mean(without) + 0.2


def test_where_the_count_head_sees_one_the_test_is_as_strict_as_without_it():
    for frames, net, truth, cam in _scenes(0.0, "one", 60, seed=6):
        count = _true_count(truth, frames.shape[-2:])
        opt = RefineOptions(count_llr=0.0)
        pd.testing.assert_frame_equal(
            refine_gaussian(net, frames, np.arange(1), 100.0, cam, opt, count=count),
            refine_gaussian(net, frames, np.arange(1), 100.0, cam, opt),
        )


def _grid_movie(ratio: float, n_frames: int, seed: int, jitter_nm: float = 400.0, photons=(1000.0, 5000.0)):
    """16 isolated emitters per frame (on a 1.6 um grid, each within ``jitter_nm`` of its grid point) whose
    PSF (1.0-1.3 px wide in x) is ``ratio`` times wider in y than in x, on the default sCMOS camera."""
    rng = np.random.default_rng(seed)
    grid = np.arange(800.0, 6400.0, 1600.0)
    gx, gy = (g.ravel() for g in np.meshgrid(grid, grid))
    n = n_frames * len(gx)
    sigma = rng.uniform(100.0, 130.0, n)
    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n_frames), len(gx)),
            "x_nm": np.tile(gx, n_frames) + rng.uniform(-jitter_nm, jitter_nm, n),
            "y_nm": np.tile(gy, n_frames) + rng.uniform(-jitter_nm, jitter_nm, n),
            "photons": rng.uniform(*photons, n),
            "sigma_x_nm": sigma,
            "sigma_y_nm": sigma * ratio,
        }
    )
    return simulate(SimulationConfig(background=(70.0, 70.0), camera={}), n_frames, seed=seed, emitters=truth)


def test_isolated_emitters_are_rarely_split():
    """1,600 isolated emitters of 2,000-5,000 photons, PSF widths 1.0-1.3 px, seeded at the truth: at most
    1 % come out as two."""
    movie = _grid_movie(1.0, 100, seed=6, jitter_nm=50.0, photons=(2000.0, 5000.0))
    truth = movie.emitters
    net = truth[["frame", "x_nm", "y_nm", "photons"]].assign(z_nm=0.0, bg=70.0, prob=1.0)
    frames = adu_to_photons(movie.frames, movie.config.camera)
    out = refine_gaussian(net, frames, np.arange(100), 100.0, movie.config.camera)
    assert len(truth) == 1600
    assert len(truth) <= len(out) <= 1.01 * len(truth)


def test_the_predictor_switches_the_test_and_says_so_in_the_table():
    from napari_var_emitter.inference import Predictor

    on, off = Predictor(device="cpu"), Predictor(device="cpu", split=False)
    assert on.refine and on.refine_options.split_llr > 0 and off.refine_options.split_llr == 0
    assert on.table_metadata(100.0, (8, 8), 1)["two_emitter_test"] is True
    assert off.table_metadata(100.0, (8, 8), 1)["two_emitter_test"] is False
    assert on.table_metadata(100.0, (8, 8), 1)["residual_search"] == on.refine_options.residual_density == 3.5
    assert off.table_metadata(100.0, (8, 8), 1)["residual_search"] is None


@pytest.mark.parametrize(("ratio", "low", "high"), [(1.0, 0.0, 0.015), (1.1, 0.05, 0.12)])
def test_psf_moments_tell_a_round_psf_from_an_elongated_one(ratio, low, high):
    from napari_var_emitter.inference.two_emitters import elongation, psf_moments

    movie = _grid_movie(ratio, 20, seed=8)
    table = movie.emitters.assign(bg=70.0)
    frames = adu_to_photons(movie.frames, movie.config.camera)
    q, pixels = psf_moments(table, frames, np.arange(20), 100.0)
    assert len(q) == len(pixels) >= 250
    length, z = elongation(q)
    assert low <= length <= high  # (1.1^2 - 1) / (1.1^2 + 1) = 0.095, less the box truncation
    assert (z > 5) == (ratio > 1)


def test_the_predictor_switches_the_test_off_for_an_elongated_psf():
    from napari_var_emitter.inference import Predictor

    round_psf, long_psf = _grid_movie(1.0, 40, seed=9), _grid_movie(1.15, 40, seed=9)
    on = Predictor(device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a round PSF
        result = on.predict(round_psf.frames)
    assert result.table.attrs["two_emitter_test"] is True
    with pytest.warns(UserWarning, match="PSF looks elongated"):
        result = on.predict(long_psf.frames)
    assert result.table.attrs["two_emitter_test"] is False
    assert any("elongated" in w for w in result.warnings)
    off = Predictor(device="cpu", split=False).predict(long_psf.frames).table
    pd.testing.assert_frame_equal(result.table, off, check_like=True)


def test_the_predictor_hands_the_count_heads_probabilities_to_the_fit(monkeypatch):
    """A model with a count head: its per-pixel probabilities reach the fit with the batch (and only while
    the test of one emitter against two is on); a model without one passes none."""
    from napari_var_emitter.inference import predictor as predictor_module
    from napari_var_emitter.models import build_model

    seen, supports = [], []

    def weigh_spy(spots, px, camera, opt, count=None):
        seen.append(None if count is None else tuple(count.shape))
        return None

    def decide_spy(spots, tests, px, camera, opt, support=None):
        supports.append(support)
        return spots.table

    monkeypatch.setattr(predictor_module, "weigh_spots", weigh_spy)
    monkeypatch.setattr(predictor_module, "decide_spots", decide_spy)
    movie = np.random.default_rng(0).poisson(60.0, (6, 32, 32)).astype(np.float32)
    torch.manual_seed(0)
    for count_head, split, expected in (
        (True, True, (3, 3, 32, 32)),
        (True, False, None),
        (False, True, None),
    ):
        model = build_model(tiny_var(n_frames=3, count_head=count_head))
        seen.clear()
        pred = predictor_module.Predictor(model, device="cpu", refine=True, split=split, batch_size=3)
        pred.predict(movie)
        assert seen == [expected, expected]
    # the batches of one run share the neighbouring frames' support; a new run starts afresh
    assert supports[-1] is supports[-2] and isinstance(supports[-1], FrameSupport)
    pred.predict(movie)
    assert supports[-1] is supports[-2] and supports[-1] is not supports[-3]
