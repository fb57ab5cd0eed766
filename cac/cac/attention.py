"""The CAC cross-attention processor (paper Sec. 3; project-page pipeline figure; patent US 12,387,402 claim 1).

In every cross-attention layer, with C' = [c_1 | ... | c_n | c_0] the local prompts' and the global caption's
token embeddings concatenated along the token axis (each padded to the encoder's T tokens):

    A' = softmax(Q K'^T / sqrt(d)) * B'          B' = [M_1 (x) 1_T | ... | M_n (x) 1_T | 1]
    out = A' V'

where M_i is prompt i's region resized to the layer's grid and the global caption's tokens see every pixel.
The softmax is joint over all (n+1)T tokens and the masked map is NOT renormalised (``normalize="none"``, the
default). ``"renorm"`` renormalises each row after masking (= -inf logits outside the region) and
``"per_prompt"`` takes one softmax per prompt and sums the masked maps: both are ablations, not the paper.
Self-attention is untouched: processors are installed only on layers with ``attn.is_cross_attention``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import (
    Attention,
    AttnProcessor,
    AttnProcessor2_0,
)

from cac.masks import layer_hw, resize_masks

NORMALIZE = ("none", "renorm", "per_prompt")
# Processors that hold no weights and compute plain attention: CAC may replace them. Anything else (IP-Adapter,
# LoRA or Custom Diffusion processors with their own parameters) would be silently dropped, so it is refused.
_REPLACEABLE = (AttnProcessor, AttnProcessor2_0)
try:  # optional in the pinned diffusers, present when xformers is installed
    from diffusers.models.attention_processor import XFormersAttnProcessor

    _REPLACEABLE = (*_REPLACEABLE, XFormersAttnProcessor)
except ImportError:  # pragma: no cover
    pass


@dataclass
class CACState:
    """What every CAC processor of one sampling call shares.

    masks: ``[B, n, H, W]`` region masks of the conditional samples, in image (or latent) space; resized per layer.
    tokens_per_prompt: T, the padded token length of each prompt's embedding.
    latent_hw: the denoiser's input grid ``(h, w)``; layer grids are derived from it (non-square safe).
    cfg: the denoiser's batch is ``[unconditional; conditional]`` (diffusers' order); the unconditional half gets
        all-ones masks, which with the empty prompt replicated n+1 times is exactly vanilla attention.
    enabled: False turns every processor into plain attention (MultiDiffusion's early steps, ablations).
    fused: compute CAC with PyTorch's fused scaled_dot_product_attention (no attention map in memory; exact, see
        ``CACAttnProcessor._cac_fused``); False materialises the masked map (the reference path); None (default)
        fuses on CUDA and materialises on CPU, where it measured faster (results/bench.md).
    record: keep each layer's masked attention map in ``recorded`` as ``(layer, probs [B*heads, N, L'])`` (uses
        the materialised path).
    """

    masks: torch.Tensor
    tokens_per_prompt: int
    latent_hw: tuple[int, int]
    normalize: str = "none"
    cfg: bool = False
    enabled: bool = True
    fused: bool | None = None
    record: bool = False
    recorded: list = field(default_factory=list)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, got {self.normalize!r}")
        if self.masks.ndim != 4:
            raise ValueError(f"masks must be [batch, n_local, H, W], got shape {tuple(self.masks.shape)}")

    @property
    def n_prompts(self) -> int:
        """Local prompts plus the global caption."""
        return self.masks.shape[1] + 1

    def prompt_mask(self, n_query: int, device, dtype) -> torch.Tensor:
        """Per prompt: ``[batch (x2 under CFG), n_query, n+1]`` (the global caption last, all ones), cached."""
        key = ("prompt", n_query, device, dtype)
        if key not in self._cache:
            h, w = layer_hw(n_query, self.latent_hw)
            m = resize_masks(self.masks.to(device), h, w).flatten(2).transpose(1, 2)  # [B, N, n]
            m = torch.cat([m, torch.ones_like(m[..., :1])], dim=-1)  # global caption: all ones
            if self.cfg:
                m = torch.cat([torch.ones_like(m), m], dim=0)
            self._cache[key] = m.to(dtype)
        return self._cache[key]

    def token_mask(self, n_query: int, device, dtype) -> torch.Tensor:
        """B' for a layer with ``n_query`` positions: ``[batch (x2 under CFG), n_query, (n+1) T]``, cached."""
        key = ("token", n_query, device, dtype)
        if key not in self._cache:
            m = self.prompt_mask(n_query, device, dtype)
            self._cache[key] = m.repeat_interleave(self.tokens_per_prompt, dim=-1)
        return self._cache[key]


class CACAttnProcessor:
    """Diffusers attention processor applying Cross Attention Control with the masks in ``state``.

    Mirrors diffusers' ``AttnProcessor`` step by step (spatial/group norm, projections, residual, rescale) and
    replaces only the attention map. The map must be materialised (SDPA never exposes it): memory per layer is
    ``batch x heads x N x (n+1)T``.
    """

    def __init__(self, state: CACState | None = None, name: str = ""):
        self.state = state
        self.name = name

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, n_query, _ = hidden_states.shape
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key = attn.head_to_batch_dim(attn.to_k(context))
        value = attn.head_to_batch_dim(attn.to_v(context))
        query = attn.head_to_batch_dim(query)

        state = self.state
        fused = state is not None and (state.fused if state.fused is not None else query.is_cuda)
        if state is None or not state.enabled or encoder_hidden_states is None:
            if fused:
                out = _sdpa(query, key, value, attention_mask, attn.heads, attn.scale)
            else:
                out = torch.bmm(attn.get_attention_scores(query, key, attention_mask), value)
        else:
            self._check(state, key.shape[1], batch_size)
            if fused and not state.record:
                out = self._cac_fused(attn, state, query, key, value, attention_mask, batch_size, n_query)
            else:
                probs = self._cac_probs(attn, state, query, key, attention_mask, batch_size, n_query)
                if state.record:
                    state.recorded.append((self.name, probs.detach()))
                out = torch.bmm(probs, value)

        hidden_states = attn.batch_to_head_dim(out)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _check(self, state, n_tokens, batch_size):
        expected = state.n_prompts * state.tokens_per_prompt
        if n_tokens != expected:
            raise ValueError(
                f"CAC layer {self.name!r}: the text embedding has {n_tokens} tokens, expected (n+1)*T = "
                f"{state.n_prompts}*{state.tokens_per_prompt} = {expected}; build prompt embeddings with "
                "cac.encode_cac_prompts (local prompts first, then the global caption)"
            )
        expected_batch = state.masks.shape[0] * (2 if state.cfg else 1)
        if expected_batch != batch_size:
            raise ValueError(
                f"CAC layer {self.name!r}: the denoiser batch is {batch_size} but the masks give {expected_batch} "
                f"(masks for {state.masks.shape[0]} samples, cfg={state.cfg}); pass one mask set per generated image"
            )

    def _cac_fused(self, attn, state, query, key, value, attention_mask, batch_size, n_query):
        """CAC through fused attention, exactly (up to float rounding) the materialised formula.

        Put each prompt's values in its own slot of a block-diagonal value matrix, ``V_bd[t] = e_i (x) v_t`` for
        token t of prompt i. One softmax over all tokens then gives, per slot i, ``sum_{t in i} p_t v_t``: the
        joint-softmax mass of prompt i times its values. CAC is the mask-weighted sum of the slots,
        ``out = sum_i M_i(q) slot_i``. ``renorm`` also carries a ones column per slot (prompt i's mass m_i) and
        divides by ``sum_i M_i m_i``; ``per_prompt`` runs one softmax per prompt (prompts as a batch axis).
        """
        n_p, t_p = state.n_prompts, state.tokens_per_prompt
        bh, _, d = value.shape
        m = state.prompt_mask(n_query, query.device, query.dtype)[:, None, :, :, None]  # [B, 1, N, n+1, 1]
        if state.normalize == "per_prompt":  # prompts as a batch axis: [bh * (n+1), N or T, d]
            q = query[:, None].expand(bh, n_p, n_query, query.shape[-1]).flatten(0, 1)
            k, v = key.unflatten(1, (n_p, t_p)).flatten(0, 1), value.unflatten(1, (n_p, t_p)).flatten(0, 1)
            am = None
            if attention_mask is not None:
                am = attention_mask.expand(bh, -1, -1).unflatten(-1, (n_p, t_p)).movedim(-2, 1).flatten(0, 1)
            slots = _sdpa(q, k, v, am, attn.heads * n_p, attn.scale).unflatten(0, (bh, n_p)).transpose(1, 2)
            return (slots.unflatten(0, (batch_size, attn.heads)) * m).sum(-2).flatten(0, 1)  # [bh, N, d]
        v = value.unflatten(1, (n_p, t_p))
        if state.normalize == "renorm":
            v = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
        eye = torch.eye(n_p, dtype=v.dtype, device=v.device)
        v_bd = (eye[None, :, None, :, None] * v[:, :, :, None, :]).reshape(bh, n_p * t_p, n_p * v.shape[-1])
        slots = _sdpa(query, key, v_bd, attention_mask, attn.heads, attn.scale)
        slots = (slots.unflatten(-1, (n_p, v.shape[-1])).unflatten(0, (batch_size, attn.heads)) * m).sum(-2)
        if state.normalize == "renorm":
            slots = slots[..., :d] / slots[..., d:].clamp_min(torch.finfo(slots.dtype).tiny)
        return slots.flatten(0, 1)

    def _cac_probs(self, attn, state, query, key, attention_mask, batch_size, n_query):
        mask = state.token_mask(n_query, query.device, torch.float32)
        # head_to_batch_dim orders [b0h0, b0h1, ..., b1h0, ...]: view as [B, heads, N, L] and broadcast the mask
        # over heads (no heads-fold copy of it).
        mask = mask[:, None]
        dtype = query.dtype
        if state.normalize == "per_prompt":
            q, k = (query.float(), key.float()) if attn.upcast_attention else (query, key)
            scores = q @ k.transpose(-1, -2) * attn.scale
            if attention_mask is not None:
                scores = scores + attention_mask
            s = scores.float().unflatten(-1, (state.n_prompts, state.tokens_per_prompt))
            probs = s.softmax(dim=-1).flatten(-2)
        else:
            probs = attn.get_attention_scores(query, key, attention_mask).float()
        if probs.requires_grad:  # softmax's backward needs its output: no in-place under autograd
            probs = (probs.unflatten(0, (batch_size, attn.heads)) * mask).flatten(0, 1)
        else:
            probs.unflatten(0, (batch_size, attn.heads)).mul_(mask)  # in place: no second map in memory
        if state.normalize == "renorm":
            probs = probs / probs.sum(-1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)
        return probs.to(dtype)


def _sdpa(q, k, v, mask, heads: int, scale: float) -> torch.Tensor:
    """``scaled_dot_product_attention`` on diffusers' ``[B*heads, N, d]`` layout, called with 4-D
    ``[B, heads, N, d]`` tensors: PyTorch's fused (flash / memory-efficient) kernels only take 4-D inputs, 3-D ones
    fall back to the math kernel, which materialises the map."""
    four = [x.unflatten(0, (-1, heads)) for x in (q, k, v)]
    m = None if mask is None else mask.expand(q.shape[0], -1, -1).unflatten(0, (-1, heads))
    return F.scaled_dot_product_attention(*four, attn_mask=m, scale=scale).flatten(0, 1)


def cross_attention_layers(model: torch.nn.Module) -> dict[str, Attention]:
    """Every cross-attention ``Attention`` module of ``model`` (``attn2`` of SD/SDXL/GLIGEN blocks), by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, Attention) and m.is_cross_attention}


@contextlib.contextmanager
def cac_processors(model: torch.nn.Module, state: CACState):
    """Install CAC on every cross-attention layer of ``model`` for the ``with`` block, then restore the originals.

    Refuses processors that carry weights or extra behaviour (IP-Adapter, LoRA/Custom-Diffusion processors):
    replacing them would silently drop that behaviour. Nesting two CAC contexts on one model is an error.
    """
    layers = cross_attention_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no cross-attention layers (Attention with cross_attention_dim)")
    old = {}
    for name, attn in layers.items():
        proc = attn.processor
        if isinstance(proc, CACAttnProcessor):
            raise RuntimeError(f"CAC is already installed on {name}; leave the outer cac_processors block first")
        if not isinstance(proc, _REPLACEABLE):
            raise TypeError(
                f"{name} uses {type(proc).__name__}, which CAC would replace and drop; call "
                "model.set_default_attn_processor() (or unload the adapter) first"
            )
        old[name] = proc
    try:
        for name, attn in layers.items():
            attn.set_processor(CACAttnProcessor(state, name))
        yield state
    finally:
        for name, attn in layers.items():
            attn.set_processor(old[name])
