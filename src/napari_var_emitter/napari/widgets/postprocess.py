"""Post-processing dock widget (magicgui): filter, drift correction, grouping and FRC of a points layer.

Every step makes a new points layer (same nm world coordinates, the table as ``features``) and keeps the
source: ``<name> filtered`` (updated live as the ranges change), ``<name> drift corrected`` and
``<name> grouped``. The render widget renders any of them. Long jobs run in thread workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Points
from superqt.utils import qdebounced

from ...errors import ParameterError
from .._reader import table_to_points
from ._common import notify_error, replace_layer, start_worker
from .render import points_table

if TYPE_CHECKING:
    import napari

#: columns never offered for range filtering (positions are filtered by drawing, not by range)
_NOT_FILTERED = ("x_nm", "y_nm")
_BIG = 1e15


def _table(layer: Points) -> pd.DataFrame:
    """The layer's localizations with the metadata the plugin's readers put in ``layer.metadata``."""
    table = points_table(layer)
    meta = layer.metadata or {}
    table.attrs = dict(meta.get("table_attrs") or {})
    if meta.get("pixel_size_nm"):
        table.attrs["pixel_size_nm"] = float(meta["pixel_size_nm"])
    return table


def _drift_job(table: pd.DataFrame, segment: int):
    from ...postprocessing import correct_drift

    return correct_drift(table, segment=segment)


def _group_job(table: pd.DataFrame, radius_nm: float | None, max_dark: int):
    from ...postprocessing import group_localizations

    return group_localizations(table, radius_nm=radius_nm, max_dark=max_dark)


def _frc_job(table: pd.DataFrame, pixel_nm: float):
    from ...postprocessing import frc_resolution

    return frc_resolution(table, pixel_nm=pixel_nm)


class PostprocessWidget(Container):
    """Histograms with live range filters, drift correction, grouping and FRC of a points layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = viewer
        self.worker = None
        self._ranges: dict[str, tuple[float, float]] = {}
        self._source_table: pd.DataFrame | None = None
        self._source_name: str | None = None

        self.source = ComboBox(label="points", choices=self._points_layers, nullable=True)
        self.column = ComboBox(label="column", choices=[])
        self.lo = FloatSpinBox(label="min", min=-_BIG, max=_BIG, step=1.0)
        self.hi = FloatSpinBox(label="max", min=-_BIG, max=_BIG, step=1.0)
        self.reset_button = PushButton(text="Reset filters")
        self.filter_status = Label(value="")
        self.segment = SpinBox(label="drift segment", value=1000, min=2, max=10_000_000, step=100)
        self.drift_button = PushButton(text="Correct drift")
        self.radius = FloatSpinBox(label="group radius nm", value=0.0, min=0.0, max=10_000.0, step=5.0)
        self.radius.tooltip = "0: five times the median predicted sigma (50 nm without sigmas)"
        self.max_dark = SpinBox(label="max dark frames", value=1, min=0, max=10_000)
        self.group_button = PushButton(text="Group")
        self.frc_pixel = FloatSpinBox(label="FRC pixel nm", value=5.0, min=0.5, max=500.0, step=1.0)
        self.frc_button = PushButton(text="FRC resolution")
        self.status = Label(value="")

        self.hist_figure = Figure(figsize=(4, 2.2), tight_layout=True)
        self.hist_canvas = FigureCanvasQTAgg(self.hist_figure)
        self.plot_figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.plot_canvas = FigureCanvasQTAgg(self.plot_figure)
        hist_box, plot_box = Container(labels=False), Container(labels=False)
        hist_box.native.layout().addWidget(self.hist_canvas)
        plot_box.native.layout().addWidget(self.plot_canvas)
        self.extend(
            [
                self.source,
                self.column,
                hist_box,
                self.lo,
                self.hi,
                self.reset_button,
                self.filter_status,
                self.segment,
                self.drift_button,
                self.radius,
                self.max_dark,
                self.group_button,
                self.frc_pixel,
                self.frc_button,
                self.status,
                plot_box,
            ]
        )
        self._schedule_filter = qdebounced(self.apply_filter, timeout=150)
        self.source.changed.connect(self._source_changed)
        self.column.changed.connect(self._column_changed)
        self.lo.changed.connect(self._range_changed)
        self.hi.changed.connect(self._range_changed)
        self.reset_button.changed.connect(self.reset_filters)
        self.drift_button.changed.connect(self.correct_drift)
        self.group_button.changed.connect(self.group)
        self.frc_button.changed.connect(self.frc)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self._layers_changed)
        self._layers_changed()

    # ------------------------------------------------------------------------------------------ layers
    def _points_layers(self, widget: Any = None) -> list[tuple[str, Points]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Points)]

    def _layers_changed(self, event: Any = None) -> None:
        try:
            self.source.reset_choices()
        except RuntimeError:  # the Qt widget is gone (viewer closing)
            return
        layers = [c for c in self.source.choices if c is not None]
        if self.source.value is None and layers:
            generated = (" filtered", " drift corrected", " grouped")
            originals = [c for c in layers if not c.name.endswith(generated)]
            self.source.value = (originals or layers)[0]

    @property
    def running(self) -> bool:
        return self.worker is not None

    def layer(self) -> Points:
        layer = self.source.value
        if layer is None or layer not in self.viewer.layers:
            raise ParameterError("No points layer selected: run the localization or open a table first.")
        return layer

    def _add_points(self, table: pd.DataFrame, name: str, source: Points) -> Points:
        data, kwargs, _ = table_to_points(table, name=name)
        if (source.metadata or {}).get("source"):  # the camera image it came from (the render widget uses it)
            kwargs["metadata"]["source"] = source.metadata["source"]
        return replace_layer(self.viewer, Points(data, **kwargs))

    # ----------------------------------------------------------------------------------------- filters
    def _source_changed(self, layer: Any = None) -> None:
        self._ranges = {}
        self._source_table = None
        self._source_name = None
        try:
            table = _table(self.layer())
        except ParameterError:
            self.column.choices = []
            self._draw_histogram()
            return
        self._source_table, self._source_name = table, self.layer().name
        numeric = [c for c in table.columns if table[c].dtype.kind in "biuf" and c not in _NOT_FILTERED]
        self.column.choices = numeric
        if numeric:
            self.column.value = "photons" if "photons" in numeric else numeric[0]
        self._column_changed()

    def _column_changed(self, value: Any = None) -> None:
        col, table = self.column.value, self._source_table
        if col is None or table is None:
            return
        values = table[col].to_numpy(np.float64)
        finite = values[np.isfinite(values)]
        lo, hi = self._ranges.get(col, (finite.min(), finite.max()) if len(finite) else (0.0, 0.0))
        step = float(np.ptp(finite)) / 100 if len(finite) else 1.0
        with self.lo.changed.blocked(), self.hi.changed.blocked():
            for box, v in ((self.lo, lo), (self.hi, hi)):
                box.step = step if step > 0 else 1.0
                box.value = float(v)
        self._draw_histogram()

    def _range_changed(self, value: Any = None) -> None:
        col = self.column.value
        if col is None or self._source_table is None:
            return
        self._ranges[col] = (float(self.lo.value), float(self.hi.value))
        self._draw_histogram()
        self._schedule_filter()

    def set_range(self, column: str, lo: float, hi: float) -> None:
        """Filter ``column`` to ``[lo, hi]`` (as the spin boxes do) and update the filtered layer now."""
        self.column.value = column
        with self.lo.changed.blocked(), self.hi.changed.blocked():
            self.lo.value, self.hi.value = lo, hi
        self._range_changed()
        self.apply_filter()

    def reset_filters(self, value: Any = None) -> None:
        self._ranges = {}
        self._column_changed()
        self.apply_filter()

    def apply_filter(self) -> None:
        """Make or update ``<source> filtered`` with the rows inside every range."""
        from ...postprocessing import range_mask

        table = self._source_table
        if table is None or self._source_name not in self.viewer.layers:
            return
        source = self.viewer.layers[self._source_name]
        name = f"{self._source_name} filtered"
        try:
            mask = range_mask(table, self._ranges)
        except ParameterError as exc:
            notify_error(exc, "Filtering")
            return
        kept = table.loc[mask].reset_index(drop=True)
        kept.attrs = dict(table.attrs)
        self._add_points(kept, name, source)
        active = [f"{lo:g} ≤ {c} ≤ {hi:g}" for c, (lo, hi) in self._ranges.items()]
        self.filter_status.value = f"{name}: {len(kept):,} of {len(table):,}" + (
            f" ({', '.join(active)})" if active else ""
        )

    def _draw_histogram(self) -> None:
        fig = self.hist_figure
        fig.clear()
        col, table = self.column.value, self._source_table
        if col is not None and table is not None:
            ax = fig.add_subplot(1, 1, 1)
            values = table[col].to_numpy(np.float64)
            values = values[np.isfinite(values)]
            if len(values):
                ax.hist(values, bins=80, color="0.55")
                lo, hi = self._ranges.get(col, (values.min(), values.max()))
                ax.axvspan(lo, hi, color="tab:blue", alpha=0.2)
            ax.set_xlabel(col, fontsize="small")
            ax.tick_params(labelsize="x-small")
        self.hist_canvas.draw_idle()

    # ----------------------------------------------------------------------------------------- jobs
    def _start(self, what: str, func: Any, *args: Any, on_result: Any) -> None:
        if self.running:
            return
        for button in (self.drift_button, self.group_button, self.frc_button):
            button.enabled = False
        self.status.value = f"{what}…"

        def errored(exc: BaseException) -> None:
            notify_error(exc, what)
            self.status.value = f"{what} failed."

        self.worker = start_worker(
            func, *args, connect={"returned": on_result, "errored": errored, "finished": self._finished}
        )

    def _finished(self) -> None:
        self.worker = None
        for button in (self.drift_button, self.group_button, self.frc_button):
            button.enabled = True

    def _job_input(self, what: str) -> tuple[Points, pd.DataFrame] | None:
        try:
            layer = self.layer()
            return layer, _table(layer)
        except Exception as exc:
            notify_error(exc, what)
            return None

    def correct_drift(self, value: Any = None) -> None:
        """Drift-correct the source layer into ``<source> drift corrected`` and plot the drift curve."""
        got = self._job_input("Drift correction")
        if got is None:
            return
        layer, table = got

        def done(result: Any) -> None:
            from ...postprocessing.plots import draw_drift

            self._add_points(result.table, f"{layer.name} drift corrected", layer)
            draw_drift(self.plot_figure, result.drift, result.segments)
            self.plot_canvas.draw_idle()
            d = result.drift
            span = max(np.ptp(d["drift_x_nm"]), np.ptp(d["drift_y_nm"]))
            self.status.value = f"Drift corrected: range {span:.1f} nm, {result.info['n_segments']} segments."

        self._start("Drift correction", _drift_job, table, int(self.segment.value), on_result=done)

    def group(self, value: Any = None) -> None:
        """Group the source layer into ``<source> grouped``."""
        got = self._job_input("Grouping")
        if got is None:
            return
        layer, table = got
        radius = float(self.radius.value) or None

        def done(grouped: pd.DataFrame) -> None:
            self._add_points(grouped, f"{layer.name} grouped", layer)
            r = grouped.attrs["grouping"]["radius_nm"]
            self.status.value = f"Grouped {len(table):,} into {len(grouped):,} (radius {r:.1f} nm)."

        self._start("Grouping", _group_job, table, radius, int(self.max_dark.value), on_result=done)

    def frc(self, value: Any = None) -> None:
        """FRC resolution of the selected points of the source layer (all points when none is selected)."""
        got = self._job_input("FRC")
        if got is None:
            return
        layer, table = got
        selected = sorted(layer.selected_data)
        what = "all points"
        if selected:
            table, what = table.iloc[selected].reset_index(drop=True), f"{len(selected):,} selected points"

        def done(result: Any) -> None:
            from ...postprocessing.plots import draw_frc

            draw_frc(self.plot_figure, result)
            self.plot_canvas.draw_idle()
            if np.isfinite(result.resolution_nm):
                self.status.value = f"FRC resolution {result.resolution_nm:.1f} nm ({what} of {layer.name})."
            else:
                self.status.value = f"FRC finer than {2 * result.pixel_nm:g} nm: use a smaller pixel."

        self._start("FRC", _frc_job, table, float(self.frc_pixel.value), on_result=done)
