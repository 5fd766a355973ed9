"""A two-stage pipeline for the predictor: one worker thread post-processes a batch while the caller's thread
runs the forward pass of the next.

:class:`StageWorker` holds one ``concurrent.futures.ThreadPoolExecutor(max_workers=1)`` and at most one
pending job: the caller submits batch k's post-processing, runs batch k+1's forward pass, then takes batch k's
result before it submits batch k+1's. Jobs therefore run one at a time and in order (state that one batch
leaves for the next, such as the predictor's PSF check, stays sequential), and at most two batches of
network outputs are alive: the one being post-processed and the one being computed.

Per-thread state does not follow a job into the worker: ``torch.inference_mode`` and ``torch.autocast`` are
entered by the job itself where it needs them; the denormal mode (:func:`..devices.denormals_flushed`) is
set for each job to the submitting thread's (IEEE floats unless the caller is inside a flushed block), so a
job computes what it would have computed in the caller's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import torch

from ..devices import flushing_denormals

R = TypeVar("R")


def _run_job(flush: bool, fn: Callable[..., R], args: tuple) -> R:
    torch.set_flush_denormal(flush)  # this worker's own x86 MXCSR: the submitting thread's setting
    return fn(*args)


class StageWorker:
    """One background thread that runs one job at a time: :meth:`submit`, then :meth:`take` its result.

    :meth:`take` re-raises a job's exception as is (same object and type). :meth:`close` must be called
    (``try``/``finally``): it drops a pending job (waiting for it when it already runs, since a thread
    cannot be interrupted; its result or exception is discarded) and joins the thread.
    """

    def __init__(self, name: str = "var-emitter-post") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: Future | None = None

    @property
    def busy(self) -> bool:
        """Whether a job was submitted and its result not yet taken."""
        return self._pending is not None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start ``fn(*args)`` in the worker; the previous job's result must have been taken."""
        if self._pending is not None:
            raise RuntimeError("StageWorker runs one job at a time: take() the pending result first")
        self._pending = self._pool.submit(_run_job, flushing_denormals(), fn, args)

    def take(self) -> Any:
        """The pending job's result (waits for it); its exception is raised here."""
        if self._pending is None:
            raise RuntimeError("StageWorker.take(): no job was submitted")
        future, self._pending = self._pending, None
        return future.result()

    def close(self) -> bool:
        """Drop the pending job, if any, and stop the thread; ``True`` when a job was dropped."""
        dropped = self._pending is not None
        self._pending = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        return dropped
