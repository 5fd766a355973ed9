"""Frames of a TIFF movie read straight from the file, a block of consecutive frames per call.

:class:`TiffFrames` is a small read-only array (``shape``, ``dtype``, ``ndim``, ``frames[a:b]``) for the
predictor: an uncompressed series stored in one piece (what tifffile, ImageJ, micro-manager and most
cameras write) is read with one positioned read per block; other files one TIFF page per frame. Compared
with the dask/zarr array of :func:`~napari_var_emitter.io.stacks.read_stack` (one chunk per frame, made for
napari's random access) this is much cheaper per frame and imports neither dask nor zarr. Reads are
serialised by a lock, so a reader thread and the caller may share one instance.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import InputFileError


class TiffFrames:
    """``(T, Y, X)`` frames of series 0 of a TIFF file, read on demand (see the module docstring)."""

    ndim = 3

    def __init__(
        self, path: str | os.PathLike, shape: tuple[int, int, int], options: dict[str, Any] | None = None
    ) -> None:
        """``shape``: the movie's (T, Y, X), as :func:`read_stack` found it (singleton axes dropped);
        ``options``: how tifffile opens the file (as :func:`read_stack` chose)."""
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self._lock = threading.Lock()
        self._tif = tifffile.TiffFile(self.path, **(options or {}))
        series = self._tif.series[0]
        self._file_dtype = np.dtype(series.dtype).newbyteorder(self._tif.byteorder)
        self.dtype = self._file_dtype.newbyteorder("=")
        self._offset = series.dataoffset  # None unless the series is uncompressed and in one piece
        self._pages = series.pages
        if self._offset is None and len(self._pages) != self.shape[0]:
            self.close()
            raise ValueError("frames are neither contiguous nor one page each")

    @classmethod
    def supports(
        cls, path: str | os.PathLike, shape: tuple[int, ...], options: dict[str, Any] | None = None
    ) -> bool:
        """Whether :class:`TiffFrames` can read this file (else use the dask array of ``read_stack``)."""
        try:
            with tifffile.TiffFile(path, **(options or {})) as tif:
                series = tif.series[0]
                multifile = bool(getattr(series, "is_multifile", False))
                one_page_each = len(series.pages) == shape[0]
                return not multifile and (series.dataoffset is not None or one_page_each)
        except (tifffile.TiffFileError, OSError, ValueError, IndexError):
            return False

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            k = int(key) + (self.shape[0] if key < 0 else 0)
            return self[k : k + 1][0]
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"TiffFrames supports frames[int] and frames[a:b], got {key!r}")
        lo, hi, _ = key.indices(self.shape[0])
        return self.read(lo, max(lo, hi))

    def read(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``[lo, hi)`` as a new (hi - lo, Y, X) array in native byte order."""
        n, (h, w) = hi - lo, self.shape[1:]
        if n <= 0:
            return np.zeros((0, h, w), self.dtype)
        try:
            with self._lock:
                if self._offset is not None:
                    out = self._read_contiguous(lo, n, h * w)
                else:
                    out = np.stack([self._pages[i].asarray().reshape(h, w) for i in range(lo, hi)])
        except (tifffile.TiffFileError, OSError, ValueError) as err:
            raise InputFileError(self.path, f"cannot read frames {lo}..{hi - 1} ({err})") from err
        return out.astype(self.dtype, copy=False).reshape(n, h, w)

    def _read_contiguous(self, lo: int, n: int, frame_px: int) -> np.ndarray:
        fh = self._tif.filehandle
        fh.seek(self._offset + lo * frame_px * self._file_dtype.itemsize)
        out = np.empty(n * frame_px, self._file_dtype)
        got = fh.readinto(out)
        if got != out.nbytes:
            raise ValueError(f"the file ends after {got} of {out.nbytes} bytes")
        return out

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> TiffFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TiffFrames({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"
