"""Shared helpers for the simulation tests."""

from __future__ import annotations

import pandas as pd

from napari_var_emitter.simulation import SimulationConfig

IDEAL = {"type": "ideal", "qe": 1.0, "e_per_adu": 1.0, "baseline": 0.0, "read_noise_e": 0.0}


def one_emitter(x_nm: float, y_nm: float, photons: float = 5000.0, z_nm: float = 0.0, frame: int = 0):
    return pd.DataFrame(
        {"frame": [frame], "x_nm": [x_nm], "y_nm": [y_nm], "z_nm": [z_nm], "photons": [photons]}
    )


def small_config(**kw) -> SimulationConfig:
    values = {"frame_size": (32, 32), "pixel_size_nm": 100.0, "density": 1.0}
    values.update(kw)
    return SimulationConfig.from_dict(values)
