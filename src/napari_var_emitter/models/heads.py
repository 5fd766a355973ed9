"""Output activations of the DECODE layout and the geometry of feeding a prediction to the next scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import layout as L

SIGMA_EPS = 1e-3
N_PREV = 5
"""Channels of what a detecting rung gets from the rung before it (:func:`upsample_state`)."""
N_STATE = 4
"""Channels of a decoded prediction (:func:`prediction_state`): prob, dx, dy, photons."""
PRIOR = 0.01
"""Prior occupancy per camera pixel used to initialise the p logits (about 1 emitter per um^2 at 100 nm)."""


def repeat_up(x: torch.Tensor, r: int) -> torch.Tensor:
    """Nearest-neighbour upsampling of the last two dims by an integer ratio (one copy)."""
    if r == 1:
        return x
    *lead, h, w = x.shape
    return x[..., :, None, :, None].expand(*lead, h, r, w, r).reshape(*lead, h * r, w * r)


def init_p_bias(layer: torch.nn.Conv2d | torch.nn.Linear, prob: float) -> None:
    """Start the p logit at the prior occupancy ``prob`` (so early count/BCE terms are sane)."""
    prob = min(max(prob, 1e-6), 0.5)
    with torch.no_grad():
        layer.bias[L.P] = float(torch.logit(torch.tensor(prob)))


def activate(raw: torch.Tensor) -> torch.Tensor:
    """Apply the layout's activations to raw head outputs (B, C, H, W) with C = 6 or 10."""
    parts = [
        raw[:, L.P : L.P + 1],
        torch.sigmoid(raw[:, L.PHOTONS : L.PHOTONS + 1]),
        torch.tanh(raw[:, L.DX : L.Z + 1]),
        torch.sigmoid(raw[:, L.BG : L.BG + 1]),
    ]
    if raw.shape[1] > L.N_CHANNELS_BASIC:
        parts.append(F.softplus(raw[:, L.N_CHANNELS_BASIC :]) + SIGMA_EPS)
    return torch.cat(parts, dim=1)


def prediction_state(out: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 4, h, w) [prob, dx, dy, photons] of a scale: from the model output (detached), or from a
    rasterised teacher map (occupancy as probability) where given."""
    if teacher is not None:
        return torch.stack(
            [teacher[:, L.P], teacher[:, L.DX], teacher[:, L.DY], teacher[:, L.PHOTONS]], dim=1
        )
    out = out.detach()
    return torch.cat(
        [torch.sigmoid(out[:, L.P : L.P + 1]), out[:, L.DX : L.DY + 1], out[:, L.PHOTONS : L.PHOTONS + 1]], 1
    )


def upsample_state(state: torch.Tensor, r: int) -> torch.Tensor:
    """The N_PREV inputs a detecting rung (token rung, 1x) gets from the rung before it: where emitters
    roughly are, the probability of a [prob, dx, dy, photons] state upsampled by the integer ratio ``r``, in
    the channel layout [prob, prob, 0, 0, 0].

    Offsets and photons are not handed on: with exact teacher-forced offsets a detecting rung learns to copy
    the teacher and ignore the image, and then fails on its own coarse predictions at inference. (The rungs
    after 1x read the full decoded prediction of the previous rung, folded to camera pixels, in models/var.)
    """
    prob = repeat_up(state[:, :1], r)
    zeros = torch.zeros_like(prob)
    return torch.cat([prob, prob, zeros, zeros, zeros], dim=1)
