"""Training callbacks: the protocol, the state they see, and the built-in ones (early stopping, TensorBoard,
progress bar).

A callback is any object with some of ``on_train_start(state)``, ``on_step(state)``,
``on_validation(state, metrics)``, ``on_checkpoint(state, path)``, ``on_train_end(state)``; missing methods
are skipped. Setting ``state.should_stop = True`` from a callback ends training after the current batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HIGHER_IS_BETTER = {
    "jaccard": True,
    "efficiency_lat": True,
    "f1": True,
    "val_loss": False,
    "train_loss": False,
}


@dataclass
class TrainState:
    """What callbacks see. ``step`` counts batches done so far (all epochs); ``epoch`` is 0-based."""

    total_steps: int
    steps_per_epoch: int
    out_dir: Path | None = None
    step: int = 0
    epoch: int = 0
    loss: float = math.nan
    components: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    grad_norm: float = math.nan
    teacher_prob: float = 1.0
    skipped_steps: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  #: the last validation's metrics
    history: list[dict[str, Any]] = field(default_factory=list)  #: one dict per epoch
    best_metric: float | None = None
    best_epoch: int | None = None
    should_stop: bool = False
    stop_reason: str = ""


def is_better(value: float, best: float | None, monitor: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` of ``monitor`` improves on ``best`` by more than ``min_delta`` (NaN never does)."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best + min_delta if HIGHER_IS_BETTER.get(monitor, True) else value < best - min_delta


class Callback:
    """Base class with no-op hooks (subclassing is optional: duck typing is enough)."""

    def on_train_start(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_validation(self, state: TrainState, metrics: dict[str, float]) -> None: ...
    def on_checkpoint(self, state: TrainState, path: Path) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


class CallbackList:
    """Calls a hook on every callback that has it."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def __call__(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` validations."""

    def __init__(self, patience: int = 10, monitor: str = "jaccard", min_delta: float = 0.0):
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta
        self.best: float | None = None
        self.bad = 0

    def on_validation(self, state: TrainState, metrics: dict[str, float]) -> None:
        value = metrics.get(self.monitor, math.nan)
        if is_better(value, self.best, self.monitor, self.min_delta):
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            state.should_stop = True
            state.stop_reason = (
                f"early stopping: {self.monitor} did not improve for {self.patience} validations"
            )

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.bad = d.get("best"), int(d.get("bad", 0))


class TensorBoardLogger(Callback):
    """Scalars to ``log_dir``: losses, lr, grad norm every ``log_every`` steps; validation metrics."""

    VAL_KEYS = ("val_loss", "precision", "recall", "f1", "jaccard", "rmse_lat", "rmse_ax", "efficiency_lat")

    def __init__(self, log_dir: str | Path, log_every: int = 20):
        self.log_dir, self.log_every = Path(log_dir), log_every
        self.writer = None  # made when training starts: a run failing before (bad --resume) creates no folder

    def on_train_start(self, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir))

    def on_step(self, state: TrainState) -> None:
        if state.step % self.log_every and state.step != state.total_steps:
            return
        w, s = self.writer, state.step
        w.add_scalar("train/loss", state.loss, s)
        for k, v in state.components.items():
            w.add_scalar(f"train/{k}", v, s)
        w.add_scalar("train/lr", state.lr, s)
        w.add_scalar("train/grad_norm", state.grad_norm, s)
        w.add_scalar("train/teacher_prob", state.teacher_prob, s)

    def on_validation(self, state: TrainState, metrics: dict[str, float]) -> None:
        for k in self.VAL_KEYS:
            if k in metrics and metrics[k] is not None and not math.isnan(metrics[k]):
                self.writer.add_scalar(f"val/{k}", metrics[k], state.step)
        self.writer.flush()

    def on_train_end(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar(Callback):
    """A tqdm bar over all steps with loss, lr and the last validation Jaccard."""

    def __init__(self, update_every: int = 5):
        self.bar = None
        self.update_every = update_every

    def on_train_start(self, state: TrainState) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.total_steps, initial=state.step, unit="step", dynamic_ncols=True)

    def on_step(self, state: TrainState) -> None:
        if self.bar is None or (state.step % self.update_every and state.step != state.total_steps):
            return
        self.bar.n = state.step
        post = {"epoch": state.epoch, "loss": f"{state.loss:.4g}", "lr": f"{state.lr:.2e}"}
        if "jaccard" in state.metrics:
            post["JI"] = f"{state.metrics['jaccard']:.3f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.refresh()

    def on_train_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
