"""npe2 writers: a points layer to a ThunderSTORM CSV or a Picasso-compatible HDF5 table.

Positions come from the layer's coordinates in world units (nm from the image corner: ``data * scale +
translate``), so moved or hand-drawn points are saved where they are shown; the other columns come from the
layer's ``features`` when it has them. The pixel size comes from the layer metadata when present.

Overwriting: napari's save dialog asks before replacing the file the user picked, so these writers replace
that file; they never silently replace anything the dialog did not ask about: an HDF5 table's ``.yaml``
sidecar is replaced only together with its ``.h5``, never when it lies there alone. Folder and writability
are checked before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..io.outputs import check_output_file
from ..io.tables import json_metadata, picasso_sidecar, write_table

_MAX_ATTR_VALUES = 10_000  # larger arrays in metadata (e.g. a per-pixel background) are not saved


def points_to_table(data: Any, attributes: dict[str, Any]) -> pd.DataFrame:
    """The table model from a points layer's data (…, frame, y, x) and its attributes (features, metadata)."""
    coords = np.asarray(data, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise ParameterError(f"points data must be (N, 2) or (N, 3+) coordinates, got shape {coords.shape}")
    ndim = coords.shape[1]
    scale = np.asarray(attributes.get("scale", np.ones(ndim)), dtype=np.float64)[-ndim:]
    translate = np.asarray(attributes.get("translate", np.zeros(ndim)), dtype=np.float64)[-ndim:]
    world = coords * scale + translate
    features = attributes.get("features")
    if isinstance(features, pd.DataFrame) and len(features) == len(world) and len(features.columns):
        table = features.reset_index(drop=True).copy()
    else:
        table = pd.DataFrame(index=pd.RangeIndex(len(world)))
    table["x_nm"] = world[:, -1]
    table["y_nm"] = world[:, -2]
    if ndim >= 3:
        table["frame"] = np.rint(world[:, -3]).astype(np.int64)
    elif "frame" not in table:
        table["frame"] = 0
    metadata = attributes.get("metadata") or {}
    attrs = {k: v for k, v in (metadata.get("table_attrs") or {}).items() if _storable(v)}
    if metadata.get("pixel_size_nm"):
        attrs["pixel_size_nm"] = float(metadata["pixel_size_nm"])
    attrs.setdefault("source", f"napari points layer {attributes.get('name', '')}".strip())
    table.attrs = attrs
    return table


def _storable(value: Any) -> bool:
    """Whether a metadata value can be kept in a table file (JSON, and not a large array)."""
    if hasattr(value, "__array__") and np.asarray(value).size > _MAX_ATTR_VALUES:
        return False
    try:
        json_metadata(value)
    except (TypeError, ValueError):
        return False
    return True


def write_points_csv(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Save a points layer as a ThunderSTORM CSV; returns the written path."""
    check_output_file(path, overwrite=True)  # the save dialog confirmed replacing an existing file
    write_table(points_to_table(data, attributes), path)
    return [str(path)]


def write_points_hdf5(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Save a points layer as HDF5 (Picasso ``locs`` + ``.yaml`` sidecar + nm table); returns both paths."""
    sidecar = picasso_sidecar(path)
    check_output_file(
        path,
        overwrite=Path(path).is_file(),  # the dialog confirmed the .h5; its sidecar goes with it
        companions=[sidecar],
        hint=f"{sidecar.name} would be replaced although it belongs to no {Path(path).name}; move it first",
    )
    write_table(points_to_table(data, attributes), path)
    return [str(path), str(picasso_sidecar(path))]
