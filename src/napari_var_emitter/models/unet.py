"""DECODE-like U-Net baseline in the same framework (camera resolution only, scales = (1,))."""

from __future__ import annotations

from torch import nn

from .base import EmitterModel
from .config import UNetConfig
from .encoder import conv3
from .heads import PRIOR, activate, init_p_bias
from .upconv import up_cat_block


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv3(cin, cout), nn.ReLU(), conv3(cout, cout), nn.ReLU())


class UNetPredictor(EmitterModel):
    """U-Net over the 1 or 3 frames: strided-conv downsampling, nearest upsampling with skip concatenation,
    a 1x1 output conv to the 6 or 10 layout channels. Fully convolutional (``tile_size`` None)."""

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        ch = config.channels
        self.scales = (1,)
        self.pad_multiple = 2 ** (len(ch) - 1)
        self.margin = 2 * self.pad_multiple
        self.inc = double_conv(config.n_frames, ch[0])
        self.downs = nn.ModuleList(
            nn.Sequential(conv3(a, b, stride=2), nn.ReLU(), conv3(b, b), nn.ReLU())
            for a, b in zip(ch, ch[1:], strict=False)
        )
        self.ups = nn.ModuleList(double_conv(b + a, a) for a, b in zip(ch, ch[1:], strict=False))
        self.out = nn.Conv2d(ch[0], self.n_channels, 1)
        init_p_bias(self.out, PRIOR)

    def forward(self, x, teacher=None, teacher_prob: float = 1.0, return_aux: bool = False, max_scale=None):
        xn, (h, w) = self.prepare_input(x)
        skips = [self.inc(xn)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in reversed(self.ups):
            skip = skips.pop()
            y = up_cat_block(up, y, skip, self.training)
        outputs = [activate(self.out(y))[..., :h, :w]]
        return (outputs, {}) if return_aux else outputs
