"""Output activations of the DECODE layout and the geometry of feeding a prediction to the next scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import layout as L

SIGMA_EPS = 1e-3
N_PREV = 5
"""Channels of an upsampled decoded prediction handed to the next scale: prob, child prob, dx, dy, photons."""
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


def upsample_state(state: torch.Tensor, r: int, positions: bool = True) -> torch.Tensor:
    """Upsample a [prob, dx, dy, photons] state by an integer ratio ``r`` into the next scale's N_PREV inputs.

    Offsets are re-expressed relative to each child pixel's centre, in child pixels:
    ``dx_child = r * dx - ((i + 0.5) - r / 2)`` for child column i; ``child prob`` is the probability times a
    tent weight of how close the emitter lies to that child, so the head knows which child holds it.

    ``positions=False`` hands on only where emitters roughly are (the probability; offsets, photons and the
    tent are zero / the plain probability). Rungs that must *detect* from the image (token rungs, 1x) get
    this: with exact teacher-forced offsets they learn to copy the teacher and ignore the image, and then
    fail on their own coarse predictions at inference.
    """
    if not positions:
        prob = repeat_up(state[:, :1], r)
        zeros = torch.zeros_like(prob)
        return torch.cat([prob, prob, zeros, zeros, zeros], dim=1)
    prob, dx, dy, phot = repeat_up(state, r).unbind(1)
    h, w = prob.shape[-2:]
    sub = (torch.arange(r, device=state.device, dtype=state.dtype) + 0.5) - r / 2
    sx = sub.repeat(w // r)[None, None, :]
    sy = sub.repeat(h // r)[None, :, None]
    dxc = r * dx - sx
    dyc = r * dy - sy
    child = prob * (1 - dxc.abs()).clamp(min=0) * (1 - dyc.abs()).clamp(min=0)
    return torch.stack([prob, child, dxc, dyc, phot], dim=1)
