"""Take the user guide's screenshots from a real napari window (run under a virtual display).

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/make_screenshots.py [--checkpoint PATH] [--steps N]

Opens the simulated sample movie, trains a small model from the training widget (or uses ``--checkpoint``),
runs the inference widget with it, renders the localizations, and saves PNGs to ``docs/images/``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_var_emitter.napari._sample_data import simulated_movie
from napari_var_emitter.napari.widgets.inference import InferenceWidget
from napari_var_emitter.napari.widgets.render import RenderWidget
from napari_var_emitter.napari.widgets.training import TrainingWidget

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def wait_until(predicate, timeout: float = 1800.0) -> None:
    """Process Qt events until ``predicate()`` is true."""
    end = time.monotonic() + timeout
    while not predicate():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for the widget")
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.01)


def shot(viewer: napari.Viewer, name: str) -> None:
    wait_until(lambda: True)
    viewer.screenshot(str(OUT / name), canvas_only=False, flash=False)
    print("wrote", OUT / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="model for the inference and render shots (default: the one trained)"
    )
    parser.add_argument("--steps", type=int, default=200, help="steps of the short training run shown")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    viewer = napari.Viewer(title="napari-var-emitter")
    viewer.window.resize(1500, 1150)
    for data, kwargs, kind in simulated_movie():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.layers["simulated ground truth"].visible = False
    viewer.layers.selection.active = viewer.layers["simulated SMLM movie"]
    shot(viewer, "01_sample_movie.png")

    # training
    training = TrainingWidget(viewer)
    dock = viewer.window.add_dock_widget(training, name="Train a model", area="right")
    out_dir = Path(tempfile.mkdtemp(prefix="var-emitter-train-"))
    per_epoch = max(10, args.steps // 4)
    config = {
        "model": {"kind": "var", "preset": "cpu", "n_frames": 1, "tile_size": 32, "margin": 6},
        "data": {"kind": "simulation", "tile_size": 32, "steps_per_epoch": per_epoch, "val_frames": 32},
        "batch_size": 8,
        "epochs": max(1, args.steps // per_epoch),
        "validation": {"batch_size": 32},
        "device": "cpu",
    }
    config_path = out_dir / "screenshot_config.json"
    config_path.write_text(json.dumps(config))
    training.load_config(config_path)
    training.estimate_layer.value = viewer.layers["simulated SMLM movie"]
    training.estimate_button.clicked.emit()
    training.out_dir.value = out_dir
    training.start_button.clicked.emit()
    wait_until(lambda: not training.running)
    shot(viewer, "02_training.png")
    training.use_button.clicked.emit()
    # the training shot always shows a short run; inference and render use --checkpoint when given
    checkpoint = args.checkpoint or training.checkpoint_path()
    viewer.window.remove_dock_widget(dock)

    # inference
    inference = InferenceWidget(viewer)
    dock = viewer.window.add_dock_widget(inference, name="Localize emitters", area="right")
    inference.set_checkpoint(checkpoint)
    inference.image.value = viewer.layers["simulated SMLM movie"]
    for f, box in inference.scale_boxes.items():
        box.value = f in (1, max(inference.scale_boxes))
    inference.run_button.clicked.emit()
    wait_until(lambda: not inference.running)
    viewer.dims.set_current_step(0, 3)
    viewer.camera.center = (0, 1600, 1600)
    viewer.camera.zoom = viewer.camera.zoom * 2.0
    shot(viewer, "03_inference.png")
    viewer.window.remove_dock_widget(dock)

    # render
    render = RenderWidget(viewer)
    viewer.window.add_dock_widget(render, name="Render", area="right")
    locs = "simulated SMLM movie localizations"
    render.points.value = viewer.layers[locs if locs in viewer.layers else "simulated ground truth"]
    render.pixel_size.value = 10.0
    render.method.value = "gaussian"
    render.render_button.clicked.emit()
    wait_until(lambda: not render.running)
    for layer in viewer.layers:
        layer.visible = layer.name.endswith("render")
    viewer.reset_view()
    shot(viewer, "04_render.png")
    viewer.close()


if __name__ == "__main__":
    main()
