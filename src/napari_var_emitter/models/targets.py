"""Ground-truth emitter lists and their rasterisation into per-scale target maps.

Coordinates: x, y in CAMERA PIXELS from the image corner (pixel (r, c) spans [c, c+1) x [r, r+1), its
centre is (c + 0.5, r + 0.5)); z in nm. For 3-frame models the targets describe the centre frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ParameterError
from . import layout as L


@dataclass
class EmitterTargets:
    """A batch of emitter lists, padded to the longest: ``xyz`` (B, N, 3), ``photons`` (B, N), ``mask`` (B, N)
    bool (False marks padding), ``bg`` (B, H, W) photons per camera pixel."""

    xyz: torch.Tensor
    photons: torch.Tensor
    mask: torch.Tensor
    bg: torch.Tensor

    @classmethod
    def from_lists(
        cls,
        emitters: Sequence[np.ndarray | torch.Tensor],
        bg: np.ndarray | torch.Tensor | float | Sequence[float],
        shape: tuple[int, int] | None = None,
    ) -> EmitterTargets:
        """Pad per-frame ``(N_i, 4)`` arrays ``[x_px, y_px, z_nm, photons]`` into one batch.

        ``bg`` is ``(B, H, W)`` (or ``(H, W)`` for B = 1), or a scalar / ``(B,)`` per-frame level, which
        then needs ``shape=(H, W)``.
        """
        b = len(emitters)
        arrays = [torch.as_tensor(np.asarray(e, dtype=np.float32)).reshape(-1, 4) for e in emitters]
        n = max([a.shape[0] for a in arrays], default=0)
        xyz = torch.zeros(b, n, 3)
        photons = torch.zeros(b, n)
        mask = torch.zeros(b, n, dtype=torch.bool)
        for i, a in enumerate(arrays):  # one copy per frame, not per emitter
            xyz[i, : len(a)] = a[:, :3]
            photons[i, : len(a)] = a[:, 3]
            mask[i, : len(a)] = True
        bg_t = torch.as_tensor(np.asarray(bg, dtype=np.float32))
        if bg_t.ndim <= 1:
            if shape is None:
                raise ParameterError("EmitterTargets.from_lists: a scalar or per-frame bg needs shape=(H, W)")
            bg_t = bg_t.reshape(-1, 1, 1).expand(b, *shape).clone()
        elif bg_t.ndim == 2:
            bg_t = bg_t[None].expand(b, -1, -1).clone()
        if bg_t.shape[0] != b:
            raise ParameterError(f"EmitterTargets.from_lists: bg has {bg_t.shape[0]} frames, emitters {b}")
        return cls(xyz, photons, mask, bg_t)

    def to(self, device: torch.device | str) -> EmitterTargets:
        return replace(self, **{k: getattr(self, k).to(device) for k in ("xyz", "photons", "mask", "bg")})

    @property
    def frame_hw(self) -> tuple[int, int]:
        return int(self.bg.shape[-2]), int(self.bg.shape[-1])

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def in_frame(self) -> torch.Tensor:
        """(B, N) bool: real emitters (not padding) whose centre lies inside the frame."""
        hh, ww = self.frame_hw
        x, y = self.xyz[..., 0], self.xyz[..., 1]
        return self.mask & (x >= 0) & (x < ww) & (y >= 0) & (y < hh)

    def select(self, index: torch.Tensor) -> EmitterTargets:
        """The sub-batch at ``index`` (a bool or integer tensor over B)."""
        return EmitterTargets(self.xyz[index], self.photons[index], self.mask[index], self.bg[index])


def scale_bg(bg: torch.Tensor, factor: float, out_hw: tuple[int, int]) -> torch.Tensor:
    """Background (B, H, W) at a scale: repeated (factor >= 1) or block-averaged (factor < 1), then padded at
    the bottom/right by replication (or cropped) to ``out_hw``. Still photons per camera pixel."""
    x = bg[:, None]
    if factor >= 1:
        f = int(round(factor))
        x = x.repeat_interleave(f, -2).repeat_interleave(f, -1) if f > 1 else x
    else:
        s = int(round(1 / factor))
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % s, 0, -h % s), mode="replicate")
        x = F.avg_pool2d(x, s)
    h, w = x.shape[-2:]
    th, tw = out_hw
    if th > h or tw > w:
        x = F.pad(x, (0, max(tw - w, 0), 0, max(th - h, 0)), mode="replicate")
    return x[:, 0, :th, :tw]


def _pixel_index(
    targets: EmitterTargets, factor: float, out_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each emitter's position at a scale (``xs``, ``ys``: (B, N) in that scale's pixels), whether it counts
    (``inside``: a real emitter with finite photons, inside the frame and the (h, w) map) and its flat index
    ``b * h * w + row * w + col`` into the batch's maps (clamped where it does not count)."""
    b = targets.photons.shape[0]
    h, w = out_hw
    xs = targets.xyz[..., 0].float() * factor
    ys = targets.xyz[..., 1].float() * factor
    col, row = torch.floor(xs).long(), torch.floor(ys).long()
    inside = targets.in_frame() & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    inside &= torch.isfinite(targets.photons)
    batch = torch.arange(b, device=xs.device)[:, None] * (h * w)
    return xs, ys, inside, batch + row.clamp(0, h - 1) * w + col.clamp(0, w - 1)


def rasterize(
    targets: EmitterTargets, factor: float, out_hw: tuple[int, int] | None = None, model_config=None
) -> torch.Tensor:
    """Target maps of one scale, (B, 6, h, w), built from the emitter list in the layout of models/layout.py.

    ``factor`` is the scale's upsampling factor relative to the camera (1, 2, 4, 8, or 1/8, 1/4 for coarse
    token maps); ``out_hw`` defaults to the frame size times ``factor`` (rounded up). Channels, in the model's
    normalised units: 0 occupancy (1 where an emitter's centre falls in the pixel), 1 photons / photon_scale,
    2-3 dx, dy of the emitter from that pixel's centre in that scale's pixels (in [-0.5, 0.5)), 4 z /
    z_scale_nm, 5 bg / bg_scale (everywhere). Where two emitters fall into one pixel the brighter one is kept
    (ties: the later one in the list). Emitters outside the frame are ignored. Vectorised (no loop).
    """
    photon_scale = getattr(model_config, "photon_scale", 1.0)
    bg_scale = getattr(model_config, "bg_scale", 1.0)
    z_scale = getattr(model_config, "z_scale_nm", 1.0)
    b, n = targets.photons.shape
    hh, ww = targets.frame_hw
    if out_hw is None:
        out_hw = (math.ceil(hh * factor), math.ceil(ww * factor))
    h, w = out_hw
    dev = targets.xyz.device
    maps = torch.zeros(b, 6, h, w, device=dev)
    maps[:, L.BG] = scale_bg(targets.bg.float(), factor, out_hw) / bg_scale
    if n == 0:
        return maps
    xs, ys, inside, flat = _pixel_index(targets, factor, (h, w))
    flat = flat[inside]
    phot = targets.photons[inside].float()
    # rank emitters by (photons, list order); each pixel keeps its highest-ranked emitter
    order = torch.argsort(phot, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=dev)
    best = torch.full((b * h * w,), -1, dtype=torch.long, device=dev).scatter_reduce(0, flat, rank, "amax")
    win = best[flat] == rank
    flat, phot = flat[win], phot[win]
    dx = (xs[inside] - torch.floor(xs[inside]) - 0.5)[win]
    dy = (ys[inside] - torch.floor(ys[inside]) - 0.5)[win]
    z = targets.xyz[..., 2][inside].float()[win]
    view = maps.permute(1, 0, 2, 3).reshape(6, -1)  # a copy: channels x (B*h*w)
    view[L.P, flat] = 1.0
    view[L.PHOTONS, flat] = phot / photon_scale
    view[L.DX, flat] = dx
    view[L.DY, flat] = dy
    view[L.Z, flat] = z / z_scale
    return view.reshape(6, b, h, w).permute(1, 0, 2, 3).contiguous()


def pixel_counts(targets: EmitterTargets, out_hw: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, h, w) long: the number of emitters whose centre falls in each camera pixel (emitters outside the
    frame ignored), the count head's target before clipping."""
    b = targets.photons.shape[0]
    h, w = targets.frame_hw if out_hw is None else out_hw
    _, _, inside, flat = _pixel_index(targets, 1.0, (h, w))
    counts = torch.zeros(b * h * w, dtype=torch.long, device=flat.device)
    counts.index_add_(0, flat[inside], torch.ones_like(flat[inside]))
    return counts.view(b, h, w)
