"""Tiny, randomly initialised Stable Diffusion / GLIGEN / SDXL pipelines, saved and loaded like the real ones.

Tests, the speed benchmark and the GPU smoke check use them: the same ``from_pretrained`` path as SD 2.1, the
real CLIP tokenizer (built offline, ``cac.tokenizer``), a UNet with cross-attention at two resolutions.
"""
from __future__ import annotations

from pathlib import Path

import torch

from cac.tokenizer import clip_tokenizer


def _unet_kwargs(cross_dim: int) -> dict:
    return dict(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_dim, attention_head_dim=8, norm_num_groups=32,
    )


def _text_encoder(seed: int, projection: bool = False, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=49407, projection_dim=hidden)
    torch.manual_seed(seed)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         latent_channels=4, norm_num_groups=32)


def build_tiny_pipeline(out_dir: str | Path, kind: str = "sd", seed: int = 0) -> Path:
    """Build a tiny ``kind`` pipeline ("sd", "gligen" or "sdxl") with random weights and ``save_pretrained`` it."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel

    out = Path(out_dir)
    tok = clip_tokenizer(out / "_tokenizer_src")
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    torch.manual_seed(seed)
    if kind == "sdxl":
        unet = UNet2DConditionModel(
            **{**_unet_kwargs(64), "attention_head_dim": (2, 4)}, addition_embed_type="text_time",
            addition_time_embed_dim=8, projection_class_embeddings_input_dim=80, transformer_layers_per_block=1,
            use_linear_projection=True,
        )
        pipe = StableDiffusionXLPipeline(vae=_vae(seed), text_encoder=_text_encoder(seed), tokenizer=tok,
                                         text_encoder_2=_text_encoder(seed + 1, projection=True), tokenizer_2=tok,
                                         unet=unet, scheduler=sched)
    else:
        unet = UNet2DConditionModel(**_unet_kwargs(32), attention_type="gated" if kind == "gligen" else "default")
        if kind == "gligen":
            from diffusers import StableDiffusionGLIGENPipeline

            cls = StableDiffusionGLIGENPipeline
        elif kind == "sd":
            cls = StableDiffusionPipeline
        else:
            raise ValueError(f"kind must be sd, gligen or sdxl, got {kind!r}")
        pipe = cls(vae=_vae(seed), text_encoder=_text_encoder(seed), tokenizer=tok, unet=unet, scheduler=sched,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out


def load_tiny_pipeline(path: str | Path, kind: str = "sd", device: str = "cpu", dtype=torch.float32):
    """Load a pipeline saved by ``build_tiny_pipeline`` through ``from_pretrained`` (the path users hit)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if kind == "gligen":
        from diffusers import StableDiffusionGLIGENPipeline as cls
    else:
        cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    extra = {} if kind == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = cls.from_pretrained(str(path), dtype=dtype, **extra).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
