"""The training loss over all scales: per-scale GMM or PPXYZB, coarse-to-fine weight warm-up, coarse token
occupancy, VQ commitment."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import layout as L
from ..models.config import VARConfig
from ..models.targets import EmitterTargets, pixel_counts, rasterize, scale_bg
from .config import LossConfig
from .gmm import gmm_loss
from .ppxyzb import ppxyzb_loss


def scale_weight(k: int, n_scales: int, progress: float, config: LossConfig) -> float:
    """Weight of output scale k (0 = camera resolution) at training ``progress`` in [0, 1]."""
    base = config.scale_weights[k] if config.scale_weights and k < len(config.scale_weights) else 1.0
    if k == 0 or config.warmup <= 0 or n_scales < 2:
        return base
    start = config.warmup * (k - 1) / (n_scales - 1)
    ramp = min(max((progress - start) / (config.warmup / (n_scales - 1)), 0.0), 1.0)
    return base * max(config.scale_floor, ramp)


def occupancy_bce(out: torch.Tensor, target: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """BCE of the p logits against the occupancy map, summed per frame (the scale of the GMM terms)."""
    pw = torch.as_tensor(config.occupancy_pos_weight, dtype=out.dtype, device=out.device)
    bce = F.binary_cross_entropy_with_logits(out[:, L.P], target[:, L.P], pos_weight=pw, reduction="sum")
    return bce / out.shape[0]


def offset_anchor(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of the x/y offsets at the pixels that hold an emitter, summed per frame.

    The mixture term alone can be satisfied by a neighbouring pixel's component, which lets a model settle
    with every offset shifted by a whole pixel (measured: a VAR run whose dy was -1 px off everywhere while
    its probability peaks sat on the right pixels). This term ties each emitter's offsets to its own pixel."""
    occ = target[:, L.P]
    err = (out[:, L.DX] - target[:, L.DX]) ** 2 + (out[:, L.DY] - target[:, L.DY]) ** 2
    return (err * occ).sum() / out.shape[0]


def count_target(targets: EmitterTargets, logits: torch.Tensor) -> torch.Tensor:
    """(B, H, W) class of each camera pixel for the count head's (B, n, H, W) logits: its number of
    emitters, the last class holding that many or more."""
    return pixel_counts(targets, tuple(logits.shape[-2:])).clamp(max=logits.shape[1] - 1)


def pixel_count_ce(logits: torch.Tensor, computed: torch.Tensor, targets: EmitterTargets) -> torch.Tensor:
    """Cross-entropy of the count head's (B, 3, H, W) logits against the emitters per camera pixel (0, 1, 2 or
    more), over the pixels it was computed at (``computed``, (B, H, W) bool), summed per frame."""
    ce = F.cross_entropy(logits.float(), count_target(targets, logits), reduction="none")
    return (ce * computed).sum() / logits.shape[0]


def _label(factor: float) -> str:
    return f"s{int(round(factor))}" if factor >= 1 else f"s1_{int(round(1 / factor))}"


class MultiScaleLoss(nn.Module):
    """``loss(outputs, targets, progress, aux=None) -> (total, components)``; components are floats named
    ``s{f}/{term}`` per output scale (``s1/gmm``, ``s2/count``, ``s8/ppxyzb``, ...), ``weight/s{f}``,
    ``coarse/bce``, ``coarse/reg``, ``count/ce`` (a model with a count head), ``vq/commit`` and ``total``.
    The GMM total can be negative."""

    def __init__(self, config: LossConfig, model_config=None):
        super().__init__()
        self.config = config
        self.model_config = model_config if model_config is not None else VARConfig()

    def forward(
        self,
        outputs: list[torch.Tensor],
        targets: EmitterTargets,
        progress: float,
        aux: dict | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, mc = self.config, self.model_config
        targets = targets.to(outputs[0].device)
        total = outputs[0].new_zeros(())
        comps: dict[str, torch.Tensor | float] = {}
        for k, out in enumerate(outputs):
            f = out.shape[-1] / targets.frame_hw[1]
            name = _label(f)
            wk = scale_weight(k, len(outputs), progress, cfg)
            comps[f"weight/{name}"] = wk
            if cfg.kind == "gmm":
                bg_t = scale_bg(targets.bg.float(), f, out.shape[-2:]) / mc.bg_scale
                t = gmm_loss(out, targets, f, bg_t, mc, cfg.gmm_window_px, cfg.sigma_min, cfg.sigma_max)
                term = (
                    cfg.count_weight * t["count"]
                    + cfg.mixture_weight * t["mixture"]
                    + cfg.bg_weight * t["bg"]
                )
                occ_w = cfg.occupancy_weight
                if k > 0 and cfg.fine_occupancy_weight is not None:
                    occ_w = cfg.fine_occupancy_weight
                if occ_w > 0 or cfg.offset_weight > 0:
                    tmap = rasterize(targets, f, out.shape[-2:], mc)
                if occ_w > 0:
                    t["occupancy"] = occupancy_bce(out, tmap, cfg)
                    term = term + occ_w * t["occupancy"]
                if cfg.offset_weight > 0:
                    t["offset"] = offset_anchor(out, tmap)
                    term = term + cfg.offset_weight * t["offset"]
            else:
                tmap = rasterize(targets, f, out.shape[-2:], mc)
                t = ppxyzb_loss(out, tmap, f, cfg.pos_weight, cfg.channel_weights, cfg.regression)
                term = t["bce"] + t["reg"] + cfg.bg_weight * t["bg"]
            comps.update({f"{name}/{key}": v for key, v in t.items()})
            comps[f"{name}/{cfg.kind}"] = term
            total = total + wk * term
        if aux:
            coarse = aux.get("coarse") or []
            if coarse and cfg.coarse_weight > 0:
                bce = reg = total.new_zeros(())
                for out, s in zip(coarse, aux["token_strides"], strict=True):
                    tmap = rasterize(targets, 1 / s, out.shape[-2:], mc)
                    t = ppxyzb_loss(out, tmap, 1 / s, cfg.pos_weight)
                    bce, reg = bce + t["bce"], reg + t["reg"]
                comps["coarse/bce"], comps["coarse/reg"] = bce, reg
                total = total + cfg.coarse_weight * (bce + reg)
            if "count" in aux and cfg.pixel_count_weight > 0:
                comps["count/ce"] = pixel_count_ce(aux["count"], aux["count_mask"], targets)
                total = total + cfg.pixel_count_weight * comps["count/ce"]
            if "vq_commit" in aux:
                comps["vq/commit"] = aux["vq_commit"]
                total = total + cfg.vq_weight * aux["vq_commit"]
                for key in ("vq_perplexity", "vq_usage"):
                    if key in aux:
                        comps[key.replace("_", "/")] = aux[key]
        comps["total"] = total
        return total, {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in comps.items()}


def build_loss(config: LossConfig | dict | None = None, model_config=None) -> MultiScaleLoss:
    """The training loss for ``config`` (a LossConfig or dict; None = defaults). ``model_config`` gives the
    output normalisations (photon_scale, bg_scale, z_scale_nm) the targets are expressed in; pass the model's
    config (default: the default normalisations)."""
    if config is None:
        config = LossConfig()
    elif isinstance(config, dict):
        config = LossConfig.model_validate(config)
    return MultiScaleLoss(config, model_config)
