"""Targets and losses: per-scale target maps from emitter lists, PPXYZB and Gaussian-mixture losses."""

from __future__ import annotations

from ..models.targets import EmitterTargets, rasterize, scale_bg
from .config import LossConfig
from .gmm import gmm_loss
from .multiscale import MultiScaleLoss, build_loss, scale_weight
from .ppxyzb import ppxyzb_loss

__all__ = [
    "EmitterTargets",
    "LossConfig",
    "MultiScaleLoss",
    "build_loss",
    "gmm_loss",
    "ppxyzb_loss",
    "rasterize",
    "scale_bg",
    "scale_weight",
]
