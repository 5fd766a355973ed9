"""Smoke test of the full benchmark suite (tiny: 1 density per regime, a few frames; no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from _models_helpers import tiny_var
from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.checkpoints import save_checkpoint
from napari_var_emitter.models import UNetConfig, build_model

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def _checkpoint(path: Path, config) -> Path:
    return save_checkpoint(
        path,
        model_config=config.model_dump(),
        state_dict=build_model(config).state_dict(),
        camera=CameraConfig(),
        pixel_size_nm=100.0,
        simulation={"psf": {"kind": "gaussian", "sigma_px": [1.0, 1.3]}},
    )


@pytest.mark.slow  # Picasso's numba compilation dominates (~30-60 s on 2 cores)
def test_run_all_writes_report_with_every_method(tmp_path, monkeypatch):
    pytest.importorskip("picasso")
    var = _checkpoint(tmp_path / "var.pt", tiny_var(n_frames=1))
    unet = _checkpoint(tmp_path / "unet.pt", UNetConfig(n_frames=1, channels=(4, 8)))
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
