"""Self-describing checkpoints: one ``.pt`` file holding plain types and tensors only.

A checkpoint is a dict with::

    format="napari-var-emitter-checkpoint", format_version=1, software_version,
    model_config (dict), state_dict, camera (dict), simulation (training data parameters, dict or None),
    pixel_size_nm, training (epoch, step, history summary, best metric), [train_state (for resume)]

It is loaded with ``torch.load(..., weights_only=True)``, so opening a checkpoint can never run code.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .errors import CheckpointError
from .io.atomic import atomic_path

FORMAT = "napari-var-emitter-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_config", "state_dict", "camera", "pixel_size_nm")


def default_checkpoint_path() -> Path:
    """The bundled default model: ``<package>/pretrained/default.pt``."""
    return Path(__file__).resolve().parent / "pretrained" / "default.pt"


def _plain(value: Any) -> Any:
    """Pydantic models -> JSON-like dicts; tuples -> lists; everything else unchanged."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model_config: Any,
    state_dict: dict[str, torch.Tensor],
    camera: Any,
    pixel_size_nm: float,
    simulation: Any = None,
    training: dict | None = None,
    train_state: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file + rename) and return its path.

    ``model_config``, ``camera`` and ``simulation`` may be pydantic models or plain dicts; ``train_state``
    (optimizer/scheduler state dicts, RNG states as tensors or lists, data position) makes it resumable.
    """
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "software_version": __version__,
        "model_config": _plain(model_config),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "camera": _plain(camera),
        "simulation": _plain(simulation),
        "pixel_size_nm": float(pixel_size_nm),
        "training": training or {},
    }
    if train_state is not None:
        payload["train_state"] = train_state
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load and validate a checkpoint; every problem is a :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():  # torch words it differently across versions
            refused = "contains Python objects or code; refused (only plain data is loaded)"
            raise CheckpointError(path, refused) from None
        raise CheckpointError(path, "corrupt or not a PyTorch checkpoint") from None
    except (IndexError, KeyError, TypeError, AttributeError, struct.error):  # bytes that are no checkpoint
        raise CheckpointError(path, "corrupt or not a PyTorch checkpoint") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(path, f"truncated or corrupt checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(path, f"not a napari-var-emitter checkpoint (no '{FORMAT}' format tag)")
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            path,
            f"unknown checkpoint format_version {version!r} (this is napari-var-emitter {__version__}, "
            f"which reads version {FORMAT_VERSION}); use a matching version of the software",
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks {', '.join(missing)}")
    _check_metadata(ckpt, path)
    return ckpt


def _check_metadata(ckpt: dict, path: Path) -> None:
    """The types of the metadata fields (a hand-edited or foreign checkpoint fails here, in one line)."""
    px = ckpt["pixel_size_nm"]
    if isinstance(px, bool) or not isinstance(px, (int, float)) or not 0 < px < math.inf:
        raise CheckpointError(path, f"field pixel_size_nm must be a finite number > 0 (nm), got {px!r}")
    for key in ("model_config", "state_dict", "camera"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(path, f"field {key} must be a dict, got {type(ckpt[key]).__name__}")
    for key in ("simulation", "training", "train_state"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            raise CheckpointError(path, f"field {key} must be a dict, got {type(ckpt[key]).__name__}")
    sim = ckpt.get("simulation") or {}
    psf = sim.get("psf") if isinstance(sim.get("psf"), dict) else {}
    for name, value in (
        ("simulation.background", sim.get("background")),
        ("simulation.photons", sim.get("photons")),
        ("simulation.psf.sigma_px", psf.get("sigma_px")),
    ):
        if value is not None and not _is_range(value):
            raise CheckpointError(path, f"field {name} must be a [low, high] pair of numbers, got {value!r}")


def _is_range(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


@dataclass
class LoadedModel:
    """A model ready for inference plus what it was trained for."""

    model: torch.nn.Module
    model_config: Any
    camera: Any
    pixel_size_nm: float
    meta: dict = field(default_factory=dict)
    path: Path | None = None


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, Any]:
    """Build the model described by a loaded checkpoint dict and load its weights (CPU, eval mode)."""
    from pydantic import TypeAdapter, ValidationError

    from .camera import format_validation_error
    from .models import ModelConfig, build_model

    mc = ckpt["model_config"]
    if mc.get("kind") == "var" and ({"sparse_refine", "train_fine_crop"} & set(mc)):
        raise CheckpointError(
            path,
            "was trained with an earlier version whose 2x/4x/8x rungs did not see the image; "
            "retrain it with this version (`var-emitter train --config ...`)",
        )
    try:
        model_config = TypeAdapter(ModelConfig).validate_python(mc)
    except ValidationError as exc:
        raise CheckpointError(path, f"invalid model_config: {format_validation_error(exc)}") from None
    model = build_model(model_config)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            path, f"weights do not match the model config ({str(exc).splitlines()[0]})"
        ) from None
    return model.eval(), model_config


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a checkpoint into an eval-mode model on ``device``; ``path=None`` loads the bundled model."""
    from pydantic import ValidationError

    from .camera import CameraConfig, format_validation_error

    if path is None:
        path = default_checkpoint_path()
        if not path.is_file():
            raise CheckpointError(
                path,
                "the bundled default model is not installed; pass a checkpoint file (train one with "
                "`var-emitter train --config configs/default_cpu.json`)",
            )
    path = Path(path)
    ckpt = load_checkpoint(path)
    model, model_config = model_from_checkpoint(ckpt, path)
    try:
        camera = CameraConfig.model_validate(ckpt["camera"])
    except ValidationError as exc:
        raise CheckpointError(path, f"invalid camera: {format_validation_error(exc)}") from None
    if str(device) == "auto":
        from .devices import resolve_device

        device = resolve_device("auto")
    model = model.to(device)
    meta = {
        "simulation": ckpt.get("simulation"),
        "training": ckpt.get("training", {}),
        "software_version": ckpt.get("software_version"),
    }
    return LoadedModel(model, model_config, camera, float(ckpt["pixel_size_nm"]), meta, path)
