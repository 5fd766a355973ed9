"""Simulation parameters: validation with clear messages, JSON round trip."""

from __future__ import annotations

import pytest

from napari_var_emitter.errors import InputFileError, ParameterError
from napari_var_emitter.simulation import SimulationConfig, simulate


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"density": -1.0}, "density"),
        ({"photons": (0.0, 100.0)}, "photons"),
        ({"photons": (-5.0, 100.0)}, "photons"),
        ({"photons": (500.0, 100.0)}, "photons"),
        ({"background": (-1.0, 10.0)}, "background"),
        ({"psf": {"sigma_px": (0.0, 1.0)}}, "sigma_px"),
        ({"psf": {"kind": "astigmatic", "sigma0_px": -1.0}}, "sigma0_px"),
        ({"psf": {"kind": "airy"}}, "kind"),
        ({"camera": {"type": "ccd"}}, "camera.type"),
        ({"on_time_frames": 0.0}, "on_time_frames"),
        ({"pixel_size_nm": 0.0}, "pixel_size_nm"),
        ({"frame_size": (0, 10)}, "frame_size"),
        ({"densty": 1.0}, "densty"),
    ],
)
def test_bad_parameters_fail_with_a_message_naming_them(values, words):
    with pytest.raises(ParameterError, match=words):
        SimulationConfig.from_dict(values)
    with pytest.raises(ParameterError, match=words):
        simulate(values, 2, seed=0)
    with pytest.raises(ValueError, match=words.split(".")[-1]):
        SimulationConfig(**values)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_frame_count(n):
    with pytest.raises(ParameterError, match="n_frames"):
        simulate(SimulationConfig(), n, seed=0)


def test_bad_seed_and_mask():
    with pytest.raises(ParameterError, match="seed"):
        simulate(None, 2, seed=-1)
    with pytest.raises(ParameterError, match="mask"):
        simulate(SimulationConfig(frame_size=(8, 8)), 2, seed=0, mask=[[1, 0]])


def test_json_round_trip(tmp_path):
    cfg = SimulationConfig(density=2.5, psf={"kind": "astigmatic"}, camera={"type": "emccd", "em_gain": 30})
    path = tmp_path / "sim.json"
    cfg.to_json(path)
    assert SimulationConfig.from_json(path) == cfg


def test_bad_json_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        SimulationConfig.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match="bad.json"):
        SimulationConfig.from_json(bad)
    bad.write_text('{"density": -2}')
    with pytest.raises(InputFileError, match="density"):
        SimulationConfig.from_json(bad)
