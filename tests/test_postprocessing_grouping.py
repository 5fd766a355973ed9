"""Grouping of the localizations of one on-event, and inverse-variance merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _postprocessing_helpers import still_table
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.postprocessing import group_localizations
from napari_var_emitter.postprocessing.synthetic import true_events


def _rms_error(t: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((t.x_nm - t.x_true_nm) ** 2 + (t.y_nm - t.y_true_nm) ** 2)))


@pytest.mark.parametrize("max_dark", [0, 1, 2])
def test_groups_match_on_events_and_reduce_error(max_dark):
    table = still_table()
    grouped = group_localizations(table, max_dark=max_dark)
    events = true_events(table, max_dark)
    assert len(table) > 2 * events  # several frames per event: grouping has work to do
    assert abs(len(grouped) - events) <= 0.15 * events
    assert _rms_error(grouped) < _rms_error(table)
    assert grouped["n_frames"].sum() == len(table)
    assert grouped["photons"].sum() == pytest.approx(table["photons"].sum())


def test_merge_is_inverse_variance_weighted():
    table = pd.DataFrame(
        {
            "frame": [3, 4, 6, 40],
            "x_nm": [100.0, 110.0, 104.0, 100.0],
            "y_nm": [200.0, 200.0, 206.0, 200.0],
            "photons": [1000.0, 500.0, 300.0, 800.0],
            "sigma_x_nm": [5.0, 10.0, 10.0, 5.0],
            "sigma_y_nm": [5.0, 10.0, 10.0, 5.0],
            "label": ["a", "b", "c", "d"],
        }
    )
    g = group_localizations(table, radius_nm=20.0, max_dark=1)
    assert len(g) == 2
    first = g.iloc[0]
    w = np.array([1 / 25, 1 / 100, 1 / 100])
    assert first["x_nm"] == pytest.approx(np.sum(w * [100, 110, 104]) / w.sum())
    assert first["y_nm"] == pytest.approx(np.sum(w * [200, 200, 206]) / w.sum())
    assert first["sigma_x_nm"] == pytest.approx(1 / np.sqrt(w.sum()))
    assert first["photons"] == pytest.approx(1800.0)
    assert (first["frame"], first["n_frames"], first["label"]) == (3, 3, "a")
    assert (g.iloc[1]["frame"], g.iloc[1]["n_frames"]) == (40, 1)


def test_dark_gap_longer_than_max_dark_splits():
    table = pd.DataFrame({"frame": [0, 1, 4, 5], "x_nm": [10.0, 11, 10, 11], "y_nm": [5.0, 5, 6, 6]})
    assert len(group_localizations(table, radius_nm=5, max_dark=1)) == 2
    assert len(group_localizations(table, radius_nm=5, max_dark=2)) == 1
    # far apart in space: never linked; same frame: never linked directly
    assert len(group_localizations(table.assign(x_nm=[0.0, 100, 200, 300]), radius_nm=5, max_dark=5)) == 4
    same = pd.DataFrame({"frame": [0, 0], "x_nm": [0.0, 1.0], "y_nm": [0.0, 0.0]})
    assert len(group_localizations(same, radius_nm=5)) == 2


def test_bad_parameters():
    table = pd.DataFrame({"frame": [0], "x_nm": [1.0], "y_nm": [1.0]})
    with pytest.raises(ParameterError, match="radius"):
        group_localizations(table, radius_nm=-1)
    with pytest.raises(ParameterError, match="dark"):
        group_localizations(table, max_dark=-1)
