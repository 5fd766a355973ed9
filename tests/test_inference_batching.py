"""Automatic batch sizes: per forward pass from memory, for the scales computed; tiled frames in passes."""

from __future__ import annotations

import numpy as np
import torch

from _inference_helpers import IDEAL, PX, MatchedFilterModel, isolated_emitters, render_frames
from napari_var_emitter.checkpoints import LoadedModel
from napari_var_emitter.inference import Predictor
from napari_var_emitter.inference.batching import auto_batch_size

CPU = torch.device("cpu")


class Ladder(torch.nn.Module):
    scales, n_channels = (1, 2, 4, 8), 10


def test_batch_size_is_budgeted_for_the_scales_actually_computed():
    all_scales = auto_batch_size(Ladder(), (64, 64), CPU)
    only_1x = auto_batch_size(Ladder(), (64, 64), CPU, scales=(1,))
    assert only_1x > all_scales >= 1
    assert auto_batch_size(Ladder(), (64, 64), CPU, scales=(1, 2, 4, 8)) == all_scales
    assert auto_batch_size(Ladder(), (2048, 2048), CPU, scales=(1,)) >= 1  # never below one frame


def test_a_tiled_movie_of_large_frames_runs_in_passes_of_the_automatic_size():
    """128 x 128 frames on a 16 px tile (256 windows each): a batch holds the frames one forward pass takes,
    and a batch size the user sets is kept, its frames' windows in passes of the automatic size."""
    model = MatchedFilterModel(tile_size=16, margin=4)
    windows: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: windows.append(args[0].shape[0]))
    truth = isolated_emitters(12, (128, 128), per_frame=20, seed=4)
    movie = render_frames(truth, 12, (128, 128), seed=4).astype(np.float32)
    p = Predictor(LoadedModel(model, model.config, IDEAL, PX, {}, None), device="cpu", refine=True)
    batches = list(p.iter_batches(movie))
    per_pass = auto_batch_size(model, (16, 16), CPU, scales=(1,))
    assert {len(b.frames) for b in batches[:-1]} == {max(1, per_pass // 256)}
    assert np.concatenate([b.frames for b in batches]).tolist() == list(range(12))
    assert max(windows) <= per_pass
    assert sum(len(b.table) for b in batches) >= 0.95 * len(truth)
    windows.clear()
    fixed = Predictor(p.loaded, device="cpu", refine=True, batch_size=5).iter_batches(movie)
    assert [len(b.frames) for b in fixed] == [5, 5, 2]
    assert max(windows) == per_pass  # 5 frames' windows in passes of the automatic size, not 5 windows
