"""The ``--camera`` option shared by ``simulate``, ``train`` and ``predict``: a camera profile (JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..camera import CameraConfig

from ..camera_presets import CAMERA_PRESETS

HELP = (
    "camera profile: a JSON file of camera parameters (baseline, e_per_adu, em_gain, qe, ...), as saved by "
    "the napari widgets' 'Save profile'"
)


def add_camera_option(parser: argparse.ArgumentParser, presets: bool = False) -> None:
    """Add ``--camera PROFILE.json`` (with ``presets``: or one of the typical camera types)."""
    names = ", ".join(CAMERA_PRESETS)
    parser.add_argument(
        "--camera",
        metavar="TYPE|JSON" if presets else "JSON",
        help=f"{HELP}; or a camera type with typical values ({names})" if presets else HELP,
    )


def camera_option(value: str | None, presets: bool = False) -> CameraConfig | None:
    """The camera named by ``--camera``: None when not given; a profile file (or a preset type)."""
    from ..camera import CameraConfig, load_camera_profile

    if value is None:
        return None
    if presets and value in CAMERA_PRESETS and not Path(value).is_file():
        return CameraConfig.model_validate(CAMERA_PRESETS[value])
    return load_camera_profile(value)
