"""Localization files other tools write: DECODE's HDF5 output and a ThunderSTORM CSV whose header line is one
quoted field (as in locan's ThunderSTORM sample); anything else gets a one-line error."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from napari_var_emitter.errors import InputFileError
from napari_var_emitter.io.tables import read_table
from napari_var_emitter.napari._reader import get_table_reader

THUNDERSTORM_QUOTED = (
    '"id,frame,x [nm],y [nm],sigma [nm],intensity [photon],offset [photon],bkgstd [photon],chi2,'
    'uncertainty_xy [nm]"\n'
    "73897.0,2001.0,1320.109670647555,26344.7124618434,102.4,3084.2,14.8,7.6,1.02,11.5\n"
    "73898.0,2001.0,2105.5,17000.25,95.1,1890.0,15.2,7.1,0.98,16.25\n"
)


def _decode_file(path, unit="px", px_size=(100.0, 100.0)):
    """A file laid out as DECODE's ``EmitterSet.save`` writes it (pixel centres at integers, z in nm)."""
    with h5py.File(path, "w") as f:
        meta = f.create_group("meta")
        meta.attrs["xy_unit"] = unit
        meta.attrs["px_size"] = np.asarray(px_size) if px_size is not None else h5py.Empty("f")
        data = f.create_group("data")
        xyz = np.array([[10.0, 20.0, -150.0], [0.0, 0.0, 0.0], [31.5, 5.25, 80.0]])
        scale = np.array([px_size[0], px_size[1], 1.0]) if unit == "nm" else 1.0
        data.create_dataset("xyz", data=xyz * scale)
        data.create_dataset("frame_ix", data=np.array([0, 3, 7]))
        data.create_dataset("phot", data=np.array([1000.0, 2000.0, 3000.0]))
        data.create_dataset("bg", data=np.array([50.0, 60.0, 70.0]))
        data.create_dataset("prob", data=np.array([0.9, 0.8, 0.99]))
        sig = np.array([[0.1, 0.2, 20.0]] * 3) * (
            np.array([px_size[0], px_size[1], 1.0]) if unit == "nm" else 1
        )
        data.create_dataset("xyz_sig", data=sig)
        data.create_dataset("xyz_cr", data=h5py.Empty("f"))
        f.create_group("decode").attrs["version"] = "0.10.0"
    return path


@pytest.mark.parametrize("unit", ["px", "nm"])
def test_decode_hdf5(tmp_path, unit):
    path = _decode_file(tmp_path / f"decode_{unit}.h5", unit=unit)
    df = read_table(path)
    np.testing.assert_allclose(
        df["x_nm"], [1050.0, 50.0, 3200.0]
    )  # (x + 0.5) * px: pixel centres at integers
    np.testing.assert_allclose(df["y_nm"], [2050.0, 50.0, 575.0])
    np.testing.assert_allclose(df["z_nm"], [-150.0, 0.0, 80.0])
    assert df["frame"].tolist() == [0, 3, 7]
    np.testing.assert_allclose(df["photons"], [1000, 2000, 3000])
    np.testing.assert_allclose(df["sigma_x_nm"], 10.0)
    np.testing.assert_allclose(df["sigma_y_nm"], 20.0)
    np.testing.assert_allclose(df["sigma_z_nm"], 20.0)
    assert df.attrs["pixel_size_nm"] == 100.0 and df.attrs["format"] == "decode-hdf5"
    layers = get_table_reader(str(path))(str(path))
    np.testing.assert_allclose(layers[0][0][:, 2], df["x_nm"])


def test_decode_without_pixel_size_needs_one(tmp_path):
    path = tmp_path / "nopx.h5"
    with h5py.File(path, "w") as f:
        f.create_group("meta").attrs["xy_unit"] = "px"
        f.create_group("data").create_dataset("xyz", data=np.zeros((2, 3)))
    with pytest.raises(InputFileError, match="pixel size"):
        read_table(path)
    assert len(read_table(path, pixel_size_nm=160.0)) == 2


def test_thunderstorm_csv_with_one_quoted_header_field(tmp_path):
    path = tmp_path / "Thunderstorm_dstorm_data.csv"
    path.write_text(THUNDERSTORM_QUOTED)
    df = read_table(path)
    assert df["frame"].tolist() == [2000, 2000]  # ThunderSTORM frames are 1-based
    np.testing.assert_allclose(df["x_nm"], [1320.109670647555, 2105.5])
    np.testing.assert_allclose(df["y_nm"], [26344.7124618434, 17000.25])
    np.testing.assert_allclose(df["photons"], [3084.2, 1890.0])
    np.testing.assert_allclose(df["sigma_x_nm"], [11.5, 16.25])  # from uncertainty_xy
    assert get_table_reader(str(path)) is not None


def test_anything_else_is_one_line(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    with pytest.raises(InputFileError) as info:
        read_table(other)
    message = str(info.value)
    assert "\n" not in message and "locs" in message and "DECODE" in message
    reader = get_table_reader(str(other))  # napari has no HDF5 reader: ours says what the file is not
    with pytest.raises(InputFileError, match="DECODE"):
        reader(str(other))
    csv = tmp_path / "columns.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError) as info:
        read_table(csv)
    assert "\n" not in str(info.value) and "x [nm]" in str(info.value)
