"""``EmitterModel``: the interface every emitter predictor implements (see docs/developer.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ParameterError
from . import layout as L


class EmitterModel(nn.Module):
    """Base class: input normalisation, padding to the model's stride, complexity accounting.

    Subclasses set ``scales`` and implement ``forward(x, teacher=None, teacher_prob=1.0, return_aux=False)``
    returning one (B, C, H * f, W * f) tensor per scale (and an aux dict when ``return_aux``).
    """

    scales: tuple[int, ...] = (1,)
    pad_multiple: int = 1

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.n_frames = int(config.n_frames)
        self.n_channels = L.N_CHANNELS_SIGMA if config.sigma_channels else L.N_CHANNELS_BASIC
        self.tile_size: int | None = None
        self.margin: int = 0

    @property
    def localize_scale(self) -> int:
        """The output scale localizations are read from by default: the one the checkpoint names
        (``config.localize_scale``), else camera resolution."""
        named = getattr(self.config, "localize_scale", None)
        return int(named) if named is not None else min(self.scales)

    def prepare_input(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Normalise photons and zero-pad (in normalised units) at the bottom/right to ``pad_multiple``."""
        if x.ndim != 4 or x.shape[1] != self.n_frames:
            raise ParameterError(
                f"model input: expected (B, {self.n_frames}, H, W) photons, got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        x = (x.float() - self.config.input_offset) / self.config.input_scale
        m = self.pad_multiple
        if h % m or w % m:
            x = F.pad(x, (0, -w % m, 0, -h % m))
        return x, (h, w)

    def complexity(self, h: int = 64, w: int = 64) -> dict:
        """Parameters and multiply-accumulates per input pixel of one eval forward on an (h, w) frame."""
        x = torch.full((1, self.n_frames, h, w), float(self.config.input_offset))
        return {"params": n_params(self), "macs_per_pixel": count_macs(self, x) / (h * w)}


def _register_cpu_attention_flops() -> None:
    """FlopCounterMode has no formula for the CPU flash-attention kernel; count it like any SDPA."""
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    registry = getattr(flop_counter, "_FLOP_REGISTRY", {})
    if op is None or op.default in registry or op in registry:
        return

    @flop_counter.register_flop_formula(op)
    def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


_register_cpu_attention_flops()


def n_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def count_macs(model: nn.Module, x: torch.Tensor) -> float:
    """MACs (FLOPs / 2 of conv, linear, matmul and attention) of ``model(x)`` in eval mode, no grad."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was)
    return counter.get_total_flops() / 2
