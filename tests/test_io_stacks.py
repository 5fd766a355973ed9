"""Camera stacks: lazy reading, pixel size from metadata, OME-TIFF round trip, clear errors for bad files."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_var_emitter.errors import InputFileError
from napari_var_emitter.io.stacks import DEFAULT_PIXEL_SIZE_NM, contrast_limits, read_stack, write_stack


def _movie(t=5, h=16, w=20, seed=0):
    return np.random.default_rng(seed).integers(90, 1000, size=(t, h, w), dtype=np.uint16)


def test_ome_physical_size_107_nm_gives_pixel_size(tmp_path):
    movie = _movie()
    path = tmp_path / "m.ome.tif"
    tifffile.imwrite(
        path,
        movie,
        ome=True,
        metadata={
            "axes": "TYX",
            "PhysicalSizeX": 0.107,
            "PhysicalSizeY": 0.107,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeYUnit": "µm",
        },
    )
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(107.0)
    assert stack.metadata["pixel_size_source"] == "ome"
    np.testing.assert_array_equal(stack.data.compute(), movie)


def test_write_stack_round_trip_keeps_pixel_size_and_camera(tmp_path):
    movie = _movie()
    camera = {"type": "emccd", "baseline": 100.0, "em_gain": 30.0, "e_per_adu": 4.5}
    path = write_stack(tmp_path / "out.ome.tif", movie, 123.5, {"camera": camera, "note": "sim"})
    stack = read_stack(path)
    assert stack.pixel_size_nm == pytest.approx(123.5)
    assert stack.camera == camera
    assert stack.metadata["note"] == "sim"
    np.testing.assert_array_equal(stack.data.compute(), movie)
    assert not [p for p in tmp_path.iterdir() if p.name != "out.ome.tif"]  # no temp files left


def test_write_stack_from_dask(tmp_path):
    movie = da.from_array(_movie(t=7), chunks=(2, 16, 20))
    stack = read_stack(write_stack(tmp_path / "d.tif", movie, 100.0))
    np.testing.assert_array_equal(stack.data.compute(), movie.compute())


def test_2000_frame_stack_opens_lazily(tmp_path):
    path = tmp_path / "long.tif"
    tifffile.imwrite(path, np.zeros((2000, 8, 8), np.uint16), metadata={"axes": "TYX"})
    stack = read_stack(path)
    assert isinstance(stack.data, da.Array)
    assert stack.data.shape == (2000, 8, 8)
    assert stack.data.chunksize[0] == 1  # frame by frame: napari reads only the frames it shows
    assert stack.data[1999].compute().shape == (8, 8)


def test_single_frame_becomes_one_frame_stack_with_default_pixel_size(tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, _movie()[0])
    stack = read_stack(path)
    assert stack.data.shape == (1, 16, 20)
    assert stack.pixel_size_nm == DEFAULT_PIXEL_SIZE_NM
    assert stack.metadata["pixel_size_source"] == "default"


def test_imagej_resolution_in_microns(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path, _movie(), imagej=True, resolution=(1 / 0.16, 1 / 0.16), metadata={"unit": "um", "axes": "TYX"}
    )
    assert read_stack(path).pixel_size_nm == pytest.approx(160.0)


def test_contrast_limits_from_sample(tmp_path):
    movie = _movie(t=40)
    lo, hi = contrast_limits(da.from_array(movie, chunks=(1, 16, 20)), n_sample=8)
    assert movie.min() <= lo < hi <= movie.max()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("rgb", "RGB"),
        ("channels", "multi-channel"),
        ("4d", "4-D"),
        ("truncated", "truncated"),
        ("empty", "empty"),
        ("text", "not a readable TIFF"),
        ("missing", "not found"),
    ],
)
def test_bad_stacks_are_refused_clearly(tmp_path, kind, message):
    path = tmp_path / f"{kind}.tif"
    if kind == "rgb":
        tifffile.imwrite(path, np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    elif kind == "channels":
        tifffile.imwrite(path, np.zeros((3, 2, 16, 16), np.uint16), imagej=True, metadata={"axes": "TCYX"})
    elif kind == "4d":
        tifffile.imwrite(path, np.zeros((3, 2, 16, 16), np.uint16), imagej=True, metadata={"axes": "TZYX"})
    elif kind == "truncated":
        tifffile.imwrite(tmp_path / "full.tif", _movie(t=20))
        path.write_bytes((tmp_path / "full.tif").read_bytes()[:5000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("frame,x,y\n")
    with pytest.raises(InputFileError, match=message) as err:
        read_stack(path)
    assert path.name in str(err.value)


def test_write_stack_failure_leaves_nothing(tmp_path):
    with pytest.raises(Exception, match="JSON"):
        write_stack(tmp_path / "x.ome.tif", _movie(), 100.0, {"camera": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["writer", "append"])
@pytest.mark.parametrize("reader", ["dask", "blocks"])
def test_movie_saved_one_frame_at_a_time_reads_whole(tmp_path, how, reader):
    """An acquisition script that saves each frame as it comes (tifffile makes each its own series)."""
    movie, path = _movie(t=7), tmp_path / "acq.tif"
    if how == "writer":
        with tifffile.TiffWriter(path) as tif:
            for frame in movie:
                tif.write(frame)
    else:
        for frame in movie:
            tifffile.imwrite(path, frame, append=True)
    assert len(tifffile.TiffFile(path).series) == 7  # what made the first series a single frame
    stack = read_stack(path, reader=reader)
    assert stack.data.shape == (7, 16, 20)
    np.testing.assert_array_equal(np.asarray(stack.data[0:7]), movie)


def test_file_with_several_series_warns_that_only_the_first_is_read(tmp_path):
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(_movie(t=4), photometric="minisblack", metadata=None)
        tif.write(_movie(t=3, h=8, w=8), photometric="minisblack", metadata=None)
    with pytest.warns(
        UserWarning, match=r"2 image series; only the first, of shape \(4, 16, 20\).*\(3, 8, 8\)"
    ):
        stack = read_stack(path)
    assert stack.data.shape == (4, 16, 20)
