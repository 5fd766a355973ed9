"""Turn one scale's output maps into a localization table (vectorised, DECODE-style spatial integration).

The algorithm follows DECODE's ``SpatialIntegration`` post-processing:

1. ``p = sigmoid(logit)``; pixels with ``p > candidate_threshold`` are candidates.
2. Local maxima of the candidates in a square neighbourhood of radius ``r`` pixels (3x3 at r = 1; sparse
   gathers). Equal maxima in one neighbourhood (a plateau) keep one pixel only: the largest raster index.
3. Pixels that are not maxima but have ``p > split_threshold`` are kept as well, so that two emitters in
   adjacent pixels both survive.
4. Each kept pixel gets the probability summed over the disk of radius ``r`` around it (itself and its 4
   neighbours at r = 1; clipped to 1) and is a localization when that sum is ``>= threshold``.

The radius is set in nm (``radius_nm``, default 50 nm) and converted to output pixels of the scale,
``r = max(1, round(radius_nm / pixel))``: 1 pixel at 1x and 2x (100 and 50 nm pixels, DECODE's rule), 2 at
4x, 4 at 8x. Fine scales spread an emitter's probability over several pixels finer than the localization
precision; a radius in nm keeps that from becoming several detections, while emitters further apart than
the radius stay separate.
5. Sub-pixel offsets are added to the pixel centre; photons, z, background and sigmas are read at the peak
   and de-normalised with the model config (see :mod:`napari_var_emitter.models.layout`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM
from ..models import layout

#: columns of every localization table, in order
BASE_COLUMNS = ("frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "prob")
SIGMA_COLUMNS = ("sigma_x_nm", "sigma_y_nm", "sigma_z_nm", "sigma_photons")


def _cfg(model_config: Any, name: str, default: float) -> float:
    if model_config is None:
        return default
    if isinstance(model_config, dict):
        return float(model_config.get(name, default))
    return float(getattr(model_config, name, default))


def empty_table(sigma: bool = False) -> pd.DataFrame:
    """An empty localization table with the right columns and dtypes."""
    cols = BASE_COLUMNS + (SIGMA_COLUMNS if sigma else ())
    df = pd.DataFrame({c: np.zeros(0, np.float32) for c in cols})
    df["frame"] = df["frame"].astype(np.int64)
    return df


_NAN_MESSAGE = "model outputs contain NaN or infinite values (bad input frames or a broken model)"
#: default neighbourhood radius of peak finding and probability integration (nm)
DEFAULT_RADIUS_NM = 50.0


def radius_px(radius_nm: float, pixel_nm: float) -> int:
    """Neighbourhood radius in output pixels of ``pixel_nm``: at least 1."""
    return max(1, int(round(radius_nm / pixel_nm)))


def _offsets(r: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row and column offsets of the (2r+1)^2 square, and the mask of its disk of radius r."""
    d = torch.arange(-r, r + 1, device=device)
    di, dj = torch.meshgrid(d, d, indexing="ij")
    di, dj = di.flatten(), dj.flatten()
    return di, dj, di**2 + dj**2 <= r * r


def _neighbours(values: torch.Tensor, b, i, j, r: int = 1) -> torch.Tensor:
    """(N, (2r+1)^2) values of the square neighbourhoods of pixels (b, i, j) of ``values`` (B, h, w); 0
    outside the map."""
    h, w = values.shape[-2:]
    di, dj, _ = _offsets(r, i.device)
    ii = i[:, None] + di
    jj = j[:, None] + dj
    inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
    flat = (b[:, None] * h + ii.clamp(0, h - 1)) * w + jj.clamp(0, w - 1)
    v = values.reshape(-1).index_select(0, flat.flatten()).view(flat.shape)  # ~3x faster than values[b, i, j]
    return torch.where(inside, v, torch.zeros((), dtype=v.dtype, device=v.device))


def integrated_probability(
    p: torch.Tensor, candidate_threshold: float = 0.1, split_threshold: float = 0.6, radius: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """DECODE spatial integration of ``p`` (B, h, w) with a neighbourhood of ``radius`` pixels:
    ``(b, i, j, summed p)`` of the kept pixels.

    Work is proportional to the number of candidate pixels (sparse gathers), not to the map size.
    """
    b, i, j = torch.nonzero(p > candidate_threshold, as_tuple=True)
    cand = torch.where(p > candidate_threshold, p, torch.zeros((), dtype=p.dtype, device=p.device))
    own = cand[b, i, j]
    is_max = own >= _neighbours(cand, b, i, j, radius).max(dim=1).values
    # plateau: touching maxima are equal by construction; keep the one with the largest raster index
    h, w = p.shape[-2:]
    max_id = torch.full(p.shape, -1, dtype=torch.int64, device=p.device)
    lin = i * w + j
    max_id[b[is_max], i[is_max], j[is_max]] = lin[is_max]
    is_max &= _neighbours(max_id, b, i, j, radius).max(dim=1).values <= lin
    keep = is_max | (own > split_threshold)
    b, i, j = b[keep], i[keep], j[keep]
    disk = _offsets(radius, p.device)[2]
    summed = _neighbours(p, b, i, j, radius)[:, disk].sum(dim=1).clamp(max=1.0)
    return b, i, j, summed


@torch.inference_mode()
def localize(
    outputs: torch.Tensor | np.ndarray,
    factor: int = 1,
    threshold: float = 0.5,
    pixel_size_nm: float = DEFAULT_PIXEL_SIZE_NM,
    model_config: Any = None,
    frames: Sequence[int] | np.ndarray | None = None,
    frame_offset: int = 0,
    *,
    candidate_threshold: float = 0.1,
    split_threshold: float = 0.6,
    max_sigma_nm: float | None = None,
    logits: bool = True,
    radius_nm: float = DEFAULT_RADIUS_NM,
) -> pd.DataFrame:
    """Localizations from one scale's outputs ``(B, C, h, w)`` in the DECODE channel layout.

    ``factor`` is the scale's upsampling factor (output pixel ``(i, j)`` has its centre at
    ``((j + 0.5) / f, (i + 0.5) / f)`` camera pixels); ``threshold`` applies to the integrated probability;
    ``model_config`` supplies ``photon_scale``, ``bg_scale`` and ``z_scale_nm`` (object or dict; defaults 1).
    Frame numbers are ``frames[b]`` if given, else ``frame_offset + b``. ``max_sigma_nm`` drops localizations
    whose predicted lateral uncertainty (max of sigma_x, sigma_y) exceeds it (10-channel outputs only).
    ``logits=False`` means channel 0 already holds probabilities. ``radius_nm`` is the neighbourhood of
    peak finding and probability integration (see the module docstring).
    """
    x = torch.as_tensor(outputs)
    if x.ndim != 4:
        raise ParameterError(f"outputs must have shape (B, C, h, w), got {tuple(x.shape)}")
    n_ch = x.shape[1]
    if n_ch not in (layout.N_CHANNELS_BASIC, layout.N_CHANNELS_SIGMA):
        raise ParameterError(f"outputs must have 6 or 10 channels (DECODE layout), got {n_ch}")
    if not 0.0 < threshold <= 1.0:
        raise ParameterError(f"threshold must be in (0, 1], got {threshold}")
    if factor < 1 or pixel_size_nm <= 0 or not radius_nm > 0:
        raise ParameterError(
            "factor, pixel_size_nm and radius_nm must be positive, "
            f"got {factor}, {pixel_size_nm}, {radius_nm}"
        )
    x = x.float()
    if not torch.isfinite(x[:, layout.P]).all():  # the other channels are checked where they are read
        raise ParameterError(_NAN_MESSAGE)
    sigma = n_ch == layout.N_CHANNELS_SIGMA
    p = torch.sigmoid(x[:, layout.P]) if logits else x[:, layout.P]
    radius = radius_px(radius_nm, pixel_size_nm / factor)
    b, i, j, p_int = integrated_probability(p, candidate_threshold, split_threshold, radius)
    sel = p_int >= threshold
    if not bool(sel.any()):
        return empty_table(sigma)
    b, i, j = b[sel], i[sel], j[sel]
    feats = x[b, :, i, j].float().cpu().numpy()  # (N, C): only the peaks are read
    if not np.isfinite(feats).all():
        raise ParameterError(_NAN_MESSAGE)
    prob = p_int[sel].cpu().numpy().astype(np.float32)
    b, i, j = b.cpu().numpy(), i.cpu().numpy(), j.cpu().numpy()
    px_out = pixel_size_nm / factor
    photon_scale = _cfg(model_config, "photon_scale", 1.0)
    bg_scale = _cfg(model_config, "bg_scale", 1.0)
    z_scale = _cfg(model_config, "z_scale_nm", 1.0)
    frame_ids = (
        (np.asarray(frames, dtype=np.int64)[b]) if frames is not None else b.astype(np.int64) + frame_offset
    )
    data = {
        "frame": frame_ids,
        "x_nm": ((j + 0.5 + feats[:, layout.DX]) * px_out).astype(np.float32),
        "y_nm": ((i + 0.5 + feats[:, layout.DY]) * px_out).astype(np.float32),
        "z_nm": (feats[:, layout.Z] * z_scale).astype(np.float32),
        "photons": (feats[:, layout.PHOTONS] * photon_scale).astype(np.float32),
        "bg": (feats[:, layout.BG] * bg_scale).astype(np.float32),
        "prob": prob,
    }
    if sigma:
        data["sigma_x_nm"] = (feats[:, layout.SIG_X] * px_out).astype(np.float32)
        data["sigma_y_nm"] = (feats[:, layout.SIG_Y] * px_out).astype(np.float32)
        data["sigma_z_nm"] = (feats[:, layout.SIG_Z] * z_scale).astype(np.float32)
        data["sigma_photons"] = (feats[:, layout.SIG_PHOTONS] * photon_scale).astype(np.float32)
    df = pd.DataFrame(data)
    if max_sigma_nm is not None and sigma:
        df = df[np.maximum(df["sigma_x_nm"], df["sigma_y_nm"]) <= max_sigma_nm].reset_index(drop=True)
    return df
