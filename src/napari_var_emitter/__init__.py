"""napari-var-emitter: single-molecule localization with a next-scale (VAR) emitter predictor.

The small public API (imported lazily so that ``import napari_var_emitter`` stays cheap)::

    from napari_var_emitter import simulate, train, load_model, predict, evaluate, read_table, write_table
    from napari_var_emitter import correct_drift, group_localizations, filter_table, frc_resolution
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_API = {
    "simulate": "napari_var_emitter.simulation",
    "SimulationConfig": "napari_var_emitter.simulation",
    "train": "napari_var_emitter.training",
    "TrainConfig": "napari_var_emitter.training",
    "load_model": "napari_var_emitter.checkpoints",
    "predict": "napari_var_emitter.inference",
    "Predictor": "napari_var_emitter.inference",
    "evaluate": "napari_var_emitter.evaluation",
    "render": "napari_var_emitter.rendering",
    "read_stack": "napari_var_emitter.io",
    "read_table": "napari_var_emitter.io",
    "write_table": "napari_var_emitter.io",
    "read_emitters": "napari_var_emitter.io",
    "write_emitters": "napari_var_emitter.io",
    "correct_drift": "napari_var_emitter.postprocessing",
    "group_localizations": "napari_var_emitter.postprocessing",
    "filter_table": "napari_var_emitter.postprocessing",
    "frc_resolution": "napari_var_emitter.postprocessing",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
