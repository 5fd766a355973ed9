"""GUI tests of the render dock widget (run under ``xvfb-run -a``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_var_emitter.napari.widgets import _common
from napari_var_emitter.napari.widgets.render import RenderWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(_common, "show_error", lambda message: shown.append(str(message)))
    return shown


@pytest.mark.parametrize("method", ["histogram", "gaussian"])
def test_render_lands_on_the_points(make_napari_viewer, qtbot, errors, method):
    viewer = make_napari_viewer()
    x = np.array([1234.0, 1236.0, 1238.0, 505.0])
    y = np.array([777.0, 779.0, 775.0, 2010.0])
    table = pd.DataFrame({"frame": [0, 1, 2, 3], "x_nm": x, "y_nm": y, "photons": 1000.0})
    viewer.add_points(np.c_[table.frame, y, x], features=table, name="locs")
    widget = RenderWidget(viewer)
    assert widget.points.value is viewer.layers["locs"]
    widget.pixel_size.value = 20.0
    widget.method.value = method
    widget.render_button.clicked.emit()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert errors == []
    image = viewer.layers["locs render"]
    np.testing.assert_allclose(image.scale, (20.0, 20.0))
    np.testing.assert_allclose(image.translate, (10.0, 10.0))
    i, j = np.unravel_index(np.argmax(image.data), image.data.shape)
    wy, wx = image.data_to_world((i, j))
    assert abs(wy - 777.0) <= 20 and abs(wx - 1236.0) <= 20  # the brightest pixel covers the cluster
    if method == "histogram":
        assert image.data.sum() == pytest.approx(4)
    # rendering again replaces the image
    widget.render()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert [layer.name for layer in viewer.layers] == ["locs", "locs render"]


def test_render_without_points_is_a_notification(make_napari_viewer, errors):
    viewer = make_napari_viewer()
    widget = RenderWidget(viewer)
    widget.render()
    assert errors and "No points layer" in errors[-1]
