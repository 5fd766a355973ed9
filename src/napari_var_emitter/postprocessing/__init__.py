"""Post-processing of localization tables: drift correction, grouping, filtering and FRC resolution.

Every function takes and returns tables in the project's model (pandas DataFrames in nm, 0-based frames)
and raises :class:`~napari_var_emitter.errors.ParameterError` with a one-line message for bad input.
"""

from __future__ import annotations

from .drift import DriftResult, apply_drift, correct_drift, estimate_drift
from .filtering import filter_ranges, filter_table, range_mask
from .frc import FRCResult, frc_resolution
from .grouping import group_localizations

__all__ = [
    "DriftResult",
    "FRCResult",
    "apply_drift",
    "correct_drift",
    "estimate_drift",
    "filter_ranges",
    "filter_table",
    "frc_resolution",
    "group_localizations",
    "range_mask",
]
