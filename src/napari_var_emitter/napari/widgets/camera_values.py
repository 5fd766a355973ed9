"""The camera part of a widget form as plain values (Qt-free): form values <-> ``CameraConfig``.

The form shows type, baseline, e-/ADU, EM gain and QE; the other camera parameters (read noise, spurious
charge, bit depth) travel unseen, so that a camera loaded from a checkpoint or profile is kept whole.
"""

from __future__ import annotations

from typing import Any

from ...camera import CameraConfig

CAMERA_TYPES = ("emccd", "scmos", "ideal")
SHOWN = ("type", "baseline", "e_per_adu", "em_gain", "qe")


def camera_from_values(values: dict[str, Any]) -> CameraConfig:
    """A validated camera from form values (ParameterError naming a bad one).

    EM gain applies to EMCCDs only: for other types it is 1, whatever the (disabled) field holds; parameters
    that belong to EMCCDs only (spurious charge) or that an ideal camera cannot have (read noise) are reset
    when the user switches type, so that switching never produces an invalid camera.
    """
    merged = {**values}
    kind = merged.get("type", "scmos")
    if kind != "emccd":
        merged["em_gain"] = 1.0
        merged["spurious_charge"] = 0.0
    if kind == "ideal":
        merged["read_noise_e"] = 0.0
    return CameraConfig.from_dict(merged)
