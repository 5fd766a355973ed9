"""Inference dock widget: localize emitters in an image layer with a checkpoint, in a background thread.

Results (all in nanometre world coordinates, DESIGN.md section 3):

- ``"<image> p x<f>"``: one probability image layer per requested scale ``f``, ``scale (1, px/f, px/f)``,
  ``translate (first, px/(2f), px/(2f))``. To bound memory on long stacks the maps are computed only for the
  first ``maps for N frames`` frames of the run (at most :data:`MAP_BUDGET_BYTES` in all); the localizations
  cover the whole frame range.
- ``"<image> localizations"``: a points layer ``(frame, y_nm, x_nm)`` with the whole table as ``features``,
  coloured by a chosen feature, updated while the run streams (at most every :data:`UPDATE_INTERVAL_S`).

A second run replaces these layers by name; a cancelled run keeps what it found.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from napari.layers import Image, Points
from napari.utils import progress
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...devices import available_devices
from ...errors import ParameterError
from ._common import (
    LAST_CHECKPOINT,
    CameraForm,
    LayerPicker,
    camera_geometry,
    get_last_checkpoint,
    layer_pixel_size,
    notify_error,
    notify_info,
    replace_layer,
    start_worker,
    upsert_image,
)

if TYPE_CHECKING:
    import napari

UPDATE_INTERVAL_S = 0.5
MAP_BUDGET_BYTES = 1 << 30
REPLACE_ABOVE = 50_000  # points: replace the layer instead of updating it in place above this many rows
DEFAULT_SCALES = (1, 2, 4, 8)
COLOR_FEATURES = ("photons", "z_nm", "prob", "uncertainty_nm", "bg")
BUNDLED = "bundled default model"
LAST = "last trained model"


def add_uncertainty(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``uncertainty_nm`` (rms of ``sigma_x_nm`` and ``sigma_y_nm``) when the model predicts sigmas."""
    if {"sigma_x_nm", "sigma_y_nm"} <= set(table.columns) and "uncertainty_nm" not in table.columns:
        sx = table["sigma_x_nm"].to_numpy(dtype=np.float64)
        sy = table["sigma_y_nm"].to_numpy(dtype=np.float64)
        table = table.assign(uncertainty_nm=np.sqrt((sx**2 + sy**2) / 2))
    return table


def camera_frames(layer: Any) -> Any:
    """The layer's data as a (T, Y, X) array, or a ParameterError naming what is wrong with it."""
    if layer is None:
        raise ParameterError("No image layer selected: open a camera stack (TIFF) or the sample data first.")
    if getattr(layer, "rgb", False):
        raise ParameterError(
            f"Layer '{layer.name}' is an RGB image; localization needs a single-channel stack."
        )
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ParameterError(
            f"Layer '{layer.name}' has {data.ndim} dimensions {tuple(data.shape)}; expected (frames, y, x)."
        )
    if 0 in data.shape:
        raise ParameterError(f"Layer '{layer.name}' is empty {tuple(data.shape)}.")
    return data


def _checkpoint_info(path: Path | None) -> dict[str, Any]:
    """Scales, camera and pixel size recorded in a checkpoint (None path: the bundled model)."""
    from ...checkpoints import load_model

    loaded = load_model(path)
    return {
        "scales": tuple(int(s) for s in loaded.model.scales),
        "camera": loaded.camera,
        "pixel_size_nm": loaded.pixel_size_nm,
    }


def _inference_job(
    checkpoint: Path | None,
    device: str,
    camera: Any,
    threshold: float,
    stack: Any,
    frames: range,
    n_map_frames: int,
    scales: tuple[int, ...],
    cancel: threading.Event,
):
    """Worker generator yielding ``("meta", dict)`` then ``("batch", BatchResult)`` per batch.

    Maps are requested only for the first ``n_map_frames`` frames of ``frames``. The predictor's data-mismatch
    warnings (``warnings.warn``) reach the user through the worker's ``warned`` signal.
    """
    from ...inference import Predictor

    predictor = Predictor(checkpoint, device=device, camera=camera, threshold=threshold)
    shape = tuple(int(s) for s in stack.data.shape[-2:])
    yield "meta", predictor.table_metadata(stack.pixel_size_nm, shape, len(frames))
    parts = [(frames[:n_map_frames], scales), (frames[n_map_frames:], ())] if scales else [(frames, ())]
    for part, part_scales in parts:
        if len(part) == 0:
            continue
        batches = predictor.iter_batches(stack, frames=part, scales=part_scales, cancel=cancel)
        try:
            for batch in batches:
                yield "batch", batch
                if cancel.is_set():
                    return
        finally:
            # close here, in the worker thread: the predictor's torch.inference_mode is thread-local state
            batches.close()


def _spin(lo: int, hi: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


class InferenceWidget(QWidget):
    """Localize emitters in the selected image layer with a checkpoint (dock widget)."""

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self.worker = None
        self._cancel = threading.Event()
        self._ckpt_cache: dict[tuple, dict[str, Any]] = {}
        self._camera_from_layer = False

        self.image = LayerPicker(viewer, Image)
        self.checkpoint = QComboBox()
        self.checkpoint.addItem(BUNDLED, None)
        self.browse = QPushButton("Browse…")
        self.camera = CameraForm()
        self.device = QComboBox()
        self.device.addItems(available_devices())
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 0.99)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(0.5)
        self.first = _spin(0, 0, 0)
        self.last = _spin(0, 0, 0)
        self.map_frames = _spin(0, 100_000, 10)
        self.map_frames.setToolTip("Probability maps are computed for this many frames from the first one.")
        self.scale_boxes: dict[int, QCheckBox] = {}
        self._scale_row = QHBoxLayout()
        self.color_by = QComboBox()
        self.color_by.addItems(COLOR_FEATURES[:3])
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        ckpt_row = QHBoxLayout()
        ckpt_row.addWidget(self.checkpoint, 1)
        ckpt_row.addWidget(self.browse)
        frames_row = QHBoxLayout()
        frames_row.addWidget(self.first)
        frames_row.addWidget(QLabel("to"))
        frames_row.addWidget(self.last)
        form = QFormLayout()
        form.addRow("image", self.image)
        form.addRow("model", ckpt_row)
        form.addRow("device", self.device)
        form.addRow("threshold", self.threshold)
        form.addRow("frames", frames_row)
        form.addRow("maps for", self.map_frames)
        form.addRow("scales", self._scale_row)
        form.addRow("colour by", self.color_by)
        camera_box = QGroupBox("Camera")
        QVBoxLayout(camera_box).addWidget(self.camera)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(camera_box)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addStretch(1)

        self.browse.clicked.connect(self._browse)
        self.checkpoint.currentIndexChanged.connect(self._checkpoint_changed)
        self.image.currentIndexChanged.connect(self._layer_changed)
        self.color_by.currentTextChanged.connect(self._recolor)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        LAST_CHECKPOINT.changed.connect(self._last_checkpoint_changed)
        self._set_scales(DEFAULT_SCALES)
        if get_last_checkpoint() is not None:
            self._last_checkpoint_changed(get_last_checkpoint(), select=False)
        self._checkpoint_changed()
        self._layer_changed()

    # ------------------------------------------------------------------------------------------- settings
    @property
    def running(self) -> bool:
        return self.worker is not None

    def set_checkpoint(self, path: str | Path | None) -> None:
        """Select a checkpoint file (None: the bundled model), adding it to the list if needed."""
        if path is None:
            self.checkpoint.setCurrentIndex(0)
            return
        path = Path(path)
        for i in range(self.checkpoint.count()):
            if self.checkpoint.itemData(i) == path and self.checkpoint.itemText(i) != LAST:
                self.checkpoint.setCurrentIndex(i)
                return
        self.checkpoint.addItem(path.name, path)
        self.checkpoint.setItemData(self.checkpoint.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        self.checkpoint.setCurrentIndex(self.checkpoint.count() - 1)

    def checkpoint_path(self) -> Path | None:
        return self.checkpoint.currentData()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint", "", "Checkpoints (*.pt);;All (*)")
        if path:
            self.set_checkpoint(path)

    def _last_checkpoint_changed(self, path: Path | None, select: bool = True) -> None:
        try:
            index = self.checkpoint.findText(LAST)
        except RuntimeError:  # widget deleted
            return
        if path is None:
            if index >= 0:
                self.checkpoint.removeItem(index)
            return
        if index < 0:
            self.checkpoint.insertItem(1, LAST, Path(path))
            index = 1
        else:
            self.checkpoint.setItemData(index, Path(path))
        self.checkpoint.setItemData(index, str(path), Qt.ItemDataRole.ToolTipRole)
        if select:
            self.checkpoint.setCurrentIndex(index)
            self._checkpoint_changed()

    def _checkpoint_changed(self, *_: Any) -> None:
        """Show the checkpoint's scales; take its camera unless the layer brought its own."""
        info = self._info(self.checkpoint_path())
        if info is None:
            return
        self._set_scales(info["scales"])
        if not self._camera_from_layer:
            self.camera.set_values(info["camera"], info["pixel_size_nm"])

    def _info(self, path: Path | None) -> dict[str, Any] | None:
        try:
            key = (path, path.stat().st_mtime if path is not None and path.exists() else None)
            if key not in self._ckpt_cache:
                self._ckpt_cache[key] = _checkpoint_info(path)
            return self._ckpt_cache[key]
        except Exception:  # reported when the user runs it
            return None

    def _set_scales(self, scales: tuple[int, ...]) -> None:
        if tuple(self.scale_boxes) == tuple(scales):
            return
        previous = {f for f, box in self.scale_boxes.items() if box.isChecked()}
        for box in self.scale_boxes.values():
            self._scale_row.removeWidget(box)
            box.deleteLater()
        self.scale_boxes = {}
        for f in scales:
            box = QCheckBox(f"{f}x")
            box.setChecked(f in previous if previous else f == max(scales))
            self._scale_row.addWidget(box)
            self.scale_boxes[f] = box

    def selected_scales(self) -> tuple[int, ...]:
        return tuple(f for f, box in self.scale_boxes.items() if box.isChecked())

    def _layer_changed(self, *_: Any) -> None:
        """Frame range and camera from the selected layer (its metadata, else the checkpoint's)."""
        layer = self.image.layer()
        if layer is None:
            return
        n = int(layer.data.shape[0]) if layer.data.ndim >= 3 and not layer.rgb else 1
        self.first.setRange(0, n - 1)
        self.last.setRange(0, n - 1)
        self.first.setValue(0)
        self.last.setValue(n - 1)
        meta = layer.metadata or {}
        self._camera_from_layer = bool(meta.get("camera"))
        if self._camera_from_layer:
            self.camera.set_values(meta.get("camera"), layer_pixel_size(layer))
        else:
            self._checkpoint_changed()
            self.camera.set_values(None, layer_pixel_size(layer))

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> None:
        """Start a run on the selected layer (errors become notifications)."""
        if self.running:
            return
        try:
            self._start()
        except Exception as exc:
            notify_error(exc, "Localization")

    def _start(self) -> None:
        from ...io.stacks import Stack

        layer = self.image.layer()
        data = camera_frames(layer)
        first, last = self.first.value(), self.last.value()
        if last < first:
            raise ParameterError(f"Frame range {first}-{last}: the last frame is before the first.")
        frames = range(first, last + 1)
        px = self.camera.pixel_size_nm()
        camera = self.camera.camera()
        scales = self.selected_scales()
        per_frame = sum(f * f for f in scales) * data.shape[1] * data.shape[2] * 4
        n_maps = min(self.map_frames.value(), len(frames), MAP_BUDGET_BYTES // max(per_frame, 1))
        if scales and n_maps < min(self.map_frames.value(), len(frames)):
            notify_info(f"Probability maps limited to {n_maps} frames to stay within memory.")
        if n_maps == 0:
            scales = ()
        self._place_camera_layer(layer, px)

        self._source = layer.name
        self._px = px
        self._frames = frames
        self._n_maps = n_maps
        self._tables: list[pd.DataFrame] = []
        self._n_locs = 0
        self._maps: dict[int, np.ndarray] = {}
        self._done_frames = 0
        self._last_flush = 0.0
        self._meta: dict[str, Any] = {"pixel_size_nm": px}
        self._t0 = time.perf_counter()
        self._cancel = threading.Event()
        self._progress = progress(total=len(frames), desc=f"Localizing {layer.name}")
        stack = Stack(data=data, pixel_size_nm=px, metadata=dict(layer.metadata or {}), path=None)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.summary.setText("Loading the model…")
        self.worker = start_worker(
            _inference_job,
            self.checkpoint_path(),
            self.device.currentText(),
            camera,
            self.threshold.value(),
            stack,
            frames,
            n_maps,
            scales,
            self._cancel,
            connect={"yielded": self._on_yield, "errored": self._on_error, "finished": self._on_finished},
        )

    def cancel(self) -> None:
        """Stop the run after the current batch; what was found so far stays."""
        if self.worker is not None:
            # the job sees the event after the current batch and ends normally in its own thread (no
            # worker.quit(): that would leave the generator suspended with thread-local torch state)
            self._cancel.set()
            self.summary.setText("Cancelling…")

    def _place_camera_layer(self, layer: Any, px: float) -> None:
        """Give a camera layer opened without a pixel size the nm geometry, so that results overlay it."""
        if layer.ndim == 3 and np.allclose(layer.scale, 1.0):
            layer.scale, layer.translate = camera_geometry(px)
            notify_info(
                f"Layer '{layer.name}' now has a {px:g} nm pixel size so that the results overlay it."
            )

    # ------------------------------------------------------------------------------------------ results
    def _on_yield(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "batch":
            self._on_batch(value)
        elif kind == "meta":
            self._meta = value

    def _on_batch(self, batch: Any) -> None:
        table = batch.table
        if len(table):
            self._tables.append(table)
            self._n_locs += len(table)
        frames = np.asarray(batch.frames)
        self._done_frames += len(frames)
        self._progress.update(len(frames))
        if batch.maps:
            self._show_maps(frames, batch.maps)
        now = time.perf_counter()
        if now - self._last_flush >= UPDATE_INTERVAL_S:
            self._show_points()
            self._last_flush = time.perf_counter()
            # do not spend more than ~1/5 of the time redrawing a big table
            self._last_flush += 4 * (self._last_flush - now)
        self._show_summary(running=self.running)
        if not self.running:  # a batch that arrived after the end of the run: show it too
            self._show_points()

    def _show_maps(self, frames: np.ndarray, maps: dict[int, np.ndarray]) -> None:
        rows = frames - self._frames.start
        for f, values in maps.items():
            f = int(f)
            name = f"{self._source} p x{f}"
            if f not in self._maps:
                self._maps[f] = np.zeros((self._n_maps, *values.shape[1:]), dtype=np.float32)
                scale, translate = camera_geometry(self._px, f)
                upsert_image(
                    self.viewer,
                    name,
                    self._maps[f],
                    scale=scale,
                    translate=(float(self._frames.start), *translate[1:]),
                    colormap="magma",
                    blending="additive",
                    contrast_limits=(0.0, 1.0),
                    metadata={"pixel_size_nm": self._px / f, "factor": f, "source": self._source},
                    units=("", "nm", "nm"),
                )
            keep = rows < self._n_maps
            self._maps[f][rows[keep]] = values[keep]
            if name in self.viewer.layers:
                self.viewer.layers[name].refresh()

    def table(self) -> pd.DataFrame:
        """All localizations of the current (or last) run."""
        if len(self._tables) > 1:
            self._tables = [pd.concat(self._tables, ignore_index=True)]
        return add_uncertainty(self._tables[0]) if self._tables else pd.DataFrame()

    def _show_points(self) -> None:
        table = self.table()
        if table.empty:
            return
        self._update_color_choices(table)
        feature = self.color_by.currentText()
        coords = table[["frame", "y_nm", "x_nm"]].to_numpy(dtype=np.float64)
        name = f"{self._source} localizations"
        style = {
            "face_color": feature if feature in table else "yellow",
            "face_colormap": "viridis",
            "size": self._px / 2,
            "border_width": 0,
            "units": ("", "nm", "nm"),
            "out_of_slice_display": False,
        }
        meta = {**self._meta, "source": self._source}
        existing = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(existing, Points) and len(table) <= REPLACE_ABOVE:
            existing.data = coords
            existing.features = table.reset_index(drop=True)
            existing.size = style["size"]
            existing.units = style["units"]
            existing.face_colormap = "viridis"
            existing.face_color = style["face_color"]
            existing.metadata.update(meta)
            existing.refresh_colors(update_color_mapping=True)
        else:
            new = Points(coords, features=table.reset_index(drop=True), name=name, metadata=meta, **style)
            replace_layer(self.viewer, new)

    def _update_color_choices(self, table: pd.DataFrame) -> None:
        choices = [c for c in COLOR_FEATURES if c in table.columns]
        if choices != [self.color_by.itemText(i) for i in range(self.color_by.count())]:
            current = self.color_by.currentText()
            self.color_by.blockSignals(True)
            self.color_by.clear()
            self.color_by.addItems(choices)
            self.color_by.setCurrentText(current if current in choices else choices[0])
            self.color_by.blockSignals(False)

    def _recolor(self, feature: str) -> None:
        name = f"{getattr(self, '_source', '')} localizations"
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(layer, Points) and feature in layer.features:
            layer.face_color = feature
            layer.refresh_colors(update_color_mapping=True)

    def _show_summary(self, running: bool) -> None:
        seconds = time.perf_counter() - self._t0
        rate = self._done_frames / seconds if seconds > 0 else 0.0
        state = "running" if running else ("cancelled" if self._cancel.is_set() else "done")
        self.summary.setText(
            f"{self._n_locs:,} localizations in {self._done_frames:,} of {len(self._frames):,} frames, "
            f"{seconds:.1f} s ({rate:.1f} frames/s), {state}."
        )

    def _on_error(self, exc: BaseException) -> None:
        notify_error(exc, "Localization")

    def _on_finished(self) -> None:
        try:
            self.worker = None
            self._show_summary(running=False)
            self._show_points()
        finally:
            self._progress.close()
            self.run_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
