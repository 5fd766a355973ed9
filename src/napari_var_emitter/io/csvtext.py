"""Fast CSV text of a numeric table, byte for byte what ``DataFrame.to_csv`` writes with the table options
(``index=False, quoting=csv.QUOTE_ALL, float_format="%.10g", na_rep="NaN"``).

pandas formats a ``float_format`` value by value through its generic writer (~12 µs per row of ~17 columns);
here each column is formatted once as a list of strings and the rows are joined: ~3x faster, the same text,
a chunk of rows at a time so that memory does not grow with the table. Columns that are neither integer,
float nor bool are not handled: :func:`csv_chunks` returns None and the caller falls back to pandas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pandas as pd


def _column(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "f":
        text = ['"%.10g"' % v for v in values.tolist()]  # noqa: UP031  (the exact %-format pandas uses)
        if np.isnan(values).any():
            for i in np.flatnonzero(np.isnan(values)):
                text[i] = '"NaN"'
        return text
    if values.dtype.kind in "iu":
        return [f'"{v}"' for v in values.tolist()]
    return ['"True"' if v else '"False"' for v in values.tolist()]  # bool


CHUNK_ROWS = 50_000
"""Rows formatted at a time: the strings of a whole table cost ~1.8 kB per row (2.8 GiB measured for 1.6
million rows, a 10,000-frame movie at 5 emitters/µm²), a chunk's ~90 MB."""


def csv_chunks(df: pd.DataFrame, chunk_rows: int = CHUNK_ROWS) -> Iterator[str] | None:
    """The CSV text of ``df`` (header and rows, quoted, ``os.linesep`` line ends) as pieces of at most
    ``chunk_rows`` rows, or None when a column is not numeric or the column names are not unique strings."""
    names = list(df.columns)
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        return None
    arrays = [df[name].to_numpy() for name in names]
    if any(a.dtype.kind not in "fiub" for a in arrays):
        return None
    eol = os.linesep

    def pieces() -> Iterator[str]:
        yield ",".join('"' + n.replace('"', '""') + '"' for n in names) + eol
        for start in range(0, len(df), chunk_rows):
            columns = [_column(a[start : start + chunk_rows]) for a in arrays]
            yield eol.join(",".join(r) for r in zip(*columns, strict=True)) + eol

    return pieces()
