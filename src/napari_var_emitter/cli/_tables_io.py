"""Shared input/output checks of the table post-processing commands (drift, group, filter, frc)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..errors import InputFileError


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")


def check_output(path: str | Path, overwrite: bool, suffixes: tuple[str, ...] | None = None) -> Path:
    """The output path, checked before any work: known extension, existing folder, not there already
    (unless ``overwrite``); for a Picasso HDF5 table also its ``.yaml`` sidecar."""
    from ..io.tables import picasso_sidecar, table_format

    out = Path(path)
    if suffixes is None:
        kind = table_format(out)  # InputFileError for an unknown extension
        targets = [out, picasso_sidecar(out)] if kind == "hdf5" else [out]
    else:
        if out.suffix.lower() not in suffixes:
            raise InputFileError(out, f"unknown extension {out.suffix!r} (use {', '.join(suffixes)})")
        targets = [out]
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise InputFileError(out, f"cannot write: folder {out.parent} does not exist")
    for target in targets:
        if target.exists() and not overwrite:
            raise InputFileError(target, "already exists; pass --overwrite to replace it")
    return out


def read_input(path: str) -> pd.DataFrame:
    from ..io import read_table

    if not Path(path).is_file():
        raise InputFileError(path, "file not found")
    return read_table(path)


def check_distinct(inp: str, *outputs: str | None) -> None:
    """Refuse to write over the input table."""
    src = Path(inp).resolve()
    for out in outputs:
        if out is not None and Path(out).resolve() == src:
            raise InputFileError(out, "is the input table; choose another output file")
