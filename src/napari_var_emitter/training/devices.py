"""Device choice: ``auto`` picks CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from ..errors import ParameterError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto" | "cpu" | "cuda[:i]" | "mps"`` -> an available :class:`torch.device`."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device '{name}': CUDA is not available on this machine (use 'cpu' or 'auto')")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError("device 'mps': Apple MPS is not available on this machine (use 'cpu' or 'auto')")
    if name != "cpu" and not name.startswith(("cuda", "mps")):
        raise ParameterError(f"device '{name}': must be auto, cpu, cuda or mps")
    return torch.device(name)
