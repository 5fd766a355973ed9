"""Helpers for the widget tests: a tiny checkpoint, a movie with known emitters, a stub model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.models import VARConfig, build_model

PX = 100.0
IDEAL = CameraConfig(type="ideal", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=0.0)
TINY = {
    "n_frames": 1,
    "enc_channels": (8, 8, 8, 8),
    "embed_dim": 16,
    "depth": 1,
    "n_heads": 1,
    "head_channels": 8,
    "fine_channels": (4, 4, 4),
    "tile_size": 32,
}


def tiny_checkpoint(path: Path) -> Path:
    """An untrained tiny VAR model saved as a checkpoint (scales 1, 2, 4, 8)."""
    from napari_var_emitter.checkpoints import save_checkpoint

    torch.manual_seed(0)
    config = VARConfig(**TINY)
    model = build_model(config)
    return save_checkpoint(
        path, model_config=config, state_dict=model.state_dict(), camera=IDEAL, pixel_size_nm=PX
    )


def spot_movie(positions_nm: np.ndarray, shape=(32, 32), photons=2000.0, bg=10.0, sigma_px=1.2) -> np.ndarray:
    """Noise-free frames (T, H, W) in photons (= ADU for the ideal camera), one Gaussian spot per frame."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres, camera px from the corner
    x = positions_nm[:, 0, None, None] / PX
    y = positions_nm[:, 1, None, None] / PX
    spot = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma_px**2)) / (2 * np.pi * sigma_px**2)
    return (bg + photons * spot).astype(np.float32)


class CentroidModel(torch.nn.Module):
    """A stand-in emitter model whose answer is known: one emitter at the frame's intensity centroid.

    At every scale ``f`` the p logit peaks at the output pixel whose centre is nearest to the centroid and the
    x/y offsets point from each pixel centre to the centroid, so localizations land on the centroid exactly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config = VARConfig(**TINY)
        self.scales = (1, 2, 4, 8)
        self.n_frames = 1
        self.n_channels = 6
        self.tile_size = None
        self.margin = 0
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(
        self, x: torch.Tensor, teacher=None, teacher_prob: float = 1.0, max_scale=None
    ) -> list[torch.Tensor]:
        frame = x[:, x.shape[1] // 2]
        b, h, w = frame.shape
        weight = (frame - frame.flatten(1).median(dim=1).values[:, None, None]).clamp(min=0) ** 2
        total = weight.sum(dim=(1, 2)) + 1e-9
        ys = torch.arange(h, dtype=torch.float32) + 0.5
        xs = torch.arange(w, dtype=torch.float32) + 0.5
        cy = (weight.sum(dim=2) * ys).sum(dim=1) / total
        cx = (weight.sum(dim=1) * xs).sum(dim=1) / total
        outs = []
        for f in self.scales:
            fy = (torch.arange(h * f, dtype=torch.float32) + 0.5) / f
            fx = (torch.arange(w * f, dtype=torch.float32) + 0.5) / f
            dy = (cy[:, None, None] - fy[None, :, None]) * f  # offsets in output pixels
            dx = (cx[:, None, None] - fx[None, None, :]) * f
            dy, dx = torch.broadcast_tensors(dy, dx)
            logit = 6.0 - 20.0 * (dx**2 + dy**2)
            ones = torch.ones_like(logit)
            outs.append(
                torch.stack(
                    [logit, 0.2 * ones, dx.clamp(-0.99, 0.99), dy.clamp(-0.99, 0.99), 0 * ones, 0.05 * ones],
                    dim=1,
                )
            )
        return outs
