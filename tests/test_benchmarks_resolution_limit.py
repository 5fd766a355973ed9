"""The likelihood-ratio reference of benchmarks/resolution_limit.py: what the oracle one-or-two test calls
resolvable, which emitters it pairs, and the file it writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _models_helpers import tiny_var, untrained_checkpoint
from napari_var_emitter.camera import CameraConfig, adu_to_photons
from napari_var_emitter.inference.refine import RefineOptions

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def limit():
    sys.path.insert(0, str(BENCH_DIR))
    try:
        spec = importlib.util.spec_from_file_location("resolution_limit", BENCH_DIR / "resolution_limit.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH_DIR))
    return module


def _oracle(limit, distance_nm: float, photons: float = 3000.0):
    camera = CameraConfig()
    truth, movie = limit.pair_movie(0, 0, distance_nm, photons, 1, camera, 100.0, (1.0, 1.3))
    inner = truth[(truth.frame % limit.PAIR_HOLD > 0) & (truth.frame % limit.PAIR_HOLD < limit.PAIR_HOLD - 1)]
    pairs = inner.index.to_numpy().reshape(-1, 2)
    img = torch.from_numpy(adu_to_photons(np.asarray(movie.frames, np.float64), camera)).float()
    return truth, pairs, limit.oracle_test(img, truth, pairs, limit.PAIR_BG, 100.0, camera, RefineOptions())


def test_oracle_resolves_distant_pairs_and_not_coincident_ones(limit):
    truth, pairs, far = _oracle(limit, 300.0)
    assert len(pairs) == 16 * 8
    assert limit.resolvable(far, truth, pairs, 8.0, 150.0).all()
    # the fitted emitters are where the truth is (the one-emitter fit sits between them)
    true = np.stack([truth[["x_nm", "y_nm"]].to_numpy()[pairs[:, k]] for k in (0, 1)], 1)
    assert np.median(np.abs(far["two"] - true)) < 10.0
    truth, pairs, close = _oracle(limit, 20.0)
    assert limit.resolvable(close, truth, pairs, 8.0, 20.0).mean() < 0.1
    assert np.median(close["gain"]) < np.median(far["gain"]) / 10
    # a lower bar resolves at least as many
    truth, pairs, mid = _oracle(limit, 100.0)
    assert (
        limit.resolvable(mid, truth, pairs, 6.0, 50.0).sum()
        >= limit.resolvable(mid, truth, pairs, 8.0, 50.0).sum()
    )


def test_same_pixel_pairs_takes_pixels_with_exactly_two(limit):
    truth = pd.DataFrame(
        {
            "frame": [0, 0, 0, 0, 0, 0, 1, 1, 1],
            "x_nm": [310.0, 380.0, 520.0, 540.0, 560.0, 900.0, 330.0, 350.0, 700.0],
            "y_nm": [320.0, 390.0, 510.0, 530.0, 550.0, 900.0, 340.0, 360.0, 700.0],
        }
    )
    pairs, crowded = limit.same_pixel_pairs(truth, 100.0)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (6, 7)]
    assert crowded == 3


def test_same_pixel_reference_counts_one_when_unresolved(limit):
    truth = pd.DataFrame({"x_nm": [0.0, 60.0], "y_nm": [0.0, 0.0]})
    pairs = np.array([[0, 1]])
    result = {
        "gain": np.array([2.0]),
        "one": np.array([[30.0, 0.0]]),
        "two": np.array([[[0.0, 0.0], [60.0, 0.0]]]),
    }
    assert limit.same_pixel_reference(result, truth, pairs, 8.0) == 0.5  # one localization matches one
    assert limit.same_pixel_reference(result, truth, pairs, 1.0) == 1.0  # two win: both matched


def test_main_writes_pairs_and_same_pixel_rows(limit, tmp_path):
    config = tiny_var(n_frames=1)
    var = untrained_checkpoint(tmp_path / "var.pt", config)
    out = tmp_path / "limit.json"
    assert (
        limit.main(
            ["--tiny", "--var", str(var), "--pair-sets", "1", "--density-frames", "20", "--out", str(out)]
        )
        == 0
    )
    saved = json.loads(out.read_text())
    tests = [(r["test"], r.get("distance_nm", r.get("density"))) for r in saved["rows"]]
    assert tests == [("pairs", 100), ("pairs", 300), ("same_pixel", 5.0)]
    assert saved["bars"] == {"split_llr": 8.0, "count_llr": 6.0}
    for row in saved["rows"]:
        assert (
            0.0 <= row["resolvable_count_llr"] <= 1.0
            and row["resolvable_split_llr"] <= row["resolvable_count_llr"]
        )
    assert not list(tmp_path.glob("*.tmp"))


def test_resolution_report_shows_the_oracle_beside_the_methods(limit):
    rows = [
        {
            "test": "pairs",
            "photons": 3000.0,
            "distance_nm": d,
            "method": "VAR default (2x + fit)",
            "resolved": r,
            "rmse_nm": 15.0,
            "n_pairs": 128,
        }
        for d, r in ((100, 0.58), (200, 1.0))
    ]
    saved = {"pair_sets": 1, "density_frames": 10, "rows": rows}
    oracle = {
        "bars": {"split_llr": 8.0, "count_llr": 6.0},
        "rows": [
            {
                "test": "pairs",
                "photons": 3000.0,
                "distance_nm": 100,
                "resolvable_split_llr": 0.514,
                "resolvable_count_llr": 0.592,
                "three_frame_gain_above_split_llr": 0.977,
                "three_frame_gain_above_count_llr": 0.984,
            },
            {
                "test": "same_pixel",
                "density": 5.0,
                "n": 650,
                "median_gain": 1.2,
                "resolvable_split_llr": 0.02,
                "resolvable_count_llr": 0.032,
                "recall_reference_split_llr": 0.506,
                "recall_reference_count_llr": 0.513,
                "three_frame_gain_above_split_llr": 0.165,
                "three_frame_gain_above_count_llr": 0.255,
            },
        ],
    }
    run_resolution = sys.modules["run_resolution"]
    plain = run_resolution.report(pd.DataFrame(rows), saved)
    assert "oracle" not in plain
    text = run_resolution.report(pd.DataFrame(rows), saved, oracle)
    assert "| oracle, one frame (bar 8 / 6) | 0.51 / 0.59 | - |" in text  # no oracle row at 200 nm
    assert "| oracle, three frames, gain only (bar 8 / 6) | 0.98 / 0.98 | - |" in text
    assert "| 5 | 650 | 1.2 | 0.02 / 0.03 | 0.51 / 0.51 | 0.17 / 0.26 |" in text


def test_three_frame_gains_add_the_same_pair_in_the_neighbouring_frames(limit):
    frame = np.array([0, 1, 2, 5, 1])
    identity = np.array([7, 7, 7, 7, 8])
    gain = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    # frame 1 of pair 7 adds frames 0 and 2; frame 5 has no neighbours; pair 8 is another pair of emitters
    assert limit.three_frame_gains(frame, identity, gain).tolist() == [3.0, 6.0, 5.0, 4.0, 10.0]
