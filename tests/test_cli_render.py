"""``var-emitter render``: an OME-TIFF with the super-resolution pixel size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_var_emitter.cli import main
from napari_var_emitter.io import read_stack, write_table


@pytest.mark.parametrize("method", ["histogram", "gaussian"])
def test_render_writes_ome_tiff(tmp_path, method):
    locs = pd.DataFrame(
        {
            "frame": [0, 1, 2],
            "x_nm": [105.0, 105.0, 455.0],
            "y_nm": [205.0, 205.0, 55.0],
            "sigma_x_nm": 8.0,
            "sigma_y_nm": 8.0,
            "photons": 1000.0,
        }
    )
    write_table(locs, tmp_path / "locs.csv", metadata={"pixel_size_nm": 100.0})
    out = tmp_path / "image.ome.tif"
    assert (
        main(
            ["render", str(tmp_path / "locs.csv"), "--pixel-nm", "10", "--out", str(out), "--method", method]
        )
        == 0
    )
    stack = read_stack(out)
    img = np.asarray(stack.data)[0]
    assert stack.pixel_size_nm == pytest.approx(10.0)
    assert img.sum() == pytest.approx(3.0, rel=0.02)
    assert np.unravel_index(img.argmax(), img.shape) == (20, 10)


def test_render_errors(tmp_path, capsys):
    assert main(["render", str(tmp_path / "none.csv"), "--out", str(tmp_path / "i.tif")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "none.csv"), "--out", str(tmp_path / "no" / "i.tif")]) == 2
    assert "does not exist" in capsys.readouterr().err
