"""PPXYZB loss of one scale: occupancy BCE with logits + regression of photons, x, y, z at emitter pixels +
background everywhere (DECODE's simple loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import layout as L


def ppxyzb_loss(
    out: torch.Tensor,
    target: torch.Tensor,
    factor: float,
    pos_weight: float = 1.0,
    channel_weights=(1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    regression: str = "mse",
    pixel_weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Terms ``bce``, ``reg``, ``bg`` for output ``out`` (B, C, h, w) against rasterised ``target``
    (B, 6, h, w). BCE is summed per camera pixel area (comparable across scales); regression averages over
    emitter pixels (times the optional ``pixel_weight`` (B, h, w)); background is a mean over all pixels."""
    b, _, h, w = out.shape
    occ = target[:, L.P]
    weight = torch.ones_like(occ) if pixel_weight is None else pixel_weight
    pw = torch.as_tensor(pos_weight, dtype=out.dtype, device=out.device)
    bce = F.binary_cross_entropy_with_logits(out[:, L.P], occ, pos_weight=pw, weight=weight, reduction="sum")
    bce = bce * channel_weights[L.P] / (b * h * w / factor**2)
    chans = [L.PHOTONS, L.DX, L.DY, L.Z]
    cw = torch.tensor([channel_weights[c] for c in chans], dtype=out.dtype, device=out.device)[
        None, :, None, None
    ]
    err = F.smooth_l1_loss if regression == "smoothl1" else F.mse_loss
    per = err(out[:, chans], target[:, chans], reduction="none") * cw
    wmask = (occ * weight)[:, None]
    reg = (per * wmask).sum() / occ.sum().clamp(min=1)
    bg = err(out[:, L.BG], target[:, L.BG]) * channel_weights[L.BG]
    return {"bce": bce, "reg": reg, "bg": bg}
