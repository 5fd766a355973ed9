"""Inference dock widget (magicgui): localize emitters in an image layer with a checkpoint, in a background
thread, showing probability maps and localizations as they stream in (see :mod:`.inference_layers`).

The form's rules live in :mod:`.inference_config` (Qt-free), the job and the run's state in
:mod:`.inference_run`, the layers in :mod:`.inference_layers`. A cancelled run keeps what it found.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image
from napari.utils import progress

from ...devices import available_devices
from ._common import (
    LAST_CHECKPOINT,
    Liveness,
    get_last_checkpoint,
    keep_choices_in_sync,
    layer_pixel_size,
    notify_error,
    notify_info,
    start_worker,
)
from .camera_form import CameraForm
from .inference_config import (
    COLOR_FEATURES,
    camera_frames,
    checkpoint_info,
    color_choices,
    default_scale_choice,
    frame_range,
    map_frame_count,
    predictor_kwargs,
)
from .inference_layers import place_camera_layer, recolor, show_maps, show_points
from .inference_run import RunState, inference_job

if TYPE_CHECKING:
    import napari

UPDATE_INTERVAL_S = 0.5
BUNDLED = "bundled default model"
LAST = "last trained model"
_BUNDLED_KEY = ""  # the model chooser's value for the bundled model; other values are checkpoint paths


class InferenceWidget(Container):
    """Localize emitters in the selected image layer with a checkpoint (dock widget)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.worker = None
        self.run_state: RunState | None = None
        self._progress = None
        self._last_flush = 0.0
        self._ckpt_cache: dict[tuple, dict[str, Any]] = {}
        self._camera_from_layer = False
        self._files: list[Path] = []

        self.image = create_widget(annotation=Image, name="image", label="image")
        self.model = ComboBox(name="model", label="model", choices=self._model_choices)
        self.checkpoint_file = FileEdit(name="checkpoint_file", label="checkpoint", mode="r", filter="*.pt")
        self.device = ComboBox(name="device", label="device", choices=available_devices())
        self.threshold = FloatSpinBox(
            name="threshold", label="threshold", min=0.01, max=0.99, step=0.05, value=0.5
        )
        self.refine = CheckBox(name="refine", text="PSF fit refinement", value=False)
        self.split = CheckBox(name="split", text="split close pairs (PSF fit)", value=True)
        self.split.tooltip = (
            "The PSF fit weighs one emitter against two for every spot and close pair, which resolves "
            "emitters closer than the PSF, and searches its residual for emitters missed in crowded regions. "
            "It assumes a symmetric Gaussian PSF: switch it off for elongated PSFs."
        )
        self.hot_pixels = CheckBox(name="hot_pixels", text="replace hot pixels", value=True)
        self.hot_pixels.tooltip = (
            "Camera pixels that are bright on their own in every frame (sCMOS hot pixels, found in the "
            "median of up to 64 frames) are replaced by the mean of their neighbours before localization: "
            "the network would report false emitters around them."
        )
        self.first = SpinBox(name="first", label="first frame", min=0, max=0)
        self.last = SpinBox(name="last", label="last frame", min=0, max=0)
        self.map_frames = SpinBox(name="map_frames", label="maps for (frames)", min=0, max=100_000, value=10)
        self.map_frames.tooltip = "Probability maps are computed for this many frames from the first one."
        self.scales = Container(name="scales", label="scales", layout="horizontal", labels=False)
        self.color_by = ComboBox(name="color_by", label="colour by", choices=COLOR_FEATURES[:3])
        self.camera = CameraForm()
        self.run_button = PushButton(name="run_button", text="Run")
        self.cancel_button = PushButton(name="cancel_button", text="Cancel", enabled=False)
        self.summary = Label(name="summary", value="")
        buttons = Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False)
        super().__init__(
            widgets=[
                self.image, self.model, self.checkpoint_file, self.device, self.threshold, self.refine,
                self.split, self.hot_pixels, self.first, self.last, self.map_frames, self.scales,
                self.color_by, self.camera, buttons, self.summary,
            ]
        )  # fmt: skip
        self.summary.native.setWordWrap(True)
        self.scale_boxes: dict[int, CheckBox] = {}

        self._liveness = Liveness(self)
        keep_choices_in_sync(self, viewer)
        self.checkpoint_file.changed.connect(self._file_chosen)
        self.model.changed.connect(self._checkpoint_changed)
        self.image.changed.connect(self._layer_changed)
        self.color_by.changed.connect(self._recolor)
        self.refine.changed.connect(self._refine_toggled)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        LAST_CHECKPOINT.changed.connect(self._last_checkpoint_changed)
        self._checkpoint_changed()
        self._layer_changed()

    # ------------------------------------------------------------------------------------------- settings
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _model_choices(self, *_: Any) -> list[tuple[str, str]]:
        choices = [(BUNDLED, _BUNDLED_KEY)]
        last = get_last_checkpoint()
        if last is not None:
            choices.append((LAST, str(last)))
        choices += [(path.name, str(path)) for path in self._files if str(path) != str(last)]
        return choices

    def set_checkpoint(self, path: str | Path | None) -> None:
        """Select a checkpoint file (None: the bundled model), adding it to the model choices."""
        if path is None:
            self.model.value = _BUNDLED_KEY
            return
        path = Path(path)
        if path not in self._files:
            self._files.append(path)
        self.model.reset_choices()
        self.model.value = str(path)

    def checkpoint_path(self) -> Path | None:
        """The chosen checkpoint (None: the bundled model)."""
        value = self.model.value
        return None if not value else Path(value)

    def _file_chosen(self, value: Any) -> None:
        if value is not None and Path(value).is_file():
            self.set_checkpoint(value)

    def _last_checkpoint_changed(self, path: Path | None) -> None:
        if not self._liveness.alive:
            return
        self.model.reset_choices()
        if path is not None:
            self.model.value = str(path)

    def _checkpoint_changed(self, *_: Any) -> None:
        """Show the checkpoint's scales and refinement default; take its camera unless the layer has one."""
        info = self._info(self.checkpoint_path())
        if info is None:
            return
        self._set_scales(info["scales"], info.get("localize_scale"))
        self.refine.enabled = info["refine"] is not None
        self.refine.value = bool(info["refine"])
        self.refine.tooltip = (
            "Fit a Gaussian PSF to the camera pixels around each detection, seeded by the network"
            if info["refine"] is not None
            else "Not available with this version of the predictor"
        )
        self._refine_toggled()
        if not self._camera_from_layer:
            self.camera.set_values(info["camera"], info["pixel_size_nm"])

    def _refine_toggled(self, *_: Any) -> None:
        """Splitting close pairs is a step of the PSF fit."""
        self.split.enabled = bool(self.refine.enabled and self.refine.value)

    def _info(self, path: Path | None) -> dict[str, Any] | None:
        try:
            key = (path, path.stat().st_mtime if path is not None and path.exists() else None)
            if key not in self._ckpt_cache:
                self._ckpt_cache[key] = checkpoint_info(path)
            return self._ckpt_cache[key]
        except Exception:  # reported when the user runs it
            return None

    def _set_scales(self, scales: tuple[int, ...], localize: int | None = None) -> None:
        if tuple(self.scale_boxes) == tuple(scales):
            return
        previous = {f for f, box in self.scale_boxes.items() if box.value}
        checked = default_scale_choice(scales, previous, localize)
        self.scales.clear()
        self.scale_boxes = {f: CheckBox(name=f"x{f}", text=f"{f}x", value=checked[f]) for f in scales}
        self.scales.extend(self.scale_boxes.values())

    def selected_scales(self) -> tuple[int, ...]:
        return tuple(f for f, box in self.scale_boxes.items() if box.value)

    def _layer_changed(self, *_: Any) -> None:
        """Frame range and camera from the selected layer (its metadata, else the checkpoint's)."""
        layer = self.image.value
        if layer is None:
            return
        n = int(layer.data.shape[0]) if layer.data.ndim >= 3 and not layer.rgb else 1
        for box in (self.first, self.last):
            box.max = n - 1
        self.first.value = 0
        self.last.value = n - 1
        meta = layer.metadata or {}
        self._camera_from_layer = bool(meta.get("camera"))
        try:
            if self._camera_from_layer:
                self.camera.set_values(meta.get("camera"), layer_pixel_size(layer))
            else:
                self._checkpoint_changed()
                self.camera.set_values(None, layer_pixel_size(layer))
        except Exception as exc:
            notify_error(exc, f"Reading the camera of layer '{layer.name}'")

    # ---------------------------------------------------------------------------------------------- run
    def run(self, *_: Any) -> None:
        """Start a run on the selected layer (errors become notifications)."""
        if self.running:
            return
        try:
            self._start()
        except Exception as exc:
            notify_error(exc, "Localization")

    def predictor_kwargs(self) -> dict[str, Any]:
        """The ``Predictor`` arguments the form describes."""
        return predictor_kwargs(
            self.checkpoint_path(),
            self.device.value,
            self.camera.camera(),
            self.threshold.value,
            self.refine.value if self.refine.enabled else None,
            self.split.value,
            self.hot_pixels.value,
        )

    def _start(self) -> None:
        from ...io.stacks import Stack

        layer = self.image.value
        data = camera_frames(layer)
        frames = frame_range(self.first.value, self.last.value)
        px = self.camera.pixel_size_nm()
        kwargs = self.predictor_kwargs()
        scales = self.selected_scales()
        wanted = min(self.map_frames.value, len(frames))
        n_maps = map_frame_count(wanted, len(frames), scales, data.shape[1:])
        if scales and n_maps < wanted:
            notify_info(f"Probability maps limited to {n_maps} frames to stay within memory.")
        if n_maps == 0:
            scales = ()
        place_camera_layer(layer, px)

        self.run_state = RunState(layer.name, px, frames, n_maps, meta={"pixel_size_nm": px})
        self._last_flush = 0.0
        self._progress = progress(total=len(frames), desc=f"Localizing {layer.name}")
        stack = Stack(data=data, pixel_size_nm=px, metadata=dict(layer.metadata or {}), path=None)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.summary.value = "Loading the model…"
        self.worker = start_worker(
            inference_job,
            kwargs,
            stack,
            frames,
            n_maps,
            scales,
            self.run_state.cancel,
            connect={"yielded": self._on_yield, "errored": self._on_error, "finished": self._on_finished},
            on_quit=self.run_state.cancel.set,
        )

    def cancel(self, *_: Any) -> None:
        """Stop the run after the current batch; what was found so far stays."""
        if self.worker is not None and self.run_state is not None:
            # the job sees the event after the current batch and ends normally in its own thread
            self.run_state.cancel.set()
            self.summary.value = "Cancelling…"

    # ------------------------------------------------------------------------------------------ results
    def table(self):
        """All localizations of the current (or last) run."""
        import pandas as pd

        return self.run_state.table() if self.run_state is not None else pd.DataFrame()

    def _on_yield(self, item: tuple[str, Any]) -> None:
        if not self._liveness.alive:
            return
        kind, value = item
        if kind == "batch":
            self._on_batch(value)
        elif kind == "meta":
            self.run_state.meta = value

    def _on_batch(self, batch: Any) -> None:
        run = self.run_state
        frames = np.asarray(batch.frames)
        run.add(batch.table, len(frames))
        self._progress.update(len(frames))
        if batch.maps:
            show_maps(self.viewer, run, frames, batch.maps)
        now = time.perf_counter()
        if now - self._last_flush >= UPDATE_INTERVAL_S:
            self._show_points()
            self._last_flush = time.perf_counter()
            # do not spend more than ~1/5 of the time redrawing a big table
            self._last_flush += 4 * (self._last_flush - now)
        self.summary.value = run.summary(running=self.running)
        if not self.running:  # a batch that arrived after the end of the run: show it too
            self._show_points()

    def _show_points(self) -> None:
        table = self.table()
        if table.empty:
            return
        choices = color_choices(table.columns)
        if choices != list(self.color_by.choices):
            current = self.color_by.value
            with self.color_by.changed.blocked():
                self.color_by.choices = choices
                self.color_by.value = current if current in choices else choices[0]
        show_points(self.viewer, self.run_state, table, self.color_by.value)

    def _recolor(self, feature: str) -> None:
        if self.run_state is not None and feature:
            recolor(self.viewer, self.run_state.source, feature)

    def _on_error(self, exc: BaseException) -> None:
        notify_error(exc, "Localization")

    def _on_finished(self) -> None:
        self.worker = None
        self._progress.close()
        if not self._liveness.alive:
            return
        try:
            self.summary.value = self.run_state.summary(running=False)
            self._show_points()
        finally:
            self.run_button.enabled = True
            self.cancel_button.enabled = False
