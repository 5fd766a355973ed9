"""Evaluation plots are written as PNG files without touching pyplot's global state."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from napari_var_emitter.evaluation import match, threshold_sweep
from napari_var_emitter.evaluation.plots import save_evaluation_plots


def test_plots_written(tmp_path):
    rng = np.random.default_rng(1)
    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(5), 4),
            "x_nm": rng.uniform(0, 4000, 20),
            "y_nm": rng.uniform(0, 4000, 20),
            "z_nm": rng.uniform(-300, 300, 20),
            "photons": rng.uniform(500, 3000, 20),
        }
    )
    pred = truth.copy()
    pred[["x_nm", "y_nm", "z_nm"]] += rng.normal(0, 20, (20, 3))
    pred["photons"] *= 1.1
    pred["prob"] = rng.uniform(0.3, 1, 20)
    paths = save_evaluation_plots(match(pred, truth), threshold_sweep(pred, truth), tmp_path)
    assert {p.name for p in paths} == {"pr_curve.png", "errors.png", "photons.png"}
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["errors.png", "photons.png", "pr_curve.png"]
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
