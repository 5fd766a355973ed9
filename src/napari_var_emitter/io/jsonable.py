"""JSON for metadata that holds numpy values, paths, timestamps and pydantic models (one encoder)."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

import numpy as np


def json_default(obj: Any) -> Any:
    """``default=`` hook for :func:`json.dumps`: numpy scalars/arrays, paths, timestamps, pydantic models."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "isoformat"):  # datetime, pandas Timestamp
        return obj.isoformat()
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def to_json(obj: Any, **kwargs: Any) -> str:
    """``obj`` as JSON text (see :func:`json_default`); TypeError when something cannot be encoded."""
    return json.dumps(obj, default=json_default, **kwargs)
