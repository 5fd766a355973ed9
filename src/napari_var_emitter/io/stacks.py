"""Camera stacks: lazy TIFF / OME-TIFF reading (tifffile -> zarr -> dask, or direct block reads) and writing.

Pixel size, in order of preference: OME ``PhysicalSizeX/Y`` (converted to nm), ImageJ/TIFF resolution when
its unit is a length unit and x and y agree, else :data:`DEFAULT_PIXEL_SIZE_NM`. Files written by
:func:`write_stack` carry their metadata (camera parameters, ...) as JSON in the OME ``Image/Description``
under the key ``"napari_var_emitter"``; :func:`read_stack` gives it back in ``Stack.metadata``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import struct
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import tifffile

from ..errors import InputFileError, ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM
from .atomic import atomic_path
from .jsonable import json_default

if TYPE_CHECKING:
    import dask.array as da

    from .frames import TiffFrames

METADATA_KEY = "napari_var_emitter"
"""Key of the JSON object in the OME Image Description that holds our metadata."""

_UNIT_TO_NM = {
    "pm": 1e-3,
    "Å": 0.1,
    "å": 0.1,
    "a": 0.1,
    "angstrom": 0.1,
    "nm": 1.0,
    "nanometer": 1.0,
    "µm": 1e3,
    "μm": 1e3,
    "um": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "\\u00b5m": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "cm": 1e7,
    "centimeter": 1e7,
    "m": 1e9,
    "meter": 1e9,
}
_FRAME_AXES = set("TZIQ")  # axes that may hold the frames of a movie
_CORRUPTION_HINTS = (
    "invalid page offset",
    "corrupted",
    "invalid value offset",
    "truncated",
    "not enough data",
)


@dataclass
class Stack:
    """A camera movie: lazy ``data`` (T, Y, X), its pixel size in nm, metadata and source path.

    ``data`` is a dask array (``read_stack(reader="dask")``, napari's random access) or a
    :class:`~napari_var_emitter.io.frames.TiffFrames` (``reader="blocks"``, sequential block reads)."""

    data: da.Array | TiffFrames
    pixel_size_nm: float
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        return int(self.data.shape[1]), int(self.data.shape[2])

    @property
    def camera(self) -> dict[str, Any]:
        """Camera parameters found in the file (may be empty)."""
        return self.metadata.get("camera", {})


def unit_to_nm(unit: str | None) -> float | None:
    """Nanometres per ``unit`` (``"µm"``, ``"nm"``, ``"mm"``, ...), or None when it is not a length unit."""
    if unit is None:
        return None
    return _UNIT_TO_NM.get(str(unit).strip().lower().replace("\x00", ""), _UNIT_TO_NM.get(str(unit).strip()))


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_warnings() -> Iterator[list[str]]:
    """Collect the warnings tifffile logs (it logs, rather than raises, on a broken page chain)."""
    logger = logging.getLogger("tifffile")
    handler = _LogCollector()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def read_stack(path: str | os.PathLike, reader: Literal["dask", "blocks"] = "dask") -> Stack:
    """Open a TIFF / OME-TIFF movie lazily as a (T, Y, X) array; a single 2-D frame becomes (1, Y, X).

    ``reader="dask"``: a dask array with one frame per chunk (napari). ``reader="blocks"``: a
    :class:`~napari_var_emitter.io.frames.TiffFrames` that reads blocks of consecutive frames straight from
    the file (the predictor's sequential pass; falls back to dask for files it cannot read, e.g. multi-file
    OME-TIFF). No pixels are read. Raises :class:`InputFileError` for a missing, empty, truncated or
    corrupt file and for data that is not a single-channel grey movie (RGB, multi-channel, 4-D and more).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    file_size = path.stat().st_size
    if file_size == 0:
        raise InputFileError(path, "the file is empty")
    try:
        with _tifffile_warnings() as warnings_seen:
            with tifffile.TiffFile(path) as tif:
                options = _tiff_options(tif)
                if not options:
                    axes, shape, metadata = _movie_series(path, tif, file_size, warnings_seen)
            if options:  # the file again, as plain pages
                with tifffile.TiffFile(path, **options) as tif:
                    axes, shape, metadata = _movie_series(path, tif, file_size, warnings_seen)
    except InputFileError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError, struct.error) as err:
        raise InputFileError(path, f"not a readable TIFF file ({err})") from err
    pixel_size = metadata.pop("_pixel_size_nm", None)
    metadata["pixel_size_source"] = metadata.pop("_pixel_size_source", "default")
    if pixel_size is None or not (math.isfinite(pixel_size) and pixel_size > 0):
        pixel_size = DEFAULT_PIXEL_SIZE_NM
        metadata["pixel_size_source"] = "default"
    data = _block_array(path, axes, shape, options) if reader == "blocks" else None
    if data is None:
        data = _lazy_array(path, axes, shape, options)
    metadata.update(
        pixel_size_nm=float(pixel_size),
        path=str(path),
        axes=axes,
        shape=tuple(int(s) for s in data.shape),
        dtype=str(data.dtype),
    )
    metadata.setdefault("camera", {})
    return Stack(data=data, pixel_size_nm=float(pixel_size), metadata=metadata, path=path)


def _movie_series(
    path: Path, tif: tifffile.TiffFile, file_size: int, warnings_seen: list[str]
) -> tuple[str, tuple[int, ...], dict[str, Any]]:
    """Axes, shape and metadata of the movie (the file's first series), checked."""
    if not tif.series:
        raise InputFileError(path, "the TIFF holds no image")
    series = tif.series[0]
    _check_complete(path, series, file_size, warnings_seen)
    axes, shape = _frame_axes(path, series)
    metadata = _metadata(tif, series)
    _warn_other_series(path, tif.series)
    return axes, shape, metadata


def _tiff_options(tif: tifffile.TiffFile) -> dict[str, Any]:
    """How tifffile must open ``tif``'s file to see the whole movie as its first series: ``{}``, or
    ``{"is_shaped": False}`` for a movie saved one frame at a time by tifffile (``TiffWriter.write`` per
    frame, ``imwrite(..., append=True)``: each frame is a "shaped" series of its own, so the first series is
    one frame); read as plain pages, its frames of one shape and pixel type form one series."""
    series = tif.series
    if len(series) < 2 or not tif.is_shaped:
        return {}
    first = series[0]
    one_frame_each = all(
        len(s.pages) == 1 and s.shape == first.shape and s.dtype == first.dtype and s.pages[0].ndim == 2
        for s in series
    )
    return {"is_shaped": False} if one_frame_each else {}


def _warn_other_series(path: Path, series: list[Any]) -> None:
    """Warn that a file with several image series (positions, a label image, frames of another size) is read
    as its first series only."""
    if len(series) < 2:
        return
    others = sorted({tuple(int(d) for d in s.shape) for s in series[1:]})
    shown = ", ".join(str(o) for o in others[:3]) + (", ..." if len(others) > 3 else "")
    warnings.warn(
        f"{path}: the file holds {len(series)} image series; only the first, of shape "
        f"{tuple(int(d) for d in series[0].shape)}, is read (the others: {shown})",
        UserWarning,
        stacklevel=4,  # read_stack's caller
    )


def _check_complete(path: Path, series: Any, file_size: int, warnings_seen: list[str]) -> None:
    """Refuse files whose page chain or pixel data end before the file does (truncated / corrupt)."""
    bad = [m for m in warnings_seen if any(h in m.lower() for h in _CORRUPTION_HINTS)]
    if bad:
        raise InputFileError(path, f"the TIFF file is truncated or corrupt ({bad[0]})")
    if series.size == 0:
        raise InputFileError(path, "the image is empty (a dimension of size 0)")
    offset = series.dataoffset
    if offset is not None and offset + series.nbytes > file_size:
        raise InputFileError(
            path,
            f"the TIFF file is truncated: {offset + series.nbytes} bytes of pixel data expected, "
            f"the file has {file_size}",
        )
    last = series.pages[-1] if len(series.pages) else None
    if last is not None and hasattr(last, "dataoffsets"):
        end = max((o + n for o, n in zip(last.dataoffsets, last.databytecounts, strict=False)), default=0)
        if end > file_size:
            raise InputFileError(path, "the TIFF file is truncated: the last frame's pixel data are missing")


def _frame_axes(path: Path, series: Any) -> tuple[str, tuple[int, ...]]:
    """Check that the series is a grey (frames, Y, X) movie; return its axes and shape."""
    axes, shape = series.axes, tuple(series.shape)
    kept = [(a, s) for a, s in zip(axes, shape, strict=True) if s != 1 or a in "YX"]
    names = "".join(a for a, _ in kept)
    if "S" in names or series.dtype.kind == "V":
        raise InputFileError(
            path,
            f"RGB/colour images are not supported (axes {axes}, shape {shape}); "
            "save the movie as single-channel grey frames",
        )
    if "C" in names:
        raise InputFileError(
            path,
            f"multi-channel images are not supported (axes {axes}, shape {shape}); "
            "save one channel as a (frames, Y, X) movie",
        )
    if series.dtype.kind not in "uif":
        raise InputFileError(path, f"pixel type {series.dtype} is not supported (need integer or float)")
    if len(kept) > 3 or not names.endswith("YX"):
        raise InputFileError(
            path, f"expected a (frames, Y, X) movie, got {len(kept)}-D data (axes {axes}, shape {shape})"
        )
    if len(kept) == 3 and names[0] not in _FRAME_AXES:
        raise InputFileError(path, f"axis {names[0]!r} cannot be the frame axis (axes {axes}, shape {shape})")
    return axes, shape


def _block_array(path: Path, axes: str, shape: tuple[int, ...], options: dict[str, Any]) -> TiffFrames | None:
    """A :class:`TiffFrames` of the (T, Y, X) movie, or None when that reader cannot read the file."""
    from .frames import TiffFrames

    kept = [int(s) for a, s in zip(axes, shape, strict=True) if s != 1 or a in "YX"]
    tyx = (kept[0] if len(kept) == 3 else 1, kept[-2], kept[-1])
    if not TiffFrames.supports(path, tyx, options):
        return None
    try:
        return TiffFrames(path, tyx, options)
    except (tifffile.TiffFileError, OSError, ValueError):
        return None


def _lazy_array(path: Path, axes: str, shape: tuple[int, ...], options: dict[str, Any]) -> da.Array:
    import dask.array as da
    import zarr

    store = tifffile.imread(path, aszarr=True, series=0, level=0, **options)
    data = da.from_zarr(zarr.open(store, mode="r"))
    # drop singleton non-spatial axes, then make (frames, Y, X) with one frame per chunk
    data = data[
        tuple(0 if (s == 1 and a not in "YX") else slice(None) for a, s in zip(axes, shape, strict=True))
    ]
    if data.ndim == 2:
        data = data[None]
    return data.rechunk((1, *data.shape[1:])) if data.chunksize[0] != 1 else data


def _metadata(tif: tifffile.TiffFile, series: Any) -> dict[str, Any]:
    """Pixel size (nm) and camera metadata from OME, ImageJ or plain TIFF tags."""
    meta: dict[str, Any] = {"camera": {}}
    if tif.is_ome and tif.ome_metadata:
        meta.update(_ome_metadata(tif.ome_metadata))
    if meta.get("_pixel_size_nm") is None:
        px = _resolution_pixel_size(tif)
        if px is not None:
            meta["_pixel_size_nm"], meta["_pixel_size_source"] = px
    if tif.is_imagej and tif.imagej_metadata:
        meta["imagej"] = {
            k: v for k, v in tif.imagej_metadata.items() if isinstance(v, (str, int, float, bool))
        }
    if tif.is_micromanager and tif.micromanager_metadata:
        summary = (
            (tif.micromanager_metadata.get("Summary") or {})
            if isinstance(tif.micromanager_metadata, dict)
            else {}
        )
        meta["micromanager"] = {k: v for k, v in summary.items() if isinstance(v, (str, int, float, bool))}
    return meta


def _ome_metadata(xml: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return meta
    ns = {"ome": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {"ome": ""}
    q = (lambda tag: f"{{{ns['ome']}}}{tag}") if ns["ome"] else (lambda tag: tag)
    image = root.find(q("Image"))
    pixels = image.find(q("Pixels")) if image is not None else None
    if pixels is not None:
        sizes = []
        for ax in "XY":
            value = pixels.get(f"PhysicalSize{ax}")
            factor = unit_to_nm(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
            if value is not None and factor is not None:
                sizes.append(float(value) * factor)
        if sizes and all(math.isclose(s, sizes[0], rel_tol=1e-4) for s in sizes):
            meta["_pixel_size_nm"], meta["_pixel_size_source"] = sizes[0], "ome"
        elif sizes:
            meta["_pixel_size_nm"], meta["_pixel_size_source"] = sizes[0], "ome (x; y differs)"
            meta["pixel_size_y_nm"] = sizes[-1]
    camera: dict[str, Any] = {}
    detector = root.find(f".//{q('Instrument')}/{q('Detector')}")
    if detector is not None:
        camera.update(_ome_detector(detector.attrib))
    settings = root.find(f".//{q('DetectorSettings')}")
    if settings is not None:
        camera.update(_ome_detector(settings.attrib))
    description = image.find(q("Description")) if image is not None else None
    if description is not None and description.text:
        with contextlib.suppress(ValueError, TypeError):
            ours = json.loads(description.text)
            if isinstance(ours, dict) and isinstance(ours.get(METADATA_KEY), dict):
                stored = dict(ours[METADATA_KEY])
                camera.update(stored.pop("camera", {}) or {})
                stored.pop("pixel_size_nm", None)
                meta.update(stored)
    meta["camera"] = camera
    return meta


def _ome_detector(attrib: dict[str, str]) -> dict[str, Any]:
    """Camera hints from OME Detector / DetectorSettings attributes (Gain, Offset, Type, Model)."""
    out: dict[str, Any] = {}
    kind = attrib.get("Type", "").upper()
    if kind:
        out["type"] = "emccd" if "EM" in kind else ("scmos" if "CMOS" in kind else kind.lower())
    if "Model" in attrib:
        out["model"] = attrib["Model"]
    with contextlib.suppress(ValueError):
        if "Offset" in attrib:
            out["baseline"] = float(attrib["Offset"])
        if "Gain" in attrib:
            out["em_gain" if out.get("type") == "emccd" else "gain"] = float(attrib["Gain"])
    return out


def _resolution_pixel_size(tif: tifffile.TiffFile) -> tuple[float, str] | None:
    """Pixel size from X/YResolution when the unit is a length (ImageJ 'unit', or cm/mm/µm TIFF units)."""
    page = tif.pages.first
    xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
    if xres is None or yres is None:
        return None
    try:
        x_ppu = xres.value[0] / xres.value[1]
        y_ppu = yres.value[0] / yres.value[1]
    except (TypeError, ZeroDivisionError, IndexError):
        return None
    if not (x_ppu > 0 and y_ppu > 0) or not math.isclose(x_ppu, y_ppu, rel_tol=1e-4):
        return None
    if tif.is_imagej and tif.imagej_metadata:
        factor, source = unit_to_nm(tif.imagej_metadata.get("unit")), "imagej"
    else:
        unit_tag = page.tags.get("ResolutionUnit")
        unit = int(unit_tag.value) if unit_tag is not None else 2
        factor, source = {3: 1e7, 4: 1e6, 5: 1e3}.get(unit), "tiff"  # cm, mm, µm; inch is never physical
    if factor is None:
        return None
    px = factor / x_ppu
    return (px, source) if 1e-2 <= px <= 1e5 else None


def write_stack(
    path: str | os.PathLike,
    frames: Any,
    pixel_size_nm: float,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a (T, Y, X) or (Y, X) movie (numpy or dask) as OME-TIFF, atomically.

    ``PhysicalSizeX/Y`` are stored in nm; ``metadata`` (e.g. ``{"camera": {...}}``, JSON-serialisable) goes
    into the OME Image Description so that :func:`read_stack` returns it. Dask arrays are written frame by
    frame without loading the whole movie.
    """
    path = Path(path)
    if not (
        isinstance(pixel_size_nm, (int, float, np.floating))
        and math.isfinite(pixel_size_nm)
        and pixel_size_nm > 0
    ):
        raise ParameterError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or 0 in frames.shape:
        raise ParameterError(
            f"write_stack({path}): frames must be (T, Y, X) with no empty axis, "
            f"got shape {tuple(frames.shape)}"
        )
    try:
        description = json.dumps({METADATA_KEY: dict(metadata or {})}, default=json_default)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"write_stack({path}): metadata is not JSON-serialisable ({err})") from err
    ome = {
        "axes": "TYX",
        "PhysicalSizeX": float(pixel_size_nm),
        "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": float(pixel_size_nm),
        "PhysicalSizeYUnit": "nm",
        "Description": description,
    }
    dtype = np.dtype(frames.dtype)
    data: Any = frames if isinstance(frames, np.ndarray) else (np.asarray(f) for f in frames)
    with atomic_path(path, suffix=".ome.tif") as tmp:
        tifffile.imwrite(
            tmp,
            data,
            shape=tuple(frames.shape),
            dtype=dtype,
            ome=True,
            metadata=ome,
            photometric="minisblack",
            bigtiff=frames.size * dtype.itemsize > 2**31,
        )
    return path


def contrast_limits(
    data: Any, n_sample: int = 16, percentiles: tuple[float, float] = (0.1, 99.9)
) -> tuple[float, float]:
    """Display range from ``n_sample`` evenly spaced frames of a (T, Y, X) array, never the whole stack."""
    n = int(data.shape[0]) if data.ndim == 3 else 1
    idx = np.unique(np.linspace(0, n - 1, num=min(n_sample, n)).round().astype(int))
    sample = data[idx] if data.ndim == 3 else data
    sample = np.asarray(sample.compute() if hasattr(sample, "compute") else sample, dtype=np.float64)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, percentiles))
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
