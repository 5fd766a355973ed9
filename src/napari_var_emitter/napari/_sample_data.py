"""napari sample data: a simulated SMLM movie with its ground truth as a points layer.

World coordinates are nm from the image corner (:mod:`napari_var_emitter.geometry`). The ground truth holds
``(frame, y, x)`` in camera pixels from the image corner with ``scale=(1, px, px)``, so that its world
coordinates are ``(frame, y_nm, x_nm)`` while its one-pixel markers do not reach into neighbouring frames
(a points layer's size applies to every axis, the frame axis included). The table is the layer's features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry import AXIS_LABELS, AXIS_UNITS, DEFAULT_PIXEL_SIZE_NM, grid_geometry
from ..simulation import SimulationConfig, simulate

#: parameters of the sample movie (fixed, so every user sees the same data)
SAMPLE_CONFIG = SimulationConfig(
    frame_size=(64, 64),
    pixel_size_nm=DEFAULT_PIXEL_SIZE_NM,
    density=0.5,
    photons=(1500.0, 5000.0),
    background=(40.0, 80.0),
    on_time_frames=2.0,
)
SAMPLE_FRAMES = 300
SAMPLE_SEED = 2024

LayerData = tuple[Any, dict[str, Any], str]


def simulated_movie(
    n_frames: int = SAMPLE_FRAMES, seed: int = SAMPLE_SEED, config: SimulationConfig | None = None
) -> list[LayerData]:
    """The "Simulated SMLM movie" sample: an image layer (ADU) and its ground truth as a points layer."""
    config = config or SAMPLE_CONFIG
    movie = simulate(config, n_frames, seed)
    px = config.pixel_size_nm
    scale, translate = grid_geometry(px)
    lo, hi = np.percentile(movie.frames[: min(n_frames, 50)], (1.0, 99.9))
    meta = {
        "pixel_size_nm": px,
        "camera": config.camera.model_dump(),
        "simulation": config.model_dump(mode="json"),
        "seed": seed,
    }
    image = (
        movie.frames,
        {
            "name": "simulated SMLM movie",
            "scale": scale,
            "translate": translate,
            "units": AXIS_UNITS,
            "axis_labels": AXIS_LABELS,
            "contrast_limits": (float(lo), float(max(hi, lo + 1))),
            "colormap": "gray",
            "metadata": meta,
        },
        "image",
    )
    truth = movie.emitters
    features = truth.reset_index(drop=True)
    features.attrs = {}
    points = (
        np.column_stack(
            [truth["frame"].to_numpy(np.float64), truth["y_nm"] / px, truth["x_nm"] / px]
        ).reshape(-1, 3),
        {
            "name": "simulated ground truth",
            "features": features,
            "scale": (1.0, px, px),
            "axis_labels": AXIS_LABELS,
            "size": 1.0,
            "face_color": "transparent",
            "border_color": "cyan",
            "border_width": 0.1,
            "units": AXIS_UNITS,
            "out_of_slice_display": False,
            "metadata": {"pixel_size_nm": px, "ground_truth": True},
        },
        "points",
    )
    return [image, points]
