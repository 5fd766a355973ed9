"""The inference run: the job that streams batches in a worker thread, and what a run has found so far."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...io.tables import add_uncertainty


def inference_job(
    predictor_kwargs: dict[str, Any],
    stack: Any,
    frames: range,
    n_map_frames: int,
    scales: tuple[int, ...],
    cancel: threading.Event,
):
    """Worker generator yielding ``("meta", dict)``, then ``("batch", BatchResult)`` per batch, then
    ``("meta", dict)`` again as the run found it (its hot pixels, the PSF check's decision).

    Maps are requested only for the batches that hold the first ``n_map_frames`` frames of ``frames`` (one
    predictor run, so every frame has the PSF fit's support of the frames around it). The predictor's
    data-mismatch warnings (``warnings.warn``) reach the user through the worker's ``warned`` signal.
    """
    from ...inference import Predictor

    predictor = Predictor(**predictor_kwargs)
    shape = tuple(int(s) for s in stack.data.shape[-2:])
    yield "meta", predictor.table_metadata(stack.pixel_size_nm, shape, len(frames))
    batches = predictor.iter_batches(
        stack, frames=frames, scales=scales, cancel=cancel, map_frames=n_map_frames
    )
    try:
        # on cancel the predictor stops by itself, after the frame it held back for the next batch
        for batch in batches:
            yield "batch", batch
    finally:
        # close here, in the worker thread: the predictor's torch.inference_mode is thread-local state
        batches.close()
    yield "meta", predictor.table_metadata(stack.pixel_size_nm, shape, len(frames))


@dataclass
class RunState:
    """What one run has found so far: the table in parts, the maps, counts and timing."""

    source: str
    pixel_size_nm: float
    frames: range
    n_map_frames: int
    cancel: threading.Event = field(default_factory=threading.Event)
    tables: list[pd.DataFrame] = field(default_factory=list)
    maps: dict[int, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    n_locs: int = 0
    done_frames: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def add(self, table: pd.DataFrame, n_frames: int) -> None:
        if len(table):
            self.tables.append(table)
            self.n_locs += len(table)
        self.done_frames += n_frames

    def table(self) -> pd.DataFrame:
        """All localizations so far, with ``uncertainty_nm`` where the model predicts sigmas."""
        if len(self.tables) > 1:
            self.tables = [pd.concat(self.tables, ignore_index=True)]
        return add_uncertainty(self.tables[0]) if self.tables else pd.DataFrame()

    def summary(self, running: bool) -> str:
        seconds = time.perf_counter() - self.t0
        rate = self.done_frames / seconds if seconds > 0 else 0.0
        state = "running" if running else ("cancelled" if self.cancel.is_set() else "done")
        return (
            f"{self.n_locs:,} localizations in {self.done_frames:,} of {len(self.frames):,} frames, "
            f"{seconds:.1f} s ({rate:.1f} frames/s), {state}."
        )
