"""2-D sine-cosine position encodings (fixed, not learned) for token maps at any stride."""

from __future__ import annotations

import torch


def sincos_2d(
    h: int,
    w: int,
    dim: int,
    stride: float,
    device=None,
    max_period: float = 256.0,
    shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """(h * w, dim) encodings of the token centres, in camera pixels relative to the map's centre.

    Positions are ``((i + 0.5) * stride - extent / 2)`` so that tokens of all scales share one coordinate
    frame; half the channels encode x, half y, each as sin/cos at geometric wavelengths from 2 px to
    ``max_period`` px. ``shift`` (B, 2) adds a per-sample (dy, dx) in camera pixels to every position and
    gives (B, h * w, dim).
    """
    if dim % 4:
        raise ValueError(f"sine-cosine encoding needs dim divisible by 4, got {dim}")
    q = dim // 4
    wavelengths = 2.0 * (max_period / 2.0) ** (
        torch.arange(q, device=device, dtype=torch.float32) / max(q - 1, 1)
    )
    omega = 2 * torch.pi / wavelengths
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride - h * stride / 2
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride - w * stride / 2
    gy, gx = (g.reshape(-1, 1) for g in torch.meshgrid(ys, xs, indexing="ij"))
    if shift is not None:
        gy = gy[None] + shift[:, None, 0:1].to(gy)
        gx = gx[None] + shift[:, None, 1:2].to(gx)
    ax, ay = gx * omega, gy * omega
    return torch.cat([ax.sin(), ax.cos(), ay.sin(), ay.cos()], dim=-1)
