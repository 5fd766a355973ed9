"""Smoke test of the inference benchmark script (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from napari_var_emitter.checkpoints import save_checkpoint
from napari_var_emitter.models import UNetConfig, build_model

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_inference.py"


@pytest.mark.slow  # Picasso's numba compilation and two fresh subprocesses: ~60-75 s on 2 cores
def test_bench_inference_smoke(tmp_path, capsys):
    pytest.importorskip("picasso")
    cfg = UNetConfig(n_frames=1, channels=(4, 8), sigma_channels=False)
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(
        ckpt,
        model_config=cfg.model_dump(),
        state_dict=build_model(cfg).state_dict(),
        camera={"type": "scmos"},
        pixel_size_nm=100.0,
    )
    spec = importlib.util.spec_from_file_location("bench_inference", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    rc = bench.main(
        [
            "--checkpoint",
            str(ckpt),
            "--frames",
            "8",
            "--short",
            "4",
            "--long",
            "8",
            "--threads",
            "1",
            "--sizes",
            "64",
            "--densities",
            "1",
            "--matrix-frames",
            "8",
            "--repeats",
            "2",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads(out.read_text())
    assert (
        report["throughput"]["model"]["frames_per_s"] > 0
        and report["throughput"]["picasso"]["frames_per_s"] > 0
    )
    assert [m["frames"] for m in report["memory"]] == [4, 8]
    assert report["memory"][-1]["from_disk_over_memory"] > 0
    (cell,) = report["matrix"]
    assert cell["frame_size"] == 64 and cell["over_picasso"]["cli_from_disk_net"] > 0
    # each method timed twice in turn, the best of the two reported
    assert {k: len(v) for k, v in cell["seconds"].items()} == {"cli": 2, "memory": 2, "picasso": 2}
    assert cell["frames_per_s"]["picasso"] == pytest.approx(cell["frames"] / min(cell["seconds"]["picasso"]))
    assert report["startup"]["predict_s"] > 0 and "gpu" in report
    assert "speed ratio" in capsys.readouterr().out


def test_profile_predict_smoke(tmp_path):
    """The stage profile runs on the bundled model and its stages account for the run (no timing asserted)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "profile_predict.py"
    spec = importlib.util.spec_from_file_location("profile_predict", path)
    prof = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prof)
    out = tmp_path / "p.json"
    assert prof.main(["--frames", "6", "--densities", "2", "--size", "32", "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    stages = run["stages_s"]
    assert run["localizations"] > 0 and stages["refine"] > 0 and stages["model.encoder"] > 0
