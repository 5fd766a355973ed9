"""SMLM movie simulator: blinking emitters, pixel-integrated PSFs, background, camera noise, CRLB.

Example::

    from napari_var_emitter.simulation import SimulationConfig, simulate
    movie = simulate(SimulationConfig(density=1.0), n_frames=100, seed=0)
    movie.frames       # (T, H, W) uint16 ADU
    movie.emitters     # ground truth, one row per emitter per frame (nm, photons, CRLB)
"""

from __future__ import annotations

from ..camera import CameraConfig
from .config import PSFConfig, SimulationConfig
from .crlb import crlb, crlb_gaussian_2d
from .movie import EMITTER_COLUMNS, SimulatedMovie, movie_stream, simulate

__all__ = [
    "EMITTER_COLUMNS",
    "CameraConfig",
    "PSFConfig",
    "SimulatedMovie",
    "SimulationConfig",
    "crlb",
    "crlb_gaussian_2d",
    "movie_stream",
    "simulate",
]
