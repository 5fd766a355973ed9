"""Optional vector quantizer of the coarse tokens (straight-through, commitment loss, codebook usage)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VectorQuantizer(nn.Module):
    """Nearest-codeword quantisation of (..., D) vectors.

    ``forward`` returns (quantised with straight-through gradients, stats) where stats holds ``commit``
    (codebook + beta * commitment MSE), ``perplexity`` (exp entropy of code usage in the batch) and ``usage``
    (fraction of codewords used).
    """

    def __init__(self, dim: int, size: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.codebook = nn.Embedding(size, dim)
        nn.init.uniform_(self.codebook.weight, -1.0 / size, 1.0 / size)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        flat = z.reshape(-1, z.shape[-1])
        w = self.codebook.weight
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ w.t() + w.pow(2).sum(1)[None]
        idx = dist.argmin(1)
        q = self.codebook(idx).view_as(z)
        commit = F.mse_loss(q, z.detach()) + self.beta * F.mse_loss(z, q.detach())
        counts = torch.bincount(idx, minlength=w.shape[0]).float()
        p = counts / counts.sum().clamp(min=1)
        perplexity = torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum())
        usage = (counts > 0).float().mean()
        return z + (q - z).detach(), {"commit": commit, "perplexity": perplexity, "usage": usage}
