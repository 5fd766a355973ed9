"""Plots of the post-processing results (drift curve, FRC curve) on matplotlib figures, without pyplot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io.atomic import atomic_path
from .frc import FRCResult


def draw_drift(fig: Figure, drift: pd.DataFrame, segments: pd.DataFrame | None = None) -> Figure:
    """Draw the per-frame drift (x and y, nm) and the segment estimates on ``fig`` (cleared first)."""
    fig.clear()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(drift["frame"], drift["drift_x_nm"], color="tab:blue", label="x")
    ax.plot(drift["frame"], drift["drift_y_nm"], color="tab:orange", label="y")
    if segments is not None and len(segments):
        ax.plot(segments["frame"], segments["drift_x_nm"], "o", color="tab:blue", ms=3)
        ax.plot(segments["frame"], segments["drift_y_nm"], "o", color="tab:orange", ms=3)
    ax.set(xlabel="frame", ylabel="drift [nm]", title="drift (dots: segment estimates)")
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def draw_frc(fig: Figure, result: FRCResult) -> Figure:
    """Draw the FRC curve, the 1/7 threshold and the resolution on ``fig`` (cleared first)."""
    fig.clear()
    ax = fig.add_subplot(1, 1, 1)
    q = result.frequency * 1000.0  # 1/um
    ax.plot(q, result.frc_raw, color="0.75", lw=0.8, label="FRC")
    ax.plot(q, result.frc, color="tab:blue", label="FRC (smoothed)")
    ax.axhline(result.threshold, color="tab:red", ls="--", lw=1, label="1/7")
    if np.isfinite(result.resolution_nm):
        ax.axvline(1000.0 / result.resolution_nm, color="tab:green", lw=1)
        title = f"FRC resolution {result.resolution_nm:.1f} nm"
    else:
        title = f"FRC stays above 1/7: resolution finer than {2 * result.pixel_nm:g} nm"
    ax.set(xlabel="spatial frequency [1/µm]", ylabel="FRC", ylim=(-0.1, 1.05), title=title)
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG, atomically."""
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def plot_drift(drift: pd.DataFrame, segments: pd.DataFrame | None, path: str | os.PathLike) -> Path:
    """The drift curve as a PNG file."""
    return save_figure(draw_drift(Figure(figsize=(6, 3.5)), drift, segments), path)


def plot_frc(result: FRCResult, path: str | os.PathLike) -> Path:
    """The FRC curve as a PNG file."""
    return save_figure(draw_frc(Figure(figsize=(6, 3.5)), result), path)
