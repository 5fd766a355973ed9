"""Training dock widget (magicgui): train a model on simulated or labelled data in the background, with a
live plot.

``training.train`` runs in a napari thread worker (:mod:`.training_run`); its callbacks reach the main thread
through a queued Qt signal and update the progress bar and the plot (:mod:`.loss_plot`). Stop sets the
trainer's ``stop_event``: it ends at the next batch and writes ``last.pt`` (atomically). Resume continues from
``<output folder>/last.pt``. Closing napari mid-training stops the run the same way (napari cancels its
running workers) and waits briefly for the checkpoint. The form's rules: :mod:`.training_config` (Qt-free).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image
from qtpy.QtWidgets import QApplication

from ...devices import available_devices
from ...errors import ParameterError
from ._common import (
    Liveness,
    keep_choices_in_sync,
    layer_pixel_size,
    notify_error,
    notify_info,
    set_last_checkpoint,
    start_worker,
)
from .camera_form import CameraForm
from .loss_plot import LossPlot
from .training_config import (
    LABELLED,
    MODEL_CHOICES,
    SIMULATE,
    estimated_ranges,
    form_from_config,
    train_config,
)
from .training_run import Bridge, TrainerCallbacks, train_job

if TYPE_CHECKING:
    import napari

SHUTDOWN_WAIT_S = 10.0


class FloatRange(Container):
    """Two float boxes, "lo to hi"; ``value`` is the pair."""

    def __init__(self, name: str, label: str, lo: float, hi: float, value: tuple[float, float], step: float):
        self.lo = FloatSpinBox(name="lo", min=lo, max=hi, step=step, value=value[0])
        self.hi = FloatSpinBox(name="hi", min=lo, max=hi, step=step, value=value[1])
        super().__init__(
            name=name, label=label, widgets=[self.lo, self.hi], layout="horizontal", labels=False
        )
        self.margins = (0, 0, 0, 0)

    @property
    def value(self) -> tuple[float, float]:
        return float(self.lo.value), float(self.hi.value)

    @value.setter
    def value(self, pair: tuple[float, float]) -> None:
        self.lo.value, self.hi.value = (float(v) for v in pair)


class TrainingWidget(Container):
    """Train a model on simulated or labelled data (dock widget)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.worker = None
        self.result = None
        self.base_config: Any = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._bridge = Bridge()
        self._bridge.update.connect(self._on_update)

        # data source: simulation parameters or labelled files
        self.source = ComboBox(name="source", label="training data", choices=(SIMULATE, LABELLED))
        self.photons = FloatRange("photons", "photons", 1, 1e7, (1000, 5000), 100)
        self.background = FloatRange("background", "background (ph/px)", 0, 1e5, (20, 100), 5)
        self.density = FloatSpinBox(
            name="density", label="density (/µm²)", min=0, max=100, step=0.1, value=1.0
        )
        self.sigma_px = FloatRange("sigma_px", "PSF sigma (px)", 0.3, 10, (1.0, 1.4), 0.1)
        self.estimate_layer = create_widget(annotation=Image, name="estimate_layer", label="estimate from")
        self.estimate_button = PushButton(name="estimate_button", text="Estimate from image")
        self.estimate_button.tooltip = "Background, brightness and PSF width from the chosen image layer"
        self.simulation = Container(
            name="simulation",
            widgets=[
                self.photons, self.background, self.density, self.sigma_px, self.estimate_layer,
                self.estimate_button,
            ],
        )  # fmt: skip
        self.stack_path = FileEdit(
            name="stack_path", label="stack", mode="r", filter="*.tif *.tiff *.h5 *.hdf5"
        )
        self.emitters_path = FileEdit(
            name="emitters_path", label="emitters", mode="r", filter="*.h5 *.hdf5 *.csv"
        )
        self.labelled = Container(
            name="labelled", widgets=[self.stack_path, self.emitters_path], visible=False
        )
        self.camera = CameraForm()

        # essentials
        self.model = ComboBox(name="model", label="model", choices=list(MODEL_CHOICES))
        self.epochs = SpinBox(name="epochs", label="epochs", min=1, max=100_000, value=20)
        self.steps_per_epoch = SpinBox(
            name="steps_per_epoch", label="steps / epoch", min=1, max=1_000_000, value=200
        )
        self.batch_size = SpinBox(name="batch_size", label="batch size", min=1, max=4096, value=16)
        self.val_frames = SpinBox(
            name="val_frames", label="validation windows", min=0, max=100_000, value=256
        )
        self.lr = FloatSpinBox(name="lr", label="learning rate", min=1e-6, max=1.0, step=1e-4, value=5e-4)
        self.lr.native.setDecimals(6)
        self.device = ComboBox(name="device", label="device", choices=available_devices())
        self.out_dir = FileEdit(name="out_dir", label="output folder", mode="d")
        self.config_file = FileEdit(name="config_file", label="config JSON", mode="r", filter="*.json")
        self.load_config_button = PushButton(name="load_config_button", text="Load config")

        # run controls, progress, plot
        self.start_button = PushButton(name="start_button", text="Start")
        self.stop_button = PushButton(name="stop_button", text="Stop", enabled=False)
        self.resume_button = PushButton(name="resume_button", text="Resume")
        self.progress = ProgressBar(name="progress", label="steps", min=0, max=1, value=0)
        self.status = Label(name="status", value="")
        self.use_button = PushButton(name="use_button", text="Use in inference widget", enabled=False)
        buttons = Container(
            widgets=[self.start_button, self.stop_button, self.resume_button],
            layout="horizontal",
            labels=False,
        )
        super().__init__(
            widgets=[
                self.source, self.simulation, self.labelled, self.camera, self.model, self.epochs,
                self.steps_per_epoch, self.batch_size, self.val_frames, self.lr, self.device,
                self.out_dir, self.config_file, self.load_config_button, buttons, self.progress,
                self.status, self.use_button,
            ]
        )  # fmt: skip
        self.status.native.setWordWrap(True)
        self.plot = LossPlot()
        self.native.layout().addWidget(self.plot)

        self._liveness = Liveness(self)
        keep_choices_in_sync(self, viewer)
        self.source.changed.connect(self._source_changed)
        self.estimate_button.clicked.connect(self.estimate_from_image)
        self.load_config_button.clicked.connect(lambda: self.load_config(self.config_file.value))
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_in_inference)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _source_changed(self, source: str) -> None:
        self.simulation.visible = source == SIMULATE
        self.labelled.visible = source == LABELLED

    # --------------------------------------------------------------------------------------------- forms
    def form(self) -> dict[str, Any]:
        """The form's values (see :func:`.training_config.train_config`)."""
        return {
            "model": self.model.value,
            "epochs": self.epochs.value,
            "steps_per_epoch": self.steps_per_epoch.value,
            "batch_size": self.batch_size.value,
            "val_frames": self.val_frames.value,
            "lr": self.lr.value,
            "device": self.device.value,
            "source": self.source.value,
            "photons": self.photons.value,
            "background": self.background.value,
            "density": self.density.value,
            "sigma_px": self.sigma_px.value,
            "camera": self.camera.camera().model_dump(),
            "pixel_size_nm": self.camera.pixel_size_nm(),
            "stack": self.stack_path.value,
            "emitters": self.emitters_path.value,
        }

    def set_form(self, values: dict[str, Any]) -> None:
        """Show ``values`` (keys as in :meth:`form`; missing keys keep the form's values)."""
        if "model" in values and values["model"] not in self.model.choices:
            self.model.choices = [values["model"], *MODEL_CHOICES]
        for key in (
            "model", "epochs", "steps_per_epoch", "batch_size", "val_frames", "lr", "source", "photons",
            "background", "density", "sigma_px",
        ):  # fmt: skip
            if values.get(key) is not None:
                getattr(self, key).value = values[key]
        for key, widget in (("stack", self.stack_path), ("emitters", self.emitters_path)):
            if key in values:
                widget.value = "" if values[key] is None else str(values[key])
        if "camera" in values or "pixel_size_nm" in values:
            self.camera.set_values(values.get("camera"), values.get("pixel_size_nm"))

    def config(self) -> Any:
        """The TrainConfig from the loaded JSON (if any) with the form's values applied."""
        return train_config(self.form(), self.base_config)

    def estimate_from_image(self, *_: Any) -> None:
        """Fill background, photon and PSF-width ranges (and the camera) from the chosen image layer."""
        from ...camera import adu_to_photons
        from ._estimate import estimate_from_frames, sample_frames
        from .inference_config import camera_frames

        try:
            layer = self.estimate_layer.value
            data = camera_frames(layer)
            self.camera.set_values((layer.metadata or {}).get("camera"), layer_pixel_size(layer))
            photons = adu_to_photons(sample_frames(data), self.camera.camera())
            est = estimate_from_frames(photons, self.camera.pixel_size_nm())
        except Exception as exc:
            notify_error(exc, "Estimation")
            return
        self.set_form(estimated_ranges(est))
        notify_info(
            f"Estimated from {est.n_spots} isolated spots in '{layer.name}': background "
            f"{est.background[0]:.0f}-{est.background[1]:.0f} photons/px, {est.photons[0]:.0f}-"
            f"{est.photons[1]:.0f} photons, PSF sigma {est.sigma_px[0]:.2f}-{est.sigma_px[1]:.2f} px."
        )

    def load_config(self, path: str | Path | None) -> None:
        """Load a full training config JSON; the form shows its essentials and edits apply on top of it."""
        from ...training import TrainConfig

        try:
            if path is None or str(path) in ("", "."):
                raise ParameterError("Choose a training config file (.json) first.")
            config = TrainConfig.from_json(path)
        except Exception as exc:
            notify_error(exc, "Loading the config")
            return
        self.base_config = config
        self.set_form(form_from_config(config))
        notify_info(f"Loaded training config {Path(path).name}.")

    # ----------------------------------------------------------------------------------------------- run
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _out_dir(self) -> Path:
        value = self.out_dir.value
        if value is None or str(value) in ("", "."):
            raise ParameterError("Choose an output folder for the checkpoints.")
        return Path(value).expanduser()

    def start(self, resume: bool = False) -> None:
        """Start training (or resume from ``<output folder>/last.pt``) in the background."""
        if self.running:
            return
        try:
            out_dir = self._out_dir()
            resume_path = out_dir / "last.pt" if resume else None
            if resume_path is not None and not resume_path.is_file():
                raise ParameterError(f"Nothing to resume: {resume_path} does not exist.")
            config = self.config()
            out_dir.mkdir(parents=True, exist_ok=True)
        except Exception as exc:
            notify_error(exc, "Training")
            return
        self.result = None
        self.use_button.enabled = False
        if not resume:
            self.plot.clear()
        self._stop = threading.Event()
        self._done = threading.Event()
        self.progress.max = config.total_steps
        self.progress.value = 0
        self.status.value = "Resuming…" if resume else "Starting…"
        self._set_running(True)
        self.worker = start_worker(
            train_job,
            config,
            out_dir,
            TrainerCallbacks(self._bridge),
            self._stop,
            resume_path,
            self.device.value,
            self._done,
            connect={"returned": self._on_returned, "errored": self._on_error, "finished": self._on_finished},
            on_quit=self.shutdown,
        )

    def stop(self, *_: Any) -> None:
        """Ask the trainer to stop at the next batch (it writes last.pt)."""
        if self.running:
            self._stop.set()
            self.status.value = "Stopping after this batch…"

    def shutdown(self, timeout: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop a running training and wait up to ``timeout`` s for it to write its checkpoint."""
        self._stop.set()
        return self._done.wait(timeout)

    def use_in_inference(self, *_: Any) -> None:
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
        if not self._liveness.alive:
            return
        kind = info["kind"]
        if info.get("total_steps"):
            self.progress.max = info["total_steps"]
        self.progress.value = min(info["step"], self.progress.max)
        if kind == "step":
            self.plot.add("train", info["step"], info["loss"])
            self.status.value = (
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
            self.status.value = f"step {info['step']}: saved {Path(info['path']).name}"

    def _on_returned(self, result: Any) -> None:
        self.result = result
        if not self._liveness.alive:
            return
        path = self.checkpoint_path()
        self.use_button.enabled = path is not None
        stopped = "stopped" if self._stop.is_set() else "finished"
        self.status.value = f"Training {stopped}; checkpoint: {path}"

    def _on_error(self, exc: BaseException) -> None:
        notify_error(exc, "Training")
        if self._liveness.alive:
            self.status.value = f"Training failed: {exc}"

    def _on_finished(self) -> None:
        self.worker = None
        if self._liveness.alive:
            self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.enabled = not running
        self.resume_button.enabled = not running
        self.stop_button.enabled = running
        self.load_config_button.enabled = not running
