"""Camera model: ADU <-> photons, noise statistics, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_var_emitter.camera import CAMERA_PRESETS, CameraConfig, adu_to_photons, apply_camera, expected_adu
from napari_var_emitter.errors import ParameterError

CAMERAS = [CameraConfig.from_dict(p) for p in CAMERA_PRESETS.values()]


@pytest.mark.parametrize("camera", CAMERAS, ids=[c.type for c in CAMERAS])
def test_adu_to_photons_inverts_the_mean_exactly(camera):
    photons = np.array([0.0, 1.0, 17.5, 250.0, 3000.0])
    np.testing.assert_allclose(adu_to_photons(expected_adu(photons, camera), camera), photons, atol=1e-3)
    tensor = torch.tensor(photons, dtype=torch.float64)
    back = adu_to_photons(expected_adu(tensor, camera), camera)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), photons, atol=1e-2)


def test_adu_to_photons_is_design_formula_and_float32():
    cam = CameraConfig(type="emccd", qe=0.9, e_per_adu=45.0, em_gain=100.0, baseline=100.0)
    adu = np.array([[100, 150], [1100, 65535]], dtype=np.uint16)
    out = adu_to_photons(adu, cam)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (adu.astype(float) - 100) * 45 / 100 / 0.9, rtol=1e-6)


@pytest.mark.parametrize("camera", CAMERAS, ids=[c.type for c in CAMERAS])
def test_noisy_mean_matches_expected_adu(camera):
    photons = np.full((200, 50), 40.0)
    adu = apply_camera(photons, camera, rng=1)
    assert adu.dtype == np.uint16
    assert adu.mean() == pytest.approx(expected_adu(40.0, camera), rel=0.01)
    assert adu_to_photons(adu, camera).mean() == pytest.approx(40.0, rel=0.01)


def test_emccd_shows_excess_noise_factor_two():
    lam = 50.0
    em = CameraConfig(type="emccd", qe=1.0, em_gain=200.0, e_per_adu=1.0, baseline=1000.0, read_noise_e=0.0)
    ideal = CameraConfig(type="ideal", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=0.0)
    var_em = adu_to_photons(apply_camera(np.full(200_000, lam), em, rng=0), em).var()
    var_ideal = adu_to_photons(apply_camera(np.full(200_000, lam), ideal, rng=0), ideal).var()
    assert var_ideal == pytest.approx(lam, rel=0.03)
    assert var_em / var_ideal == pytest.approx(2.0, rel=0.05)


def test_scmos_read_noise_adds_variance():
    cam = CameraConfig(type="scmos", qe=1.0, e_per_adu=0.1, baseline=100.0, read_noise_e=3.0)
    photons = adu_to_photons(apply_camera(np.full(200_000, 20.0), cam, rng=0), cam)
    assert photons.var() == pytest.approx(20.0 + 9.0, rel=0.03)


def test_adu_clipped_to_bit_depth():
    cam = CameraConfig(type="ideal", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=0.0, bit_depth=12)
    adu = apply_camera(np.array([1e6, 0.0]), cam, rng=0)
    assert adu[0] == 4095 and adu[1] == 0


def test_same_rng_seed_same_noise():
    cam = CameraConfig()
    a = apply_camera(np.full((8, 8), 30.0), cam, rng=5)
    b = apply_camera(np.full((8, 8), 30.0), cam, rng=5)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"type": "cmos"}, "type"),
        ({"qe": 0.0}, "qe"),
        ({"qe": 1.5}, "qe"),
        ({"e_per_adu": -1}, "e_per_adu"),
        ({"baseline": -5}, "baseline"),
        ({"read_noise_e": -1}, "read_noise_e"),
        ({"type": "scmos", "em_gain": 100}, "em_gain"),
        ({"type": "emccd", "em_gain": 0.5}, "em_gain"),
        ({"type": "ideal", "read_noise_e": 2.0}, "read_noise_e"),
        ({"gain": 3}, "gain"),
    ],
)
def test_bad_camera_values_name_the_parameter(values, name):
    with pytest.raises(ParameterError, match=name):
        CameraConfig.from_dict(values)


def test_functions_accept_a_camera_dict():
    photons = adu_to_photons(np.array([300.0]), {"type": "scmos", "baseline": 100, "e_per_adu": 2, "qe": 1})
    np.testing.assert_allclose(photons, [400.0])
    with pytest.raises(ParameterError, match="qe"):
        adu_to_photons(np.array([1.0]), {"qe": 2})
