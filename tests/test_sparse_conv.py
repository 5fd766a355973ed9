"""The patch heads' two convolutions as matrix products at chosen pixels (models/sparse_conv.py)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_var_emitter.models import sparse_conv
from napari_var_emitter.models.sparse_conv import two_conv_at_pixels


def _per_patch(conv1: nn.Conv2d, conv2: nn.Conv2d, grid, bi, ri, ci) -> torch.Tensor:
    patches = torch.stack([grid[b, :, r : r + 5, c : c + 5] for b, r, c in zip(bi, ri, ci, strict=True)])
    return F.relu(conv2(F.relu(conv1(patches)))).flatten(1)


@pytest.mark.parametrize("chunk", [2, 2048])
def test_products_at_pixels_equal_per_patch_convolutions_for_several_heads(monkeypatch, chunk):
    """Neighbouring candidates share first-conv pixels (in one chunk of candidates or across two); each head
    gets its own features; any order."""
    monkeypatch.setattr(sparse_conv, "CHUNK", chunk)
    torch.manual_seed(0)
    grid = torch.randn(3, 7, 12 + 4, 10 + 4)
    heads = [(nn.Conv2d(7, 5, 3), nn.Conv2d(5, 5, 3)), (nn.Conv2d(7, 3, 3), nn.Conv2d(3, 4, 3))]
    bi = torch.tensor([0, 0, 0, 2, 1, 2, 2])
    ri = torch.tensor([0, 0, 1, 11, 5, 4, 5])
    ci = torch.tensor([0, 1, 1, 9, 5, 7, 7])
    with torch.no_grad():
        got = two_conv_at_pixels(heads, grid, bi, ri, ci)
        for (c1, c2), feats in zip(heads, got, strict=True):
            assert feats.shape == (len(bi), c2.out_channels)
            torch.testing.assert_close(feats, _per_patch(c1, c2, grid, bi, ri, ci), rtol=1e-5, atol=1e-5)


def test_products_read_a_channels_last_grid_and_no_candidates():
    torch.manual_seed(1)
    grid = torch.randn(2, 4, 9, 9).contiguous(memory_format=torch.channels_last)
    head = (nn.Conv2d(4, 6, 3), nn.Conv2d(6, 6, 3))
    bi, ri, ci = torch.tensor([1]), torch.tensor([2]), torch.tensor([3])
    with torch.no_grad():
        (feats,) = two_conv_at_pixels([head], grid, bi, ri, ci)
        torch.testing.assert_close(feats, _per_patch(*head, grid, bi, ri, ci), rtol=1e-5, atol=1e-5)
        empty = torch.zeros(0, dtype=torch.long)
        (none,) = two_conv_at_pixels([head], grid, empty, empty, empty)
    assert none.shape == (0, 6)
