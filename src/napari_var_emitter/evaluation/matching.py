"""Per-frame optimal matching of predicted to true emitters (Hungarian assignment within a tolerance)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import ParameterError

REQUIRED = ("frame", "x_nm", "y_nm")


@dataclass(frozen=True)
class Matches:
    """Result of :func:`match`: matched pairs as positional row indices into ``pred`` and ``truth``."""

    pred: pd.DataFrame
    truth: pd.DataFrame
    pred_index: np.ndarray  #: (tp,) row positions in ``pred`` of the matched predictions
    truth_index: np.ndarray  #: (tp,) row positions in ``truth``, pairwise with ``pred_index``

    @property
    def tp(self) -> int:
        return int(len(self.pred_index))

    @property
    def fp(self) -> int:
        return len(self.pred) - self.tp

    @property
    def fn(self) -> int:
        return len(self.truth) - self.tp

    def pairs(self) -> pd.DataFrame:
        """Matched pairs side by side: ``<col>_pred``, ``<col>_true`` and ``dx_nm, dy_nm[, dz_nm]``."""
        p = self.pred.iloc[self.pred_index].reset_index(drop=True)
        t = self.truth.iloc[self.truth_index].reset_index(drop=True)
        out = pd.concat([p.add_suffix("_pred"), t.add_suffix("_true")], axis=1)
        out["dx_nm"] = p["x_nm"].to_numpy(float) - t["x_nm"].to_numpy(float)
        out["dy_nm"] = p["y_nm"].to_numpy(float) - t["y_nm"].to_numpy(float)
        if "z_nm" in p and "z_nm" in t:
            out["dz_nm"] = p["z_nm"].to_numpy(float) - t["z_nm"].to_numpy(float)
        return out

    def unmatched_pred(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.pred)), self.pred_index)

    def unmatched_truth(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.truth)), self.truth_index)


def check_columns(df: pd.DataFrame, name: str, columns=REQUIRED) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ParameterError(f"{name} table lacks column(s) {', '.join(missing)}")


def _assign(pa: np.ndarray, ta: np.ndarray, tol: float, pz, tz, tol_z) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, then minimum-total-distance assignment of one frame's points."""
    dist = cdist(pa, ta)
    allowed = dist <= tol
    if tol_z is not None:
        allowed &= np.abs(pz[:, None] - tz[None, :]) <= tol_z
    if not allowed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # a forbidden pair costs more than any complete set of allowed pairs: the assignment first maximises the
    # number of allowed pairs, then minimises their summed distance; forbidden pairs are dropped afterwards
    big = (min(dist.shape) + 1) * (tol + 1.0) * 2.0
    cost = np.where(allowed, dist, big)
    r, c = linear_sum_assignment(cost)
    keep = allowed[r, c]
    return r[keep], c[keep]


def match(
    pred: pd.DataFrame, truth: pd.DataFrame, tolerance_nm: float = 250.0, tolerance_z_nm: float | None = None
) -> Matches:
    """Match ``pred`` to ``truth`` frame by frame with the Hungarian algorithm.

    A pair is allowed when its lateral distance is ``<= tolerance_nm`` (and ``|dz| <= tolerance_z_nm`` when
    given). Per frame the number of pairs is maximised, then the summed lateral distance minimised.
    """
    check_columns(pred, "predicted")
    check_columns(truth, "ground-truth")
    for name, tol in (("tolerance_nm", tolerance_nm), ("tolerance_z_nm", tolerance_z_nm)):
        if tol is not None and not 0 < tol < np.inf:
            raise ParameterError(f"{name} must be a finite number > 0, got {tol}")
    if tolerance_z_nm is not None:
        check_columns(pred, "predicted", ("z_nm",))
        check_columns(truth, "ground-truth", ("z_nm",))
    pf = pred["frame"].to_numpy(np.int64)
    tf = truth["frame"].to_numpy(np.int64)
    pxy = pred[["x_nm", "y_nm"]].to_numpy(float)
    txy = truth[["x_nm", "y_nm"]].to_numpy(float)
    pz = pred["z_nm"].to_numpy(float) if tolerance_z_nm is not None else None
    tz = truth["z_nm"].to_numpy(float) if tolerance_z_nm is not None else None
    p_order = np.argsort(pf, kind="stable")
    t_order = np.argsort(tf, kind="stable")
    pf_s, tf_s = pf[p_order], tf[t_order]
    common = np.intersect1d(pf_s, tf_s)
    p_lo, p_hi = np.searchsorted(pf_s, common, "left"), np.searchsorted(pf_s, common, "right")
    t_lo, t_hi = np.searchsorted(tf_s, common, "left"), np.searchsorted(tf_s, common, "right")
    pi_all, ti_all = [], []
    for a, b, c, d in zip(p_lo, p_hi, t_lo, t_hi, strict=True):  # loop over frames, not emitters
        pi, ti = p_order[a:b], t_order[c:d]
        r, k = _assign(
            pxy[pi],
            txy[ti],
            tolerance_nm,
            None if pz is None else pz[pi],
            None if tz is None else tz[ti],
            tolerance_z_nm,
        )
        pi_all.append(pi[r])
        ti_all.append(ti[k])
    pred_index = np.concatenate(pi_all) if pi_all else np.zeros(0, np.int64)
    truth_index = np.concatenate(ti_all) if ti_all else np.zeros(0, np.int64)
    return Matches(pred, truth, pred_index.astype(np.int64), truth_index.astype(np.int64))
