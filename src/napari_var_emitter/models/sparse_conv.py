"""Two valid 3x3 convolutions evaluated only at chosen pixels, as matrix products (im2col).

A patch head (:class:`..var.PatchHead`) reduces the 5x5 patch around a pixel with two valid 3x3 convs: the
first at the 3x3 pixels around it, the second at the pixel itself. Run per patch, neighbouring candidates
compute their shared first-conv pixels again (up to 9 times); run over the whole frame, every pixel is
computed although a few per cent are asked about. :func:`two_conv_at_pixels` computes the first conv once at
each pixel any candidate needs, for several heads in one product, then the second conv at the candidates
only: the same numbers up to float rounding, cheaper than both below about 40 % of the pixels (the
measurements are in docs/benchmarks/speed_notes.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_TAPS = 3


def _conv_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """(cout, cin, 3, 3) weight -> (9 * cin, cout), rows in the order (tap row, tap column, channel)."""
    return conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.out_channels)


def _tap_offsets(width: int, device: torch.device) -> torch.Tensor:
    """Flat offsets of the 3x3 taps in a row-major (..., width) pixel grid."""
    o = torch.arange(_TAPS, device=device)
    return (o[:, None] * width + o[None, :]).flatten()


CHUNK = 2048
"""Candidates per round of products: keeps every intermediate under ~15 MB. Larger temporaries (past glibc's
32 MB mmap threshold) are fresh pages on every call, which on a virtual machine cost several times the
arithmetic (docs/benchmarks/speed_notes.md)."""


def two_conv_at_pixels(
    convs: Sequence[tuple[nn.Conv2d, nn.Conv2d]],
    grid: torch.Tensor,
    bi: torch.Tensor,
    ri: torch.Tensor,
    ci: torch.Tensor,
) -> list[torch.Tensor]:
    """``relu(conv2(relu(conv1(patch))))`` of the 5x5 patch ``grid[bi, :, ri : ri + 5, ci : ci + 5]`` for each
    (conv1, conv2) pair of valid 3x3 convs reading the same ``grid`` (B, C, H + 4, W + 4); (K, conv2 channels)
    per pair. Candidates are taken :data:`CHUNK` at a time (in the order given; neighbours in one chunk share
    their first-conv pixels)."""
    b, c, hg, wg = grid.shape
    rows = grid.permute(0, 2, 3, 1).reshape(-1, c)  # one row per pixel (a view when channels-last)
    w1 = torch.cat([_conv_matrix(c1) for c1, _ in convs], 1)
    b1 = torch.cat([c1.bias for c1, _ in convs])
    second = [(_conv_matrix(c2), c2.bias) for _, c2 in convs]
    parts = [
        _chunk(rows, (b, hg, wg), w1, b1, second, bi[s : s + CHUNK], ri[s : s + CHUNK], ci[s : s + CHUNK])
        for s in range(0, max(len(bi), 1), CHUNK)
    ]
    return [torch.cat(p) for p in zip(*parts, strict=True)]


def _chunk(rows, shape, w1, b1, second, bi, ri, ci) -> list[torch.Tensor]:
    """:func:`two_conv_at_pixels` for one chunk: ``rows`` (B * Hg * Wg, C) the grid's pixels, ``w1``/``b1``
    every head's first conv side by side, ``second`` each head's second conv (matrix, bias)."""
    _, hg, wg = shape
    h1, wd = hg - 2, wg - 2  # the first conv's output grid
    dev = rows.device
    o = torch.arange(_TAPS, device=dev)
    first_frame = int(bi.min()) if len(bi) else 0
    b = int(bi.max()) + 1 - first_frame if len(bi) else 0  # the frames this chunk's candidates lie in
    bi = bi - first_frame
    need = torch.zeros(b, h1, wd, dtype=torch.bool, device=dev)
    need[bi[:, None, None], (ri[:, None] + o)[:, :, None], (ci[:, None] + o)[:, None, :]] = True
    bd, yd, xd = need.nonzero(as_tuple=True)
    rows = rows[first_frame * hg * wg : (first_frame + b) * hg * wg]
    cols = rows.index_select(0, (((bd * hg + yd) * wg + xd)[:, None] + _tap_offsets(wg, dev)).flatten())
    first = torch.addmm(b1, cols.view(len(bd), w1.shape[0]), w1).relu_()  # (pixels needed, all channels)
    row_of = torch.full((b * h1 * wd,), -1, dtype=torch.long, device=dev)
    row_of[(bd * h1 + yd) * wd + xd] = torch.arange(len(bd), device=dev)
    around = row_of[((bi * h1 + ri) * wd + ci)[:, None] + _tap_offsets(wd, dev)]  # (K, 9) rows of `first`
    taps = first.index_select(0, around.flatten()).view(len(bi), _TAPS * _TAPS, w1.shape[1])
    out, start = [], 0
    for w2, b2 in second:
        width = w2.shape[0] // (_TAPS * _TAPS)  # this head's first-conv channels
        mine = taps[:, :, start : start + width].reshape(len(bi), w2.shape[0])
        out.append(torch.addmm(b2, mine, w2).relu_())
        start += width
    return out
