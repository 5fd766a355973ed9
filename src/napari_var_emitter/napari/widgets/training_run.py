"""The training run: the job run in a worker thread, and the trainer callbacks that carry its progress to the
main thread (a queued Qt signal)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal

STEP_EMIT_INTERVAL_S = 0.1


class Bridge(QObject):
    """Carries trainer callbacks from the training thread to the main thread (queued signal)."""

    update = Signal(object)


class TrainerCallbacks:
    """Trainer callbacks that forward steps (throttled) and validations as dicts through a :class:`Bridge`."""

    def __init__(self, bridge: Bridge):
        self._bridge = bridge
        self._last = 0.0

    def on_train_start(self, state: Any) -> None:
        self._bridge.update.emit({"kind": "start", **state_dict(state)})

    def on_step(self, state: Any) -> None:
        now = time.perf_counter()
        info = state_dict(state)
        if now - self._last >= STEP_EMIT_INTERVAL_S or info["step"] >= info["total_steps"]:
            self._last = now
            self._bridge.update.emit({"kind": "step", **info})

    def on_validation(self, state: Any, metrics: dict[str, Any]) -> None:
        values = {k: float(v) for k, v in dict(metrics).items() if isinstance(v, (int, float, np.number))}
        self._bridge.update.emit({"kind": "validation", **state_dict(state), "metrics": values})

    def on_checkpoint(self, state: Any, path: Any) -> None:
        self._bridge.update.emit({"kind": "checkpoint", **state_dict(state), "path": str(path)})


def state_dict(state: Any) -> dict[str, Any]:
    """Step, epoch, total steps, loss and learning rate of a trainer state (object or dict)."""
    get = (lambda k: state.get(k)) if isinstance(state, dict) else (lambda k: getattr(state, k, None))
    loss = get("loss")
    return {
        "step": int(get("step") or 0),
        "epoch": int(get("epoch") or 0),
        "total_steps": int(get("total_steps") or 0),
        "loss": None if loss is None else float(loss),
        "lr": get("lr"),
    }


def train_job(
    config: Any,
    out_dir: Path,
    callbacks: TrainerCallbacks,
    stop: threading.Event,
    resume: Path | None,
    device: str,
    done: threading.Event,
):
    """Run ``training.train`` (in the worker thread); ``done`` is set when it has ended, however it ended."""
    import torch

    from ...training import train

    try:
        with torch.enable_grad():  # pooled threads may carry another job's thread-local grad mode
            return train(
                config,
                out_dir,
                callbacks=(callbacks,),
                stop_event=stop,
                resume=resume,
                device=device,
                progress=False,
            )
    finally:
        done.set()
