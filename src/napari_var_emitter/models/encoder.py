"""Small convolutional encoder of the 1 or 3 input frames: features at strides 1, 2, 4, ..."""

from __future__ import annotations

import torch
from torch import nn


def conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ConvEncoder(nn.Module):
    """Level 0 at stride 1 (two 3x3 convs); each further level halves the resolution (a strided 3x3 conv,
    then a residual 3x3 conv). ``forward`` returns one map per level (B, channels[i], H/2^i, W/2^i)."""

    def __init__(self, in_ch: int, channels: tuple[int, ...]):
        super().__init__()
        self.channels = tuple(channels)
        self.stem = nn.Sequential(
            conv3(in_ch, channels[0]), nn.ReLU(), conv3(channels[0], channels[0]), nn.ReLU()
        )
        self.down = nn.ModuleList(conv3(a, b, stride=2) for a, b in zip(channels, channels[1:], strict=False))
        self.res = nn.ModuleList(conv3(c, c) for c in channels[1:])
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for down, res in zip(self.down, self.res, strict=True):
            h = self.act(down(feats[-1]))
            feats.append(self.act(h + res(h)))
        return feats
