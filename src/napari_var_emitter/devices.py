"""Device choice (``auto``: CUDA, then Apple MPS, then CPU) and CPU settings shared by training and
inference (denormals, the allocator)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import threading
from collections.abc import Iterator

import torch

from .errors import ParameterError


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices() -> list[str]:
    """The device names this machine can run on, ``"auto"`` first (what the widgets offer)."""
    return (
        ["auto", "cpu"]
        + (["cuda"] if torch.cuda.is_available() else [])
        + (["mps"] if _mps_available() else [])
    )


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto" | "cpu" | "cuda[:i]" | "mps"`` -> an available :class:`torch.device`."""
    name = str(name)
    mps = _mps_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError(f"device '{name}': CUDA is not available on this machine (use 'cpu' or 'auto')")
    if name == "mps" and not mps:
        raise ParameterError("device 'mps': Apple MPS is not available on this machine (use 'cpu' or 'auto')")
    if name != "cpu" and not name.startswith(("cuda", "mps")):
        raise ParameterError(f"device '{name}': must be auto, cpu, cuda or mps")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ParameterError(f"device '{name}': {exc}") from None


_flush = threading.local()


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Treat denormal floats as zero on this thread's CPU for the block, then restore the default.

    Adam's second-moment estimates and small activations decay into the denormal range, where x86 CPUs
    are ~100x slower; measured here, an AdamW step of a 75k-parameter model took 0.8 s instead of ~1 ms. The
    setting is per thread (the x86 MXCSR register), so it is made where the work runs (a GUI worker thread
    included) and never left on for the caller: other numerical code (scipy, numpy) keeps IEEE behaviour.
    Blocks nest.
    """
    depth = getattr(_flush, "depth", 0)
    if depth == 0:
        torch.set_flush_denormal(True)
    _flush.depth = depth + 1
    try:
        yield
    finally:
        _flush.depth = depth
        if depth == 0:
            torch.set_flush_denormal(False)


def flushing_denormals() -> bool:
    """Whether this thread is inside a :func:`denormals_flushed` block (a worker thread that does part of
    this thread's work sets the same mode: see :mod:`.inference.pipeline`)."""
    return getattr(_flush, "depth", 0) > 0


_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the system; once per
    process; ``True`` where it took effect (Linux with glibc), ``False`` elsewhere (nothing changed).

    Called by a CPU ``Predictor`` and a CPU ``Trainer``. A CPU forward pass frees and re-allocates tensors
    of tens of MiB per batch. With glibc's defaults such blocks are mapped afresh and the heap top is
    trimmed, so every batch pays the page faults of zeroing them again. Measured here: ``var-emitter
    predict`` on a 1,000-frame movie ran at 87-91 frames/s with the defaults and 106-109 with these settings
    (3 runs each; docs/benchmarks/speed_notes.md); a training step of configs/default_cpu.json took 0.218
    instead of 0.235 s (benchmarks/bench_training_step.py, 2 runs each). The settings are those of the
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_`` environment variables:
    blocks under 32 MiB come from the heap, and up to 256 MiB of free heap is kept. Peak memory is
    unchanged; the process just does not shrink between batches. Nothing is changed when a ``MALLOC_*``
    variable is set (the user's choice stands).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 256 << 20), (_M_TOP_PAD, 64 << 20))
    return all(libc.mallopt(p, v) == 1 for p, v in settings)
