"""MultiDiffusion(+CAC), GLIGEN+CAC and SDXL+CAC on tiny pipelines."""
import numpy as np
import pytest
import torch

from cac import CACState, apply_cac, cac_processors, count_denoiser_calls, encode_cac_prompts, multidiffusion

BOXES = [[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]]
LOCAL = ["a red apple", "a green bowl"]
PROMPT = "a red apple and a green bowl"


def _gen():
    return torch.Generator().manual_seed(0)


def test_md_ratio_zero_is_sd_plus_cac(sd_pipe):
    """Our sampling loop at ratio 0 equals the diffusers pipeline's own loop with CAC installed."""
    md = multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, md_ratio=0.0, num_inference_steps=3, generator=_gen(),
                        output_type="np", progress=False).images
    ref = apply_cac(sd_pipe, PROMPT, LOCAL, BOXES, num_inference_steps=3, generator=_gen(), output_type="np").images
    assert np.abs(md - ref).max() < 1e-5
    plain = multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, md_ratio=0.0, cac=False, num_inference_steps=3,
                           generator=_gen(), output_type="np", progress=False).images
    vanilla = sd_pipe(PROMPT, num_inference_steps=3, generator=_gen(), output_type="np").images
    assert np.abs(plain - vanilla).max() < 1e-5


def test_md_ratio_one_is_pure_md(sd_pipe):
    """At ratio 1 CAC never acts; with every region = the global prompt over the whole image, fusion is SD."""
    kw = dict(md_ratio=1.0, num_inference_steps=3, output_type="np", progress=False)
    a = multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, cac=True, generator=_gen(), **kw).images
    b = multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, cac=False, generator=_gen(), **kw).images
    assert np.abs(a - b).max() < 1e-5  # our plain-attention path vs diffusers' SDPA: float rounding only
    same = multidiffusion(sd_pipe, PROMPT, [PROMPT, PROMPT], torch.ones(2, 32, 32), generator=_gen(), **kw).images
    vanilla = sd_pipe(PROMPT, num_inference_steps=3, generator=_gen(), output_type="np").images
    assert np.abs(same - vanilla).max() < 1e-5


def test_md_fusion_step_by_hand(sd_pipe):
    """One MD step, no CFG: eps = sum_i M_i eps_i / sum_i M_i at latent resolution (left half: prompt 0)."""
    lat = torch.randn(1, 4, 16, 16, generator=_gen())
    out = multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, md_ratio=1.0, num_inference_steps=1, guidance_scale=1.0,
                         latents=lat, output_type="latent", progress=False).images
    enc = encode_cac_prompts(sd_pipe, PROMPT, LOCAL)
    sched = sd_pipe.scheduler
    t = sched.timesteps[0]
    eps = [sd_pipe.unet(lat, t, encoder_hidden_states=enc.per_prompt[:, i]).sample for i in range(3)]
    fused = torch.cat([(eps[0] + eps[2])[..., :8] / 2, (eps[1] + eps[2])[..., 8:] / 2], -1)
    ref = sched.step(fused, t, lat * sched.init_noise_sigma, return_dict=False)[0]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_md_costs_more_denoiser_evaluations_than_cac(sd_pipe):
    kw = dict(num_inference_steps=4, output_type="np", progress=False)
    with count_denoiser_calls(sd_pipe.unet) as md:
        multidiffusion(sd_pipe, PROMPT, LOCAL, BOXES, md_ratio=0.5, **kw)
    assert md["calls"] == 4 and md["samples"] == 2 * (1 + 3) + 2 * 2  # shared unconditional + 3 regions, then CFG


def test_gligen_plus_cac(gligen_pipe):
    """GLIGEN+CAC: identity oracle with the gated grounding on, and zero weight outside the box."""
    kw = dict(num_inference_steps=2, output_type="np", gligen_phrases=["a dog"], gligen_boxes=[[0.0, 0.0, 0.5, 0.5]])
    vanilla = gligen_pipe("a dog", generator=_gen(), **kw).images
    ours = apply_cac(gligen_pipe, "a dog", ["a dog"], torch.ones(1, 32, 32), generator=_gen(), **kw).images
    assert np.abs(ours - vanilla).max() < 1e-5
    out, state = apply_cac(gligen_pipe, "a dog on grass", ["a dog"], [[0.0, 0.0, 0.5, 0.5]], record=True,
                           return_state=True, num_inference_steps=2, output_type="np", generator=_gen())
    assert np.isfinite(out.images).all()
    for _, p in state.recorded:
        h = int(p.shape[1] ** 0.5)
        heads = p.shape[0] // 2
        cond = p[heads:].view(heads, h, h, 2, 77)[..., 0, :]
        assert cond[:, h // 2:].abs().max() == 0 and cond[:, :, h // 2:].abs().max() == 0


def test_sdxl_plus_cac(sdxl_pipe):
    """SDXL: two text encoders concatenated per prompt, pooled embedding of the global caption; identity oracle."""
    kw = dict(num_inference_steps=2, output_type="np")
    vanilla = sdxl_pipe("a dog", generator=_gen(), **kw).images
    ours = apply_cac(sdxl_pipe, "a dog", ["a dog"], torch.ones(1, 32, 32), generator=_gen(), **kw).images
    assert np.abs(ours - vanilla).max() < 1e-5
    out, state = apply_cac(sdxl_pipe, "a dog and a cat", ["a dog", "a cat"], BOXES, record=True, return_state=True,
                           **kw)
    assert np.isfinite(out.images).all() and state.recorded
    with pytest.raises(NotImplementedError):
        multidiffusion(sdxl_pipe, "a dog", ["a dog"], BOXES[:1], progress=False)


def test_unet_level_identity_with_state_disabled(sd_pipe):
    enc = encode_cac_prompts(sd_pipe, PROMPT, LOCAL)
    x = torch.randn(1, 4, 16, 16, generator=_gen())
    ref = sd_pipe.unet(x, 5, encoder_hidden_states=enc.prompt_embeds).sample
    state = CACState(torch.zeros(1, 2, 32, 32), enc.tokens_per_prompt, (16, 16), enabled=False)
    with cac_processors(sd_pipe.unet, state):
        out = sd_pipe.unet(x, 5, encoder_hidden_states=enc.prompt_embeds).sample
    torch.testing.assert_close(out, ref)
