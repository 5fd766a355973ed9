"""Smoke test of the full benchmark suite (tiny: 1 density per regime, a few frames; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from _models_helpers import tiny_var, untrained_checkpoint
from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.checkpoints import save_checkpoint
from napari_var_emitter.models import UNetConfig, build_model

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow  # Picasso's numba compilation dominates (~30-60 s on 2 cores)
def test_run_all_writes_report_with_every_method(tmp_path, monkeypatch):
    pytest.importorskip("picasso")
    var = untrained_checkpoint(tmp_path / "var.pt", tiny_var(n_frames=1))
    unet = untrained_checkpoint(tmp_path / "unet.pt", UNetConfig(n_frames=1, channels=(4, 8)))
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("run_all", BENCH_DIR / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "run_all", run_all)
    spec.loader.exec_module(run_all)
    out = tmp_path / "docs" / "benchmarks.md"
    out.parent.mkdir()
    args = ["--frames", "4", "--tiny", "--var", str(var), "--unet", str(unet), "--out", str(out)]
    assert run_all.main(args) == 0

    text = out.read_text()
    for method in (
        "VAR (default model)",
        "VAR, network only (ablation)",
        "localized at 8x (ablation)",
        "U-Net baseline",
        "U-Net, network only (ablation)",
        "Picasso",
    ):
        assert method in text
    for aim in ("isolated-emitter RMSE", "sub-pixel bin", "sigma calibration", "low SNR, independent"):
        assert aim in text
    results = json.loads((out.parent / "benchmarks" / "results.json").read_text())
    assert {r["regime"] for r in results["rows"]} == {"high SNR", "low SNR"}
    assert {r["movie"] for r in results["rows"]} == {"blinking", "independent"}
    assert all(0.0 <= r["jaccard"] <= 1.0 for r in results["rows"])
    main = [r for r in results["rows"] if r["method"] in run_all.MAIN]
    assert main and all(0.0 <= r["jaccard_best"] <= 1.0 for r in main)  # each main method's own sweep
    assert not any("localized at" in r["method"] for r in results["rows"] if r["movie"] == "independent")
    assert (out.parent / "benchmarks" / "jaccard_rmse.png").stat().st_size > 1000
    assert (out.parent / "benchmarks" / "pixel_locking.png").stat().st_size > 1000
    assert all(p["seed"] >= run_all.HELD_OUT_SEED for p in results["params"].values())


def test_run_3d_writes_report(tmp_path):
    astig = {"kind": "astigmatic", "sigma0_px": 1.1, "focal_offset_nm": 400.0, "depth_nm": 400.0}
    ckpt = save_checkpoint(
        tmp_path / "astig.pt",
        model_config=tiny_var(n_frames=1).model_dump(),
        state_dict=build_model(tiny_var(n_frames=1)).state_dict(),
        camera=CameraConfig(),
        pixel_size_nm=100.0,
        simulation={"psf": astig, "z_range_nm": [-500.0, 500.0]},
    )
    spec = importlib.util.spec_from_file_location("run_3d", BENCH_DIR / "run_3d.py")
    run_3d = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_3d)
    out = tmp_path / "docs" / "benchmarks-3d.md"
    out.parent.mkdir()
    assert run_3d.main(["--checkpoint", str(ckpt), "--frames", "3", "--out", str(out)]) == 0
    assert "rmse_ax" in out.read_text()
    rows = json.loads((out.parent / "benchmarks" / "results_3d.json").read_text())["rows"]
    assert [r["density"] for r in rows] == list(run_3d.DENSITIES)


@pytest.mark.slow  # Picasso's numba compilation dominates
def test_run_resolution_writes_pairs_density_and_same_pixel_recall(tmp_path, monkeypatch):
    pytest.importorskip("picasso")
    var = untrained_checkpoint(tmp_path / "var.pt", tiny_var(n_frames=1, scales=(1, 2), fine_channels=(4,)))
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("run_resolution", BENCH_DIR / "run_resolution.py")
    run_resolution = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_resolution)
    out = tmp_path / "docs" / "benchmarks-resolution.md"
    out.parent.mkdir()
    args = ["--tiny", "--pair-sets", "1", "--density-frames", "3", "--var", str(var), "--out", str(out)]
    assert run_resolution.main(args + ["--unet", str(tmp_path / "none.pt")]) == 0
    text = out.read_text()
    for needle in (
        "VAR 1x, network only",
        "VAR 2x, network only",
        "Picasso",
        "same-pixel recall",
        "JI 50 nm",
    ):
        assert needle in text
    rows = json.loads((out.parent / "benchmarks" / "results_resolution.json").read_text())["rows"]
    pairs = [r for r in rows if r["test"] == "pairs"]
    assert {r["distance_nm"] for r in pairs} == set(run_resolution.DISTANCES_NM[3:5])
    assert all(0.0 <= r["resolved"] <= 1.0 and r["n_pairs"] == 16 * 8 for r in pairs)  # 8 inner frames


def test_pair_truth_and_same_pixel_helpers():
    import numpy as np

    spec = importlib.util.spec_from_file_location("run_resolution", BENCH_DIR / "run_resolution.py")
    rr = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH_DIR))
    try:
        spec.loader.exec_module(rr)
    finally:
        sys.path.remove(str(BENCH_DIR))
    truth = rr.pair_truth(100.0, 3000.0, 2, 4, 64, 100.0, (1.0, 1.3), np.random.default_rng(0))
    assert len(truth) == 2 * 16 * 2 * 4 and sorted(truth.frame.unique()) == list(range(8))
    assert truth.groupby("pair").frame.nunique().eq(4).all()  # each pair on for its set's 4 frames
    a = truth[truth.frame == 0].sort_values(["pair", "x_nm"]).groupby("pair")
    d = np.hypot(a["x_nm"].diff().dropna().to_numpy(), a["y_nm"].diff().dropna().to_numpy())
    np.testing.assert_allclose(d, 100.0, atol=1e-6)
    # a perfect localizer resolves every pair; one detection per pair at the midpoint resolves none
    perfect = rr.pair_metrics(truth, truth, 100.0, hold=4)
    assert perfect["resolved"] == 1.0 and perfect["n_pairs"] == 2 * 16 * 2  # frames 1, 2 of each set
    mid = truth.groupby(["pair", "frame"]).agg(x_nm=("x_nm", "mean"), y_nm=("y_nm", "mean")).reset_index()
    assert rr.pair_metrics(mid, truth, 100.0, hold=4)["resolved"] == 0.0
    import pandas as pd

    few = pd.DataFrame({"frame": [0, 0, 0, 1], "x_nm": [10.0, 90.0, 110.0, 20.0], "y_nm": [50.0] * 4})
    # the first two share pixel (0, 0) of frame 0; the third is in the next pixel; frame 1's is alone
    assert rr.same_pixel_mask(few, 100.0).tolist() == [True, True, False, False]
