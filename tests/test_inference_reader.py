"""Sequential reading for the predictor: TIFF block reads, the block cache and the reader thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tifffile

from napari_var_emitter.errors import InputFileError
from napari_var_emitter.inference.streaming import BlockReader, prefetch
from napari_var_emitter.io import read_stack, write_stack
from napari_var_emitter.io.frames import TiffFrames


def movie(n=12, h=9, w=7, dtype=np.uint16):
    return (np.arange(n * h * w).reshape(n, h, w) % 60000).astype(dtype)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # contiguous, little-endian
        {"byteorder": ">"},
        {"compression": "zlib"},  # one page per frame, not contiguous
        {"imagej": True},  # frames with a singleton axis
    ],
)
def test_tiff_frames_equal_the_dask_reader_in_order(tmp_path, kwargs):
    data = movie()
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, data[:, None] if kwargs.get("imagej") else data, **kwargs)  # ImageJ: TZYX
    blocks = read_stack(path, reader="blocks")
    assert isinstance(blocks.data, TiffFrames)
    ref = np.asarray(read_stack(path).data)
    np.testing.assert_array_equal(ref, data)
    assert blocks.data.shape == data.shape and blocks.data.dtype == np.dtype(np.uint16)
    np.testing.assert_array_equal(blocks.data[:], data)
    for lo, hi in [(0, 1), (3, 8), (11, 12), (5, 5)]:
        np.testing.assert_array_equal(blocks.data[lo:hi], data[lo:hi])
    np.testing.assert_array_equal(blocks.data[-1], data[-1])
    blocks.data.close()


def test_ome_tiff_with_metadata_reads_in_blocks(tmp_path):
    data = movie(dtype=np.float32)
    path = write_stack(tmp_path / "m.ome.tif", data, 110.0, {"camera": {"baseline": 100.0}})
    stack = read_stack(path, reader="blocks")
    assert stack.pixel_size_nm == pytest.approx(110.0) and stack.camera["baseline"] == 100.0
    np.testing.assert_array_equal(stack.data[2:7], data[2:7])


def test_reading_past_the_end_of_a_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "m.tif"
    data = movie(n=200, h=64, w=64)  # larger than the file buffer
    tifffile.imwrite(path, data)
    frames = TiffFrames(path, data.shape)
    with tifffile.TiffFile(path) as tif:
        half = tif.series[0].dataoffset + 100 * 64 * 64 * 2
    with open(path, "r+b") as fh:
        fh.truncate(half)
    np.testing.assert_array_equal(frames[0:3], data[0:3])
    with pytest.raises(InputFileError, match="m.tif"):
        frames[150:200]
    frames.close()


def test_block_reader_reads_large_blocks_and_serves_batches_from_them():
    data = movie(n=50)

    class Counting:
        shape, dtype, ndim = data.shape, data.dtype, 3

        def __init__(self):
            self.reads = []

        def __getitem__(self, key):
            self.reads.append((key.start, key.stop))
            return data[key]

    src = Counting()
    reader = BlockReader(src, chunk_frames=20, stop=45)
    got = [reader[lo : lo + 5] for lo in range(0, 40, 4)]  # overlapping batches, like 3-frame windows
    for lo, block in zip(range(0, 40, 4), got, strict=True):
        np.testing.assert_array_equal(block, data[lo : lo + 5])
    assert all(hi - lo <= 20 for lo, hi in src.reads) and max(hi for _, hi in src.reads) <= 45
    assert len(src.reads) <= 3


def test_prefetch_yields_everything_in_order_and_re_raises_errors():
    assert list(prefetch(iter(range(100)), depth=2)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("bad frame")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad frame"):
        next(it)


def test_closing_a_prefetch_early_stops_the_reader_thread():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    before = threading.active_count()
    it = prefetch(items(), depth=1)
    assert next(it) == 0
    it.close()
    assert threading.active_count() == before
    assert len(produced) <= 4  # at most depth + the one in hand + the one being made ahead
