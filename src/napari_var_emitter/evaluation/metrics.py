"""Detection and localization metrics (SMLM challenge 2016 / DECODE definitions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ParameterError
from .matching import Matches, check_columns, match


def efficiency(jaccard: float, rmse_nm: float, alpha: float) -> float:
    """SMLM-challenge efficiency ``1 - sqrt((1 - JI)^2 + (alpha * RMSE / 100)^2)``, JI in [0, 1], RMSE nm."""
    if not np.isfinite(rmse_nm):
        return float("nan")
    return float(1.0 - np.sqrt((1.0 - jaccard) ** 2 + (alpha * rmse_nm / 100.0) ** 2))


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _rms(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(v**2))) if v.size else float("nan")


def exclude_border(
    table: pd.DataFrame, border_px: float, frame_shape: tuple[int, int], pixel_size_nm: float
) -> pd.DataFrame:
    """Rows whose position lies at least ``border_px`` camera pixels inside the frame."""
    h, w = frame_shape
    b = border_px * pixel_size_nm
    x, y = table["x_nm"].to_numpy(float), table["y_nm"].to_numpy(float)
    keep = (x >= b) & (x < w * pixel_size_nm - b) & (y >= b) & (y < h * pixel_size_nm - b)
    return table[keep].reset_index(drop=True)


#: the metrics a user reads first (``var-emitter evaluate`` prints these)
SUMMARY_METRICS = (
    "n_pred",
    "n_true",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "jaccard",
    "rmse_lat",
    "rmse_ax",
    "rmse_vol",
    "efficiency_lat",
    "efficiency_ax",
    "photons_rel_error",
    "bg_abs_error",
    "rmse_lat_over_crlb",
)
#: the columns of :func:`threshold_sweep` besides the threshold (always defined, whatever the tables hold)
SWEEP_METRICS = (
    "n_pred",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "jaccard",
    "rmse_lat",
    "rmse_ax",
    "efficiency_lat",
)


def metrics_from_matches(m: Matches) -> dict[str, float]:
    """All metrics of a :class:`Matches`; NaN where a metric is undefined (no pairs, no z, ...)."""
    tp, fp, fn = m.tp, m.fp, m.fn
    jac = _ratio(tp, tp + fp + fn) if tp + fp + fn else 1.0
    out: dict[str, float] = {
        "n_pred": len(m.pred),
        "n_true": len(m.truth),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "jaccard": jac,
    }
    pairs = m.pairs()
    dx = pairs["dx_nm"].to_numpy(float) if tp else np.zeros(0)
    dy = pairs["dy_nm"].to_numpy(float) if tp else np.zeros(0)
    has_z = "dz_nm" in pairs.columns and tp > 0
    dz = pairs["dz_nm"].to_numpy(float) if has_z else np.zeros(0)
    out["rmse_x"] = _rms(dx)
    out["rmse_y"] = _rms(dy)
    out["rmse_lat"] = _rms(np.hypot(dx, dy))
    out["rmse_ax"] = _rms(dz) if has_z else float("nan")
    out["rmse_vol"] = _rms(np.sqrt(dx**2 + dy**2 + dz**2)) if has_z else float("nan")
    out["bias_x"] = float(dx.mean()) if tp else float("nan")
    out["bias_y"] = float(dy.mean()) if tp else float("nan")
    out["efficiency_lat"] = efficiency(jac, out["rmse_lat"], 1.0)
    out["efficiency_ax"] = efficiency(jac, out["rmse_ax"], 0.5)
    # the optional metrics exist whenever the tables have the columns (NaN without matches), so that callers
    # see the same keys for a run that found nothing
    nan = float("nan")
    if "photons" in m.pred.columns and "photons" in m.truth.columns:
        out["photons_rel_error"] = out["photons_rel_bias"] = nan
    if "bg" in m.pred.columns and "bg" in m.truth.columns:
        out["bg_abs_error"] = out["bg_rel_error"] = nan
    if {"crlb_x_nm", "crlb_y_nm"} <= set(m.truth.columns):
        out["crlb_lat"] = out["rmse_lat_over_crlb"] = nan
    if tp and "photons_pred" in pairs and "photons_true" in pairs:
        true_ph = pairs["photons_true"].to_numpy(float)
        rel = (pairs["photons_pred"].to_numpy(float) - true_ph) / np.where(true_ph > 0, true_ph, np.nan)
        out["photons_rel_error"] = float(np.nanmean(np.abs(rel)))
        out["photons_rel_bias"] = float(np.nanmean(rel))
    if tp and "bg_pred" in pairs and "bg_true" in pairs:
        dbg = pairs["bg_pred"].to_numpy(float) - pairs["bg_true"].to_numpy(float)
        out["bg_abs_error"] = float(np.mean(np.abs(dbg)))
        out["bg_rel_error"] = float(np.nanmean(np.abs(dbg) / np.abs(pairs["bg_true"].to_numpy(float))))
    if tp and "crlb_x_nm_true" in pairs and "crlb_y_nm_true" in pairs:
        cx = pairs["crlb_x_nm_true"].to_numpy(float)
        cy = pairs["crlb_y_nm_true"].to_numpy(float)
        out["crlb_lat"] = float(np.sqrt(np.mean(cx**2 + cy**2)))
        out["rmse_lat_over_crlb"] = _ratio(out["rmse_lat"], out["crlb_lat"])
        if has_z and "crlb_z_nm_true" in pairs:
            out["crlb_ax"] = _rms(pairs["crlb_z_nm_true"].to_numpy(float))
            out["rmse_ax_over_crlb"] = _ratio(out["rmse_ax"], out["crlb_ax"])
    return out


def evaluate(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    tolerance_nm: float = 250.0,
    tolerance_z_nm: float | None = None,
    border_px: float | None = None,
    frame_shape: tuple[int, int] | None = None,
    pixel_size_nm: float | None = None,
) -> dict[str, float]:
    """Match ``pred`` to ``truth`` per frame and return the metrics as a dict of floats.

    Keys: n_pred, n_true, tp, fp, fn, precision, recall, f1, jaccard, rmse_x/y/lat/ax/vol, bias_x/y,
    efficiency_lat/ax, and when the columns exist photons_rel_error/bias, bg_abs/rel_error, crlb_lat,
    rmse_lat_over_crlb (crlb_ax, rmse_ax_over_crlb). ``border_px`` drops predictions and truths within that
    many camera pixels of the frame edge (needs ``frame_shape`` (H, W) in camera pixels; the pixel size comes
    from the argument or the tables' ``attrs['pixel_size_nm']``).
    """
    check_columns(pred, "predicted")
    check_columns(truth, "ground-truth")
    if border_px:
        if frame_shape is None:
            raise ParameterError("border_px needs frame_shape (H, W) in camera pixels")
        px = pixel_size_nm or pred.attrs.get("pixel_size_nm") or truth.attrs.get("pixel_size_nm")
        if not px:
            raise ParameterError("border_px needs pixel_size_nm (not given and not in the tables' metadata)")
        pred = exclude_border(pred, border_px, frame_shape, float(px))
        truth = exclude_border(truth, border_px, frame_shape, float(px))
    m = match(pred, truth, tolerance_nm, tolerance_z_nm)
    return metrics_from_matches(m)


def threshold_sweep(
    pred: pd.DataFrame,
    truth: pd.DataFrame,
    thresholds: Sequence[float] | np.ndarray | None = None,
    tolerance_nm: float = 250.0,
    tolerance_z_nm: float | None = None,
) -> pd.DataFrame:
    """Metrics vs probability threshold (a PR curve): one row per threshold applied to ``pred['prob']``."""
    check_columns(pred, "predicted", ("prob",))
    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2)
    rows = []
    prob = pred["prob"].to_numpy(float)
    for th in thresholds:  # a handful of thresholds
        m = match(pred[prob >= th].reset_index(drop=True), truth, tolerance_nm, tolerance_z_nm)
        r = metrics_from_matches(m)
        rows.append(
            {
                "threshold": float(th),
                **{k: r[k] for k in SWEEP_METRICS},
            }
        )
    return pd.DataFrame(rows)
