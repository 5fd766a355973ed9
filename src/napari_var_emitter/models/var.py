"""The VAR next-scale emitter predictor.

Ladder (CPU preset): token maps at strides 8 and 4 of the camera frame -> camera resolution (1x) -> 2x -> 4x
-> 8x. Every rung is conditioned on the rung before it (the detecting rungs, tokens and 1x, on its
probability; the rungs after 1x on its whole decoded prediction) plus image features, and never on a finer
rung:

- token rungs: one transformer over the concatenated token maps with a block-causal mask (scale k attends to
  scales <= k), token = encoder features + embedding of the previous rung's decoded map + 2-D sine-cosine
  position + learned scale embedding; a linear head gives the rung's map in the DECODE layout;
- 1x: a conv head on stride-1 encoder features, upsampled stride-2 features, the last token rung's features
  and its decoded prediction;
- 2x/4x/8x: patch heads (:class:`PatchHead`) that run only at 1x candidate pixels (p > ``refine_threshold``;
  in training also the true emitters' pixels): each sees the 5x5 camera-pixel patch of the input frames minus
  the predicted background, the 1x hidden features and the previous rung's decoded prediction (pixel
  unshuffled), and writes the f x f children of its pixel; elsewhere p is -30 (probability ~ 0).

Training: the token rungs and 1x are teacher-forced from the rasterised ground truth of the coarser rung, per
sample with probability ``teacher_prob`` (scheduled sampling); the rungs after 1x always read the model's own
prediction. Inference feeds the model's own predictions everywhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import layout as L
from .base import EmitterModel, count_macs, n_params
from .config import VARConfig
from .encoder import ConvEncoder, conv3
from .heads import N_PREV, N_STATE, PRIOR, activate, init_p_bias, prediction_state, upsample_state
from .posenc import sincos_2d
from .quantizer import VectorQuantizer
from .sparse_conv import two_conv_at_pixels
from .targets import EmitterTargets, rasterize
from .transformer import ScaleTransformer
from .upconv import up_cat_block

EMPTY_LOGIT = -30.0


def _padded(parts: list[torch.Tensor], r: int) -> torch.Tensor:
    """``F.pad(torch.cat(parts, 1), (r, r, r, r))`` written straight into a channels-last tensor (one copy of
    each part; the patch heads read it per pixel, all channels at once)."""
    b, _, h, w = parts[0].shape
    c = sum(p.shape[1] for p in parts)
    out = parts[0].new_zeros(b, h + 2 * r, w + 2 * r, c)
    start = 0
    for p in parts:
        out[:, r : r + h, r : r + w, start : start + p.shape[1]] = p.permute(0, 2, 3, 1)
        start += p.shape[1]
    return out.permute(0, 3, 1, 2)


class PatchHead(nn.Module):
    """One next-scale rung, run per camera pixel it is asked about (a 1x candidate).

    Input: the ``(2 * RADIUS + 1)``-pixel square patch around the pixel of [background-subtracted input
    frames, 1x hidden features, the previous rung's decoded prediction folded into camera pixels (pixel
    unshuffle)]. Two valid 3x3 convs reduce it to one feature vector, a 1x1 conv gives the ``f x f`` children
    of the centre pixel (pixel shuffle) in the DECODE layout. The head sees the camera pixels themselves,
    so two emitters in one camera pixel are visible to it; its receptive field is 5x5 camera pixels plus
    the 1x features' own context.
    """

    RADIUS = 2

    def __init__(self, c_in: int, c: int, factor: int, n_out: int, prior: float):
        super().__init__()
        self.factor = factor
        self.conv1 = nn.Conv2d(c_in, c, 3)
        self.conv2 = nn.Conv2d(c, c, 3)
        self.out = nn.Conv2d(c, n_out * factor * factor, 1)
        with torch.no_grad():  # channel L.P of every child starts at the prior
            self.out.bias[L.P * factor * factor : (L.P + 1) * factor * factor] = float(
                torch.logit(torch.tensor(min(max(prior, 1e-6), 0.5)))
            )

    BUCKET = 512
    """Patches are padded to a multiple of this many: the convolution library plans and caches per input
    shape (oneDNN on the CPU), and with a new K every batch its cache grew with the length of the movie
    (docs/benchmarks/speed_notes.md)."""

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """(K, c_in, 5, 5) patches -> (K, n_out, f, f) activated children of each patch's centre pixel."""
        k = patches.shape[0]
        if k % self.BUCKET:
            pad = patches.new_zeros(self.BUCKET - k % self.BUCKET, *patches.shape[1:])
            patches = torch.cat([patches, pad])
        h = F.relu(self.conv2(F.relu(self.conv1(patches))))
        return self._children(self.out(h))[:k]

    def dense(self, grid: torch.Tensor, bi: torch.Tensor, ri: torch.Tensor, ci: torch.Tensor) -> torch.Tensor:
        """What :meth:`forward` gives for the patches centred at pixels ``(bi, ri, ci)`` of ``grid`` (B, c_in,
        H + 4, W + 4), computed by running the head as a fully convolutional net over the whole grid
        (channels-last) and reading the K pixels' outputs: cheaper than K patch convolutions when the
        candidates are many (the same numbers up to float rounding)."""
        g = grid.contiguous(memory_format=torch.channels_last)
        feat = F.relu(self.conv2(F.relu(self.conv1(g), inplace=True)), inplace=True)  # (B, c, H, W)
        _, c, h, w = feat.shape
        rows = feat.permute(0, 2, 3, 1).reshape(-1, c)  # a view when the convolutions kept channels-last
        return self.from_features(rows.index_select(0, (bi * h + ri) * w + ci))

    def from_features(self, features: torch.Tensor) -> torch.Tensor:
        """(K, c) features after the second conv -> the head's output (the 1x1 conv, then the children)."""
        raw = F.linear(features, self.out.weight.flatten(1), self.out.bias)
        return self._children(raw[:, :, None, None])

    def _children(self, raw: torch.Tensor) -> torch.Tensor:
        """(K, n_out * f * f, 1, 1) raw outputs -> (K, n_out, f, f) activated children."""
        f = self.factor  # pixel shuffle of a 1 x 1 map: channel c * f * f + i * f + j -> (c, i, j), a reshape
        return activate(raw.reshape(raw.shape[0], raw.shape[1] // (f * f), f, f))


COUNT_CLASSES = 3
"""The count head's classes: 0, 1, and 2 or more emitters in a camera pixel."""


class CountHead(PatchHead):
    """How many emitters a 1x candidate pixel holds (logits of 0, 1, 2 or more), from the same 5x5 patch as
    the first rung after 1x: a camera-pixel map has one offset per pixel, and the PSF fit's test of one
    emitter against two uses this count (:mod:`..inference.two_emitters`)."""

    def __init__(self, c_in: int, c: int):
        super().__init__(c_in, c, 1, COUNT_CLASSES, prior=0.5)
        nn.init.zeros_(self.out.bias)

    def _children(self, raw: torch.Tensor) -> torch.Tensor:
        """(K, 3, 1, 1) raw outputs -> (K, 3) logits."""
        return raw.flatten(1)


class VARPredictor(EmitterModel):
    dense_head_fraction = 0.4
    """At inference, when more than this fraction of the pixels are 1x candidates, the patch heads run as
    fully convolutional nets over the whole frame and each candidate reads its output pixel
    (:meth:`PatchHead.dense`); below it, as matrix products at the pixels the candidates need
    (:func:`.sparse_conv.two_conv_at_pixels`). The same numbers up to float rounding; the crossover was
    measured on a CPU (docs/benchmarks/speed_notes.md)."""

    patch_products = True
    """At inference below ``dense_head_fraction``, run the patch heads as matrix products (False: per-patch
    convolutions, as in training; the same numbers up to float rounding)."""

    kv_cache = True
    """At inference each token rung runs on the cached keys and values of the rungs before it instead of
    the whole sequence again (:meth:`.transformer.ScaleTransformer.step`; the same numbers up to float
    rounding). Training recomputes them (its results stay bit for bit those of the recipes)."""

    channels_last_inference = True
    """At inference on a CPU the network runs on channels-last tensors (its convolutions are faster so; the
    output maps are returned in the standard layout; the same numbers up to float rounding)."""

    def __init__(self, config: VARConfig):
        super().__init__(config)
        c = config
        self.scales = tuple(c.scales)
        self.token_strides = tuple(c.token_strides)
        self.pad_multiple = c.token_strides[0]
        self.tile_size = c.tile_size
        self.margin = c.margin
        self.refine_threshold = c.refine_threshold
        d, nc = c.embed_dim, self.n_channels
        self.encoder = ConvEncoder(c.n_frames, c.enc_channels)
        self.tok_in = nn.ModuleList(nn.Linear(c.enc_channels[int(math.log2(s))], d) for s in c.token_strides)
        self.prev_in = nn.Linear(N_PREV, d)
        self.start = nn.Parameter(torch.zeros(d))
        self.scale_emb = nn.Parameter(torch.randn(len(c.token_strides), d) * 0.02)
        self.transformer = ScaleTransformer(d, c.depth, c.n_heads, c.mlp_ratio)
        self.vq = VectorQuantizer(d, c.vq_codebook_size, c.vq_beta) if c.vq else None
        self.tok_head = nn.Linear(d, nc)
        hc, ec = c.head_channels, c.enc_channels
        # 1x: a U-Net decoder whose bottleneck is the last token rung. Token features and that rung's
        # probability enter at its stride; each level up doubles the resolution and concatenates the
        # encoder's skip features (the same decoder the baseline U-Net learns quickly with).
        self.level = int(math.log2(self.token_strides[-1]))
        self.tok_proj = nn.Linear(d, ec[self.level])
        self.prev_proj = nn.Conv2d(N_PREV, ec[self.level], 1)
        self.decoder = nn.ModuleList(
            nn.Sequential(
                conv3(ec[lv + 1] + ec[lv], ec[lv] if lv else hc),
                nn.ReLU(),
                conv3(ec[lv] if lv else hc, ec[lv] if lv else hc),
                nn.ReLU(),
            )
            for lv in range(self.level)
        )
        self.head1 = (
            nn.Sequential(conv3(ec[0], hc), nn.ReLU(), conv3(hc, hc), nn.ReLU())
            if self.level == 0
            else nn.Identity()
        )
        self.out1 = nn.Conv2d(hc, nc, 1)
        self.fine = nn.ModuleList()
        for k, (f, width) in enumerate(zip(self.scales[1:], c.fine_channels, strict=True)):
            f_prev = self.scales[k]
            c_in = c.n_frames + hc + N_STATE * f_prev * f_prev
            self.fine.append(PatchHead(c_in, width, f, nc, prior=0.25 / f**2))
        self.count = CountHead(c.n_frames + hc + N_STATE, c.fine_channels[0]) if c.count_head else None
        init_p_bias(self.out1, PRIOR)
        init_p_bias(self.tok_head, PRIOR * self.token_strides[0] ** 2 / 4)

    # ------------------------------------------------------------------ helpers
    def _teacher_mask(self, b: int, teacher, teacher_prob: float, device) -> torch.Tensor | None:
        if teacher is None or teacher_prob <= 0:
            return None
        if teacher_prob >= 1:
            return torch.ones(b, dtype=torch.bool, device=device)
        return torch.rand(b, device=device) < teacher_prob

    @staticmethod
    def _mix(own: torch.Tensor, teach: torch.Tensor | None, use: torch.Tensor | None) -> torch.Tensor:
        if teach is None or use is None:
            return own
        return torch.where(use[:, None, None, None], teach, own)

    def _teacher_state(self, teacher, factor: float, hw) -> torch.Tensor:
        return prediction_state(None, rasterize(teacher, factor, hw, self.config))

    def _token_input(self, k: int, feats, prev_state, hw, shift=None) -> torch.Tensor:
        s = self.token_strides[k]
        f = feats[int(math.log2(s))]
        e = self.tok_in[k](f.flatten(2).transpose(1, 2))
        if prev_state is None:
            e = e + self.start
        else:
            up = upsample_state(prev_state, self.token_strides[k - 1] // s)
            e = e + self.prev_in(up.flatten(2).transpose(1, 2))
        pos = sincos_2d(hw[0], hw[1], e.shape[-1], s, device=e.device, shift=shift)
        return e + pos + self.scale_emb[k]

    def _position_shift(self, b: int, device) -> torch.Tensor | None:
        """Per-sample (dy, dx) shift of the token positions in training (``position_jitter_px``) or None."""
        j = self.config.position_jitter_px
        if not self.training or j <= 0:
            return None
        return (torch.rand(b, 2, device=device) * 2 - 1) * j

    def _token_out(self, t: torch.Tensor, hw, vq_stats: list) -> tuple[torch.Tensor, torch.Tensor]:
        if self.vq is not None:
            t, st = self.vq(t)
            vq_stats.append(st)
        out = activate(self.tok_head(t).transpose(1, 2).reshape(t.shape[0], -1, *hw))
        return out, t

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        teacher: EmitterTargets | None = None,
        teacher_prob: float = 1.0,
        return_aux: bool = False,
        max_scale: int | None = None,
        return_count: bool = False,
    ):
        """See :class:`EmitterModel`. ``max_scale`` stops the ladder after that output scale (inference
        that needs only the coarser scales skips the finer heads); the list then holds only scales <= it.
        ``return_count`` (a model with a count head) appends the (B, 3, H, W) probabilities of 0, 1 and 2 or
        more emitters per camera pixel to the list (1, 0, 0 away from the 1x candidates). With ``return_aux``
        the count logits and the pixels they were computed at are ``aux["count"]``, ``aux["count_mask"]``
        (in training the candidates include every true emitter's pixel)."""
        xn, (h, w) = self.prepare_input(x)
        channels_last = self.channels_last_inference and not self.training and xn.device.type == "cpu"
        if channels_last:
            xn = xn.contiguous(memory_format=torch.channels_last)
        b, _, hp, wp = xn.shape
        n_out = len(self.scales) if max_scale is None else sum(f <= max_scale for f in self.scales)
        feats = self.encoder(xn)
        if teacher is not None:
            teacher = teacher.to(xn.device)
        n_tok = len(self.token_strides)
        uses = [self._teacher_mask(b, teacher, teacher_prob, xn.device) for _ in range(n_tok)]
        hws = [(hp // s, wp // s) for s in self.token_strides]
        sizes = [a * c for a, c in hws]
        teach = [
            self._teacher_state(teacher, 1 / s, hw) if u is not None else None
            for s, hw, u in zip(self.token_strides, hws, uses, strict=False)
        ]

        # token rungs: one pass when every sample is teacher-forced, else rung by rung
        coarse, vq_stats = [], []
        shift = self._position_shift(b, xn.device)
        if all(u is not None and bool(u.all()) for u in uses[: n_tok - 1]):
            inputs = [
                self._token_input(k, feats, teach[k - 1] if k else None, hws[k], shift) for k in range(n_tok)
            ]
            hidden = self.transformer(torch.cat(inputs, 1), sizes).split(sizes, 1)
            for k in range(n_tok):
                out, tk = self._token_out(hidden[k], hws[k], vq_stats)
                coarse.append(out)
        elif not self.training and self.kv_cache:  # rung by rung, each on the cached keys of the ones before
            state, cache = None, self.transformer.new_cache()
            for k in range(n_tok):
                hidden = self.transformer.step(self._token_input(k, feats, state, hws[k], shift), cache)
                out, tk = self._token_out(hidden, hws[k], vq_stats)
                coarse.append(out)
                state = self._mix(prediction_state(out), teach[k], uses[k])
        else:
            inputs, state = [], None
            for k in range(n_tok):
                inputs.append(self._token_input(k, feats, state, hws[k], shift))
                out, tk = self._token_out(
                    self.transformer(torch.cat(inputs, 1), sizes[: k + 1])[:, -sizes[k] :], hws[k], vq_stats
                )
                coarse.append(out)
                state = self._mix(prediction_state(out), teach[k], uses[k])
        state = self._mix(prediction_state(coarse[-1]), teach[-1], uses[n_tok - 1])

        # camera resolution
        tok = self.tok_proj(tk).transpose(1, 2).reshape(b, -1, *hws[-1])
        y = F.relu(feats[self.level] + tok + self.prev_proj(upsample_state(state, 1)))
        for lv in reversed(range(self.level)):
            y = up_cat_block(self.decoder[lv], y, feats[lv], self.training)
        hidden1 = self.head1(y)
        raw1 = self.out1(hidden1)
        if channels_last:  # the maps leave in the standard layout (post-processing reads them per channel,
            raw1 = raw1.contiguous()  # and the activations of channel slices run several times faster in it)
        out1 = activate(raw1)

        # next-scale rungs, on the 1x candidates only (training adds the true emitters' pixels)
        outputs = [out1[..., :h, :w]]
        with_count = self.count is not None and (self.training or return_count or return_aux)
        count = None
        if n_out > 1 or with_count:
            cand = torch.sigmoid(out1[:, L.P].detach()) > self.refine_threshold
            if teacher is not None and self.training:
                cand |= rasterize(teacher, 1, (hp, wp), self.config)[:, L.P] > 0
            cand[:, h:] = False
            cand[:, :, w:] = False
            hid = hidden1.detach() if self.config.detach_fine else hidden1
            fine, count = self._fine_ladder(xn, out1, hid, cand, n_out - 1, with_count)
            outputs += [o[..., : h * f, : w * f] for o, f in zip(fine, self.scales[1:], strict=False)]
        if return_count and count is not None:
            outputs.append(torch.softmax(count.float(), 1)[..., :h, :w])
        if not return_aux:
            return outputs
        aux = {"coarse": coarse, "token_strides": self.token_strides}
        if count is not None:
            aux["count"], aux["count_mask"] = count[..., :h, :w], cand[:, :h, :w]
        if vq_stats:
            for key in ("commit", "perplexity", "usage"):
                aux[f"vq_{key}"] = torch.stack([st[key] for st in vq_stats]).mean()
        return outputs, aux

    # ------------------------------------------------------------------ next-scale rungs
    def _fine_ladder(
        self,
        xn: torch.Tensor,
        out1: torch.Tensor,
        hidden1: torch.Tensor,
        cand: torch.Tensor,
        n_heads: int,
        with_count: bool = False,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Dense maps of the next ``n_heads`` scales, computed at the candidate pixels ``cand`` (B, Hp, Wp)
        only; elsewhere p is EMPTY_LOGIT (probability ~ 0), offsets are 0 and the rest holds the 1x values.
        With ``with_count``, also the count head's (B, 3, Hp, Wp) logits (elsewhere: certainly 0).

        Each rung sees the input frames minus the predicted background (normalised like the input), the 1x
        hidden features and the previous rung's decoded prediction, all on the camera-pixel grid."""
        out1 = out1.detach()
        bi, ri, ci = cand.nonzero(as_tuple=True)
        c = self.config
        bg = out1[:, L.BG : L.BG + 1] * (c.bg_scale / c.input_scale)
        image = xn + c.input_offset / c.input_scale - bg
        state, f_prev, results = prediction_state(out1), 1, []
        r = PatchHead.RADIUS
        dense_heads = not self.training and len(bi) > self.dense_head_fraction * cand.numel()
        products = not self.training and self.patch_products

        def run(heads: list[PatchHead], grid: torch.Tensor) -> list[torch.Tensor]:
            """Each head's output at the candidates; ``heads`` read the same ``grid``."""
            if not len(bi):
                return [h.from_features(grid.new_zeros(0, h.conv2.out_channels)) for h in heads]
            if dense_heads:
                return [h.dense(grid, bi, ri, ci) for h in heads]
            if products:
                feats = two_conv_at_pixels([(h.conv1, h.conv2) for h in heads], grid, bi, ri, ci)
                return [h.from_features(f) for h, f in zip(heads, feats, strict=True)]
            offs = torch.arange(2 * r + 1, device=xn.device)  # per-patch convolutions (training)
            rr, cc = (ri[:, None] + offs)[:, :, None], (ci[:, None] + offs)[:, None, :]
            patches = grid[bi[:, None, None], :, rr, cc].permute(0, 3, 1, 2)  # (K, C, 5, 5)
            return [h(patches) for h in heads]

        grid = _padded([image, hidden1, state], r)  # the 1x rung's: the first head's input
        heads = ([self.count] if with_count else []) + list(self.fine[:1] if n_heads else [])
        first = run(heads, grid)
        count = None
        if with_count:
            count = out1.new_zeros(out1.shape[0], COUNT_CLASSES, *out1.shape[-2:])
            count[:, 0] = -EMPTY_LOGIT  # no candidate: certainly no emitter
            count[bi, :, ri, ci] = first.pop(0).to(count.dtype)
        for k, head in enumerate(self.fine[:n_heads]):
            f = self.scales[k + 1]
            if k:
                grid = _padded([image, hidden1, F.pixel_unshuffle(state, f_prev)], r)
            blocks = first.pop(0) if k == 0 else run([head], grid)[0]
            dense = self._scatter(blocks, out1, bi, ri, ci, f)
            results.append(dense)
            if k + 1 < n_heads:
                state, f_prev = prediction_state(dense), f
        return results, count

    @staticmethod
    def _scatter(blocks, out1, bi, ri, ci, f: int) -> torch.Tensor:
        """Dense (B, C, Hp*f, Wp*f) map: 1x values upsampled with p = EMPTY_LOGIT and zero offsets, and the
        f x f block of each candidate written at its pixel (one copy of all blocks' values to their flat
        positions in the map: blocks written through a strided view cost several times more on a CPU)."""
        b, nc, hp, wp = out1.shape
        fill = out1.detach().clone()
        fill[:, L.P] = EMPTY_LOGIT
        fill[:, L.DX : L.DY + 1] = 0.0
        # nearest upsampling as one copy of a broadcast view: the same values, ~1.7x faster than interpolate
        dense = fill[:, :, :, None, :, None].expand(b, nc, hp, f, wp, f).reshape(b, nc, hp * f, wp * f)
        if len(bi):
            h, w = hp * f, wp * f
            dev = dense.device
            child = torch.arange(f, device=dev)
            within = torch.arange(nc, device=dev)[:, None] * (h * w) + (child[:, None] * w + child).flatten()
            corner = (bi * nc * h + ri * f) * w + ci * f  # the candidate's first child, channel 0
            flat = (corner[:, None] + within.flatten()).flatten()  # (K * C * f * f) in the blocks' order
            dense.view(-1).index_copy_(0, flat, blocks.reshape(-1).to(dense.dtype))
        return dense

    # ------------------------------------------------------------------ accounting
    def complexity(self, h: int = 64, w: int = 64, candidate_fraction: float = 0.02) -> dict:
        """Params and MACs per input pixel. The next-scale rungs run only at 1x candidates:
        ``macs_per_pixel`` assumes ``candidate_fraction`` of the camera pixels are candidates
        (``macs_per_candidate`` each); ``macs_per_pixel_dense`` is the cost when every pixel is one."""
        x = torch.full((1, self.n_frames, h, w), float(self.config.input_offset))
        saved = self.refine_threshold, self.dense_head_fraction, self.patch_products
        try:
            self.refine_threshold = 1.0  # no candidates: encoder + tokens + 1x
            base = count_macs(self, x) / (h * w)
            self.refine_threshold = 1e-30  # every pixel a candidate, each with its own patch convolutions
            self.dense_head_fraction, self.patch_products = 1.0, False
            for head in self.fine:
                head.BUCKET = 1  # count the candidates, not the padding
            per_cand = count_macs(self, x) / (h * w) - base
        finally:
            self.refine_threshold, self.dense_head_fraction, self.patch_products = saved
            for head in self.fine:
                head.__dict__.pop("BUCKET", None)
        return {
            "params": n_params(self),
            "macs_per_pixel": base + candidate_fraction * per_cand,
            "macs_per_pixel_dense": base + per_cand,
            "macs_per_pixel_base": base,
            "macs_per_candidate": per_cand,
            "candidate_fraction": candidate_fraction,
        }
