"""Evaluation plots (PR curve, error histograms, photon scatter) as PNG files, with no pyplot global state."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import atomic_path
from .matching import Matches


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def plot_pr_curve(sweep: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Precision vs recall (coloured by threshold) and Jaccard / RMSE vs threshold."""
    fig = Figure(figsize=(9, 4))
    ax1, ax2 = fig.subplots(1, 2)
    sc = ax1.scatter(sweep["recall"], sweep["precision"], c=sweep["threshold"], cmap="viridis", zorder=3)
    ax1.plot(sweep["recall"], sweep["precision"], color="0.6", zorder=2)
    ax1.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title="PR curve")
    fig.colorbar(sc, ax=ax1, label="threshold")
    ax2.plot(sweep["threshold"], sweep["jaccard"], "o-", label="Jaccard")
    ax2.set(xlabel="threshold", ylabel="Jaccard index", ylim=(0, 1.02))
    ax3 = ax2.twinx()
    ax3.plot(sweep["threshold"], sweep["rmse_lat"], "s--", color="tab:red", label="RMSE lat")
    ax3.set_ylabel("lateral RMSE [nm]", color="tab:red")
    return _save(fig, path)


def plot_error_histograms(matches: Matches, path: str | os.PathLike) -> Path:
    """Histograms of x, y (and z) errors of the matched pairs."""
    pairs = matches.pairs()
    cols = [c for c in ("dx_nm", "dy_nm", "dz_nm") if c in pairs.columns]
    fig = Figure(figsize=(4 * len(cols), 3.5))
    axes = np.atleast_1d(fig.subplots(1, len(cols)))
    for ax, col in zip(axes, cols, strict=True):
        v = pairs[col].to_numpy(float)
        ax.hist(v[np.isfinite(v)], bins=50, color="tab:blue")
        rmse = np.sqrt(np.mean(v**2)) if v.size else np.nan
        ax.set(xlabel=f"{col[1]} error [nm]", ylabel="count", title=f"RMSE {rmse:.1f} nm, n={v.size}")
    return _save(fig, path)


def plot_photon_scatter(matches: Matches, path: str | os.PathLike) -> Path:
    """Predicted vs true photons of the matched pairs."""
    pairs = matches.pairs()
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    if "photons_pred" in pairs and "photons_true" in pairs and len(pairs):
        t, p = pairs["photons_true"].to_numpy(float), pairs["photons_pred"].to_numpy(float)
        ax.scatter(t, p, s=4, alpha=0.5)
        lim = (0, float(np.nanmax(np.concatenate([t, p]))) * 1.05 or 1.0)
        ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="true photons", ylabel="predicted photons", title="photons")
    return _save(fig, path)


def save_evaluation_plots(
    matches: Matches, sweep: pd.DataFrame | None, out_dir: str | os.PathLike
) -> list[Path]:
    """Write ``pr_curve.png`` (if ``sweep`` is given), ``errors.png`` and ``photons.png`` to ``out_dir``."""
    out = Path(out_dir)
    paths = []
    if sweep is not None and len(sweep):
        paths.append(plot_pr_curve(sweep, out / "pr_curve.png"))
    paths.append(plot_error_histograms(matches, out / "errors.png"))
    paths.append(plot_photon_scatter(matches, out / "photons.png"))
    return paths
