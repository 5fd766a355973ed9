"""Validated simulation parameters (pydantic v2, unknown keys are errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..camera import CameraConfig, format_validation_error
from ..errors import InputFileError, ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM

Range = tuple[float, float]


class _Config(BaseModel):
    """Base: unknown keys are errors; :meth:`from_dict` turns validation errors into ParameterError.

    Direct construction (``SimulationConfig(density=-1)``) raises pydantic's ``ValidationError`` (a
    ``ValueError`` naming the field), as nested configs need.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | _Config | None):
        """Validate a dict (JSON, checkpoint, widget values); a ready instance passes through."""
        if values is None:
            return cls()
        if isinstance(values, cls):
            return values
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ParameterError(f"{cls.__name__}: {format_validation_error(exc)}") from None


def _check_range(value: Range, name: str, positive: bool) -> Range:
    lo, hi = value
    if positive and lo <= 0:
        raise ValueError(f"{name} must be > 0, got ({lo}, {hi})")
    if not positive and lo < 0:
        raise ValueError(f"{name} must be >= 0, got ({lo}, {hi})")
    if hi < lo:
        raise ValueError(f"{name} must be (low, high) with low <= high, got ({lo}, {hi})")
    return (float(lo), float(hi))


class PSFConfig(_Config):
    """Point-spread function: a pixel-integrated 2-D Gaussian, or an astigmatic 3-D Gaussian.

    ``gaussian``: sigma (pixels) drawn per emitter uniformly from ``sigma_px``; z is 0.
    ``astigmatic`` (Huang et al., Science 2008): with ``u = (z -/+ focal_offset_nm) / depth_nm``,
    ``sigma_x/y = sigma0_px * sqrt(1 + u^2 + a u^3 + b u^4)``; sigma_x is smallest at
    ``z = +focal_offset_nm`` and sigma_y at ``z = -focal_offset_nm`` (so sigma_x > sigma_y for z < 0).
    """

    kind: Literal["gaussian", "astigmatic"] = "gaussian"
    sigma_px: Range = (1.0, 1.4)
    sigma0_px: float = Field(1.1, gt=0.0, le=10.0)
    focal_offset_nm: float = Field(400.0, ge=0.0)
    depth_nm: float = Field(400.0, gt=0.0)
    a: float = 0.0
    b: float = 0.0

    @field_validator("sigma_px")
    @classmethod
    def _sigma(cls, v: Range) -> Range:
        v = _check_range(v, "sigma_px", positive=True)
        if v[1] > 10:
            raise ValueError(f"sigma_px must be <= 10 pixels, got {v}")
        return v


class SimulationConfig(_Config):
    """Parameters of simulated SMLM movies.

    ``density`` is the mean number of emitters visible (on for any part of the frame) per um^2 per frame.
    ``photons`` is the range of an emitter's photon flux per frame when on for the whole frame; an emitter
    on for a fraction of a frame emits that fraction (DECODE). ``background`` is the per-frame level range in
    photons/pixel; ``bg_field_amplitude`` > 0 multiplies it by a smooth random field ``1 + A * f(y, x)``
    (``|f| <= 1``, correlation length ``bg_field_scale_px``). ``z_range_nm`` is used by astigmatic PSFs only.
    ``partner_fraction`` of the emitters get a close partner (a second emitter on at exactly the same times,
    at a distance drawn uniformly from ``partner_distance_nm`` in a random direction, with its own
    brightness): the close pairs that high-density imaging produces and a localizer must separate. The
    partners come on top of ``density``.
    """

    frame_size: tuple[int, int] = (64, 64)
    pixel_size_nm: float = Field(DEFAULT_PIXEL_SIZE_NM, gt=0.0)
    density: float = Field(1.0, ge=0.0, le=100.0)
    photons: Range = (1000.0, 5000.0)
    photon_distribution: Literal["uniform", "loguniform"] = "uniform"
    background: Range = (20.0, 100.0)
    bg_field_amplitude: float = Field(0.0, ge=0.0, lt=1.0)
    bg_field_scale_px: float = Field(16.0, gt=0.0)
    psf: PSFConfig = Field(default_factory=PSFConfig)
    z_range_nm: Range = (-500.0, 500.0)
    on_time_frames: float = Field(2.0, gt=0.0)
    partner_fraction: float = Field(0.0, ge=0.0, le=1.0)
    partner_distance_nm: Range = (20.0, 200.0)
    camera: CameraConfig = Field(default_factory=CameraConfig)

    @field_validator("frame_size")
    @classmethod
    def _frame_size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 1 or max(v) > 16384:
            raise ValueError(f"frame_size must be (height, width) with sides in 1..16384, got {tuple(v)}")
        return v

    @field_validator("photons")
    @classmethod
    def _photons(cls, v: Range) -> Range:
        return _check_range(v, "photons", positive=True)

    @field_validator("background")
    @classmethod
    def _background(cls, v: Range) -> Range:
        return _check_range(v, "background", positive=False)

    @field_validator("partner_distance_nm")
    @classmethod
    def _partner_distance(cls, v: Range) -> Range:
        return _check_range(v, "partner_distance_nm", positive=False)

    @field_validator("z_range_nm")
    @classmethod
    def _z_range(cls, v: Range) -> Range:
        if v[1] < v[0]:
            raise ValueError(f"z_range_nm must be (low, high) with low <= high, got {v}")
        return v

    @property
    def area_um2(self) -> float:
        h, w = self.frame_size
        return h * w * (self.pixel_size_nm / 1000.0) ** 2

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of the parameters; written atomically to ``path`` when given."""
        text = self.model_dump_json(indent=2)
        if path is not None:
            from ..io.atomic import atomic_path

            with atomic_path(path) as tmp:
                tmp.write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> SimulationConfig:
        """Read parameters from JSON (unknown keys are errors); also reads ``simulate``'s params.json."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputFileError(path, "file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(path, f"not a JSON parameter file ({exc})") from None
        if not isinstance(values, dict):
            raise InputFileError(path, "expected a JSON object of simulation parameters")
        if isinstance(values.get("simulation"), dict) and set(values) <= {"simulation", "n_frames", "seed"}:
            values = values["simulation"]  # a params.json written by `var-emitter simulate`
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InputFileError(path, format_validation_error(exc)) from None
