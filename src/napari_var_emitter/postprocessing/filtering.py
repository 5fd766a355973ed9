"""Filtering a localization table by a condition on its own columns.

``where`` uses the syntax of :meth:`pandas.DataFrame.query` restricted to a safe subset: column names,
numbers (and quoted strings), comparisons (``< <= > >= == != in``, chained like ``100 < photons < 5000``),
``and``/``or``/``not`` (or ``& | ~``), arithmetic (``+ - * / ** %``) and parentheses. Anything else (function
calls, attributes, ``@`` variables, indexing) is refused before pandas sees the expression.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import ParameterError

_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Invert,
    ast.Compare,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
    ast.In,
    ast.NotIn,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.Mod,
    ast.BitAnd,
    ast.BitOr,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Tuple,
)
_CONSTANTS = {"True", "False", "inf", "nan"}


def check_where(where: str, columns: list[str] | pd.Index) -> None:
    """Raise :class:`ParameterError` unless ``where`` is a safe condition on ``columns``."""
    if not isinstance(where, str) or not where.strip():
        raise ParameterError("empty filter condition")
    try:
        tree = ast.parse(where.strip(), mode="eval")
    except SyntaxError as err:
        raise ParameterError(f"cannot parse filter condition {where!r}: {err.msg}") from None
    cols = [str(c) for c in columns]
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ParameterError(
                f"filter condition {where!r}: {type(node).__name__.lower()} not allowed "
                "(use column names, numbers, comparisons, and/or/not and arithmetic)"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool):
            raise ParameterError(f"filter condition {where!r}: constant {node.value!r} not allowed")
        if isinstance(node, ast.Name) and node.id not in cols and node.id not in _CONSTANTS:
            near = difflib.get_close_matches(node.id, cols, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ParameterError(
                f"filter condition: unknown column {node.id!r}{hint}; the table has {', '.join(cols)}"
            )


def filter_table(table: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows of ``table`` for which ``where`` holds (see the module doc); ``attrs`` are kept."""
    check_where(where, table.columns)
    try:
        mask = table.eval(
            where.strip(), engine="python", local_dict={}, global_dict={"inf": np.inf, "nan": np.nan}
        )
    except Exception as err:  # a type mismatch (e.g. a number compared with text)
        raise ParameterError(f"cannot evaluate filter condition {where!r}: {err}") from None
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(table),):
        raise ParameterError(f"filter condition {where!r} is not a condition (it gives {mask.dtype} values)")
    out = table.loc[mask].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def range_mask(table: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Boolean mask of the rows whose values lie in ``[lo, hi]`` for every ``column: (lo, hi)``; NaN fails."""
    mask = np.ones(len(table), bool)
    for col, (lo, hi) in ranges.items():
        if col not in table.columns:
            raise ParameterError(
                f"unknown column {col!r}; the table has {', '.join(map(str, table.columns))}"
            )
        v = table[col].to_numpy(np.float64)
        mask &= (v >= lo) & (v <= hi)
    return mask


def filter_ranges(table: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """The rows of ``table`` inside every ``column: (lo, hi)`` range (inclusive); ``attrs`` are kept."""
    out = table.loc[range_mask(table, ranges)].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out
