"""The inference form as plain values (Qt-free): what to run on, with which settings.

Every function here takes the values the widget shows (numbers, strings, paths, a layer-like object) and
returns what the core needs, so that the rules are tested without a GUI.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ...camera import CameraConfig
from ...errors import ParameterError

MAP_BUDGET_BYTES = 1 << 30  #: probability maps kept for display, at most (float32, all scales)
COLOR_FEATURES = ("photons", "z_nm", "prob", "uncertainty_nm", "bg")


def camera_frames(layer: Any) -> Any:
    """The layer's data as a (T, Y, X) array, or a ParameterError naming what is wrong with it."""
    if layer is None:
        raise ParameterError("No image layer selected: open a camera stack (TIFF) or the sample data first.")
    if getattr(layer, "rgb", False):
        raise ParameterError(
            f"Layer '{layer.name}' is an RGB image; localization needs a single-channel stack."
        )
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ParameterError(
            f"Layer '{layer.name}' has {data.ndim} dimensions {tuple(data.shape)}; expected (frames, y, x)."
        )
    if 0 in data.shape:
        raise ParameterError(f"Layer '{layer.name}' is empty {tuple(data.shape)}.")
    return data


def frame_range(first: int, last: int) -> range:
    """Frames ``first`` to ``last`` inclusive (0-based)."""
    if last < first:
        raise ParameterError(f"Frame range {first}-{last}: the last frame is before the first.")
    return range(int(first), int(last) + 1)


def map_frame_count(
    requested: int, n_frames: int, scales: tuple[int, ...], frame_shape: tuple[int, int]
) -> int:
    """Frames that get probability maps: the ``requested`` first ones, within :data:`MAP_BUDGET_BYTES`."""
    per_frame = sum(f * f for f in scales) * frame_shape[0] * frame_shape[1] * 4
    return int(min(requested, n_frames, MAP_BUDGET_BYTES // max(per_frame, 1)))


def default_scale_choice(
    scales: tuple[int, ...], previous: set[int] | None = None, localize: int | None = None
) -> dict[int, bool]:
    """Which scale boxes start checked: the user's previous choice where it still applies, else the scale
    the checkpoint localizes on (``localize``; camera resolution when not given)."""
    keep = {f for f in previous or () if f in scales}
    chosen = keep or {localize if localize in scales else min(scales)}
    return {f: f in chosen for f in scales}


def color_choices(columns: Any) -> list[str]:
    """Features a points layer can be coloured by, among the table's columns."""
    return [c for c in COLOR_FEATURES if c in set(columns)]


def predictor_accepts(keyword: str) -> bool:
    """Whether this version's ``Predictor`` takes ``keyword``."""
    from ...inference import Predictor

    return keyword in inspect.signature(Predictor).parameters


def predictor_kwargs(
    checkpoint: str | Path | None,
    device: str,
    camera: CameraConfig | dict,
    threshold: float,
    refine: bool | None = None,
    split: bool = True,
    hot_pixels: bool = True,
) -> dict[str, Any]:
    """Keyword arguments of ``Predictor`` from the form. ``refine`` (PSF fit refinement; None: the
    checkpoint's default), ``split`` (the fit's one-or-two-emitters test) and ``hot_pixels`` (hot pixels
    replaced) are passed only when this version's Predictor has them."""
    if not 0.0 < float(threshold) <= 1.0:
        raise ParameterError(f"threshold must be in (0, 1], got {threshold}")
    kwargs: dict[str, Any] = {
        "model": None if checkpoint is None else Path(checkpoint),
        "device": device,
        "camera": CameraConfig.from_dict(camera),
        "threshold": float(threshold),
    }
    if refine is not None and predictor_accepts("refine"):
        kwargs["refine"] = bool(refine)
    if predictor_accepts("split"):
        kwargs["split"] = bool(split)
    if predictor_accepts("hot_pixels"):
        kwargs["hot_pixels"] = bool(hot_pixels)
    return kwargs


def checkpoint_info(path: str | Path | None) -> dict[str, Any]:
    """What the form shows from a checkpoint (None: the bundled model): its output scales, the scale it
    localizes on, camera, pixel size, and whether the Predictor refines its localizations by default (None
    where refinement does not exist)."""
    from ...checkpoints import load_model
    from ...inference import Predictor

    loaded = load_model(path)
    refine = getattr(Predictor(loaded, device="cpu"), "refine", None) if predictor_accepts("refine") else None
    return {
        "scales": tuple(int(s) for s in loaded.model.scales),
        "localize_scale": int(getattr(loaded.model, "localize_scale", min(loaded.model.scales))),
        "camera": loaded.camera,
        "pixel_size_nm": loaded.pixel_size_nm,
        "refine": refine,
    }
