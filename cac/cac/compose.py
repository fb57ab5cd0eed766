"""CAC on diffusers pipelines: prompt encoding, ``apply_cac``, MultiDiffusion(+CAC), denoiser-call counting.

``apply_cac`` works on any pipeline with ``encode_prompt`` and ``prompt_embeds``/``negative_prompt_embeds``
arguments: StableDiffusionPipeline (SD 1.x / 2.x), StableDiffusionGLIGENPipeline (GLIGEN + CAC: its own gated
self-attention grounding plus our masks on the text cross-attention), StableDiffusionXLPipeline (two text
encoders; the pooled embedding is the global caption's), and the mini's ``ToyPipeline``.
"""
from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from cac.attention import CACState, cac_processors
from cac.masks import masks_from_boxes, resize_masks


@dataclass
class CACPrompts:
    """Concatenated prompt embeddings ``[B, (n+1) T, D]`` (locals first, global last) and their CFG partner."""

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    tokens_per_prompt: int
    n_local: int
    per_prompt: torch.Tensor  # [B, n+1, T, D], each prompt encoded alone (MultiDiffusion's region prompts)
    negative_single: torch.Tensor  # [B, T, D]
    pooled_prompt_embeds: torch.Tensor | None = None  # SDXL
    negative_pooled_prompt_embeds: torch.Tensor | None = None


def _as_batch(prompt, local_prompts) -> tuple[list[str], list[list[str]]]:
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if local_prompts and isinstance(local_prompts[0], str):
        local_prompts = [list(local_prompts)] * len(prompts)
    local_prompts = [list(lp) for lp in local_prompts]
    if len(local_prompts) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(local_prompts)} lists of local prompts")
    n = {len(lp) for lp in local_prompts}
    if len(n) != 1 or 0 in n:
        raise ValueError(
            f"every prompt of a batch needs the same number (>= 1) of local prompts, got {sorted(n)}; "
            "call apply_cac once per group"
        )
    return prompts, local_prompts


def _is_sdxl(pipe) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None


def encode_cac_prompts(pipe, prompt, local_prompts, negative_prompt=None, device=None) -> CACPrompts:
    """Encode each local prompt and the global caption separately with the pipeline's own text encoder(s) and
    concatenate them along the token axis (C' = [c_1 | ... | c_n | c_0]). The negative prompt's embedding is
    replicated n+1 times, so the unconditional branch has the same token length and, with all-ones masks,
    stays exactly vanilla (duplicated keys leave a softmax unchanged)."""
    prompts, locals_ = _as_batch(prompt, local_prompts)
    bsz, n = len(prompts), len(locals_[0])
    device = device or pipe._execution_device
    flat = [p for lp, g in zip(locals_, prompts) for p in (*lp, g)]
    # None lets each pipeline apply its own default ("" for SD, zeros for SDXL's force_zeros_for_empty_prompt).
    negative = [negative_prompt] * bsz if isinstance(negative_prompt, str) else negative_prompt
    pooled = neg_pooled = None
    if _is_sdxl(pipe):
        pe, _, pooled_all, _ = pipe.encode_prompt(prompt=flat, device=device, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
        _, ne, _, neg_pooled = pipe.encode_prompt(prompt=prompts, device=device, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=True, negative_prompt=negative)
        pooled = pooled_all.view(bsz, n + 1, -1)[:, -1]
    else:
        pe, _ = pipe.encode_prompt(flat, device, 1, False)
        _, ne = pipe.encode_prompt(prompts, device, 1, True, negative_prompt=negative)
    t, d = pe.shape[-2:]
    per_prompt = pe.view(bsz, n + 1, t, d)
    return CACPrompts(
        prompt_embeds=per_prompt.reshape(bsz, (n + 1) * t, d),
        negative_prompt_embeds=ne.repeat(1, n + 1, 1),
        tokens_per_prompt=t,
        n_local=n,
        per_prompt=per_prompt,
        negative_single=ne,
        pooled_prompt_embeds=pooled,
        negative_pooled_prompt_embeds=neg_pooled,
    )


def prepare_masks(boxes_or_masks, batch: int, n_local: int, height: int, width: int,
                  units: str = "normalized", clip: bool = False) -> torch.Tensor:
    """``[batch, n_local, height, width]`` masks from boxes (``[n, 4]`` or ``[batch, n, 4]``, xyxy in ``units``)
    or masks (``[n, H, W]`` or ``[batch, n, H, W]`` in image space)."""
    x = boxes_or_masks
    is_mask = isinstance(x, torch.Tensor) and x.ndim >= 3 and tuple(x.shape[-2:]) == (height, width)
    if is_mask:
        m = x.float()
        m = m[None].expand(batch, *m.shape) if m.ndim == 3 else m
    else:
        b = torch.as_tensor(x, dtype=torch.float64)
        b = b[None].expand(batch, *b.shape) if b.ndim == 2 else b
        if b.ndim != 3 or b.shape[-1] != 4:
            raise ValueError(
                f"boxes must be [n, 4] or [batch, n, 4] xyxy; masks must be [n, {height}, {width}] or "
                f"[batch, n, {height}, {width}]; got shape {tuple(b.shape)}"
            )
        m = torch.stack([masks_from_boxes(bb, height, width, units=units, clip=clip) for bb in b])
    if m.shape[0] != batch or m.shape[1] != n_local:
        raise ValueError(
            f"{m.shape[1]} regions for {n_local} local prompts (batch {m.shape[0]} vs {batch}): give exactly one box "
            "or mask per local prompt"
        )
    if (m.flatten(2).sum(-1) == 0).any():
        raise ValueError("an empty mask leaves its local prompt nowhere to act; drop that prompt or fix its region")
    return m


def _size(pipe, height, width) -> tuple[int, int]:
    s = pipe.unet.config.sample_size
    s = (s, s) if isinstance(s, int) else tuple(s)
    return height or s[0] * pipe.vae_scale_factor, width or s[1] * pipe.vae_scale_factor


def _do_cfg(pipe, guidance_scale: float) -> bool:
    return guidance_scale > 1 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None


def apply_cac(
    pipe,
    prompt: str | Sequence[str],
    local_prompts: Sequence[str] | Sequence[Sequence[str]],
    boxes_or_masks,
    *,
    normalize: str = "none",
    units: str = "normalized",
    clip_boxes: bool = False,
    negative_prompt=None,
    height: int | None = None,
    width: int | None = None,
    guidance_scale: float | None = None,
    num_images_per_prompt: int = 1,
    record: bool = False,
    return_state: bool = False,
    fused: bool | None = None,
    **pipe_kwargs,
):
    """Generate with Cross Attention Control: ``pipe``'s own sampling loop with CAC on every cross-attention layer.

    ``local_prompts[i]`` is placed in region ``i`` (a box, xyxy in ``units``, or a binary mask at image size);
    ``prompt`` is the global caption. GLIGEN pipelines get ``gligen_phrases``/``gligen_boxes`` = the local
    prompts/boxes unless given. Extra keyword arguments go to the pipeline (``num_inference_steps``,
    ``generator``, ``output_type``, ...). Returns the pipeline output (and the ``CACState`` with ``return_state``,
    whose ``recorded`` holds every masked attention map when ``record=True``). ``fused`` picks fused attention
    (True; default on CUDA) or materialised attention maps (False; default on CPU): the same result.
    """
    height, width = _size(pipe, height, width)
    if guidance_scale is None:  # the pipeline's own default (7.5 for SD, 5.0 for SDXL)
        guidance_scale = inspect.signature(pipe.__call__).parameters["guidance_scale"].default
    with torch.no_grad():
        enc = encode_cac_prompts(pipe, prompt, local_prompts, negative_prompt)
    bsz = enc.prompt_embeds.shape[0]
    masks = prepare_masks(boxes_or_masks, bsz, enc.n_local, height, width, units, clip_boxes)
    state = CACState(
        masks=masks.repeat_interleave(num_images_per_prompt, dim=0),
        tokens_per_prompt=enc.tokens_per_prompt,
        latent_hw=(height // pipe.vae_scale_factor, width // pipe.vae_scale_factor),
        normalize=normalize,
        cfg=_do_cfg(pipe, guidance_scale),
        record=record,
        fused=fused,
    )
    kwargs = dict(prompt_embeds=enc.prompt_embeds, negative_prompt_embeds=enc.negative_prompt_embeds)
    if enc.pooled_prompt_embeds is not None:
        kwargs.update(pooled_prompt_embeds=enc.pooled_prompt_embeds,
                      negative_pooled_prompt_embeds=enc.negative_pooled_prompt_embeds)
    if "gligen_boxes" in inspect.signature(pipe.__call__).parameters and "gligen_boxes" not in pipe_kwargs:
        if bsz != 1 or (isinstance(boxes_or_masks, torch.Tensor) and boxes_or_masks.ndim >= 3):
            raise ValueError("GLIGEN needs gligen_phrases and gligen_boxes for mask inputs or batches; pass them")
        b = torch.as_tensor(boxes_or_masks, dtype=torch.float64).reshape(-1, 4)
        if units == "pixel":
            b = b / torch.tensor([width, height, width, height], dtype=torch.float64)
        pipe_kwargs.update(gligen_boxes=b.clamp(0, 1).tolist(), gligen_phrases=_flat_locals(local_prompts))
    with cac_processors(pipe.unet, state):
        out = pipe(height=height, width=width, guidance_scale=guidance_scale,
                   num_images_per_prompt=num_images_per_prompt, **kwargs, **pipe_kwargs)
    return (out, state) if return_state else out


def _flat_locals(local_prompts) -> list[str]:
    """The local prompts of a single-prompt call (flat list)."""
    return list(local_prompts[0]) if local_prompts and not isinstance(local_prompts[0], str) else list(local_prompts)


@torch.no_grad()
def multidiffusion(
    pipe,
    prompt: str | Sequence[str],
    local_prompts,
    boxes_or_masks,
    *,
    md_ratio: float = 1.0,
    cac: bool = True,
    normalize: str = "none",
    units: str = "normalized",
    negative_prompt=None,
    height: int | None = None,
    width: int | None = None,
    num_inference_steps: int = 50,
    guidance_scale: float = 7.5,
    generator: torch.Generator | None = None,
    latents: torch.Tensor | None = None,
    eta: float = 0.0,
    output_type: str = "pil",
    progress: bool = True,
):
    """MultiDiffusion region fusion for the first ``md_ratio`` of the steps, then SD (+CAC when ``cac``).

    MD step (Bar-Tal et al. 2023, region-based): each local prompt and the global caption (whole image) predicts
    noise; the prediction is ``eps = sum_i M_i eps_i / sum_i M_i`` at latent resolution. Fusing the noise
    prediction equals fusing the next latents (the scheduler step is affine in eps with shared noise), and the
    unconditional branch is shared: with weights summing to 1, one unconditional pass is exact under CFG.
    ``md_ratio=1`` is pure MD, ``md_ratio=0`` is SD+CAC (or SD). Bootstrapping with constant-colour backgrounds
    is not implemented. SDXL is not supported here (its added conditions would need fusing too). Returns an
    output object with ``images``, like the pipelines.
    """
    if _is_sdxl(pipe):
        raise NotImplementedError("multidiffusion supports SD 1.x/2.x-style pipelines; use apply_cac for SDXL")
    if not 0.0 <= md_ratio <= 1.0:
        raise ValueError(f"md_ratio must be in [0, 1], got {md_ratio}")
    height, width = _size(pipe, height, width)
    device = pipe._execution_device
    enc = encode_cac_prompts(pipe, prompt, local_prompts, negative_prompt, device)  # (no_grad: decorator)
    bsz, n = enc.prompt_embeds.shape[0], enc.n_local
    masks = prepare_masks(boxes_or_masks, bsz, n, height, width, units)
    lh, lw = height // pipe.vae_scale_factor, width // pipe.vae_scale_factor
    cfg = _do_cfg(pipe, guidance_scale)
    region = resize_masks(masks, lh, lw)  # [B, n, lh, lw]
    weights = torch.cat([region, torch.ones_like(region[:, :1])], 1).to(device)
    weights = (weights / weights.sum(1, keepdim=True))[:, :, None]  # [B, n+1, 1, lh, lw]
    state = CACState(masks=masks, tokens_per_prompt=enc.tokens_per_prompt, latent_hw=(lh, lw),
                     normalize=normalize, cfg=cfg)
    pipe.scheduler.set_timesteps(num_inference_steps, device=device)
    timesteps = pipe.scheduler.timesteps
    dtype = enc.prompt_embeds.dtype
    latents = pipe.prepare_latents(bsz, pipe.unet.config.in_channels, height, width, dtype, device, generator, latents)
    extra = pipe.prepare_extra_step_kwargs(generator, eta)
    weights = weights.to(latents.dtype)  # fp16 pipelines: keep eps (and so the latents) in the UNet's dtype
    n_md = round(md_ratio * len(timesteps))
    ctx = cac_processors(pipe.unet, state) if cac else contextlib.nullcontext()
    global_embeds = enc.per_prompt[:, -1]
    with ctx:
        for i, t in enumerate(tqdm(timesteps, disable=not progress, desc="multidiffusion")):
            x = pipe.scheduler.scale_model_input(latents, t)
            if i < n_md:
                state.enabled = False
                cond = enc.per_prompt.flatten(0, 1)  # [B(n+1), T, D]
                xs = x.repeat_interleave(n + 1, dim=0)
                if cfg:
                    ctx_all = torch.cat([enc.negative_single, cond])
                    out = pipe.unet(torch.cat([x, xs]), t, encoder_hidden_states=ctx_all).sample
                    eps_u, eps_c = out[:bsz], out[bsz:]
                else:
                    eps_c = pipe.unet(xs, t, encoder_hidden_states=cond).sample
                eps_c = (eps_c.unflatten(0, (bsz, n + 1)) * weights).sum(1)
            else:
                state.enabled = cac
                cond = enc.prompt_embeds if cac else global_embeds
                neg = enc.negative_prompt_embeds if cac else enc.negative_single
                if cfg:
                    out = pipe.unet(torch.cat([x, x]), t, encoder_hidden_states=torch.cat([neg, cond])).sample
                    eps_u, eps_c = out.chunk(2)
                else:
                    eps_c = pipe.unet(x, t, encoder_hidden_states=cond).sample
            eps = (eps_u + guidance_scale * (eps_c - eps_u) if cfg else eps_c).to(latents.dtype)
            latents = pipe.scheduler.step(eps, t, latents, **extra, return_dict=False)[0]
    if hasattr(pipe, "decode_latents_to_images"):  # the mini's pixel-space ToyPipeline
        return pipe.decode_latents_to_images(latents, output_type)
    return _decode(pipe, latents, output_type)


def _decode(pipe, latents, output_type):
    """Like the pipelines' own ending: an output object whose ``images`` are PIL, numpy, torch or latents."""
    from diffusers.pipelines.stable_diffusion import StableDiffusionPipelineOutput

    if output_type == "latent":
        return StableDiffusionPipelineOutput(images=latents, nsfw_content_detected=None)
    image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    images = pipe.image_processor.postprocess(image, output_type=output_type, do_denormalize=[True] * image.shape[0])
    return StableDiffusionPipelineOutput(images=images, nsfw_content_detected=None)


@contextlib.contextmanager
def count_denoiser_calls(unet: torch.nn.Module):
    """Count forward calls of ``unet`` and the samples they processed: ``{"calls": int, "samples": int}``."""
    counts = {"calls": 0, "samples": 0}

    def hook(_module, args, kwargs):
        x = args[0] if args else kwargs["sample"]
        counts["calls"] += 1
        counts["samples"] += x.shape[0]

    handle = unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield counts
    finally:
        handle.remove()
