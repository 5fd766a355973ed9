"""Shared input/output checks of the table post-processing commands (drift, group, filter, frc)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")


def check_output(path: str | Path, overwrite: bool, suffixes: tuple[str, ...] | None = None) -> Path:
    """The output path, checked before any work: known extension, then the project's output rule
    (:func:`~napari_var_emitter.io.outputs.check_output_file`: writable folder, not there already unless
    ``overwrite``; for a Picasso HDF5 table also its ``.yaml`` sidecar)."""
    from ..io.outputs import check_output_file
    from ..io.tables import picasso_sidecar, table_format

    out = Path(path)
    if suffixes is None:
        kind = table_format(out)  # InputFileError for an unknown extension
        companions = [picasso_sidecar(out)] if kind == "hdf5" else []
    else:
        if out.suffix.lower() not in suffixes:
            raise InputFileError(out, f"unknown extension {out.suffix!r} (use {', '.join(suffixes)})")
        companions = []
    return check_output_file(out, overwrite, companions)


def read_input(path: str) -> pd.DataFrame:
    """The input table (its existence is checked by the command's ``validate_args``)."""
    from ..io import read_table

    return read_table(path)


def check_distinct(inp: str, *outputs: str | None) -> None:
    """Refuse to write over the input table."""
    src = Path(inp).resolve()
    for out in outputs:
        if out is not None and Path(out).resolve() == src:
            raise InputFileError(out, "is the input table; choose another output file")
