"""Drift correction by redundant cross-correlation on tables with a known drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _postprocessing_helpers import N_FRAMES, drift_truth, drifted_table, still_table
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.postprocessing import apply_drift, correct_drift


def _uniform(seed: int, n: int) -> pd.DataFrame:
    """``n`` localizations spread uniformly over 6 x 6 um and all frames: nothing in common between
    segments."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "frame": rng.integers(0, N_FRAMES, n),
            "x_nm": rng.uniform(0, 6000, n),
            "y_nm": rng.uniform(0, 6000, n),
        }
    )


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(a**2, axis=1))))


@pytest.mark.parametrize("seed", [2, 3])
def test_known_drift_is_removed_to_10_nm_rms(seed):
    table = drifted_table(seed)
    truth = drift_truth()
    assert np.ptp(truth[:, 0]) > 250  # a few hundred nm of drift to find
    result = correct_drift(table, segment=1000)
    est = result.drift[["drift_x_nm", "drift_y_nm"]].to_numpy()
    assert len(est) == N_FRAMES and np.array_equal(result.drift["frame"], np.arange(N_FRAMES))
    residual = est - truth
    residual -= residual.mean(axis=0)  # the absolute offset of a drift curve is arbitrary
    assert _rms(residual) <= 10.0
    assert _rms(truth - truth.mean(axis=0)) > 100  # the check is not trivially met
    # the corrected positions are back on the structure: per-localization error is the noise again
    corrected = result.table
    err = corrected[["x_nm", "y_nm"]].to_numpy() - corrected[["x_true_nm", "y_true_nm"]].to_numpy()
    err -= err.mean(axis=0)
    noise = table[["sigma_x_nm"]].to_numpy()[:, 0]
    assert _rms(err) <= np.sqrt(2 * np.mean(noise**2)) + 3.0


def test_correction_keeps_every_row_and_column():
    table = drifted_table(2)
    result = correct_drift(table)
    out = result.table
    assert list(out.columns) == list(table.columns) and len(out) == len(table)
    for col in table.columns:
        if col not in ("x_nm", "y_nm"):
            pd.testing.assert_series_equal(out[col], table[col])
    assert out.attrs["drift_correction"]["n_segments"] == 20
    assert result.info["pairs_used"] >= result.info["pairs_total"] // 2


def test_drift_free_table_stays_within_5_nm():
    table = still_table()
    result = correct_drift(table)
    shift = np.hypot(result.table["x_nm"] - table["x_nm"], result.table["y_nm"] - table["y_nm"])
    assert shift.max() <= 5.0


def test_too_sparse_table_is_a_clear_error():
    with pytest.raises(ParameterError, match="too sparse to correlate"):
        correct_drift(_uniform(0, 400))


def test_table_without_common_structure_is_an_error_not_a_curve():
    # enough localizations per segment, but nothing in common between segments (uniform noise)
    with pytest.raises(ParameterError, match="shifts between segments disagree"):
        correct_drift(_uniform(1, 40000))


@pytest.mark.parametrize("seed", range(8))
def test_few_segments_without_common_structure_are_an_error(seed):
    # four segments: three of their six shifts always fit exactly (a spanning tree), so agreement is only
    # evidence where the consistent pairs close a loop (before, 3 of these 8 tables got a curve spanning
    # 0.3-1.6 um in x)
    with pytest.raises(ParameterError, match="shifts between segments disagree"):
        correct_drift(_uniform(seed, 40000), segment=N_FRAMES // 4)


def test_few_segments_on_common_structure_still_work():
    table, segment = drifted_table(2), N_FRAMES // 4
    result = correct_drift(table, segment=segment)
    assert result.info["n_segments"] == 4 and result.info["pairs_used"] >= 4
    # each segment's shift is the mean true drift over its localizations (four knots: the curve between them
    # is coarse, the knots are not)
    frame, truth = table["frame"].to_numpy(), drift_truth()
    mean_truth = np.array([truth[frame[frame // segment == k]].mean(axis=0) for k in range(4)])
    error = result.segments[["drift_x_nm", "drift_y_nm"]].to_numpy() - mean_truth
    error -= error.mean(axis=0)
    assert _rms(error) <= 10.0
    assert _rms(mean_truth - mean_truth.mean(axis=0)) > 50  # not trivially met


def test_short_table_and_bad_parameters():
    table = still_table().query("frame < 900")
    with pytest.raises(ParameterError, match="1 segment.*at least 3 are needed"):
        correct_drift(table, segment=1000)
    with pytest.raises(ParameterError, match="2 segment.*at least 3 are needed"):
        correct_drift(table, segment=450)  # one shift, nothing to check it against
    with pytest.raises(ParameterError, match="segment"):
        correct_drift(table, segment=0)
    with pytest.raises(ParameterError, match="lacks column"):
        correct_drift(table.drop(columns="frame"))


def test_apply_drift_interpolates_per_frame():
    table = pd.DataFrame({"frame": [0, 5, 10, 20], "x_nm": [100.0] * 4, "y_nm": [50.0] * 4, "photons": 1.0})
    drift = pd.DataFrame({"frame": [0, 10], "drift_x_nm": [0.0, 10.0], "drift_y_nm": [0.0, -20.0]})
    out = apply_drift(table, drift)
    np.testing.assert_allclose(out["x_nm"], [100, 95, 90, 90])
    np.testing.assert_allclose(out["y_nm"], [50, 60, 70, 70])


def test_too_many_segments_is_an_error():
    with pytest.raises(ParameterError, match="too many"):
        correct_drift(still_table(), segment=50)
