"""`var-emitter simulate` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_var_emitter.cli import main
from napari_var_emitter.io.emitters import read_emitters
from napari_var_emitter.io.stacks import read_stack
from napari_var_emitter.simulation import SimulationConfig, simulate


def test_simulate_writes_movie_truth_and_params(tmp_path, capsys):
    out = tmp_path / "sim"
    args = [
        "simulate",
        "--out",
        str(out),
        "--frames",
        "12",
        "--seed",
        "3",
        "--frame-size",
        "24",
        "32",
        "--pixel-size",
        "110",
        "--density",
        "2",
        "--photons",
        "800",
        "1200",
        "--camera",
        "emccd",
    ]
    assert main(args) == 0
    assert "12 frames" in capsys.readouterr().out
    stack = read_stack(out / "movie.ome.tif")
    assert stack.data.shape == (12, 24, 32) and stack.pixel_size_nm == pytest.approx(110.0)
    assert stack.metadata["camera"]["type"] == "emccd"
    truth = read_emitters(out / "emitters.h5")
    assert truth["frame"].max() <= 11 and truth.attrs["pixel_size_nm"] == pytest.approx(110.0)
    assert {"crlb_x_nm", "sigma_x_nm", "bg"} <= set(truth.columns)
    params = json.loads((out / "params.json").read_text())
    assert params["seed"] == 3 and params["simulation"]["density"] == 2.0

    # the same parameters and seed reproduce the same movie, from Python and from params.json
    cfg = SimulationConfig.from_json(out / "params.json")
    np.testing.assert_array_equal(simulate(cfg, 12, seed=3).frames, np.asarray(stack.data))
    again = tmp_path / "again"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(again),
                "--config",
                str(out / "params.json"),
                "--frames",
                "12",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        np.asarray(read_stack(again / "movie.ome.tif").data), np.asarray(stack.data)
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--density", "-1"], "density"),
        (["--density", "1e6"], "--density must be <= 100"),  # the flag, not the config field
        (["--photons", "0", "100"], "photons"),
        (["--sigma", "0", "1"], "--sigma"),
        (["--frames", "0"], "--frames"),
        (["--camera", "scmos", "--em-gain", "10"], "em_gain"),
    ],
)
def test_bad_values_one_line_error_and_no_output(tmp_path, capsys, extra, message):
    out = tmp_path / "o"
    assert main(["simulate", "--out", str(out), "--frames", "3", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


def test_refuses_to_overwrite_without_flag(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["simulate", "--out", str(out), "--frames", "2"]) == 0
    assert main(["simulate", "--out", str(out), "--frames", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["simulate", "--out", str(out), "--frames", "3", "--overwrite"]) == 0
    assert read_stack(out / "movie.ome.tif").data.shape[0] == 3


def test_bad_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"density": 1, "colour": "red"}')
    assert main(["simulate", "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "c.json" in err and "colour" in err
