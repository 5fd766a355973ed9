"""DECODE's Gaussian-mixture loss of one scale (needs the sigma channels).

- count: the number of emitters is approximated by a Gaussian with the Poisson-binomial mean sum(p) and
  variance sum(p (1 - p)); the loss is its negative log-density at the true count;
- mixture: every output pixel is a 4-D Gaussian (photons, x, y, z) with weight p / sum(p); the loss is the
  negative log-likelihood of the true emitters (log-sum-exp over the components within ``window_px`` camera
  pixels of each emitter: far components contribute nothing measurable);
- bg: mean squared error of the background map.

Everything in log space with clamped sigmas, so empty frames, dense frames and extreme logits stay finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ParameterError
from ..models import layout as L
from ..models.targets import EmitterTargets

_LOG_2PI = math.log(2 * math.pi)
_VAR_MIN = 1e-2


def gmm_loss(
    out: torch.Tensor,
    targets: EmitterTargets,
    factor: float,
    bg_target: torch.Tensor,
    model_config,
    window_px: float = 1.5,
    sigma_min: float = 0.01,
    sigma_max: float = 10.0,
) -> dict[str, torch.Tensor]:
    """Terms ``count``, ``mixture`` (per frame, batch mean) and ``bg`` for one output (B, 10, h, w)."""
    if out.shape[1] < L.N_CHANNELS_SIGMA:
        raise ParameterError("loss kind 'gmm' needs a model with sigma_channels=true (10 output channels)")
    b, _, h, w = out.shape
    logit = out[:, L.P]
    p = torch.sigmoid(logit)
    emask = targets.in_frame()
    n_true = emask.sum(1).float()
    mean = p.sum((1, 2))
    var = (p * (1 - p)).sum((1, 2)) + _VAR_MIN
    count = (0.5 * (n_true - mean) ** 2 / var + 0.5 * torch.log(2 * math.pi * var)).mean()

    n = targets.xyz.shape[1]
    if n == 0:
        mixture = out.sum() * 0.0
    else:
        r = math.ceil(window_px * factor)
        d = torch.arange(-r, r + 1, device=out.device)
        xs, ys = targets.xyz[..., 0] * factor, targets.xyz[..., 1] * factor
        rows = (torch.floor(ys).long()[..., None, None] + d[:, None]).flatten(-2)  # (B, N, K)
        cols = (torch.floor(xs).long()[..., None, None] + d[None, :]).flatten(-2)
        valid = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w) & emask[..., None]
        idx = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).flatten(1)  # (B, N*K)
        comp = (
            out.flatten(2)
            .gather(2, idx[:, None].expand(-1, out.shape[1], -1))
            .view(b, -1, n, idx.shape[1] // n)
        )
        sig = comp[:, L.N_CHANNELS_BASIC :].clamp(sigma_min, sigma_max)
        mu_x = (cols + 0.5 + comp[:, L.DX]) / factor
        mu_y = (rows + 0.5 + comp[:, L.DY]) / factor
        t_ph = (targets.photons / model_config.photon_scale)[..., None]
        t_z = (targets.xyz[..., 2] / model_config.z_scale_nm)[..., None]
        s_ph, s_x, s_y, s_z = sig[:, 0], sig[:, 1] / factor, sig[:, 2] / factor, sig[:, 3]
        log_n = (
            -0.5 * ((t_ph - comp[:, L.PHOTONS]) / s_ph) ** 2
            - 0.5 * ((xs[..., None] / factor - mu_x) / s_x) ** 2
            - 0.5 * ((ys[..., None] / factor - mu_y) / s_y) ** 2
            - 0.5 * ((t_z - comp[:, L.Z]) / s_z) ** 2
            - torch.log(s_ph * s_x * s_y * s_z)
            - 2 * _LOG_2PI
        )
        log_w = F.logsigmoid(comp[:, L.P]) - torch.logsumexp(F.logsigmoid(logit).flatten(1), 1)[:, None, None]
        ll = torch.logsumexp((log_w + log_n).masked_fill(~valid, -1e4), dim=-1)  # (B, N)
        mixture = -(ll * emask).sum() / b
    bg = F.mse_loss(out[:, L.BG], bg_target)
    return {"count": count, "mixture": mixture, "bg": bg}
