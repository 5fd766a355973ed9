"""Training: validated config, simulated/labelled data, the trainer, callbacks and DDP support."""

from __future__ import annotations

from . import callbacks
from .callbacks import Callback, EarlyStopping, TrainState
from .config import TrainConfig
from .trainer import TrainResult, dry_run, train

__all__ = [
    "TrainConfig",
    "train",
    "dry_run",
    "TrainResult",
    "TrainState",
    "Callback",
    "EarlyStopping",
    "callbacks",
]
