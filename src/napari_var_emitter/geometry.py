"""Where a pixel grid sits in napari's world coordinates: nanometres from the image corner.

The corner of camera pixel (0, 0) is (0, 0) nm and the centre of pixel (row r, col c) is
``((c + 0.5) * px, (r + 0.5) * px)``. A grid of pixel size ``px / f`` (a map upsampled by ``f``, or a rendered
image of pixel size ``p``) therefore gets ``scale = px / f`` and ``translate = px / (2 f)`` on its two spatial
axes; leading axes (frames) get scale 1 and translate 0. Every layer placed with :func:`grid_geometry`
overlays every other one exactly.
"""

from __future__ import annotations

#: napari axis labels of a (frame, y, x) layer (napari's defaults, "-3", "-2", "-1", read like slider values)
AXIS_LABELS = ("frame", "y", "x")

#: napari units of a (frame, y, x) layer: nm in space, none for frames. Every layer the plugin makes or
#: places carries them; a layer left in napari's default "pixel" units makes napari drop units for all layers
#: ("Inconsistent units across layers")
AXIS_UNITS = ("", "nm", "nm")

#: pixel size assumed when neither the file, the user nor a checkpoint gives one
DEFAULT_PIXEL_SIZE_NM = 100.0


def grid_geometry(
    pixel_size_nm: float, factor: int = 1, leading_axes: int = 1
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(scale, translate)`` of a ``(*leading, y, x)`` grid with pixels of ``pixel_size_nm / factor`` nm."""
    step = float(pixel_size_nm) / factor
    return (1.0,) * leading_axes + (step, step), (0.0,) * leading_axes + (step / 2, step / 2)
