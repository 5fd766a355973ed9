"""Camera profiles: one JSON file (a CameraConfig) for the widgets and for --camera of the CLI."""

from __future__ import annotations

import argparse
import json

import pytest

from napari_var_emitter.camera import CameraConfig, load_camera_profile, save_camera_profile
from napari_var_emitter.cli import main
from napari_var_emitter.cli._camera import camera_option
from napari_var_emitter.cli.predict_cmd import camera_from_args
from napari_var_emitter.errors import InputFileError

EMCCD = CameraConfig(type="emccd", qe=0.95, e_per_adu=12.5, em_gain=300.0, baseline=400.0, read_noise_e=60.0)


def test_profile_round_trip_and_clear_errors(tmp_path):
    path = save_camera_profile(EMCCD, tmp_path / "cam.json")
    assert json.loads(path.read_text())["em_gain"] == 300.0
    assert load_camera_profile(path) == EMCCD
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "scmos", "qe": 2.0}))
    with pytest.raises(InputFileError, match=r"bad\.json.*qe"):
        load_camera_profile(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputFileError, match="JSON object"):
        load_camera_profile(bad)
    with pytest.raises(InputFileError, match="not found"):
        load_camera_profile(tmp_path / "missing.json")


def test_camera_option_presets_and_profiles(tmp_path):
    assert camera_option(None) is None
    assert camera_option("emccd", presets=True).em_gain == 100.0
    path = save_camera_profile(EMCCD, tmp_path / "cam.json")
    assert camera_option(str(path)) == EMCCD
    with pytest.raises(InputFileError):
        camera_option("emccd")  # without presets, a name is a file name


def test_simulate_uses_the_profile(tmp_path, capsys):
    path = save_camera_profile(EMCCD, tmp_path / "cam.json")
    out = tmp_path / "sim"
    argv = ["simulate", "--out", str(out), "--frames", "2", "--frame-size", "16", "16", "--no-crlb"]
    assert main([*argv, "--camera", str(path)]) == 0
    params = json.loads((out / "params.json").read_text())
    assert CameraConfig.model_validate(params["simulation"]["camera"]) == EMCCD
    assert main(["simulate", "--out", str(tmp_path / "x"), "--camera", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_predict_profile_replaces_file_camera_and_flags_win(tmp_path):
    path = save_camera_profile(EMCCD, tmp_path / "cam.json")
    args = argparse.Namespace(camera=str(path), camera_baseline=123.0)
    camera = camera_from_args(args, CameraConfig(), {"baseline": 99.0})
    assert camera == EMCCD.model_copy(update={"baseline": 123.0})


def test_train_profile_sets_the_training_data_camera(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "napari_var_emitter.training.dry_run", lambda cfg, device=None: seen.update(cfg=cfg) or {}
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": {"kind": "simulation"}}))
    path = save_camera_profile(EMCCD, tmp_path / "cam.json")
    assert main(["train", "--config", str(config), "--dry-run", "--camera", str(path)]) == 0
    assert seen["cfg"].data.simulation.camera == EMCCD
