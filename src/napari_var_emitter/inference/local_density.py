"""How many localizations lie around each pixel of a frame, per pixel², for the settings of the PSF fit that
depend on how crowded a region is (the residual search, the merge radius)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .refine import RefineOptions

#: side (pixels) of the box over which the local density of localizations is counted
DENSITY_WINDOW = 21


def box_sums(padded: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of (B, H + size - 1, W + size - 1) ``padded`` over every ``size`` x ``size`` box: (B, H, W), from
    cumulative sums (pooling with large windows is several times slower on the CPU)."""
    c = F.pad(padded, (1, 0, 1, 0)).cumsum(1).cumsum(2)
    return c[:, size:, size:] - c[:, :-size, size:] - c[:, size:, :-size] + c[:, :-size, :-size]


def density_map(bidx: np.ndarray, x: np.ndarray, y: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """(B, H, W) localizations per pixel² over the ``DENSITY_WINDOW`` x ``DENSITY_WINDOW`` pixels around each
    pixel (the part inside the frame), for points ``x``, ``y`` (pixels, centres at integers) in the frames
    ``bidx`` of a batch of ``shape`` (B, H, W)."""
    nb, h, w = shape
    r = DENSITY_WINDOW // 2
    counts = torch.zeros(nb, h + 2 * r, w + 2 * r, dtype=torch.float64)
    ix = torch.from_numpy(np.clip(np.rint(x), 0, w - 1).astype(np.int64) + r)
    iy = torch.from_numpy(np.clip(np.rint(y), 0, h - 1).astype(np.int64) + r)
    b = torch.from_numpy(np.asarray(bidx, np.int64))
    counts.index_put_((b, iy, ix), torch.ones(len(x), dtype=torch.float64), accumulate=True)
    area = box_sums(F.pad(torch.ones(1, h, w, dtype=torch.float64), (r, r, r, r)), DENSITY_WINDOW)
    return box_sums(counts, DENSITY_WINDOW) / area


class MergeRadius:
    """The merge radius (pixels) around the localizations ``x``, ``y`` (pixels, centres at integers; frames
    ``bidx`` of a batch of ``shape``): ``opt.merge_dense_px`` where they are at least ``opt.merge_density``
    per µm² (:func:`density_map`, or ``dens`` when the caller has it; counted only when a radius is asked
    for), else ``opt.merge_px``. Two localizations closer than the smaller radius of the two are one
    emitter."""

    def __init__(
        self,
        bidx: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        shape: tuple[int, int, int],
        pixel_size_nm: float,
        opt: RefineOptions,
        dens: torch.Tensor | None = None,
    ) -> None:
        self.bidx, self.x, self.y, self.shape, self.opt = bidx, x, y, shape, opt
        self._per_px2 = (
            None if opt.merge_density is None else float(opt.merge_density) * pixel_size_nm**2 / 1e6
        )
        self._dens = dens
        self._dense: torch.Tensor | None = None  # (B, H, W) True where crowded, counted on first use

    def at(self, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(K,) the radius at the points ``x``, ``y`` of the frames ``b``."""
        radius = np.full(len(x), float(self.opt.merge_px))
        if self._per_px2 is None or len(x) == 0 or len(self.x) == 0:
            return radius
        if self._dense is None:
            dens = density_map(self.bidx, self.x, self.y, self.shape) if self._dens is None else self._dens
            self._dense = dens >= self._per_px2 * (1 - 1e-6)
        _, h, w = self.shape
        ix = np.clip(np.rint(x), 0, w - 1).astype(np.int64)
        iy = np.clip(np.rint(y), 0, h - 1).astype(np.int64)
        radius[self._dense[np.asarray(b, np.int64), iy, ix].numpy()] = float(self.opt.merge_dense_px)
        return radius

    def own(self) -> np.ndarray:
        """(K,) the radius at each of the localizations."""
        return self.at(self.bidx, self.x, self.y)
