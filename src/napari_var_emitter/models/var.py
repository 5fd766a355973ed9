"""The VAR next-scale emitter predictor.

Ladder (CPU preset): token maps at strides 8 and 4 of the camera frame -> camera resolution (1x) -> 2x -> 4x
-> 8x. Every rung is predicted from the rung before it (its decoded prediction: probability, sub-pixel
offsets, photons, upsampled with offsets re-expressed per child pixel) plus image features, and never from a
finer rung:

- token rungs: one transformer over the concatenated token maps with a block-causal mask (scale k attends to
  scales <= k), token = encoder features + embedding of the previous rung's decoded map + 2-D sine-cosine
  position + learned scale embedding; a linear head gives the rung's map in the DECODE layout;
- 1x: a conv head on stride-1 encoder features, upsampled stride-2 features, the last token rung's features
  and its decoded prediction;
- 2x/4x/8x: small conv heads on the upsampled previous prediction and hidden state. At inference they run
  densely or (``sparse_refine``) only in windows around 1x candidates (p > ``refine_threshold``), gathered
  into a batch of patches (valid convs, exact) and scattered back; elsewhere p is -30 (probability ~ 0).

Training: teacher forcing from rasterised ground truth of the coarser rung, per sample with probability
``teacher_prob`` (scheduled sampling); inference feeds the model's own predictions.
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
from .heads import N_PREV, PRIOR, activate, init_p_bias, prediction_state, repeat_up, upsample_state
from .posenc import sincos_2d
from .quantizer import VectorQuantizer
from .targets import EmitterTargets, rasterize
from .transformer import ScaleTransformer

EMPTY_LOGIT = -30.0


_up = repeat_up


class FineHead(nn.Module):
    """One next-scale conv head: (upsampled decoded prediction, upsampled hidden) -> 3x3 conv -> 1x1 out."""

    def __init__(self, c_prev: int, c: int, n_out: int):
        super().__init__()
        self.conv = nn.Conv2d(N_PREV + c_prev, c, 3)
        self.out = nn.Conv2d(c, n_out, 1)

    def forward(self, state, hidden, r: int, valid: torch.Tensor | None = None):
        """Dense when ``valid`` is None (zero padding); else patches: masked input, valid conv (size - 2)."""
        inp = torch.cat([upsample_state(state, r), _up(hidden, r)], 1)
        if valid is None:
            inp = F.pad(inp, (1, 1, 1, 1))
        else:
            inp = inp * _up(valid, r)
        hid = F.relu(self.conv(inp))
        return activate(self.out(hid)), hid


class VARPredictor(EmitterModel):
    def __init__(self, config: VARConfig):
        super().__init__(config)
        c = config
        self.scales = tuple(c.scales)
        self.token_strides = tuple(c.token_strides)
        self.pad_multiple = c.token_strides[0]
        self.tile_size = c.tile_size
        self.margin = c.margin
        self.sparse_refine = c.sparse_refine
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
        widths = (hc, *c.fine_channels)
        self.fine = nn.ModuleList(FineHead(a, b, nc) for a, b in zip(widths, widths[1:], strict=False))
        init_p_bias(self.out1, PRIOR)
        init_p_bias(self.tok_head, PRIOR * self.token_strides[0] ** 2 / 4)
        for head, f in zip(self.fine, self.scales[1:], strict=True):
            init_p_bias(head.out, PRIOR / f**2)
        # context (in pixels of each scale) the sparse windows need so that valid convs reproduce dense ones
        m = [0] * len(self.scales)
        for k in range(len(self.scales) - 2, -1, -1):
            m[k] = math.ceil((m[k + 1] + 1) / (self.scales[k + 1] // self.scales[k]))
        self._ctx = m

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

    def _token_input(self, k: int, feats, prev_state, hw) -> torch.Tensor:
        s = self.token_strides[k]
        f = feats[int(math.log2(s))]
        e = self.tok_in[k](f.flatten(2).transpose(1, 2))
        if prev_state is None:
            e = e + self.start
        else:
            up = upsample_state(prev_state, self.token_strides[k - 1] // s, positions=False)
            e = e + self.prev_in(up.flatten(2).transpose(1, 2))
        pos = sincos_2d(hw[0], hw[1], e.shape[-1], s, device=e.device)
        return e + pos + self.scale_emb[k]

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
    ):
        """See :class:`EmitterModel`. ``max_scale`` stops the ladder after that output scale (inference
        that needs only the coarser scales skips the finer heads); the list then holds only scales <= it."""
        xn, (h, w) = self.prepare_input(x)
        b, _, hp, wp = xn.shape
        n_out = len(self.scales) if max_scale is None else sum(f <= max_scale for f in self.scales)
        feats = self.encoder(xn)
        if teacher is not None:
            teacher = teacher.to(xn.device)
        n_tok = len(self.token_strides)
        n_rungs = n_tok + len(self.scales)
        uses = [self._teacher_mask(b, teacher, teacher_prob, xn.device) for _ in range(n_rungs - 1)]
        hws = [(hp // s, wp // s) for s in self.token_strides]
        sizes = [a * c for a, c in hws]
        teach = [
            self._teacher_state(teacher, 1 / s, hw) if u is not None else None
            for s, hw, u in zip(self.token_strides, hws, uses, strict=False)
        ]

        # token rungs: one pass when every sample is teacher-forced, else rung by rung
        coarse, vq_stats = [], []
        if all(u is not None and bool(u.all()) for u in uses[: n_tok - 1]):
            inputs = [self._token_input(k, feats, teach[k - 1] if k else None, hws[k]) for k in range(n_tok)]
            hidden = self.transformer(torch.cat(inputs, 1), sizes).split(sizes, 1)
            for k in range(n_tok):
                out, tk = self._token_out(hidden[k], hws[k], vq_stats)
                coarse.append(out)
        else:
            inputs, state = [], None
            for k in range(n_tok):
                inputs.append(self._token_input(k, feats, state, hws[k]))
                out, tk = self._token_out(
                    self.transformer(torch.cat(inputs, 1), sizes[: k + 1])[:, -sizes[k] :], hws[k], vq_stats
                )
                coarse.append(out)
                state = self._mix(prediction_state(out), teach[k], uses[k])
        state = self._mix(prediction_state(coarse[-1]), teach[-1], uses[n_tok - 1])

        # camera resolution
        tok = self.tok_proj(tk).transpose(1, 2).reshape(b, -1, *hws[-1])
        y = F.relu(feats[self.level] + tok + self.prev_proj(upsample_state(state, 1, positions=False)))
        for lv in reversed(range(self.level)):
            y = self.decoder[lv](torch.cat([_up(y, 2), feats[lv]], 1))
        hidden1 = self.head1(y)
        outs = [activate(self.out1(hidden1))]

        # next-scale heads
        crop = None
        if n_out > 1:
            if self.sparse_refine and not self.training and teacher is None:
                outs += self._refine_sparse(outs[0], hidden1, (h, w), n_out - 1)
            else:
                hid0 = hidden1.detach() if self.config.detach_fine else hidden1
                prev, hid, fine_teacher = outs[0], hid0, teacher
                crop = self._fine_crop_window(h, w)
                if crop is not None:  # training: fine heads on a random window (they are local convs)
                    y0, x0, c = crop
                    prev, hid = prev[..., y0 : y0 + c, x0 : x0 + c], hid[..., y0 : y0 + c, x0 : x0 + c]
                    fine_teacher = teacher.crop(y0, x0, c, c) if teacher is not None else None
                fh, fw = prev.shape[-2:]
                for k, head in enumerate(self.fine[: n_out - 1]):
                    f = self.scales[k]
                    t_state = None
                    if uses[n_tok + k] is not None:
                        t_state = self._teacher_state(fine_teacher, f, (fh * f, fw * f))
                    st = self._mix(prediction_state(prev), t_state, uses[n_tok + k])
                    prev, hid = head(st, hid, self.scales[k + 1] // f)
                    outs.append(prev)

        if crop is None:
            outputs = [o[..., : h * f, : w * f] for o, f in zip(outs, self.scales[:n_out], strict=True)]
        else:
            outputs = [outs[0][..., :h, :w], *outs[1:]]
        if not return_aux:
            return outputs
        aux = {"coarse": coarse, "token_strides": self.token_strides}
        if crop is not None:
            aux["fine_crop"] = crop
        if vq_stats:
            for key in ("commit", "perplexity", "usage"):
                aux[f"vq_{key}"] = torch.stack([st[key] for st in vq_stats]).mean()
        return outputs, aux

    def _fine_crop_window(self, h: int, w: int) -> tuple[int, int, int] | None:
        """(y0, x0, size) of the random window the fine heads are trained on, or None (dense)."""
        c = self.config.train_fine_crop
        if not self.training or c is None or c >= min(h, w):
            return None
        y0 = int(torch.randint(0, h - c + 1, ()))
        x0 = int(torch.randint(0, w - c + 1, ()))
        return y0, x0, int(c)

    # ------------------------------------------------------------------ sparse refinement
    def _refine_sparse(
        self, out1: torch.Tensor, hidden1: torch.Tensor, hw, n_heads: int
    ) -> list[torch.Tensor]:
        """Fine scales computed only in windows around 1x candidates; exact where computed."""
        b, nc, hp, wp = out1.shape
        h, w = hw
        cand = torch.sigmoid(out1[:, L.P, :h, :w]) > self.refine_threshold
        bi, ri, ci = cand.nonzero(as_tuple=True)
        m = self._ctx[0]
        size = 2 * m + 1
        state = F.pad(torch.cat([prediction_state(out1), hidden1], 1), (m, m, m, m))
        valid = F.pad(torch.ones(1, 1, hp, wp, device=out1.device), (m, m, m, m))[0, 0]
        offs = torch.arange(size, device=out1.device)
        rr = (ri[:, None] + offs)[:, :, None]
        cc = (ci[:, None] + offs)[:, None, :]
        patch = state[bi[:, None, None], :, rr, cc].permute(0, 3, 1, 2)  # (K, C, size, size)
        st, hid = patch[:, :4], patch[:, 4:]
        vmask = valid[rr, cc][:, None]
        results = []
        for k, head in enumerate(self.fine[:n_heads]):
            r = self.scales[k + 1] // self.scales[k]
            out, hid = head(st, hid, r, valid=vmask)
            crop = self._ctx[k] * r - 1 - self._ctx[k + 1]
            if crop:
                out, hid = out[..., crop:-crop, crop:-crop], hid[..., crop:-crop, crop:-crop]
            vmask = _up(vmask, r)[..., crop + 1 : -(crop + 1), crop + 1 : -(crop + 1)]
            st = prediction_state(out)
            results.append(self._scatter(out, out1, bi, ri, ci, self.scales[k + 1], self._ctx[k + 1]))
        return results

    @staticmethod
    def _scatter(patch_out, out1, bi, ri, ci, f: int, m: int) -> torch.Tensor:
        """Dense (B, C, Hp*f, Wp*f) map: 1x values upsampled with p = EMPTY_LOGIT and zero offsets, and the
        central f x f block of each patch written at its candidate pixel."""
        b, nc, hp, wp = out1.shape
        fill = out1.clone()
        fill[:, L.P] = EMPTY_LOGIT
        fill[:, L.DX : L.DY + 1] = 0.0
        dense = _up(fill, f)
        blocks = patch_out[..., m : m + f, m : m + f]  # (K, C, f, f)
        dense.view(b, nc, hp, f, wp, f).permute(0, 2, 4, 1, 3, 5)[bi, ri, ci] = blocks
        return dense

    # ------------------------------------------------------------------ accounting
    def complexity(self, h: int = 64, w: int = 64, candidate_fraction: float = 0.02) -> dict:
        """Params and MACs per input pixel. ``macs_per_pixel`` is the inference cost with the configured
        refinement: with sparse refinement it assumes ``candidate_fraction`` of the camera pixels are 1x
        candidates (``macs_per_candidate`` each); ``macs_per_pixel_dense`` refines every pixel densely."""
        x = torch.full((1, self.n_frames, h, w), float(self.config.input_offset))
        saved = self.sparse_refine, self.refine_threshold
        try:
            self.sparse_refine = False
            dense = count_macs(self, x) / (h * w)
            self.sparse_refine, self.refine_threshold = True, 1.0  # no candidates: encoder + tokens + 1x
            base = count_macs(self, x) / (h * w)
            self.refine_threshold = 1e-30  # every pixel a candidate
            per_cand = count_macs(self, x) / (h * w) - base
        finally:
            self.sparse_refine, self.refine_threshold = saved
        sparse = base + candidate_fraction * per_cand
        return {
            "params": n_params(self),
            "macs_per_pixel": sparse if self.sparse_refine else dense,
            "macs_per_pixel_dense": dense,
            "macs_per_pixel_base": base,
            "macs_per_candidate": per_cand,
            "candidate_fraction": candidate_fraction,
        }
