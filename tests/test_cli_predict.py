"""``var-emitter predict``: a table on success; one-line errors, exit code 2 and no output on failure."""

from __future__ import annotations

import numpy as np
import pytest

from napari_var_emitter.checkpoints import save_checkpoint
from napari_var_emitter.cli import main
from napari_var_emitter.io import read_table, write_stack
from napari_var_emitter.models import UNetConfig, build_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    write_stack(d / "movie.ome.tif", rng.poisson(120, (6, 24, 24)).astype(np.uint16), 110.0)
    write_stack(d / "single.ome.tif", rng.poisson(120, (1, 24, 24)).astype(np.uint16), 110.0)
    for n_frames in (1, 3):
        cfg = UNetConfig(n_frames=n_frames, channels=(4, 8), sigma_channels=True)
        state = build_model(cfg).state_dict()
        # random weights, but a p-logit bias high enough that some pixels are detected
        state["out.bias"][0] = 3.0
        save_checkpoint(
            d / f"unet{n_frames}.pt",
            model_config=cfg.model_dump(),
            state_dict=state,
            camera={"type": "scmos", "baseline": 100.0, "e_per_adu": 0.5, "qe": 0.8},
            pixel_size_nm=110.0,
        )
    return d


def run_cli(*argv):
    return main([str(a) for a in argv])


@pytest.mark.parametrize("ext", [".csv", ".h5"])
def test_predict_writes_table_and_summary(files, tmp_path, capsys, ext):
    out = tmp_path / f"locs{ext}"
    rc = run_cli(
        "predict",
        files / "movie.ome.tif",
        "--checkpoint",
        files / "unet3.pt",
        "--out",
        out,
        "--threshold",
        "0.3",
        "--no-progress",
        "--batch-size",
        "4",
        "--frames",
        1,
        5,
    )
    assert rc == 0
    summary = capsys.readouterr().out
    assert "localizations in 4 frames" in summary and "frames/s" in summary
    table = read_table(out)
    assert {"frame", "x_nm", "y_nm", "photons", "prob"} <= set(table.columns)
    assert len(table) > 0
    assert table.frame.between(1, 4).all()
    assert table.x_nm.between(0, 24 * 110.0).all() and table.y_nm.between(0, 24 * 110.0).all()


_ARGV = ["predict", "{d}/movie.ome.tif", "--checkpoint", "{d}/unet1.pt", "--out", "{o}/l.csv"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["predict", "{d}/missing.tif", "--checkpoint", "{d}/unet1.pt", "--out", "{o}/l.csv"],
            "file not found",
        ),
        (
            [*_ARGV, "--camera-e-per-adu", "0"],
            "e-per-adu",
        ),
        (
            [*_ARGV, "--camera-qe", "1.5"],
            "qe",
        ),
        (
            ["predict", "{d}/single.ome.tif", "--checkpoint", "{d}/unet3.pt", "--out", "{o}/l.csv"],
            "3 consecutive",
        ),
        (
            ["predict", "{d}/movie.ome.tif", "--checkpoint", "{d}/unet1.pt", "--out", "{o}/nope/l.csv"],
            "does not exist",
        ),
        (
            ["predict", "{d}/movie.ome.tif", "--checkpoint", "{d}/missing.pt", "--out", "{o}/l.csv"],
            "missing.pt",
        ),
        (
            [*_ARGV, "--scale", "2"],
            "not produced by this model",
        ),
        (
            [*_ARGV, "--scale", "0"],
            "--scale",
        ),
    ],
)
def test_predict_errors_are_one_line(files, tmp_path, capsys, argv, message):
    rc = run_cli(*[a.format(d=files, o=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("var-emitter predict: error:")
    assert message in err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(("flag", "split"), [([], True), (["--no-split"], False)])
def test_predict_split_flag_reaches_the_predictor(files, tmp_path, monkeypatch, flag, split):
    import napari_var_emitter.inference as inference

    seen = {}
    real = inference.Predictor

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "Predictor", spy)
    argv = [
        "predict",
        files / "movie.ome.tif",
        "--checkpoint",
        files / "unet1.pt",
        "--out",
        tmp_path / "l.csv",
    ]
    assert run_cli(*argv, "--refine", "--no-progress", "--frames", 0, 2, *flag) == 0
    assert seen["refine"] is True and seen["split"] is split


def test_predict_warnings_are_one_line(files, tmp_path, capsys):
    movie, ckpt = files / "movie.ome.tif", files / "unet1.pt"
    argv = ["predict", movie, "--checkpoint", ckpt, "--out", tmp_path / "l.csv", "--pixel-size", 200]
    assert run_cli(*argv, "--no-progress") == 0
    err = capsys.readouterr().err
    assert "var-emitter predict: warning: pixel size 200 nm differs" in err
    assert "UserWarning" not in err and ".py:" not in err
