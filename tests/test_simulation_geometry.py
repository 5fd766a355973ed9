"""Simulator geometry: the nm coordinate rule (pixel centres at (c + 0.5) * px) and the astigmatic PSF."""

from __future__ import annotations

import numpy as np
import pytest

from _simulation_helpers import IDEAL, one_emitter, small_config
from napari_var_emitter.simulation import PSFConfig, simulate
from napari_var_emitter.simulation.psf import astigmatic_sigmas


@pytest.mark.parametrize(
    ("x_nm", "y_nm", "row", "col"), [(1050.0, 2050.0, 20, 10), (1199.0, 301.0, 3, 11), (50.0, 3150.0, 31, 0)]
)
def test_brightest_pixel_follows_the_coordinate_rule(x_nm, y_nm, row, col):
    # pixel (r, c) spans x in [c * px, (c + 1) * px) and y in [r * px, (r + 1) * px); centre (c + 0.5) * px
    cfg = small_config(background=(0.0, 0.0), camera=IDEAL)
    movie = simulate(cfg, 1, seed=0, emitters=one_emitter(x_nm, y_nm), return_expected=True)
    r, c = np.unravel_index(np.argmax(movie.expected[0]), (32, 32))
    assert (r, c) == (row, col)


def test_noisy_frame_peak_in_the_emitter_pixel():
    cfg = small_config(background=(10.0, 10.0))
    noisy = simulate(cfg, 1, seed=0, emitters=one_emitter(1050.0, 2050.0, photons=50_000.0)).frames[0]
    assert np.unravel_index(np.argmax(noisy), (32, 32)) == (20, 10)


def test_centroid_equals_the_nm_position():
    cfg = small_config(background=(0.0, 0.0), camera=IDEAL)
    x_nm, y_nm = 1234.0, 1876.0
    img = simulate(cfg, 1, seed=0, emitters=one_emitter(x_nm, y_nm), return_expected=True).expected[0]
    rows, cols = np.mgrid[:32, :32]
    px = 100.0
    assert ((cols + 0.5) * px * img).sum() / img.sum() == pytest.approx(x_nm, abs=0.5)
    assert ((rows + 0.5) * px * img).sum() / img.sum() == pytest.approx(y_nm, abs=0.5)


def test_astigmatic_sigma_x_above_sigma_y_on_one_side_of_focus_only():
    psf = PSFConfig(kind="astigmatic", sigma0_px=1.2, focal_offset_nm=300.0, depth_nm=400.0)
    sx, sy = astigmatic_sigmas(np.array([-400.0, 0.0, 400.0]), psf)
    assert sx[0] > sy[0] and sx[2] < sy[2]
    assert sx[1] == pytest.approx(sy[1])
    assert min(sx.min(), sy.min()) >= 1.2


@pytest.mark.parametrize("z", [-400.0, 400.0])
def test_astigmatic_image_is_elongated_along_the_wider_axis(z):
    cfg = small_config(background=(0.0, 0.0), camera=IDEAL, psf={"kind": "astigmatic"})
    movie = simulate(cfg, 1, seed=0, emitters=one_emitter(1650.0, 1650.0, z_nm=z), return_expected=True)
    img = movie.expected[0]
    rows, cols = np.mgrid[:32, :32]
    var_x = (img * (cols + 0.5 - 16.5) ** 2).sum() / img.sum()  # pixel centres at c + 0.5
    var_y = (img * (rows + 0.5 - 16.5) ** 2).sum() / img.sum()
    em = movie.emitters.iloc[0]
    assert (var_x > var_y) == (em["sigma_x_nm"] > em["sigma_y_nm"]) == (z < 0)
    # pixel integration adds 1/12 px^2 to the variance of the continuous Gaussian
    assert var_x == pytest.approx((em["sigma_x_nm"] / 100.0) ** 2 + 1 / 12, rel=0.02)


def test_astigmatic_movies_have_z_and_its_crlb():
    cfg = small_config(psf={"kind": "astigmatic"}, z_range_nm=(-600.0, 600.0))
    em = simulate(cfg, 50, seed=0).emitters
    assert em["z_nm"].between(-600, 600).all() and em["z_nm"].std() > 200
    assert "crlb_z_nm" in em and np.nanmedian(em["crlb_z_nm"]) > np.nanmedian(em["crlb_x_nm"])


def test_gaussian_psf_sigma_range_and_z_zero():
    cfg = small_config(psf={"kind": "gaussian", "sigma_px": (1.1, 1.6)})
    em = simulate(cfg, 50, seed=0, compute_crlb=False).emitters
    assert (em["z_nm"] == 0).all()
    assert em["sigma_x_nm"].between(110, 160).all() and (em["sigma_x_nm"] == em["sigma_y_nm"]).all()
