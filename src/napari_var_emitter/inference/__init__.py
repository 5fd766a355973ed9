"""Inference: streaming predictor (devices, batching, tiling) and post-processing into localization tables."""

from __future__ import annotations

from .postprocess import localize
from .predictor import BatchResult, PredictionResult, Predictor, predict

__all__ = ["Predictor", "predict", "BatchResult", "PredictionResult", "localize"]
