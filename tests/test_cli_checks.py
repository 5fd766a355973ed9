"""Fail fast and never overwrite silently: existing and unwritable outputs, bad numbers, bad metadata.

Every case answers with one line on stderr and exit code 2, before any work (a model is never loaded,
nothing is simulated or trained), and leaves existing files untouched.
"""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from _training_helpers import tiny_config
from napari_var_emitter import checkpoints
from napari_var_emitter.checkpoints import load_checkpoint, save_checkpoint
from napari_var_emitter.cli import main
from napari_var_emitter.io import read_emitters, write_emitters, write_stack, write_table
from napari_var_emitter.models import UNetConfig, build_model

UNWRITABLE = "/proc/var-emitter-test"  # a folder nobody (not even root) can create files in


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("checks")
    rng = np.random.default_rng(0)
    write_stack(d / "movie.ome.tif", rng.poisson(120, (4, 16, 16)).astype(np.uint16), 100.0)
    cfg = UNetConfig(n_frames=1, channels=(4, 8), sigma_channels=False)
    save_checkpoint(
        d / "unet.pt",
        model_config=cfg.model_dump(),
        state_dict=build_model(cfg).state_dict(),
        camera={"type": "scmos", "baseline": 100.0, "e_per_adu": 0.5, "qe": 0.8},
        pixel_size_nm=100.0,
    )
    assert main(["simulate", "--out", str(d / "sim"), "--frames", "6", "--frame-size", "24", "24"]) == 0
    truth = read_emitters(d / "sim" / "emitters.h5")
    write_table(truth, d / "locs.csv", metadata={"pixel_size_nm": 100.0})
    return d


def fails(capsys, argv, *words) -> str:
    """Run the CLI, expect exit 2 with one line on stderr containing ``words``; return that line."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model or simulating means the checks came too late."""

    def boom(*a, **k):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(checkpoints, "load_model", boom)
    monkeypatch.setattr("napari_var_emitter.simulation.simulate", boom)


# ------------------------------------------------------------------------------------- 1. no overwrites


def predict_args(files, out, *extra):
    return [
        "predict",
        files / "movie.ome.tif",
        "--checkpoint",
        files / "unet.pt",
        "--out",
        out,
        "--no-progress",
    ]


@pytest.mark.parametrize("name", ["locs.csv", "locs.h5"])
def test_predict_refuses_an_existing_table_unless_overwrite(files, tmp_path, capsys, no_model, name):
    out = tmp_path / name
    out.write_text("precious")
    fails(capsys, predict_args(files, out), name, "already exists", "--overwrite")
    assert out.read_text() == "precious"


def test_predict_h5_also_checks_its_yaml_sidecar_then_overwrite_replaces_both(files, tmp_path, capsys):
    out = tmp_path / "locs.h5"
    (tmp_path / "locs.yaml").write_text("precious")
    fails(capsys, [*predict_args(files, out)], "locs.yaml", "--overwrite")
    assert (tmp_path / "locs.yaml").read_text() == "precious" and not out.exists()
    assert main([str(a) for a in predict_args(files, out)] + ["--overwrite"]) == 0
    assert out.is_file() and "Pixelsize" in (tmp_path / "locs.yaml").read_text()


def test_render_refuses_an_existing_image_unless_overwrite(files, tmp_path, capsys):
    out = tmp_path / "sr.ome.tif"
    out.write_text("precious")
    fails(capsys, ["render", files / "locs.csv", "--out", out], "already exists", "--overwrite")
    assert out.read_text() == "precious"
    assert main(["render", str(files / "locs.csv"), "--out", str(out), "--overwrite"]) == 0
    assert out.stat().st_size > 100


def test_evaluate_out_dir_refuses_earlier_results_unless_overwrite(files, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("precious")
    (out / "notes.txt").write_text("mine")
    argv = [
        "evaluate",
        "--pred",
        files / "locs.csv",
        "--truth",
        files / "sim" / "emitters.h5",
        "--out-dir",
        out,
    ]
    fails(capsys, argv, "metrics.json", "--overwrite")
    assert (out / "metrics.json").read_text() == "precious"
    assert main([str(a) for a in argv] + ["--overwrite"]) == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["jaccard"] == 1.0
    assert (out / "notes.txt").read_text() == "mine"


@pytest.fixture
def tiny_cfg(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config(epochs=2, checkpoint={"every_n_epochs": 1, "keep": 5})))
    return path


def test_train_refuses_a_folder_with_a_run_unless_resume_or_overwrite(tiny_cfg, tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    train = ["train", "--config", str(tiny_cfg), "--out", str(out), "--no-progress"]
    assert main(train) == 0
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "epoch_001.pt", "epoch_002.pt", "last.pt"]
    before = (out / "last.pt").read_bytes()
    fails(capsys, train, "already holds a training run", "--resume", "--overwrite")
    assert (out / "last.pt").read_bytes() == before
    # --resume into the same folder is allowed (the run is already finished: nothing more to do)
    assert main([*train, "--resume", str(out / "last.pt")]) == 0
    fails(capsys, [*train, "--resume", str(out / "last.pt"), "--overwrite"], "--overwrite", "--resume")
    # --overwrite removes the old run first: no stale epoch files or TensorBoard events remain
    events_before = set((out / "tensorboard").glob("events.out.tfevents.*"))
    assert main([*train, "--epochs", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "epoch_001.pt", "last.pt"]
    assert load_checkpoint(out / "last.pt")["training"]["step"] == 4
    assert not events_before & set((out / "tensorboard").glob("events.out.tfevents.*"))


def test_napari_h5_writer_keeps_a_lone_yaml_but_replaces_its_own(tmp_path):
    from napari_var_emitter.errors import OutputFileError
    from napari_var_emitter.napari._writer import write_points_hdf5

    data, attrs = np.array([[0, 150.0, 250.0]]), {"metadata": {"pixel_size_nm": 100.0}}
    (tmp_path / "pts.yaml").write_text("precious")
    with pytest.raises(OutputFileError, match="pts.yaml"):
        write_points_hdf5(str(tmp_path / "pts.h5"), data, attrs)
    assert (tmp_path / "pts.yaml").read_text() == "precious" and not (tmp_path / "pts.h5").exists()
    (tmp_path / "pts.yaml").unlink()
    write_points_hdf5(str(tmp_path / "pts.h5"), data, attrs)
    # napari's save dialog asked before replacing pts.h5; its own sidecar goes with it
    write_points_hdf5(str(tmp_path / "pts.h5"), data * 2, attrs)
    assert "Pixelsize" in (tmp_path / "pts.yaml").read_text()


# ------------------------------------------------------------------------------------- 2. unwritable


def test_unwritable_outputs_fail_before_any_work(files, tmp_path, capsys, no_model, tiny_cfg):
    fails(capsys, predict_args(files, f"{UNWRITABLE}/x.csv"), "cannot write")
    fails(capsys, predict_args(files, tmp_path / "missing" / "x.csv"), "does not exist")
    (tmp_path / "dir.csv").mkdir()
    fails(capsys, predict_args(files, tmp_path / "dir.csv"), "is a folder")
    fails(capsys, ["render", files / "locs.csv", "--out", f"{UNWRITABLE}/x.tif"], "cannot write")
    argv = ["evaluate", "--pred", files / "locs.csv", "--truth", files / "sim" / "emitters.h5"]
    fails(capsys, [*argv, "--out-dir", f"{UNWRITABLE}/eval"], "cannot write")
    fails(capsys, ["simulate", "--out", f"{UNWRITABLE}/sim", "--frames", "2"], "cannot write")
    afile = tmp_path / "afile"
    afile.write_text("")
    fails(capsys, ["simulate", "--out", afile, "--frames", "2"], "not a folder")
    fails(capsys, ["train", "--config", tiny_cfg, "--out", afile], "not a folder")
    fails(capsys, ["train", "--config", tiny_cfg, "--out", f"{UNWRITABLE}/run"], "cannot write")
    assert not (tmp_path / "run").exists()


def test_train_with_a_missing_or_corrupt_resume_checkpoint_creates_nothing(tiny_cfg, tmp_path, capsys):
    out = tmp_path / "new"
    fails(
        capsys, ["train", "--config", tiny_cfg, "--out", out, "--resume", tmp_path / "nope.pt"], "not found"
    )
    assert not out.exists()
    (tmp_path / "junk.pt").write_bytes(b"junk")
    fails(capsys, ["train", "--config", tiny_cfg, "--out", out, "--resume", tmp_path / "junk.pt"], "junk.pt")
    assert not out.exists()  # the checkpoint is refused before the output folder (or its logs) is created


def test_nan_frames_are_reported_with_the_movie_name(files, tmp_path, capsys):
    frames = np.full((3, 16, 16), 120.0, np.float32)
    frames[1, 4, 4] = np.nan
    write_stack(tmp_path / "nan.ome.tif", frames, 100.0)
    argv = [
        "predict",
        tmp_path / "nan.ome.tif",
        "--checkpoint",
        files / "unet.pt",
        "--out",
        tmp_path / "x.csv",
    ]
    fails(capsys, [*argv, "--no-progress"], "nan.ome.tif", "NaN")
    assert not (tmp_path / "x.csv").exists()


def test_a_folder_given_as_the_movie_is_named_as_a_folder(files, tmp_path, capsys, no_model):
    argv = ["predict", tmp_path, "--checkpoint", files / "unet.pt", "--out", tmp_path / "x.csv"]
    fails(capsys, argv, "is a folder")


# ------------------------------------------------------------------------------------- 3. bad numbers

BAD_NUMBERS = {
    "render": [
        (["--pixel-nm", "inf"], "--pixel-nm"),
        (["--pixel-nm", "0"], "--pixel-nm"),
        (["--sigma-nm", "nan"], "--sigma-nm"),
        (["--sigma-nm", "-1"], "--sigma-nm"),
        (["--frames", "10", "5"], "--frames"),
        (["--frames", "-1", "5"], "--frames"),
    ],
    "simulate": [
        (["--background", "nan", "10"], "--background"),
        (["--background", "10", "5"], "--background"),
        (["--photons", "100", "inf"], "--photons"),
        (["--pixel-size", "inf"], "--pixel-size"),
        (["--density", "nan"], "--density"),
        (["--qe", "1.5"], "--qe"),
        (["--baseline", "70000"], "baseline"),
        (["--baseline", "65000", "--background", "500", "600"], "saturated"),
        (["--frame-size", "0", "10"], "--frame-size"),
    ],
    "predict": [
        (["--max-sigma-nm", "-1"], "--max-sigma-nm"),
        (["--max-sigma-nm", "nan"], "--max-sigma-nm"),
        (["--pixel-size", "inf"], "--pixel-size"),
        (["--camera-e-per-adu", "inf"], "--camera-e-per-adu"),
        (["--camera-qe", "0"], "--camera-qe"),
        (["--camera-baseline", "nan"], "--camera-baseline"),
        (["--threshold", "1.5"], "--threshold"),
        (["--frames", "3", "3"], "--frames"),
        (["--batch-size", "0"], "--batch-size"),
    ],
    "evaluate": [
        (["--tolerance-nm", "nan"], "--tolerance-nm"),
        (["--tolerance-nm", "-5"], "--tolerance-nm"),
        (["--tolerance-z-nm", "inf"], "--tolerance-z-nm"),
        (["--border-px", "-1"], "--border-px"),
    ],
}


@pytest.mark.parametrize(
    ("command", "extra", "flag"), [(c, e, f) for c, cases in BAD_NUMBERS.items() for e, f in cases]
)
def test_bad_numbers_fail_at_once_naming_the_flag(files, tmp_path, capsys, no_model, command, extra, flag):
    base = {
        "render": ["render", files / "locs.csv", "--out", tmp_path / "sr.tif"],
        "simulate": ["simulate", "--out", tmp_path / "sim", "--frames", "2"],
        "predict": predict_args(files, tmp_path / "x.csv"),
        "evaluate": ["evaluate", "--pred", files / "locs.csv", "--truth", files / "sim" / "emitters.h5"],
    }[command]
    fails(capsys, [*base, *extra], flag)
    assert list(tmp_path.iterdir()) == []


def test_render_summary_counts_only_what_it_drew(files, tmp_path, capsys):
    n_total = len(pd.read_csv(files / "locs.csv"))
    n_first = int((read_emitters(files / "sim" / "emitters.h5")["frame"] < 2).sum())
    assert (
        main(["render", str(files / "locs.csv"), "--out", str(tmp_path / "sr.tif"), "--frames", "0", "2"])
        == 0
    )
    assert f"rendered {n_first} of {n_total} localizations" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- 4. and 5. evaluate


def test_evaluate_border_px_reads_the_frame_size_of_the_projects_own_ground_truth(files, capsys):
    csv = files / "locs_noattrs.csv"  # a CSV carries no frame size: it must come from the emitter file
    pd.read_csv(files / "locs.csv").to_csv(csv, index=False)
    argv = ["evaluate", "--pred", csv, "--truth", files / "sim" / "emitters.h5", "--border-px", "2"]
    assert main([str(a) for a in argv]) == 0
    assert "jaccard" in capsys.readouterr().out


def test_evaluate_refuses_a_prediction_table_without_frames(files, tmp_path, capsys):
    df = pd.read_csv(files / "locs.csv").drop(columns=["frame"])
    df.to_csv(tmp_path / "noframe.csv", index=False)
    argv = ["evaluate", "--pred", tmp_path / "noframe.csv", "--truth", files / "sim" / "emitters.h5"]
    fails(capsys, argv, "noframe.csv", "frame column")


# ------------------------------------------------------------------------------------- 6. bad metadata


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("pixel_size_nm", "100", ["pixel_size_nm"]),
        ("pixel_size_nm", math.nan, ["pixel_size_nm"]),
        ("camera", {"type": "scmos", "qe": "high"}, ["camera", "qe"]),
        ("camera", {"type": "warp-drive"}, ["camera", "type"]),
        ("camera", [1, 2], ["camera"]),
        ("simulation", {"background": ["a", "b"]}, ["simulation.background"]),
    ],
)
def test_malformed_checkpoint_metadata_is_one_line_naming_the_field(
    files, tmp_path, capsys, field, value, words
):
    ckpt = torch.load(files / "unet.pt", weights_only=True)
    ckpt[field] = value
    torch.save(ckpt, tmp_path / "bad.pt")
    argv = [
        "predict",
        files / "movie.ome.tif",
        "--checkpoint",
        tmp_path / "bad.pt",
        "--out",
        tmp_path / "x.csv",
    ]
    fails(capsys, argv, "bad.pt", *words)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize(
    ("dataset", "data"),
    [
        ("positions", np.array([b"a", b"b"])),
        ("photons", np.array([b"a", b"b"])),
        ("frame", np.array([b"a", b"b"])),
        ("background", np.array([b"a", b"b"])),
    ],
)
def test_wrongly_typed_emitter_datasets_are_one_line_in_evaluate_and_the_napari_reader(
    files, tmp_path, capsys, dataset, data
):
    from napari_var_emitter.errors import InputFileError
    from napari_var_emitter.napari._reader import get_table_reader

    path = tmp_path / "truth.h5"
    write_emitters(
        pd.DataFrame({"frame": [0, 1], "x_nm": [1.0, 2.0], "y_nm": [1.0, 2.0], "photons": [1.0, 2.0]}), path
    )
    with h5py.File(path, "a") as f:
        if dataset in f:
            del f[dataset]
        f[dataset] = data
    fails(capsys, ["evaluate", "--pred", files / "locs.csv", "--truth", path], "truth.h5", dataset)
    reader = get_table_reader(str(path))
    assert reader is not None  # still an emitter file by its layout: the reader claims it, then refuses it
    with pytest.raises(InputFileError, match=dataset):
        reader(str(path))


def test_emitter_file_with_a_non_numeric_attribute_names_it(files, tmp_path, capsys):
    path = tmp_path / "truth.h5"
    write_emitters(pd.DataFrame({"frame": [0], "x_nm": [1.0], "y_nm": [1.0], "photons": [1.0]}), path)
    with h5py.File(path, "a") as f:
        f.attrs["frame_size"] = "big"
    fails(
        capsys, ["evaluate", "--pred", files / "locs.csv", "--truth", path, "--border-px", "1"], "frame_size"
    )
