"""Super-resolution rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_var_emitter.errors import ParameterError
from napari_var_emitter.rendering import render


def test_histogram_pixel_convention():
    df = pd.DataFrame(
        {"frame": [0, 0, 1, 2], "x_nm": [0.0, 9.99, 25.0, 25.0], "y_nm": [0.0, 5.0, 12.0, 12.0]}
    )
    r = render(df, pixel_size_nm=10.0, shape_nm=(40.0, 40.0))
    assert r.image.shape == (4, 4) and r.image.dtype == np.float32
    assert r.image[0, 0] == 2 and r.image[1, 2] == 2 and r.image.sum() == 4
    assert r.napari_scale == (10.0, 10.0) and r.napari_translate == (5.0, 5.0)
    assert render(df, 10.0, shape_nm=(40.0, 40.0), frames=(1, 2)).image.sum() == 1


def test_gaussian_fixed_and_per_localization_sigma():
    df = pd.DataFrame(
        {
            "frame": [0, 0],
            "x_nm": [205.0, 605.0],
            "y_nm": [205.0, 605.0],
            "sigma_x_nm": [10.0, 30.0],
            "sigma_y_nm": [10.0, 30.0],
        }
    )
    r = render(df, 10.0, "gaussian", shape_nm=(800.0, 800.0))
    assert r.image.sum() == pytest.approx(2.0, rel=1e-3)
    assert np.unravel_index(r.image.argmax(), r.image.shape) == (20, 20)
    # the wider Gaussian spreads its unit mass: lower peak, same total
    assert r.image[60, 60] < r.image[20, 20] / 4
    assert r.image[50:71, 50:71].sum() == pytest.approx(1.0, abs=0.01)
    fixed = render(df, 10.0, "gaussian", shape_nm=(800.0, 800.0), sigma_nm=20.0)
    assert fixed.image[20, 20] == pytest.approx(fixed.image[60, 60], rel=1e-4)


def test_bad_parameters():
    df = pd.DataFrame({"frame": [0], "x_nm": [1.0], "y_nm": [1.0]})
    with pytest.raises(ParameterError):
        render(df, 0.0)
    with pytest.raises(ParameterError, match="method"):
        render(df, 10.0, method="splat")
    with pytest.raises(ParameterError, match="y_nm"):
        render(df.drop(columns="y_nm"), 10.0)
