"""GUI tests of the post-processing dock widget (run under ``xvfb-run -a``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _postprocessing_helpers import drift_truth, drifted_table, still_table
from napari_var_emitter.napari._reader import table_to_points
from napari_var_emitter.napari.widgets import _common
from napari_var_emitter.napari.widgets.postprocess import PostprocessWidget
from napari_var_emitter.napari.widgets.render import RenderWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(_common, "show_error", lambda message: shown.append(str(message)))
    return shown


def _add(viewer, table: pd.DataFrame, name: str):
    data, kwargs, _ = table_to_points(table, name=name)
    return viewer.add_points(data, **kwargs)


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)


def test_range_filters_make_a_live_filtered_layer(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "frame": np.arange(300),
            "x_nm": rng.uniform(0, 3000, 300),
            "y_nm": rng.uniform(0, 3000, 300),
            "photons": rng.uniform(100, 5000, 300),
            "sigma_x_nm": rng.uniform(5, 40, 300),
        }
    )
    source = _add(viewer, table, "locs")
    widget = PostprocessWidget(viewer)
    assert widget.source.value is source and widget.column.value == "photons"
    assert "sigma_x_nm" in widget.column.choices and "x_nm" not in widget.column.choices
    widget.set_range("photons", 1000.0, 6000.0)
    filtered = viewer.layers["locs filtered"]
    assert len(filtered.data) == int((table.photons >= 1000).sum())
    widget.set_range("sigma_x_nm", 0.0, 20.0)
    expected = table[(table.photons >= 1000) & (table.sigma_x_nm <= 20)]
    filtered = viewer.layers["locs filtered"]
    np.testing.assert_allclose(np.sort(filtered.features["x_nm"]), np.sort(expected["x_nm"]))
    # same nm world coordinates as the source, and the source is untouched
    np.testing.assert_allclose(filtered.data[:, 2], filtered.features["x_nm"])
    assert len(source.data) == 300
    assert widget.hist_figure.axes and "sigma_x_nm" in widget.filter_status.value
    widget.reset_filters()
    assert len(viewer.layers["locs filtered"].data) == 300
    # typing in the spin boxes updates the filtered layer by itself (debounced)
    widget.column.value = "photons"
    widget.lo.value = 2500.0
    expected = int((table.photons >= 2500).sum())
    qtbot.waitUntil(lambda: len(viewer.layers["locs filtered"].data) == expected, timeout=10_000)
    assert errors == []


def test_drift_correction_layer_and_curve(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    table = drifted_table(2)
    _add(viewer, table, "drifted")
    widget = PostprocessWidget(viewer)
    widget.correct_drift()
    _wait(qtbot, widget)
    assert errors == []
    layer = viewer.layers["drifted drift corrected"]
    corrected = layer.features
    assert len(corrected) == len(table)
    # the corrected positions sit on the structure again (truth columns travel as features)
    err = corrected[["x_nm", "y_nm"]].to_numpy() - corrected[["x_true_nm", "y_true_nm"]].to_numpy()
    err -= err.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(err**2, axis=1))) < 20
    raw = table[["x_nm", "y_nm"]].to_numpy() - table[["x_true_nm", "y_true_nm"]].to_numpy()
    assert np.sqrt(np.mean(np.sum((raw - raw.mean(0)) ** 2, axis=1))) > 100
    assert np.ptp(drift_truth()[:, 0]) > 250
    lines = widget.plot_figure.axes[0].get_lines()
    assert len(lines[0].get_xdata()) == 20000
    assert "Drift corrected" in widget.status.value
    # the render widget renders the new layer
    render = RenderWidget(viewer)
    render.points.value = viewer.layers["drifted drift corrected"]
    render.render_button.clicked.emit()
    qtbot.waitUntil(lambda: not render.running, timeout=30_000)
    assert "drifted drift corrected render" in viewer.layers and errors == []


def test_grouping_and_frc(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    table = still_table()
    source = _add(viewer, table, "still")
    widget = PostprocessWidget(viewer)
    widget.max_dark.value = 1
    widget.group()
    _wait(qtbot, widget)
    grouped = viewer.layers["still grouped"]
    assert len(table) / 4 < len(grouped.data) < len(table) / 2
    assert grouped.features["n_frames"].sum() == len(table)
    widget.frc()
    _wait(qtbot, widget)
    assert errors == [] and "FRC resolution" in widget.status.value and "all points" in widget.status.value
    # FRC of a selection
    source.selected_data = set(range(5000))
    widget.frc()
    _wait(qtbot, widget)
    assert "5,000 selected points" in widget.status.value
    assert [layer.name for layer in viewer.layers] == ["still", "still grouped"]


def test_errors_are_notifications(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    widget = PostprocessWidget(viewer)
    widget.correct_drift()
    assert errors and "No points layer" in errors[-1]
    rng = np.random.default_rng(0)
    sparse = pd.DataFrame(
        {
            "frame": rng.integers(0, 20000, 300),
            "x_nm": rng.uniform(0, 5000, 300),
            "y_nm": rng.uniform(0, 5000, 300),
        }
    )
    _add(viewer, sparse, "sparse")
    widget.correct_drift()
    _wait(qtbot, widget)
    assert "too sparse to correlate" in errors[-1] and "\n" not in errors[-1]
    assert "sparse drift corrected" not in viewer.layers
