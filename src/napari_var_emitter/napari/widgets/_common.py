"""Shared pieces of the dock widgets: notifications, thread workers, layer choosers kept in sync, layer
updates, and the "last trained checkpoint" registry that links the training widget to the inference widget."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal
from superqt.utils import FunctionWorker, GeneratorWorker

from ...errors import VarEmitterError

if TYPE_CHECKING:
    import napari
    from magicgui.widgets import Container

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------------- workers
class _StoppableFunctionWorker(FunctionWorker):
    """A function worker whose ``quit`` (napari's cancel, e.g. on closing the window) calls ``on_quit``."""

    on_quit: Callable[[], Any] | None = None

    def quit(self) -> None:
        if self.on_quit is not None:
            self.on_quit()
        super().quit()


class _StoppableGeneratorWorker(GeneratorWorker):
    """A generator worker whose ``quit`` calls ``on_quit`` instead of abandoning the generator mid-way."""

    on_quit: Callable[[], Any] | None = None

    def quit(self) -> None:
        if self.on_quit is None:
            super().quit()
        else:  # the job ends on its own, in its own thread (it holds thread-local torch state)
            self.on_quit()


def start_worker(
    func: Callable,
    *args: Any,
    connect: dict[str, Callable] | None = None,
    on_quit: Callable[[], Any] | None = None,
    **kwargs: Any,
):
    """Run ``func`` (a function or a generator) in a napari thread worker, listed in napari's activity.

    Errors and warnings reach the user once, as our own notifications (connect ``errored``); warnings from the
    job become napari warnings. ``on_quit`` replaces the worker's abort when napari cancels it (closing the
    window while it runs): use it to ask the job to stop cleanly.
    """
    cls = _StoppableGeneratorWorker if inspect.isgeneratorfunction(func) else _StoppableFunctionWorker
    worker = thread_worker(func, start_thread=False, worker_class=cls, ignore_errors=True)(*args, **kwargs)
    worker.on_quit = on_quit
    worker.warned.connect(lambda args: show_warning(str(args[0])))
    for signal, callback in (connect or {}).items():
        getattr(worker, signal).connect(callback)
    worker.start()
    return worker


class Liveness:
    """Whether a widget's Qt side still exists: signals queued before napari closed may arrive after."""

    def __init__(self, container: Container) -> None:
        self.alive = True
        container.native.destroyed.connect(self._gone)

    def _gone(self, *_: Any) -> None:
        self.alive = False


# ------------------------------------------------------------------------------------------- layer choosers
def keep_choices_in_sync(container: Container, viewer: napari.viewer.Viewer) -> None:
    """Refresh the container's layer choosers when layers are added, removed, moved or renamed.

    napari does this for docked widgets; doing it here also covers a widget that is not (yet) docked.
    """

    def refresh(event: Any = None) -> None:
        try:
            container.reset_choices()
        except RuntimeError:  # the Qt widgets are gone (viewer closing)
            pass

    def watch(event: Any) -> None:
        event.value.events.name.connect(refresh)

    events = viewer.layers.events
    for event in (events.inserted, events.removed, events.moved):
        event.connect(refresh)
    events.inserted.connect(watch)
    for layer in viewer.layers:
        layer.events.name.connect(refresh)


# -------------------------------------------------------------------------------------------- layer placement
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
    if name in viewer.layers and isinstance(viewer.layers[name], Image):
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
