"""Checks of command-line values, shared by every command's ``validate_args`` (run before any work).

Each raises :class:`~napari_var_emitter.errors.ParameterError` naming the flag, the rule and the value, so
the command fails at once with one line instead of late with a traceback or a silently empty result.
Output paths are checked by :mod:`napari_var_emitter.io.outputs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputFileError, ParameterError


def number(
    flag: str,
    value: float | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> None:
    """``value`` (skipped when None) must be finite and within the given bounds."""
    if value is None:
        return
    if not math.isfinite(value):
        raise ParameterError(f"{flag} must be a finite number, got {value}")
    for ok, rule, bound in (
        (gt is None or value > gt, ">", gt),
        (ge is None or value >= ge, ">=", ge),
        (le is None or value <= le, "<=", le),
        (lt is None or value < lt, "<", lt),
    ):
        if not ok:
            raise ParameterError(f"{flag} must be {rule} {bound:g}, got {value:g}")


def value_range(flag: str, pair: Sequence[float] | None, *, ge: float | None = None, gt: float | None = None):
    """A ``LO HI`` pair (skipped when None): finite, within the bounds, and ``LO <= HI``."""
    if pair is None:
        return
    for v in pair:
        number(flag, v, ge=ge, gt=gt)
    if pair[0] > pair[1]:
        raise ParameterError(f"{flag} must be LO HI with LO <= HI, got {pair[0]:g} {pair[1]:g}")


def frame_range(flag: str, frames: Sequence[int] | None) -> None:
    """A ``START STOP`` frame range (0-based, STOP exclusive; skipped when None): ``0 <= START < STOP``."""
    if frames is None:
        return
    start, stop = frames
    if start < 0:
        raise ParameterError(f"{flag} START must be >= 0 (frames are 0-based), got {start}")
    if stop <= start:
        raise ParameterError(
            f"{flag} must be START STOP with STOP > START (STOP is exclusive), got {start} {stop}"
        )


def input_file(path: str | Path | None, what: str = "file") -> None:
    """``path`` (skipped when None) must be an existing file, not a folder."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise InputFileError(p, f"is a folder, expected a {what}")
    if not p.is_file():
        raise InputFileError(p, "file not found")
