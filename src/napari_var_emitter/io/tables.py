"""Localization tables: one DataFrame model, ThunderSTORM CSV and Picasso-compatible HDF5 files.

The table model (docs/developer.md, "Conventions"): columns ``frame`` (0-based int), ``x_nm``, ``y_nm``,
``z_nm``, ``photons``, ``bg`` (photons/pixel), ``prob``, optional ``sigma_x_nm``, ``sigma_y_nm``,
``sigma_z_nm``, ``sigma_photons`` (uncertainties), ``psf_sigma_nm`` / ``psf_sigma_x_nm`` /
``psf_sigma_y_nm`` (PSF widths) and any extra columns. Positions are nm from the image corner. Metadata
lives in ``df.attrs``:
``pixel_size_nm``, ``frame_shape`` (H, W), ``n_frames``, ``camera``, ``source``, ``software_version``,
``model``; reading adds ``path`` and ``format``.

Formats (details in docs/file-formats.md):

- ``.csv``: ThunderSTORM columns first (frames 1-based), then ours. The CSV holds no metadata; pass
  ``pixel_size_nm`` to :func:`read_table` if you know it.
- ``.h5`` / ``.hdf5``: Picasso ``locs`` compound dataset (pixels, 0-based frames) with the ``.yaml`` sidecar
  and embedded ``/metadata``, plus the full nm table in group ``napari_var_emitter/table`` and our metadata
  as JSON in that group's ``metadata`` attribute: a lossless round trip.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import yaml

from .._version import __version__
from ..errors import InputFileError, ParameterError
from ..geometry import DEFAULT_PIXEL_SIZE_NM
from .atomic import atomic_path
from .csvtext import csv_chunks
from .jsonable import to_json

CORE_COLUMNS = ("frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "prob")
SIGMA_COLUMNS = ("sigma_x_nm", "sigma_y_nm", "sigma_z_nm", "sigma_photons")
CSV_EXTENSIONS = (".csv",)
HDF5_EXTENSIONS = (".h5", ".hdf5")
HDF5_GROUP = "napari_var_emitter"

# ThunderSTORM header -> our column, for the columns that map one to one
_TS_TO_OURS = {
    "frame": "frame",
    "x [nm]": "x_nm",
    "y [nm]": "y_nm",
    "z [nm]": "z_nm",
    "intensity [photon]": "photons",
    "offset [photon]": "bg",
    "sigma [nm]": "psf_sigma_nm",
    "sigma1 [nm]": "psf_sigma_x_nm",
    "sigma2 [nm]": "psf_sigma_y_nm",
    "bkgstd [photon]": "bkgstd_photons",
    "uncertainty [nm]": "uncertainty_nm",
    "uncertainty_xy [nm]": "uncertainty_nm",
    "uncertainty_z [nm]": "uncertainty_z_nm",
    "chi2": "chi2",
    "detections": "detections",
}
# our extra columns with a ThunderSTORM-style header (name [unit])
_OURS_TO_CSV = {
    "prob": "prob",
    "sigma_x_nm": "sigma_x [nm]",
    "sigma_y_nm": "sigma_y [nm]",
    "sigma_z_nm": "sigma_z [nm]",
    "sigma_photons": "sigma_photons [photon]",
    "psf_sigma_x_nm": "sigma1 [nm]",
    "psf_sigma_y_nm": "sigma2 [nm]",
}
_CSV_TO_OURS = {**_TS_TO_OURS, **{v: k for k, v in _OURS_TO_CSV.items()}}
_TS_FIRST = (
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "z [nm]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
    "uncertainty [nm]",
)


# --------------------------------------------------------------------------------------------- model


def lateral_uncertainty_nm(sigma_x_nm: Any, sigma_y_nm: Any) -> np.ndarray:
    """One lateral uncertainty from per-axis ones: their root mean square (ThunderSTORM's ``uncertainty``)."""
    sx = np.asarray(sigma_x_nm, dtype=np.float64)
    sy = np.asarray(sigma_y_nm, dtype=np.float64)
    return np.sqrt((sx**2 + sy**2) / 2)


def add_uncertainty(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``uncertainty_nm`` added when it has ``sigma_x_nm`` and ``sigma_y_nm`` (else as is)."""
    if {"sigma_x_nm", "sigma_y_nm"} <= set(table.columns) and "uncertainty_nm" not in table.columns:
        return table.assign(uncertainty_nm=lateral_uncertainty_nm(table["sigma_x_nm"], table["sigma_y_nm"]))
    return table


def normalize_table(df: pd.DataFrame, where: str = "table") -> pd.DataFrame:
    """Return a copy in the table model: core columns present (z 0, prob 1, photons/bg NaN when missing),
    ``frame`` int64, core columns first. Raises :class:`ParameterError` for missing x/y or bad values."""
    missing = [c for c in ("x_nm", "y_nm") if c not in df.columns]
    if missing:
        raise ParameterError(f"{where}: missing column(s) {', '.join(missing)}")
    out = df.copy()
    out.attrs = dict(df.attrs)
    defaults = {"frame": 0, "z_nm": 0.0, "photons": np.nan, "bg": np.nan, "prob": 1.0}
    for col, value in defaults.items():
        if col not in out.columns:
            out[col] = value
    frame = pd.to_numeric(out["frame"], errors="coerce").to_numpy(dtype=np.float64)
    bad = _nonfinite(out, ("x_nm", "y_nm", "z_nm"), extra={"frame": frame})
    if bad:
        raise ParameterError(f"{where}: non-finite values in {bad}")
    if np.any(frame < 0) or np.any(frame != np.round(frame)):
        raise ParameterError(f"{where}: column frame must hold non-negative whole numbers")
    out["frame"] = frame.astype(np.int64)
    for col in CORE_COLUMNS[1:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
    order = [*CORE_COLUMNS, *[c for c in SIGMA_COLUMNS if c in out.columns]]
    return out[order + [c for c in out.columns if c not in order]].reset_index(drop=True)


def _nonfinite(df: pd.DataFrame, columns: tuple[str, ...], extra: dict[str, np.ndarray] | None = None) -> str:
    """Describe the columns among ``columns`` holding NaN/inf ('' when all finite)."""
    arrays = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) for c in columns if c in df}
    arrays.update(extra or {})
    bad = [
        f"{c} ({int((~np.isfinite(a)).sum())} rows)" for c, a in arrays.items() if not np.isfinite(a).all()
    ]
    return ", ".join(bad)


# --------------------------------------------------------------------------------------------- API


def read_table(
    path: str | os.PathLike, pixel_size_nm: float | None = None, require_frame: bool = False
) -> pd.DataFrame:
    """Read a localization table (``.csv`` ThunderSTORM, ``.h5``/``.hdf5`` Picasso or ours) as a DataFrame.

    ``pixel_size_nm`` fills ``attrs["pixel_size_nm"]`` for a CSV and overrides the Picasso sidecar's
    ``Pixelsize`` for a plain Picasso file. A table without a frame column is read as frame 0, unless
    ``require_frame`` (evaluation, which matches frame by frame). Raises :class:`InputFileError` naming the
    file and the problem.
    """
    path = Path(path)
    kind = table_format(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    df = _read_csv(path, pixel_size_nm) if kind == "csv" else _read_hdf5(path, pixel_size_nm)
    if require_frame and "frame" not in df.columns:
        raise InputFileError(path, "has no frame column (needed to match localizations frame by frame)")
    try:
        df = normalize_table(df, where=str(path))
    except ParameterError as err:
        raise InputFileError(path, str(err).split(": ", 1)[-1]) from err
    df.attrs.update(path=str(path), format=kind if kind == "csv" else df.attrs.get("format", "hdf5"))
    return df


def write_table(df: pd.DataFrame, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``df`` (the table model) to ``path`` by extension, atomically; ``metadata`` updates ``df.attrs``.

    CSV: ThunderSTORM columns then ours (no metadata). HDF5: Picasso ``locs`` + ``.yaml`` sidecar + our nm
    table and metadata. Raises :class:`ParameterError` for missing x/y columns or non-finite positions.
    """
    path = Path(path)
    kind = table_format(path)
    table = normalize_table(df, where=f"cannot write {path}")
    attrs = {k: v for k, v in {**df.attrs, **(metadata or {})}.items() if k not in ("path", "format")}
    attrs.setdefault("software_version", __version__)
    table.attrs = attrs
    if kind == "csv":
        _write_csv(table, path)
    else:
        _write_hdf5(table, path)
    return path


def table_format(path: str | os.PathLike) -> str:
    """``"csv"`` or ``"hdf5"`` from the extension; :class:`InputFileError` for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in CSV_EXTENSIONS:
        return "csv"
    if suffix in HDF5_EXTENSIONS:
        return "hdf5"
    raise InputFileError(path, f"unknown table extension {suffix!r} (use .csv, .h5 or .hdf5)")


# --------------------------------------------------------------------------------------------- CSV


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    n = len(table)
    sx, sy = table.get("sigma_x_nm"), table.get("sigma_y_nm")
    uncertainty = (
        lateral_uncertainty_nm(sx, sy)
        if sx is not None and sy is not None
        else (table["uncertainty_nm"].to_numpy() if "uncertainty_nm" in table else np.full(n, np.nan))
    )
    if "psf_sigma_nm" in table:
        psf_sigma = table["psf_sigma_nm"].to_numpy()
    elif "psf_sigma_x_nm" in table and "psf_sigma_y_nm" in table:
        psf_sigma = np.sqrt(table["psf_sigma_x_nm"].to_numpy() * table["psf_sigma_y_nm"].to_numpy())
    else:
        psf_sigma = np.full(n, np.nan)
    bkgstd = (
        table["bkgstd_photons"].to_numpy()
        if "bkgstd_photons" in table
        else np.sqrt(np.clip(table["bg"].to_numpy(), 0, None))
    )
    ids = table["id"].to_numpy() if "id" in table else np.arange(1, n + 1)
    out = pd.DataFrame(
        {
            "id": ids,
            "frame": table["frame"].to_numpy() + 1,
            "x [nm]": table["x_nm"].to_numpy(),
            "y [nm]": table["y_nm"].to_numpy(),
            "z [nm]": table["z_nm"].to_numpy(),
            "sigma [nm]": psf_sigma,
            "intensity [photon]": table["photons"].to_numpy(),
            "offset [photon]": table["bg"].to_numpy(),
            "bkgstd [photon]": bkgstd,
            "uncertainty [nm]": uncertainty,
        }
    )
    used = {"id", *CORE_COLUMNS[:-1], "psf_sigma_nm", "bkgstd_photons", "uncertainty_nm"}
    for col in table.columns:
        if col not in used:
            out[_OURS_TO_CSV.get(col, col)] = table[col].to_numpy()
    chunks = csv_chunks(out)  # what to_csv below writes, ~3x faster; None for non-numeric columns
    with atomic_path(path) as tmp:
        if chunks is None:
            out.to_csv(tmp, index=False, quoting=1, float_format="%.10g", na_rep="NaN")  # 1 = csv.QUOTE_ALL
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.writelines(chunks)


def _read_csv(path: Path, pixel_size_nm: float | None) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as err:
        raise InputFileError(path, "the CSV file is empty (no header line)") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise InputFileError(path, f"not a readable CSV table ({err})") from err
    raw.columns = [str(c).strip().strip('"') for c in raw.columns]
    if len(raw.columns) == 1 and "," in raw.columns[0]:  # the whole header line is one quoted field
        names = [c.strip().strip('"') for c in raw.columns[0].split(",")]
        try:
            raw = pd.read_csv(path, skipinitialspace=True, skiprows=1, header=None, names=names)
        except (pd.errors.ParserError, ValueError) as err:
            raise InputFileError(path, f"not a readable CSV table ({err})") from err
    if not {"x [nm]", "y [nm]"} <= set(raw.columns) and not {"x_nm", "y_nm"} <= set(raw.columns):
        raise InputFileError(
            path,
            f"missing x/y columns: expected ThunderSTORM 'x [nm]' and 'y [nm]' (found {list(raw.columns)})",
        )
    df = raw.rename(columns={c: _CSV_TO_OURS[c] for c in raw.columns if c in _CSV_TO_OURS})
    if df.empty:  # a header-only file (nothing was found): pandas reads every column as object
        df = df.astype(float)
    if "frame" in df and "x [nm]" in raw.columns:  # ThunderSTORM frames are 1-based
        frame = pd.to_numeric(df["frame"], errors="coerce")
        df["frame"] = frame - 1
    bad = _nonfinite(df, ("frame", "x_nm", "y_nm", "z_nm"))
    if bad:
        raise InputFileError(path, f"non-finite or missing values in {bad}")
    df = _drop_derived_csv_columns(df)
    df.attrs = {"format": "csv"}
    if pixel_size_nm is not None:
        df.attrs["pixel_size_nm"] = float(pixel_size_nm)
    return df


def _drop_derived_csv_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Map ThunderSTORM uncertainties onto ours; drop columns that only repeat others (as we write them)."""
    drop = [c for c in df.columns if df[c].dtype.kind == "f" and df[c].isna().all() and len(df)]
    if "sigma_x_nm" not in df and "uncertainty_nm" in df:
        df["sigma_x_nm"] = df["sigma_y_nm"] = df["uncertainty_nm"]
        drop.append("uncertainty_nm")
    elif "sigma_x_nm" in df and "sigma_y_nm" in df and "uncertainty_nm" in df:
        derived = lateral_uncertainty_nm(df["sigma_x_nm"], df["sigma_y_nm"])
        if np.allclose(derived, df["uncertainty_nm"], rtol=1e-5, equal_nan=True):
            drop.append("uncertainty_nm")
    if "sigma_z_nm" not in df and "uncertainty_z_nm" in df:
        df["sigma_z_nm"] = df.pop("uncertainty_z_nm")
    if (
        "bkgstd_photons" in df
        and "bg" in df
        and np.allclose(df["bkgstd_photons"], np.sqrt(np.clip(df["bg"], 0, None)), rtol=1e-5, equal_nan=True)
    ):
        drop.append("bkgstd_photons")
    if (
        "psf_sigma_nm" in df
        and {"psf_sigma_x_nm", "psf_sigma_y_nm"} <= set(df.columns)
        and np.allclose(df["psf_sigma_nm"], np.sqrt(df["psf_sigma_x_nm"] * df["psf_sigma_y_nm"]), rtol=1e-5)
    ):
        drop.append("psf_sigma_nm")
    if "id" in df and np.array_equal(df["id"].to_numpy(), np.arange(1, len(df) + 1)):
        drop.append("id")
    return df.drop(columns=sorted(set(drop) - set(CORE_COLUMNS)))


# --------------------------------------------------------------------------------------------- HDF5


def picasso_sidecar(path: str | os.PathLike) -> Path:
    """The Picasso ``.yaml`` metadata file that belongs to an HDF5 table (same name, ``.yaml``)."""
    return Path(path).with_suffix(".yaml")


def _frame_shape(table: pd.DataFrame, px: float) -> tuple[int, int]:
    shape = table.attrs.get("frame_shape", table.attrs.get("frame_size"))  # frame_size: emitter files
    if shape is not None and len(shape) == 2:
        return int(shape[0]), int(shape[1])
    if not len(table):
        return 1, 1
    return int(math.ceil(table["y_nm"].max() / px)) or 1, int(math.ceil(table["x_nm"].max() / px)) or 1


def _picasso_locs(table: pd.DataFrame, px: float) -> np.ndarray:
    """Picasso's compound ``locs`` (pixels, centres at integers).

    Unknown values are written as 0, because Picasso drops every row that holds a NaN.
    """

    def col(name: str, scale: float = 1.0) -> np.ndarray:
        v = table[name].to_numpy(np.float64) / scale if name in table else np.zeros(len(table))
        return np.where(np.isfinite(v), v, 0.0)

    def psf(axis: str) -> np.ndarray:
        return col(f"psf_sigma_{axis}_nm", px) if f"psf_sigma_{axis}_nm" in table else col("psf_sigma_nm", px)

    fields: dict[str, np.ndarray] = {
        "frame": table["frame"].to_numpy().astype(np.uint32),
        "x": table["x_nm"].to_numpy() / px - 0.5,
        "y": table["y_nm"].to_numpy() / px - 0.5,
        "photons": col("photons"),
        "sx": psf("x"),
        "sy": psf("y"),
        "bg": col("bg"),
        "lpx": col("sigma_x_nm", px),
        "lpy": col("sigma_y_nm", px),
    }
    if np.any(table["z_nm"].to_numpy() != 0) or "sigma_z_nm" in table:
        fields["z"] = table["z_nm"].to_numpy()
        fields["lpz"] = col("sigma_z_nm")
    fields["prob"] = col("prob")
    dtype = [(k, np.uint32 if k == "frame" else np.float32) for k in fields]
    locs = np.empty(len(table), dtype=dtype)
    for k, v in fields.items():
        locs[k] = v
    return locs


def _picasso_info(table: pd.DataFrame, px: float, path: Path) -> list[dict[str, Any]]:
    height, width = _frame_shape(table, px)
    n_frames = int(table.attrs.get("n_frames") or (int(table["frame"].max()) + 1 if len(table) else 1))
    movie = {
        "Byte Order": "<",
        "Data Type": "uint16",
        "File": str(table.attrs.get("source", "")),
        "Frames": n_frames,
        "Height": height,
        "Width": width,
    }
    localize = {
        "Generated by": f"napari-var-emitter {__version__}",
        "Pixelsize": float(px),
        "Model": str(table.attrs.get("model", "")),
    }
    return [movie, localize]


def json_metadata(obj: Any) -> str:
    """``obj`` as JSON (numpy values, paths, timestamps converted); TypeError when it cannot be."""
    return to_json(obj)


def _write_hdf5(table: pd.DataFrame, path: Path) -> None:
    px = float(table.attrs.get("pixel_size_nm") or DEFAULT_PIXEL_SIZE_NM)
    table.attrs.setdefault("pixel_size_nm", px)
    table.attrs.setdefault("frame_shape", list(_frame_shape(table, px)))
    try:
        meta_json = json_metadata(table.attrs)
    except TypeError as err:
        raise ParameterError(f"cannot write {path}: metadata is not JSON-serialisable ({err})") from err
    info = _picasso_info(table, px, path)
    with atomic_path(path) as tmp_h5, atomic_path(picasso_sidecar(path)) as tmp_yaml:
        with h5py.File(tmp_h5, "w") as f:
            f.create_dataset("locs", data=_picasso_locs(table, px))
            f.create_dataset("metadata", data=json_metadata(info))  # Picasso >= 0.11 embedded metadata
            group = f.create_group(HDF5_GROUP)
            group.attrs["metadata"] = meta_json
            group.attrs["columns"] = json_metadata(list(table.columns))
            cols = group.create_group("table")
            for name in table.columns:
                values = table[name].to_numpy()
                if values.dtype.kind in "OUS":
                    values = values.astype(str).astype(h5py.string_dtype())
                cols.create_dataset(name, data=values)
        with open(tmp_yaml, "w") as fh:
            yaml.safe_dump_all(info, fh, default_flow_style=False)


def _read_hdf5(path: Path, pixel_size_nm: float | None) -> pd.DataFrame:
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputFileError(path, f"not a readable HDF5 file ({err})") from err
    with f:
        if is_decode_file(f):
            return _from_decode(path, f, pixel_size_nm)
        if "locs" not in f or not isinstance(f["locs"], h5py.Dataset) or f["locs"].dtype.names is None:
            raise InputFileError(
                path,
                "not a localization table: no 'locs' dataset (Picasso, napari-var-emitter) and no "
                "'data/xyz' dataset (DECODE)",
            )
        if HDF5_GROUP in f and "table" in f[HDF5_GROUP]:
            group = f[HDF5_GROUP]
            columns = json.loads(group.attrs["columns"])
            data = {}
            for name in columns:
                values = group["table"][name][()]
                data[name] = values.astype(str) if values.dtype.kind in "OS" else values
            df = pd.DataFrame(data, columns=columns)
            attrs = json.loads(group.attrs.get("metadata", "{}"))
            if "frame_shape" in attrs and attrs["frame_shape"] is not None:
                attrs["frame_shape"] = tuple(attrs["frame_shape"])
            df.attrs = {**attrs, "format": "hdf5"}
            if pixel_size_nm is not None:
                df.attrs["pixel_size_nm"] = float(pixel_size_nm)
            return df
        locs = f["locs"][()]
        embedded = f["metadata"][()] if "metadata" in f and isinstance(f["metadata"], h5py.Dataset) else None
    info = _load_picasso_info(path, embedded)
    return _from_picasso(path, locs, info, pixel_size_nm)


def is_decode_file(f: h5py.File) -> bool:
    """Whether an open HDF5 file is DECODE's localization output (groups ``data`` with ``xyz``, ``meta``)."""
    return "data" in f and isinstance(f["data"], h5py.Group) and "xyz" in f["data"] and "meta" in f


def _decode_array(group: h5py.Group, name: str) -> np.ndarray | None:
    """A DECODE dataset, or None when absent or stored empty (DECODE writes missing values as empty)."""
    if name not in group or group[name].shape is None:
        return None
    return np.asarray(group[name][()])


def _from_decode(path: Path, f: h5py.File, pixel_size_nm: float | None) -> pd.DataFrame:
    """DECODE's HDF5 output (``EmitterSet.save``) as the nm table.

    DECODE places pixel centres at integer pixel coordinates (frame extent -0.5 .. W - 0.5) and z in nm; its
    ``xy_unit`` is ``px`` or ``nm`` (nm = px * px_size). Sigmas (``xyz_sig``) are in the same units.
    """
    data, meta = f["data"], dict(f["meta"].attrs)
    unit = meta.get("xy_unit")
    unit = unit.decode() if isinstance(unit, bytes) else (None if unit is None else str(unit))
    size = meta.get("px_size")
    size = None if size is None or np.size(size) == 0 else np.ravel(np.asarray(size, dtype=np.float64))
    if pixel_size_nm is not None:
        size = np.array([float(pixel_size_nm)] * 2)
    if size is None:
        raise InputFileError(path, "DECODE file without a pixel size ('meta' px_size); pass pixel_size_nm")
    px_x, px_y = float(size[0]), float(size[-1])
    xyz = _decode_array(data, "xyz")
    if xyz is None or xyz.ndim != 2 or xyz.shape[1] < 2:
        raise InputFileError(path, "DECODE file: 'data/xyz' is not an (N, 3) array of positions")
    if unit == "nm":  # back to pixels; then one rule for both units
        xyz = xyz / np.array([px_x, px_y, 1.0][: xyz.shape[1]])
        sigma_scale = (1.0, 1.0)
    elif unit == "px":
        sigma_scale = (px_x, px_y)
    else:
        raise InputFileError(path, f"DECODE file: unknown xy_unit {unit!r} (expected 'px' or 'nm')")
    n = len(xyz)
    frame = _decode_array(data, "frame_ix")
    df = pd.DataFrame(
        {
            "frame": np.zeros(n, np.int64) if frame is None else frame.astype(np.int64),
            "x_nm": (xyz[:, 0] + 0.5) * px_x,
            "y_nm": (xyz[:, 1] + 0.5) * px_y,
            "z_nm": xyz[:, 2].astype(np.float64) if xyz.shape[1] > 2 else np.zeros(n),
        }
    )
    for name, column in (("phot", "photons"), ("bg", "bg"), ("prob", "prob"), ("phot_sig", "sigma_photons")):
        values = _decode_array(data, name)
        if values is not None:
            df[column] = values.astype(np.float64).reshape(n)
    sig = _decode_array(data, "xyz_sig")
    if sig is not None:
        df["sigma_x_nm"] = sig[:, 0] * sigma_scale[0]
        df["sigma_y_nm"] = sig[:, 1] * sigma_scale[1]
        if sig.shape[1] > 2:
            df["sigma_z_nm"] = sig[:, 2]
    bad = _nonfinite(df, ("frame", "x_nm", "y_nm", "z_nm"))
    if bad:
        raise InputFileError(path, f"non-finite values in {bad}")
    df.attrs = {"pixel_size_nm": px_x, "format": "decode-hdf5", "source": str(path)}
    return df


def _load_picasso_info(path: Path, embedded: Any) -> list[dict[str, Any]]:
    sidecar = picasso_sidecar(path)
    if sidecar.is_file():
        try:
            with open(sidecar) as fh:
                return [d for d in yaml.safe_load_all(fh) if isinstance(d, dict)]
        except yaml.YAMLError as err:
            raise InputFileError(sidecar, f"unreadable Picasso metadata ({err})") from err
    if embedded is not None:
        with contextlib.suppress(ValueError, TypeError):
            raw = embedded.decode() if isinstance(embedded, bytes) else str(embedded)
            return [d for d in json.loads(raw) if isinstance(d, dict)]
    return []


def _from_picasso(
    path: Path, locs: np.ndarray, info: list[dict[str, Any]], pixel_size_nm: float | None
) -> pd.DataFrame:
    """Convert Picasso pixel columns to the nm table model."""

    def lookup(key: str) -> Any:
        return next((d[key] for d in info if key in d), None)

    px = pixel_size_nm if pixel_size_nm is not None else lookup("Pixelsize")
    if px is None:
        raise InputFileError(
            path,
            f"no pixel size: the Picasso metadata file {picasso_sidecar(path).name} is missing or has no "
            "'Pixelsize'; pass pixel_size_nm",
        )
    px = float(px)
    names = locs.dtype.names
    for required in ("frame", "x", "y"):
        if required not in names:
            raise InputFileError(path, f"the 'locs' dataset has no {required!r} field")
    df = pd.DataFrame(
        {
            "frame": locs["frame"].astype(np.int64),
            "x_nm": (locs["x"].astype(np.float64) + 0.5) * px,
            "y_nm": (locs["y"].astype(np.float64) + 0.5) * px,
        }
    )
    renames = {
        "photons": ("photons", 1.0),
        "bg": ("bg", 1.0),
        "z": ("z_nm", 1.0),
        "lpz": ("sigma_z_nm", 1.0),
        "lpx": ("sigma_x_nm", px),
        "lpy": ("sigma_y_nm", px),
        "sx": ("psf_sigma_x_nm", px),
        "sy": ("psf_sigma_y_nm", px),
    }
    for name in names:
        if name in ("frame", "x", "y"):
            continue
        new, scale = renames.get(name, (name, 1.0))
        df[new] = locs[name].astype(np.float64) * scale if locs[name].dtype.kind == "f" else locs[name]
    bad = _nonfinite(df, ("x_nm", "y_nm", "z_nm"))
    if bad:
        raise InputFileError(path, f"non-finite values in {bad}")
    height, width, frames = lookup("Height"), lookup("Width"), lookup("Frames")
    df.attrs = {"pixel_size_nm": px, "format": "picasso-hdf5", "source": lookup("File") or str(path)}
    if height is not None and width is not None:
        df.attrs["frame_shape"] = (int(height), int(width))
    if frames is not None:
        df.attrs["n_frames"] = int(frames)
    return df
