"""Camera model: photons -> ADU (forward, noisy and mean) and ADU -> photons (inverse), in one place.

Forward model per pixel, for an expected number of incident photons ``n``:

1. photo-electrons ``e ~ Poisson(qe * n + spurious_charge)`` (spurious charge: EMCCD only);
2. EMCCD gain register ``e ~ Gamma(shape=e, scale=em_gain)`` (excess-noise factor F^2 = 2);
3. read noise ``e += Normal(0, read_noise_e)`` (sCMOS, and EMCCD output amplifier; not "ideal");
4. ``ADU = round(e / e_per_adu + baseline)`` clipped to ``[0, 2**bit_depth - 1]``, as uint16.

The inverse used on camera data (networks see photons, not ADU) is the exact inverse of the mean:
``photons = ((ADU - baseline) * e_per_adu / em_gain - spurious_charge) / qe``; with the default
``spurious_charge = 0`` this is ``(ADU - baseline) * e_per_adu / em_gain / qe``.

``CameraConfig()`` is the one default camera of the project (widgets, CLI, simulation); a camera profile is a
``CameraConfig`` saved as JSON (:func:`save_camera_profile`, :func:`load_camera_profile`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .camera_presets import CAMERA_PRESETS as CAMERA_PRESETS  # re-exported
from .errors import InputFileError, ParameterError

CameraType = Literal["emccd", "scmos", "ideal"]
ArrayT = TypeVar("ArrayT")


class CameraConfig(BaseModel):
    """Camera parameters. The defaults describe a typical scientific CMOS camera (e.g. Hamamatsu ORCA-Flash4).

    ``em_gain`` and ``spurious_charge`` apply to EMCCDs only: other camera types must keep ``em_gain = 1``
    and ``spurious_charge = 0``. An ``"ideal"`` camera has shot noise only (``read_noise_e`` must be 0).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    type: CameraType = "scmos"
    qe: float = Field(0.8, gt=0.0, le=1.0, description="quantum efficiency (photo-electrons per photon)")
    e_per_adu: float = Field(0.5, gt=0.0, description="electrons per ADU (after EM gain)")
    em_gain: float = Field(1.0, ge=1.0, description="EM gain (EMCCD only)")
    baseline: float = Field(100.0, ge=0.0, description="camera offset in ADU")
    read_noise_e: float = Field(1.5, ge=0.0, description="read noise, rms electrons")
    spurious_charge: float = Field(0.0, ge=0.0, description="clock-induced charge, electrons/pixel (EMCCD)")
    bit_depth: int = Field(16, ge=8, le=16, description="ADC bits; ADU are clipped to [0, 2**bit_depth - 1]")

    @model_validator(mode="after")
    def _check_type_specific(self) -> CameraConfig:
        if self.type != "emccd":
            if self.em_gain != 1.0:
                raise ValueError(f"em_gain must be 1 for a {self.type} camera (EM gain is EMCCD only)")
            if self.spurious_charge != 0.0:
                raise ValueError(f"spurious_charge must be 0 for a {self.type} camera (EMCCD only)")
        if self.type == "ideal" and self.read_noise_e != 0.0:
            raise ValueError("read_noise_e must be 0 for an ideal camera (shot noise only)")
        if self.baseline >= self.max_adu:
            raise ValueError(
                f"baseline {self.baseline:g} ADU must be below the {self.bit_depth}-bit maximum "
                f"of {self.max_adu} ADU"
            )
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any] | CameraConfig | None) -> CameraConfig:
        """Validate a dict (from JSON, a checkpoint, a widget); raise ParameterError naming the bad key."""
        if values is None:
            return cls()
        if isinstance(values, CameraConfig):
            return values
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ParameterError(f"camera: {format_validation_error(exc)}") from None

    @property
    def max_adu(self) -> int:
        return 2**self.bit_depth - 1

    @property
    def excess_noise_factor(self) -> float:
        """F^2: variance multiplier of the gain stage (2 for an EMCCD, 1 otherwise)."""
        return 2.0 if self.type == "emccd" else 1.0


def load_camera_profile(path: str | os.PathLike) -> CameraConfig:
    """A camera profile (a ``CameraConfig`` as JSON); InputFileError naming the file and the problem."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "camera profile not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(path, f"not a camera profile (JSON): {err}") from None
    if not isinstance(values, dict):
        raise InputFileError(path, "not a camera profile: expected a JSON object of camera parameters")
    try:
        return CameraConfig.model_validate(values)
    except ValidationError as exc:
        raise InputFileError(path, f"bad camera profile: {format_validation_error(exc)}") from None


def save_camera_profile(camera: CameraConfig | dict, path: str | os.PathLike) -> Path:
    """Write ``camera`` as a JSON camera profile (atomically); returns the path."""
    from .io.atomic import atomic_path

    text = CameraConfig.from_dict(camera).model_dump_json(indent=2) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and the problem (for ParameterError messages)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "value"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" + (f" (got {err['input']!r})" if err["type"] != "value_error" else ""))
    return "; ".join(parts)


def _camera(camera: CameraConfig | dict | None) -> CameraConfig:
    return CameraConfig.from_dict(camera)


def expected_adu(photons: ArrayT, camera: CameraConfig | dict | None = None) -> ArrayT:
    """Mean ADU for an expected number of incident photons per pixel (numpy array or torch tensor).

    No rounding or clipping: this is the mean of :func:`apply_camera` while it stays within range.
    """
    cam = _camera(camera)
    gain = cam.em_gain / cam.e_per_adu
    return (photons * cam.qe + cam.spurious_charge) * gain + cam.baseline


def adu_to_photons(adu: ArrayT, camera: CameraConfig | dict | None = None) -> ArrayT:
    """Convert camera counts to photons, the exact inverse of :func:`expected_adu`.

    Works on numpy arrays (returns float32) and torch tensors (returns a float32 tensor on the same device).
    """
    cam = _camera(camera)
    scale = cam.e_per_adu / cam.em_gain / cam.qe
    offset = cam.baseline + cam.spurious_charge * cam.em_gain / cam.e_per_adu
    if hasattr(adu, "detach"):  # torch tensor; no torch import needed here
        return (adu.float() - offset) * scale
    return ((np.asarray(adu, dtype=np.float32) - np.float32(offset)) * np.float32(scale)).astype(
        np.float32, copy=False
    )


def apply_camera(
    photons: np.ndarray,
    camera: CameraConfig | dict | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Noisy camera image (uint16 ADU) from expected incident photons per pixel (any shape, >= 0)."""
    cam = _camera(camera)
    rng = np.random.default_rng(rng)
    lam = np.asarray(photons, dtype=np.float64) * cam.qe
    if cam.spurious_charge:
        lam += cam.spurious_charge
    counts = rng.poisson(lam)
    if cam.type == "emccd":  # Gamma(shape=0) is 0: an empty pixel stays empty after the gain register
        electrons = rng.gamma(counts, cam.em_gain).astype(np.float32)
    else:
        electrons = counts.astype(np.float32)
    if cam.read_noise_e > 0:
        noise = rng.standard_normal(electrons.shape, dtype=np.float32)
        noise *= np.float32(cam.read_noise_e)
        electrons += noise
    electrons *= np.float32(1.0 / cam.e_per_adu)
    electrons += np.float32(cam.baseline)
    np.rint(electrons, out=electrons)
    np.clip(electrons, 0, cam.max_adu, out=electrons)
    return electrons.astype(np.uint16)


def pixel_variance(mu: np.ndarray, camera: CameraConfig | None) -> np.ndarray:
    """Variance (photon units) of a pixel with expected ``mu`` incident photons (numpy or torch):
    ``F^2 (mu + c / qe) / qe + (read_noise_e / (em_gain qe))^2`` (F^2 = 2 for an EMCCD, c = spurious charge);
    ``camera=None``: pure shot noise (``mu``). See :mod:`napari_var_emitter.simulation.crlb`."""
    if camera is None:
        return mu
    extra = camera.spurious_charge / camera.qe
    read = (camera.read_noise_e / (camera.em_gain * camera.qe)) ** 2
    return camera.excess_noise_factor * (mu + extra) / camera.qe + read
