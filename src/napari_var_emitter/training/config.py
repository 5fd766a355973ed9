"""The validated training configuration (``configs/*.json``); every key is documented in configs/README.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..camera import CameraConfig
from ..errors import InputFileError, ParameterError
from ..losses import LossConfig
from ..models import ModelConfig, VARConfig
from ..simulation import SimulationConfig

Monitor = Literal["jaccard", "efficiency_lat", "f1", "val_loss"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SimulationData(_Strict):
    """Training batches simulated on the fly; a fixed simulated validation set."""

    kind: Literal["simulation"] = "simulation"
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    tile_size: int = Field(40, ge=8, description="training tile, camera pixels")
    density_range: tuple[float, float] | None = Field(
        None, description="emitters/um^2/frame drawn uniformly per window; None: simulation.density"
    )
    on_time_range: tuple[float, float] | None = Field(
        None,
        description="mean on-time (frames) drawn log-uniformly per window; None: simulation.on_time_frames",
    )
    label_photon_floor: float = Field(
        0.0, ge=0, description="emitters with fewer photons in the target frame are not labels (still imaged)"
    )
    steps_per_epoch: int = Field(200, ge=1)
    val_frames: int = Field(256, ge=0, description="validation windows (0: no validation)")
    val_seed: int = 12345

    @model_validator(mode="after")
    def _check_range(self) -> SimulationData:
        if self.density_range is not None and not 0 <= self.density_range[0] <= self.density_range[1]:
            raise ValueError("density_range must be (lo, hi) with 0 <= lo <= hi")
        if self.on_time_range is not None and not 0 < self.on_time_range[0] <= self.on_time_range[1]:
            raise ValueError("on_time_range must be (lo, hi) frames with 0 < lo <= hi")
        return self


class LabelledSource(_Strict):
    """A TIFF stack with its ground-truth emitter file, or one seed-format HDF5 (image/positions/...)."""

    stack: Path | None = Field(None, description="TIFF/OME-TIFF stack (ADU)")
    emitters: Path | None = Field(None, description="ground-truth emitters (.h5/.csv, io.read_emitters)")
    h5: Path | None = Field(
        None, description="seed HDF5 with image, positions (nm), photons[, background, frame]"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> LabelledSource:
        if (self.h5 is None) == (self.stack is None or self.emitters is None):
            raise ValueError("give either 'h5', or both 'stack' and 'emitters'")
        return self


class LabelledData(_Strict):
    """Frames with known emitters; random tiles are cut from them."""

    kind: Literal["labelled"]
    paths: list[LabelledSource] = Field(min_length=1)
    val_paths: list[LabelledSource] = Field(default_factory=list, description="empty: hold out val_fraction")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="last frames held out when no val_paths")
    camera: CameraConfig = Field(
        default_factory=CameraConfig, description="camera of the stacks (ADU->photons)"
    )
    pixel_size_nm: float | None = Field(None, gt=0, description="None: from the stack metadata")
    tile_size: int = Field(40, ge=8)
    steps_per_epoch: int = Field(200, ge=1)
    val_seed: int = 12345
    val_tiles: int = Field(256, ge=0)


DataConfig = Annotated[SimulationData | LabelledData, Field(discriminator="kind")]


class OptimizerConfig(_Strict):
    """AdamW."""

    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(_Strict):
    """Linear warm-up, then cosine to ``min_lr_ratio * lr``, step decay, or constant."""

    kind: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    step_epochs: int = Field(10, ge=1, description="step decay: epochs between drops")
    gamma: float = Field(0.5, gt=0, le=1, description="step decay: factor per drop")


class ScheduledSamplingConfig(_Strict):
    """Teacher-forcing probability of coarser scales, annealed linearly over training progress."""

    start: float = Field(1.0, ge=0, le=1)
    end: float = Field(0.5, ge=0, le=1)
    anneal_from: float = Field(0.1, ge=0, le=1)
    anneal_to: float = Field(0.8, ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> ScheduledSamplingConfig:
        if self.anneal_to <= self.anneal_from:
            raise ValueError("anneal_to must be > anneal_from")
        return self


class CheckpointConfig(_Strict):
    every_n_epochs: int = Field(0, ge=0, description="also keep epoch_XXX.pt every N epochs (0: never)")
    keep: int = Field(3, ge=1, description="how many epoch_XXX.pt to keep")
    monitor: Monitor = "jaccard"


class EarlyStoppingConfig(_Strict):
    enabled: bool = False
    patience: int = Field(10, ge=1, description="validations without improvement before stopping")
    monitor: Monitor = "jaccard"
    min_delta: float = Field(0.0, ge=0)


class ValidationConfig(_Strict):
    every_n_epochs: int = Field(1, ge=1)
    threshold: float = Field(0.5, gt=0, le=1)
    tolerance_nm: float = Field(250.0, gt=0)
    batch_size: int = Field(64, ge=1)
    scale_index: int = Field(
        0, description="output scale to localize on (0: camera resolution, like inference; -1: the finest)"
    )


class StabilityConfig(_Strict):
    """What happens on non-finite losses or gradients."""

    max_failures: int = Field(5, ge=1, description="consecutive skipped steps before rolling back")
    lr_drop: float = Field(0.5, gt=0, lt=1, description="learning-rate factor applied on roll-back")


class TrainConfig(_Strict):
    """Everything a training run needs; ``from_json(path)`` raises ParameterError naming the bad key."""

    model: ModelConfig = Field(default_factory=VARConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    data: DataConfig = Field(default_factory=SimulationData)
    batch_size: int = Field(16, ge=1)
    epochs: int = Field(20, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps in total")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    scheduled_sampling: ScheduledSamplingConfig = Field(default_factory=ScheduledSamplingConfig)
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm; null: no clipping")
    amp: bool = Field(True, description="mixed precision (CUDA only; ignored elsewhere)")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    stability: StabilityConfig = Field(default_factory=StabilityConfig)
    seed: int = 0
    num_workers: int = Field(0, ge=0)
    log_every: int = Field(20, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    init_from: Path | None = Field(
        None, description="start from the weights of this checkpoint (same model config; fresh optimizer)"
    )
    train_only: tuple[str, ...] | None = Field(
        None, description="train only parameters whose names start with one of these prefixes, e.g. ['fine.']"
    )

    @model_validator(mode="after")
    def _loss_fits_model(self) -> TrainConfig:
        if self.loss.kind == "gmm" and not self.model.sigma_channels:
            raise ValueError("loss.kind 'gmm' needs model.sigma_channels = true (or use loss.kind 'ppxyzb')")
        return self

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    @property
    def total_steps(self) -> int:
        total = self.epochs * self.data.steps_per_epoch
        return min(total, self.max_steps) if self.max_steps else total

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Validate a dict; errors become one ParameterError naming ``source`` and each bad key."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ParameterError(format_errors(exc, values, source)) from None

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config file. ``"extends": "base.json"`` (relative to the file) starts from another config:
        objects merge key by key, every other value replaces the base's."""
        path = Path(path)
        return cls.from_dict(_read_with_bases(path, ()), source=path.name)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The JSON object in ``path`` merged onto the config it ``extends`` (recursively)."""
    if not path.is_file():
        raise InputFileError(path, "no such config file")
    if path.resolve() in seen:
        raise InputFileError(path, "'extends' goes round in a circle")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise InputFileError(path, "a training config must be a JSON object")
    base = values.pop("extends", None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise InputFileError(path, "'extends' must be the path of another config file")
    return _merged(_read_with_bases(path.parent / base, (*seen, path.resolve())), values)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def _key_path(loc: tuple, values: Any) -> str:
    """Dotted key path of a pydantic error location, without the tags pydantic adds for tagged unions."""
    parts: list[str] = []
    node = values
    entered = True  # just stepped into ``node``: pydantic puts a tagged union's tag right after its field
    for item in loc:
        if entered and isinstance(node, dict) and isinstance(item, str) and node.get("kind") == item:
            entered = False
            continue  # discriminator tag, not a key
        entered = True
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
        node = (
            node.get(item)
            if isinstance(node, dict)
            else (
                node[item] if isinstance(node, list) and isinstance(item, int) and item < len(node) else None
            )
        )
    return "".join(parts).lstrip(".") or "(top level)"


def format_errors(exc: ValidationError, values: Any, source: str = "config") -> str:
    """``config.json: key 'optimizer.lr': input should be greater than 0 (got -1)``; one clause per error."""
    clauses = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] not in ("value_error", "missing"):
            msg = f"{msg[:1].lower()}{msg[1:]} (got {err['input']!r})"
        clauses.append(f"key '{_key_path(err['loc'], values)}': {msg}")
    return f"{source}: " + "; ".join(clauses)
