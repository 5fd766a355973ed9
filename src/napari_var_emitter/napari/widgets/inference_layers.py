"""Layers of an inference run, placed in nanometre world coordinates (:mod:`napari_var_emitter.geometry`).

- ``"<image> p x<f>"``: one probability image layer per scale ``f`` (``scale (1, px/f, px/f)``, ``translate
  (first frame, px/(2f), px/(2f))``), for the first frames of the run only (bounded memory).
- ``"<image> localizations"``: a points layer ``(frame, y_nm, x_nm)`` with the whole table as ``features``,
  coloured by a chosen feature.

A second run replaces these layers by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from napari.layers import Points

from ...geometry import AXIS_LABELS, AXIS_UNITS, grid_geometry
from ._common import notify_info, replace_layer, upsert_image
from .inference_run import RunState

if TYPE_CHECKING:
    import napari

REPLACE_ABOVE = 50_000  # points: replace the layer instead of updating it in place above this many rows


def map_layer_name(source: str, factor: int) -> str:
    return f"{source} p x{factor}"


def points_layer_name(source: str) -> str:
    return f"{source} localizations"


def place_camera_layer(layer: Any, pixel_size_nm: float) -> None:
    """Give a camera layer opened without a pixel size the nm geometry, so that results overlay it, and nm
    units (the results' own: napari drops units for every layer when they differ)."""
    if layer.ndim != 3:
        return
    if np.allclose(layer.scale, 1.0):
        layer.scale, layer.translate = grid_geometry(pixel_size_nm)
        notify_info(
            f"Layer '{layer.name}' now has a {pixel_size_nm:g} nm pixel size so that the results overlay it."
        )
    layer.units = AXIS_UNITS


def show_maps(viewer: napari.viewer.Viewer, run: RunState, frames: np.ndarray, maps: dict) -> None:
    """Write a batch's probability maps into the run's map layers (created on the first batch)."""
    rows = frames - run.frames.start
    for f, values in maps.items():
        f = int(f)
        name = map_layer_name(run.source, f)
        if f not in run.maps:
            run.maps[f] = np.zeros((run.n_map_frames, *values.shape[1:]), dtype=np.float32)
            scale, translate = grid_geometry(run.pixel_size_nm, f)
            upsert_image(
                viewer,
                name,
                run.maps[f],
                scale=scale,
                translate=(float(run.frames.start), *translate[1:]),
                colormap="magma",
                blending="additive",
                contrast_limits=(0.0, 1.0),
                metadata={"pixel_size_nm": run.pixel_size_nm / f, "factor": f, "source": run.source},
                units=AXIS_UNITS,
                axis_labels=AXIS_LABELS,
            )
        keep = rows < run.n_map_frames
        run.maps[f][rows[keep]] = values[keep]
        if name in viewer.layers:
            viewer.layers[name].refresh()


def show_points(viewer: napari.viewer.Viewer, run: RunState, table: pd.DataFrame, feature: str) -> None:
    """Show the run's table as its points layer, coloured by ``feature``."""
    if table.empty:
        return
    coords = table[["frame", "y_nm", "x_nm"]].to_numpy(dtype=np.float64)
    name = points_layer_name(run.source)
    style = {
        "face_color": feature if feature in table else "yellow",
        "face_colormap": "viridis",
        "size": run.pixel_size_nm / 2,
        "border_width": 0,
        "units": AXIS_UNITS,
        "axis_labels": AXIS_LABELS,
        "out_of_slice_display": False,
    }
    meta = {**run.meta, "source": run.source}
    existing = viewer.layers[name] if name in viewer.layers else None
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
        replace_layer(viewer, new)


def recolor(viewer: napari.viewer.Viewer, source: str, feature: str) -> None:
    """Colour the source's localizations by ``feature``."""
    name = points_layer_name(source)
    layer = viewer.layers[name] if name in viewer.layers else None
    if isinstance(layer, Points) and feature in layer.features:
        layer.face_color = feature
        layer.refresh_colors(update_color_mapping=True)
