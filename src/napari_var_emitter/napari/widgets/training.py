"""Training dock widget: train a model on simulated or labelled data in the background, with live plots.

``training.train`` runs in a napari thread worker; its callbacks emit a Qt signal (queued to the main thread)
with every step and validation, which update the progress bar and the matplotlib plot of training and
validation loss and validation Jaccard / lateral RMSE. Stop sets the trainer's ``stop_event``: it ends at the
next batch and writes ``last.pt`` (atomically). Resume continues from ``<output folder>/last.pt``. Closing
napari mid-training stops the run the same way and waits briefly for the checkpoint.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Image
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ...devices import available_devices
from ...errors import ParameterError
from ._common import (
    CameraForm,
    LayerPicker,
    layer_pixel_size,
    notify_error,
    notify_info,
    set_last_checkpoint,
    start_worker,
)

if TYPE_CHECKING:
    import napari

MODEL_CHOICES = {
    "VAR, CPU size": ("var", "cpu"),
    "VAR, GPU size": ("var", "gpu"),
    "U-Net baseline": ("unet", None),
}
FROM_CONFIG = "as in loaded config"
STEP_EMIT_INTERVAL_S = 0.1
SHUTDOWN_WAIT_S = 10.0


class _Bridge(QObject):
    """Carries trainer callbacks from the training thread to the main thread (queued signal)."""

    update = Signal(object)


class _Callbacks:
    """Trainer callbacks that forward steps (throttled) and validations as dicts through a Qt signal."""

    def __init__(self, bridge: _Bridge):
        self._bridge = bridge
        self._last = 0.0

    def on_train_start(self, state: Any) -> None:
        self._bridge.update.emit({"kind": "start", **_state(state)})

    def on_step(self, state: Any) -> None:
        now = time.perf_counter()
        info = _state(state)
        if now - self._last >= STEP_EMIT_INTERVAL_S or info["step"] >= info["total_steps"]:
            self._last = now
            self._bridge.update.emit({"kind": "step", **info})

    def on_validation(self, state: Any, metrics: dict[str, Any]) -> None:
        values = {k: float(v) for k, v in dict(metrics).items() if isinstance(v, (int, float, np.number))}
        self._bridge.update.emit({"kind": "validation", **_state(state), "metrics": values})

    def on_checkpoint(self, state: Any, path: Any) -> None:
        self._bridge.update.emit({"kind": "checkpoint", **_state(state), "path": str(path)})


def _state(state: Any) -> dict[str, Any]:
    get = (lambda k: state.get(k)) if isinstance(state, dict) else (lambda k: getattr(state, k, None))
    loss = get("loss")
    return {
        "step": int(get("step") or 0),
        "epoch": int(get("epoch") or 0),
        "total_steps": int(get("total_steps") or 0),
        "loss": None if loss is None else float(loss),
        "lr": get("lr"),
    }


def _train_job(
    config: Any, out_dir: Path, callbacks: _Callbacks, stop: threading.Event, resume, device, done
):
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


def _dspin(lo: float, hi: float, value: float, decimals: int = 1, step: float = 1.0) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def _ispin(lo: int, hi: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


def _range_row(lo: QDoubleSpinBox, hi: QDoubleSpinBox) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(lo)
    row.addWidget(QLabel("to"))
    row.addWidget(hi)
    return row


class _PathEdit(QWidget):
    """A line edit with a Browse button (file or folder)."""

    def __init__(self, caption: str, folder: bool = False, filters: str = "All (*)"):
        super().__init__()
        self.edit = QLineEdit()
        button = QPushButton("…")
        button.setMaximumWidth(30)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(button)

        def browse() -> None:
            if folder:
                path = QFileDialog.getExistingDirectory(self, caption, self.edit.text())
            else:
                path, _ = QFileDialog.getOpenFileName(self, caption, self.edit.text(), filters)
            if path:
                self.edit.setText(path)

        button.clicked.connect(browse)

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_path(self, path: str | Path | None) -> None:
        self.edit.setText("" if path is None else str(path))


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
        self.history: dict[str, list[tuple[int, float]]] = {"train": [], "val": [], "jaccard": [], "rmse": []}
        self.redraw()

    def add(self, series: str, step: int, value: float | None) -> None:
        if value is not None and np.isfinite(value):
            self.history[series].append((step, float(value)))

    def redraw(self) -> None:
        for series, line in (
            ("train", self.train_line),
            ("val", self.val_line),
            ("jaccard", self.jaccard_line),
            ("rmse", self.rmse_line),
        ):
            xy = np.asarray(self.history[series], dtype=float).reshape(-1, 2)
            line.set_data(xy[:, 0], xy[:, 1])
        for ax in (self.ax_loss, self.ax_rmse):
            ax.relim()
            ax.autoscale_view()
        self.ax_jac.relim()
        self.ax_jac.autoscale_view(scaley=False)
        self.draw_idle()


class TrainingWidget(QWidget):
    """Train a model on simulated or labelled data (dock widget)."""

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.worker = None
        self.result = None
        self.base_config: Any = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._bridge = _Bridge(self)
        self._bridge.update.connect(self._on_update)
        self._task_id = None

        # data source
        self.source = QComboBox()
        self.source.addItems(["simulate", "labelled files"])
        self.pages = QStackedWidget()
        self.pages.addWidget(self._simulation_page())
        self.pages.addWidget(self._labelled_page())
        self.source.currentIndexChanged.connect(self.pages.setCurrentIndex)

        # essentials
        self.model = QComboBox()
        self.model.addItems(list(MODEL_CHOICES))
        self.epochs = _ispin(1, 100_000, 20)
        self.steps_per_epoch = _ispin(1, 1_000_000, 200)
        self.batch_size = _ispin(1, 4096, 16)
        self.val_frames = _ispin(0, 100_000, 256)
        self.lr = _dspin(1e-6, 1.0, 5e-4, decimals=6, step=1e-4)
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.out_dir = _PathEdit("Output folder", folder=True)
        self.load_config_button = QPushButton("Load config JSON…")
        essentials = QFormLayout()
        essentials.addRow("model", self.model)
        essentials.addRow("epochs", self.epochs)
        essentials.addRow("steps / epoch", self.steps_per_epoch)
        essentials.addRow("batch size", self.batch_size)
        essentials.addRow("validation windows", self.val_frames)
        essentials.addRow("learning rate", self.lr)
        essentials.addRow("device", self.device)
        essentials.addRow("output folder", self.out_dir)
        essentials.addRow(self.load_config_button)

        # run controls, progress, plot
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("step %v / %m")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        self.use_button = QPushButton("Use in inference widget")
        self.use_button.setEnabled(False)

        source_box = QGroupBox("Training data")
        source_layout = QVBoxLayout(source_box)
        source_layout.addWidget(self.source)
        source_layout.addWidget(self.pages)
        config_box = QGroupBox("Training")
        config_box.setLayout(essentials)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(source_box)
        layout.addWidget(config_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)
        layout.addWidget(self.status)
        layout.addWidget(self.use_button)
        layout.addStretch(1)

        self.load_config_button.clicked.connect(self._load_config_dialog)
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_in_inference)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    # --------------------------------------------------------------------------------------------- forms
    def _simulation_page(self) -> QWidget:
        page = QWidget()
        self.photons_lo = _dspin(1, 1e7, 1000, 0, 100)
        self.photons_hi = _dspin(1, 1e7, 5000, 0, 100)
        self.bg_lo = _dspin(0, 1e5, 20, 1, 5)
        self.bg_hi = _dspin(0, 1e5, 100, 1, 5)
        self.density = _dspin(0, 100, 1.0, 2, 0.1)
        self.sigma_lo = _dspin(0.3, 10, 1.0, 2, 0.1)
        self.sigma_hi = _dspin(0.3, 10, 1.4, 2, 0.1)
        self.sim_camera = CameraForm()
        self.estimate_layer = LayerPicker(self.viewer, Image)
        self.estimate_button = QPushButton("Estimate from image")
        self.estimate_button.setToolTip("Background, brightness and PSF width from the chosen image layer")
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("photons", _range_row(self.photons_lo, self.photons_hi))
        form.addRow("background", _range_row(self.bg_lo, self.bg_hi))
        form.addRow("density (/um²)", self.density)
        form.addRow("PSF sigma (px)", _range_row(self.sigma_lo, self.sigma_hi))
        form.addRow(self.sim_camera)
        estimate_row = QHBoxLayout()
        estimate_row.addWidget(self.estimate_layer, 1)
        estimate_row.addWidget(self.estimate_button)
        form.addRow("image", estimate_row)
        self.estimate_button.clicked.connect(self.estimate_from_image)
        return page

    def _labelled_page(self) -> QWidget:
        page = QWidget()
        self.stack_path = _PathEdit("Camera stack", filters="TIFF (*.tif *.tiff);;All (*)")
        self.emitters_path = _PathEdit(
            "Ground-truth emitters", filters="Emitters (*.h5 *.hdf5 *.csv);;All (*)"
        )
        self.lab_camera = CameraForm()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("stack", self.stack_path)
        form.addRow("emitters", self.emitters_path)
        form.addRow(self.lab_camera)
        return page

    def estimate_from_image(self) -> None:
        """Fill background, photon and PSF-width ranges (and the camera) from the chosen image layer."""
        from ...camera import adu_to_photons
        from ._estimate import estimate_from_frames, sample_frames
        from .inference import camera_frames

        try:
            layer = self.estimate_layer.layer()
            data = camera_frames(layer)
            meta = layer.metadata or {}
            if meta.get("camera"):
                self.sim_camera.set_values(meta["camera"], layer_pixel_size(layer))
            else:
                self.sim_camera.set_values(None, layer_pixel_size(layer))
            photons = adu_to_photons(sample_frames(data), self.sim_camera.camera())
            est = estimate_from_frames(photons, self.sim_camera.pixel_size_nm())
        except Exception as exc:
            notify_error(exc, "Estimation")
            return
        self.bg_lo.setValue(max(0.0, est.background[0] * 0.8))
        self.bg_hi.setValue(est.background[1] * 1.2 + 1.0)
        self.photons_lo.setValue(est.photons[0])
        self.photons_hi.setValue(max(est.photons[1], est.photons[0] + 1))
        self.sigma_lo.setValue(est.sigma_px[0])
        self.sigma_hi.setValue(max(est.sigma_px[1], est.sigma_px[0]))
        if est.density > 0:
            self.density.setValue(est.density)
        notify_info(
            f"Estimated from {est.n_spots} isolated spots in '{layer.name}': background "
            f"{est.background[0]:.0f}-{est.background[1]:.0f} photons/px, {est.photons[0]:.0f}-"
            f"{est.photons[1]:.0f} photons, PSF sigma {est.sigma_px[0]:.2f}-{est.sigma_px[1]:.2f} px."
        )

    # -------------------------------------------------------------------------------------------- config
    def _load_config_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", "", "JSON (*.json);;All (*)")
        if path:
            self.load_config(path)

    def load_config(self, path: str | Path) -> None:
        """Load a full training config JSON; the form shows its essentials and edits apply on top of it."""
        from ...training import TrainConfig

        try:
            config = TrainConfig.from_json(path)
        except Exception as exc:
            notify_error(exc, "Loading the config")
            return
        self.base_config = config
        if self.model.findText(FROM_CONFIG) < 0:
            self.model.insertItem(0, FROM_CONFIG)
        self.model.setCurrentText(FROM_CONFIG)
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.optimizer.lr)
        data = config.data
        self.steps_per_epoch.setValue(data.steps_per_epoch)
        if data.kind == "simulation":
            self.source.setCurrentIndex(0)
            self.val_frames.setValue(data.val_frames)
            sim = data.simulation
            self.photons_lo.setValue(sim.photons[0])
            self.photons_hi.setValue(sim.photons[1])
            self.bg_lo.setValue(sim.background[0])
            self.bg_hi.setValue(sim.background[1])
            self.density.setValue(sim.density)
            self.sigma_lo.setValue(sim.psf.sigma_px[0])
            self.sigma_hi.setValue(sim.psf.sigma_px[1])
            self.sim_camera.set_values(sim.camera, sim.pixel_size_nm)
        else:
            self.source.setCurrentIndex(1)
            self.val_frames.setValue(data.val_tiles)
            first = data.paths[0]
            self.stack_path.set_path(first.stack or first.h5)
            self.emitters_path.set_path(first.emitters)
            self.lab_camera.set_values(data.camera, data.pixel_size_nm)
        notify_info(f"Loaded training config {Path(path).name}.")

    def config(self) -> Any:
        """The TrainConfig from the loaded JSON (if any) with the form's values applied."""
        from ...training import TrainConfig

        values = (self.base_config or TrainConfig()).model_dump(mode="json")
        choice = self.model.currentText()
        if choice != FROM_CONFIG:
            kind, preset = MODEL_CHOICES[choice]
            values["model"] = {"kind": kind, **({"preset": preset} if preset else {})}
        values["epochs"] = self.epochs.value()
        values["batch_size"] = self.batch_size.value()
        values["optimizer"]["lr"] = self.lr.value()
        values["device"] = self.device.currentText()
        if self.source.currentIndex() == 0:
            data = values["data"] if values["data"].get("kind") == "simulation" else {"kind": "simulation"}
            sim = dict(data.get("simulation", {}))
            sim.update(
                photons=(self.photons_lo.value(), self.photons_hi.value()),
                background=(self.bg_lo.value(), self.bg_hi.value()),
                density=self.density.value(),
                pixel_size_nm=self.sim_camera.pixel_size_nm(),
                camera=self.sim_camera.camera_dict(),
            )
            sim["psf"] = {**sim.get("psf", {}), "sigma_px": (self.sigma_lo.value(), self.sigma_hi.value())}
            data.update(
                simulation=sim,
                steps_per_epoch=self.steps_per_epoch.value(),
                val_frames=self.val_frames.value(),
            )
        else:
            stack, emitters = self.stack_path.path(), self.emitters_path.path()
            if stack is None:
                raise ParameterError("Labelled data: choose a camera stack (TIFF) or a seed HDF5 file.")
            source = (
                {"h5": str(stack)}
                if emitters is None and stack.suffix in (".h5", ".hdf5")
                else {"stack": str(stack), "emitters": None if emitters is None else str(emitters)}
            )
            data = values["data"] if values["data"].get("kind") == "labelled" else {"kind": "labelled"}
            data.update(
                paths=[source],
                camera=self.lab_camera.camera_dict(),
                pixel_size_nm=self.lab_camera.pixel_size_nm(),
                steps_per_epoch=self.steps_per_epoch.value(),
                val_tiles=self.val_frames.value(),
            )
        values["data"] = data
        return TrainConfig.from_dict(values, source="training widget")

    # ----------------------------------------------------------------------------------------------- run
    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, resume: bool = False) -> None:
        """Start training (or resume from ``<output folder>/last.pt``) in the background."""
        if self.running:
            return
        try:
            out_dir = self.out_dir.path()
            if out_dir is None:
                raise ParameterError("Choose an output folder for the checkpoints.")
            resume_path = out_dir / "last.pt" if resume else None
            if resume_path is not None and not resume_path.is_file():
                raise ParameterError(f"Nothing to resume: {resume_path} does not exist.")
            config = self.config()
            out_dir.mkdir(parents=True, exist_ok=True)
        except Exception as exc:
            notify_error(exc, "Training")
            return
        self.result = None
        self.use_button.setEnabled(False)
        if not resume:
            self.plot.clear()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.progress.setRange(0, config.total_steps)
        self.progress.setValue(0)
        self.status.setText("Resuming…" if resume else "Starting…")
        self._set_running(True)
        self._register_task()
        self.worker = start_worker(
            _train_job,
            config,
            out_dir,
            _Callbacks(self._bridge),
            self._stop,
            resume_path,
            self.device.currentText(),
            self._done,
            connect={"returned": self._on_returned, "errored": self._on_error, "finished": self._on_finished},
        )

    def stop(self) -> None:
        """Ask the trainer to stop at the next batch (it writes last.pt)."""
        if self.running:
            self._stop.set()
            self.status.setText("Stopping after this batch…")

    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop a running training and wait up to ``timeout`` s for it to write its checkpoint."""
        self._stop.set()
        return self._done.wait(timeout)

    def use_in_inference(self) -> None:
        """Offer the trained checkpoint as "last trained model" in every inference widget."""
        path = self.checkpoint_path()
        if path is None:
            notify_error("No trained checkpoint yet: start (and finish or stop) a training first.")
            return
        set_last_checkpoint(path)
        notify_info(f"Inference widgets now offer {path} as the last trained model.")

    def checkpoint_path(self) -> Path | None:
        """The best checkpoint of the last run, else its last one."""
        if self.result is None:
            return None
        for path in (
            getattr(self.result, "best_checkpoint", None),
            getattr(self.result, "last_checkpoint", None),
        ):
            if path is not None and Path(path).is_file():
                return Path(path)
        return None

    # --------------------------------------------------------------------------------- main-thread updates
    def _on_update(self, info: dict[str, Any]) -> None:
        kind = info["kind"]
        if info.get("total_steps"):
            self.progress.setMaximum(info["total_steps"])
        self.progress.setValue(min(info["step"], self.progress.maximum()))
        if kind == "step":
            self.plot.add("train", info["step"], info["loss"])
            self.status.setText(
                f"epoch {info['epoch']}, step {info['step']}/{info['total_steps']}, loss {info['loss']:.4g}"
                if info["loss"] is not None
                else f"epoch {info['epoch']}, step {info['step']}"
            )
            self.plot.redraw()
        elif kind == "validation":
            m = info["metrics"]
            self.plot.add("val", info["step"], m.get("val_loss", m.get("loss")))
            self.plot.add("jaccard", info["step"], m.get("jaccard"))
            self.plot.add("rmse", info["step"], m.get("rmse_lat"))
            self.plot.redraw()
        elif kind == "checkpoint":
            self.status.setText(f"step {info['step']}: saved {Path(info['path']).name}")

    def _on_returned(self, result: Any) -> None:
        self.result = result
        path = self.checkpoint_path()
        self.use_button.setEnabled(path is not None)
        stopped = "stopped" if self._stop.is_set() else "finished"
        self.status.setText(f"Training {stopped}; checkpoint: {path}")

    def _on_error(self, exc: BaseException) -> None:
        notify_error(exc, "Training")
        self.status.setText(f"Training failed: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
        self._finish_task()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.load_config_button.setEnabled(not running)

    # napari's task registry: closing the window asks for confirmation, then cancels (= stops) the training
    def _register_task(self) -> None:
        register = getattr(getattr(self.viewer, "window", None), "_register_task_status", None)
        if register is None:
            return
        from napari.utils.task_status import Status

        def cancel() -> bool:
            return self.shutdown()

        try:
            self._task_id = register("napari-var-emitter", Status.BUSY, "training a model", cancel)
        except Exception:  # private napari API; optional
            self._task_id = None

    def _finish_task(self) -> None:
        update = getattr(getattr(self.viewer, "window", None), "_update_task_status", None)
        if update is None or self._task_id is None:
            return
        from napari.utils.task_status import Status

        try:
            update(self._task_id, Status.COMPLETED)
        except Exception:
            pass
        self._task_id = None
