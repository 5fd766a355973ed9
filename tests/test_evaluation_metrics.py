"""Matching and metrics against hand-computed cases and a brute-force matcher."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from napari_var_emitter.errors import ParameterError
from napari_var_emitter.evaluation import efficiency, evaluate, match, threshold_sweep


def table(rows, cols=("frame", "x_nm", "y_nm")):
    return pd.DataFrame(rows, columns=list(cols))


def test_known_tp_fp_fn_and_rmse():
    truth = table([(0, 100, 100), (0, 1000, 1000), (1, 500, 500), (2, 300, 300)])
    pred = table([(0, 130, 140), (0, 5000, 5000), (1, 500, 520), (3, 300, 300)])
    r = evaluate(pred, truth, tolerance_nm=250)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 2, 2)
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["jaccard"] == pytest.approx(2 / 6)
    assert r["rmse_lat"] == pytest.approx(np.sqrt((50**2 + 20**2) / 2))
    assert r["efficiency_lat"] == pytest.approx(1 - np.sqrt((1 - 2 / 6) ** 2 + (r["rmse_lat"] / 100) ** 2))


def test_tolerance_and_z_tolerance_are_respected():
    truth = table([(0, 0, 0, 0)], ("frame", "x_nm", "y_nm", "z_nm"))
    pred = table([(0, 249, 0, 300)], ("frame", "x_nm", "y_nm", "z_nm"))
    assert match(pred, truth, 250).tp == 1
    assert match(pred, truth, 248).tp == 0
    assert match(pred, truth, 250, tolerance_z_nm=200).tp == 0
    r = evaluate(pred, truth, 250)
    assert r["rmse_ax"] == pytest.approx(300) and r["rmse_vol"] == pytest.approx(np.hypot(249, 300))


def test_hungarian_prefers_more_matches_over_greedy_nearest():
    # greedy nearest would pair p0-t1 (10 nm) and leave t0 unmatched; the optimum matches both
    truth = table([(0, 0, 0), (0, 200, 0)])
    pred = table([(0, 190, 0), (0, 390, 0)])
    m = match(pred, truth, 200)
    assert m.tp == 2
    assert sorted(zip(m.pred_index, m.truth_index, strict=True)) == [(0, 0), (1, 1)]


def brute_force(pred, truth, tol):
    """Maximum number of pairs, then minimum summed distance, by enumerating all assignments per frame."""
    n_tp, total = 0, 0.0
    for f in set(pred.frame) | set(truth.frame):
        p = pred[pred.frame == f][["x_nm", "y_nm"]].to_numpy()
        t = truth[truth.frame == f][["x_nm", "y_nm"]].to_numpy()
        best = (0, 0.0)
        for k in range(len(p) + 1):
            for ps in itertools.permutations(range(len(p)), k):
                for ts in itertools.permutations(range(len(t)), k):
                    d = np.hypot(*(p[list(ps)] - t[list(ts)]).T) if k else np.zeros(0)
                    if (d <= tol).all() and (k > best[0] or (k == best[0] and d.sum() < best[1] - 1e-9)):
                        best = (k, float(d.sum()))
        n_tp += best[0]
        total += best[1]
    return n_tp, total


@pytest.mark.parametrize("seed", range(12))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_p, n_t = rng.integers(0, 5, 2)
    pred = table(np.c_[rng.integers(0, 2, n_p), rng.uniform(0, 600, (n_p, 2))])
    truth = table(np.c_[rng.integers(0, 2, n_t), rng.uniform(0, 600, (n_t, 2))])
    pred["frame"] = pred.frame.astype(int)
    truth["frame"] = truth.frame.astype(int)
    m = match(pred, truth, 250)
    pairs = m.pairs()
    d = np.hypot(pairs.dx_nm, pairs.dy_nm) if m.tp else np.zeros(0)
    assert (d <= 250).all()
    assert (pairs.frame_pred.to_numpy() == pairs.frame_true.to_numpy()).all() if m.tp else True
    n, total = brute_force(pred, truth, 250)
    assert m.tp == n
    assert d.sum() == pytest.approx(total, abs=1e-6)
    assert len(set(m.pred_index)) == m.tp and len(set(m.truth_index)) == m.tp


def test_photons_bg_crlb_and_border():
    truth = pd.DataFrame(
        {
            "frame": [0, 0],
            "x_nm": [50.0, 2000.0],
            "y_nm": [2000.0, 2000.0],
            "photons": [1000.0, 2000.0],
            "bg": [10.0, 10.0],
            "crlb_x_nm": [10.0, 10.0],
            "crlb_y_nm": [10.0, 10.0],
        }
    )
    pred = truth.copy()
    pred["x_nm"] += 20.0
    pred["photons"] = [1100.0, 1800.0]
    pred["bg"] = [12.0, 12.0]
    r = evaluate(pred, truth)
    assert r["photons_rel_error"] == pytest.approx(0.1)
    assert r["photons_rel_bias"] == pytest.approx(0.0)
    assert r["bg_abs_error"] == pytest.approx(2.0)
    assert r["rmse_lat_over_crlb"] == pytest.approx(20.0 / np.sqrt(200.0))
    rb = evaluate(pred, truth, border_px=2, frame_shape=(40, 40), pixel_size_nm=100.0)
    assert rb["n_true"] == 1 and rb["tp"] == 1
    with pytest.raises(ParameterError):
        evaluate(pred, truth, border_px=2)


def test_threshold_sweep_and_missing_columns():
    truth = table([(0, 100, 100), (0, 1000, 1000)])
    pred = pd.DataFrame(
        {
            "frame": [0, 0, 0],
            "x_nm": [100.0, 1000.0, 3000.0],
            "y_nm": [100.0, 1000.0, 3000.0],
            "prob": [0.9, 0.6, 0.3],
        }
    )
    sw = threshold_sweep(pred, truth, [0.2, 0.5, 0.8])
    assert list(sw.tp) == [2, 2, 1] and list(sw.fp) == [1, 0, 0]
    assert sw.jaccard.tolist() == pytest.approx([2 / 3, 1.0, 0.5])
    with pytest.raises(ParameterError, match="x_nm"):
        match(pred.drop(columns="x_nm"), truth)
    assert efficiency(1.0, 0.0, 1.0) == 1.0


def test_a_run_that_finds_nothing_reports_the_same_keys_as_nan():
    cols = ("frame", "x_nm", "y_nm", "photons", "bg", "crlb_x_nm", "crlb_y_nm")
    truth = table([(0, 100, 100, 1000, 50, 10, 10)], cols)
    found = evaluate(truth.drop(columns=["crlb_x_nm", "crlb_y_nm"]), truth)
    nothing = evaluate(truth.iloc[:0].drop(columns=["crlb_x_nm", "crlb_y_nm"]), truth)
    assert set(nothing) == set(found)
    assert nothing["recall"] == 0 and np.isnan(nothing["photons_rel_error"]) and np.isnan(nothing["crlb_lat"])
    assert found["photons_rel_error"] == 0 and found["crlb_lat"] == pytest.approx(np.sqrt(200))
