"""Simulator statistics: density, photons, background, blinking, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from _simulation_helpers import IDEAL, one_emitter, small_config
from napari_var_emitter.simulation import EMITTER_COLUMNS, SimulatedMovie, movie_stream, simulate
from napari_var_emitter.simulation.psf import render


def test_output_types_and_columns():
    movie = simulate(small_config(), n_frames=20, seed=0)
    assert isinstance(movie, SimulatedMovie)
    assert movie.frames.shape == (20, 32, 32) and movie.frames.dtype == np.uint16
    assert movie.background.shape == (20,)
    assert list(movie.emitters.columns) == [c for c in EMITTER_COLUMNS if c != "crlb_z_nm"]
    assert movie.emitters["frame"].is_monotonic_increasing
    assert movie.emitters.attrs["pixel_size_nm"] == 100.0


@pytest.mark.parametrize("on_time", [0.5, 3.0])
def test_mean_emitters_per_frame_matches_density(on_time):
    cfg = small_config(frame_size=(64, 64), density=1.5, on_time_frames=on_time)
    n_frames = 2000
    movie = simulate(cfg, n_frames, seed=3, compute_crlb=False)
    per_frame = np.bincount(movie.emitters["frame"], minlength=n_frames)
    expected = 1.5 * cfg.area_um2  # 61.44 emitters per frame
    assert per_frame.mean() == pytest.approx(expected, rel=0.03)
    # steady state from the first frame on: the first and last 100 frames have the same mean count
    assert per_frame[:200].mean() == pytest.approx(expected, rel=0.08)
    assert per_frame[-200:].mean() == pytest.approx(expected, rel=0.08)


def test_blinking_spans_consecutive_frames_with_fractional_photons():
    cfg = small_config(photons=(1000.0, 1000.0), on_time_frames=3.0)
    em = simulate(cfg, 300, seed=1, compute_crlb=False).emitters
    assert em["photons"].max() <= 1000.0 + 1e-9
    on_frames = em.groupby("id")["frame"].agg(["min", "max", "count"])
    assert np.all(on_frames["max"] - on_frames["min"] + 1 == on_frames["count"])  # no gaps
    # mean emitted photons per emitter = flux * mean on-time (except emitters cut by the movie's ends)
    inner = on_frames[(on_frames["min"] > 0) & (on_frames["max"] < 299)].index
    total = em[em["id"].isin(inner)].groupby("id")["photons"].sum()
    assert total.mean() == pytest.approx(3000.0, rel=0.1)
    assert (em["photons"] < 999.0).mean() > 0.3  # partial frames exist
    # an emitter keeps its position across its frames
    assert em.groupby("id")["x_nm"].nunique().max() == 1


def test_noiseless_single_emitter_sums_to_its_photons():
    image = render(
        (1, 32, 32),
        np.array([0]),
        np.array([16.3]),
        np.array([10.7]),
        np.array([1.3]),
        np.array([1.3]),
        np.array([5000.0]),
    )
    assert image.sum() == pytest.approx(5000.0, rel=1e-4)
    # near the border the part outside the frame is lost: here exactly half in x
    edge = render(
        (1, 32, 32),
        np.array([0]),
        np.array([0.0]),
        np.array([16.0]),
        np.array([1.3]),
        np.array([1.3]),
        np.array([5000.0]),
    )
    assert edge.sum() == pytest.approx(2500.0, rel=1e-3)


def test_expected_image_is_photons_plus_background():
    cfg = small_config(background=(50.0, 50.0), camera=IDEAL)
    movie = simulate(cfg, 3, seed=0, emitters=one_emitter(1600.0, 1600.0, 4000.0), return_expected=True)
    assert movie.expected.sum(axis=(1, 2)) == pytest.approx(
        [4000.0 + 50.0 * 32 * 32, 50.0 * 1024, 50.0 * 1024]
    )
    assert movie.emitters["bg"].iloc[0] == pytest.approx(50.0)


def test_mean_background_matches():
    cfg = small_config(density=0.0, background=(30.0, 90.0))
    movie = simulate(cfg, 400, seed=2)
    photons = movie.photons()
    assert photons.mean() == pytest.approx(60.0, rel=0.03)
    np.testing.assert_allclose(photons.mean(axis=(1, 2)), movie.background, rtol=0.05)
    assert movie.background.min() >= 30.0 and movie.background.max() <= 90.0


def test_smooth_background_field():
    cfg = small_config(density=0.0, background=(50.0, 50.0), bg_field_amplitude=0.5, bg_field_scale_px=8)
    movie = simulate(cfg, 2, seed=0)
    assert movie.background.shape == (2, 32, 32)
    field = movie.background[0] / 50.0
    assert field.min() == pytest.approx(0.5, abs=0.01) or field.max() == pytest.approx(1.5, abs=0.01)
    assert np.abs(np.diff(field, axis=1)).max() < 0.25  # smooth


def test_photon_distribution_range():
    for dist in ("uniform", "loguniform"):
        cfg = small_config(photons=(500.0, 8000.0), photon_distribution=dist, on_time_frames=0.01)
        ph = simulate(cfg, 200, seed=0, compute_crlb=False).emitters["photons"]
        assert ph.max() <= 8000.0
    # loguniform has its median at the geometric mean of the full-frame fluxes; uniform at the mean


def test_mask_restricts_positions():
    cfg = small_config()
    mask = np.zeros((32, 32), bool)
    mask[:, :8] = True
    em = simulate(cfg, 200, seed=0, mask=mask, compute_crlb=False).emitters
    assert len(em) > 0 and em["x_nm"].max() < 800.0


def test_same_seed_same_movie_and_truth():
    cfg = small_config(psf={"kind": "astigmatic"}, camera={"type": "emccd", "em_gain": 50})
    a, b = simulate(cfg, 30, seed=7), simulate(cfg, 30, seed=7)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.emitters.equals(b.emitters)
    c = simulate(cfg, 30, seed=8)
    assert not np.array_equal(a.frames, c.frames)
    # the recorded seed reproduces the movie
    again = simulate(cfg, 30, seed=a.seed)
    np.testing.assert_array_equal(a.frames, again.frames)


def test_movie_stream_is_reproducible_and_varies():
    cfg = small_config()
    s1, s2 = movie_stream(cfg, 5, seed=(1, 0)), movie_stream(cfg, 5, seed=(1, 0))
    m1, m2 = next(s1), next(s1)
    assert not np.array_equal(m1.frames, m2.frames)
    np.testing.assert_array_equal(next(s2).frames, m1.frames)
    np.testing.assert_array_equal(simulate(cfg, 5, seed=m2.seed).frames, m2.frames)


def _fraction_with_partner(em, lo: float, hi: float) -> float:
    """Fraction of emitters with another one on in exactly the same frames at a distance in [lo, hi]."""
    by_id = em.groupby("id").agg(first=("frame", "min"), last=("frame", "max"), x=("x_nm", "first"),
                                 y=("y_nm", "first"))  # fmt: skip
    hits = 0
    for _, group in by_id.groupby(["first", "last"]):
        xy = group[["x", "y"]].to_numpy()
        d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        hits += int(((d >= lo - 1e-6) & (d <= hi + 1e-6)).any(axis=1).sum())
    return hits / len(by_id)


def test_partners_are_close_and_on_together():
    from napari_var_emitter.simulation import SimulationConfig

    cfg = SimulationConfig(
        frame_size=(64, 64), density=0.5, partner_fraction=0.5, partner_distance_nm=(40.0, 120.0)
    )
    paired = simulate(cfg, n_frames=60, seed=3, compute_crlb=False).emitters
    plain = simulate(
        cfg.model_copy(update={"partner_fraction": 0.0}), n_frames=60, seed=3, compute_crlb=False
    )
    assert len(paired) > 1.3 * len(plain.emitters)  # about half the emitters got a partner
    # an emitter and its partner count both: 2 q / (1 + q) = 2/3 of the emitters have one (a few fall outside)
    assert 0.55 < _fraction_with_partner(paired, 40.0, 120.0) < 0.75
    assert _fraction_with_partner(plain.emitters, 40.0, 120.0) < 0.05
