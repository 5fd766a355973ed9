"""GUI tests of the inference dock widget (run under ``xvfb-run -a``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _widgets_helpers import IDEAL, PX, CentroidModel, spot_movie, tiny_checkpoint
from napari_var_emitter.napari.widgets import _common
from napari_var_emitter.napari.widgets.inference import InferenceWidget

pytestmark = pytest.mark.gui
torch.set_num_threads(1)
WAIT_MS = 60_000


@pytest.fixture
def errors(monkeypatch):
    """Messages shown with show_error by the widgets."""
    shown: list[str] = []
    monkeypatch.setattr(_common, "show_error", lambda message: shown.append(str(message)))
    return shown


@pytest.fixture
def checkpoint(tmp_path):
    return tiny_checkpoint(tmp_path / "tiny.pt")


def _camera_layer(viewer, frames, name="movie"):
    return viewer.add_image(
        frames,
        name=name,
        scale=(1, PX, PX),
        translate=(0, PX / 2, PX / 2),
        metadata={"pixel_size_nm": PX, "camera": IDEAL.model_dump()},
    )


def _run(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)


@pytest.fixture
def centroid_model(monkeypatch):
    """Checkpoints load as :class:`CentroidModel`, whose localizations are known exactly."""
    from napari_var_emitter import checkpoints

    def fake_load_model(path=None, device="cpu"):
        return checkpoints.LoadedModel(CentroidModel(), CentroidModel().config, IDEAL, PX, {}, path)

    monkeypatch.setattr(checkpoints, "load_model", fake_load_model)


def test_run_with_tiny_checkpoint_makes_map_layers(make_napari_viewer, qtbot, checkpoint, errors):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    frames = spot_movie(rng.uniform(800, 2400, size=(6, 2))) + rng.normal(0, 1, (6, 32, 32)).astype(
        np.float32
    )
    _camera_layer(viewer, frames)
    widget = InferenceWidget(viewer)
    widget.set_checkpoint(checkpoint)
    assert list(widget.scale_boxes) == [1, 2, 4, 8]
    # the widget opened on the bundled model with the scale it localizes on checked; that choice carries over
    from napari_var_emitter.checkpoints import default_checkpoint_path, load_checkpoint

    bundled = load_checkpoint(default_checkpoint_path())["model_config"]["localize_scale"]
    assert widget.selected_scales() == (bundled,)
    for box in widget.scale_boxes.values():
        box.value = True
    _run(qtbot, widget)
    assert errors == []
    for f in (1, 2, 4, 8):
        layer = viewer.layers[f"movie p x{f}"]
        assert layer.data.shape == (6, 32 * f, 32 * f)
        np.testing.assert_allclose(layer.scale, (1, PX / f, PX / f))
        np.testing.assert_allclose(layer.translate, (0, PX / (2 * f), PX / (2 * f)))
        assert 0.0 <= layer.data.min() and layer.data.max() <= 1.0
    assert "6 of 6 frames" in widget.summary.value


def test_overlay_peak_and_point_on_known_emitter(make_napari_viewer, qtbot, tmp_path, centroid_model, errors):
    """Every probability layer peaks, and the point sits, on the simulated emitter (world coordinates)."""
    truth = np.array([[1234.0, 1777.0], [640.0, 2210.0], [2905.0, 333.0]])  # (x, y) nm
    viewer = make_napari_viewer()
    _camera_layer(viewer, spot_movie(truth))
    widget = InferenceWidget(viewer)
    widget.set_checkpoint(tmp_path / "centroid.pt")
    for box in widget.scale_boxes.values():
        box.value = True
    _run(qtbot, widget)
    assert errors == []
    for f in (1, 2, 4, 8):
        layer = viewer.layers[f"movie p x{f}"]
        np.testing.assert_allclose(layer.scale, (1, PX / f, PX / f))
        np.testing.assert_allclose(layer.translate, (0, PX / (2 * f), PX / (2 * f)))
        for t, (x, y) in enumerate(truth):
            i, j = np.unravel_index(np.argmax(layer.data[t]), layer.data[t].shape)
            _, wy, wx = layer.data_to_world((t, i, j))
            # the peak pixel's centre is within half an output pixel of the emitter
            assert abs(wy - y) <= PX / (2 * f) + 1e-6 and abs(wx - x) <= PX / (2 * f) + 1e-6, (f, t)
    points = viewer.layers["movie localizations"]
    assert viewer.layers.extent.units is not None  # every layer in nm, the camera layer included
    order = np.argsort(points.data[:, 0])
    world = np.array([points.data_to_world(p) for p in points.data[order]])
    assert len(world) == len(truth)
    np.testing.assert_allclose(world[:, 0], [0, 1, 2])
    np.testing.assert_allclose(world[:, 1], truth[:, 1], atol=2.0)
    np.testing.assert_allclose(world[:, 2], truth[:, 0], atol=2.0)
    # the whole table is the features, the colours follow the chosen feature, points are ~px/2 wide
    for column in ("frame", "x_nm", "y_nm", "photons", "prob", "bg"):
        assert column in points.features
    np.testing.assert_allclose(points.data[:, 1], points.features["y_nm"])
    np.testing.assert_allclose(points.data[:, 2], points.features["x_nm"])
    assert points.size[0] == pytest.approx(PX / 2)
    assert points.metadata["pixel_size_nm"] == PX
    widget.color_by.value = "prob"
    assert points.face_color.shape == (3, 4)
    assert "3 localizations in 3 of 3 frames" in widget.summary.value
    # the camera layer's brightest pixel is the same one
    camera = viewer.layers["movie"]
    i, j = np.unravel_index(np.argmax(camera.data[0]), camera.data[0].shape)
    _, wy, wx = camera.data_to_world((0, i, j))
    assert abs(wy - truth[0, 1]) <= PX / 2 and abs(wx - truth[0, 0]) <= PX / 2

    # a second run replaces the layers instead of adding duplicates
    names = [layer.name for layer in viewer.layers]
    _run(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == names
    assert len(viewer.layers["movie localizations"].data) == 3


def test_maps_bounded_and_cancel_keeps_results(make_napari_viewer, qtbot, checkpoint, errors):
    """Maps only for the first N frames; cancelling mid-run keeps what was found; the GUI stays live."""
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    frames = spot_movie(rng.uniform(800, 2400, size=(400, 2)))
    _camera_layer(viewer, frames)
    widget = InferenceWidget(viewer)
    widget.set_checkpoint(checkpoint)
    widget.map_frames.value = 4
    widget.threshold.value = 0.05
    widget.scale_boxes[8].value = True
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(widget.run_state.done_frames if widget.run_state else 0))
    timer.start(20)
    widget.run_button.clicked.emit()
    assert widget.running
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: widget.run_state.done_frames > 0, timeout=WAIT_MS)
    widget.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    timer.stop()
    assert len(ticks) >= 2  # the event loop kept running during inference
    assert 0 < widget.run_state.done_frames < 400
    assert "cancelled" in widget.summary.value
    layer = viewer.layers["movie p x8"]
    assert layer.data.shape == (4, 256, 256)
    if widget.run_state.n_locs:
        assert len(viewer.layers["movie localizations"].data) == widget.run_state.n_locs


def test_errors_become_notifications(make_napari_viewer, qtbot, tmp_path, checkpoint, errors):
    viewer = make_napari_viewer()
    widget = InferenceWidget(viewer)
    widget.run()  # no image layer
    assert errors and "No image layer" in errors[-1]

    viewer.add_image(np.zeros((4, 16, 16, 3), dtype=np.uint8), name="rgb", rgb=True)
    widget.image.value = viewer.layers["rgb"]
    widget.run()
    assert "RGB" in errors[-1]
    assert not widget.running

    _camera_layer(viewer, spot_movie(np.array([[800.0, 800.0]] * 3)))
    widget.image.value = viewer.layers["movie"]
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(checkpoint.read_bytes()[:5000])  # a truncated download
    widget.set_checkpoint(bad)
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=WAIT_MS)
    assert "corrupt.pt" in errors[-1]
    assert widget.run_button.enabled


def test_last_trained_checkpoint_is_offered(make_napari_viewer, checkpoint):
    viewer = make_napari_viewer()
    widget = InferenceWidget(viewer)
    _common.set_last_checkpoint(checkpoint)
    try:
        assert widget.model.current_choice == "last trained model"
        assert widget.checkpoint_path() == checkpoint
    finally:
        _common.set_last_checkpoint(None)
    assert "last trained model" not in widget.model.choices


def test_camera_defaults_and_profile_save_load(make_napari_viewer, tmp_path, errors):
    """Every widget starts from the one default camera; a profile saved in one loads in another."""
    from napari_var_emitter.camera import CameraConfig
    from napari_var_emitter.napari.widgets.training import TrainingWidget

    viewer = make_napari_viewer()
    inference, training = InferenceWidget(viewer), TrainingWidget(viewer)
    # the training widget shows CameraConfig(); the inference widget the bundled checkpoint's camera
    assert training.camera.camera() == CameraConfig()
    form = inference.camera
    form.camera_type.value = "emccd"
    form.em_gain.value = 250.0
    form.e_per_adu.value = 11.0
    form.baseline.value = 500.0
    form.qe.value = 0.9
    form.profile.value = tmp_path / "cam.json"
    form.save_profile.clicked.emit()
    assert errors == []
    saved = CameraConfig.model_validate_json((tmp_path / "cam.json").read_text())
    assert (saved.type, saved.em_gain, saved.e_per_adu, saved.baseline, saved.qe) == (
        "emccd",
        250,
        11,
        500,
        0.9,
    )
    training.camera.profile.value = tmp_path / "cam.json"
    training.camera.load_profile.clicked.emit()
    assert errors == []
    assert training.camera.camera() == saved
    assert training.camera.em_gain.enabled
    training.camera.camera_type.value = "scmos"
    assert not training.camera.em_gain.enabled and training.camera.camera().em_gain == 1.0
    training.camera.profile.value = tmp_path / "missing.json"
    training.camera.load_profile.clicked.emit()
    assert "missing.json" in errors[-1]


def test_form_values_reach_the_predictor(make_napari_viewer, checkpoint):
    from napari_var_emitter.napari.widgets.inference_config import predictor_accepts

    viewer = make_napari_viewer()
    widget = InferenceWidget(viewer)
    widget.set_checkpoint(checkpoint)
    widget.threshold.value = 0.3
    widget.device.value = "cpu"
    widget.camera.baseline.value = 42.0
    # the tiny checkpoint records no training simulation: no automatic refinement
    assert widget.refine.enabled == predictor_accepts("refine")
    assert widget.refine.value is False
    assert not widget.split.enabled  # splitting close pairs is a step of the fit
    widget.refine.value = True
    assert widget.split.enabled and widget.split.value
    widget.split.value = False
    assert widget.hot_pixels.value  # replaced by default
    widget.hot_pixels.value = False
    kwargs = widget.predictor_kwargs()
    assert kwargs["model"] == checkpoint and kwargs["threshold"] == 0.3 and kwargs["device"] == "cpu"
    assert kwargs["camera"].baseline == 42.0
    assert kwargs.get("refine") is (True if predictor_accepts("refine") else None)
    assert kwargs.get("split") is (False if predictor_accepts("split") else None)
    assert kwargs["hot_pixels"] is False


def test_the_run_reports_the_hot_pixels_it_replaced(checkpoint):
    """The job's last metadata is what the run found (the points layer gets it), not what it knew before."""
    import threading

    from napari_var_emitter.io.stacks import Stack
    from napari_var_emitter.napari.widgets.inference_run import inference_job

    frames = np.random.default_rng(0).poisson(60, (6, 32, 32)).astype(np.uint16)
    frames[:, 5, 7] += 900
    stack = Stack(frames, PX)
    kwargs = {"model": checkpoint, "device": "cpu", "camera": IDEAL}
    with pytest.warns(UserWarning, match=r"1 hot pixel\(s\).*\(5, 7\)"):
        out = list(inference_job(kwargs, stack, range(6), 0, (), threading.Event()))
    metas = [value for kind, value in out if kind == "meta"]
    assert [kind for kind, _ in out].count("batch") >= 1
    assert metas[0]["hot_pixels_replaced"] == 0 and metas[-1]["hot_pixels_replaced"] == 1
