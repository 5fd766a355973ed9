"""Filtering by a safe condition on the table's columns, and the FRC resolution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _postprocessing_helpers import still_table
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.postprocessing import filter_ranges, filter_table, frc_resolution


@pytest.fixture
def table():
    t = pd.DataFrame(
        {
            "frame": np.arange(6),
            "x_nm": np.arange(6) * 10.0,
            "y_nm": 5.0,
            "photons": [100.0, 600, 700, 2000, 50, np.nan],
            "sigma_x_nm": [10.0, 20, 40, 25, 5, 5],
        }
    )
    t.attrs["pixel_size_nm"] = 100.0
    return t


def test_filter_keeps_matching_rows(table):
    out = filter_table(table, "photons > 500 and sigma_x_nm < 30")
    assert list(out["frame"]) == [1, 3]
    assert out.attrs["pixel_size_nm"] == 100.0
    assert list(filter_table(table, "100 <= photons < 1000 or frame == 5")["frame"]) == [0, 1, 2, 5]
    # NaN photons: "photons > 500" is False, so "not" keeps the row
    assert list(filter_table(table, "not (photons > 500) & (x_nm * 2 >= 20)")["frame"]) == [4, 5]
    assert list(filter_table(table, "frame in [0, 2]")["frame"]) == [0, 2]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("photon > 500", "unknown column 'photon' (did you mean 'photons'?)"),
        ("__import__('os').system('true')", "call not allowed"),
        ("photons.mean() > 1", "call not allowed"),
        ("x_nm[0] > 1", "subscript not allowed"),
        ("@limit > 1", "cannot parse"),
        ("photons >", "cannot parse"),
        ("", "empty"),
        ("photons + 1", "not a condition"),
    ],
)
def test_filter_refuses_unsafe_or_wrong_conditions(table, where, message):
    with pytest.raises(ParameterError, match="filter condition" if where else "empty") as info:
        filter_table(table, where)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_filter_ranges(table):
    out = filter_ranges(table, {"photons": (100, 1000), "sigma_x_nm": (0, 30)})
    assert list(out["frame"]) == [0, 1]
    with pytest.raises(ParameterError, match="unknown column"):
        filter_ranges(table, {"nope": (0, 1)})


def test_frc_resolution_grows_when_noise_doubles():
    fine = frc_resolution(still_table(seed=20, precision_nm=8.0), pixel_nm=5.0)
    coarse = frc_resolution(still_table(seed=20, precision_nm=16.0), pixel_nm=5.0)
    assert np.isfinite(fine.resolution_nm) and np.isfinite(coarse.resolution_nm)
    assert coarse.resolution_nm > 1.3 * fine.resolution_nm
    assert 10 < fine.resolution_nm < 100
    assert fine.frc[1] > 0.5 and fine.threshold == pytest.approx(1 / 7)


def test_frc_needs_enough_localizations():
    t = pd.DataFrame({"x_nm": np.arange(20.0), "y_nm": np.arange(20.0)})
    with pytest.raises(ParameterError, match="at least"):
        frc_resolution(t)
