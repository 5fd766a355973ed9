"""Validated model configurations: ``VARConfig`` (kind="var"), ``UNetConfig`` (kind="unet") and presets.

A JSON config may name a size with ``"preset": "cpu"`` (or ``"gpu"``); explicit keys override the preset,
and the validated config holds every value (the preset name is not kept), so checkpoints are self-contained.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from ..errors import ParameterError


class _CommonConfig(BaseModel):
    """Fields every emitter model carries: input frames, output channels and (de)normalisation."""

    model_config = ConfigDict(extra="forbid")

    n_frames: Literal[1, 3] = 3
    sigma_channels: bool = True
    input_offset: float = 0.0
    input_scale: float = Field(100.0, gt=0)
    photon_scale: float = Field(10000.0, gt=0)
    bg_scale: float = Field(300.0, gt=0)
    z_scale_nm: float = Field(800.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and "preset" in data:
            data = dict(data)
            name = data.pop("preset")
            presets = getattr(cls, "_PRESETS", {})
            if name not in presets:
                raise ValueError(f"unknown preset {name!r}; choose one of {sorted(presets)}")
            data = {**presets[name], **data}
        return data

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        """The named size (``"cpu"`` or ``"gpu"``) with ``overrides`` applied."""
        presets = getattr(cls, "_PRESETS", {})
        if name not in presets:
            raise ParameterError(f"model preset: unknown preset {name!r}; choose one of {sorted(presets)}")
        return cls.model_validate({**presets[name], **overrides})


class VARConfig(_CommonConfig):
    """Next-scale (VAR) predictor: conv encoder, block-causal transformer over coarse token maps,
    convolutional next-scale heads for the camera-resolution and upsampled scales.

    ``token_strides`` are the coarse token maps as strides relative to the camera frame (coarse to fine,
    each dividing the previous); ``scales`` are the output upsampling factors (starting at 1, each a multiple
    of the previous). ``enc_channels`` has one width per encoder level (strides 1, 2, 4, ..., the coarsest
    token stride). ``fine_channels`` has one width per output scale after 1x (the convolutions of that
    rung's patch head). The rungs after 1x run only at 1x candidate pixels (probability above
    ``refine_threshold``; in training also the pixels that hold a true emitter). ``detach_fine`` stops
    the fine-scale losses from back-propagating into the 1x hidden state (they train their own heads only).
    ``count_head`` adds a head that counts the emitters in each 1x candidate pixel (0, 1, 2 or more) from the
    same patch as the first rung after 1x; the PSF fit's test of one emitter against two uses the count.
    ``localize_scale`` is the output scale localizations are read from by default (the predictor, the
    widget); ``None`` lets training pick the scale with the best validation Jaccard index.
    ``position_jitter_px``: in training, every sample's token positions are shifted by a random (dy, dx)
    drawn uniformly within this many camera pixels, so the transformer cannot tie what it learns to absolute
    positions in the training window and works on inference tiles larger than the training windows (the
    default 24 covers 64 px tiles of a model trained on 40 px windows; docs/model.md, section 10).
    """

    kind: Literal["var"] = "var"
    scales: tuple[int, ...] = (1, 2, 4, 8)
    token_strides: tuple[int, ...] = (8, 4)
    enc_channels: tuple[int, ...] = (16, 24, 32, 32)
    embed_dim: int = Field(32, ge=8)
    depth: int = Field(2, ge=1)
    n_heads: int = Field(2, ge=1)
    mlp_ratio: float = Field(2.0, gt=0)
    head_channels: int = Field(16, ge=4)
    fine_channels: tuple[int, ...] = (32, 32, 32)
    vq: bool = False
    vq_codebook_size: int = Field(256, ge=2)
    vq_beta: float = Field(0.25, ge=0)
    detach_fine: bool = True
    count_head: bool = False
    localize_scale: int | None = None
    position_jitter_px: float = Field(24.0, ge=0)
    refine_threshold: float = Field(0.05, gt=0, lt=1)
    tile_size: int | None = Field(64, ge=8)
    margin: int = Field(8, ge=0)

    _PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {},
        "gpu": {
            "token_strides": (8, 4, 2, 1),
            "enc_channels": (32, 48, 64, 96),
            "embed_dim": 128,
            "depth": 4,
            "n_heads": 4,
            "head_channels": 48,
            "fine_channels": (64, 64, 64),
            "tile_size": 40,
        },
    }

    @model_validator(mode="after")
    def _check_ladder(self) -> VARConfig:
        s, t = self.scales, self.token_strides
        if not s or s[0] != 1 or any(b % a or b <= a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError(f"scales {s}: must start at 1 and each be a larger multiple of the previous")
        if not t or t[-1] < 1 or any(a % b or a <= b for a, b in zip(t, t[1:], strict=False)):
            raise ValueError(f"token_strides {t}: each must be a smaller divisor of the previous, >= 1")
        if t[0] & (t[0] - 1):
            raise ValueError(f"token_strides {t}: the coarsest stride must be a power of two")
        n_levels = t[0].bit_length()
        if len(self.enc_channels) != n_levels:
            raise ValueError(
                f"enc_channels needs {n_levels} widths (strides 1..{t[0]}), got {self.enc_channels}"
            )
        if self.localize_scale is not None and self.localize_scale not in s:
            raise ValueError(f"localize_scale {self.localize_scale} is not one of the scales {s}")
        if len(self.fine_channels) != len(s) - 1:
            raise ValueError(f"fine_channels needs {len(s) - 1} widths (one per scale after 1x)")
        if self.embed_dim % self.n_heads or (self.embed_dim // self.n_heads) % 4:
            raise ValueError("embed_dim must be a multiple of 4 * n_heads")
        if self.embed_dim % 4:
            raise ValueError("embed_dim must be a multiple of 4 (2-D sine-cosine encoding)")
        return self


class UNetConfig(_CommonConfig):
    """DECODE-like U-Net baseline: ``channels`` per level (stride 1, 2, 4, ...), two 3x3 convs per level."""

    kind: Literal["unet"] = "unet"
    channels: tuple[int, ...] = (16, 32, 48)
    scales: tuple[int, ...] = (1,)

    _PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "gpu": {"channels": (48, 96, 192)}}

    @model_validator(mode="after")
    def _check(self) -> UNetConfig:
        if self.scales != (1,):
            raise ValueError("the U-Net predicts camera resolution only: scales must be (1,)")
        if len(self.channels) < 2 or min(self.channels) < 4:
            raise ValueError(f"channels {self.channels}: need >= 2 levels of >= 4 channels")
        return self


ModelConfig = Annotated[VARConfig | UNetConfig, Field(discriminator="kind")]
model_config_adapter: TypeAdapter[VARConfig | UNetConfig] = TypeAdapter(ModelConfig)


def parse_model_config(config: VARConfig | UNetConfig | dict) -> VARConfig | UNetConfig:
    """Validate a dict (or pass a config through); bad values raise ParameterError naming the key."""
    if isinstance(config, VARConfig | UNetConfig):
        return config
    from pydantic import ValidationError

    try:
        return model_config_adapter.validate_python(config)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "model"
        raise ParameterError(f"model config: {where}: {first['msg']}") from None
