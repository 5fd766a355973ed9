"""Losses: finite values and gradients on empty, dense and extreme inputs; GMM prefers the truth; warm-up;
a quick overfit of the VAR model on a fixed tiny batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _models_helpers import batch, tiny_var
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.losses import EmitterTargets, LossConfig, build_loss, scale_weight
from napari_var_emitter.models import build_model
from napari_var_emitter.models import layout as L
from napari_var_emitter.models.heads import activate

torch.set_num_threads(1)
CFG = tiny_var(photon_scale=1000.0, bg_scale=100.0, z_scale_nm=500.0)


def _raw_outputs(b, h, w, fill=0.0, scales=(1, 2, 4, 8), c=10):
    return [torch.full((b, c, h * f, w * f), fill, requires_grad=True) for f in scales]


def _targets(kind, b=2, h=8, w=8):
    rng = np.random.default_rng(0)
    if kind == "empty":
        em = [np.zeros((0, 4))] * b
    elif kind == "dense":
        em = [
            np.c_[rng.uniform(0, w, (200, 2)), rng.uniform(-500, 500, 200), rng.uniform(100, 5000, 200)]
        ] * b
    else:  # extreme photon counts and positions at the very edges
        em = [np.array([[0.0, 0.0, 5e3, 1e9], [w - 1e-4, h - 1e-4, -5e3, 0.0], [3.5, 3.5, 0.0, 1e-3]])] * b
    return EmitterTargets.from_lists(em, rng.uniform(0, 1e4, (b, h, w)), shape=(h, w))


@pytest.mark.parametrize("kind", ["gmm", "ppxyzb"])
@pytest.mark.parametrize("case", ["empty", "dense", "extreme"])
@pytest.mark.parametrize("logit", [0.0, -1e4, 1e4])
def test_losses_finite_with_finite_gradients(kind, case, logit):
    raws = _raw_outputs(2, 8, 8, fill=0.0)
    with torch.no_grad():
        for r in raws:
            r[:, L.P] = logit
            r[:, 1:] = float(np.sign(logit)) * abs(logit) / 100  # saturated activations too
    outs = [activate(r) for r in raws]
    aux = {"coarse": [activate(torch.full((2, 10, 1, 1), logit, requires_grad=True))], "token_strides": (8,)}
    total, comps = build_loss(LossConfig(kind=kind), CFG)(outs, _targets(case), 0.5, aux)
    total.backward()
    assert torch.isfinite(total)
    assert all(np.isfinite(v) for v in comps.values())
    for r in raws:
        assert torch.isfinite(r.grad).all()


def test_model_losses_finite_on_empty_frames():
    torch.manual_seed(0)
    model = build_model(CFG)
    x = torch.full((2, 3, 12, 12), 0.0)
    t = _targets("empty", h=12, w=12)
    outs, aux = model(x, teacher=t, teacher_prob=0.5, return_aux=True)
    for kind in ("gmm", "ppxyzb"):
        total, _ = build_loss({"kind": kind}, CFG)(outs, t, 1.0, aux)
        assert torch.isfinite(total)
        grads = torch.autograd.grad(
            total, [p for p in model.parameters()], retain_graph=True, allow_unused=True
        )
        assert all(g is None or torch.isfinite(g).all() for g in grads)


def _truth_maps(targets, h, w, shift=0.0):
    """An output (1x) that states the truth: p high at emitter pixels, exact offsets, small sigmas."""
    from napari_var_emitter.losses import rasterize

    m = rasterize(targets, 1, (h, w), CFG)
    out = torch.zeros(len(targets), 10, h, w)
    out[:, L.P] = torch.where(m[:, L.P] > 0, 8.0, -8.0)
    out[:, L.PHOTONS : L.BG + 1] = m[:, L.PHOTONS : L.BG + 1]
    out[:, L.DX] += shift
    out[:, L.N_CHANNELS_BASIC :] = 0.05
    return out


def test_gmm_prefers_the_true_configuration():
    t = EmitterTargets.from_lists(
        [[[3.3, 4.6, 100.0, 2000.0], [10.7, 2.2, -50.0, 800.0]]], 30.0, shape=(16, 16)
    )
    loss = build_loss(LossConfig(kind="gmm"), CFG)
    true, _ = loss([_truth_maps(t, 16, 16)], t, 1.0)
    shifted, _ = loss([_truth_maps(t, 16, 16, shift=0.4)], t, 1.0)
    moved_p = _truth_maps(t, 16, 16)
    moved_p[:, L.P] = torch.roll(moved_p[:, L.P], 3, dims=-1)
    moved, _ = loss([moved_p], t, 1.0)
    assert float(true) < float(shifted) and float(true) < float(moved)


def test_gmm_needs_sigma_channels():
    t = _targets("extreme")
    with pytest.raises(ParameterError, match="sigma"):
        build_loss(LossConfig(kind="gmm"), CFG)([torch.zeros(2, 6, 8, 8)], t, 0.0)


def test_scale_weights_warm_up_coarse_to_fine():
    cfg = LossConfig(warmup=0.4, scale_floor=0.05)
    w = [[scale_weight(k, 4, p, cfg) for k in range(4)] for p in (0.0, 0.1, 0.2, 0.3, 0.5)]
    assert all(row[0] == 1.0 for row in w)
    assert w[0][1:] == [0.05, 0.05, 0.05]
    for row in w:  # coarse scales are always at least as weighted as finer ones
        assert row == sorted(row, reverse=True)
    assert w[-1] == [1.0, 1.0, 1.0, 1.0]


def test_loss_components_are_named_per_scale():
    x, t = batch()
    model = build_model(tiny_var(vq=True, vq_codebook_size=8))
    outs, aux = model(x, teacher=t, return_aux=True)
    _, comps = build_loss(None, model.config)(outs, t, 0.2, aux)
    for key in ("s1/gmm", "s2/gmm", "s8/count", "s4/mixture", "coarse/bce", "vq/commit", "total"):
        assert key in comps
    _, comps = build_loss({"kind": "ppxyzb", "regression": "smoothl1"}, model.config)(outs, t, 0.2, aux)
    assert "s2/ppxyzb" in comps and "s1/bce" in comps


@pytest.mark.parametrize("kind", ["gmm", "ppxyzb"])
def test_quick_overfit_reduces_the_loss(kind):
    torch.manual_seed(0)
    x, t = batch(b=2, h=16, w=16, n=3, seed=1)
    model = build_model(tiny_var())
    loss = build_loss({"kind": kind, "warmup": 0.0}, model.config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        outs, aux = model(x, teacher=t, teacher_prob=1.0, return_aux=True)
        total, _ = loss(outs, t, 1.0, aux)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(float(total.detach()))
    assert np.mean(history[-5:]) < np.mean(history[:5]) - 0.1 * abs(np.mean(history[:5]))


def test_default_loss_leaves_the_uniform_probability_plateau():
    """GMM alone can sit for hundreds of steps at a uniform p that only matches the count; the default
    loss (GMM + occupancy BCE) must make a VAR, fed its own predictions, put p > 0.5 on true emitters."""
    torch.manual_seed(0)
    x, t = batch(b=4, h=24, w=24, n=4, n_frames=1, bg=20.0, seed=3)
    x = x * 4  # bright, isolated emitters: detection is easy once p is not uniform
    cfg = tiny_var(n_frames=1)
    model = build_model(cfg)
    loss = build_loss({"kind": "gmm", "scale_weights": [1, 0, 0, 0]}, cfg)
    assert loss.config.occupancy_weight > 0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        outs, aux = model(x, teacher=None, return_aux=True)
        total, comps = loss(outs[:1], t, 1.0, aux)
        opt.zero_grad()
        total.backward()
        opt.step()
    assert "s1/occupancy" in comps
    p = torch.sigmoid(model.eval()(x, max_scale=1)[0][:, L.P])
    cols, rows = t.xyz[..., 0].long(), t.xyz[..., 1].long()
    at_emitters = p[torch.arange(4)[:, None], rows, cols][t.mask]
    assert at_emitters.mean() > 0.5
