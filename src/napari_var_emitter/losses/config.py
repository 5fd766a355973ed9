"""Validated loss configuration."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LossConfig(BaseModel):
    """Loss per output scale (``kind``), combined with scale weights that warm up from coarse to fine.

    Output scale k > 0 (of K) ramps its weight from ``scale_floor`` to 1 while ``progress`` goes from
    ``warmup * (k-1)/(K-1)`` to ``warmup * k/(K-1)``; the 1x scale always has full weight. ``scale_weights``
    multiplies each output scale (default 1). Coarse token rungs get PPXYZB-style occupancy BCE and offset
    regression with ``coarse_weight`` (their BCE, like PPXYZB's, weights positives by ``pos_weight``); the VQ
    commitment loss (when the model has one) gets ``vq_weight``.
    ``channel_weights`` are (p, photons, dx, dy, z, bg) for PPXYZB. With ``kind="gmm"``, ``occupancy_weight``
    adds a per-frame occupancy BCE (positive pixels weighted by ``occupancy_pos_weight``) to every scale: the
    GMM loss alone has a plateau where p is uniform and only matches the count, which a model may take
    hundreds of steps to leave (or never, on a short CPU budget); the BCE concentrates p on emitter pixels.
    ``fine_occupancy_weight`` replaces ``occupancy_weight`` on the scales after 1x (None: the same). Their
    pixels are finer than the localization precision, so a BCE against one-hot occupancy inflates p over the
    children an emitter may be in; without it (0) the fine rungs learned far slower (docs/model.md, section
    8), so the recipes keep it. ``offset_weight`` adds the squared x/y offset error at each emitter's own
    pixel (per frame), so that the mixture cannot be explained by a neighbouring pixel's component with
    offsets shifted by a whole pixel. ``pixel_count_weight`` weights the count head's cross-entropy (a VAR
    with ``count_head``: emitters per candidate camera pixel, 0, 1, 2 or more), summed per frame.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["gmm", "ppxyzb"] = "gmm"
    pos_weight: float = Field(1.0, gt=0)
    regression: Literal["mse", "smoothl1"] = "mse"
    channel_weights: tuple[float, float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    count_weight: float = Field(1.0, ge=0)
    mixture_weight: float = Field(1.0, ge=0)
    bg_weight: float = Field(1.0, ge=0)
    coarse_weight: float = Field(0.5, ge=0)
    vq_weight: float = Field(1.0, ge=0)
    scale_weights: tuple[float, ...] | None = None
    warmup: float = Field(0.3, ge=0, le=1)
    scale_floor: float = Field(0.05, ge=0, le=1)
    gmm_window_px: float = Field(1.5, gt=0)
    occupancy_weight: float = Field(1.0, ge=0)
    occupancy_pos_weight: float = Field(4.0, gt=0)
    fine_occupancy_weight: float | None = Field(None, ge=0)
    offset_weight: float = Field(0.0, ge=0)
    pixel_count_weight: float = Field(1.0, ge=0)
    sigma_min: float = Field(0.01, gt=0)
    sigma_max: float = Field(10.0, gt=0)
