"""Simulated SMLM movies: blinking emitters -> PSF -> background -> camera, plus ground truth and CRLB."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from ..camera import adu_to_photons, apply_camera
from ..errors import ParameterError
from .config import SimulationConfig
from .crlb import crlb
from .emitters import EmitterRows, sample_emitters
from .psf import astigmatic_sigma_derivatives, astigmatic_sigmas, render

Seed = int | Sequence[int] | np.random.SeedSequence | dict | None

#: ground-truth columns, in order (``crlb_z_nm`` only for astigmatic PSFs)
EMITTER_COLUMNS = (
    "frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "sigma_x_nm", "sigma_y_nm",
    "crlb_x_nm", "crlb_y_nm", "crlb_z_nm", "crlb_photons", "id",
)  # fmt: skip

_MAX_BLOCK_PIXELS = 2**22  # frames are rendered and made noisy in blocks of at most this many pixels
_MAX_BLOCK_FRAMES = 256


@dataclass
class SimulatedMovie:
    """A simulated movie and its ground truth.

    ``frames`` (T, H, W) uint16 ADU; ``emitters`` one row per emitter per frame it is on (nm, 0-based frames);
    ``background`` photons/pixel, (T,) or (T, H, W) with a spatially varying field; ``expected`` the noiseless
    expected photons per pixel (T, H, W) when asked for; ``seed`` the entropy that reproduces the movie.
    """

    frames: np.ndarray
    emitters: pd.DataFrame
    background: np.ndarray
    config: SimulationConfig
    seed: Any = None
    expected: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixel_size_nm(self) -> float:
        return self.config.pixel_size_nm

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    def photons(self) -> np.ndarray:
        """The frames converted to photons (float32), as networks see them."""
        return adu_to_photons(self.frames, self.config.camera)

    def metadata(self) -> dict[str, Any]:
        """Plain-type metadata for files: pixel size, camera, simulation parameters, seed."""
        return {
            "pixel_size_nm": self.config.pixel_size_nm,
            "camera": self.config.camera.model_dump(),
            "simulation": self.config.model_dump(mode="json"),
            "seed": _seed_json(self.seed),
        }


def simulate(
    config: SimulationConfig | dict | None = None,
    n_frames: int = 100,
    seed: Seed = None,
    *,
    mask: np.ndarray | None = None,
    emitters: pd.DataFrame | None = None,
    compute_crlb: bool = True,
    return_expected: bool = False,
    progress: bool = False,
) -> SimulatedMovie:
    """Simulate ``n_frames`` camera frames of blinking emitters; reproducible from ``seed``.

    ``mask`` (H, W): emitters only where it is > 0 (or weighted by it). ``emitters``: render this ground
    truth (columns ``frame, x_nm, y_nm, photons`` and ``z_nm`` or ``sigma_x_nm, sigma_y_nm``) instead of
    drawing blinking emitters. ``compute_crlb=False`` skips the CRLB columns (NaN) for speed.
    ``progress`` shows a tqdm bar (on a terminal).
    """
    config = SimulationConfig.from_dict(config)
    n_frames = _check_n_frames(n_frames)
    h, w = config.frame_size
    if mask is not None:
        mask = _check_mask(mask, config.frame_size)
    ss = _seed_sequence(seed)
    em_rng, bg_rng = (np.random.default_rng(s) for s in _children(ss, 0, 2))

    rows = (
        sample_emitters(config, n_frames, em_rng, mask)
        if emitters is None
        else _rows_from_table(emitters, config)
    )
    rows = rows.select(np.argsort(rows.frame, kind="stable"))
    rows = rows.select((rows.frame >= 0) & (rows.frame < n_frames))
    levels = bg_rng.uniform(*config.background, n_frames)
    bg_field = _background_field(config, bg_rng)
    background = (
        levels.astype(np.float32)
        if bg_field is None
        else (levels[:, None, None] * bg_field[None]).astype(np.float32)
    )
    r = np.clip(rows.y_px.astype(np.int64), 0, h - 1)
    c = np.clip(rows.x_px.astype(np.int64), 0, w - 1)
    row_bg = levels[rows.frame] * (1.0 if bg_field is None else bg_field[r, c])

    frames = np.empty((n_frames, h, w), dtype=np.uint16)
    expected = np.empty((n_frames, h, w), dtype=np.float32) if return_expected else None
    block = max(1, min(_MAX_BLOCK_FRAMES, _MAX_BLOCK_PIXELS // (h * w)))
    starts = range(0, n_frames, block)
    bounds = np.searchsorted(rows.frame, [*starts, n_frames])
    blocks: Iterator[int] = iter(range(len(starts)))
    if progress:
        from tqdm.auto import tqdm

        blocks = tqdm(blocks, total=len(starts), desc="simulating", unit="block", disable=None)
    for i in blocks:
        t0, t1 = starts[i], min(starts[i] + block, n_frames)
        part = rows.select(slice(bounds[i], bounds[i + 1]))
        image = render(
            (t1 - t0, h, w),
            part.frame - t0,
            part.x_px,
            part.y_px,
            part.sigma_x_px,
            part.sigma_y_px,
            part.photons,
        )
        image += background[t0:t1, None, None] if bg_field is None else background[t0:t1]
        if expected is not None:
            expected[t0:t1] = image
        noise_rng = np.random.default_rng(_children(ss, 2 + i, 1)[0])
        frames[t0:t1] = apply_camera(image, config.camera, noise_rng)

    table = _emitter_table(rows, row_bg, config, compute_crlb)
    return SimulatedMovie(frames, table, background, config, seed=_seed_json(ss), expected=expected)


def movie_stream(config: SimulationConfig | dict | None, n_frames: int, seed: Seed = None, **kwargs: Any):
    """Endless reproducible stream of independent movies (e.g. for a training data loader).

    Movie ``k`` is ``simulate(config, n_frames, SeedSequence(seed).spawn(k + 1)[k])``; in worker processes
    pass e.g. ``seed=(base_seed, worker_id)`` so that workers draw different movies.
    """
    config = SimulationConfig.from_dict(config)
    root = _seed_sequence(seed)
    k = 0
    while True:
        yield simulate(config, n_frames, _children(root, 10_000 + k, 1)[0], **kwargs)
        k += 1


def _children(ss: np.random.SeedSequence, first: int, n: int) -> list[np.random.SeedSequence]:
    """Independent child seed sequences ``first .. first + n - 1`` (stateless, unlike ``spawn``)."""
    return [
        np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
        for k in range(first, first + n)
    ]


def _seed_sequence(seed: Seed | dict) -> np.random.SeedSequence:
    """SeedSequence from an int, a sequence of ints, a SeedSequence, ``SimulatedMovie.seed``, or None."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, dict):
        return np.random.SeedSequence(seed["entropy"], spawn_key=tuple(seed["spawn_key"]))
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"seed must be a non-negative integer (or a list of them), got {seed!r}"
        ) from exc


def _seed_json(seed: Any) -> Any:
    """A JSON-able seed that reproduces the movie (``{"entropy", "spawn_key"}`` for derived seeds)."""
    if isinstance(seed, np.random.SeedSequence):
        if seed.spawn_key:
            return {"entropy": _seed_json(seed.entropy), "spawn_key": [int(k) for k in seed.spawn_key]}
        seed = seed.entropy
    if isinstance(seed, (np.integer, int)):
        return int(seed)
    if isinstance(seed, (list, tuple, np.ndarray)):
        return [int(s) for s in seed]
    return seed


def _check_n_frames(n_frames: int) -> int:
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ParameterError(f"n_frames must be a positive integer, got {n_frames!r}")
    return int(n_frames)


def _check_mask(mask: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != tuple(frame_size):
        raise ParameterError(f"mask must have the frame size {tuple(frame_size)}, got shape {mask.shape}")
    m = mask.astype(np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0) or not np.any(m > 0):
        raise ParameterError("mask must be non-negative and positive somewhere")
    return m


def _background_field(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray | None:
    """Smooth random field ``1 + A * f`` with max ``|f|`` = 1, or None for a uniform background."""
    if config.bg_field_amplitude == 0:
        return None
    noise = gaussian_filter(rng.standard_normal(config.frame_size), config.bg_field_scale_px, mode="wrap")
    noise -= noise.mean()
    noise /= max(np.abs(noise).max(), 1e-12)
    return 1.0 + config.bg_field_amplitude * noise


def _rows_from_table(df: pd.DataFrame, config: SimulationConfig) -> EmitterRows:
    """Emitter rows from a ground-truth table (nm, 0-based frames)."""
    missing = [c for c in ("frame", "x_nm", "y_nm", "photons") if c not in df.columns]
    if missing:
        raise ParameterError(f"emitters table lacks columns {missing}")
    px = config.pixel_size_nm
    n = len(df)
    z = df["z_nm"].to_numpy(np.float64) if "z_nm" in df.columns else np.zeros(n)
    if "sigma_x_nm" in df.columns and "sigma_y_nm" in df.columns:
        sx, sy = df["sigma_x_nm"].to_numpy(np.float64) / px, df["sigma_y_nm"].to_numpy(np.float64) / px
    elif config.psf.kind == "astigmatic":
        sx, sy = astigmatic_sigmas(z, config.psf)
    else:
        sx = sy = np.full(n, float(np.mean(config.psf.sigma_px)))
    if np.any(sx <= 0) or np.any(sy <= 0):
        raise ParameterError("emitters table: sigma_x_nm and sigma_y_nm must be > 0")
    return EmitterRows(
        id=df["id"].to_numpy(np.int64) if "id" in df.columns else np.arange(n, dtype=np.int64),
        frame=df["frame"].to_numpy(np.int64),
        x_px=df["x_nm"].to_numpy(np.float64) / px,
        y_px=df["y_nm"].to_numpy(np.float64) / px,
        z_nm=z,
        sigma_x_px=sx,
        sigma_y_px=sy,
        photons=df["photons"].to_numpy(np.float64),
    )


def _emitter_table(
    rows: EmitterRows, bg: np.ndarray, config: SimulationConfig, with_crlb: bool
) -> pd.DataFrame:
    px = config.pixel_size_nm
    astig = config.psf.kind == "astigmatic"
    cols: dict[str, np.ndarray] = {
        "frame": rows.frame,
        "x_nm": rows.x_px * px,
        "y_nm": rows.y_px * px,
        "z_nm": rows.z_nm,
        "photons": rows.photons,
        "bg": bg,
        "sigma_x_nm": rows.sigma_x_px * px,
        "sigma_y_nm": rows.sigma_y_px * px,
    }
    nan = np.full(len(rows), np.nan)
    if with_crlb and len(rows):
        dz = astigmatic_sigma_derivatives(rows.z_nm, config.psf) if astig else (None, None)
        bound = crlb(
            rows.x_px, rows.y_px, rows.photons, bg, rows.sigma_x_px, rows.sigma_y_px,
            config.camera, config.frame_size, *dz,
        )  # fmt: skip
        cols.update(
            crlb_x_nm=bound["x_px"] * px,
            crlb_y_nm=bound["y_px"] * px,
            crlb_z_nm=bound["z_nm"] if astig else nan,
            crlb_photons=bound["photons"],
        )
    else:
        cols.update(crlb_x_nm=nan, crlb_y_nm=nan, crlb_z_nm=nan, crlb_photons=nan)
    cols["id"] = rows.id
    if not astig:
        del cols["crlb_z_nm"]
    table = pd.DataFrame(cols)
    table.attrs.update(pixel_size_nm=px, frame_size=tuple(config.frame_size))
    return table
