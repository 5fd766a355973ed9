"""Synthetic frames (Gaussian blobs + Poisson noise) and emitter lists for the model and loss tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.checkpoints import save_checkpoint
from napari_var_emitter.losses import EmitterTargets
from napari_var_emitter.models import VARConfig, build_model


def tiny_var(**kw) -> VARConfig:
    """A VAR config small enough for fast CPU tests."""
    base = dict(
        enc_channels=(8, 8, 16, 16),
        embed_dim=16,
        depth=1,
        n_heads=2,
        head_channels=8,
        fine_channels=(4, 4, 4),
    )
    return VARConfig(**{**base, **kw})


def random_emitters(rng: np.random.Generator, n: int, h: int, w: int, border: float = 1.0) -> np.ndarray:
    """(n, 4) [x_px, y_px, z_nm, photons] inside the frame."""
    x = rng.uniform(border, w - border, n)
    y = rng.uniform(border, h - border, n)
    z = rng.uniform(-400, 400, n)
    ph = rng.uniform(1000, 4000, n)
    return np.stack([x, y, z, ph], 1).astype(np.float32)


def render_frames(emitters: list[np.ndarray], h: int, w: int, bg: float, n_frames: int, rng, sigma=1.2):
    """(B, n_frames, h, w) Poisson photon frames of Gaussian blobs (same emitters in each frame)."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    frames = []
    for em in emitters:
        img = np.full((h, w), bg, np.float64)
        if len(em):
            d2 = (xx[None] - em[:, 0, None, None]) ** 2 + (yy[None] - em[:, 1, None, None]) ** 2
            img += (em[:, 3, None, None] / (2 * np.pi * sigma**2) * np.exp(-d2 / (2 * sigma**2))).sum(0)
        frames.append(rng.poisson(np.broadcast_to(img, (n_frames, h, w))).astype(np.float32))
    return torch.from_numpy(np.stack(frames))


def batch(b=2, h=16, w=16, n=3, n_frames=3, bg=50.0, seed=0):
    """Frames and targets of ``b`` random frames with ``n`` emitters each."""
    rng = np.random.default_rng(seed)
    em = [random_emitters(rng, n, h, w) for _ in range(b)]
    return render_frames(em, h, w, bg, n_frames, rng), EmitterTargets.from_lists(em, bg, shape=(h, w))


def untrained_checkpoint(path: Path, config) -> Path:
    """A checkpoint of a freshly initialised model of ``config`` (default camera, 100 nm pixels, the bundled
    model's PSF range), as the benchmark scripts' smoke tests pass with ``--var`` / ``--unet``."""
    return save_checkpoint(
        path,
        model_config=config.model_dump(),
        state_dict=build_model(config).state_dict(),
        camera=CameraConfig(),
        pixel_size_nm=100.0,
        simulation={"psf": {"kind": "gaussian", "sigma_px": [1.0, 1.3]}},
    )
