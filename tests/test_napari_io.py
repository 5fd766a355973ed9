"""napari reader and writer contributions, through npe2 and a real viewer (run under xvfb-run)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from _io_helpers import make_table
from napari_var_emitter.errors import InputFileError
from napari_var_emitter.io.stacks import write_stack
from napari_var_emitter.io.tables import read_table, write_table
from napari_var_emitter.napari._reader import get_stack_reader, get_table_reader
from napari_var_emitter.napari._writer import write_points_csv, write_points_hdf5

PLUGIN = "napari-var-emitter"


def test_readers_decline_what_is_not_theirs(tmp_path):
    (tmp_path / "fake.tif").write_text("not a tiff")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert get_stack_reader(str(tmp_path / "fake.tif")) is None
    assert get_stack_reader(str(tmp_path / "table.csv")) is None
    assert get_table_reader(str(tmp_path / "other.csv")) is None
    assert get_table_reader(str(tmp_path / "movie.tif")) is None
    tifffile.imwrite(tmp_path / "ok.tif", np.zeros((2, 4, 4), np.uint16))
    assert get_stack_reader([str(tmp_path / "ok.tif"), str(tmp_path / "fake.tif")]) is None
    assert get_stack_reader([str(tmp_path / "ok.tif")]) is not None


def test_stack_layer_is_lazy_and_in_nm(tmp_path):
    movie = np.random.default_rng(1).integers(100, 900, (30, 12, 16), dtype=np.uint16)
    path = write_stack(tmp_path / "m.ome.tif", movie, 107.0, {"camera": {"baseline": 100.0}})
    [(data, kwargs, kind)] = get_stack_reader(str(path))(str(path))
    assert kind == "image" and hasattr(data, "dask") and data.shape == (30, 12, 16)
    assert kwargs["scale"] == (1.0, 107.0, 107.0) and kwargs["translate"] == (0.0, 53.5, 53.5)
    assert kwargs["units"] == ("", "nm", "nm")
    assert kwargs["metadata"]["pixel_size_nm"] == 107.0
    assert kwargs["metadata"]["camera"] == {"baseline": 100.0}
    lo, hi = kwargs["contrast_limits"]
    assert 100 <= lo < hi <= 900


def test_bad_tiff_raises_a_clear_error(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
    reader = get_stack_reader(str(path))
    with pytest.raises(InputFileError, match="RGB"):
        reader(str(path))


def test_hand_drawn_points_export_frame_x_y(tmp_path):
    data = np.array([[2.0, 150.0, 250.0], [0.0, 10.0, 20.0]])  # (frame, y, x) in nm, no features
    [out] = write_points_csv(str(tmp_path / "hand.csv"), data, {"name": "Points", "metadata": {}})
    df = read_table(out)
    assert df["frame"].tolist() == [2, 0]
    np.testing.assert_allclose(df[["y_nm", "x_nm"]].to_numpy(), data[:, 1:])
    # 2-D points with a layer scale (drawn on an image layer in pixels): world = data * scale + translate
    write_points_hdf5(
        str(tmp_path / "hand.h5"), data[:, 1:] / 100.0, {"scale": [100.0, 100.0], "translate": [0.0, 0.0]}
    )
    np.testing.assert_allclose(read_table(tmp_path / "hand.h5")[["y_nm", "x_nm"]].to_numpy(), data[:, 1:])


@pytest.mark.gui
@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_viewer_open_and_save_table(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    df = make_table(n=20)
    path = write_table(df, tmp_path / f"locs{suffix}")
    [layer] = viewer.open(str(path), plugin=PLUGIN)
    assert layer._type_string == "points" and len(layer.data) == 20
    np.testing.assert_allclose(layer.data[:, 1:], df[["y_nm", "x_nm"]].to_numpy())
    np.testing.assert_allclose(layer.features["photons"], df["photons"])
    # saved then re-read, the points overlay the same positions (and keep their features)
    out = tmp_path / f"saved{suffix}"
    viewer.layers.selection = {layer}
    viewer.layers.save(str(out), selected=True, plugin=PLUGIN)
    back = read_table(out)
    np.testing.assert_allclose(back[["frame", "y_nm", "x_nm"]].to_numpy(), layer.data, rtol=1e-9)
    np.testing.assert_allclose(back["prob"], df["prob"], rtol=1e-9)
    if suffix == ".h5":
        assert back.attrs["pixel_size_nm"] == 107.0 and back.attrs["camera"] == df.attrs["camera"]


@pytest.mark.gui
def test_viewer_open_stack_and_points_overlay_pixels(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    px = 107.0
    movie = np.full((3, 16, 16), 100, np.uint16)
    movie[1, 5, 9] = 5000  # a bright pixel at row 5, col 9 in frame 1
    path = write_stack(tmp_path / "m.ome.tif", movie, px)
    [image] = viewer.open(str(path), plugin=PLUGIN)
    assert tuple(image.scale) == (1.0, px, px)
    # a point at the centre of that pixel, written and read back, maps onto the same image pixel
    df = make_table(n=1, px=px)
    df.loc[0, ["frame", "x_nm", "y_nm"]] = [1, (9 + 0.5) * px, (5 + 0.5) * px]
    points_path = write_table(df, tmp_path / "p.csv")
    [points] = viewer.open(str(points_path), plugin=PLUGIN)
    assert viewer.layers.extent.units is not None  # the same units: napari keeps them (scale bar in nm)
    world = points.data_to_world(points.data[0])
    pixel = np.round(image.world_to_data(world)).astype(int)
    assert tuple(pixel) == (1, 5, 9) and movie[tuple(pixel)] == 5000
    viewer.layers.selection = {points}
    viewer.layers.save(str(tmp_path / "p2.h5"), selected=True, plugin=PLUGIN)
    [again] = viewer.open(str(tmp_path / "p2.h5"), plugin=PLUGIN)
    assert tuple(np.round(image.world_to_data(again.data_to_world(again.data[0]))).astype(int)) == (1, 5, 9)


@pytest.mark.gui
def test_viewer_open_bad_stack_reports_the_problem(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    path = tmp_path / "trunc.tif"
    tifffile.imwrite(tmp_path / "full.tif", np.zeros((20, 32, 32), np.uint16))
    path.write_bytes((tmp_path / "full.tif").read_bytes()[:3000])
    with pytest.raises(Exception, match="truncated") as err:
        viewer.open(str(path), plugin=PLUGIN)
    assert "trunc.tif" in str(err.value)
    assert len(viewer.layers) == 0


def test_ground_truth_emitter_file_opens_as_points(tmp_path):
    import pandas as pd

    from napari_var_emitter.io.emitters import write_emitters

    truth = pd.DataFrame(
        {"frame": [0, 3], "x_nm": [150.0, 420.0], "y_nm": [75.0, 300.0], "photons": [1e3, 2e3]}
    )
    path = write_emitters(truth, tmp_path / "truth.h5", metadata={"pixel_size_nm": 100.0})
    reader = get_table_reader(str(path))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(path))
    assert kind == "points" and kwargs["name"] == "truth ground truth"
    np.testing.assert_allclose(data, [[0, 75.0, 150.0], [3, 300.0, 420.0]])
    assert kwargs["features"]["photons"].tolist() == [1e3, 2e3]
