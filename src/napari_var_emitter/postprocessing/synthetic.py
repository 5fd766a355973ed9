"""Localization tables from a known structure, for tests, figures and benchmarks (no image simulation).

Emitters sit on rings and on smooth filaments; each blinks on in a few short events (geometric on-times,
uniformly placed in time) and every frame it is on gives one localization with Gaussian noise of its
precision (which scales as 1/sqrt(photons)). An optional drift (per frame) is added to the positions.
The truth travels in extra columns: ``emitter``, ``event``, ``x_true_nm``, ``y_true_nm``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def structure(
    field_nm: float = 6000.0,
    n_rings: int = 40,
    ring_radius_nm: tuple[float, float] = (80.0, 200.0),
    n_filaments: int = 12,
    spacing_nm: float = 8.0,
    seed: int = 0,
) -> np.ndarray:
    """Emitter positions (N, 2) in nm (x, y) on rings and filaments inside a ``field_nm`` square."""
    rng = np.random.default_rng(seed)
    margin = 0.1 * field_nm
    parts = []
    for _ in range(n_rings):
        cx, cy = rng.uniform(margin, field_nm - margin, 2)
        r = rng.uniform(*ring_radius_nm)
        k = max(8, int(2 * np.pi * r / spacing_nm))
        a = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, k, endpoint=False)
        parts.append(np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)]))
    for _ in range(n_filaments):
        start = rng.uniform(margin, field_nm - margin, 2)
        length = rng.uniform(0.3, 0.8) * field_nm
        k = int(length / spacing_nm)
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.01, k))  # gently curved
        steps = spacing_nm * np.column_stack([np.cos(heading), np.sin(heading)])
        pts = start + np.cumsum(steps, axis=0)
        inside = np.all((pts > 0) & (pts < field_nm), axis=1)
        parts.append(pts[inside])
    return np.vstack(parts)


def sinusoid_linear_drift(
    n_frames: int, amplitude_nm: float = 120.0, period_frames: float = 15000.0, total_linear_nm: float = 200.0
) -> np.ndarray:
    """A drift (n_frames, 2) of a slow sinusoid plus a linear trend, zero at frame 0."""
    t = np.arange(n_frames, dtype=np.float64)
    dx = amplitude_nm * np.sin(2 * np.pi * t / period_frames) + total_linear_nm * t / n_frames
    dy = (
        0.7 * amplitude_nm * (1 - np.cos(2 * np.pi * t / (1.3 * period_frames)))
        - 0.5 * total_linear_nm * t / n_frames
    )
    return np.column_stack([dx, dy])


def blinking_table(
    emitters_nm: np.ndarray,
    n_frames: int = 20000,
    events_per_emitter: float = 2.0,
    mean_on_frames: float = 3.0,
    precision_nm: float = 8.0,
    photons: float = 2000.0,
    drift_nm: np.ndarray | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A localization table of blinking emitters (one row per emitter per on-frame), sorted by frame.

    ``events_per_emitter`` is the mean (Poisson) number of on-events, each lasting a geometric number of
    frames of mean ``mean_on_frames``; photons per frame are exponential-ish around ``photons`` and the
    localization precision is ``precision_nm * sqrt(photons / photons_i)`` (recorded as ``sigma_x_nm`` and
    ``sigma_y_nm``). ``drift_nm`` (n_frames, 2) is added to every position.
    """
    rng = np.random.default_rng(seed)
    n_em = len(emitters_nm)
    n_ev = rng.poisson(events_per_emitter, n_em)
    emitter = np.repeat(np.arange(n_em), n_ev)
    start = rng.integers(0, n_frames, len(emitter))
    length = rng.geometric(1.0 / mean_on_frames, len(emitter))
    event = np.repeat(np.arange(len(emitter)), length)
    frame = start[event] + (np.arange(len(event)) - np.repeat(np.cumsum(length) - length, length))
    keep = frame < n_frames
    event, frame = event[keep], frame[keep]
    em = emitter[event]
    # one localization per emitter and frame even where two of its events overlap
    _, first = np.unique(em * np.int64(n_frames) + frame, return_index=True)
    event, frame, em = event[first], frame[first], em[first]
    n = len(frame)
    ph = photons * rng.gamma(4.0, 0.25, n)
    sigma = precision_nm * np.sqrt(photons / ph)
    true = emitters_nm[em]
    xy = true + rng.normal(0.0, 1.0, (n, 2)) * sigma[:, None]
    if drift_nm is not None:
        xy = xy + np.asarray(drift_nm)[frame]
    df = pd.DataFrame(
        {
            "frame": frame.astype(np.int64),
            "x_nm": xy[:, 0],
            "y_nm": xy[:, 1],
            "z_nm": 0.0,
            "photons": ph,
            "bg": 20.0,
            "prob": 1.0,
            "sigma_x_nm": sigma,
            "sigma_y_nm": sigma,
            "emitter": em,
            "event": event,
            "x_true_nm": true[:, 0],
            "y_true_nm": true[:, 1],
        }
    )
    df = df.sort_values("frame", kind="stable").reset_index(drop=True)
    df.attrs.update(pixel_size_nm=100.0, n_frames=n_frames)
    return df


def true_events(table: pd.DataFrame, max_dark: int) -> int:
    """The number of on-events as a grouping with ``max_dark`` dark frames should see them: runs of an
    emitter's frames separated by more than ``max_dark`` frames."""
    t = table.sort_values(["emitter", "frame"])
    em = t["emitter"].to_numpy()
    fr = t["frame"].to_numpy()
    new = np.ones(len(t), bool)
    new[1:] = (em[1:] != em[:-1]) | (np.diff(fr) > max_dark + 1)
    return int(new.sum())
