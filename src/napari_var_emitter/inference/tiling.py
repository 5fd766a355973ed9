"""Run a model on frames of any size: overlapping tiles, stitched from each tile's core.

A frame larger than the model's ``tile_size`` is cut into windows of ``tile_size`` pixels whose *cores*
partition the frame; every core keeps at least ``margin`` pixels of context inside its window (except at
the frame edge, where there is no more image). Windows are shifted inwards at the frame edges so that all
have the same size and run as one batch. Each output scale is stitched from the cores, so an emitter's
localization comes from the one tile whose core contains its peak pixel, and post-processing runs once on
the stitched maps. Frames smaller than a tile are padded (bottom/right) with each frame's median (its
background level, which adds no emitters) to the tile size, and the padding is cropped off the outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..errors import ParameterError


@dataclass(frozen=True)
class AxisTile:
    start: int  #: window start (in the padded frame)
    core_start: int  #: core [core_start, core_stop) in frame coordinates
    core_stop: int


def plan_axis(n: int, tile: int, margin: int) -> list[AxisTile]:
    """Windows of length ``tile`` along an axis of ``n`` pixels (padded to ``tile`` when shorter)."""
    if tile <= 2 * margin:
        raise ParameterError(f"tile size {tile} must exceed twice the margin {margin}")
    n_pad = max(n, tile)
    out: list[AxisTile] = []
    a = 0
    while a < n:
        start = min(max(a - margin, 0), n_pad - tile)
        end = start + tile
        b = n if end >= n_pad else end - margin
        out.append(AxisTile(start, a, b))
        a = b
    return out


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad (bottom/right) to (h, w) with each frame's median: background, and no mirrored emitters."""
    if x.shape[-2] >= h and x.shape[-1] >= w:
        return x
    fill = x.flatten(-2).median(dim=-1).values[..., None, None]
    out = fill.expand(*x.shape[:-2], max(h, x.shape[-2]), max(w, x.shape[-1])).clone()
    out[..., : x.shape[-2], : x.shape[-1]] = x
    return out


def _chunk_outputs(
    model: torch.nn.Module, x: torch.Tensor, max_batch: int, max_scale: int, scales: list[int], count: bool
) -> Iterator[tuple[int, dict[int | str, torch.Tensor]]]:
    """(first sample, outputs by scale and ``"count"``) of each forward pass over ``max_batch`` samples."""
    kw = {"return_count": True} if count else {}
    for i in range(0, x.shape[0], max_batch):
        outs = list(model(x[i : i + max_batch], max_scale=max_scale, **kw))
        named: dict[int | str, torch.Tensor] = dict(zip(scales, outs[: len(outs) - count], strict=False))
        if count:
            named["count"] = outs[-1]
        yield i, named


def _kept(key: int | str, o: torch.Tensor, p_only: Sequence[int]) -> torch.Tensor:
    return o[:, :1] if key in p_only else o


def forward_tiled(
    model: torch.nn.Module,
    x: torch.Tensor,
    factors: Sequence[int],
    tile_size: int | None = None,
    margin: int = 0,
    max_batch: int = 64,
    p_only: Sequence[int] = (),
    count: bool = False,
) -> dict[int | str, torch.Tensor]:
    """Outputs ``{factor: (B, C, H * f, W * f)}`` of ``model`` on ``x`` (B, n_frames, H, W) for ``factors``.

    ``tile_size=None`` runs whole frames. Factors in ``p_only`` keep only the probability channel (C = 1),
    which saves memory for maps that are only displayed. ``max_batch`` bounds the windows per forward pass.
    ``count`` (a model with a count head) adds ``"count"``: its (B, 3, H, W) probabilities of 0, 1 and 2 or
    more emitters per camera pixel.
    """
    scales = list(getattr(model, "scales", (1,)))
    missing = [f for f in factors if f not in scales]
    if missing:
        raise ParameterError(f"scale(s) {missing} not produced by this model (it has {scales})")
    b, _, h, w = x.shape
    keys: list[int | str] = [*factors, *(["count"] if count else [])]
    if tile_size is None:
        if b <= max_batch:  # one pass: its outputs as they are
            _, outs = next(_chunk_outputs(model, x, max_batch, max(factors), scales, count))
            return {key: _kept(key, outs[key], p_only) for key in keys}
        result: dict[int | str, torch.Tensor] = {}
        for i, outs in _chunk_outputs(model, x, max_batch, max(factors), scales, count):
            for key in keys:
                o = _kept(key, outs[key], p_only)
                if key not in result:
                    result[key] = o.new_empty(b, *o.shape[1:])
                result[key][i : i + len(o)] = o
        return result
    ys, xs = plan_axis(h, tile_size, margin), plan_axis(w, tile_size, margin)
    if len(ys) == len(xs) == 1 and h == tile_size and w == tile_size:  # one window, the frame itself
        return forward_tiled(model, x, factors, None, margin, max_batch, p_only, count)
    xp = _pad_to(x, max(h, tile_size), max(w, tile_size))
    tiles = [(ty, tx) for ty in ys for tx in xs]
    windows = torch.stack(
        [xp[..., ty.start : ty.start + tile_size, tx.start : tx.start + tile_size] for ty, tx in tiles]
    ).flatten(0, 1)  # window k * b + j: tile k of frame j
    # each pass's window cores go straight into the stitched maps: memory holds the maps and one pass's
    # outputs, not every window's outputs (which overlap by the margins) and a concatenated copy of them
    result = {}
    for i, outs in _chunk_outputs(model, windows, max_batch, max(factors), scales, count):
        n = next(iter(outs.values())).shape[0]
        for key in keys:
            fac = 1 if key == "count" else int(key)
            o = _kept(key, outs[key], p_only)
            if key not in result:
                result[key] = o.new_empty(b, o.shape[1], h * fac, w * fac)
            full = result[key]
            for k in range(i // b, (i + n - 1) // b + 1):  # the tiles this pass holds windows of
                lo, hi = max(i, k * b), min(i + n, (k + 1) * b)
                ty, tx = tiles[k]
                y0, y1 = (ty.core_start - ty.start) * fac, (ty.core_stop - ty.start) * fac
                x0, x1 = (tx.core_start - tx.start) * fac, (tx.core_stop - tx.start) * fac
                full[
                    lo - k * b : hi - k * b,
                    :,
                    ty.core_start * fac : ty.core_stop * fac,
                    tx.core_start * fac : tx.core_stop * fac,
                ] = o[lo - i : hi - i, :, y0:y1, x0:x1]
    return result
