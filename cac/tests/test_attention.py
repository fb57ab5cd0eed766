"""CACAttnProcessor against hand-written attention (one layer) and against vanilla sampling (whole pipelines)."""
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

from cac import CACAttnProcessor, CACState, apply_cac, cac_processors
from cac.attention import cross_attention_layers
from cac.compose import count_denoiser_calls, encode_cac_prompts

T = 5  # tokens per prompt in the single-layer tests


def _layer_case(seed=0, heads=2, batch=2, n_local=2, hw=(4, 6)):
    g = torch.Generator().manual_seed(seed)
    attn = Attention(query_dim=16, cross_attention_dim=8, heads=heads, dim_head=8)
    torch.nn.init.normal_(attn.to_q.weight, generator=g)
    torch.nn.init.normal_(attn.to_k.weight, generator=g)
    x = torch.randn(batch, hw[0] * hw[1], 16, generator=g)
    ctx = torch.randn(batch, (n_local + 1) * T, 8, generator=g)
    masks = (torch.rand(batch, n_local, *hw, generator=g) > 0.5).float()  # different per sample
    return attn, x, ctx, masks


def _reference(attn, x, ctx, masks, normalize):
    """Per-sample, per-head attention written out with einsum: the paper's formula and the two ablations."""
    b, n_query, _ = x.shape
    h = attn.heads
    q = attn.to_q(x).view(b, n_query, h, -1)
    k = attn.to_k(ctx).view(b, ctx.shape[1], h, -1)
    v = attn.to_v(ctx).view(b, ctx.shape[1], h, -1)
    logits = torch.einsum("bnhd,blhd->bhnl", q, k) * attn.scale
    m = torch.cat([masks.flatten(2).transpose(1, 2), torch.ones(b, n_query, 1)], -1).repeat_interleave(T, -1)
    m = m[:, None]  # [b, 1, N, L]
    if normalize == "none":
        p = logits.softmax(-1) * m
    elif normalize == "renorm":
        p = logits.masked_fill(m == 0, float("-inf")).softmax(-1)
    else:
        p = logits.unflatten(-1, (-1, T)).softmax(-1).flatten(-2) * m
    out = torch.einsum("bhnl,blhd->bnhd", p, v).reshape(b, n_query, -1)
    return attn.to_out[0](out), p


@pytest.mark.parametrize("normalize", ["none", "renorm", "per_prompt"])
def test_processor_matches_written_out_attention(normalize):
    """2 heads, a batch of 2 with different masks: catches any head/batch ordering mix-up."""
    attn, x, ctx, masks = _layer_case()
    state = CACState(masks=masks, tokens_per_prompt=T, latent_hw=(4, 6), normalize=normalize, record=True)
    attn.set_processor(CACAttnProcessor(state, "layer"))
    ours = attn(x, encoder_hidden_states=ctx)
    ref, p_ref = _reference(attn, x, ctx, masks, normalize)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.recorded[0][1].view(2, 2, 24, -1), p_ref, atol=1e-6, rtol=1e-5)


def test_all_ones_masks_equal_plain_attention_over_concatenated_prompt():
    attn, x, ctx, masks = _layer_case(seed=1)
    plain = attn(x, encoder_hidden_states=ctx)  # default processor, concatenated prompt
    attn.set_processor(CACAttnProcessor(CACState(torch.ones_like(masks), T, (4, 6)), "layer"))
    torch.testing.assert_close(attn(x, encoder_hidden_states=ctx), plain, atol=1e-6, rtol=1e-5)


def test_zero_masks_equal_joint_softmax_with_columns_zeroed():
    attn, x, ctx, masks = _layer_case(seed=2)
    state = CACState(torch.zeros_like(masks), T, (4, 6), record=True)
    attn.set_processor(CACAttnProcessor(state, "layer"))
    attn(x, encoder_hidden_states=ctx)
    p = state.recorded[0][1]
    assert p[..., : 2 * T].abs().max() == 0
    q = attn.head_to_batch_dim(attn.to_q(x))
    k = attn.head_to_batch_dim(attn.to_k(ctx))
    torch.testing.assert_close(p[..., 2 * T:], (q @ k.transpose(1, 2) * attn.scale).softmax(-1)[..., 2 * T:])


def test_cfg_batch_gets_all_ones_on_the_unconditional_half():
    attn, x, ctx, masks = _layer_case(seed=3, batch=2)
    state = CACState(masks[:1], T, (4, 6), cfg=True, record=True)
    attn.set_processor(CACAttnProcessor(state, "layer"))
    attn(x, encoder_hidden_states=ctx)
    p = state.recorded[0][1].view(2, 2, 24, -1)
    q = attn.head_to_batch_dim(attn.to_q(x))
    k = attn.head_to_batch_dim(attn.to_k(ctx))
    plain = (q @ k.transpose(1, 2) * attn.scale).softmax(-1).view(2, 2, 24, -1)
    torch.testing.assert_close(p[0], plain[0])  # unconditional: untouched
    assert not torch.allclose(p[1], plain[1])


def test_wrong_token_count_and_batch_are_named():
    attn, x, ctx, masks = _layer_case()
    attn.set_processor(CACAttnProcessor(CACState(masks, T + 1, (4, 6)), "layer"))
    with pytest.raises(ValueError, match="encode_cac_prompts"):
        attn(x, encoder_hidden_states=ctx)
    attn.set_processor(CACAttnProcessor(CACState(masks[:1], T, (4, 6)), "layer"))
    with pytest.raises(ValueError, match="one mask set per generated image"):
        attn(x, encoder_hidden_states=ctx)
    with pytest.raises(ValueError, match="normalize"):
        CACState(masks, T, (4, 6), normalize="softmax")


def test_install_only_on_cross_attention_and_restore(sd_pipe):
    unet = sd_pipe.unet
    before = dict(unet.attn_processors)
    layers = cross_attention_layers(unet)
    assert layers and all(n.endswith("attn2") for n in layers)
    state = CACState(torch.ones(1, 1, 16, 16), 77, (16, 16))
    with cac_processors(unet, state):
        procs = unet.attn_processors
        assert all(isinstance(procs[f"{n}.processor"], CACAttnProcessor) for n in layers)
        assert not any(isinstance(p, CACAttnProcessor) for k, p in procs.items() if "attn1" in k)
        with pytest.raises(RuntimeError, match="already installed"):
            with cac_processors(unet, state):
                pass
    assert {k: type(v) for k, v in unet.attn_processors.items()} == {k: type(v) for k, v in before.items()}
    assert isinstance(next(iter(layers.values())).processor, (AttnProcessor, AttnProcessor2_0))


def test_weighted_processor_is_refused(sd_pipe):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor

    unet = sd_pipe.unet
    name, attn = next(iter(cross_attention_layers(unet).items()))
    old = attn.processor
    attn.set_processor(IPAdapterAttnProcessor(hidden_size=32, cross_attention_dim=32))
    try:
        with pytest.raises(TypeError, match="set_default_attn_processor"):
            with cac_processors(unet, CACState(torch.ones(1, 1, 16, 16), 77, (16, 16))):
                pass
    finally:
        attn.set_processor(old)


def _run(pipe, fn, **kw):
    g = torch.Generator().manual_seed(0)
    return fn(generator=g, num_inference_steps=3, output_type="np", **kw).images


def test_duplicate_prompt_with_all_ones_mask_reproduces_vanilla_pipeline(sd_pipe):
    """Oracle 1: local prompt = global prompt, all-ones mask => the same decoded image as plain SD (CFG on)."""
    prompt = "a photo of a dog on a beach"
    vanilla = _run(sd_pipe, sd_pipe, prompt=prompt)
    ones = torch.ones(1, 32, 32)
    ours = _run(sd_pipe, lambda **k: apply_cac(sd_pipe, prompt, [prompt], ones, **k))
    assert abs(ours - vanilla).max() < 1e-5
    # and at the UNet output level
    enc = encode_cac_prompts(sd_pipe, prompt, [prompt])
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    ref = sd_pipe.unet(x, 10, encoder_hidden_states=enc.per_prompt[:, -1]).sample
    with cac_processors(sd_pipe.unet, CACState(ones[None], enc.tokens_per_prompt, (16, 16))):
        out = sd_pipe.unet(x, 10, encoder_hidden_states=enc.prompt_embeds).sample
    assert (out - ref).abs().max() < 1e-5


def test_local_tokens_get_zero_weight_outside_their_region_every_layer_and_step(sd_pipe):
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.25, 0.5, 1.0, 1.0]]
    out, state = apply_cac(sd_pipe, "a dog and a cat", ["a dog", "a cat"], boxes, record=True, return_state=True,
                           num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0))
    n_layers = len(cross_attention_layers(sd_pipe.unet))
    assert len(state.recorded) == 2 * n_layers
    resolutions = set()
    for _, p in state.recorded:
        n_query = p.shape[1]
        h, w = {256: (16, 16), 64: (8, 8)}[n_query]
        resolutions.add(h)
        heads = p.shape[0] // 2
        cond = p[heads:].view(heads, h, w, 3, 77)  # second half of the CFG batch
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            inside = torch.zeros(h, w, dtype=torch.bool)
            inside[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)] = True
            assert cond[:, ~inside, i].abs().max() == 0
            assert cond[:, inside, i].sum() > 0
        assert (p[:heads] > 0).all()  # unconditional half: all tokens visible
    assert resolutions == {16, 8}
    assert out.images.shape == (1, 32, 32, 3)


def test_non_square_images(sd_pipe):
    out, state = apply_cac(sd_pipe, "a dog", ["a dog"], [[0, 0, 24, 16]], units="pixel", height=32, width=48,
                           record=True, return_state=True, num_inference_steps=1, output_type="np")
    assert out.images.shape == (1, 32, 48, 3)
    p = state.recorded[0][1]
    heads = p.shape[0] // 2
    cond = p[heads:].view(heads, 16, 24, 2, 77)
    assert cond[:, 8:, :, 0].abs().max() == 0 and cond[:, :, 12:, 0].abs().max() == 0
    assert cond[:, :8, :12, 0].min() > 0


def test_cac_costs_no_extra_denoiser_evaluations(sd_pipe):
    with count_denoiser_calls(sd_pipe.unet) as vanilla:
        _run(sd_pipe, sd_pipe, prompt="a dog and a cat")
    with count_denoiser_calls(sd_pipe.unet) as ours:
        _run(sd_pipe, lambda **k: apply_cac(sd_pipe, "a dog and a cat", ["a dog", "a cat"],
                                            [[0, 0, 0.5, 1], [0.5, 0, 1, 1]], **k))
    assert ours == vanilla == {"calls": 3, "samples": 6}


def test_batch_of_prompts_and_images_per_prompt(sd_pipe):
    boxes = torch.tensor([[[0, 0, 0.5, 0.5]], [[0.5, 0.5, 1, 1]]])
    out, state = apply_cac(sd_pipe, ["a dog", "a cat"], [["dog"], ["cat"]], boxes, num_images_per_prompt=2,
                           record=True, return_state=True, num_inference_steps=1, output_type="np")
    assert out.images.shape[0] == 4
    p = state.recorded[0][1]
    heads = p.shape[0] // 8
    cond = p[4 * heads:].view(4, heads, 16, 16, 2, 77)[..., 0, :]
    assert cond[:2, :, 8:].abs().max() == 0 and cond[2:, :, :8].abs().max() == 0  # images 0,1: dog; 2,3: cat


def test_more_local_prompts_than_masks_is_an_error(sd_pipe):
    with pytest.raises(ValueError, match="one box"):
        apply_cac(sd_pipe, "a dog and a cat", ["dog", "cat"], [[0, 0, 0.5, 0.5]], num_inference_steps=1)
    with pytest.raises(ValueError, match="empty mask"):
        apply_cac(sd_pipe, "a dog", ["dog"], torch.zeros(1, 32, 32), num_inference_steps=1)


def test_overlapping_regions_both_prompts_act_in_the_overlap(sd_pipe):
    boxes = [[0.0, 0.0, 0.75, 1.0], [0.25, 0.0, 1.0, 1.0]]
    _, state = apply_cac(sd_pipe, "a dog and a cat", ["a dog", "a cat"], boxes, record=True, return_state=True,
                         num_inference_steps=1, output_type="np")
    p = state.recorded[0][1]
    heads = p.shape[0] // 2
    cond = p[heads:].view(heads, 16, 16, 3, 77)
    overlap = cond[:, :, 4:12]
    assert (overlap[..., 0, :].sum(-1) > 0).all() and (overlap[..., 1, :].sum(-1) > 0).all()
    assert cond[:, :, 12:, 0].abs().max() == 0 and cond[:, :, :4, 1].abs().max() == 0


@pytest.mark.parametrize("normalize", ["none", "renorm", "per_prompt"])
def test_fused_path_equals_materialised_path(normalize):
    attn, x, ctx, masks = _layer_case(seed=4)
    ref, _ = _reference(attn, x, ctx, masks, normalize)
    attn.set_processor(CACAttnProcessor(CACState(masks, T, (4, 6), normalize=normalize, fused=True), "layer"))
    torch.testing.assert_close(attn(x, encoder_hidden_states=ctx), ref, atol=1e-5, rtol=1e-5)


def test_fused_and_materialised_pipelines_agree(sd_pipe):
    kw = dict(num_inference_steps=2, output_type="np")
    boxes = [[0, 0, 0.5, 1], [0.5, 0, 1, 1]]
    a = apply_cac(sd_pipe, "a dog and a cat", ["a dog", "a cat"], boxes, fused=True,
                  generator=torch.Generator().manual_seed(0), **kw)
    b = apply_cac(sd_pipe, "a dog and a cat", ["a dog", "a cat"], boxes, record=True,
                  generator=torch.Generator().manual_seed(0), **kw)  # record forces the materialised path
    assert abs(a.images - b.images).max() < 1e-5


def test_gradients_flow_through_cac():
    """Guidance methods differentiate through attention: the materialised path must stay autograd-safe."""
    attn, x, ctx, masks = _layer_case(seed=5)
    x.requires_grad_(True)
    attn.set_processor(CACAttnProcessor(CACState(masks, T, (4, 6), fused=False), "layer"))
    attn(x, encoder_hidden_states=ctx).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("normalize", ["none", "renorm", "per_prompt"])
def test_fused_equals_materialised_with_an_attention_mask(normalize):
    attn, x, ctx, masks = _layer_case(seed=6)
    bias = torch.zeros(2, 1, 3 * T)
    bias[0, 0, 1:4] = -5.0  # an additive key mask, different per sample
    bias[1, 0, T + 2:T + 7] = -3.0
    outs = []
    for fused in (True, False):
        attn.set_processor(CACAttnProcessor(CACState(masks, T, (4, 6), normalize=normalize, fused=fused), "layer"))
        outs.append(attn(x, encoder_hidden_states=ctx, attention_mask=bias))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
