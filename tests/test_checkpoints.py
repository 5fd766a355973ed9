"""Checkpoints: round trip through load_model, and a clear CheckpointError for every kind of bad file."""

from __future__ import annotations

import pytest
import torch

from napari_var_emitter.camera import CameraConfig
from napari_var_emitter.checkpoints import (
    FORMAT,
    default_checkpoint_path,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from napari_var_emitter.errors import CheckpointError
from napari_var_emitter.models import UNetConfig, build_model


class NotAllowed:
    """A custom class: pickling it into a checkpoint makes weights_only loading refuse the file."""

    def __init__(self):
        self.payload = "print('this could run code')"


@pytest.fixture
def ckpt_path(tmp_path):
    cfg = UNetConfig(channels=(4, 8), n_frames=1, sigma_channels=False)
    model = build_model(cfg)
    path = save_checkpoint(
        tmp_path / "model.pt",
        model_config=cfg,
        state_dict=model.state_dict(),
        camera=CameraConfig(baseline=50.0),
        pixel_size_nm=110.0,
        simulation={"photons": [500, 5000]},
        training={"epoch": 3, "step": 30},
    )
    return path, model


def test_round_trip_loads_model_in_eval_mode(ckpt_path):
    path, model = ckpt_path
    loaded = load_model(path)
    assert not loaded.model.training
    assert loaded.pixel_size_nm == 110.0
    assert loaded.camera.baseline == 50.0
    assert loaded.model_config.kind == "unet"
    assert loaded.meta["training"]["step"] == 30
    assert loaded.meta["simulation"]["photons"] == [500, 5000]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[k], v)
    x = torch.rand(2, 1, 16, 16) * 100
    with torch.no_grad():
        out = loaded.model(x)
    assert out[0].shape == (2, 6, 16, 16)


def test_checkpoint_is_plain_data(ckpt_path):
    path, _ = ckpt_path
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == FORMAT and ckpt["format_version"] == 1
    assert isinstance(ckpt["model_config"], dict) and isinstance(ckpt["camera"], dict)
    assert not list(path.parent.glob("*.tmp*")), "atomic write left a temporary file"


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(ckpt_path, tmp_path):
    path, _ = ckpt_path
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated.pt.*(truncated|corrupt)"):
        load_checkpoint(bad)


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint at all" * 10, bytes(range(256)) * 12, b"PK\x03\x04 a broken zip", b"hello\n"],
    ids=["text", "random-bytes", "broken-zip", "one-line"],
)
def test_garbage_file(tmp_path, content):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(bad)


def test_foreign_checkpoint(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(3)}, "epoch": 5}, path)
    with pytest.raises(CheckpointError, match="foreign.pt.*not a napari-var-emitter checkpoint"):
        load_checkpoint(path)


def test_unknown_format_version(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "format_version": 99, "model_config": {}, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_checkpoint(path)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "payload": NotAllowed()}, path)
    with pytest.raises(CheckpointError, match="evil.pt.*contains Python objects or code; refused"):
        load_checkpoint(path)


class RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


def test_pickled_call_of_a_function_is_refused_as_code_not_as_corrupt(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="evil.pt.*contains Python objects or code; refused"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(ckpt_path, tmp_path):
    path, _ = ckpt_path
    ckpt = load_checkpoint(path)
    ckpt["model_config"]["channels"] = [8, 16]
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="mismatch.pt.*do not match"):
        load_model(tmp_path / "mismatch.pt")


def test_default_checkpoint_missing_is_clear(monkeypatch, tmp_path):
    monkeypatch.setattr(
        "napari_var_emitter.checkpoints.default_checkpoint_path", lambda: tmp_path / "default.pt"
    )
    with pytest.raises(CheckpointError, match="bundled default model is not installed"):
        load_model(None)
    assert default_checkpoint_path().name == "default.pt"


def test_checkpoint_of_the_earlier_fine_heads_is_refused_with_advice(tmp_path):
    """A VAR checkpoint whose 2x/4x/8x heads had no image input (config keys of that version) gets a one-line
    error that says to retrain, not a state-dict mismatch."""
    from napari_var_emitter.camera import CameraConfig
    from napari_var_emitter.checkpoints import load_model, save_checkpoint
    from napari_var_emitter.errors import CheckpointError

    config = {"kind": "var", "sparse_refine": True, "train_fine_crop": 16}
    path = save_checkpoint(
        tmp_path / "old.pt", model_config=config, state_dict={}, camera=CameraConfig(), pixel_size_nm=100.0
    )
    with pytest.raises(CheckpointError, match="earlier version.*retrain"):
        load_model(path)
