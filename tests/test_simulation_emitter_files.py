"""Ground-truth emitter files (HDF5, seed format): round trip, seed variants, bad files."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from _simulation_helpers import small_config
from napari_var_emitter.errors import InputFileError, ParameterError
from napari_var_emitter.io.emitters import read_emitters, read_labelled, write_emitters
from napari_var_emitter.simulation import simulate


def test_round_trip_keeps_every_column_background_and_metadata(tmp_path):
    movie = simulate(small_config(psf={"kind": "astigmatic"}), 20, seed=0)
    path = write_emitters(
        movie.emitters, tmp_path / "gt.h5", background=movie.background, metadata=movie.metadata()
    )
    with h5py.File(path) as f:  # the seed layout
        assert f["positions"].shape == (len(movie.emitters), 3)
        assert f["photons"].shape == f["frame"].shape == (len(movie.emitters),)
    df = read_emitters(path)
    pd.testing.assert_frame_equal(df, movie.emitters, check_dtype=False)
    assert df.attrs["pixel_size_nm"] == 100.0 and df.attrs["frame_size"] == (32, 32)
    np.testing.assert_array_equal(np.asarray(df.attrs["background"]), movie.background)
    assert df.attrs["metadata"]["simulation"]["psf"]["kind"] == "astigmatic"
    print(df.head())  # attrs holding an array must not break pandas (repr, concat, sort)
    assert len(pd.concat([df, df.sort_values("x_nm")])) == 2 * len(df)


def test_seed_labelled_file_with_image_and_per_emitter_background(tmp_path):
    path = tmp_path / "seed.h5"
    with h5py.File(path, "w") as f:
        f["image"] = np.ones((16, 16), np.uint16)
        f["positions"] = np.array([[150.0, 250.0, 0.0], [800.0, 400.0, 10.0]])
        f["photons"] = np.array([1000.0, 2000.0])
        f["background"] = np.array([20.0, 30.0])
    frames, df = read_labelled(path)
    assert frames.shape == (1, 16, 16)
    assert list(df["frame"]) == [0, 0] and list(df["bg"]) == [20.0, 30.0]
    assert "background" not in df.attrs
    np.testing.assert_allclose(df[["x_nm", "y_nm", "z_nm"]].to_numpy(), [[150, 250, 0], [800, 400, 10]])


def test_write_with_frames_is_a_labelled_file(tmp_path):
    movie = simulate(small_config(), 4, seed=1)
    write_emitters(movie.emitters, tmp_path / "l.h5", frames=movie.frames)
    frames, df = read_labelled(tmp_path / "l.h5")
    np.testing.assert_array_equal(frames, movie.frames)
    with pytest.raises(InputFileError, match="no 'image'"):
        write_emitters(movie.emitters, tmp_path / "e.h5")
        read_labelled(tmp_path / "e.h5")


def _write(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        ({"photons": np.ones(2)}, "missing dataset 'positions'"),
        ({"positions": np.zeros((2, 3))}, "missing dataset 'photons'"),
        ({"positions": np.zeros((2, 4)), "photons": np.ones(2)}, r"\[N, 3\]"),
        ({"positions": np.zeros((2, 3)), "photons": np.ones(3)}, "one value per position"),
        ({"positions": np.full((2, 3), np.nan), "photons": np.ones(2)}, "non-finite"),
        ({"positions": np.zeros((2, 3)), "photons": np.ones(2), "frame": [0, -1]}, "non-negative integers"),
        ({"positions": np.zeros((2, 3)), "photons": np.ones(2), "background": np.ones((2, 2))}, "background"),
        (
            {
                "positions": np.zeros((2, 3)),
                "photons": np.ones(2),
                "frame": [0, 5],
                "image": np.ones((2, 4, 4)),
            },
            "'image' has 2 frames",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, datasets, message):
    path = tmp_path / "bad.h5"
    _write(path, **datasets)
    with pytest.raises(InputFileError, match=message) as err:
        read_labelled(path) if "image" in datasets else read_emitters(path)
    assert "bad.h5" in str(err.value)


def test_not_hdf5_and_missing(tmp_path):
    (tmp_path / "x.h5").write_text("hello")
    with pytest.raises(InputFileError, match="not an HDF5"):
        read_emitters(tmp_path / "x.h5")
    with pytest.raises(InputFileError, match="not found"):
        read_emitters(tmp_path / "none.h5")


def test_write_refuses_bad_tables_and_leaves_nothing(tmp_path):
    with pytest.raises(ParameterError, match="photons"):
        write_emitters(pd.DataFrame({"frame": [0], "x_nm": [1.0], "y_nm": [1.0]}), tmp_path / "a.h5")
    bad = pd.DataFrame({"frame": [0], "x_nm": [np.nan], "y_nm": [1.0], "photons": [1.0]})
    with pytest.raises(ParameterError, match="finite"):
        write_emitters(bad, tmp_path / "a.h5")
    assert list(tmp_path.iterdir()) == []
