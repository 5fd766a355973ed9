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
#: input pixels per forward pass on the CPU: larger batches ran slower (64x64 frames, 1 thread: 8-32 frames
#: per pass ~200 frames/s, 64 frames ~150), since the activations no longer fit the caches
_CPU_MAX_PIXELS = 1 << 17


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (CUDA: driver's free memory; CPU/MPS: available system memory)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def auto_batch_size(
    model: torch.nn.Module,
    frame_shape: tuple[int, int],
    device: torch.device,
    budget_fraction: float = 0.25,
    scales: tuple[int, ...] | list[int] | None = None,
) -> int:
    """Frames per batch so that model outputs and activations use at most ``budget_fraction`` of free memory.

    ``scales``: the output scales the forward pass computes (default: all of the model's); a run that needs
    only the 1x output budgets for 1x only. Estimate per frame: ``n_channels * H * W * sum(f^2 over scales)
    * 4 bytes * _ACTIVATION_FACTOR``; capped at 1 GiB of budget and ``_CPU_MAX_PIXELS`` input pixels per
    batch on the CPU (bounded memory for long stacks; speed), and at 256 frames.
    """
    h, w = frame_shape
    scales = tuple(getattr(model, "scales", (1,)) if scales is None else scales)
    n_ch = getattr(model, "n_channels", 10)
    per_frame = n_ch * h * w * sum(f * f for f in scales) * 4 * _ACTIVATION_FACTOR
    budget = free_memory_bytes(device) * budget_fraction
    n = budget // max(per_frame, 1)
    if device.type != "cuda":
        n = min(n, (1 << 30) // max(per_frame, 1), _CPU_MAX_PIXELS // max(h * w, 1))
    return int(max(1, min(_MAX_BATCH, n)))


def check_batch_size(batch_size: int | None) -> int | None:
    """A user's batch size as an int (None stays None: automatic); ParameterError below 1."""
    if batch_size is not None and int(batch_size) < 1:
        raise ParameterError(f"batch size must be >= 1, got {batch_size}")
    return None if batch_size is None else int(batch_size)
