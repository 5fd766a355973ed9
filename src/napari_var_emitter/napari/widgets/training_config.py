"""The training form as plain values (Qt-free): form values <-> ``TrainConfig``.

The form shows the essentials (model, data source, simulation ranges or labelled files, camera, epochs,
batch size, learning rate, device); a loaded config JSON supplies the rest; the form's values apply on top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ParameterError

MODEL_CHOICES = {
    "VAR, CPU size": ("var", "cpu"),
    "VAR, GPU size": ("var", "gpu"),
    "U-Net baseline": ("unet", None),
}
FROM_CONFIG = "as in loaded config"
SIMULATE, LABELLED = "simulate", "labelled files"


def train_config(form: dict[str, Any], base: Any = None) -> Any:
    """The ``TrainConfig`` of ``base`` (a loaded config, or the defaults) with the form's values applied.

    ``form`` keys: ``model`` (a :data:`MODEL_CHOICES` key or :data:`FROM_CONFIG`), ``epochs``,
    ``steps_per_epoch``, ``batch_size``, ``val_frames``, ``lr``, ``device``, ``source`` (:data:`SIMULATE` or
    :data:`LABELLED`), ``camera`` (dict), ``pixel_size_nm``; for simulation ``photons``, ``background``,
    ``sigma_px`` (lo, hi) and ``density``; for labelled data ``stack`` and ``emitters`` (paths or None).
    """
    from ...training import TrainConfig

    values = (base or TrainConfig()).model_dump(mode="json")
    if form["model"] != FROM_CONFIG:
        kind, preset = MODEL_CHOICES[form["model"]]
        values["model"] = {"kind": kind, **({"preset": preset} if preset else {})}
    values["epochs"] = int(form["epochs"])
    values["batch_size"] = int(form["batch_size"])
    values["optimizer"]["lr"] = float(form["lr"])
    values["device"] = form["device"]
    if form["source"] == SIMULATE:
        data = values["data"] if values["data"].get("kind") == "simulation" else {"kind": "simulation"}
        sim = dict(data.get("simulation", {}))
        sim.update(
            photons=tuple(form["photons"]),
            background=tuple(form["background"]),
            density=float(form["density"]),
            pixel_size_nm=float(form["pixel_size_nm"]),
            camera=dict(form["camera"]),
        )
        sim["psf"] = {**sim.get("psf", {}), "sigma_px": tuple(form["sigma_px"])}
        data.update(
            simulation=sim, steps_per_epoch=int(form["steps_per_epoch"]), val_frames=int(form["val_frames"])
        )
    else:
        data = values["data"] if values["data"].get("kind") == "labelled" else {"kind": "labelled"}
        data.update(
            paths=[labelled_source(form.get("stack"), form.get("emitters"))],
            camera=dict(form["camera"]),
            pixel_size_nm=float(form["pixel_size_nm"]),
            steps_per_epoch=int(form["steps_per_epoch"]),
            val_tiles=int(form["val_frames"]),
        )
    values["data"] = data
    return TrainConfig.from_dict(values, source="training widget")


def labelled_source(stack: str | Path | None, emitters: str | Path | None) -> dict[str, Any]:
    """One labelled data source: a stack with its emitters file, or a seed HDF5 file holding both."""
    stack = _path(stack)
    emitters = _path(emitters)
    if stack is None:
        raise ParameterError("Labelled data: choose a camera stack (TIFF) or a seed HDF5 file.")
    if emitters is None and stack.suffix.lower() in (".h5", ".hdf5"):
        return {"h5": str(stack)}
    return {"stack": str(stack), "emitters": None if emitters is None else str(emitters)}


def _path(value: str | Path | None) -> Path | None:
    if value is None or str(value).strip() in ("", "."):
        return None
    return Path(value).expanduser()


def form_from_config(config: Any) -> dict[str, Any]:
    """The form values that show a loaded ``TrainConfig`` (its model stays :data:`FROM_CONFIG`)."""
    data = config.data
    form: dict[str, Any] = {
        "model": FROM_CONFIG,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.optimizer.lr,
        "steps_per_epoch": data.steps_per_epoch,
    }
    if data.kind == "simulation":
        sim = data.simulation
        form.update(
            source=SIMULATE,
            val_frames=data.val_frames,
            photons=tuple(sim.photons),
            background=tuple(sim.background),
            density=sim.density,
            sigma_px=tuple(sim.psf.sigma_px),
            camera=sim.camera.model_dump(),
            pixel_size_nm=sim.pixel_size_nm,
        )
    else:
        first = data.paths[0]
        form.update(
            source=LABELLED,
            val_frames=data.val_tiles,
            stack=first.stack or first.h5,
            emitters=first.emitters,
            camera=data.camera.model_dump(),
            pixel_size_nm=data.pixel_size_nm,
        )
    return form


def estimated_ranges(estimate: Any) -> dict[str, Any]:
    """Simulation form values from an image estimate (``_estimate.ImageEstimate``), with some margin."""
    form: dict[str, Any] = {
        "background": (max(0.0, estimate.background[0] * 0.8), estimate.background[1] * 1.2 + 1.0),
        "photons": (estimate.photons[0], max(estimate.photons[1], estimate.photons[0] + 1)),
        "sigma_px": (estimate.sigma_px[0], max(estimate.sigma_px[1], estimate.sigma_px[0])),
    }
    if estimate.density > 0:
        form["density"] = estimate.density
    return form
