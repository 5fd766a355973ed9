"""Smoke test of benchmarks/large_frames.py: both batchings on 256 x 256 frames, and the file it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from _models_helpers import tiny_var, untrained_checkpoint

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def test_large_frames_compares_the_automatic_batch_with_batches_of_eight_frames(tmp_path, monkeypatch):
    config = tiny_var(n_frames=1, scales=(1, 2), fine_channels=(4,))
    var = untrained_checkpoint(tmp_path / "var.pt", config)
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location("large_frames", BENCH_DIR / "large_frames.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "large_frames.json"
    assert module.main(["--tiny", "--var", str(var), "--pair-sets", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["frame_px"], r["batch"]) for r in rows] == [(256, "automatic"), (256, "8_frames")]
    assert [r["frames_per_batch"] for r in rows] == [1, 8]
    assert all(0.0 <= r["resolved"] <= 1.0 and r["n_pairs"] == 256 * 8 and r["frames"] == 10 for r in rows)
    assert rows[0]["localizations"] == rows[1]["localizations"]
