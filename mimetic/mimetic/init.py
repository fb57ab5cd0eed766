"""Mimetic initialization of self-attention (Trockman & Kolter, arXiv 2305.09828, Sec. 3).

Paper notation (token rows x, weights acting on the right): head h has W_q^h, W_k^h in R^{d x k} (k = head dim);
the value map W_v = [W_v^1 ... W_v^H] in R^{d x Hk} and the output projection W_proj in R^{Hk x d}. Targets:

- per head, a fresh Z1 (i.i.d. N(0, 1/d)):  W_q^h W_k^h^T ~ alpha1 Z1 + beta1 I,  by the best rank-k approximation:
  M = U S V^T,  W_q^h = U_k S_k^(1/2),  W_k^h = V_k S_k^(1/2)   (Eckart-Young; not exactly M when k < d);
- per layer, one Z2:  W_v W_proj = alpha2 Z2 - beta2 I,  W_v = U S^(1/2), W_proj = S^(1/2) V^T  (exact when Hk = d).

Biases of q, k, v and proj are zeroed; every other parameter keeps its (default) init, so apply this after the
model's own init. Orientation is the classic bug: ``torch.nn.Linear`` stores W^T (out x in), so a q Linear holds
(W_q^h)^T in rows [h k, (h+1) k) and ``proj.weight`` holds W_proj^T; HF GPT-2's ``Conv1D`` stores W itself.

Grouped-query attention (Llama-style, n_kv < n_heads): the key head of a group is shared, so one Z1 per KV group
and the group's query heads share W_q; the value heads are shared too, so W_v W_proj targets the best rank-(n_kv k)
approximation of alpha2 Z2 - beta2 I, each query head's W_proj rows getting 1/g of its group's share.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AttnView:
    """Where a module keeps its attention weights, in paper orientation through getters/setters."""

    d: int  # model width (input of q/k/v)
    heads: int  # query heads
    kv_heads: int  # key/value heads (= heads without GQA)
    head_dim: int
    kind: str


SVD_MODES = ("exact", "randomized")


def _z(d: int, gen: torch.Generator | None, n: int = 1, dtype=torch.float64) -> torch.Tensor:
    """``n`` matrices with i.i.d. N(0, 1/d) entries."""
    return torch.randn(n, d, d, generator=gen, dtype=dtype) / math.sqrt(d)


def qk_factors(alpha1: float, beta1: float, d: int, k: int, n: int, gen=None, svd: str = "exact",
               niter: int = 4, oversample: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` independent (W_q, W_k) pairs, each ``[d, k]`` (paper orientation), with W_q W_k^T the best rank-k
    approximation of alpha1 Z + beta1 I.

    ``svd="exact"``: float64 ``linalg.svd`` (the oracle path). ``svd="randomized"``: float32 Halko-style
    ``torch.svd_lowrank`` (q = k + oversample, ``niter`` power iterations), a near-optimal rank-k factorisation
    for large widths (scripts/bench.py reports its Frobenius residual above Eckart-Young's)."""
    if svd not in SVD_MODES:
        raise ValueError(f"svd={svd!r}: use one of {SVD_MODES}")
    dtype = torch.float64 if svd == "exact" else torch.float32
    m = alpha1 * _z(d, gen, n, dtype) + beta1 * torch.eye(d, dtype=dtype)
    if svd == "exact" or k + oversample >= d:
        u, s, vh = torch.linalg.svd(m)
        v = vh.transpose(1, 2)
    else:
        u, s, v = torch.svd_lowrank(m, q=k + oversample, niter=niter)
    r = s[:, :k].sqrt()
    return u[:, :, :k] * r[:, None, :], v[:, :, :k] * r[:, None, :]


def vo_factors(alpha2: float, beta2: float, d: int, r: int, gen=None, svd: str = "exact") -> tuple[torch.Tensor,
                                                                                                    torch.Tensor]:
    """(W_v ``[d, r]``, W_proj ``[r, d]``) with W_v W_proj the best rank-r approximation of alpha2 Z - beta2 I
    (exact for r = d). ``svd="randomized"`` only switches to float32 (the target is full rank)."""
    if svd not in SVD_MODES:
        raise ValueError(f"svd={svd!r}: use one of {SVD_MODES}")
    dtype = torch.float64 if svd == "exact" else torch.float32
    m = alpha2 * _z(d, gen, 1, dtype)[0] - beta2 * torch.eye(d, dtype=dtype)
    u, s, vh = torch.linalg.svd(m)
    r = min(r, d)
    sq = s[:r].sqrt()
    return u[:, :r] * sq, sq[:, None] * vh[:r]


def _check(alpha1, beta1, alpha2, beta2):
    bad = {k: v for k, v in dict(alpha1=alpha1, beta1=beta1, alpha2=alpha2, beta2=beta2).items() if v < 0}
    if bad:
        raise ValueError(f"mimetic init needs alpha, beta >= 0 (got {bad}); the sign of the V/proj diagonal is "
                         "built in (alpha2 Z - beta2 I)")


def _split(d: int, heads: int, name: str) -> int:
    if d % heads:
        raise ValueError(f"{name}: embedding dim {d} is not divisible by {heads} heads")
    return d // heads


def _view(m: nn.Module) -> AttnView | None:
    """The layout of a supported attention module, or None."""
    if isinstance(m, nn.MultiheadAttention):
        if not m._qkv_same_embed_dim:
            raise ValueError("nn.MultiheadAttention with kdim/vdim != embed_dim is not supported by mimetic_init_ "
                             "(its keys/values come from another space: the identity target has no meaning)")
        return AttnView(m.embed_dim, m.num_heads, m.num_heads, _split(m.embed_dim, m.num_heads, "MultiheadAttention"),
                        "mha")
    if isinstance(getattr(m, "qkv", None), nn.Linear) and isinstance(getattr(m, "proj", None), nn.Linear):  # timm
        d = m.qkv.in_features
        heads = m.num_heads
        hd = m.qkv.out_features // 3 // heads
        return AttnView(d, heads, heads, hd, "timm")
    if hasattr(m, "c_attn") and hasattr(m, "c_proj") and type(m.c_attn).__name__ == "Conv1D":  # HF GPT-2
        d = m.c_attn.weight.shape[0]
        heads = m.num_heads
        return AttnView(d, heads, heads, _split(d, heads, type(m).__name__), "gpt2")
    if all(isinstance(getattr(m, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "o_proj")):  # Llama
        hf = getattr(m, "config", None)
        hd = getattr(m, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        heads = m.q_proj.out_features // hd
        kv = m.k_proj.out_features // hd
        if heads % kv:
            raise ValueError(f"{type(m).__name__}: {heads} query heads are not a multiple of {kv} KV heads")
        return AttnView(m.q_proj.in_features, heads, kv, hd, "llama")
    return None


@torch.no_grad()
def _apply(m: nn.Module, v: AttnView, a1, b1, a2, b2, gen, svd: str = "exact") -> None:
    d, hd, g = v.d, v.head_dim, v.heads // v.kv_heads
    wq, wk = qk_factors(a1, b1, d, hd, v.kv_heads, gen, svd)  # [kv, d, hd] each: one Z per KV group
    wq = wq.repeat_interleave(g, 0)  # query heads of a group share the group's W_q
    r = v.kv_heads * hd
    wv, wo = vo_factors(a2, b2, d, r, gen, svd)  # [d, r], [min(r, d), d]
    if wo.shape[0] < r:  # more value dims than d: the extra ones are zero (product still the exact target)
        wv = torch.cat([wv, wv.new_zeros(d, r - wo.shape[0])], 1)
        wo = torch.cat([wo, wo.new_zeros(r - wo.shape[0], d)], 0)
    # W_proj rows of query head h: 1/g of its KV group's rows, so the g copies of a shared value head add back up
    wo = (wo.view(v.kv_heads, 1, hd, d) / g).expand(v.kv_heads, g, hd, d).reshape(v.heads * hd, d)
    q_t = wq.transpose(1, 2).reshape(v.heads * hd, d)  # Linear layout: rows = (W_q^h)^T stacked by head
    k_t = wk.transpose(1, 2).reshape(r, d)
    v_t = wv.T  # [r, d]
    if v.kind in ("timm", "mha"):
        w_in = m.qkv.weight if v.kind == "timm" else m.in_proj_weight
        w_out = m.proj.weight if v.kind == "timm" else m.out_proj.weight
        w_in.copy_(torch.cat([q_t, k_t, v_t], 0).to(w_in))
        w_out.copy_(wo.T.to(w_out))
        b_in = m.qkv.bias if v.kind == "timm" else m.in_proj_bias
        b_out = m.proj.bias if v.kind == "timm" else m.out_proj.bias
    elif v.kind == "gpt2":  # Conv1D stores W (in x out): no transposes
        w = m.c_attn.weight
        w.copy_(torch.cat([q_t, k_t, v_t], 0).T.to(w))
        m.c_proj.weight.copy_(wo.to(m.c_proj.weight))
        b_in, b_out = m.c_attn.bias, m.c_proj.bias
    else:  # llama
        m.q_proj.weight.copy_(q_t.to(m.q_proj.weight))
        m.k_proj.weight.copy_(k_t.to(m.k_proj.weight))
        m.v_proj.weight.copy_(v_t.to(m.v_proj.weight))
        m.o_proj.weight.copy_(wo.T.to(m.o_proj.weight))
        for lin in (m.q_proj, m.k_proj, m.v_proj):
            if lin.bias is not None:
                lin.bias.zero_()
        b_in, b_out = None, m.o_proj.bias
    for b in (b_in, b_out):
        if b is not None:
            b.zero_()


SUPPORTED = ("timm Attention (fused qkv + proj)", "torch.nn.MultiheadAttention", "HF GPT-2 attention (Conv1D c_attn)",
             "HF Llama-style attention (q/k/v/o_proj, grouped KV heads)")


def mimetic_init_(module: nn.Module, alpha1: float = 0.7, beta1: float = 0.7, alpha2: float = 0.4,
                  beta2: float = 0.4, generator: torch.Generator | None = None, svd: str = "exact",
                  strict: bool = True) -> int:
    """Mimetic init, in place, of every supported attention layer in ``module`` (itself included), in module
    order, drawing Z from ``generator``. Returns the number of layers initialised; an attention layer of an
    unsupported kind, or none at all, is an error that lists what is supported.

    ``svd="exact"`` (default): float64 SVDs, the exact construction. ``svd="randomized"``: float32 and a
    randomized top-k SVD per head (faster for wide models; near-optimal rank-k approximation).
    ``strict=False`` skips (with a warning) modules that look like attention (``Attention`` in the class name, e.g.
    timm's ``AttentionPoolLatent`` or ``AttentionRope``) but whose layout is not supported, instead of failing."""
    _check(alpha1, beta1, alpha2, beta2)
    if svd not in SVD_MODES:
        raise ValueError(f"svd={svd!r}: use one of {SVD_MODES}")
    n = 0
    for name, m in module.named_modules():
        v = _view(m)
        if v is None:
            if "Attention" in type(m).__name__ and not any(_view(c) for c in m.children()):
                msg = (f"{name or 'module'} ({type(m).__name__}) looks like attention but its layout is not "
                       f"supported; supported: {', '.join(SUPPORTED)}")
                if strict:
                    raise TypeError(msg + " (strict=False skips such modules)")
                warnings.warn(msg + ": left at its own init", stacklevel=2)
            continue
        _apply(m, v, alpha1, beta1, alpha2, beta2, generator, svd)
        n += 1
    if n == 0:
        raise TypeError(f"no attention layer found in {type(module).__name__}; supported: {', '.join(SUPPORTED)}")
    return n
