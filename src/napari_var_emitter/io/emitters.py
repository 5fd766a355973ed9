"""Ground-truth emitter files (HDF5, the seed format) for training and evaluation.

Layout (see docs/file-formats.md, "Ground-truth emitter files")::

    positions   float64 [N, 3]   x, y, z in nm (x, y from the image corner)
    photons     float64 [N]      photons of the emitter in that frame
    frame       int64   [N]      0-based frame index (absent in single-image seed files: all 0)
    <column>    [N]              any further table column: id, bg, sigma_x_nm, sigma_y_nm, crlb_x_nm, ...
    background  float32 (T,) or (T, H, W) photons/pixel (optional; seed files may hold [N] per emitter)
    image       (H, W) or (T, H, W) camera frames (optional, "labelled data")
    attrs       format, format_version, software_version, pixel_size_nm, frame_size, n_frames, metadata (JSON)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import InputFileError, ParameterError
from .atomic import atomic_path
from .jsonable import json_default

FORMAT = "napari-var-emitter-emitters"
FORMAT_VERSION = 1
_CORE = ("positions", "photons", "frame", "background", "image")
_COLUMN_ORDER = (
    "frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "sigma_x_nm", "sigma_y_nm",
    "crlb_x_nm", "crlb_y_nm", "crlb_z_nm", "crlb_photons", "id",
)  # fmt: skip


class FrozenArray:
    """A read-only array kept in ``DataFrame.attrs``.

    pandas compares and deep-copies ``attrs`` on many operations (printing, concat, sort); a bare ndarray
    there breaks ``==`` and copies the data each time. This wrapper compares by identity, is not copied,
    and behaves as an array wherever numpy is asked (``np.asarray(df.attrs["background"])``).
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = np.array(array, copy=True)
        self.array.setflags(write=False)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __deepcopy__(self, memo: dict) -> FrozenArray:
        return self

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, item: Any) -> Any:
        return self.array[item]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __repr__(self) -> str:
        return f"FrozenArray(shape={self.shape}, dtype={self.dtype})"


def write_emitters(
    df: pd.DataFrame,
    path: str | os.PathLike,
    background: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
    frames: np.ndarray | None = None,
) -> Path:
    """Write a ground-truth table (columns ``frame, x_nm, y_nm[, z_nm], photons`` and any others) atomically.

    ``metadata`` (JSON-serialisable; ``pixel_size_nm``, ``frame_size``, ``n_frames`` also become attributes;
    defaults come from ``df.attrs``); ``background`` (T,) or (T, H, W) photons/pixel; ``frames`` optional
    camera frames stored as ``image`` (a labelled training file).
    """
    path = Path(path)
    missing = [c for c in ("frame", "x_nm", "y_nm", "photons") if c not in df.columns]
    if missing:
        raise ParameterError(f"write_emitters({path}): the table lacks columns {missing}")
    n = len(df)
    z = df["z_nm"].to_numpy(np.float64) if "z_nm" in df.columns else np.zeros(n)
    positions = np.stack([df["x_nm"].to_numpy(np.float64), df["y_nm"].to_numpy(np.float64), z], axis=1)
    photons = df["photons"].to_numpy(np.float64)
    frame = df["frame"].to_numpy()
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(photons))):
        raise ParameterError(f"write_emitters({path}): positions and photons must be finite")
    if n and (not np.all(np.equal(np.mod(frame, 1), 0)) or frame.min() < 0):
        raise ParameterError(f"write_emitters({path}): frame must hold non-negative integers")

    meta = {k: v for k, v in df.attrs.items() if k in ("pixel_size_nm", "frame_size", "n_frames")}
    meta.update(metadata or {})
    try:
        meta_json = json.dumps(meta, default=json_default)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"write_emitters({path}): metadata is not JSON-serialisable ({exc})") from None

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(format=FORMAT, format_version=FORMAT_VERSION, software_version=__version__)
        f.attrs["metadata"] = meta_json
        for key in ("pixel_size_nm", "n_frames"):
            if meta.get(key) is not None:
                f.attrs[key] = meta[key]
        if meta.get("frame_size") is not None:
            f.attrs["frame_size"] = np.asarray(meta["frame_size"], dtype=np.int64)
        f.create_dataset("positions", data=positions)
        f.create_dataset("photons", data=photons)
        f.create_dataset("frame", data=frame.astype(np.int64))
        for col in df.columns:
            if col in ("frame", "x_nm", "y_nm", "z_nm", "photons") or col in _CORE:
                continue
            values = df[col].to_numpy()
            if values.dtype.kind in "biuf":
                f.create_dataset(str(col), data=values)
        if background is not None:
            f.create_dataset("background", data=np.asarray(background, dtype=np.float32), compression="gzip")
        if frames is not None:
            f.create_dataset("image", data=np.asarray(frames), compression="gzip")
    return path


def read_emitters(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ground-truth emitter file as a table (table units: nm, 0-based frames; sorted by frame).

    ``df.attrs`` holds ``pixel_size_nm``, ``frame_size``, ``n_frames`` and ``metadata`` when the file has
    them, and ``background`` (per frame or per pixel) when present. Per-emitter background of seed files
    (``background`` [N]) becomes the ``bg`` column. A ``.csv`` (a localization table, see io.tables) is
    accepted too.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    df, _ = _read(path, with_image=False)
    return df


def read_labelled(path: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a labelled file: its camera frames ``image`` as (T, H, W) and the ground-truth table."""
    path = Path(path)
    df, image = _read(path, with_image=True)
    if image is None:
        raise InputFileError(path, "no 'image' dataset: this is an emitter file without camera frames")
    return image, df


def _read(path: Path, with_image: bool) -> tuple[pd.DataFrame, np.ndarray | None]:
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(path, f"not an HDF5 file ({exc})") from None
    with f:
        for key in ("positions", "photons"):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise InputFileError(
                    path, f"missing dataset '{key}' (an emitter file needs positions and photons)"
                )
        positions = _numeric(f, "positions", path)
        if positions.ndim != 2 or positions.shape[1] not in (2, 3):
            raise InputFileError(
                path, f"'positions' must be [N, 3] (x, y, z in nm), got shape {positions.shape}"
            )
        n = len(positions)
        photons = _vector(f, "photons", n, path)
        frame = _vector(f, "frame", n, path) if "frame" in f else np.zeros(n)
        if not np.all(np.isfinite(positions)) or not np.all(np.isfinite(photons)):
            raise InputFileError(path, "'positions' or 'photons' hold non-finite values (NaN/inf)")
        if n and (not np.all(np.isfinite(frame)) or np.any(frame < 0) or np.any(frame != np.round(frame))):
            raise InputFileError(path, "'frame' must hold non-negative integers (0-based frame indices)")

        attrs = _file_attrs(f, path)
        z = positions[:, 2] if positions.shape[1] == 3 else np.zeros(n)
        cols: dict[str, np.ndarray] = {
            "frame": frame.astype(np.int64),
            "x_nm": positions[:, 0],
            "y_nm": positions[:, 1],
            "z_nm": z,
            "photons": photons,
        }
        for key, ds in f.items():
            if (
                key in _CORE
                or not isinstance(ds, h5py.Dataset)
                or ds.shape != (n,)
                or ds.dtype.kind not in "biuf"
            ):
                continue
            cols[key] = np.asarray(ds)

        background = _numeric(f, "background", path).astype(np.float32) if "background" in f else None
        if background is not None:
            n_frames = attrs.get("n_frames")
            if background.ndim == 1 and len(background) == n and n_frames != n and "bg" not in cols:
                cols["bg"] = background.astype(np.float64)  # seed files: one background value per emitter
                background = None
            elif background.ndim not in (1, 3) or not np.all(np.isfinite(background)):
                raise InputFileError(
                    path, f"'background' must be finite, (T,) or (T, H, W), got shape {background.shape}"
                )
        image = None
        if with_image and "image" in f:
            _numeric(f, "image", path, read=False)
            image = np.asarray(f["image"])
            if image.ndim == 2:
                image = image[None]
            if image.ndim != 3 or 0 in image.shape:
                raise InputFileError(path, f"'image' must be (H, W) or (T, H, W), got shape {image.shape}")
            if n and frame.max() >= len(image):
                raise InputFileError(
                    path, f"'frame' goes up to {int(frame.max())} but 'image' has {len(image)} frames"
                )

    order = [c for c in _COLUMN_ORDER if c in cols] + [c for c in cols if c not in _COLUMN_ORDER]
    df = pd.DataFrame({c: cols[c] for c in order})
    df = df.iloc[np.argsort(df["frame"].to_numpy(), kind="stable")].reset_index(drop=True)
    df.attrs.update(attrs)
    if background is not None:
        df.attrs["background"] = FrozenArray(background)
    return df, image


def _read_csv(path: Path) -> pd.DataFrame:
    from .tables import read_table

    df = read_table(path)
    missing = [c for c in ("frame", "x_nm", "y_nm", "photons") if c not in df.columns]
    if missing:
        raise InputFileError(
            path, f"a ground-truth table needs columns frame, x_nm, y_nm, photons; lacks {missing}"
        )
    return df


def _numeric(f: h5py.File, key: str, path: Path, read: bool = True) -> np.ndarray | None:
    """Dataset ``key`` as float64, or :class:`InputFileError` when it is not a numeric dataset."""
    obj = f[key]
    if not isinstance(obj, h5py.Dataset):
        raise InputFileError(path, f"'{key}' must be a numeric dataset, found a group")
    if obj.dtype.kind not in "biuf":
        raise InputFileError(path, f"'{key}' must be a numeric dataset, found dtype {obj.dtype}")
    if not read:
        return None
    try:
        return np.asarray(obj, dtype=np.float64)
    except (OSError, TypeError, ValueError) as exc:
        raise InputFileError(path, f"cannot read dataset '{key}' ({str(exc).splitlines()[0]})") from None


def _vector(f: h5py.File, key: str, n: int, path: Path) -> np.ndarray:
    values = _numeric(f, key, path)
    if values.shape != (n,):
        raise InputFileError(
            path, f"'{key}' must have one value per position ({n}), got shape {values.shape}"
        )
    return values


def _file_attrs(f: h5py.File, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "metadata" in f.attrs:
        try:
            out["metadata"] = json.loads(f.attrs["metadata"])
        except (TypeError, ValueError):
            raise InputFileError(path, "attribute 'metadata' is not valid JSON") from None
    if "pixel_size_nm" in f.attrs:
        px = _attr_numbers(f, "pixel_size_nm", path, float)[0]
        if not np.isfinite(px) or px <= 0:
            raise InputFileError(path, f"attribute pixel_size_nm must be > 0, got {px}")
        out["pixel_size_nm"] = px
    if "frame_size" in f.attrs:
        size = _attr_numbers(f, "frame_size", path, int)
        if len(size) != 2 or min(size) < 1:
            raise InputFileError(path, f"attribute frame_size must be (H, W) >= 1, got {size}")
        out["frame_size"] = size
    if "n_frames" in f.attrs:
        out["n_frames"] = _attr_numbers(f, "n_frames", path, int)[0]
    return out


def _attr_numbers(f: h5py.File, key: str, path: Path, kind: type) -> tuple:
    """File attribute ``key`` as a tuple of ``kind`` (float or int), or a one-line InputFileError."""
    try:
        values = tuple(kind(v) for v in np.ravel(f.attrs[key]))
    except (TypeError, ValueError, OverflowError):
        raise InputFileError(path, f"attribute {key} must be numeric, got {f.attrs[key]!r}") from None
    if not values:
        raise InputFileError(path, f"attribute {key} is empty")
    return values
