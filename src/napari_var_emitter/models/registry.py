"""Model registry: ``build_model(config)`` picks the class by ``config.kind``."""

from __future__ import annotations

from collections.abc import Callable

from .base import EmitterModel
from .config import UNetConfig, VARConfig, parse_model_config
from .unet import UNetPredictor
from .var import VARPredictor

MODELS: dict[str, Callable[..., EmitterModel]] = {"var": VARPredictor, "unet": UNetPredictor}


def build_model(config: VARConfig | UNetConfig | dict) -> EmitterModel:
    """Build the model a config (or a dict with ``kind``) describes; bad configs raise ParameterError."""
    cfg = parse_model_config(config)
    return MODELS[cfg.kind](cfg)
