"""``var-emitter evaluate``: printed metrics, metrics.json, plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from napari_var_emitter.cli import main
from napari_var_emitter.io import write_emitters, write_table


def test_evaluate_prints_and_writes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 40
    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(10), 4),
            "x_nm": rng.uniform(300, 3000, n),
            "y_nm": rng.uniform(300, 3000, n),
            "z_nm": 0.0,
            "photons": rng.uniform(1000, 3000, n),
        }
    )
    pred = truth.iloc[:30].copy()
    pred[["x_nm", "y_nm"]] += rng.normal(0, 20, (30, 2))
    pred["bg"] = 10.0
    pred["prob"] = rng.uniform(0.5, 1.0, 30)
    write_emitters(truth, tmp_path / "truth.h5")
    write_table(pred, tmp_path / "pred.csv", metadata={"pixel_size_nm": 100.0})
    rc = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred.csv"),
            "--truth",
            str(tmp_path / "truth.h5"),
            "--out-dir",
            str(tmp_path / "eval"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "jaccard" in out and "rmse_lat" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["tp"] == 30 and metrics["fn"] == 10 and metrics["fp"] == 0
    assert metrics["jaccard"] == 0.75
    assert 10 < metrics["rmse_lat"] < 40
    for name in ("pr_curve.png", "errors.png", "photons.png", "threshold_sweep.csv"):
        assert (tmp_path / "eval" / name).stat().st_size > 0


def test_evaluate_missing_file(tmp_path, capsys):
    rc = main(["evaluate", "--pred", str(tmp_path / "none.csv"), "--truth", str(tmp_path / "t.h5")])
    assert rc == 2 and "file not found" in capsys.readouterr().err
