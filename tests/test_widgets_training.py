"""GUI tests of the training dock widget (run under ``xvfb-run -a``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _widgets_helpers import IDEAL, PX, TINY, spot_movie
from napari_var_emitter.napari.widgets import _common
from napari_var_emitter.napari.widgets.inference import InferenceWidget
from napari_var_emitter.napari.widgets.training import TrainingWidget

pytestmark = pytest.mark.gui
torch.set_num_threads(1)
WAIT_MS = 120_000


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(_common, "show_error", lambda message: shown.append(str(message)))
    return shown


def _small_config(tmp_path):
    """A config JSON with a tiny model, small tiles and a small validation set."""
    config = {
        "model": {"kind": "var", **TINY, "tile_size": 16, "margin": 4},
        "data": {
            "kind": "simulation",
            "simulation": {"frame_size": [16, 16], "camera": IDEAL.model_dump()},
            "tile_size": 16,
            "steps_per_epoch": 2,
            "val_frames": 4,
        },
        "batch_size": 2,
        "epochs": 2,
        "validation": {"batch_size": 4},
        "scheduler": {"warmup_steps": 1},
        "log_every": 1,
        "device": "cpu",
    }
    path = tmp_path / "small.json"
    path.write_text(json.dumps(config))
    return path


def test_train_plot_stop_resume_and_use_in_inference(make_napari_viewer, qtbot, tmp_path, errors):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    widget.config_file.value = _small_config(tmp_path)
    widget.load_config_button.clicked.emit()
    assert errors == []
    assert widget.model.value == "as in loaded config"
    assert widget.steps_per_epoch.value == 2
    assert widget.camera.camera_type.value == "ideal"
    widget.epochs.value = 200
    widget.out_dir.value = tmp_path / "run"
    widget.start_button.clicked.emit()
    assert widget.running
    qtbot.waitUntil(lambda: len(widget.plot.history["val"]) >= 1 or not widget.running, timeout=WAIT_MS)
    assert errors == []
    widget.stop_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert errors == []
    # the live plot shows training and validation losses and the Jaccard index
    assert len(widget.plot.train_line.get_xdata()) >= 2
    assert len(widget.plot.val_line.get_xdata()) >= 1
    assert len(widget.plot.jaccard_line.get_xdata()) >= 1
    assert widget.progress.value < widget.progress.max  # stopped early
    last = tmp_path / "run" / "last.pt"
    assert last.is_file()
    stopped_at = widget.progress.value

    # resume continues from last.pt
    epochs = stopped_at // 2 + 2
    widget.epochs.value = epochs
    widget.resume_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert errors == []
    assert widget.progress.value == widget.progress.max == 2 * epochs > stopped_at

    # one click makes it the inference widget's model, which then runs
    inference = InferenceWidget(viewer)
    assert widget.use_button.enabled
    widget.use_button.clicked.emit()
    try:
        assert inference.model.current_choice == "last trained model"
        assert inference.checkpoint_path() == widget.checkpoint_path()
        viewer.add_image(
            spot_movie(np.array([[800.0, 900.0], [1000.0, 700.0]]), shape=(16, 16)),
            name="movie",
            scale=(1, PX, PX),
            translate=(0, PX / 2, PX / 2),
            metadata={"pixel_size_nm": PX, "camera": IDEAL.model_dump()},
        )
        inference.image.value = viewer.layers["movie"]
        inference.run()
        qtbot.waitUntil(lambda: not inference.running, timeout=WAIT_MS)
        assert errors == []
        assert "2 of 2 frames" in inference.summary.value
    finally:
        _common.set_last_checkpoint(None)


def test_estimate_from_image_fills_simulation_parameters(make_napari_viewer, tmp_path, errors):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(3)
    positions = rng.uniform(600, 2600, size=(20, 2))
    frames = spot_movie(positions, photons=3000.0, bg=40.0, sigma_px=1.3)
    frames = rng.poisson(frames).astype(np.float32)
    viewer.add_image(frames, name="movie", metadata={"pixel_size_nm": PX, "camera": IDEAL.model_dump()})
    widget = TrainingWidget(viewer)
    widget.estimate_layer.value = viewer.layers["movie"]
    widget.estimate_button.clicked.emit()
    assert errors == []
    bg_lo, bg_hi = widget.background.value
    assert bg_lo <= 40 <= bg_hi
    assert widget.photons.lo.value <= 3000 * 1.1 and widget.photons.hi.value >= 3000 * 0.8
    assert widget.sigma_px.lo.value - 0.2 <= 1.3 <= widget.sigma_px.hi.value + 0.2
    assert widget.camera.camera_type.value == "ideal"  # the layer's camera
    config = widget.config()
    assert config.data.simulation.background == (bg_lo, bg_hi)
    assert config.data.simulation.camera.type == "ideal"


def test_bad_inputs_become_notifications(make_napari_viewer, tmp_path, errors):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    widget.start_button.clicked.emit()  # no output folder
    assert "output folder" in errors[-1]
    widget.out_dir.value = tmp_path
    widget.resume_button.clicked.emit()  # nothing to resume
    assert "last.pt" in errors[-1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochs": 0, "nonsense": 1}))
    widget.config_file.value = bad
    widget.load_config_button.clicked.emit()
    assert "bad.json" in errors[-1] and "nonsense" in errors[-1]
    widget.source.value = "labelled files"
    widget.start_button.clicked.emit()  # no stack chosen
    assert "camera stack" in errors[-1]
    widget.estimate_button.clicked.emit()  # no image layer
    assert "No image layer" in errors[-1]
    assert not widget.running


def test_closing_napari_stops_training_with_a_loadable_checkpoint(
    make_napari_viewer, qtbot, tmp_path, errors
):
    from napari_var_emitter.checkpoints import load_checkpoint

    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.load_config(_small_config(tmp_path))
    widget.epochs.value = 500
    widget.out_dir.value = tmp_path / "run"
    widget.start()
    qtbot.waitUntil(lambda: widget.progress.value >= 1, timeout=WAIT_MS)
    viewer.close()  # napari cancels its running workers: the training stops and saves
    assert widget._done.is_set()
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert 1 <= checkpoint["training"]["step"] < 1000
