"""Automatic batch sizes."""

from __future__ import annotations

import torch

from napari_var_emitter.inference.batching import auto_batch_size


def test_batch_size_is_budgeted_for_the_scales_actually_computed():
    class Ladder(torch.nn.Module):
        scales, n_channels = (1, 2, 4, 8), 10

    cpu = torch.device("cpu")
    all_scales = auto_batch_size(Ladder(), (64, 64), cpu)
    only_1x = auto_batch_size(Ladder(), (64, 64), cpu, scales=(1,))
    assert only_1x > all_scales >= 1
    assert auto_batch_size(Ladder(), (64, 64), cpu, scales=(1, 2, 4, 8)) == all_scales
    assert auto_batch_size(Ladder(), (2048, 2048), cpu, scales=(1,)) >= 1  # never below one frame
