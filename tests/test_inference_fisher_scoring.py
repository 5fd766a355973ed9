"""The compiled Fisher scoring of the PSF fit: its model and Fisher information are those of a
pixel-integrated Gaussian (checked against a finite-difference Jacobian), its steps reach the true spot on
noiseless data, and its neighbour model draws the neighbours' spots where they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_var_emitter.camera import CameraConfig, pixel_variance
from napari_var_emitter.inference.fisher_scoring import (
    StepBounds,
    information,
    neighbour_spots,
    scoring_steps,
    variance_coefficients,
)
from napari_var_emitter.inference.gaussian_psf import profile

BOX = 7
EMCCD = CameraConfig(type="emccd", em_gain=100.0, read_noise_e=20.0, spurious_charge=0.01, qe=0.9)
ONE = np.array([[2.7, 3.2, 2500.0, 60.0, 1.1]])
TWO = np.array([[2.7, 3.2, 2500.0, 3.9, 3.6, 1500.0, 60.0, 1.1, 1.3]])
FIT = StepBounds(1e-3, (0.5, 3.0), step_clip=0.5)


def _spot(x: float, y: float, n: float, s: float) -> np.ndarray:
    """A spot drawn independently of the kernels (torch pixel integrals), flattened row-major."""
    k = torch.arange(BOX, dtype=torch.float64)[None, :]
    ex = profile(k, torch.tensor([[x]], dtype=torch.float64), torch.tensor([[s]], dtype=torch.float64))[0]
    ey = profile(k, torch.tensor([[y]], dtype=torch.float64), torch.tensor([[s]], dtype=torch.float64))[0]
    return (n * ey[0, :, None] * ex[0, None, :]).reshape(-1).numpy()


def _model(theta: np.ndarray) -> np.ndarray:
    if theta.shape[1] == 5:
        x, y, n, bg, s = theta[0]
        return bg + _spot(x, y, n, s)
    x1, y1, n1, x2, y2, n2, bg, s1, s2 = theta[0]
    return bg + _spot(x1, y1, n1, s1) + _spot(x2, y2, n2, s2)


@pytest.mark.parametrize("theta", [ONE, TWO], ids=["one emitter", "two emitters"])
@pytest.mark.parametrize("camera", [None, EMCCD], ids=["shot noise", "EMCCD"])
def test_model_and_fisher_information_match_a_finite_difference_jacobian(theta, camera):
    rest = np.full((1, BOX * BOX), 3.0)
    fisher, mu = information(theta, rest, BOX, camera)
    np.testing.assert_allclose(mu[0], _model(theta) + 3.0, rtol=1e-10)
    jac = np.empty((theta.shape[1], BOX * BOX))
    for k in range(theta.shape[1]):
        eps = 1e-5 * max(1.0, abs(theta[0, k]))
        up, down = theta.copy(), theta.copy()
        up[0, k] += eps
        down[0, k] -= eps
        jac[k] = (_model(up) - _model(down)) / (2 * eps)
    expected = (jac / pixel_variance(mu[0], camera)) @ jac.T
    np.testing.assert_allclose(fisher[0], expected, rtol=1e-5, atol=1e-9 * np.abs(expected).max())


def test_the_variance_is_the_cameras():
    a, b = variance_coefficients(EMCCD)
    mu = np.array([0.5, 10.0, 1000.0])
    np.testing.assert_allclose(a * mu + b, pixel_variance(mu, EMCCD))
    assert variance_coefficients(None) == (1.0, 0.0)


@pytest.mark.parametrize("theta", [ONE, TWO], ids=["one emitter", "two emitters"])
def test_steps_reach_the_true_spot_on_noiseless_data(theta):
    d = _model(theta)[None, :]
    start = theta.copy()
    start[0, [0, 1]] += [0.3, -0.25]  # a seed off by about a third of a pixel
    if theta.shape[1] == 9:
        start[0, [3, 4]] += [-0.2, 0.2]
    start[0, 2] *= 0.7
    fitted = scoring_steps(start, d, np.zeros_like(d), BOX, None, 20, FIT)
    np.testing.assert_allclose(fitted, theta, rtol=1e-4, atol=1e-4)


def test_steps_are_bounded_as_asked():
    d = _model(ONE)[None, :]
    start = ONE.copy()
    start[0, 0] += 1.5
    one = scoring_steps(start, d, np.zeros_like(d), BOX, None, 1, FIT)
    assert abs(one[0, 0] - start[0, 0]) <= 0.5 + 1e-12  # a step moves at most step_clip
    inside = StepBounds(1e-3, (0.5, 3.0), step_clip=0.5, position_range=(-1.0, 3.5))
    far = scoring_steps(start, d, np.zeros_like(d), BOX, None, 1, inside)
    assert far[0, 0] <= 3.5
    dark = scoring_steps(ONE, np.full_like(d, ONE[0, 3]), np.zeros_like(d), BOX, None, 1, FIT)
    assert dark[0, 2] >= 0.2 * ONE[0, 2]  # photons fall at most to a fifth per step


def test_a_box_of_nan_takes_no_step():
    d = np.full((1, BOX * BOX), np.nan)
    np.testing.assert_array_equal(scoring_steps(ONE, d, np.zeros_like(d), BOX, None, 3, FIT), ONE)


def test_a_parameter_count_other_than_five_or_nine_is_refused():
    with pytest.raises(ValueError, match="5 .* or 9"):
        information(np.zeros((1, 4)), np.zeros((1, BOX * BOX)), BOX, None)


def test_neighbour_spots_draws_each_neighbour_where_it_is():
    # three boxes; box 0 has neighbours 1 and 2, box 2 has neighbour 0, box 1 none; corners in pixels
    corner = np.array([[10, 10], [13, 8], [5, 12]])
    theta = np.array(
        [[3.1, 2.8, 2000.0, 50.0, 1.2], [2.5, 3.6, 1500.0, 40.0, 1.0], [4.2, 1.9, 900.0, 45.0, 1.4]]
    )
    pairs = np.array([[0, 1], [0, 2], [2, 0]])
    ptr = np.array([0, 2, 2, 3])
    offset = corner[pairs[:, 0]] - corner[pairs[:, 1]]
    use = np.array([True, True, True])
    got = neighbour_spots(theta, ptr, pairs[:, 1], offset, use, BOX)

    def drawn(i, j):  # neighbour j's spot in box i's frame
        dx, dy = corner[j] - corner[i]
        return _spot(theta[j, 0] + dx, theta[j, 1] + dy, theta[j, 2], theta[j, 4])

    np.testing.assert_allclose(got[0], drawn(0, 1) + drawn(0, 2), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got[1], 0.0)
    np.testing.assert_allclose(got[2], drawn(2, 0), rtol=1e-5, atol=1e-3)
    use[1] = False  # neighbour 2 no longer modelled in box 0
    np.testing.assert_allclose(
        neighbour_spots(theta, ptr, pairs[:, 1], offset, use, BOX)[0], drawn(0, 1), rtol=1e-5, atol=1e-3
    )


def test_the_kernels_compile_where_numba_has_no_writable_cache(monkeypatch):
    """A read-only install with a read-only home: numba finds no folder for its cache, and the fit still
    runs (compiled in the process, not cached)."""
    from numba.core import caching

    from napari_var_emitter.inference import fisher_scoring

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    fisher_scoring._kernels.cache_clear()
    try:
        fisher, mu = information(ONE[:, :5], np.zeros((1, 25)), 5, None)  # a box size not compiled yet
        assert fisher.shape == (1, 5, 5) and np.isfinite(fisher).all() and mu.shape == (1, 25)
    finally:
        fisher_scoring._kernels.cache_clear()
