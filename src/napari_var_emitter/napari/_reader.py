"""npe2 readers: camera stacks (TIFF / OME-TIFF) as image layers, localization tables as points layers.

World coordinates are nm from the image corner (:func:`napari_var_emitter.geometry.grid_geometry`): a stack
gets ``scale=(1, px, px)`` and ``translate=(0, px/2, px/2)``; a points layer holds ``(frame, y_nm, x_nm)``
with the table as ``features``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..geometry import AXIS_LABELS, AXIS_UNITS, DEFAULT_PIXEL_SIZE_NM, grid_geometry
from ..io.stacks import contrast_limits, read_stack
from ..io.tables import is_decode_file, read_table

LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]

_TIFF_SUFFIXES = (".tif", ".tiff")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _paths(path: str | Sequence[str]) -> list[str]:
    return [str(path)] if isinstance(path, (str, Path)) else [str(p) for p in path]


def _is_tiff(path: str) -> bool:
    """A TIFF by name; by content too unless empty (an empty .tif gets a reader that says it is empty)."""
    p = Path(path)
    if p.suffix.lower() not in _TIFF_SUFFIXES or not p.is_file():
        return False
    with open(p, "rb") as fh:
        head = fh.read(4)
    return not head or head in _TIFF_MAGIC


# --------------------------------------------------------------------------------------------- stacks


def get_stack_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """Return a reader for TIFF / OME-TIFF stacks (or a list of them), else None."""
    paths = _paths(path)
    if not paths or not all(_is_tiff(p) for p in paths):
        return None
    return read_stack_layers


def read_stack_layers(path: str | Sequence[str]) -> list[LayerData]:
    """Image layer data for each stack: lazy dask data, nm scale/translate, sampled contrast limits."""
    return [_stack_layer(p) for p in _paths(path)]


def _stack_layer(path: str) -> LayerData:
    stack = read_stack(path)  # raises InputFileError with a clear message; napari shows it
    px = stack.pixel_size_nm
    scale, translate = grid_geometry(px)
    kwargs = {
        "name": Path(path).name.split(".")[0],
        "scale": scale,
        "translate": translate,
        "units": AXIS_UNITS,
        "axis_labels": AXIS_LABELS,
        "contrast_limits": contrast_limits(stack.data),
        "colormap": "gray",
        "metadata": {
            "pixel_size_nm": px,
            "camera": dict(stack.camera),
            "path": str(stack.path),
            "stack": dict(stack.metadata),
        },
    }
    return stack.data, kwargs, "image"


# --------------------------------------------------------------------------------------------- tables


def get_table_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """Return a reader for localization tables (.csv ThunderSTORM, .h5/.hdf5 Picasso, DECODE or ours) and for
    ground-truth emitter HDF5 files; None for anything else."""
    paths = _paths(path)
    if not paths or not all(_table_kind(p) for p in paths):
        return None
    return read_table_layers


def read_table_layers(path: str | Sequence[str]) -> list[LayerData]:
    """Points layer data for each table (or ground-truth emitter file)."""
    layers = []
    for p in _paths(path):
        if _table_kind(p) == "emitters":
            df = importlib.import_module("napari_var_emitter.io.emitters").read_emitters(p)
            layers.append(table_to_points(df, name=f"{Path(p).stem} ground truth", path=p))
        else:
            layers.append(table_to_points(read_table(p), name=Path(p).stem, path=p))
    return layers


def _table_kind(path: str) -> str | None:
    """'table', 'emitters' or None, from the extension and a cheap look at the content.

    CSV files without nm positions in their header are declined (napari's own CSV reader may want them);
    any other HDF5 file is a 'table', so that :func:`read_table` names what it lacks in one line.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        return None
    if suffix == ".csv":
        with open(p, "rb") as fh:
            head = fh.readline(4096).decode("utf-8", errors="replace")
        # an empty CSV is ours to refuse with a clear message; a CSV of other things is not ours
        return "table" if not head.strip() or any(k in head for k in ("x [nm]", "x_nm")) else None
    if suffix not in (".h5", ".hdf5"):
        return None
    with open(p, "rb") as fh:
        if fh.read(8) != _HDF5_MAGIC:
            return None
    import h5py

    try:
        with h5py.File(p, "r") as f:
            if "locs" in f or is_decode_file(f):
                return "table"
            if "positions" in f and importlib.util.find_spec("napari_var_emitter.io.emitters") is not None:
                return "emitters"
    except OSError:
        return None
    # an HDF5 file of something else: napari has no reader for HDF5, so ours says in one line what it is not
    return "table"


def table_to_points(df: pd.DataFrame, name: str, path: str | None = None) -> LayerData:
    """A points layer (frame, y_nm, x_nm) with the table as features and its attrs in metadata."""
    px = float(df.attrs.get("pixel_size_nm") or DEFAULT_PIXEL_SIZE_NM)
    data = np.column_stack(
        [df["frame"].to_numpy(np.float64), df["y_nm"].to_numpy(np.float64), df["x_nm"].to_numpy(np.float64)]
    ).reshape(-1, 3)
    features = df.reset_index(drop=True)
    features.attrs = {}
    kwargs = {
        "name": name,
        "features": features,
        "size": px / 2,
        "axis_labels": AXIS_LABELS,
        "units": AXIS_UNITS,
        "face_color": "transparent",
        "border_color": "yellow",
        "border_width": 0.15,
        "out_of_slice_display": False,
        "metadata": {"pixel_size_nm": px, "table_attrs": dict(df.attrs), "path": path},
    }
    return data, kwargs, "points"
