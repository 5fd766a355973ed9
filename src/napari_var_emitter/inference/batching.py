"""Batch sizes for inference: an automatic one from free memory, and the check of a user's choice.

Device choice lives in ``napari_var_emitter.devices``."""

from __future__ import annotations

import psutil
import torch

from ..errors import ParameterError

__all__ = ["free_memory_bytes", "auto_batch_size", "check_batch_size"]

#: activations held per output value during a forward pass (a deliberately generous rule of thumb)
_ACTIVATION_FACTOR = 8
_MAX_BATCH = 256


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (CUDA: driver's free memory; CPU/MPS: available system memory)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def auto_batch_size(
    model: torch.nn.Module, frame_shape: tuple[int, int], device: torch.device, budget_fraction: float = 0.25
) -> int:
    """Frames per batch so that model outputs and activations use at most ``budget_fraction`` of free memory.

    Estimate per frame: ``n_channels * H * W * sum(f^2 over scales) * 4 bytes * _ACTIVATION_FACTOR``;
    capped at 1 GiB of budget on the CPU (bounded memory for long stacks) and at 256 frames.
    """
    h, w = frame_shape
    scales = getattr(model, "scales", (1,))
    n_ch = getattr(model, "n_channels", 10)
    per_frame = n_ch * h * w * sum(f * f for f in scales) * 4 * _ACTIVATION_FACTOR
    budget = free_memory_bytes(device) * budget_fraction
    if device.type != "cuda":
        budget = min(budget, 1 << 30)
    return int(max(1, min(_MAX_BATCH, budget // max(per_frame, 1))))


def check_batch_size(batch_size: int | None) -> int | None:
    """A user's batch size as an int (None stays None: automatic); ParameterError below 1."""
    if batch_size is not None and int(batch_size) < 1:
        raise ParameterError(f"batch size must be >= 1, got {batch_size}")
    return None if batch_size is None else int(batch_size)
