"""The offset anchor ties an emitter's x/y offsets to its own pixel: a whole-pixel shift costs, truth not."""

from __future__ import annotations

import torch

from napari_var_emitter.losses import EmitterTargets, build_loss
from napari_var_emitter.models import VARConfig
from napari_var_emitter.models import layout as L
from napari_var_emitter.models.targets import rasterize


def _outputs_from_truth(targets: EmitterTargets, shift_dy: float) -> list[torch.Tensor]:
    mc = VARConfig()
    t = rasterize(targets, 1, targets.frame_hw, mc)
    out = torch.zeros(t.shape[0], L.N_CHANNELS_SIGMA, *t.shape[-2:])
    out[:, L.P] = torch.where(t[:, L.P] > 0, 6.0, -6.0)
    out[:, L.DX] = t[:, L.DX]
    out[:, L.DY] = (t[:, L.DY] + shift_dy).clamp(-1, 1)
    out[:, L.N_CHANNELS_BASIC :] = 0.1
    return [out]


def test_offset_anchor_penalises_a_whole_pixel_shift_only_when_enabled():
    xyz = torch.tensor([[[10.3, 12.7, 0.0], [25.5, 30.2, 0.0]]])
    targets = EmitterTargets(
        xyz=xyz,
        photons=torch.full((1, 2), 2000.0),
        mask=torch.ones(1, 2, dtype=bool),
        bg=torch.full((1, 40, 40), 50.0),
    )
    anchored = build_loss({"kind": "gmm", "offset_weight": 5.0})
    plain = build_loss({"kind": "gmm", "offset_weight": 0.0})
    right, shifted = _outputs_from_truth(targets, 0.0), _outputs_from_truth(targets, -1.0)
    _, c_right = anchored(right, targets, progress=1.0)
    _, c_shift = anchored(shifted, targets, progress=1.0)
    assert c_right["s1/offset"] < 1e-9
    assert c_shift["s1/offset"] > 1.0  # two emitters, 0.5-1 px^2 each (offsets clamp at -1)
    _, p_shift = plain(shifted, targets, progress=1.0)
    assert "s1/offset" not in p_shift


def test_fine_occupancy_weight_applies_to_the_scales_after_1x_only():
    xyz = torch.tensor([[[10.3, 12.7, 0.0]]])
    targets = EmitterTargets(
        xyz, torch.full((1, 1), 2000.0), torch.ones(1, 1, dtype=bool), torch.full((1, 40, 40), 50.0)
    )
    one = _outputs_from_truth(targets, 0.0)[0]
    fine = torch.zeros(1, L.N_CHANNELS_SIGMA, 80, 80)
    fine[:, L.P] = -6.0
    fine[:, L.N_CHANNELS_BASIC :] = 0.1
    _, both = build_loss({"kind": "gmm"})([one, fine], targets, progress=1.0)
    _, coarse_only = build_loss({"kind": "gmm", "fine_occupancy_weight": 0.0})(
        [one, fine], targets, progress=1.0
    )
    assert "s1/occupancy" in both and "s2/occupancy" in both
    assert coarse_only["s1/occupancy"] == both["s1/occupancy"] and "s2/occupancy" not in coarse_only
    assert coarse_only["s2/gmm"] < both["s2/gmm"]  # the BCE term is gone from the 2x total
