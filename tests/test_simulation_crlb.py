"""CRLB of the pixel-integrated Gaussian against Mortensen et al. 2010 (Nat. Methods 7, 377)."""

from __future__ import annotations

import numpy as np
import pytest

from _simulation_helpers import small_config
from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.simulation import crlb, crlb_gaussian_2d, simulate


def mortensen_mle_std(n, b, s, a=1.0):
    """Mortensen 2010 eq. (6) with its F(tau) ~ 1 + 4 tau + sqrt(2 tau / (1 + 4 tau)) (MLE, Poisson)."""
    sa2 = s**2 + a**2 / 12
    tau = 2 * np.pi * sa2 * b / (n * a**2)
    return np.sqrt(sa2 / n * (1 + 4 * tau + np.sqrt(2 * tau / (1 + 4 * tau))))


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("photons", [500.0, 2000.0, 10000.0])
@pytest.mark.parametrize("bg", [0.01, 1.0, 10.0, 100.0])
def test_matches_mortensen(sigma, photons, bg):
    assert crlb_gaussian_2d(photons, bg, sigma)[0] == pytest.approx(
        mortensen_mle_std(photons, bg, sigma), rel=0.03
    )


def test_limit_of_no_background_and_small_pixels_is_sigma_over_sqrt_n():
    # sigma = 8 px: pixels are small against the PSF; tiny background
    assert crlb_gaussian_2d(1e4, 1e-4, 8.0)[0] == pytest.approx(8.0 / 100.0, rel=0.02)


def test_emccd_excess_noise_scales_by_sqrt2_and_qe_by_sqrt_qe():
    em = CameraConfig(type="emccd", qe=1.0, em_gain=100.0, read_noise_e=0.0)
    ratio = crlb_gaussian_2d(2000.0, 20.0, 1.3, em) / crlb_gaussian_2d(2000.0, 20.0, 1.3)
    assert ratio[0] == pytest.approx(np.sqrt(2.0), rel=1e-6)
    half = CameraConfig(type="ideal", qe=0.5, read_noise_e=0.0)
    assert (crlb_gaussian_2d(2000.0, 20.0, 1.3, half) / crlb_gaussian_2d(2000.0, 20.0, 1.3))[
        0
    ] == pytest.approx(np.sqrt(2.0), rel=1e-6)


def test_read_noise_raises_the_bound():
    quiet = CameraConfig(type="scmos", qe=1.0, read_noise_e=0.0)
    noisy = CameraConfig(type="scmos", qe=1.0, read_noise_e=5.0)
    assert crlb_gaussian_2d(1000.0, 5.0, 1.3, noisy)[0] > 1.1 * crlb_gaussian_2d(1000.0, 5.0, 1.3, quiet)[0]


def test_vectorised_photons_bound_and_singular_cases():
    out = crlb(
        np.array([10.5, 10.5, -50.0]),
        np.array([10.5, 10.5, 10.0]),
        np.array([1000.0, 4000.0, 1000.0]),
        np.array([10.0, 10.0, 10.0]),
        np.full(3, 1.3),
        np.full(3, 1.3),
        frame_size=(21, 21),
    )
    assert out["x_px"][1] < out["x_px"][0]
    assert out["photons"][0] >= np.sqrt(1000.0)  # never better than Poisson
    assert np.isnan(out["x_px"][2])  # emitter outside the frame: no information


def test_simulated_crlb_columns_are_consistent():
    em = simulate(small_config(), 50, seed=0).emitters
    bright = em[(em["photons"] > 2000) & em["x_nm"].between(500, 2700) & em["y_nm"].between(500, 2700)]
    assert len(bright) > 10
    assert bright["crlb_x_nm"].between(1.0, 20.0).all()
    assert (em["crlb_photons"].dropna() > 0).all()
