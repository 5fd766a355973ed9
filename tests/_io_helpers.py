"""Shared fixtures for the io tests: a localization table in the project's table model."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_table(n: int = 40, seed: int = 0, three_d: bool = True, px: float = 107.0) -> pd.DataFrame:
    """A random table with every core and sigma column and full metadata, positions inside a 32x40 frame."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "frame": rng.integers(0, 12, n),
            "x_nm": rng.uniform(2 * px, 38 * px, n),
            "y_nm": rng.uniform(2 * px, 30 * px, n),
            "z_nm": rng.uniform(-400, 400, n) if three_d else np.zeros(n),
            "photons": rng.uniform(500, 5000, n),
            "bg": rng.uniform(20, 120, n),
            "prob": rng.uniform(0.5, 1.0, n),
            "sigma_x_nm": rng.uniform(5, 25, n),
            "sigma_y_nm": rng.uniform(5, 25, n),
            "sigma_z_nm": rng.uniform(10, 50, n),
            "sigma_photons": rng.uniform(20, 200, n),
        }
    )
    df.attrs = {
        "pixel_size_nm": px,
        "frame_shape": (32, 40),
        "n_frames": 12,
        "camera": {"type": "emccd", "baseline": 100.0, "em_gain": 30.0},
        "source": "movie.ome.tif",
        "model": "var-default",
    }
    return df
