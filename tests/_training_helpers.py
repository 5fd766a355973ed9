"""Tiny training configs for the training tests (small model, 16-pixel tiles, few steps)."""

from __future__ import annotations

import copy

TINY_VAR = {
    "kind": "var",
    "n_frames": 1,
    "sigma_channels": False,
    "scales": [1, 2],
    "token_strides": [4, 2],
    "enc_channels": [8, 8, 8],
    "embed_dim": 16,
    "depth": 1,
    "n_heads": 1,
    "head_channels": 8,
    "fine_channels": [4],
    "tile_size": None,
}

TINY_UNET = {"kind": "unet", "n_frames": 1, "sigma_channels": False, "channels": [8, 16]}

SIMULATION = {
    "pixel_size_nm": 100.0,
    "photons": [2000.0, 5000.0],
    "background": [20.0, 40.0],
    "psf": {"kind": "gaussian", "sigma_px": [1.0, 1.2]},
    "density": 0.5,
}


def tiny_config(model: dict | None = None, **overrides) -> dict:
    """A config dict that trains in seconds on one CPU core."""
    cfg = {
        "model": copy.deepcopy(model or TINY_VAR),
        "loss": {"kind": "ppxyzb"},
        "data": {
            "kind": "simulation",
            "simulation": copy.deepcopy(SIMULATION),
            "tile_size": 16,
            "steps_per_epoch": 4,
            "val_frames": 16,
        },
        "batch_size": 4,
        "epochs": 2,
        "optimizer": {"lr": 2e-3},
        "scheduler": {"kind": "cosine", "warmup_steps": 2},
        "validation": {"batch_size": 16},
        "log_every": 2,
        "device": "cpu",
        "seed": 3,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg
