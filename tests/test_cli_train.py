"""``var-emitter train``: dry run writes nothing; a tiny run writes checkpoints and TensorBoard events."""

from __future__ import annotations

import json

import pytest
import torch

from _training_helpers import tiny_config
from napari_var_emitter.checkpoints import load_model
from napari_var_emitter.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cfg_path(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_config()))
    return path


def test_dry_run_writes_nothing(cfg_path, tmp_path, capsys):
    out = tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--dry-run"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] > 0 and info["macs_per_pixel"] > 0 and info["loss"] > 0
    assert info["outputs"] == [[1, 6, 16, 16], [1, 6, 32, 32]]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == before


def test_train_tiny_config(cfg_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--steps", "5", "--no-progress"]) == 0
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "finished" in capsys.readouterr().out
    assert load_model(out / "last.pt").meta["training"]["step"] == 5


def test_bad_config_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tiny_config(optimizer={"lr": 0})))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.json: key 'optimizer.lr'" in err
    assert not (tmp_path / "o").exists()


def test_missing_out_and_bad_steps(cfg_path, capsys):
    assert main(["train", "--config", str(cfg_path)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg_path), "--out", "x", "--steps", "0"]) == 2
