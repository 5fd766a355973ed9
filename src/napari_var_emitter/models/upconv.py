"""The U-Net decoder step ``conv3x3(cat([nearest 2x upsampling of low, skip]))`` without the upsampled map.

A 3x3 convolution (padding 1) of a nearest-neighbour 2x upsampling sees, at each of the four output phases
(row and column even or odd), only a 2x2 window of the low-resolution map, with the 3x3 taps summed in
pairs: rows ``(i - 1, i)`` with taps ``(w0, w1 + w2)`` at even output rows and ``(i, i + 1)`` with
``(w0 + w1, w2)`` at odd ones, likewise for columns. :func:`up_cat_conv` runs one 2x2 convolution of the
low map with the four phases' kernels stacked as output channels, adds each phase into its pixels of the
skip branch's 3x3 convolution, and so does 4/9 of the upsampled branch's multiply-adds, with no upsampled
or concatenated copy. Same numbers as the plain form up to float rounding (tests/test_models_var.py).
:func:`up_cat_block` is the decoder level both U-Net decoders (VAR 1x, baseline U-Net) run: the plain form
in training, :func:`up_cat_conv` at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def _fold(k: torch.Tensor, phase: int) -> torch.Tensor:
    """3 taps on the last axis -> the 2 taps one output phase of a 2x nearest upsampling sees."""
    if phase == 0:
        return torch.stack([k[..., 0], k[..., 1] + k[..., 2]], -1)
    return torch.stack([k[..., 0] + k[..., 1], k[..., 2]], -1)


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """(cout, cin, 3, 3) -> (4 * cout, cin, 2, 2): the 2x2 kernels of the phases (0, 0), (0, 1), (1, 0),
    (1, 1) (row, column) of a 3x3 convolution applied after a 2x nearest upsampling."""
    kernels = []
    for a, b in _PHASES:
        rows = _fold(weight.transpose(-1, -2), a).transpose(-1, -2)  # (cout, cin, 2, 3)
        kernels.append(_fold(rows, b))
    return torch.cat(kernels, 0)


def up_cat_conv(conv: nn.Conv2d, low: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``conv(cat([upsample(low, 2, nearest), skip], 1))`` for a 3x3, padding-1 ``conv`` whose input channels
    are ``low``'s then ``skip``'s; ``skip`` (B, cs, 2h, 2w), ``low`` (B, cl, h, w)."""
    b, cl, h, w = low.shape
    if skip.shape[-2:] != (2 * h, 2 * w):
        raise ValueError(f"skip {tuple(skip.shape[-2:])} is not twice low {(h, w)}")
    weight = conv.weight
    out = F.conv2d(skip, weight[:, cl:], conv.bias, padding=1)
    cout = out.shape[1]
    phases = F.conv2d(low, phase_kernels(weight[:, :cl]), padding=1)  # (B, 4 cout, h + 1, w + 1)
    if out.is_contiguous():
        view = out.view(b, cout, h, 2, w, 2)
        for k, (a, c) in enumerate(_PHASES):
            view[:, :, :, a, :, c] += phases[:, k * cout : (k + 1) * cout, a : a + h, c : c + w]
    else:  # channels-last
        view = out.permute(0, 2, 3, 1).view(b, h, 2, w, 2, cout)
        ph = phases.permute(0, 2, 3, 1)
        for k, (a, c) in enumerate(_PHASES):
            view[:, :, a, :, c] += ph[:, a : a + h, c : c + w, k * cout : (k + 1) * cout]
    return out


def up_cat_block(block: nn.Sequential, low: torch.Tensor, skip: torch.Tensor, training: bool) -> torch.Tensor:
    """One decoder level: ``block`` (a 3x3, padding-1 conv first) on [``low`` upsampled 2x, ``skip``]; in
    training as written, at inference without the upsampled copy (:func:`up_cat_conv`)."""
    if training:
        return block(torch.cat([F.interpolate(low, scale_factor=2, mode="nearest"), skip], 1))
    return block[1:](up_cat_conv(block[0], low, skip))
