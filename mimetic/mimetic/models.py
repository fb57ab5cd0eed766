"""The models the paper trains, built from timm / transformers classes, and the inits compared.

ViTs are timm ``VisionTransformer`` (the paper's training stack): for 32x32 data the third-party recipe's
``vit_tiny_patch2_32`` (embed 192, depth 12, 3 heads, patch 2 -> 256 tokens, no class token, global average
pool), ViT-Tiny/16 for ImageNet, and the mini's d=64 ViT on 8x8 digits. The language model is HF GPT-2.

Inits (applied after the model's own constructor init, so everything but attention is identical across arms):

- ``default``: timm's ViT init (trunc-normal std .02 on every Linear, zero biases; patch-embedding conv and
  position embedding as timm leaves them) or HF GPT-2's (normal std .02) -- the paper's baseline;
- ``mimetic``: ``default`` then ``mimetic_init_`` on every attention layer;
- ``torch`` / ``torch_mimetic``: every ``nn.Linear`` re-initialised with PyTorch's own ``reset_parameters``
  (Kaiming-uniform a=sqrt(5)), then optionally mimetic: the second baseline the mini reports.
"""
from __future__ import annotations

import torch
from torch import nn

from mimetic.diagnostics import sincos_2d
from mimetic.init import mimetic_init_

INITS = ("default", "mimetic", "torch", "torch_mimetic")
POS_EMBEDS = ("learn", "sincos", "none")


def build_vit(img_size: int, patch_size: int, in_chans: int, num_classes: int, embed_dim: int, depth: int,
              num_heads: int, mlp_ratio: float = 4.0, pos_embed: str = "learn", class_token: bool = False,
              global_pool: str = "avg", drop_path_rate: float = 0.0, qkv_bias: bool = True,
              patch_embed_init: str = "timm") -> nn.Module:
    """A timm ``VisionTransformer`` with the given widths. ``pos_embed``: ``learn`` (timm's trunc-normal .02,
    trained), ``sincos`` (fixed 2-D sine-cosine, as the recipe's ``sin_pe=True``; not trained) or ``none``.
    ``patch_embed_init``: ``timm`` (timm leaves the patch-embedding conv at PyTorch's default, std ~
    1/sqrt(3 fan_in)) or ``trunc_normal`` (std .02 like every Linear: the spec's pilot ViT)."""
    from timm.models.vision_transformer import VisionTransformer

    if pos_embed not in POS_EMBEDS:
        raise ValueError(f"model.pos_embed={pos_embed!r}: use one of {POS_EMBEDS}")
    if embed_dim % num_heads:
        raise ValueError(f"model.embed_dim={embed_dim} is not divisible by model.num_heads={num_heads}")
    if img_size % patch_size:
        raise ValueError(f"model.img_size={img_size} is not a multiple of model.patch_size={patch_size}")
    model = VisionTransformer(img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
                              embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                              qkv_bias=qkv_bias, class_token=class_token, global_pool=global_pool,
                              pos_embed="none" if pos_embed == "none" else "learn", drop_path_rate=drop_path_rate)
    if patch_embed_init not in ("timm", "trunc_normal"):
        raise ValueError(f"model.patch_embed_init={patch_embed_init!r}: use timm or trunc_normal")
    if patch_embed_init == "trunc_normal":
        nn.init.trunc_normal_(model.patch_embed.proj.weight, std=0.02)
        nn.init.zeros_(model.patch_embed.proj.bias)
    if pos_embed == "sincos":
        grid = img_size // patch_size
        pe = sincos_2d(grid, embed_dim).to(model.pos_embed.dtype)
        if class_token:  # the class token gets a zero position embedding
            pe = torch.cat([pe.new_zeros(1, embed_dim), pe])
        with torch.no_grad():
            model.pos_embed.copy_(pe[None])
        model.pos_embed.requires_grad_(False)
    return model


def build_gpt(vocab_size: int, n_positions: int, n_embd: int, n_layer: int, n_head: int,
              dropout: float = 0.0) -> nn.Module:
    """An HF ``GPT2LMHeadModel`` from a config (random init: HF's normal std .02, scaled residual projections)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if n_embd % n_head:
        raise ValueError(f"model.n_embd={n_embd} is not divisible by model.n_head={n_head}")
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                     resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    return GPT2LMHeadModel(cfg)


@torch.no_grad()
def torch_linear_init_(model: nn.Module) -> int:
    """Re-initialise every ``nn.Linear`` with PyTorch's own default (``reset_parameters``); returns the count."""
    n = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
            n += 1
    return n


def apply_init(model: nn.Module, init: str, alpha1: float = 0.7, beta1: float = 0.7, alpha2: float = 0.4,
               beta2: float = 0.4, generator: torch.Generator | None = None, svd: str = "exact") -> dict:
    """Apply one of ``INITS`` in place (after the constructor's default init); returns what was done."""
    if init not in INITS:
        raise ValueError(f"init.name={init!r}: use one of {INITS}")
    out = {"init/linear_reset": 0, "init/mimetic_layers": 0}
    if init.startswith("torch"):
        out["init/linear_reset"] = torch_linear_init_(model)
    if init.endswith("mimetic"):
        out["init/mimetic_layers"] = mimetic_init_(model, alpha1, beta1, alpha2, beta2, generator=generator,
                                                    svd=svd)
    return out
