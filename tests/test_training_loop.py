"""The trainer: checkpoints and TensorBoard, exact resume, stopping from another thread, NaN handling."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading

import numpy as np
import pytest
import torch

from _training_helpers import TINY_UNET, TINY_VAR, tiny_config
from napari_var_emitter.checkpoints import load_checkpoint, load_model
from napari_var_emitter.training import train
from napari_var_emitter.training import trainer as trainer_module


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class StopAt:
    """Callback: set ``event`` when ``step`` is reached (what the GUI's Stop button does)."""

    def __init__(self, step: int, event: threading.Event):
        self.step, self.event = step, event

    def on_step(self, state):
        if state.step == self.step:
            self.event.set()


class Recorder:
    def __init__(self):
        self.steps, self.validations, self.checkpoints, self.started, self.ended = [], [], [], 0, 0

    def on_train_start(self, state):
        self.started += 1

    def on_step(self, state):
        self.steps.append((state.step, state.epoch, state.total_steps, state.loss, state.lr))

    def on_validation(self, state, metrics):
        self.validations.append(dict(metrics))

    def on_checkpoint(self, state, path):
        self.checkpoints.append(path.name)

    def on_train_end(self, state):
        self.ended += 1


def test_train_writes_checkpoints_history_and_calls_back(tmp_path):
    rec = Recorder()
    result = train(
        tiny_config(checkpoint={"every_n_epochs": 1, "keep": 1}),
        tmp_path / "run",
        callbacks=[rec],
        progress=False,
    )
    out = tmp_path / "run"
    assert result.last_checkpoint == out / "last.pt" and result.best_checkpoint == out / "best.pt"
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "epoch_002.pt", "last.pt"]  # keep=1
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert [h["epoch"] for h in result.history] == [0, 1]
    assert {"train_loss", "val_loss", "precision", "recall", "jaccard", "rmse_lat"} <= set(result.history[-1])
    assert rec.started == rec.ended == 1 and len(rec.validations) == 2
    assert [s[0] for s in rec.steps] == list(range(1, 9))
    step, epoch, total, loss, lr = rec.steps[-1]
    assert (step, epoch, total) == (8, 1, 8) and math.isfinite(loss) and lr > 0
    assert "last.pt" in rec.checkpoints and "best.pt" in rec.checkpoints
    assert "train_state" in load_checkpoint(out / "last.pt") and "train_state" not in load_checkpoint(
        out / "best.pt"
    )
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["simulation"]["photons"] == [2000.0, 5000.0] and ckpt["pixel_size_nm"] == 100.0
    assert ckpt["training"]["config"]["batch_size"] == 4


def test_resume_is_exact(tmp_path):
    cfg = tiny_config(scheduled_sampling={"start": 0.9, "end": 0.3, "anneal_from": 0.0, "anneal_to": 1.0})
    full = train(cfg, tmp_path / "full", progress=False)
    stop = threading.Event()
    part = train(cfg, tmp_path / "part", callbacks=[StopAt(3, stop)], stop_event=stop, progress=False)
    assert load_checkpoint(part.last_checkpoint)["training"]["step"] == 3  # stopped mid-epoch
    resumed = train(cfg, tmp_path / "part", resume=part.last_checkpoint, progress=False)
    a = load_checkpoint(full.last_checkpoint)
    b = load_checkpoint(resumed.last_checkpoint)
    assert b["training"]["step"] == a["training"]["step"] == 8
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=1e-6, msg=k)
    assert resumed.history[-1]["jaccard"] == pytest.approx(full.history[-1]["jaccard"])
    assert resumed.history[-1]["val_loss"] == pytest.approx(full.history[-1]["val_loss"], abs=1e-5)


def test_stop_from_another_thread_leaves_a_loadable_checkpoint(tmp_path):
    cfg = tiny_config(epochs=50)  # far more steps than the test waits for
    stop, running = threading.Event(), threading.Event()
    rec = Recorder()

    class Signal:
        def on_step(self, state):
            if state.step == 2:
                running.set()
                stop.wait(30)  # the GUI sets the event while this batch is being processed

    out: dict = {}
    worker = threading.Thread(
        target=lambda: out.setdefault(
            "result", train(cfg, tmp_path / "gui", callbacks=[rec, Signal()], stop_event=stop, progress=False)
        )
    )
    worker.start()
    assert running.wait(60)
    stop.set()
    worker.join(60)
    assert not worker.is_alive()
    result = out["result"]
    assert result.stop_reason == "stop requested"
    assert rec.steps[-1][0] == 2  # ended at the end of the batch during which stop was requested
    loaded = load_model(result.last_checkpoint)
    with torch.no_grad():
        outputs = loaded.model(torch.rand(1, 1, 16, 16) * 100)
    assert all(torch.isfinite(o).all() for o in outputs)


def _nan_on_calls(calls: set[int], monkeypatch):
    real = trainer_module.build_loss

    def build(*args, **kwargs):
        loss = real(*args, **kwargs)
        counter = {"n": 0}

        def wrapped(outputs, targets, progress, aux=None):
            total, comps = loss(outputs, targets, progress, aux)
            if outputs[0].requires_grad:  # training steps only, not validation
                counter["n"] += 1
                if counter["n"] in calls:
                    total = total * float("nan")
            return total, comps

        return wrapped

    monkeypatch.setattr(trainer_module, "build_loss", build)


def test_non_finite_loss_is_skipped_and_training_continues(tmp_path, monkeypatch, caplog):
    _nan_on_calls({2, 5}, monkeypatch)
    result = train(tiny_config(), tmp_path / "nan", progress=False)
    assert result.stop_reason == "finished"
    assert result.history[-1]["skipped_steps"] == 2 and result.history[-1]["step"] == 8
    assert math.isfinite(result.history[-1]["train_loss"])
    state = load_checkpoint(result.last_checkpoint)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())
    assert "non-finite loss" in caplog.text


def test_repeated_failures_roll_back_with_lower_lr(tmp_path, monkeypatch, caplog):
    _nan_on_calls({3, 4}, monkeypatch)
    result = train(
        tiny_config(stability={"max_failures": 2, "lr_drop": 0.5}), tmp_path / "rb", progress=False
    )
    assert "rolled back" in caplog.text
    ts = load_checkpoint(result.last_checkpoint)["train_state"]
    assert ts["scheduler"]["lr_scale"] == 0.5
    assert np.isfinite(result.history[-1]["train_loss"])


def test_validation_every_n_epochs_and_at_the_end(tmp_path):
    rec = Recorder()
    cfg = tiny_config(epochs=3, validation={"every_n_epochs": 2, "batch_size": 16})
    result = train(cfg, tmp_path / "v", callbacks=[rec], progress=False)
    assert ["jaccard" in h for h in result.history] == [False, True, True]  # epoch 2, then the last one
    assert len(rec.validations) == 2


def _sigint_on_calls(calls: dict[int, int], monkeypatch):
    """Send ``calls[n]`` real SIGINTs to this process in the middle of training step ``n`` (1-based)."""
    real = trainer_module.build_loss

    def build(*args, **kwargs):
        loss = real(*args, **kwargs)
        counter = {"n": 0}

        def wrapped(outputs, targets, progress, aux=None):
            if outputs[0].requires_grad:
                counter["n"] += 1
                for _ in range(calls.get(counter["n"], 0)):
                    os.kill(os.getpid(), signal.SIGINT)
            return loss(outputs, targets, progress, aux)

        return wrapped

    monkeypatch.setattr(trainer_module, "build_loss", build)


def _assert_same_weights(a_path, b_path):
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert b["training"]["step"] == a["training"]["step"]
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0, msg=k)


def test_ctrl_c_mid_epoch_saves_and_resumes_bit_for_bit(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="napari_var_emitter.training")
    cfg = tiny_config(scheduled_sampling={"start": 0.9, "end": 0.3, "anneal_from": 0.0, "anneal_to": 1.0})
    full = train(cfg, tmp_path / "full", progress=False)
    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as m:
        _sigint_on_calls({3: 1}, m)  # Ctrl-C while step 3 of 4 (epoch 0) is half done
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part", progress=False)
    assert signal.getsignal(signal.SIGINT) is handler  # the trainer's handler is gone again
    assert "--resume" in caplog.text
    assert load_checkpoint(tmp_path / "part" / "last.pt")["training"]["step"] == 3  # the step was finished
    resumed = train(cfg, tmp_path / "part", resume=tmp_path / "part" / "last.pt", progress=False)
    _assert_same_weights(full.last_checkpoint, resumed.last_checkpoint)
    assert [h["epoch"] for h in resumed.history] == [0, 1]
    assert "epoch 2/2:" in caplog.text and "epoch 0" not in caplog.text  # logged from 1, like epoch_XXX.pt
    assert resumed.history[-1]["val_loss"] == full.history[-1]["val_loss"]


def test_second_ctrl_c_aborts_at_once_and_keeps_the_last_consistent_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config()
    full = train(cfg, tmp_path / "full", progress=False)
    with monkeypatch.context() as m:
        _sigint_on_calls({6: 2}, m)  # two Ctrl-C in the middle of step 6: abort without a half-step save
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tmp_path / "part", progress=False)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["training"]["step"] == 4  # end of epoch 0
    resumed = train(cfg, tmp_path / "part", resume=tmp_path / "part" / "last.pt", progress=False)
    _assert_same_weights(full.last_checkpoint, resumed.last_checkpoint)


def test_cli_train_ctrl_c_exits_130_with_a_resumable_checkpoint(tmp_path, monkeypatch, capsys):
    import json

    from napari_var_emitter.cli import main

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config()))
    _sigint_on_calls({2: 1}, monkeypatch)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["training"]["step"] == 2 and "train_state" in ckpt


def test_checkpoint_names_the_scale_with_the_best_validation_jaccard(tmp_path, monkeypatch):
    """localize_scale None: the saved config names the scale of the best validation JI (a finer scale must
    beat coarser ones by 0.005); an explicit localize_scale is kept; the Predictor localizes on it."""
    from napari_var_emitter.inference import Predictor

    fake = {"jaccard_s1": 0.80, "jaccard_s2": 0.83}

    real_validate = trainer_module.Trainer.validate

    def validate(self):
        metrics = real_validate(self)
        assert {"jaccard_s1", "jaccard_s2"} <= set(metrics)  # every scale is scored
        return {**metrics, **fake}

    monkeypatch.setattr(trainer_module.Trainer, "validate", validate)
    result = train(tiny_config(epochs=1), tmp_path / "a", progress=False)
    assert load_checkpoint(result.last_checkpoint)["model_config"]["localize_scale"] == 2
    assert Predictor(result.last_checkpoint, device="cpu").scale == 2
    assert Predictor(result.last_checkpoint, device="cpu", scale=1).scale == 1

    fake.update(jaccard_s2=0.803)  # not better by 0.005: camera resolution
    result = train(tiny_config(epochs=1), tmp_path / "b", progress=False)
    assert load_checkpoint(result.last_checkpoint)["model_config"]["localize_scale"] == 1

    model = {**TINY_VAR, "localize_scale": 1}
    fake.update(jaccard_s2=0.9)
    result = train(tiny_config(model, epochs=1), tmp_path / "c", progress=False)
    assert load_checkpoint(result.last_checkpoint)["model_config"]["localize_scale"] == 1


def test_init_from_a_checkpoint_and_train_only_some_parameters(tmp_path):
    """A second stage: start from a checkpoint's weights and train the fine heads alone; everything else
    keeps the first stage's values exactly."""
    from napari_var_emitter.errors import CheckpointError, ParameterError

    first = train(tiny_config(epochs=1), tmp_path / "a", progress=False).last_checkpoint
    cfg = tiny_config(epochs=1, init_from=str(first), train_only=["fine."], seed=5)
    second = train(cfg, tmp_path / "b", progress=False).last_checkpoint
    a, b = load_checkpoint(first)["state_dict"], load_checkpoint(second)["state_dict"]
    fine = [k for k in a if k.startswith("fine.")]
    assert fine and any(not torch.equal(a[k], b[k]) for k in fine)
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("fine."))
    with pytest.raises(ParameterError, match="train_only"):
        train(tiny_config(epochs=1, train_only=["nothing."]), tmp_path / "c", progress=False)
    unet = train(tiny_config(TINY_UNET, epochs=1), tmp_path / "d", progress=False).last_checkpoint
    with pytest.raises(CheckpointError, match="init_from"):
        train(tiny_config(epochs=1, init_from=str(unet)), tmp_path / "e", progress=False)
    with pytest.raises(CheckpointError, match="missing.pt: init_from: no such checkpoint file"):
        train(tiny_config(epochs=1, init_from=str(tmp_path / "missing.pt")), tmp_path / "f", progress=False)


def test_a_second_stage_adds_a_count_head_and_trains_it_alone(tmp_path):
    """init_from a checkpoint without a count head into a model with one: allowed when train_only trains
    the new head (everything else keeps its values), refused with a one-line error naming it otherwise."""
    from napari_var_emitter.errors import CheckpointError

    first = train(tiny_config(epochs=1), tmp_path / "a", progress=False).last_checkpoint
    model = {**TINY_VAR, "count_head": True, "refine_threshold": 0.001}  # an untrained 1x: all candidates
    cfg = tiny_config(model, epochs=1, init_from=str(first), train_only=["count."])
    second = train(cfg, tmp_path / "b", progress=False).last_checkpoint
    a, b = load_checkpoint(first)["state_dict"], load_checkpoint(second)["state_dict"]
    assert any(k.startswith("count.") for k in b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    last = load_checkpoint(second)["training"]["history"][-1]  # validation scores the count head too
    assert 0.0 <= last["count_accuracy"] <= 1.0
    with pytest.raises(CheckpointError, match="init_from: weights do not match .*missing: count"):
        train(tiny_config(model, epochs=1, init_from=str(first), train_only=["fine."]), tmp_path / "c")
