"""The pixel-integrated Gaussian spot that the PSF fit (:mod:`.refine`) and the two-emitter test
(:mod:`.two_emitters`) fit, ``mu = bg + N * Ex(x, s) * Ey(y, s)`` over a ``box`` x ``box`` patch (pixel
centres at integers): its Jacobian, the Fisher information under the camera's pixel variance, Cramer-Rao
standard deviations, and the boxes of camera pixels they are fitted to."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..camera import CameraConfig, pixel_variance

_SQRT2 = math.sqrt(2.0)
N_PARAMS = 5  # x, y, photons, bg, sigma


def profile(k: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pixel integrals of a unit 1-D Gaussian (centre ``c``, width ``s``) over pixels ``k`` (centres at
    integers), with the scaled pixel edges ``a``, ``b``. Shapes: k (1, box), c and s (K, 1) -> (K, box)."""
    a = (k - c + 0.5) / (_SQRT2 * s)
    b = (k - c - 0.5) / (_SQRT2 * s)
    return 0.5 * (torch.erf(a) - torch.erf(b)), a, b


def edge_integral(k: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`profile` and its derivatives by ``c`` and ``s``."""
    e, a, b = profile(k, c, s)
    ga = torch.exp(-a * a) / math.sqrt(math.pi)
    gb = torch.exp(-b * b) / math.sqrt(math.pi)
    de_dc = -(ga - gb) / (_SQRT2 * s)
    de_ds = -(ga * a - gb * b) / s
    return e, de_dc, de_ds


def spot_model(theta: torch.Tensor, box: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``mu`` (K, box*box) of a Gaussian spot (without ``others``) and its Jacobian, parameter-major
    (K, 5, box*box)."""
    k = torch.arange(box, dtype=theta.dtype, device=theta.device)[None, :]
    x, y, n, bg, s = (theta[:, i : i + 1] for i in range(N_PARAMS))
    ex, dex_dx, dex_ds = edge_integral(k, x, s)
    ey, dey_dy, dey_ds = edge_integral(k, y, s)
    kk = theta.shape[0]
    nx = n * ex  # the photons fold into the 1-D factors: products of (K, box) before (K, box, box)
    ny = n * ey
    jac = torch.empty(kk, N_PARAMS, box, box, dtype=theta.dtype, device=theta.device)
    torch.mul(ey[:, :, None], (n * dex_dx)[:, None, :], out=jac[:, 0])
    torch.mul((n * dey_dy)[:, :, None], ex[:, None, :], out=jac[:, 1])
    torch.mul(ey[:, :, None], ex[:, None, :], out=jac[:, 2])
    jac[:, 3] = 1.0
    torch.addcmul(dey_ds[:, :, None] * nx[:, None, :], ny[:, :, None], dex_ds[:, None, :], out=jac[:, 4])
    mu = torch.addcmul(bg[:, :, None], n[:, :, None], jac[:, 2])
    return mu.reshape(kk, box * box), jac.reshape(kk, N_PARAMS, box * box)


def fisher_information(
    jac: torch.Tensor, mu: torch.Tensor, camera: CameraConfig | None
) -> tuple[torch.Tensor, ...]:
    """Fisher information (K, 5, 5) of the Jacobian ``jac`` (K, 5, P) at ``mu`` (K, P), and the weighted
    Jacobian ``jac / var`` (K, 5, P) it was formed with."""
    jw = jac / pixel_variance(mu, camera)[:, None, :]
    return jw @ jac.transpose(1, 2), jw


def covariance(fisher: torch.Tensor) -> torch.Tensor:
    """Inverse of each (positive definite) Fisher matrix by Cholesky; the pseudo-inverse where that fails."""
    chol, info = torch.linalg.cholesky_ex(fisher)
    bad = info != 0
    chol[bad] = torch.eye(fisher.shape[-1], dtype=fisher.dtype)
    cov = torch.cholesky_inverse(chol)
    if bool(bad.any()):
        cov[bad] = torch.linalg.pinv(fisher[bad])
    return cov


def damped_step(
    jac: torch.Tensor, mu: torch.Tensor, d: torch.Tensor, camera: CameraConfig | None, damping: float
) -> torch.Tensor:
    """One damped Fisher-scoring (Levenberg-Marquardt style) step (K, n) for the Jacobian ``jac`` (K, n, P) at
    the model ``mu`` (K, P) of the data ``d`` (K, P); non-finite steps become 0."""
    fisher, jw = fisher_information(jac, mu, camera)
    grad = (jw @ (d - mu)[..., None])[..., 0]
    diag = torch.diagonal(fisher, dim1=-2, dim2=-1).clamp(min=1e-9)
    eye = torch.eye(jac.shape[1], dtype=jac.dtype)
    step = torch.linalg.solve(fisher + damping * eye * diag[:, None, :], grad[..., None])[..., 0]
    return torch.nan_to_num(step)


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
