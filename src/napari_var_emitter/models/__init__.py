"""Emitter models: the VAR next-scale predictor, the U-Net baseline, and their configs.

``build_model(config)`` builds either from a ``ModelConfig`` (or its dict form, discriminated by ``kind``).
"""

from __future__ import annotations

from .base import EmitterModel
from .config import ModelConfig, UNetConfig, VARConfig, model_config_adapter, parse_model_config
from .registry import MODELS, build_model
from .unet import UNetPredictor
from .var import VARPredictor

__all__ = [
    "MODELS",
    "EmitterModel",
    "ModelConfig",
    "UNetConfig",
    "UNetPredictor",
    "VARConfig",
    "VARPredictor",
    "build_model",
    "model_config_adapter",
    "parse_model_config",
]
