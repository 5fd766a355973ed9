"""Blinking emitters: positions, brightness, PSF widths and their on-time in each frame (vectorised).

Emitters switch on at a constant rate (a Poisson process in continuous time) and stay on for an
exponentially distributed time with mean ``on_time_frames``. The movie starts in steady state: the emitters
already on at t = 0 are drawn from the stationary distribution (Poisson count, exponential residual
lifetime, which is exact because the exponential is memoryless). An emitter on during ``[t0, t1)`` appears
in every frame ``f`` with ``[f, f + 1)`` overlapping it, with ``photons = flux * overlap`` (DECODE).
With mean on-time tau, an emitter overlaps tau + 1 frames on average, so the switch-on rate is
``density * area / (tau + 1)`` per frame to give ``density`` visible emitters per um^2 per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SimulationConfig
from .psf import astigmatic_sigmas


@dataclass
class EmitterRows:
    """One row per emitter per frame it is on (positions in pixels from the image corner)."""

    id: np.ndarray  # int64 emitter index, unique within a movie
    frame: np.ndarray  # int64
    x_px: np.ndarray
    y_px: np.ndarray
    z_nm: np.ndarray
    sigma_x_px: np.ndarray
    sigma_y_px: np.ndarray
    photons: np.ndarray  # photons emitted in this frame

    def select(self, keep: np.ndarray) -> EmitterRows:
        return EmitterRows(**{k: v[keep] for k, v in vars(self).items()})

    def __len__(self) -> int:
        return len(self.frame)


def sample_positions(
    n: int, frame_size: tuple[int, int], rng: np.random.Generator, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions (x_px, y_px) uniform in the frame, or in the pixels where ``mask`` > 0.

    ``mask`` (H, W) may be boolean or non-negative weights (relative density per pixel).
    """
    h, w = frame_size
    if mask is None:
        return rng.uniform(0.0, w, n), rng.uniform(0.0, h, n)
    weights = np.asarray(mask, dtype=np.float64).ravel()
    pix = rng.choice(weights.size, size=n, p=weights / weights.sum())
    r, c = np.divmod(pix, w)
    return c + rng.random(n), r + rng.random(n)


def sample_flux(n: int, config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Photon flux per full frame of ``n`` emitters."""
    lo, hi = config.photons
    if config.photon_distribution == "loguniform":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return rng.uniform(lo, hi, n)


def sample_emitters(
    config: SimulationConfig, n_frames: int, rng: np.random.Generator, mask: np.ndarray | None = None
) -> EmitterRows:
    """Blinking emitters of a movie of ``n_frames`` frames, in steady state from frame 0."""
    tau = config.on_time_frames
    area = config.area_um2 if mask is None else config.area_um2 * _mask_fraction(mask)
    rate = config.density * area / (tau + 1.0)  # switch-on events per frame
    n_initial = rng.poisson(rate * tau)
    n_new = rng.poisson(rate * n_frames)
    n = n_initial + n_new
    start = np.concatenate([np.zeros(n_initial), rng.uniform(0.0, n_frames, n_new)])
    end = start + rng.exponential(tau, n)

    x, y = sample_positions(n, config.frame_size, rng, mask)
    em = {"start": start, "end": end, "x": x, "y": y, "flux": sample_flux(n, config, rng)}
    em["z"], em["sx"], em["sy"] = _sample_psf(n, config, rng)
    if config.partner_fraction > 0:
        em = _with_partners(em, config, rng)
    start, end, x, y, flux, z, sx, sy = (em[k] for k in ("start", "end", "x", "y", "flux", "z", "sx", "sy"))
    n = len(x)

    first = np.floor(start).astype(np.int64)
    last = np.minimum(np.ceil(end).astype(np.int64) - 1, n_frames - 1)
    counts = np.maximum(last - first + 1, 0)
    idx = np.repeat(np.arange(n), counts)
    offsets = np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)
    frame = first[idx] + offsets
    on = np.minimum(end[idx], frame + 1.0) - np.maximum(start[idx], frame)
    rows = EmitterRows(
        id=idx.astype(np.int64),
        frame=frame,
        x_px=x[idx],
        y_px=y[idx],
        z_nm=z[idx],
        sigma_x_px=sx[idx],
        sigma_y_px=sy[idx],
        photons=flux[idx] * on,
    )
    return rows.select(on > 0)


def _sample_psf(
    n: int, config: SimulationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z (nm) and PSF widths sigma_x, sigma_y (pixels) of ``n`` emitters."""
    psf = config.psf
    if psf.kind == "astigmatic":
        z = rng.uniform(*config.z_range_nm, n)
        sx, sy = astigmatic_sigmas(z, psf)
        return z, sx, sy
    sigma = rng.uniform(*psf.sigma_px, n)
    return np.zeros(n), sigma, sigma


def _with_partners(em: dict[str, np.ndarray], config: SimulationConfig, rng: np.random.Generator):
    """The per-emitter arrays ``em`` with a close partner appended for ``partner_fraction`` of the emitters:
    the same on-times, its own brightness and PSF, a uniform distance in ``partner_distance_nm`` in a random
    direction; partners outside the frame are dropped."""
    pick = np.flatnonzero(rng.random(len(em["x"])) < config.partner_fraction)
    d = rng.uniform(*config.partner_distance_nm, len(pick)) / config.pixel_size_nm
    angle = rng.uniform(0.0, 2 * np.pi, len(pick))
    px, py = em["x"][pick] + d * np.cos(angle), em["y"][pick] + d * np.sin(angle)
    h, w = config.frame_size
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    pick = pick[inside]
    partner = {"start": em["start"][pick], "end": em["end"][pick], "x": px[inside], "y": py[inside]}
    partner["z"], partner["sx"], partner["sy"] = _sample_psf(len(pick), config, rng)
    partner["flux"] = sample_flux(len(pick), config, rng)
    return {k: np.concatenate([v, partner[k]]) for k, v in em.items()}


def _mask_fraction(mask: np.ndarray) -> float:
    m = np.asarray(mask, dtype=np.float64)
    return float(np.count_nonzero(m > 0)) / m.size
