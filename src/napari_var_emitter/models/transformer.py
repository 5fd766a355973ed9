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

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        return self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)

    def _out(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = x + self.proj(a.transpose(1, 2).reshape(x.shape))
        return x + self.mlp(self.norm2(x))

    def forward(self, x: torch.Tensor, sizes: list[int] | tuple[int, ...]) -> torch.Tensor:
        q, k, v = self._qkv(x)
        return self._out(x, block_causal_attention(q, k, v, sizes))

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> torch.Tensor:
        """The tokens ``x`` (B, n, D) of the next scale, which attend to themselves and to the keys and values
        of the earlier scales in ``cache`` ([keys, values], empty before the first scale; extended here)."""
        q, k, v = self._qkv(x)
        if cache:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        cache[:] = [k, v]
        return self._out(x, F.scaled_dot_product_attention(q, k, v))


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

    def new_cache(self) -> list[list[torch.Tensor]]:
        """An empty key-value cache for :meth:`step`."""
        return [[] for _ in self.blocks]

    def step(self, x: torch.Tensor, cache: list[list[torch.Tensor]]) -> torch.Tensor:
        """The output for the next scale's tokens ``x`` (B, n, D) given the earlier scales' keys and values in
        ``cache`` (:meth:`new_cache`; extended here): what :meth:`forward` gives for those tokens on the whole
        sequence, without computing the earlier scales again (block-causal: their outputs do not depend on
        later scales), as VAR's inference does."""
        for blk, kv in zip(self.blocks, cache, strict=True):
            x = blk.step(x, kv)
        return self.norm(x)
