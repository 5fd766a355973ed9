"""The pixel-integrated Gaussian spot that the PSF fit (:mod:`.refine`) and the two-emitter test
(:mod:`.two_emitters`) fit, ``mu = bg + N * Ex(x, s) * Ey(y, s)`` over a ``box`` x ``box`` patch (pixel
centres at integers): its pixel profiles, spots drawn into frames, Cramer-Rao standard deviations from a
Fisher information, the boxes of camera pixels that are fitted and the table columns of a fit. The fit
itself (Jacobian, Fisher information, steps) is compiled: :mod:`.fisher_scoring`."""

from __future__ import annotations

import math

import numpy as np
import torch

_SQRT2 = math.sqrt(2.0)
N_PARAMS = 5  # x, y, photons, bg, sigma


def profile(k: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pixel integrals of a unit 1-D Gaussian (centre ``c``, width ``s``) over pixels ``k`` (centres at
    integers), with the scaled pixel edges ``a``, ``b``. Shapes: k (1, box), c and s (K, 1) -> (K, box)."""
    a = (k - c + 0.5) / (_SQRT2 * s)
    b = (k - c - 0.5) / (_SQRT2 * s)
    return 0.5 * (torch.erf(a) - torch.erf(b)), a, b


def contiguous_profile(lo: int, n: int, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """:func:`profile` over the ``n`` adjacent pixels ``lo .. lo + n - 1``: (K, n) for ``c`` and ``s`` (K, 1),
    from the erf at the n + 1 pixel edges (adjacent pixels share one: half the erf of :func:`profile`)."""
    edges = torch.arange(lo, lo + n + 1, dtype=c.dtype)[None, :] - 0.5
    return torch.diff(torch.erf((edges - c) / (_SQRT2 * s)), dim=1).mul_(0.5)


def covariance(fisher: torch.Tensor) -> torch.Tensor:
    """Inverse of each (positive definite) Fisher matrix by Cholesky; the pseudo-inverse where that fails."""
    chol, info = torch.linalg.cholesky_ex(fisher)
    bad = info != 0
    chol[bad] = torch.eye(fisher.shape[-1], dtype=fisher.dtype)
    cov = torch.cholesky_inverse(chol)
    if bool(bad.any()):
        cov[bad] = torch.linalg.pinv(fisher[bad])
    return cov


def crlb_sd(fisher: torch.Tensor) -> torch.Tensor:
    """Cramer-Rao standard deviations (K, n), float64, of Fisher information (K, n, n)."""
    return torch.diagonal(covariance(fisher.double()), dim1=-2, dim2=-1).clamp(min=0).sqrt()


def draw_spots(
    shape: tuple[int, int, int],
    frame: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n: np.ndarray,
    s: np.ndarray,
) -> tuple[torch.Tensor, int]:
    """The model image of spots (pixel-integrated Gaussians, each drawn to 3 sigma): ``n`` photons at ``x``,
    ``y`` (pixels, centres at integers), width ``s``, in frame ``frame`` of a (B, H, W) batch. Returns the
    image padded by ``pad`` pixels on every side (spots near an edge stay whole), and ``pad``."""
    nb, h, w = shape
    pad = int(np.ceil(3 * float(np.max(s, initial=1.0)))) + 1
    k = torch.arange(-pad, pad + 1)
    model = torch.zeros(nb, h + 2 * pad, w + 2 * pad)
    if len(x):

        def t(v):
            return torch.from_numpy(np.asarray(v, np.float64)).float()

        cols = torch.from_numpy(np.rint(x).astype(np.int64))[:, None] + k  # (J, 2 pad + 1) absolute pixels
        rows = torch.from_numpy(np.rint(y).astype(np.int64))[:, None] + k
        sj = t(s)[:, None]
        ex = profile(cols.float(), t(x)[:, None], sj)[0]
        ey = profile(rows.float(), t(y)[:, None], sj)[0]
        spots = t(n)[:, None, None] * ey[:, :, None] * ex[:, None, :]
        cols, rows = (cols + pad).clamp(0, w + 2 * pad - 1), (rows + pad).clamp(0, h + 2 * pad - 1)
        fr = torch.from_numpy(np.asarray(frame, np.int64))[:, None, None]
        flat = (fr * (h + 2 * pad) + rows[:, :, None]) * (w + 2 * pad)
        model.view(-1).index_add_(0, (flat + cols[:, None, :]).reshape(-1), spots.reshape(-1))
    return model, pad


def spot_columns(
    theta: np.ndarray, sd: np.ndarray, c0: np.ndarray, r0: np.ndarray, pixel_size_nm: float, o: int = 0
) -> dict[str, np.ndarray]:
    """Table columns (nm) of fitted spots: the emitter whose x, y, photons are ``theta[:, o : o + 3]`` (box
    pixels, boxes at corners ``c0``, ``r0``), with Cramer-Rao sds ``sd`` and the background in the slot after
    the last emitter's photons (3 of 5, 6 of 9 parameters)."""
    bg = 3 if theta.shape[1] == N_PARAMS else 6
    return {
        "x_nm": (theta[:, o] + c0 + 0.5) * pixel_size_nm,
        "y_nm": (theta[:, o + 1] + r0 + 0.5) * pixel_size_nm,
        "photons": theta[:, o + 2],
        "bg": theta[:, bg],
        "sigma_x_nm": sd[:, o] * pixel_size_nm,
        "sigma_y_nm": sd[:, o + 1] * pixel_size_nm,
        "sigma_photons": sd[:, o + 2],
    }


def gather_boxes(
    img: torch.Tensor, rows: np.ndarray, r0: np.ndarray, c0: np.ndarray, box: int
) -> torch.Tensor:
    """The ``box`` x ``box`` patches (K, box, box) of ``img`` (B, H, W) at frame ``rows``, top-left pixels
    ``r0``, ``c0`` (K,), in one indexing operation."""
    offs = torch.arange(box)
    rr = torch.from_numpy(np.asarray(r0))[:, None] + offs
    cc = torch.from_numpy(np.asarray(c0))[:, None] + offs
    return img[torch.from_numpy(np.asarray(rows))[:, None, None], rr[:, :, None], cc[:, None, :]]
