"""The widgets' form rules, without Qt: form values -> camera, Predictor arguments, TrainConfig."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.napari.widgets import camera_values, inference_config, training_config


def test_form_modules_import_no_qt_and_no_napari():
    code = (
        "import sys\n"
        "import napari_var_emitter.napari.widgets.inference_config, "
        "napari_var_emitter.napari.widgets.training_config, napari_var_emitter.napari.widgets.camera_values\n"
        "bad = [m for m in ('qtpy', 'PyQt5', 'PyQt6', 'napari', 'magicgui') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_camera_from_values_resets_what_the_type_cannot_have():
    emccd = CameraConfig(
        type="emccd", em_gain=100.0, e_per_adu=45.0, spurious_charge=0.002, read_noise_e=74.0
    )
    values = {**emccd.model_dump(), "type": "ideal"}
    ideal = camera_values.camera_from_values(values)
    assert (ideal.type, ideal.em_gain, ideal.spurious_charge, ideal.read_noise_e) == ("ideal", 1.0, 0.0, 0.0)
    assert ideal.e_per_adu == 45.0  # the shown values stay
    with pytest.raises(ParameterError, match="qe"):
        camera_values.camera_from_values({**CameraConfig().model_dump(), "qe": 1.5})


def test_predictor_kwargs_pass_refine_only_where_the_predictor_has_it():
    camera = CameraConfig(type="ideal", read_noise_e=0.0)
    kwargs = inference_config.predictor_kwargs("model.pt", "cpu", camera.model_dump(), 0.3, refine=True)
    assert kwargs["model"].name == "model.pt" and kwargs["device"] == "cpu" and kwargs["threshold"] == 0.3
    assert kwargs["camera"] == camera
    assert ("refine" in kwargs) == inference_config.predictor_accepts("refine")
    assert "refine" not in inference_config.predictor_kwargs(None, "cpu", camera, 0.5, refine=None)
    with pytest.raises(ParameterError, match="threshold"):
        inference_config.predictor_kwargs(None, "cpu", camera, 0.0)


def test_frames_maps_and_scales():
    assert inference_config.frame_range(2, 4) == range(2, 5)
    with pytest.raises(ParameterError, match="before the first"):
        inference_config.frame_range(5, 4)
    assert inference_config.map_frame_count(10, 6, (1, 8), (32, 32)) == 6
    big = inference_config.map_frame_count(10_000, 10_000, (1, 2, 4, 8), (512, 512))
    assert 0 < big < 10_000 and big * 85 * 512 * 512 * 4 <= inference_config.MAP_BUDGET_BYTES
    # the scale boxes start on the scale the checkpoint localizes on; a previous choice that applies stays
    assert inference_config.default_scale_choice((1, 2, 4, 8)) == {1: True, 2: False, 4: False, 8: False}
    assert inference_config.default_scale_choice((1, 2, 4, 8), {8}) == {1: False, 2: False, 4: False, 8: True}
    assert inference_config.default_scale_choice((1,), {8}) == {1: True}
    assert inference_config.default_scale_choice((1, 2, 4), None, 2) == {1: False, 2: True, 4: False}
    assert inference_config.default_scale_choice((1, 2), None, 8) == {1: True, 2: False}
    assert inference_config.color_choices(["x_nm", "prob", "photons"]) == ["photons", "prob"]


def test_camera_frames_names_the_problem():
    layer = SimpleNamespace(name="img", rgb=False, multiscale=False, data=np.zeros((4, 5, 6, 7)))
    with pytest.raises(ParameterError, match="4 dimensions"):
        inference_config.camera_frames(layer)
    layer.data = np.zeros((5, 6))
    assert inference_config.camera_frames(layer).shape == (1, 5, 6)


def _form(**changes):
    form = {
        "model": "U-Net baseline", "epochs": 3, "steps_per_epoch": 7, "batch_size": 4, "val_frames": 8,
        "lr": 1e-3, "device": "cpu", "source": training_config.SIMULATE, "photons": (500.0, 900.0),
        "background": (10.0, 30.0), "density": 2.0, "sigma_px": (0.9, 1.2),
        "camera": CameraConfig(type="emccd", em_gain=50.0).model_dump(), "pixel_size_nm": 110.0,
        "stack": None, "emitters": None,
    }  # fmt: skip
    return {**form, **changes}


def test_train_config_from_the_form_and_back():
    config = training_config.train_config(_form())
    assert config.model.kind == "unet" and config.epochs == 3 and config.batch_size == 4
    sim = config.data.simulation
    assert sim.photons == (500.0, 900.0) and sim.background == (10.0, 30.0) and sim.psf.sigma_px == (0.9, 1.2)
    assert sim.camera.type == "emccd" and sim.camera.em_gain == 50.0 and sim.pixel_size_nm == 110.0
    assert config.data.steps_per_epoch == 7 and config.data.val_frames == 8
    shown = training_config.form_from_config(config)
    again = training_config.train_config({**_form(), **shown}, base=config)
    assert again.model_dump() == config.model_dump()


def test_train_config_labelled(tmp_path):
    with pytest.raises(ParameterError, match="camera stack"):
        training_config.train_config(_form(source=training_config.LABELLED))
    seed = tmp_path / "seed.h5"
    assert training_config.labelled_source(seed, None) == {"h5": str(seed)}
    stack, emitters = tmp_path / "movie.tif", tmp_path / "emitters.h5"
    assert training_config.labelled_source(stack, emitters) == {
        "stack": str(stack),
        "emitters": str(emitters),
    }
    assert training_config.labelled_source(str(stack), ".")["emitters"] is None  # an empty file field


def test_estimated_ranges_have_margin():
    est = SimpleNamespace(background=(40.0, 50.0), photons=(900.0, 800.0), sigma_px=(1.3, 1.2), density=0.0)
    form = training_config.estimated_ranges(est)
    assert form["background"][0] < 40 and form["background"][1] > 50
    assert form["photons"][1] > form["photons"][0] and form["sigma_px"][1] >= form["sigma_px"][0]
    assert "density" not in form
