"""The camera form of the dock widgets (magicgui): type, baseline, e-/ADU, EM gain, QE and pixel size, with
Save/Load of a camera profile (a ``CameraConfig`` as JSON, the file that ``--camera`` takes in the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSpinBox, PushButton

from ...camera import CameraConfig, load_camera_profile, save_camera_profile
from ...geometry import DEFAULT_PIXEL_SIZE_NM
from ._common import notify_error, notify_info
from .camera_values import CAMERA_TYPES, SHOWN, camera_from_values


class CameraForm(Container):
    """Camera parameters (ADU -> photons) and the pixel size; defaults: ``CameraConfig()``."""

    def __init__(self, label: str = "camera") -> None:
        default = CameraConfig()
        self.camera_type = ComboBox(
            name="camera_type", label="camera", choices=CAMERA_TYPES, value=default.type
        )
        self.baseline = FloatSpinBox(
            name="baseline", label="baseline (ADU)", min=0.0, max=1e5, step=10.0, value=default.baseline
        )
        self.e_per_adu = FloatSpinBox(
            name="e_per_adu", label="e-/ADU", min=1e-3, max=1e3, step=0.1, value=default.e_per_adu
        )
        self.em_gain = FloatSpinBox(
            name="em_gain", label="EM gain", min=1.0, max=1e4, step=10.0, value=default.em_gain
        )
        self.qe = FloatSpinBox(name="qe", label="QE", min=0.01, max=1.0, step=0.05, value=default.qe)
        self.pixel_size = FloatSpinBox(
            name="pixel_size",
            label="pixel size (nm)",
            min=1.0,
            max=1e5,
            step=10.0,
            value=DEFAULT_PIXEL_SIZE_NM,
        )
        self.profile = FileEdit(name="profile", label="profile", mode="w", filter="*.json")
        self.save_profile = PushButton(name="save_profile", text="Save profile")
        self.load_profile = PushButton(name="load_profile", text="Load profile")
        buttons = Container(widgets=[self.save_profile, self.load_profile], layout="horizontal", labels=False)
        super().__init__(
            widgets=[
                self.camera_type, self.baseline, self.e_per_adu, self.em_gain, self.qe, self.pixel_size,
                self.profile, buttons,
            ],
            label=label,
        )  # fmt: skip
        for name in ("baseline", "e_per_adu", "qe", "pixel_size"):
            getattr(self, name).native.setDecimals(3 if name == "e_per_adu" else 2)
        self._hidden: dict[str, Any] = {k: v for k, v in default.model_dump().items() if k not in SHOWN}
        self.camera_type.changed.connect(self._type_changed)
        self.save_profile.clicked.connect(self.save)
        self.load_profile.clicked.connect(self.load)
        self._type_changed(self.camera_type.value)

    def _type_changed(self, kind: str) -> None:
        self.em_gain.enabled = kind == "emccd"

    def values(self) -> dict[str, Any]:
        """The form as plain camera values (see :func:`.camera_values.camera_from_values`)."""
        return {**self._hidden, **{key: self._field(key).value for key in SHOWN}}

    def _field(self, key: str) -> Any:
        return self.camera_type if key == "type" else getattr(self, key)

    def camera(self) -> CameraConfig:
        """The form as a validated ``CameraConfig``."""
        return camera_from_values(self.values())

    def pixel_size_nm(self) -> float:
        return float(self.pixel_size.value)

    def set_values(self, camera: Any = None, pixel_size_nm: float | None = None) -> None:
        """Fill the form from a camera (dict or ``CameraConfig``) and/or a pixel size; None keeps the form."""
        if camera is not None:
            given = camera.model_dump() if hasattr(camera, "model_dump") else dict(camera)
            values = camera_from_values({**self.values(), **given}).model_dump()
            self._hidden = {k: v for k, v in values.items() if k not in SHOWN}
            for key in SHOWN:
                self._field(key).value = values[key]
        if pixel_size_nm:
            self.pixel_size.value = float(pixel_size_nm)

    def save(self, *_: Any) -> Path | None:
        """Write the camera to the profile file."""
        try:
            path = self._profile_path()
            save_camera_profile(self.camera(), path)
        except Exception as exc:
            notify_error(exc, "Saving the camera profile")
            return None
        notify_info(f"Camera profile saved to {path}.")
        return path

    def load(self, *_: Any) -> None:
        """Fill the form from the profile file."""
        try:
            camera = load_camera_profile(self._profile_path())
        except Exception as exc:
            notify_error(exc, "Loading the camera profile")
            return
        self.set_values(camera)
        notify_info(f"Camera profile {Path(self.profile.value).name} loaded.")

    def _profile_path(self) -> Path:
        from ...errors import ParameterError

        value = self.profile.value
        if value is None or str(value) in ("", "."):
            raise ParameterError("Choose a camera profile file (.json) first.")
        path = Path(value).expanduser()
        return path if path.suffix else path.with_suffix(".json")
