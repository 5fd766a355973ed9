"""VAR predictor: shapes, autoregression over scales, no leakage from finer scales, sparse refinement, VQ."""

from __future__ import annotations

import pytest
import torch

from _models_helpers import batch, tiny_var
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.models import UNetConfig, VARConfig, build_model, model_config_adapter
from napari_var_emitter.models import var as var_module
from napari_var_emitter.models.transformer import ScaleTransformer, block_causal_mask

torch.set_num_threads(1)


@pytest.mark.parametrize("hw", [(16, 16), (13, 21)])
@pytest.mark.parametrize("n_frames", [1, 3])
@pytest.mark.parametrize("sigma", [False, True])
@pytest.mark.parametrize("kind", ["var", "unet"])
def test_output_shapes(hw, n_frames, sigma, kind):
    torch.manual_seed(0)
    cfg = (
        tiny_var(n_frames=n_frames, sigma_channels=sigma)
        if kind == "var"
        else UNetConfig(n_frames=n_frames, sigma_channels=sigma, channels=(8, 8))
    )
    model = build_model(cfg)
    x = torch.rand(2, n_frames, *hw) * 100
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            outs = model(x)
        assert len(outs) == len(model.scales)
        c = 10 if sigma else 6
        for o, f in zip(outs, model.scales, strict=True):
            assert o.shape == (2, c, hw[0] * f, hw[1] * f)
            assert torch.isfinite(o).all()
    assert model.n_channels == c and model.n_frames == n_frames
    assert model.scales == ((1, 2, 4, 8) if kind == "var" else (1,))


def test_wrong_input_shape_is_a_clear_error():
    model = build_model(tiny_var(n_frames=3))
    with pytest.raises(ParameterError, match="expected"):
        model(torch.rand(1, 1, 16, 16))


def test_block_causal_mask_matrix():
    m = block_causal_mask([1, 4, 16])
    assert m.shape == (21, 21)
    blocks = torch.tensor([0] + [1] * 4 + [2] * 16)
    assert torch.equal(m, blocks[:, None] >= blocks[None, :])
    assert m[0, 0] and not m[0, 1:].any()  # the coarsest token sees only itself
    assert m[1:5, :5].all() and not m[1:5, 5:].any()
    assert m[5:].all()


def test_transformer_does_not_leak_finer_tokens():
    torch.manual_seed(0)
    tf = ScaleTransformer(16, 2, 2, 2.0).eval()
    x = torch.randn(2, 21, 16)
    y = x.clone()
    y[:, 5:] += torch.randn(2, 16, 16)  # perturb the finest scale's tokens only
    with torch.no_grad():
        a, b = tf(x, [1, 4, 16]), tf(y, [1, 4, 16])
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def _perturbed_teacher_run(model, x, targets, factor):
    """Forward with the teacher state at rung ``factor`` perturbed (all other rungs untouched)."""
    original = model._teacher_state

    def patched(teacher, f, hw):
        st = original(teacher, f, hw)
        if abs(f - factor) < 1e-9:
            st = st + 0.3 * torch.randn_like(st)
        return st

    model._teacher_state = patched
    try:
        with torch.no_grad():
            return model(x, teacher=targets, teacher_prob=1.0, return_aux=True)
    finally:
        del model._teacher_state


def test_each_scale_depends_on_the_previous_and_never_on_finer():
    torch.manual_seed(0)
    model = build_model(tiny_var(token_strides=(8, 4))).eval()
    x, targets = batch(h=16, w=16)
    with torch.no_grad():
        ref, ref_aux = model(x, teacher=targets, teacher_prob=1.0, return_aux=True)
    rungs = [1 / 8, 1 / 4, 1, 2, 4]  # teacher of rung i conditions rung i + 1
    outputs_ref = [*ref_aux["coarse"], *ref]
    for i, factor in enumerate(rungs):
        torch.manual_seed(1)
        outs, aux = _perturbed_teacher_run(model, x, targets, factor)
        outputs = [*aux["coarse"], *outs]
        for j, (a, b) in enumerate(zip(outputs_ref, outputs, strict=True)):
            if j <= i:  # same or coarser rung: bit-for-bit unchanged
                assert torch.equal(a, b), (factor, j)
        assert not torch.allclose(outputs_ref[i + 1], outputs[i + 1]), factor  # next rung changes


def test_teacher_prob_zero_equals_own_predictions():
    torch.manual_seed(0)
    model = build_model(tiny_var())
    x, targets = batch()
    with torch.no_grad():
        a = model(x)
        b = model(x, teacher=targets, teacher_prob=0.0)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


def test_scheduled_sampling_mixes_per_sample():
    torch.manual_seed(0)
    model = build_model(tiny_var())
    x, targets = batch(b=8)
    with torch.no_grad():
        own = model(x)[1]
        forced = model(x, teacher=targets, teacher_prob=1.0)[1]
        torch.manual_seed(3)
        mixed = model(x, teacher=targets, teacher_prob=0.5)[1]
    same_own = [torch.equal(mixed[i], own[i]) for i in range(8)]
    same_forced = [torch.equal(mixed[i], forced[i]) for i in range(8)]
    assert any(not s for s in same_own) and any(not s for s in same_forced)


@pytest.mark.parametrize("hw", [(16, 16), (13, 19)])
def test_sparse_refinement_matches_dense_at_candidates(hw):
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1)).eval()
    x = torch.rand(2, 1, *hw) * 100
    with torch.no_grad():
        model.sparse_refine = False
        dense = model(x)
        prob = torch.sigmoid(dense[0][:, 0])
        model.refine_threshold = float(prob.flatten().kthvalue(int(prob.numel() * 0.8)).values)
        model.sparse_refine = True
        sparse = model(x)
    cand = prob > model.refine_threshold
    assert 0 < cand.sum() < cand.numel()
    assert torch.equal(sparse[0], dense[0])
    for f, d, s in zip(model.scales[1:], dense[1:], sparse[1:], strict=True):
        m = cand.repeat_interleave(f, 1).repeat_interleave(f, 2)[:, None].expand_as(d)
        torch.testing.assert_close(s[m], d[m], rtol=1e-4, atol=1e-5)
        assert (s[:, 0][~m[:, 0]] == var_module.EMPTY_LOGIT).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_max_scale_stops_the_ladder_without_changing_coarser_scales(sparse):
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1)).eval()
    model.sparse_refine = sparse
    x = torch.rand(2, 1, 16, 16) * 100
    with torch.no_grad():
        full = model(x)
        for max_scale in (1, 2, 4):
            part = model(x, max_scale=max_scale)
            assert [o.shape[-1] // 16 for o in part] == [f for f in model.scales if f <= max_scale]
            for a, b in zip(part, full, strict=False):
                assert torch.equal(a, b)


def test_vq_reports_commitment_and_usage():
    torch.manual_seed(0)
    model = build_model(tiny_var(vq=True, vq_codebook_size=16))
    x, targets = batch()
    outs, aux = model(x, teacher=targets, return_aux=True)
    assert aux["vq_commit"].requires_grad and aux["vq_commit"] > 0
    assert 1.0 <= float(aux["vq_perplexity"]) <= 16
    assert 0 < float(aux["vq_usage"]) <= 1
    aux["vq_commit"].backward()
    assert model.vq.codebook.weight.grad is not None


def test_default_has_no_vq():
    _, aux = build_model(tiny_var())(torch.rand(1, 3, 16, 16), return_aux=True)
    assert "vq_commit" not in aux


def test_cpu_preset_budget_and_comparable_unet():
    var = build_model(VARConfig.preset("cpu")).complexity(64, 64)
    unet = build_model(UNetConfig.preset("cpu")).complexity(64, 64)
    assert var["macs_per_pixel"] < 50_000
    assert var["macs_per_pixel_dense"] > var["macs_per_pixel"]
    assert 0.5 < unet["macs_per_pixel"] / var["macs_per_pixel"] < 2.0
    assert var["params"] > 0 and unet["params"] > 0


def test_configs_presets_and_errors():
    gpu = model_config_adapter.validate_python({"kind": "var", "preset": "gpu", "depth": 2})
    assert gpu.token_strides == (8, 4, 2, 1) and gpu.depth == 2
    assert VARConfig.preset("gpu").embed_dim == 128
    assert isinstance(build_model({"kind": "unet"}).config, UNetConfig)
    with pytest.raises(ParameterError, match="bogus"):
        build_model({"kind": "var", "bogus": 1})
    with pytest.raises(ParameterError, match="token_strides"):
        build_model({"kind": "var", "token_strides": [4, 8]})
    with pytest.raises(ParameterError):
        VARConfig.preset("huge")
    m = build_model(VARConfig.preset("gpu", token_strides=(8, 4, 2, 1)))
    assert m.tile_size == 40 and m.margin >= 0


def test_fine_heads_train_on_a_window_and_the_loss_follows():
    from napari_var_emitter.losses import build_loss

    torch.manual_seed(0)
    cfg = tiny_var(n_frames=1, train_fine_crop=8)
    model = build_model(cfg).train()
    x, targets = batch(n_frames=1)
    outs, aux = model(x, teacher=targets, teacher_prob=0.5, return_aux=True)
    y0, x0, c = aux["fine_crop"]
    assert c == 8 and 0 <= y0 <= 8 and 0 <= x0 <= 8
    assert outs[0].shape[-2:] == (16, 16)
    assert [o.shape[-1] for o in outs[1:]] == [8 * f for f in model.scales[1:]]
    total, comps = build_loss({"kind": "gmm"}, cfg)(outs, targets, 0.9, aux)
    total.backward()
    assert torch.isfinite(total)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fine.parameters())
    # evaluation is always dense over the whole frame
    model.eval()
    with torch.no_grad():
        assert [o.shape[-1] for o in model(x)] == [16 * f for f in model.scales]


def test_block_causal_attention_equals_masked_attention():
    import torch.nn.functional as F

    from napari_var_emitter.models.transformer import block_causal_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 21, 8, generator=g) for _ in range(3))
    sizes = [1, 4, 16]
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=block_causal_mask(sizes))
    torch.testing.assert_close(block_causal_attention(q, k, v, sizes), ref)
