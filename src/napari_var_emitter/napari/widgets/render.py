"""Render dock widget (magicgui): a super-resolution image layer from a points layer of localizations.

The image lands in the same nanometre world coordinates as the camera layer: pixel ``(0, 0)`` covers
``[0, p)`` nm, so the layer gets ``scale (p, p)`` and ``translate (p/2, p/2)`` (``RenderedImage.napari_*``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, create_widget
from napari.layers import Points

from ...errors import ParameterError
from ...geometry import AXIS_UNITS
from ...rendering import METHODS
from ._common import keep_choices_in_sync, notify_error, start_worker, upsert_image

if TYPE_CHECKING:
    import napari


def points_table(layer: Any) -> pd.DataFrame:
    """The layer's localizations as a table: its features, with ``frame/y_nm/x_nm`` from world coordinates."""
    if layer is None:
        raise ParameterError("No points layer selected: run the localization or open a table first.")
    if len(layer.data) == 0:
        raise ParameterError(f"Points layer '{layer.name}' is empty.")
    world = np.asarray(layer.data, dtype=np.float64) * layer.scale + layer.translate
    table = layer.features.reset_index(drop=True).copy()
    table["y_nm"] = world[:, -2]
    table["x_nm"] = world[:, -1]
    if world.shape[1] >= 3:
        table["frame"] = np.rint(world[:, -3]).astype(np.int64)
    return table


def _shape_nm(viewer: napari.viewer.Viewer, layer: Any) -> tuple[float, float] | None:
    """Field of view (y, x) in nm: the source image's, when the points layer names one."""
    source = (layer.metadata or {}).get("source")
    if source in viewer.layers:
        image = viewer.layers[source]
        size = np.asarray(image.data.shape[-2:]) * np.asarray(image.scale[-2:])
        return float(size[0]), float(size[1])
    return None


def _render_job(table: pd.DataFrame, pixel_size_nm: float, method: str, shape_nm: Any):
    from ...rendering import render

    return render(table, pixel_size_nm=pixel_size_nm, method=method, shape_nm=shape_nm)


class RenderWidget(Container):
    """Render a points layer as a histogram or Gaussian super-resolution image (dock widget)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.worker = None
        self._name = ""
        self.points = create_widget(annotation=Points, name="points", label="points")
        self.pixel_size = FloatSpinBox(
            name="pixel_size", label="pixel size (nm)", min=0.5, max=1000.0, step=1.0, value=10.0
        )
        self.method = ComboBox(name="method", label="method", choices=METHODS)
        self.render_button = PushButton(name="render_button", text="Render")
        self.status = Label(name="status", value="")
        super().__init__(widgets=[self.points, self.pixel_size, self.method, self.render_button, self.status])
        keep_choices_in_sync(self, viewer)
        self.render_button.clicked.connect(self.render)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def render(self, *_: Any) -> None:
        """Render the selected points layer in a background thread (errors become notifications)."""
        if self.running:
            return
        try:
            layer = self.points.value
            table = points_table(layer)
            p = float(self.pixel_size.value)
            self._name = f"{layer.name} render"
        except Exception as exc:
            notify_error(exc, "Rendering")
            return
        self.render_button.enabled = False
        self.status.value = f"Rendering {len(table):,} localizations…"
        self.worker = start_worker(
            _render_job,
            table,
            p,
            self.method.value,
            _shape_nm(self.viewer, layer),
            connect={"returned": self._show, "errored": self._error, "finished": self._finished},
        )

    def _show(self, rendered: Any) -> None:
        image = np.asarray(rendered.image, dtype=np.float32)
        p = float(rendered.pixel_size_nm)
        hi = float(np.percentile(image[image > 0], 99.5)) if np.any(image > 0) else 1.0
        upsert_image(
            self.viewer,
            self._name,
            image,
            scale=rendered.napari_scale,
            translate=rendered.napari_translate,
            colormap="hot",
            contrast_limits=(0.0, max(hi, 1e-6)),
            metadata={"pixel_size_nm": p},
            units=AXIS_UNITS[1:],
        )
        self.status.value = f"{self._name}: {image.shape[1]} x {image.shape[0]} pixels of {p:g} nm."

    def _error(self, exc: BaseException) -> None:
        notify_error(exc, "Rendering")
        self.status.value = ""

    def _finished(self) -> None:
        self.worker = None
        self.render_button.enabled = True
