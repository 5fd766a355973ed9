"""Typical camera parameters by type (plain data, no imports: the CLI lists them without loading pydantic)."""

from __future__ import annotations

#: typical cameras, by type (``var-emitter simulate --camera TYPE`` starts from these)
CAMERA_PRESETS: dict[str, dict[str, float | str]] = {
    "scmos": {"type": "scmos"},
    # an Andor iXon-like EMCCD (the SMLM challenge 2016 camera settings)
    "emccd": {
        "type": "emccd", "qe": 0.9, "em_gain": 100.0, "e_per_adu": 45.0, "baseline": 100.0,
        "read_noise_e": 74.4, "spurious_charge": 0.002,
    },
    "ideal": {"type": "ideal", "qe": 1.0, "e_per_adu": 1.0, "baseline": 0.0, "read_noise_e": 0.0},
}  # fmt: skip
