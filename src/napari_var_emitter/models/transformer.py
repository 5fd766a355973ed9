"""Pre-norm transformer over concatenated multi-scale token maps with a block-causal mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def block_causal_mask(sizes: list[int] | tuple[int, ...], device=None) -> torch.Tensor:
    """(N, N) bool mask, True where attention is allowed: tokens of scale k see the tokens of scales <= k."""
    block = torch.repeat_interleave(
        torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device)
    )
    return block[:, None] >= block[None, :]


def block_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sizes) -> torch.Tensor:
    """Attention under :func:`block_causal_mask` without a mask: the queries of scale k attend to the keys of
    scales <= k, a prefix of the sequence, so each block is one unmasked call (the fast kernels; exact)."""
    outs, start = [], 0
    for size in sizes:
        end = start + int(size)
        outs.append(F.scaled_dot_product_attention(q[:, :, start:end], k[:, :, :end], v[:, :, :end]))
        start = end
    return outs[0] if len(outs) == 1 else torch.cat(outs, 2)


class Block(nn.Module):
    def __init__(self, dim: int, n_heads: int, mlp_ratio: float):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = max(int(dim * mlp_ratio), 4)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, sizes: list[int] | tuple[int, ...]) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (
            self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        )
        a = block_causal_attention(q, k, v, sizes)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class ScaleTransformer(nn.Module):
    """Stack of blocks; ``forward(tokens (B, N, D), sizes)`` applies the block-causal mask for ``sizes``."""

    def __init__(self, dim: int, depth: int, n_heads: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, n_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        if sum(sizes) != x.shape[1]:
            raise ValueError(f"token counts {list(sizes)} do not add up to the sequence length {x.shape[1]}")
        for blk in self.blocks:
            x = blk(x, sizes)
        return self.norm(x)
