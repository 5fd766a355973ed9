"""The training widget's live plot (matplotlib canvas): training and validation loss, validation Jaccard
index and lateral RMSE, against the training step."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

SERIES = ("train", "val", "jaccard", "rmse")


class LossPlot(FigureCanvasQTAgg):
    """Training/validation loss (left) and validation Jaccard / lateral RMSE (right)."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4.0, 2.6), tight_layout=True)
        super().__init__(self.figure)
        self.ax_loss = self.figure.add_subplot(1, 2, 1)
        self.ax_jac = self.figure.add_subplot(1, 2, 2)
        self.ax_rmse = self.ax_jac.twinx()
        self.ax_loss.set_title("loss", fontsize=8)
        self.ax_jac.set_title("validation", fontsize=8)
        (self.train_line,) = self.ax_loss.plot([], [], lw=1, label="train")
        (self.val_line,) = self.ax_loss.plot([], [], "o-", ms=3, label="validation")
        (self.jaccard_line,) = self.ax_jac.plot([], [], "o-", ms=3, color="C2", label="Jaccard")
        (self.rmse_line,) = self.ax_rmse.plot([], [], "s--", ms=3, color="C3", label="RMSE (nm)")
        self.ax_loss.set_yscale("log")
        self.ax_jac.set_ylim(0, 1)
        self.ax_loss.legend(fontsize=7)
        self.ax_jac.legend(handles=[self.jaccard_line, self.rmse_line], fontsize=7, loc="lower left")
        for ax in (self.ax_loss, self.ax_jac, self.ax_rmse):
            ax.tick_params(labelsize=7)
        self.ax_loss.set_xlabel("step", fontsize=7)
        self.ax_jac.set_xlabel("step", fontsize=7)
        self.setMinimumHeight(220)
        self.clear()

    def clear(self) -> None:
        self.history: dict[str, list[tuple[int, float]]] = {name: [] for name in SERIES}
        self.redraw()

    def add(self, series: str, step: int, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self.history[series].append((step, float(value)))

    def redraw(self) -> None:
        lines = (self.train_line, self.val_line, self.jaccard_line, self.rmse_line)
        for series, line in zip(SERIES, lines, strict=True):
            xy = np.asarray(self.history[series], dtype=float).reshape(-1, 2)
            line.set_data(xy[:, 0], xy[:, 1])
        for ax in (self.ax_loss, self.ax_rmse):
            ax.relim()
            ax.autoscale_view()
        self.ax_jac.relim()
        self.ax_jac.autoscale_view(scaley=False)
        self.draw_idle()
