"""Evaluation of localizations against ground truth: matching, metrics, plots."""

from __future__ import annotations

from .matching import Matches, match
from .metrics import efficiency, evaluate, metrics_from_matches, threshold_sweep

__all__ = ["Matches", "match", "evaluate", "efficiency", "metrics_from_matches", "threshold_sweep"]
