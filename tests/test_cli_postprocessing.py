"""``var-emitter drift | group | filter | frc`` on small synthetic tables: outputs, formats and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _postprocessing_helpers import drift_truth, drifted_table, still_table
from napari_var_emitter.cli import main
from napari_var_emitter.io import read_table, write_table


@pytest.fixture(scope="module")
def drifted_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("drift") / "drifted.h5"
    write_table(drifted_table(2), path)
    return path


def test_drift_writes_corrected_table_curve_and_plot(drifted_h5, tmp_path, capsys):
    out, curve, plot = tmp_path / "corrected.csv", tmp_path / "drift.csv", tmp_path / "drift.png"
    args = ["drift", str(drifted_h5), "--out", str(out), "--drift-out", str(curve), "--plot", str(plot)]
    assert main(args) == 0
    assert "20 segments" in capsys.readouterr().out
    original, corrected = read_table(drifted_h5), read_table(out)
    assert len(corrected) == len(original) and {"emitter", "x_true_nm"} <= set(corrected.columns)
    d = pd.read_csv(curve)
    assert list(d.columns) == ["frame", "drift_x_nm", "drift_y_nm"] and len(d) == 20000
    residual = d[["drift_x_nm", "drift_y_nm"]].to_numpy() - drift_truth()
    residual -= residual.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(residual**2, axis=1))) <= 10.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # outputs are refused when they exist, unless --overwrite
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and err.count("\n") == 1
    assert main([*args, "--overwrite"]) == 0


def test_drift_too_sparse_is_one_line_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    sparse = pd.DataFrame(
        {
            "frame": rng.integers(0, 20000, 300),
            "x_nm": rng.uniform(0, 5000, 300),
            "y_nm": rng.uniform(0, 5000, 300),
        }
    )
    write_table(sparse, tmp_path / "sparse.csv")
    out = tmp_path / "out.csv"
    assert (
        main(
            ["drift", str(tmp_path / "sparse.csv"), "--out", str(out), "--drift-out", str(tmp_path / "d.csv")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("var-emitter drift: error:") and "too sparse" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparse.csv"]


def test_group_and_filter_and_frc(tmp_path, capsys):
    table = still_table()
    src = tmp_path / "locs.csv"
    write_table(table, src)
    grouped = tmp_path / "grouped.h5"
    assert main(["group", str(src), "--out", str(grouped), "--radius-nm", "40", "--max-dark", "1"]) == 0
    g = read_table(grouped)
    assert len(g) < len(table) / 2 and g["n_frames"].sum() == len(table)
    assert (tmp_path / "grouped.yaml").is_file()  # Picasso sidecar
    filtered = tmp_path / "bright.csv"
    assert (
        main(["filter", str(grouped), "--out", str(filtered), "--where", "photons > 4000 and n_frames >= 2"])
        == 0
    )
    f = read_table(filtered)
    assert len(f) == int(((g["photons"] > 4000) & (g["n_frames"] >= 2)).sum()) > 0
    capsys.readouterr()
    plot, curve = tmp_path / "frc.png", tmp_path / "frc.csv"
    assert main(["frc", str(src), "--pixel-nm", "5", "--plot", str(plot), "--curve-out", str(curve)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("FRC resolution:") and " nm" in line
    assert plot.is_file() and {"frequency_per_nm", "frc"} <= set(pd.read_csv(curve).columns)


def test_filter_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "locs.csv"
    write_table(pd.DataFrame({"frame": [0, 1], "x_nm": [1.0, 2.0], "y_nm": [1.0, 2.0], "photons": 10.0}), src)
    out = tmp_path / "out.csv"
    assert main(["filter", str(src), "--out", str(out), "--where", "photonz > 5"]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'photonz'" in err and err.count("\n") == 1 and not out.exists()
    assert main(["filter", str(src), "--out", str(src), "--where", "photons > 5"]) == 2
    assert "is the input table" in capsys.readouterr().err
    assert main(["filter", str(src), "--out", str(tmp_path / "out.txt"), "--where", "photons > 5"]) == 2
    assert "unknown table extension" in capsys.readouterr().err
    assert main(["group", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["group", "{inp}", "--out", "{out}", "--radius-nm", "nan"], "--radius-nm"),
        (["group", "{inp}", "--out", "{out}", "--max-dark", "-1"], "--max-dark"),
        (["drift", "{inp}", "--out", "{out}", "--bin-nm", "inf"], "--bin-nm"),
        (["drift", "{inp}", "--out", "{out}", "--segment", "0"], "--segment"),
        (["frc", "{inp}", "--pixel-nm", "inf"], "--pixel-nm"),
        (["filter", "{missing}", "--out", "{out}", "--where", "x_nm > 0"], "missing.csv"),
    ],
)
def test_bad_options_fail_fast_with_one_line(tmp_path, capsys, argv, flag):
    inp = tmp_path / "in.csv"
    write_table(still_table().head(500), inp)
    fill = {"inp": str(inp), "out": str(tmp_path / "out.csv"), "missing": str(tmp_path / "missing.csv")}
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err
    assert not (tmp_path / "out.csv").exists()
