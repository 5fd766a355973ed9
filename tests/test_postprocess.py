"""Post-processing on hand-built output maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_var_emitter.errors import ParameterError
from napari_var_emitter.inference import localize
from napari_var_emitter.models import layout

CFG = {"photon_scale": 1000.0, "bg_scale": 50.0, "z_scale_nm": 500.0}


def maps(h=16, w=16, b=1, c=6, p_bg=1e-4):
    """Output maps in the DECODE layout with p = p_bg everywhere (channel 0 holds logits)."""
    x = torch.zeros(b, c, h, w)
    x[:, layout.P] = torch.logit(torch.tensor(p_bg))
    x[:, layout.PHOTONS] = 0.5
    x[:, layout.BG] = 0.2
    if c == 10:
        x[:, 6:] = 0.1
    return x


def set_p(x, b, i, j, p):
    x[b, layout.P, i, j] = torch.logit(torch.tensor(p))


def test_one_peak_position_and_values():
    x = maps()
    set_p(x, 0, 5, 9, 0.95)
    x[0, layout.DX, 5, 9] = 0.3
    x[0, layout.DY, 5, 9] = -0.2
    x[0, layout.Z, 5, 9] = -0.4
    x[0, layout.PHOTONS, 5, 9] = 0.8
    df = localize(x, factor=2, threshold=0.5, pixel_size_nm=100.0, model_config=CFG, frame_offset=7)
    assert len(df) == 1
    r = df.iloc[0]
    # output pixel (5, 9) at factor 2: centre x = (9.5 / 2) px, offset 0.3 output px
    assert r.x_nm == pytest.approx((9 + 0.5 + 0.3) / 2 * 100.0, abs=1e-3)
    assert r.y_nm == pytest.approx((5 + 0.5 - 0.2) / 2 * 100.0, abs=1e-3)
    assert r.z_nm == pytest.approx(-200.0, abs=1e-3)
    assert r.photons == pytest.approx(800.0, rel=1e-5)
    assert r.bg == pytest.approx(10.0, rel=1e-5)
    assert r.frame == 7
    assert 0.95 <= r.prob <= 1.0
    assert list(df.columns[:7]) == ["frame", "x_nm", "y_nm", "z_nm", "photons", "bg", "prob"]


def test_two_adjacent_peaks_both_survive():
    x = maps()
    set_p(x, 0, 8, 8, 0.9)
    set_p(x, 0, 8, 9, 0.8)
    df = localize(x, 1, 0.5, 100.0, CFG)
    assert len(df) == 2
    assert sorted(df.x_nm.round(3)) == [850.0, 950.0]


def test_plateau_gives_one_localization():
    x = maps()
    for i, j in [(4, 4), (4, 5), (5, 4), (5, 5)]:
        set_p(x, 0, i, j, 0.3)  # a split emitter: no pixel above 0.5 alone, 1.0 integrated
    df = localize(x, 1, 0.5, 100.0, CFG)
    assert len(df) == 1
    assert df.prob.iloc[0] == pytest.approx(0.9, abs=1e-3)


def test_nothing_above_threshold():
    x = maps()
    set_p(x, 0, 3, 3, 0.2)
    df = localize(x, 1, 0.5, 100.0, CFG)
    assert len(df) == 0
    assert "x_nm" in df.columns and df["frame"].dtype.kind == "i"


def test_nan_input_is_a_clear_error():
    x = maps()
    x[0, layout.P, 2, 2] = float("nan")
    with pytest.raises(ParameterError, match="NaN"):
        localize(x, 1, 0.5, 100.0, CFG)
    x = maps()
    set_p(x, 0, 5, 5, 0.9)
    x[0, layout.DX, 5, 5] = float("nan")  # NaN in a feature read at a peak
    with pytest.raises(ParameterError, match="NaN"):
        localize(x, 1, 0.5, 100.0, CFG)


def test_batch_frames_sigma_and_uncertainty_filter():
    x = maps(b=3, c=10)
    set_p(x, 0, 2, 2, 0.9)
    set_p(x, 2, 10, 12, 0.9)
    x[2, layout.SIG_X, 10, 12] = 0.5  # 0.5 output px at factor 4 and 100 nm = 12.5 nm
    df = localize(x, 4, 0.5, 100.0, CFG, frames=np.array([10, 11, 12]))
    assert sorted(df.frame) == [10, 12]
    assert {"sigma_x_nm", "sigma_y_nm", "sigma_z_nm", "sigma_photons"} <= set(df.columns)
    assert df.set_index("frame").loc[12, "sigma_x_nm"] == pytest.approx(12.5, rel=1e-5)
    kept = localize(x, 4, 0.5, 100.0, CFG, frames=[10, 11, 12], max_sigma_nm=5.0)
    assert list(kept.frame) == [10]


def test_many_peaks_vectorised_match_positions():
    rng = np.random.default_rng(0)
    x = maps(h=64, w=64, b=2)
    ii = rng.choice(np.arange(2, 62, 4), 10, replace=False)
    jj = rng.choice(np.arange(2, 62, 4), 10, replace=False)
    for i, j in zip(ii, jj, strict=True):
        set_p(x, 1, int(i), int(j), 0.99)
    df = localize(x, 1, 0.5, 100.0, CFG)
    assert len(df) == 10 and (df.frame == 1).all()
    got = sorted(zip(df.y_nm.round(2), df.x_nm.round(2), strict=True))
    assert got == sorted(zip((ii + 0.5) * 100.0, (jj + 0.5) * 100.0, strict=True))


def test_fine_scale_radius_is_in_nm():
    """At 4x (25 nm pixels) one emitter's probability spread over two maxima 50 nm apart is one
    localization (50 nm radius = 2 fine pixels); two emitters 100 nm apart stay two."""
    x = maps(32, 32)
    set_p(x, 0, 10, 10, 0.45)
    set_p(x, 0, 10, 12, 0.45)  # one emitter, two bumps 2 fine pixels (50 nm) apart
    df = localize(x, factor=4, threshold=0.5, pixel_size_nm=100.0, model_config=CFG)
    assert len(df) == 1 and df.prob.iloc[0] == pytest.approx(0.9, abs=0.01)
    x = maps(32, 32)
    set_p(x, 0, 20, 10, 0.9)
    set_p(x, 0, 20, 14, 0.9)  # 4 fine pixels = 100 nm apart
    df = localize(x, factor=4, threshold=0.5, pixel_size_nm=100.0, model_config=CFG)
    assert sorted(df.x_nm.round(2)) == [262.5, 362.5]
    # the same maps at a 20 nm radius (1 fine pixel): the single emitter's bumps are below threshold alone
    x = maps(32, 32)
    set_p(x, 0, 10, 10, 0.45)
    set_p(x, 0, 10, 12, 0.45)
    assert len(localize(x, 4, 0.5, 100.0, CFG, radius_nm=20.0)) == 0
    with pytest.raises(ParameterError, match="radius_nm"):
        localize(x, 4, 0.5, 100.0, CFG, radius_nm=0.0)
