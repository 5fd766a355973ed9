"""VAR predictor: shapes, autoregression over scales, no leakage from finer scales, sparse refinement, VQ."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _models_helpers import batch, tiny_var
from napari_var_emitter.errors import ParameterError
from napari_var_emitter.models import UNetConfig, VARConfig, build_model, model_config_adapter
from napari_var_emitter.models import upconv as upconv_module
from napari_var_emitter.models import var as var_module
from napari_var_emitter.models.transformer import ScaleTransformer, block_causal_mask
from napari_var_emitter.models.upconv import up_cat_conv

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


def test_token_rungs_and_1x_depend_on_the_previous_and_never_on_finer():
    torch.manual_seed(0)
    model = build_model(tiny_var(token_strides=(8, 4))).eval()
    x, targets = batch(h=16, w=16)
    with torch.no_grad():
        ref, ref_aux = model(x, teacher=targets, teacher_prob=1.0, return_aux=True)
    rungs = [1 / 8, 1 / 4]  # teacher of rung i conditions rung i + 1 (the 1x rung after the last)
    outputs_ref = [*ref_aux["coarse"], *ref]
    for i, factor in enumerate(rungs):
        torch.manual_seed(1)
        outs, aux = _perturbed_teacher_run(model, x, targets, factor)
        outputs = [*aux["coarse"], *outs]
        for j, (a, b) in enumerate(zip(outputs_ref, outputs, strict=True)):
            if j <= i:  # same or coarser rung: bit-for-bit unchanged
                assert torch.equal(a, b), (factor, j)
        assert not torch.allclose(outputs_ref[i + 1], outputs[i + 1]), factor  # next rung changes


@pytest.mark.parametrize("k", [0, 1])
def test_fine_rungs_depend_on_the_previous_rung_and_never_on_finer(k):
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1, refine_threshold=0.001)).eval()
    model.dense_head_fraction = 1.0  # per-patch heads, whose forward the hook perturbs
    model.patch_products = False
    x = torch.rand(2, 1, 16, 16) * 100
    with torch.no_grad():
        ref = model(x)
        handle = model.fine[k].register_forward_hook(lambda m, i, out: out + 0.3 * torch.randn_like(out))
        try:
            got = model(x)
        finally:
            handle.remove()
    for j in range(k + 1):  # 1x and the fine rungs before rung k: unchanged
        assert torch.equal(ref[j], got[j]), j
    assert not torch.allclose(ref[k + 1], got[k + 1])  # rung k itself
    assert not torch.allclose(ref[k + 2], got[k + 2])  # and the next one, which reads it


def test_fine_rungs_see_the_image():
    """With the 1x prediction and features fixed, the 2x rung still changes when the pixels change."""
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1)).eval()
    xn = torch.rand(1, 1, 16, 16)
    out1 = torch.rand(1, model.n_channels, 16, 16)
    hidden = torch.rand(1, model.config.head_channels, 16, 16)
    cand = torch.zeros(1, 16, 16, dtype=torch.bool)
    cand[0, 8, 8] = True
    with torch.no_grad():
        a = model._fine_ladder(xn, out1, hidden, cand, 1)[0][0]
        xn2 = xn.clone()
        xn2[0, 0, 7:10, 7:10] += 1.0
        b = model._fine_ladder(xn2, out1, hidden, cand, 1)[0][0]
    assert not torch.allclose(a[0, :, 16:18, 16:18], b[0, :, 16:18, 16:18])
    assert torch.equal(a[0, 0, :16], b[0, 0, :16])  # non-candidate pixels: empty either way
    assert (a[0, 0, :16] == var_module.EMPTY_LOGIT).all()


def test_teacher_prob_zero_equals_own_predictions():
    torch.manual_seed(0)
    model = build_model(tiny_var()).eval()  # in training the true emitters' pixels are fine candidates too
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
def test_fine_rungs_run_only_at_candidates(hw):
    """The 2x rung's blocks at a candidate do not depend on which other pixels are candidates; every fine
    map is empty (p = EMPTY_LOGIT) away from the candidates."""
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1)).eval()
    x = torch.rand(2, 1, *hw) * 100
    with torch.no_grad():
        model.refine_threshold = 1e-6
        every = model(x)
        prob = torch.sigmoid(every[0][:, 0])
        ordered = prob.flatten().sort().values
        k = int(prob.numel() * 0.8)  # a threshold between two values: no pixel sits on it
        model.refine_threshold = float(ordered[k] + ordered[k + 1]) / 2
        some = model(x)
    cand = prob > model.refine_threshold
    assert 0 < cand.sum() < cand.numel()
    assert torch.equal(some[0], every[0])
    m2 = cand.repeat_interleave(2, 1).repeat_interleave(2, 2)[:, None].expand_as(every[1])
    torch.testing.assert_close(some[1][m2], every[1][m2], rtol=1e-5, atol=1e-6)
    for f, s in zip(model.scales[1:], some[1:], strict=True):
        m = cand.repeat_interleave(f, 1).repeat_interleave(f, 2)
        assert (s[:, 0][~m] == var_module.EMPTY_LOGIT).all()
        assert (s[:, 0][m] != var_module.EMPTY_LOGIT).all()


@pytest.mark.parametrize("count_head", [False, True])
@pytest.mark.parametrize("candidates", ["all", "half"])
def test_patch_heads_give_the_same_maps_per_patch_as_products_and_dense(monkeypatch, count_head, candidates):
    """Inference runs the patch heads as matrix products at few candidates and over the whole frame at many:
    the same maps (and counts) as the per-patch convolutions of training."""
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=3, refine_threshold=0.001, count_head=count_head)).eval()
    x = torch.rand(2, 3, 16, 20) * 100
    runs = []
    with torch.no_grad():
        if candidates == "half":  # candidates with gaps between them, and neighbours that share pixels
            model.refine_threshold = float(torch.sigmoid(model(x, max_scale=1)[0][:, 0]).median())
        for fraction, products in ((1.0, False), (1.0, True), (0.0, True)):  # per patch, products, dense
            monkeypatch.setattr(model, "dense_head_fraction", fraction)
            monkeypatch.setattr(model, "patch_products", products)
            runs.append(model(x, return_count=count_head))
    per_patch = runs[0]
    assert len(per_patch) == len(model.scales) + count_head
    for other in runs[1:]:
        assert torch.equal(per_patch[0], other[0])
        for a, b in zip(per_patch[1:], other[1:], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_max_scale_stops_the_ladder_without_changing_coarser_scales():
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=1, refine_threshold=0.001)).eval()
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
    model = build_model(VARConfig.preset("cpu"))  # 1,600 candidates: not a multiple of PatchHead.BUCKET
    assert model.complexity(40, 40)["macs_per_candidate"] == var["macs_per_candidate"]
    assert model.fine[0].BUCKET == var_module.PatchHead.BUCKET


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


def test_fine_rungs_train_at_true_emitters_without_touching_the_1x_features():
    from napari_var_emitter.losses import build_loss

    torch.manual_seed(0)
    cfg = tiny_var(n_frames=1, refine_threshold=0.99)  # no own candidates: only the true emitters' pixels
    model = build_model(cfg).train()
    x, targets = batch(n_frames=1)
    outs, aux = model(x, teacher=targets, teacher_prob=0.5, return_aux=True)
    computed = (outs[1][:, 0] != var_module.EMPTY_LOGIT).sum()
    assert computed == 4 * int(targets.mask.sum())  # the 2x2 children of each emitter's pixel
    loss = build_loss({"kind": "gmm"}, cfg)
    total, _ = loss(outs, targets, 1.0, aux)
    assert torch.isfinite(total)
    model.zero_grad()
    # the fine terms alone: gradients reach the fine heads and nothing before them
    from napari_var_emitter.losses.gmm import gmm_loss
    from napari_var_emitter.models.targets import scale_bg

    term = 0
    for o, f in zip(outs[1:], model.scales[1:], strict=True):
        bg = scale_bg(targets.bg, f, o.shape[-2:]) / cfg.bg_scale
        t = gmm_loss(o, targets, f, bg, cfg)
        term = term + t["count"] + t["mixture"]
    term.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.fine.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.out1.parameters())


def test_block_causal_attention_equals_masked_attention():
    import torch.nn.functional as F

    from napari_var_emitter.models.transformer import block_causal_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 21, 8, generator=g) for _ in range(3))
    sizes = [1, 4, 16]
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=block_causal_mask(sizes))
    torch.testing.assert_close(block_causal_attention(q, k, v, sizes), ref)


def test_transformer_steps_on_cached_keys_equal_the_whole_sequence():
    """Scale by scale on the cached keys and values of the scales before: the outputs ``forward`` gives on
    the whole block-causal sequence."""
    torch.manual_seed(0)
    t = ScaleTransformer(16, depth=2, n_heads=2, mlp_ratio=2.0).eval()
    sizes = [1, 4, 16]
    x = torch.randn(3, sum(sizes), 16)
    with torch.no_grad():
        whole = t(x, sizes)
        cache = t.new_cache()
        steps = [t.step(part, cache) for part in x.split(sizes, 1)]
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-5, atol=1e-6)
    assert [kv[0].shape[2] for kv in cache] == [sum(sizes)] * 2  # every scale's keys, in every block


def test_kv_cache_inference_gives_the_same_maps(monkeypatch):
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=3, refine_threshold=0.01, count_head=True)).eval()
    x = torch.rand(2, 3, 16, 24) * 100
    with torch.no_grad():
        cached = model(x, return_count=True)
        monkeypatch.setattr(model, "kv_cache", False)
        whole = model(x, return_count=True)
    for a, b in zip(cached, whole, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_position_shift_moves_every_token_encoding():
    from napari_var_emitter.models.posenc import sincos_2d

    plain = sincos_2d(4, 5, 16, stride=4)
    zero = sincos_2d(4, 5, 16, stride=4, shift=torch.zeros(2, 2))
    assert zero.shape == (2, 20, 16) and torch.allclose(zero[0], plain) and torch.allclose(zero[1], plain)
    # shifting by one token (4 px) in x gives the encoding of the next token column
    moved = sincos_2d(4, 5, 16, stride=4, shift=torch.tensor([[0.0, 4.0]]))[0].view(4, 5, 16)
    assert torch.allclose(moved[:, :-1], plain.view(4, 5, 16)[:, 1:], atol=1e-5)


def test_position_jitter_acts_in_training_only():
    torch.manual_seed(0)
    config = tiny_var(position_jitter_px=16.0)
    model = build_model(config)
    plain = build_model(tiny_var(position_jitter_px=0.0))
    plain.load_state_dict(model.state_dict())
    x, _ = batch()
    with torch.no_grad():
        model.eval()
        plain.eval()
        assert torch.equal(model(x)[0], plain(x)[0])  # inference: positions as they are
        model.train()
        plain.train()
        torch.manual_seed(1)
        a = model(x)[0]
        torch.manual_seed(1)
        b = plain(x)[0]
    assert not torch.allclose(a, b)  # training: every sample's token positions shifted


@pytest.mark.parametrize("hw", [(8, 8), (5, 12)])
def test_up_cat_conv_equals_convolving_the_upsampled_concatenation(hw):
    """The decoder step inference uses (no upsampled copy) gives what the plain form gives."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6 + 4, 5, 3, padding=1)
    low = torch.randn(2, 6, *hw)
    skip = torch.randn(2, 4, 2 * hw[0], 2 * hw[1])
    plain = conv(torch.cat([F.interpolate(low, scale_factor=2, mode="nearest"), skip], 1))
    torch.testing.assert_close(up_cat_conv(conv, low, skip), plain, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="twice"):
        up_cat_conv(conv, low, skip[..., :-1])


@pytest.mark.parametrize("kind", ["var", "unet"])
def test_inference_decoders_match_the_plain_upsampling_form(kind, monkeypatch):
    torch.manual_seed(0)
    config = tiny_var(n_frames=3) if kind == "var" else UNetConfig(n_frames=3, channels=(8, 12, 16))
    model = build_model(config).eval()
    x = torch.rand(2, 3, 16, 24) * 100
    with torch.no_grad():
        fast = model(x)

        def plain(conv, low, skip):
            return conv(torch.cat([F.interpolate(low, scale_factor=2, mode="nearest"), skip], 1))

        monkeypatch.setattr(upconv_module, "up_cat_conv", plain)
        slow = model(x)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fraction", [0.01, 0.5])
def test_scatter_writes_each_candidates_children_at_its_pixel(fraction):
    """The fine map holds each candidate's f x f block at its pixel and the emptied 1x values elsewhere
    (few candidates and many)."""
    torch.manual_seed(0)
    out1 = torch.randn(2, 10, 12, 16)
    cand = torch.rand(2, 12, 16) < fraction
    cand[0, 3, 5] = True
    bi, ri, ci = cand.nonzero(as_tuple=True)
    blocks = torch.randn(len(bi), 10, 2, 2)
    got = var_module.VARPredictor._scatter(blocks, out1, bi, ri, ci, 2)
    want = out1.repeat_interleave(2, 2).repeat_interleave(2, 3)
    want[:, 0] = var_module.EMPTY_LOGIT
    want[:, 2:4] = 0.0
    for k, (b, r, c) in enumerate(zip(bi.tolist(), ri.tolist(), ci.tolist(), strict=True)):
        want[b, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = blocks[k]
    assert torch.equal(got, want)


def test_channels_last_inference_gives_the_same_maps_in_the_standard_layout(monkeypatch):
    torch.manual_seed(0)
    model = build_model(tiny_var(n_frames=3, refine_threshold=0.01)).eval()
    x = torch.rand(2, 3, 16, 24) * 100
    with torch.no_grad():
        fast = model(x)
        monkeypatch.setattr(model, "channels_last_inference", False)
        plain = model(x)
    for a, b in zip(fast, plain, strict=True):
        assert a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_patch_heads_see_few_distinct_shapes_whatever_the_candidate_count():
    """The per-patch convolutions run on a multiple of PatchHead.BUCKET patches (the CPU convolution
    library caches a plan per shape: one per candidate count made memory grow with the movie's length),
    and the padding changes nothing."""
    torch.manual_seed(0)
    head = var_module.PatchHead(c_in=6, c=8, factor=2, n_out=10, prior=0.01).eval()
    seen = []
    head.conv1.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    patches = torch.randn(700, 6, 5, 5)
    with torch.no_grad():
        outs = [head(patches[:k]) for k in (1, 37, 511, 513, 700)]
        one = head(patches[36:37])
    assert [o.shape[0] for o in outs] == [1, 37, 511, 513, 700]
    assert all(n % head.BUCKET == 0 for n in seen) and len(set(seen)) == 2
    torch.testing.assert_close(outs[1][36:37], one)


def test_the_count_head_counts_emitters_per_candidate_pixel():
    """With ``count_head`` the model gives, per camera pixel, the probabilities of 0, 1 and 2+ emitters:
    at inference appended to the outputs (certainly 0 away from the candidates), in training as logits in
    ``aux`` with the pixels they were computed at; the loss adds their cross-entropy against the true
    counts, and a few steps on one batch teach the head to count (two emitters in one pixel included)."""
    from napari_var_emitter.losses import build_loss
    from napari_var_emitter.models.targets import pixel_counts

    torch.manual_seed(0)
    model = build_model(tiny_var(count_head=True))
    x, targets = batch(b=4, n=4, seed=3)
    twin = targets.xyz.clone()
    corner = torch.floor(twin[:, 0, :2])
    twin[:, 0, :2], twin[:, 1, :2] = corner + 0.3, corner + 0.7  # two emitters in one pixel
    targets.xyz = twin
    counts = pixel_counts(targets)
    assert counts.sum() == 16 and (counts == 2).sum() >= 4

    model.eval()
    with torch.no_grad():
        assert len(model(x)) == len(model.scales)
        model.refine_threshold = 0.999  # no candidate
        p = model(x, return_count=True)[-1]
    assert p.shape == (4, 3, 16, 16) and torch.allclose(p[:, 0], torch.ones(()))

    model.train()
    model.refine_threshold = 0.05
    loss = build_loss({"kind": "ppxyzb"}, model.config)
    params = [q for n, q in model.named_parameters() if n.startswith("count.")]
    opt = torch.optim.Adam(params, lr=1e-2)
    first = None
    for _ in range(60):
        outs, aux = model(x, teacher=targets, return_aux=True)
        assert aux["count_mask"][counts > 0].all()  # every true emitter's pixel is computed in training
        total, comps = loss(outs, targets, 1.0, aux)
        first = comps["count/ce"] if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert comps["count/ce"] < 0.3 * first
    predicted = aux["count"].argmax(1)
    assert (predicted[counts == 2] == 2).float().mean() > 0.7
