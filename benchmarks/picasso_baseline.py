"""Classical Gaussian fitting with Picasso (``picassosr``), the reference method in the benchmarks.

Picasso's coordinates are camera pixels with pixel centres at integers, so ``x_nm = (x + 0.5) * px``.
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np
import pandas as pd

from napari_var_emitter.camera import CameraConfig


def camera_info(camera: CameraConfig, pixel_size_nm: float) -> dict:
    """Picasso's camera dictionary for our camera model."""
    return {
        "Baseline": float(camera.baseline),
        "Sensitivity": float(camera.e_per_adu),
        "Gain": float(camera.em_gain),
        "Qe": float(camera.qe),
        "Pixelsize": float(pixel_size_nm),
    }


DEFAULT_MIN_NET_GRADIENT = 800.0  # suits 1000-5000-photon emitters on a background of ~70 photons


def localize(
    frames_adu: np.ndarray,
    camera: CameraConfig,
    pixel_size_nm: float,
    box: int = 7,
    min_net_gradient: float = DEFAULT_MIN_NET_GRADIENT,
) -> pd.DataFrame:
    """Identify and least-squares fit spots; return our table (frame 0-based, x_nm, y_nm, photons, bg)."""
    from picasso import localize as plocalize

    movie = np.ascontiguousarray(frames_adu, dtype=np.float32)
    with contextlib.redirect_stdout(io.StringIO()):
        ids = plocalize.identify(movie, min_net_gradient, box, threaded=False, return_info=False)
        columns = ["frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "prob", "sigma_x_nm", "sigma_y_nm"]
        columns += ["net_gradient"]
        if len(ids) == 0:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}).astype({"frame": int})
        spots = plocalize.get_spots(movie, ids, box, camera_info(camera, pixel_size_nm))
        theta = plocalize.fit_spots_gauss(spots)
        locs = plocalize.locs_from_fits_gauss(ids, theta, box, em=camera.type == "emccd")
    locs = pd.DataFrame(locs)
    good = np.isfinite(locs["x"]) & np.isfinite(locs["y"])
    locs = locs[good]
    return pd.DataFrame(
        {
            "frame": locs["frame"].to_numpy(np.int64),
            "x_nm": (locs["x"].to_numpy(float) + 0.5) * pixel_size_nm,
            "y_nm": (locs["y"].to_numpy(float) + 0.5) * pixel_size_nm,
            "z_nm": 0.0,
            "photons": locs["photons"].to_numpy(float),
            "bg": locs["bg"].to_numpy(float),
            "prob": 1.0,
            "sigma_x_nm": locs["lpx"].to_numpy(float) * pixel_size_nm,
            "sigma_y_nm": locs["lpy"].to_numpy(float) * pixel_size_nm,
            "net_gradient": locs["net_gradient"].to_numpy(float),
        }
    )


def warm_up(camera: CameraConfig, pixel_size_nm: float) -> None:
    """Trigger numba compilation so that timings measure fitting, not the compiler."""
    rng = np.random.default_rng(0)
    frames = rng.poisson(50.0, size=(4, 32, 32)).astype(np.float32) + camera.baseline
    frames[:, 16, 16] += 3000
    localize(frames, camera, pixel_size_nm)


def timed_localize(
    frames_adu: np.ndarray, camera: CameraConfig, pixel_size_nm: float, **kw
) -> tuple[pd.DataFrame, float]:
    """Localize and return (table, seconds) on an already warmed-up Picasso."""
    t0 = time.perf_counter()
    table = localize(frames_adu, camera, pixel_size_nm, **kw)
    return table, time.perf_counter() - t0
