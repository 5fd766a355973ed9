"""Helpers for the inference tests: a fixed-weight (matched-filter) emitter model and synthetic movies.

``MatchedFilterModel`` is an :class:`~napari_var_emitter.models.EmitterModel` with known, fixed weights: it
subtracts a known background, sums photons in a 5x5 window, takes the 5x5 centroid as the sub-pixel position,
and at every scale f marks the output pixel that contains that position. It is local (receptive field 5 px),
so tiled and untiled inference must agree exactly, and its localizations are accurate to a few nm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.special import erf

from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.models import EmitterModel, UNetConfig
from napari_var_emitter.models import layout as L

IDEAL = CameraConfig(type="ideal", qe=1.0, e_per_adu=1.0, baseline=0.0, read_noise_e=0.0)
PX = 100.0
BG = 20.0


class MatchedFilterModel(EmitterModel):
    def __init__(self, scales=(1, 2, 4), bg=BG, tile_size=None, margin=8, min_photons=300.0):
        super().__init__(UNetConfig(n_frames=1, sigma_channels=False, photon_scale=10000.0, bg_scale=300.0))
        self.scales = tuple(scales)
        self.tile_size = tile_size
        self.margin = margin
        self.bg = bg
        self.min_photons = min_photons
        r = torch.arange(-2.0, 3.0)
        self.register_buffer("box", torch.ones(1, 1, 5, 5))
        self.register_buffer("kx", r.view(1, 5).expand(5, 5).reshape(1, 1, 5, 5).clone())
        self.register_buffer("ky", r.view(5, 1).expand(5, 5).reshape(1, 1, 5, 5).clone())

    def forward(self, x, teacher=None, teacher_prob=1.0, max_scale=None):
        s = (x[:, :1].float() - self.bg).clamp(min=0)
        n = F.conv2d(s, self.box, padding=2)
        cx = F.conv2d(s, self.kx, padding=2) / n.clamp(min=1e-3)
        cy = F.conv2d(s, self.ky, padding=2) / n.clamp(min=1e-3)
        h, w = x.shape[-2:]
        jj = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
        ii = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
        xe, ye = jj + 0.5 + cx, ii + 0.5 + cy  # emitter position (camera px) seen from each pixel
        # the emitter's pixel: local maximum of the 5x5 photon sum, with enough photons
        is_peak = (n == F.max_pool2d(n, 3, 1, 1)) & (n > self.min_photons)
        # position clipped into that pixel decides which fine pixel holds it
        xc = jj + 0.5 + cx.clamp(-0.499, 0.499)
        yc = ii + 0.5 + cy.clamp(-0.499, 0.499)
        outs = []
        for f in self.scales:

            def up(t, f=f):
                return F.interpolate(t.float(), scale_factor=f, mode="nearest")

            jf = torch.arange(w * f, dtype=torch.float32).view(1, 1, 1, -1)
            if_ = torch.arange(h * f, dtype=torch.float32).view(1, 1, -1, 1)
            dx = up(xe) * f - (jf + 0.5)
            dy = up(ye) * f - (if_ + 0.5)
            holds = (torch.floor(up(xc) * f) == jf) & (torch.floor(up(yc) * f) == if_) & (up(is_peak) > 0)
            logit = torch.where(holds, 8.0, -8.0)
            out = torch.zeros(x.shape[0], 6, h * f, w * f)
            out[:, L.P] = logit[:, 0]
            out[:, L.PHOTONS] = up(n)[:, 0] / self.config.photon_scale
            out[:, L.DX] = dx[:, 0].clamp(-0.99, 0.99)
            out[:, L.DY] = dy[:, 0].clamp(-0.99, 0.99)
            out[:, L.BG] = self.bg / self.config.bg_scale
            outs.append(out)
        return outs


def render_frames(emitters: pd.DataFrame, n_frames: int, shape: tuple[int, int], sigma_px=1.0, bg=BG, seed=0):
    """Poisson movie (photons == ADU on the ideal camera) of pixel-integrated Gaussian emitters."""
    h, w = shape
    img = np.full((n_frames, h, w), bg, np.float64)
    xs = emitters.x_nm.to_numpy() / PX
    ys = emitters.y_nm.to_numpy() / PX
    e = np.arange(w + 1)[None, :]
    gx = np.diff(0.5 * (1 + erf((e - xs[:, None]) / (np.sqrt(2) * sigma_px))), axis=1)  # (N, W)
    e = np.arange(h + 1)[None, :]
    gy = np.diff(0.5 * (1 + erf((e - ys[:, None]) / (np.sqrt(2) * sigma_px))), axis=1)  # (N, H)
    contrib = emitters.photons.to_numpy()[:, None, None] * gy[:, :, None] * gx[:, None, :]
    np.add.at(img, emitters.frame.to_numpy(), contrib)
    return np.random.default_rng(seed).poisson(img).astype(np.uint16)


def isolated_emitters(n_frames, shape, per_frame=4, photons=3000.0, seed=0, border_px=3, spacing_px=8):
    """Emitters on a jittered grid (well separated), ``per_frame`` at most per frame."""
    rng = np.random.default_rng(seed)
    h, w = shape
    gy, gx = np.meshgrid(
        np.arange(border_px, h - border_px, spacing_px),
        np.arange(border_px, w - border_px, spacing_px),
        indexing="ij",
    )
    cells = np.c_[gy.ravel(), gx.ravel()]
    rows = []
    for t in range(n_frames):
        pick = cells[rng.choice(len(cells), min(per_frame, len(cells)), replace=False)]
        pos = pick + rng.uniform(0, 1, pick.shape)
        rows.append(pd.DataFrame({"frame": t, "x_nm": pos[:, 1] * PX, "y_nm": pos[:, 0] * PX}))
    df = pd.concat(rows, ignore_index=True)
    df["photons"] = photons
    return df
