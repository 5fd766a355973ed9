"""Shared pieces of the dock widgets: layer pickers, the camera form, layer placement, notifications, and the
"last trained checkpoint" registry that links the training widget to the inference widget."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QWidget

from ...errors import VarEmitterError

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)

CAMERA_TYPES = ("emccd", "scmos", "ideal")
DEFAULT_PIXEL_SIZE_NM = 100.0


# --------------------------------------------------------------------------------------------------- registry
class _CheckpointRegistry:
    """Holds the checkpoint most recently produced by the training widget; ``changed`` emits its path."""

    changed = Signal(object)

    def __init__(self) -> None:
        self.path: Path | None = None

    def set(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.changed.emit(self.path)


LAST_CHECKPOINT = _CheckpointRegistry()


def set_last_checkpoint(path: str | Path | None) -> None:
    """Make ``path`` the "last trained model" offered by every inference widget."""
    LAST_CHECKPOINT.set(path)


def get_last_checkpoint() -> Path | None:
    """The checkpoint set by :func:`set_last_checkpoint` (None before any training)."""
    return LAST_CHECKPOINT.path


# ---------------------------------------------------------------------------------------------- notifications
def user_message(exc: BaseException, what: str) -> str:
    """One line for the user: the message of our own errors, else ``what failed: Type: message``."""
    if isinstance(exc, VarEmitterError):
        return str(exc)
    return f"{what} failed: {type(exc).__name__}: {exc}"


def notify_error(exc: BaseException | str, what: str = "The operation") -> None:
    """Show an error as a napari notification (never a traceback dialog); log the traceback for debugging."""
    if isinstance(exc, BaseException):
        log.debug("%s failed", what, exc_info=exc)
        show_error(user_message(exc, what))
    else:
        show_error(exc)


def notify_info(message: str) -> None:
    show_info(message)


def notify_warning(message: str) -> None:
    show_warning(message)


def start_worker(func: Callable, *args: Any, connect: dict[str, Callable] | None = None, **kwargs: Any):
    """Start ``func`` (a function or a generator) in a thread worker registered with napari's task list.

    Uses superqt's plain worker classes, so that errors and warnings reach the user once, as our own
    notifications (napari's workers would also relay them with a traceback); warnings are shown as
    napari warnings.
    """
    import inspect

    from superqt.utils import FunctionWorker, GeneratorWorker

    cls = GeneratorWorker if inspect.isgeneratorfunction(func) else FunctionWorker
    worker = create_worker(func, *args, _worker_class=cls, _ignore_errors=True, **kwargs)
    worker.warned.connect(lambda args: show_warning(str(args[0])))
    for signal, callback in (connect or {}).items():
        getattr(worker, signal).connect(callback)
    worker.start()
    return worker


# ----------------------------------------------------------------------------------------------- layer picker
class LayerPicker(QComboBox):
    """A combo box listing the viewer's layers of one type, kept in sync with the layer list."""

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent: QWidget | None = None):
        super().__init__(parent)
        self._viewer = viewer
        self._type = layer_type
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved, events.changed):
            event.connect(self._refresh)
        events.inserted.connect(self._watch_name)
        for layer in viewer.layers:
            layer.events.name.connect(self._refresh)
        self._refresh()

    def _watch_name(self, event: Any) -> None:
        event.value.events.name.connect(self._refresh)

    def _refresh(self, event: Any = None) -> None:
        try:
            current = self.currentText()
        except RuntimeError:  # the Qt widget is gone (viewer closing)
            return
        names = [layer.name for layer in self._viewer.layers if isinstance(layer, self._type)]
        if names == [self.itemText(i) for i in range(self.count())]:
            return
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        self.blockSignals(False)
        active = self._viewer.layers.selection.active
        if current in names:
            self.setCurrentText(current)
        elif active is not None and active.name in names:
            self.setCurrentText(active.name)
        elif names:
            self.setCurrentIndex(len(names) - 1)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self) -> Any | None:
        """The selected layer, or None."""
        name = self.currentText()
        return self._viewer.layers[name] if name and name in self._viewer.layers else None

    def set_layer(self, name: str) -> None:
        self.setCurrentText(name)


# ----------------------------------------------------------------------------------------------- camera form
def _spin(value: float, lo: float, hi: float, decimals: int = 2, step: float = 1.0, suffix: str = ""):
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    return box


class CameraForm(QWidget):
    """Camera parameters (ADU -> photons) and the pixel size, as a form."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.type = QComboBox()
        self.type.addItems(CAMERA_TYPES)
        self.baseline = _spin(100.0, 0.0, 1e5, 1, 10.0, " ADU")
        self.e_per_adu = _spin(1.0, 1e-3, 1e3, 3, 0.1, " e-/ADU")
        self.em_gain = _spin(1.0, 1.0, 1e4, 1, 10.0)
        self.qe = _spin(1.0, 0.01, 1.0, 2, 0.05)
        self.pixel_size = _spin(DEFAULT_PIXEL_SIZE_NM, 1.0, 1e5, 1, 10.0, " nm")
        self._extra: dict[str, Any] = {}
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("camera", self.type)
        form.addRow("baseline", self.baseline)
        form.addRow("sensitivity", self.e_per_adu)
        form.addRow("EM gain", self.em_gain)
        form.addRow("QE", self.qe)
        form.addRow("pixel size", self.pixel_size)
        self.type.currentTextChanged.connect(self._type_changed)
        self._type_changed(self.type.currentText())

    def _type_changed(self, kind: str) -> None:
        self.em_gain.setEnabled(kind == "emccd")

    def set_values(self, camera: Any = None, pixel_size_nm: float | None = None) -> None:
        """Fill the form from a camera (dict or pydantic model) and/or a pixel size; missing keys are kept."""
        if camera is not None:
            values = dict(camera.model_dump() if hasattr(camera, "model_dump") else camera)
            if values.get("type") in CAMERA_TYPES:
                self.type.setCurrentText(values["type"])
            for key in ("baseline", "e_per_adu", "em_gain", "qe"):
                if values.get(key) is not None:
                    getattr(self, key).setValue(float(values[key]))
            self._extra = {
                k: v for k, v in values.items() if k not in {"type", "baseline", "e_per_adu", "em_gain", "qe"}
            }
        if pixel_size_nm:
            self.pixel_size.setValue(float(pixel_size_nm))

    def camera_dict(self) -> dict[str, Any]:
        kind = self.type.currentText()
        return {
            **self._extra,
            "type": kind,
            "baseline": self.baseline.value(),
            "e_per_adu": self.e_per_adu.value(),
            "em_gain": self.em_gain.value() if kind == "emccd" else 1.0,
            "qe": self.qe.value(),
        }

    def camera(self):
        """The form as a validated ``CameraConfig``."""
        from ...camera import CameraConfig

        return CameraConfig.model_validate(self.camera_dict())

    def pixel_size_nm(self) -> float:
        return float(self.pixel_size.value())


# -------------------------------------------------------------------------------------------- layer placement
def camera_geometry(pixel_size_nm: float, factor: int = 1) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(scale, translate)`` of a (frame, y, x) map upsampled by ``factor`` (DESIGN.md section 3)."""
    step = pixel_size_nm / factor
    return (1.0, step, step), (0.0, step / 2, step / 2)


def layer_pixel_size(layer: Any, fallback: float | None = None) -> float | None:
    """Pixel size of an image layer: its metadata, else its scale when not 1, else ``fallback``."""
    size = (layer.metadata or {}).get("pixel_size_nm")
    if size:
        return float(size)
    if not np.isclose(layer.scale[-1], 1.0):
        return float(layer.scale[-1])
    return fallback


def upsert_image(viewer: napari.viewer.Viewer, name: str, data: Any, **kwargs: Any):
    """Update the image layer called ``name`` in place (data, scale, translate, ...) or add it."""
    if name in viewer.layers and viewer.layers[name]._type_string == "image":
        layer = viewer.layers[name]
        if layer.data.ndim != np.ndim(data):
            viewer.layers.remove(layer)
        else:
            layer.data = data
            for key in ("scale", "translate", "metadata"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            if "contrast_limits" in kwargs:
                layer.contrast_limits = kwargs["contrast_limits"]
            return layer
    return viewer.add_image(data, name=name, **kwargs)


def replace_layer(viewer: napari.viewer.Viewer, new: Any) -> Any:
    """Put ``new`` where the layer of the same name is (keeping its place and visibility), or append it.

    Replacing a large points layer is several times faster than setting its data, features and colours.
    """
    if new.name in viewer.layers:
        old = viewer.layers[new.name]
        index = viewer.layers.index(old)
        new.visible = old.visible
        new.opacity = old.opacity
        viewer.layers.remove(old)
        viewer.layers.insert(index, new)
    else:
        viewer.layers.append(new)
    return new
